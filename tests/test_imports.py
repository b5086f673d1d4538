"""Each command imports what it needs and nothing else: the heavy modules a command must NOT import, read from
``sys.modules`` of a real ``agencystack`` process once the command has run (docs/performance.md, "The floor").

A module a command does not use costs every run of it its import time (yaml ~15 ms, tabulate ~7, rich ~30, the
docker SDK with requests ~80): this test is what keeps the floor from creeping back up. The engine commands (a no-op
install, ``plan``, ``status``, ``status --all``) run against the real engine, on the whoami fixture component; the
others need no engine.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from agencystack.testing import free_port

# what no command below uses: compression and crypto of the backups, ssh, the rich console and structlog (a command
# that succeeds prints through neither), the identity provider's admin HTTP client, the retry library
NEVER = {"zstandard", "cryptography", "paramiko", "rich", "structlog", "httpx", "tenacity", "agencystack.backup"}
ENGINE = {"docker", "requests", "urllib3"}
SETTINGS = {"pydantic", "pydantic_settings"}

PROBE = """
import json, sys
from agencystack.cli import main
try:
    code = main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def imported(tmp_path: Path, *argv: str) -> set[str]:
    """The modules (and their top-level packages) a fresh ``agencystack ARGV`` process holds when it ends."""
    out = tmp_path / f"modules-{secrets.token_hex(3)}.json"
    result = subprocess.run([sys.executable, "-c", PROBE, str(out), *argv], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, env=dict(os.environ))
    found = json.loads(out.read_text())
    assert found["code"] in (0, None), (argv, result.stderr[-2000:])
    return set(found["modules"]) | {m.split(".")[0] for m in found["modules"]}


def assert_none(loaded: set[str], forbidden: set[str], argv: tuple[str, ...]) -> None:
    assert not loaded & forbidden, f"agencystack {' '.join(argv)} imported {sorted(loaded & forbidden)}"


@pytest.mark.parametrize("argv, forbidden", [
    (("--help",), NEVER | ENGINE | SETTINGS | {"yaml", "tabulate", "pluggy"}),
    (("components", "list"), NEVER | ENGINE | SETTINGS | {"yaml", "tabulate"}),
    (("render", "whoami", "--client-id", "acme"), NEVER | ENGINE | {"tabulate"}),
])
def test_a_command_without_the_engine_imports_neither_the_engine_nor_what_it_does_not_print(
        with_plugins, tmp_path, argv, forbidden) -> None:
    assert_none(imported(tmp_path, *argv), forbidden, argv)


@pytest.mark.engine
def test_engine_commands_import_only_what_they_use(with_plugins, agencystack_run, images, engine, docker_client,
                                                     tmp_path) -> None:
    client = f"t{secrets.token_hex(4)}"
    args = ["--client-id", client, "--set", f"WHOAMI_IMAGE={images['busybox']}", "--set",
            f"WHOAMI_PORT={free_port()}"]
    try:
        first = agencystack_run("install", "whoami", *args)
        assert first.exit_code == 0, first.output
        for argv, forbidden in [
            (("install", "whoami", "--client-id", client), NEVER | {"tabulate"}),  # the no-op re-install
            (("plan", "whoami", "--client-id", client), NEVER | {"tabulate", "yaml"}),
            (("status", "--all"), NEVER | {"yaml"}),
            (("status", "whoami", "--client-id", client), NEVER | {"yaml"}),
        ]:
            assert_none(imported(tmp_path, *argv), forbidden, argv)
    finally:
        agencystack_run("uninstall", "whoami", "--client-id", client, "--purge", "--yes")
