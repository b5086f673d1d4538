"""Installing many components (a bundle) for one client, or for many clients, at once.

:func:`install` runs one client's components as a dependency graph (``waits``: component -> what it waits for, from
:func:`agencystack.bundle.resolve`): a component starts when everything it waits for finished well, up to
``parallel`` at a time; one that fails makes everything that (transitively) waits for it *skipped*, the others
finish. Every component goes through the lifecycle's typed install (:func:`agencystack.lifecycle.install`), with its
lock, wrappers and manifest, exactly as ``agencystack install <component>`` would: a re-run converges what is there
(no changes) and completes what is missing. :func:`install_clients` does the same for many clients, a bounded number
at a time; one client's failure never stops another's.

A bundle given by name to ``install``, ``status``, ``logs`` or ``backup`` (or ``install --clients FILE``) is run
here too, from an :class:`~agencystack.invocation.Invocation`: :func:`install_bundle` validates everything a bulk
install will do first, for every client and component (the clients file, settings, ``--set`` keys assigned to the
component whose settings prefix they carry, each client's hosts under its own domain): bad input exits 2 with
nothing installed; :func:`statuses`, :func:`logs` (every component's lines interleaved as they arrive) and
:func:`backup` (one component after another; one failing does not stop the others) work on its installed members.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from agencystack.bundle import Bundle
    from agencystack.clients_file import ClientSpec
    from agencystack.context import LifecycleContext
    from agencystack.invocation import Invocation
    from agencystack.plugin_host import Plugins
    from agencystack.results import ComponentStatus, LogLine, LogRequest

#: outcomes of one component in a bulk install
OK, UNCHANGED, FAILED, SKIPPED = "ok", "unchanged", "failed", "skipped"
DEFAULT_PARALLEL = 4
DEFAULT_CLIENTS_PARALLEL = 4


@dataclass
class Step:
    """What became of one component: outcome, how long it took, where users reach it, and why (one line)."""

    component: str
    outcome: str = "pending"
    duration: float = 0.0
    url: str | None = None
    detail: str = ""
    started_at: float | None = None  # epoch seconds, for ordering and overlap
    finished_at: float | None = None


@dataclass
class ClientRun:
    """One client's bulk install."""

    client: str
    steps: list[Step] = field(default_factory=list)
    error: str = ""  # why nothing could start for this client (bad settings), else empty
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error and all(s.outcome in (OK, UNCHANGED) for s in self.steps)


#: (component, message): a line of live progress
Report = Callable[[str, str], None]


def install(open_context: Callable[[str], LifecycleContext], waits: dict[str, tuple[str, ...]], *,
            parallel: int = DEFAULT_PARALLEL, report: Report | None = None) -> list[Step]:
    """Install the components of ``waits`` (in its order for the results), each after what it waits for, up to
    ``parallel`` at a time. ``open_context(component)`` builds the component's install context."""
    report = report or (lambda component, message: None)
    steps = {name: Step(name) for name in waits}
    pending = dict(waits)
    running: dict[Future, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="install") as pool:
        while pending or running:
            moved = False
            for name, after in list(pending.items()):
                bad = next((a for a in after if steps[a].outcome in (FAILED, SKIPPED)), None)
                if bad is not None:
                    del pending[name]
                    steps[name].outcome = SKIPPED
                    steps[name].detail = f"{bad} {'failed' if steps[bad].outcome == FAILED else 'was skipped'}"
                    report(name, f"skipped: {steps[name].detail}")
                    moved = True
                elif all(steps[a].outcome in (OK, UNCHANGED) for a in after):
                    del pending[name]
                    running[pool.submit(_one, open_context, steps[name], report)] = name
                    moved = True
            if not running:
                if not moved:  # resolve() never gives this: a wait on something that is not in the graph
                    raise ValueError(f"cannot order {', '.join(pending)}: they wait for what is not installed here")
                continue  # only skips happened in this round: look again
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                del running[future]
                future.result()  # _one never raises but for bugs and interrupts
    return [steps[name] for name in waits]


def _one(open_context: Callable[[str], LifecycleContext], step: Step, report: Report) -> None:
    from agencystack import lifecycle
    from agencystack.errors import AgencyStackError

    step.started_at = time.time()
    started = time.monotonic()
    report(step.component, "installing")
    try:
        context = open_context(step.component)
        outcome = lifecycle.install(context)
    except AgencyStackError as exc:
        step.outcome, step.detail = FAILED, " ".join(str(exc).split())
    except Exception as exc:  # noqa: BLE001 - a plugin's bug fails its component only; the CLI says so in one line
        step.outcome, step.detail = FAILED, " ".join(f"unexpected {type(exc).__name__}: {exc}".split())
    else:
        changes = outcome.changes or {}
        step.outcome = UNCHANGED if changes and set(changes) <= {"unchanged"} else OK
        step.detail = outcome.summary
        step.url = outcome.url or context.facts.get("url")  # what the default install recorded (defaults._where)
    step.duration = round(time.monotonic() - started, 2)
    step.finished_at = time.time()
    report(step.component, f"{step.outcome} in {step.duration:.1f}s" + (f": {step.detail}" if step.outcome == FAILED
                                                                          else ""))


def install_clients(clients: list[str], run_one: Callable[[str], ClientRun], *,
                    parallel: int = DEFAULT_CLIENTS_PARALLEL) -> list[ClientRun]:
    """``run_one(client)`` for every client, up to ``parallel`` clients at a time; a client whose run raises an
    AgencyStackError is reported with that error, the others go on. Results in the order of ``clients``."""
    from agencystack.errors import AgencyStackError

    def guarded(client: str) -> ClientRun:
        started = time.monotonic()
        try:
            result = run_one(client)
        except AgencyStackError as exc:
            result = ClientRun(client, error=" ".join(str(exc).split()))
        result.duration = round(time.monotonic() - started, 2)
        return result

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="client") as pool:
        return list(pool.map(guarded, clients))


# -- a bundle, from an invocation --------------------------------------------------------------------------------
class BulkProgress(Protocol):
    """Where a bulk install reports as it goes (the CLI prints it on stderr): each component's step, and what the
    engine does for each of its services."""

    def component(self, client: str, component: str, message: str) -> None: ...

    def service(self, client: str, component: str, service: str, message: str) -> None: ...


class _Silent:
    def component(self, client: str, component: str, message: str) -> None:
        pass

    def service(self, client: str, component: str, service: str, message: str) -> None:
        pass


def find(invocation: Invocation, name: str | None) -> Bundle | None:
    """The bundle called ``name`` (None when ``name`` is a component, or nothing: the caller reports it)."""
    return invocation.plugins.bundle(name) if name else None


def single(invocation: Invocation, name: str) -> Bundle:
    """``name`` as a bundle: the bundle itself, or a bundle of the one component (``install X --clients F``)."""
    from agencystack.bundle import Bundle

    found = find(invocation, name)
    if found is not None:
        return found
    invocation.plugins.component(name)  # unknown: exit 2 naming the known ones
    return Bundle(name, (name,))


def members(invocation: Invocation, bundle: Bundle) -> list[str]:
    """The bundle's components in dependency order (requirements included)."""
    from agencystack.bundle import resolve

    return list(resolve(invocation.plugins.components, bundle))


def install_bundle(invocation: Invocation, bundle: Bundle, *, client_id: str | None = None,
                   clients_file: Path | None = None, flags: list[str] | None = None,
                   parallel: int = DEFAULT_PARALLEL, clients_parallel: int = DEFAULT_CLIENTS_PARALLEL,
                   host: str | None = None, progress: BulkProgress | None = None) -> list[ClientRun]:
    """Install ``bundle`` for one client or every client of ``clients_file`` (``host``: where new clients are
    placed, as ``--host``). Every context is opened (validated) before the engine is asked anything."""
    from agencystack import names
    from agencystack.bundle import resolve
    from agencystack.clients_file import ClientSpec, load
    from agencystack.errors import UsageError

    if parallel < 1 or clients_parallel < 1:
        raise UsageError("--parallel and --clients-parallel must be at least 1")
    waits = resolve(invocation.plugins.components, bundle)
    if clients_file is not None:
        if client_id is not None:
            raise UsageError("give --clients FILE or --client-id, not both")
        specs = load(clients_file)
    else:
        specs = [ClientSpec(names.client_id(client_id or invocation.global_settings.client_id))]
    common = names.setting_pairs(flags)
    progress = progress or _Silent()
    opened = {spec.id: contexts(invocation, spec, waits, common, progress, host) for spec in specs}  # validates all
    invocation.engine()  # after the input is valid: one connection for every thread, pinged here (exit 3 before
    # anything starts)
    invocation.start_logging()

    def run_one(client: str) -> ClientRun:
        steps = install(opened[client].__getitem__, waits, parallel=parallel,
                        report=lambda component, message: progress.component(client, component, message))
        return ClientRun(client, steps)

    return install_clients([s.id for s in specs], run_one, parallel=clients_parallel)


def contexts(invocation: Invocation, spec: ClientSpec, waits: dict[str, tuple[str, ...]], common: dict[str, str],
             progress: BulkProgress | None = None, host: str | None = None) -> dict[str, LifecycleContext]:
    """One install context per component for the client ``spec`` (settings loaded: bad ones exit 2 here): each
    setting of ``common`` (``--set``) and of the client's goes to the component whose settings prefix it carries;
    with a domain of the client's own, each component's hosts under it (saved on install, as flags are)."""
    from agencystack.errors import UsageError

    plugins, base = invocation.plugins, invocation.global_settings
    progress = progress or _Silent()
    chosen = {**common, **spec.settings}
    routed: dict[str, dict[str, str]] = {name: {} for name in waits}
    for key, value in chosen.items():
        found = owner(plugins, list(waits), key)
        if found is None:
            raise UsageError(f"setting {key} (client {spec.id}) belongs to no component of this install "
                             f"({', '.join(waits)})")
        routed[found][key] = value
    client_globals = base.model_copy(update={"domain": spec.domain}) if spec.domain else base
    opened = {}
    for name in waits:
        component = plugins.component(name)
        pairs = dict(routed[name])
        if spec.domain and not component.per_host:  # the client's hosts under its own domain, saved on install
            model = component.settings_model()
            for field_name, value in model.derived_defaults(client_globals).items():
                if isinstance(value, str) and (value == spec.domain or value.endswith("." + spec.domain)):
                    pairs.setdefault(model.env_key(field_name), value)
        opened[name] = invocation.context(
            name, "install", client=spec.id, pairs=pairs, host=host,
            progress=lambda service, message, name=name: progress.service(spec.id, name, service, message))
    return opened


def owner(plugins: Plugins, components: list[str], key: str) -> str | None:
    """The component whose settings prefix ``key`` carries (the longest prefix wins)."""
    found = [(len(p), name) for name in components
             if (p := plugins.component(name).settings_model().prefix()) and key.upper().startswith(p)]
    return max(found)[1] if found else None


def statuses(invocation: Invocation, components: list[str], client: str | None = None,
             host: str | None = None) -> list[ComponentStatus]:
    """The status of each of ``components`` for the client (every context opened, so validated, first), each
    naming the host it runs on."""
    from agencystack import lifecycle

    opened = [invocation.context(name, "status", client=client, host=host) for name in components]
    found = [lifecycle.status(context) for context in opened]
    for context, status in zip(opened, found, strict=True):
        status.host = context.host.name
    return found


def installed_contexts(invocation: Invocation, bundle: Bundle, client_id: str | None,
                       action: str) -> list[LifecycleContext]:
    """The contexts of the bundle's components installed for the client; exit 2 when none is."""
    from agencystack.errors import UsageError

    found = [c for c in (invocation.context(name, action, client=client_id) for name in members(invocation, bundle))
             if c.dir.installed]
    if not found:
        client = client_id or invocation.global_settings.client_id
        raise UsageError(f"no component of bundle {bundle.name} is installed for client {client} (see 'agencystack "
                         "status --all')")
    return found


def logs(invocation: Invocation, bundle: Bundle, client_id: str | None,
         request: LogRequest) -> tuple[int, Iterator[tuple[str, LogLine]]]:
    """Every installed component's logs, interleaved as they arrive: ``(width, lines)``, ``width`` the longest
    ``component/service`` and ``lines`` ``(component, line)`` pairs. A component's stream that fails ends only its
    lines; its error is raised once the others have ended. Bad input raises before any line is asked for."""
    from agencystack.errors import UsageError

    if request.services:
        raise UsageError(f"--service picks services of one component: name the component instead of bundle "
                         f"{bundle.name}")
    opened = installed_contexts(invocation, bundle, client_id, "logs")
    width = max((len(f"{c.component.name}/{s.name}") for c in opened for s in c.stack().services), default=0)
    return width, _interleaved(opened, request)


def _interleaved(opened: list[LifecycleContext], request: LogRequest) -> Iterator[tuple[str, LogLine]]:
    import queue
    import threading

    from agencystack import lifecycle

    lines: queue.Queue = queue.Queue(maxsize=1000)
    done = object()

    def pump(context: LifecycleContext) -> None:
        try:
            for line in lifecycle.logs(context, request):
                lines.put((context.component.name, line))
        except Exception as exc:  # noqa: BLE001 - one component's stream ending badly ends only its lines
            lines.put((context.component.name, exc))
        finally:
            lines.put(done)

    for context in opened:
        threading.Thread(target=pump, args=(context,), daemon=True, name=f"logs-{context.component.name}").start()
    left, failure = len(opened), None
    while left:
        item = lines.get()
        if item is done:
            left -= 1
            continue
        component, line = item
        if isinstance(line, BaseException):
            failure = failure or line
            continue
        yield component, line
    if failure is not None:
        raise failure


@dataclass
class ComponentBackup:
    """One component's part of a bundle's backup: its archive, or why it failed (one redacted line)."""

    component: str
    ok: bool
    archive: str = ""
    size: int = 0
    seconds: float = 0.0
    error: str = ""


def backup(invocation: Invocation, bundle: Bundle, client_id: str | None, *,
           report: Callable[[ComponentBackup], None] | None = None, dest: Path | None = None,
           keep_last: int | None = None, keep_days: float | None = None,
           key_file: Path | None = None) -> list[ComponentBackup]:
    """Back up every installed component of the bundle, one after another (``report``: each as it ends); one
    failing does not stop the others."""
    from agencystack.backup import operations
    from agencystack.errors import AgencyStackError

    results = []
    for context in installed_contexts(invocation, bundle, client_id, "backup"):
        name = context.component.name
        try:
            result = operations.backup(context, dest=dest, keep_last=keep_last, keep_days=keep_days,
                                       key_file=key_file)
        except AgencyStackError as exc:
            done = ComponentBackup(name, False, error=invocation.redactor.text(str(exc)))
        else:
            done = ComponentBackup(name, True, archive=str(result.archive), size=result.size,
                                   seconds=result.seconds)
        results.append(done)
        if report is not None:
            report(done)
    return results
