"""A pytest plugin for component authors (loaded automatically through the ``pytest11`` entry point).

Fixtures:

* ``agencystack_env`` -- a private state root and log dir (``AGENCYSTACK_ROOT``/``AGENCYSTACK_LOG_DIR`` under
  ``tmp_path``), a fresh environment without stray ``DOMAIN``/``CLIENT_ID``; returns the root path.
* ``agencystack_run`` -- run the CLI in-process like the console script: ``agencystack_run("install", "hello")``
  returns a :class:`CliResult` (exit code, stdout, stderr).
* ``agencystack_plugins`` -- the loaded :class:`~agencystack.plugins.Plugins` (what ``components list`` sees).

Nothing here runs at import time; the plugin costs nothing in test sessions that do not use it.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def agencystack_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "agency_stack"
    monkeypatch.setenv("AGENCYSTACK_ROOT", str(root))
    monkeypatch.setenv("AGENCYSTACK_LOG_DIR", str(tmp_path / "log"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # plugin discovery cache, private to the test
    for name in ("DOMAIN", "CLIENT_ID", "AGENCYSTACK_DOMAIN", "AGENCYSTACK_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    return root


@pytest.fixture
def agencystack_run(agencystack_env: Path):
    from agencystack.cli import main

    def run(*args: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def agencystack_plugins(agencystack_env: Path):
    from agencystack.plugins import load

    return load()
