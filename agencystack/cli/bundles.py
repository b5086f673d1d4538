"""Bundles on the command line, printed: ``install``, ``status``, ``logs`` and ``backup`` given a bundle's name (or
``install --clients FILE``) come here from their commands (cli/lifecycle.py, cli/backup.py) for what they print.

The work is the core's (:mod:`agencystack.bulk`: validation of every client and component first, the graph, the
bundle's logs and backups); this module prints its progress on stderr as it happens, and builds the replies: the
summary table (or ``--json``) on stdout at the end.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agencystack.bulk import ClientRun, ComponentBackup
    from agencystack.bundle import Bundle
    from agencystack.cli.output import Reply
    from agencystack.cli.session import Session
    from agencystack.results import LogRequest


def install(session: Session, bundle: Bundle, *, client_id: str | None, clients_file: Path | None,
            flags: list[str] | None, parallel: int, clients_parallel: int, json_output: bool,
            host: str | None = None) -> Reply:
    """Install ``bundle`` for one client or every client of ``clients_file``; exit code 0 when every component of
    every client is there, else 1."""
    from agencystack import bulk
    from agencystack.cli.output import Reply

    multi = clients_file is not None
    runs = bulk.install_bundle(session, bundle, client_id=client_id, clients_file=clients_file, flags=flags,
                               parallel=parallel, clients_parallel=clients_parallel, host=host,
                               progress=Printer(enabled=not json_output, multi=multi))
    document = {"bundle": bundle.name, "ok": all(r.ok for r in runs),
                "clients": [{"client": r.client, "ok": r.ok, "duration": r.duration, "error": r.error,
                             "components": r.steps} for r in runs]}
    return Reply(document, lambda: summary_table(runs, multi=multi), 0 if document["ok"] else 1)


class Printer:
    """Live progress on stderr, one line per event, thread-safe: ``[client] component message`` and, indented,
    what the engine does for each of its services (a :class:`agencystack.bulk.BulkProgress`)."""

    def __init__(self, *, enabled: bool, multi: bool):
        self.enabled, self.multi = enabled, multi
        self._lock = threading.Lock()

    def _write(self, line: str) -> None:
        if self.enabled:
            with self._lock:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()

    def _who(self, client: str, component: str) -> str:
        return f"{client}/{component}" if self.multi else component

    def component(self, client: str, component: str, message: str) -> None:
        mark = "✓" if message.startswith(("ok", "unchanged")) else "✗" if message.startswith(("failed", "skipped")) \
            else "…"
        self._write(f"{mark} {self._who(client, component)}: {message}")

    def service(self, client: str, component: str, service: str, message: str) -> None:
        self._write(f"    {self._who(client, component)}/{service}: {message}")


def summary_table(runs: list[ClientRun], *, multi: bool) -> None:
    """The table (component, outcome, duration, URL) and, below it, one line per failure or skip saying why."""
    from agencystack.cli.output import table

    style = {"ok": "green", "unchanged": "green", "failed": "red", "skipped": "yellow"}
    rows: list[list] = []
    why = []
    for run in runs:
        who = [run.client] if multi else []
        if run.error:
            rows.append([*who, "-", ("failed", "red"), f"{run.duration:.1f}s", ""])
            why.append(f"{run.client}: failed: {run.error}")
        for step in run.steps:
            rows.append([*who, step.component, (step.outcome, style.get(step.outcome, "dim")), f"{step.duration:.1f}s",
                         step.url or ""])
            if step.outcome in ("failed", "skipped"):
                name = f"{run.client}/{step.component}" if multi else step.component
                why.append(f"{name}: {step.outcome}: {step.detail}")
    table([*(["CLIENT"] if multi else []), "COMPONENT", "OUTCOME", "DURATION", "URL"], rows)
    for line in why:
        print(line)
    failed = [f"{r.client}/{s.component}" if multi else s.component for r in runs for s in r.steps
              if s.outcome == "failed"] + [r.client for r in runs if r.error]
    skipped = [f"{r.client}/{s.component}" if multi else s.component for r in runs for s in r.steps
               if s.outcome == "skipped"]
    if failed or skipped:
        print(f"{len(failed)} failed ({', '.join(failed) or '-'}), {len(skipped)} skipped "
              f"({', '.join(skipped) or '-'}): fix the cause and run the same command again (it completes only what "
              "is missing)", file=sys.stderr)


def logs(session: Session, bundle: Bundle, client_id: str | None, request: LogRequest, *,
         json_output: bool) -> Reply | None:
    """The bundle's logs: printed as they arrive (``component/service | text``), or under --json one document."""
    from agencystack import bulk
    from agencystack.cli.output import Reply

    width, lines = bulk.logs(session, bundle, client_id, request)
    if json_output:
        return Reply({"bundle": bundle.name, "lines": [{"component": component, "service": line.service,
                                                         "text": line.text} for component, line in lines]})
    for component, line in lines:
        sys.stdout.write(f"{component + '/' + line.service:<{width}} | {session.redactor.text(line.text)}\n")
        sys.stdout.flush()
    return None


def backup(session: Session, bundle: Bundle, client_id: str | None, *, json_output: bool, **options) -> Reply:
    """Every installed component of the bundle backed up; each printed as it ends (failures as ``error:`` lines on
    stderr); exit code 1 when any failed."""
    from agencystack import bulk
    from agencystack.cli.output import Reply, say

    def report(done: ComponentBackup) -> None:
        if json_output:
            return
        if done.ok:
            say(f"{done.component}: {done.archive} ({done.size} bytes, {done.seconds:.1f}s)")
        else:
            print(f"error: {done.component}: {done.error}", file=sys.stderr)

    results = bulk.backup(session, bundle, client_id, report=report, **options)
    rows = [{"component": r.component, "ok": True, "archive": r.archive, "size": r.size} if r.ok
            else {"component": r.component, "ok": False, "error": r.error} for r in results]
    failed = any(not r.ok for r in results)
    return Reply({"bundle": bundle.name, "ok": not failed, "components": rows}, None, 1 if failed else 0)
