"""Bundles on the command line: ``install``, ``status``, ``logs`` and ``backup`` given a bundle's name (or
``install --clients FILE``) come here from their commands (cli/lifecycle.py, cli/backup.py).

Everything a bulk install will do is validated first, in this thread, for every client and component (the clients
file, settings, ``--set`` keys): bad input exits 2 with nothing installed. Then :mod:`agencystack.bulk` runs the
graph; progress goes to stderr as it happens, the summary table (or ``--json``) to stdout at the end.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agencystack.bulk import ClientRun
    from agencystack.bundle import Bundle
    from agencystack.cli.session import Session


def find(session: Session, name: str | None) -> Bundle | None:
    """The bundle called ``name`` (None when ``name`` is a component, or nothing: the caller reports it)."""
    return session.plugins.bundle(name) if name else None


def single(session: Session, name: str) -> Bundle:
    """``name`` as a bundle: the bundle itself, or a bundle of the one component (``install X --clients F``)."""
    from agencystack.bundle import Bundle

    found = find(session, name)
    if found is not None:
        return found
    session.plugins.component(name)  # unknown: exit 2 naming the known ones
    return Bundle(name, (name,))


def members(session: Session, bundle: Bundle) -> list[str]:
    """The bundle's components in dependency order (requirements included)."""
    from agencystack.bundle import resolve

    return list(resolve(session.plugins.components, bundle))


# -- install -------------------------------------------------------------------------------------------------------
def install(session: Session, bundle: Bundle, *, client_id: str | None, clients_file: Path | None,
            flags: list[str] | None, parallel: int, clients_parallel: int, json_output: bool,
            host: str | None = None) -> int:
    """Install ``bundle`` for one client or every client of ``clients_file`` (``host``: where new clients are
    placed, as ``--host``); the exit code: 0 when every component of every client is there, else 1."""
    from agencystack import bulk, names
    from agencystack.bundle import resolve
    from agencystack.clients_file import ClientSpec, load
    from agencystack.errors import UsageError

    if parallel < 1 or clients_parallel < 1:
        raise UsageError("--parallel and --clients-parallel must be at least 1")
    waits = resolve(session.plugins.components, bundle)
    if clients_file is not None:
        if client_id is not None:
            raise UsageError("give --clients FILE or --client-id, not both")
        specs = load(clients_file)
    else:
        specs = [ClientSpec(names.client_id(client_id or session.global_settings.client_id))]
    common = names.setting_pairs(flags)
    multi = clients_file is not None
    printer = _Printer(enabled=not json_output, multi=multi)
    contexts = {spec.id: _contexts(session, spec, waits, common, printer, host) for spec in specs}  # validates all
    session.engine()  # after the input is valid: one connection for every thread, pinged here (exit 3 before
    # anything starts)
    session.start_logging()

    def run_one(client: str) -> ClientRun:
        steps = bulk.install(contexts[client].__getitem__, waits, parallel=parallel,
                             report=lambda component, message: printer.component(client, component, message))
        return bulk.ClientRun(client, steps)

    runs = bulk.install_clients([s.id for s in specs], run_one, parallel=clients_parallel)
    if json_output:
        from agencystack.cli.output import emit_json

        emit_json({"bundle": bundle.name, "ok": all(r.ok for r in runs),
                   "clients": [{"client": r.client, "ok": r.ok, "duration": r.duration, "error": r.error,
                                "components": r.steps} for r in runs]}, session.redactor)
    else:
        summary_table(runs, multi=multi)
    return 0 if all(r.ok for r in runs) else 1


def _contexts(session: Session, spec: Any, waits: dict[str, tuple[str, ...]], common: dict[str, str],
              printer: _Printer, host: str | None = None) -> dict[str, Any]:
    """One install context per component for the client ``spec`` (settings loaded: bad ones exit 2 here)."""
    from agencystack.errors import UsageError

    plugins, base = session.plugins, session.global_settings
    chosen = {**common, **spec.settings}
    routed: dict[str, dict[str, str]] = {name: {} for name in waits}
    for key, value in chosen.items():
        owner = _owner(plugins, list(waits), key)
        if owner is None:
            raise UsageError(f"setting {key} (client {spec.id}) belongs to no component of this install "
                             f"({', '.join(waits)})")
        routed[owner][key] = value
    client_globals = base.model_copy(update={"domain": spec.domain}) if spec.domain else base
    contexts = {}
    for name in waits:
        component = plugins.component(name)
        pairs = dict(routed[name])
        if spec.domain and not component.per_host:  # the client's hosts under its own domain, saved on install
            model = component.settings_model()
            for field, value in model.derived_defaults(client_globals).items():
                if isinstance(value, str) and (value == spec.domain or value.endswith("." + spec.domain)):
                    pairs.setdefault(model.env_key(field), value)
        contexts[name] = session.context(
            name, "install", client=spec.id, pairs=pairs, host=host,
            progress=lambda service, message, name=name: printer.service(spec.id, name, service, message))
    return contexts


def _owner(plugins: Any, components: list[str], key: str) -> str | None:
    """The component whose settings prefix ``key`` carries (the longest prefix wins)."""
    found = [(len(p), name) for name in components
             if (p := plugins.component(name).settings_model().prefix()) and key.upper().startswith(p)]
    return max(found)[1] if found else None


class _Printer:
    """Live progress on stderr, one line per event, thread-safe: ``[client] component message`` and, indented,
    what the engine does for each of its services."""

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


# -- logs and backup -----------------------------------------------------------------------------------------------
def installed_contexts(session: Session, bundle: Bundle, client_id: str | None, action: str) -> list[Any]:
    """The contexts of the bundle's components installed for the client; exit 2 when none is."""
    from agencystack.errors import UsageError

    found = [c for c in (session.context(name, action, client=client_id) for name in members(session, bundle))
             if c.dir.installed]
    if not found:
        client = client_id or session.global_settings.client_id
        raise UsageError(f"no component of bundle {bundle.name} is installed for client {client} (see 'agencystack "
                         "status --all')")
    return found


def logs(session: Session, bundle: Bundle, client_id: str | None, request: Any) -> None:
    """Every installed component's logs, interleaved as they arrive, each line ``component/service | text``."""
    import queue

    from agencystack import lifecycle
    from agencystack.errors import UsageError

    if request.services:
        raise UsageError(f"--service picks services of one component: name the component instead of bundle "
                         f"{bundle.name}")
    contexts = installed_contexts(session, bundle, client_id, "logs")
    width = max((len(f"{c.component.name}/{s.name}") for c in contexts for s in c.stack().services), default=0)
    lines: queue.Queue = queue.Queue(maxsize=1000)
    done = object()

    def pump(context: Any) -> None:
        try:
            for line in lifecycle.logs(context, request):
                lines.put((context.component.name, line))
        except Exception as exc:  # noqa: BLE001 - one component's stream ending badly ends only its lines
            lines.put((context.component.name, exc))
        finally:
            lines.put(done)

    for context in contexts:
        threading.Thread(target=pump, args=(context,), daemon=True, name=f"logs-{context.component.name}").start()
    left, failure = len(contexts), None
    while left:
        item = lines.get()
        if item is done:
            left -= 1
            continue
        component, line = item
        if isinstance(line, BaseException):
            failure = failure or line
            continue
        sys.stdout.write(f"{component + '/' + line.service:<{width}} | {session.redactor.text(line.text)}\n")
        sys.stdout.flush()
    if failure is not None:
        raise failure


def backup(session: Session, bundle: Bundle, client_id: str | None, *, json_output: bool, **options: Any) -> int:
    """Back up every installed component of the bundle, one after another; one failing does not stop the others.
    Returns the exit code (1 when any failed)."""
    from agencystack.backup import operations
    from agencystack.cli.output import emit_json, say
    from agencystack.errors import AgencyStackError

    results, failed = [], []
    for context in installed_contexts(session, bundle, client_id, "backup"):
        name = context.component.name
        try:
            result = operations.backup(context, **options)
        except AgencyStackError as exc:
            failed.append(name)
            results.append({"component": name, "ok": False, "error": session.redactor.text(str(exc))})
            if not json_output:
                print(f"error: {name}: {session.redactor.text(str(exc))}", file=sys.stderr)
            continue
        results.append({"component": name, "ok": True, "archive": str(result.archive), "size": result.size})
        if not json_output:
            say(f"{name}: {result.archive} ({result.size} bytes, {result.seconds:.1f}s)")
    if json_output:
        emit_json({"bundle": bundle.name, "ok": not failed, "components": results}, session.redactor)
    return 1 if failed else 0
