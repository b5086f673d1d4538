"""The reliability suite's test bed (the ``bed`` fixture itself is in conftest.py): the ``notes`` fixture component
(web + Postgres + migrate job, in tests/fixtures/thirdparty) driven through the real CLI as separate processes, as
an operator's scripts would.

Trials are bounded for CI (each test has a small default; ``AGENCYSTACK_RELIABILITY_TRIALS=N`` runs N of each
randomized kind instead). Each test
records its figures with :func:`record`; they are printed at the end of the pytest run ("reliability figures")
and kept in the README's "Reliability" section.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import cli_argv, cli_process

COMPONENT = "notes"
FIGURES: list[tuple[str, int, int, str]] = []


def trials(default: int = 3) -> int:
    """How many trials a randomized test runs: AGENCYSTACK_RELIABILITY_TRIALS, else ``default``."""
    return max(1, int(os.environ.get("AGENCYSTACK_RELIABILITY_TRIALS", default)))


def record(name: str, trials_run: int, successes: int, note: str = "") -> None:
    FIGURES.append((name, trials_run, successes, note))
    print(f"reliability: {name}: {successes}/{trials_run} {note}".rstrip())


@dataclass
class Bed:
    """Where the suite's state lives, every output the CLI produced (for the secret-leak scan), helpers."""

    work: Path
    env: dict[str, str]
    prefix: str
    docker: object
    outputs: list[str] = field(default_factory=list)
    clients: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)  # every secret value ever saved (for the leak scan)

    @property
    def root(self) -> Path:
        return Path(self.env["AGENCYSTACK_ROOT"])

    @property
    def log_dir(self) -> Path:
        return Path(self.env["AGENCYSTACK_LOG_DIR"])

    def client(self, name: str) -> str:
        client = f"{self.prefix}-{name}"
        self.clients.add(client)
        return client

    def cli(self, *args: str, expect: int | None = 0, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
        return cli_process(*args, env=env or self.env, expect=expect, timeout=timeout, outputs=self.outputs)

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen(cli_argv(*args), env=env or self.env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)

    def finish(self, process: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
        out, _ = process.communicate(timeout=timeout)
        self.outputs.append(out or "")
        return process.returncode, out or ""

    def saved(self, client: str) -> dict[str, str]:
        from agencystack import StateRoot

        saved = StateRoot(self.root).component(client, COMPONENT).read_env()
        self.secrets.update(v for k, v in saved.items() if k.endswith("PASSWORD") and v)
        return saved

    def container(self, client: str, service: str):
        return self.docker.containers.get(f"{client}_{COMPONENT}-{service}-1")

    def psql(self, client: str, sql: str, password: str | None = None) -> tuple[int, str]:
        """Run SQL in the client's database over TCP with ``password`` (default: the saved one)."""
        password = self.saved(client)["NOTES_DB_PASSWORD"] if password is None else password
        code, out = self.container(client, "db").exec_run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "notes", "-d", "notes",
             "-c", sql], environment={"PGPASSWORD": password})
        return code, out.decode("utf-8", "replace").strip()

    def healthy(self, client: str) -> tuple[bool, str]:
        """The install's end state as a user sees it: status exits 0 and the saved password opens the database."""
        status = self.cli("status", COMPONENT, "-c", client, expect=None)
        if status.returncode != 0:
            return False, f"status exit {status.returncode}: {status.stdout}{status.stderr}"
        code, out = self.psql(client, "SELECT count(*) FROM notes")
        return code == 0, out

    def purge(self, client: str) -> None:
        self.cli("uninstall", COMPONENT, "-c", client, "--purge", "--yes", expect=None)


