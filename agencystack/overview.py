"""Fleet-wide views across every host, client and component: ``status --all``.

Each Docker host (:mod:`agencystack.fleet`: the local engine and every registered one) is asked in parallel, once
(a snapshot: ``Driver.snapshot``); each installed component placed on that host (:mod:`agencystack.placement`)
then goes through its ``status`` hooks (the core's default and the component's own: PostHog's ``/_health``,
Keycloak's admin API, every declared :class:`~agencystack.HttpProbe`), answered from its host's snapshot instead of
one engine query each. A component whose plugin is not loaded, or whose status hook fails, is still shown, from the
containers alone. A host that does not answer is reported as such (one failed row per component placed there, or
one ``engine`` row when none is) while the others answer; a root with only the local engine keeps the one error
line (exit 3) it always had. ``--host NAME`` asks that host only.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from agencystack import names
from agencystack.results import ComponentStatus, ServiceStatus, State

if TYPE_CHECKING:
    from agencystack.engine import Driver
    from agencystack.fleet import DockerHost
    from agencystack.invocation import Invocation
    from agencystack.settings import GlobalSettings
    from agencystack.state import ComponentDir


#: status hooks run at once, over every host: enough to overlap their probes' waits, few enough that hooks which
#: only compute (most of them: the engine's answers come from the snapshot) do not fight over the interpreter
#: (measured on 3 hosts x 20 projects: 4 shared workers beat 8 per host by a fifth)
HOOK_WORKERS = 4
#: the message of a row for an engine's project this root has no state of (another root's, or left behind)
NOT_IN_ROOT = "not in this root's state"


def status_all(invocation: Invocation, host: str | None = None) -> list[ComponentStatus]:
    """Every installed (client, component) through its status hooks, host by host (in parallel), plus each
    engine's projects this root does not know (another root's, or left behind)."""
    from agencystack import placement

    fleet = invocation.global_settings.fleet()
    hosts = [fleet.get(host)] if host is not None else fleet.hosts()
    root = invocation.global_settings.state_root
    placed: dict[str, list[ComponentDir]] = {}
    host_of: dict[str, str] = {}  # per client, not per component: each lookup reads the client's directory
    for found in root.installed():
        if found.client not in host_of:
            host_of[found.client] = placement.host_of(root, found.client, has_state=True)  # found: it has
        placed.setdefault(host_of[found.client], []).append(found)
    invocation.start_logging()  # each status hook logs its outcome, as 'status COMPONENT' does
    with ThreadPoolExecutor(max_workers=HOOK_WORKERS) as hooks:
        if len(hosts) == 1:
            return _on_host(invocation, hosts[0], placed.get(hosts[0].name, []), hooks, strict=fleet.single)
        with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
            answers = list(pool.map(lambda h: _on_host(invocation, h, placed.get(h.name, []), hooks), hosts))
    return [status for answer in answers for status in answer]


def _on_host(invocation: Invocation, host: DockerHost, installed: list[ComponentDir], hooks: ThreadPoolExecutor,
             strict: bool = False) -> list[ComponentStatus]:
    """The statuses of what is placed on ``host``, from one snapshot of its engine; an unreachable engine is one
    failed row per component (raised instead when ``strict``: a single-host root)."""
    from agencystack.errors import EngineUnreachable

    global_settings = invocation.global_settings.on_host(host)
    try:
        engine = invocation.engine(host)
        with engine.snapshot() as by_project:
            return _statuses(invocation, global_settings, engine, by_project, installed, hooks)
    except EngineUnreachable as exc:
        if strict:
            raise
        message = f"host {host.name} unreachable: {invocation.redact(str(exc))}"
        rows = [ComponentStatus(found.client, found.component, State.FAILED, [], message, host=host.name)
                for found in installed]
        return rows or [ComponentStatus(global_settings.host_client, "engine", State.FAILED, [], message,
                                        host=host.name)]


def _statuses(invocation: Invocation, global_settings: GlobalSettings, engine: Driver,
              by_project: dict[str, list[ServiceStatus]], installed: list[ComponentDir], hooks: ThreadPoolExecutor) -> list[ComponentStatus]:
    host = global_settings.host.name
    seen = {names.project(found.client, found.component) for found in installed}

    def one(found: ComponentDir) -> ComponentStatus:
        client, component = found.client, found.component
        status = (_through_hooks(invocation, global_settings, engine, client, component)
                  or _from_containers(invocation, client, component,
                                      by_project.get(names.project(client, component), [])))
        status.host = host
        return status

    # the hooks in parallel (the pool every host shares): their engine questions are answered from the snapshot,
    # what they wait on is their probes (HTTP through the edge); one after another, those waits were most of a
    # fleet's status
    statuses = list(hooks.map(one, installed))
    for project, services in sorted(by_project.items()):
        if project not in seen:
            client, _, component = project.partition("_")
            statuses.append(ComponentStatus.from_services(client, component, services, host=host,
                                                          message=NOT_IN_ROOT))
    return statuses


def _through_hooks(invocation: Invocation, global_settings: GlobalSettings, engine: Driver, client: str,
                   component: str) -> ComponentStatus | None:
    """The component's status as ``agencystack status COMPONENT -c CLIENT`` shows it; None when its plugin is not
    loaded (the caller falls back to the containers); a failing hook is a failed row with its one-line error."""
    from agencystack import lifecycle
    from agencystack.context import LifecycleContext
    from agencystack.errors import AgencyStackError

    if component not in invocation.plugins.components:
        return None
    try:
        context = LifecycleContext.open(plugins=invocation.plugins, global_settings=global_settings,
                                        component=component, action="status", redactor=invocation.redactor,
                                        client=None if invocation.plugins.components[component].per_host else client,
                                        engine=engine)
        if context.client != client:  # a per-host component kept under another host namespace
            return None
        return lifecycle.status(context)
    except AgencyStackError as exc:
        return ComponentStatus(client, component, State.FAILED, [], invocation.redact(str(exc)))
    except Exception as exc:  # noqa: BLE001 - a plugin's bug must not hide every other component's status
        return ComponentStatus(client, component, State.FAILED, [],
                               invocation.redact(f"status failed: {type(exc).__name__}: {exc}"))


def _from_containers(invocation: Invocation, client: str, component: str, services: list) -> ComponentStatus:
    _hint(invocation, component, services)
    if not services:
        return ComponentStatus(client, component, State.FAILED, [], "no containers: run install")
    message = "" if component in invocation.plugins.components else "plugin not loaded: containers only"
    return ComponentStatus.from_services(client, component, services, message=message)


def _hint(invocation: Invocation, component: str, services: list) -> None:
    """Name the limit setting of OOM-killed services (the component's settings prefix, when its plugin loads)."""
    if not any(s.oom_killed for s in services):
        return
    from agencystack.limits import oom_hint

    try:
        prefix = invocation.plugins.component(component).settings_model().prefix()
    except Exception:  # noqa: BLE001 - a missing or broken plugin: the state is still shown, without the hint
        return
    for service in services:
        oom_hint(service, prefix)
