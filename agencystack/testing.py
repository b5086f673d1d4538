"""A pytest plugin for component authors (loaded automatically through the ``pytest11`` entry point).

Fixtures:

* ``agencystack_env`` -- a private state root and log dir (``AGENCYSTACK_ROOT``/``AGENCYSTACK_LOG_DIR`` under
  ``tmp_path``), a fresh environment without stray ``DOMAIN``/``CLIENT_ID``; returns the root path (see
  :func:`use_root`).
* ``agencystack_run`` -- run the CLI in-process like the console script: ``agencystack_run("install", "hello")``
  returns a :class:`CliResult` (exit code, stdout, stderr).
* ``agencystack_plugins`` -- the loaded :class:`~agencystack.plugins.Plugins` (what ``components list`` sees).
* ``agencystack_context`` -- ``agencystack_context("hello", client="acme")``: a
  :class:`~agencystack.LifecycleContext` over those plugins, as the CLI builds one (see :func:`open_context`).

Plain functions, for module-scoped fixtures and helpers that a fixture cannot serve: :func:`use_root` (what
``agencystack_env`` does, on any ``MonkeyPatch``; :func:`root_environment` for a process), :func:`run_cli`,
:func:`open_context` and :func:`free_port`.

Nothing here runs at import time; the plugin costs nothing in test sessions that do not use it.
"""

from __future__ import annotations

import contextlib
import io
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from agencystack.context import LifecycleContext
    from agencystack.plugins import Plugins


@dataclass
class CliResult:
    """One in-process CLI run. It also unpacks as ``(exit_code, output)``: ``code, out = run_cli(...)``."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __iter__(self) -> Iterator[Any]:
        return iter((self.exit_code, self.output))


def run_cli(*args: str) -> CliResult:
    """The agencystack CLI, in-process, exactly as the console script runs it (in this process's environment)."""
    from agencystack.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return CliResult(code, out.getvalue(), err.getvalue())


def root_environment(root: Path) -> dict[str, str | None]:
    """The environment of a private state root ``root``: the log dir (``log``) and the plugin discovery cache
    (``cache``) beside it, and no stray ``DOMAIN``/``CLIENT_ID`` (``None``: unset). For a CLI run as a process."""
    env: dict[str, str | None] = {"AGENCYSTACK_ROOT": str(root), "AGENCYSTACK_LOG_DIR": str(root.parent / "log"),
                                  "XDG_CACHE_HOME": str(root.parent / "cache")}  # plugin discovery cache
    env.update(dict.fromkeys(("DOMAIN", "CLIENT_ID", "AGENCYSTACK_DOMAIN", "AGENCYSTACK_CLIENT_ID")))
    return env


def use_root(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    """Point AgencyStack in this process at the private state root ``root`` (see :func:`root_environment`);
    returns ``root``."""
    for key, value in root_environment(root).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    return root


def open_context(plugins: Plugins, component: str, action: str = "plan", *, client: str | None = None,
                 flags: dict[str, str] | None = None, domain: str | None = None, **options: Any) -> LifecycleContext:
    """A :class:`~agencystack.LifecycleContext` as the CLI builds one: the global settings of this process's
    environment and a redactor of its own; ``options`` go to :meth:`~agencystack.LifecycleContext.open` as they are
    (``engine``, ``progress``, ``redactor``)."""
    from agencystack.context import LifecycleContext
    from agencystack.logging import Redactor
    from agencystack.settings import GlobalSettings

    options.setdefault("redactor", Redactor())
    return LifecycleContext.open(plugins=plugins, global_settings=GlobalSettings.load(), component=component,
                                 action=action, client=client, flags=flags, domain=domain, **options)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def agencystack_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return use_root(monkeypatch, tmp_path / "agency_stack")


@pytest.fixture
def agencystack_run(agencystack_env: Path):
    return run_cli


@pytest.fixture
def agencystack_plugins(agencystack_env: Path):
    from agencystack.plugins import load

    return load()


@pytest.fixture
def agencystack_context(agencystack_plugins):
    def context(component: str, action: str = "plan", **kwargs: Any) -> LifecycleContext:
        return open_context(agencystack_plugins, component, action, **kwargs)

    return context
