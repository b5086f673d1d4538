"""Host-wide views across every client and component: ``status --all``.

The engine is asked once for every managed container (a snapshot); each installed component's status then goes
through its ``status`` hooks (the core's default and the component's own: PostHog's ``/_health``, Keycloak's admin
API, every declared :class:`~agencystack.HttpProbe`), answered from that snapshot instead of one engine query each. A
component whose plugin is not loaded, or whose status hook fails, is still shown, from the containers alone.
"""

from __future__ import annotations

from typing import Any

from agencystack import names
from agencystack.results import ComponentStatus, State


def status_all(session: Any) -> list[ComponentStatus]:
    """Every installed (client, component) through its status hooks, plus the engine's projects this root does
    not know (another root's, or left behind). The engine is asked once (``Driver.snapshot``): every status hook
    that asks for its project's containers while the snapshot is held is answered from it."""
    engine = session.engine()
    with engine.snapshot() as by_project:
        session.start_logging()  # each status hook logs its outcome, as 'status COMPONENT' does
        return _statuses(session, engine, by_project)


def _statuses(session: Any, engine: Any, by_project: dict[str, list]) -> list[ComponentStatus]:
    seen = set()
    statuses = []
    for found in session.global_settings.state_root.installed():
        client, component = found.client, found.component
        project = names.project(client, component)
        seen.add(project)
        statuses.append(_through_hooks(session, engine, client, component)
                        or _from_containers(session, client, component, by_project.get(project, [])))
    for project, services in sorted(by_project.items()):
        if project not in seen:
            client, _, component = project.partition("_")
            statuses.append(ComponentStatus.from_services(client, component, services,
                                                          message="not in this root's state"))
    return statuses


def _through_hooks(session: Any, engine: Any, client: str, component: str) -> ComponentStatus | None:
    """The component's status as ``agencystack status COMPONENT -c CLIENT`` shows it; None when its plugin is not
    loaded (the caller falls back to the containers); a failing hook is a failed row with its one-line error."""
    from agencystack import lifecycle
    from agencystack.context import LifecycleContext
    from agencystack.errors import AgencyStackError

    if component not in session.plugins.components:
        return None
    try:
        context = LifecycleContext.open(plugins=session.plugins, global_settings=session.global_settings,
                                        component=component, action="status", redactor=session.redactor,
                                        client=None if session.plugins.components[component].per_host else client,
                                        engine=engine)
        if context.client != client:  # a per-host component kept under another host namespace
            return None
        return lifecycle.status(context)
    except AgencyStackError as exc:
        return ComponentStatus(client, component, State.FAILED, [], session.redact(str(exc)))
    except Exception as exc:  # noqa: BLE001 - a plugin's bug must not hide every other component's status
        return ComponentStatus(client, component, State.FAILED, [],
                               session.redact(f"status failed: {type(exc).__name__}: {exc}"))


def _from_containers(session: Any, client: str, component: str, services: list) -> ComponentStatus:
    _hint(session, component, services)
    if not services:
        return ComponentStatus(client, component, State.FAILED, [], "no containers: run install")
    message = "" if component in session.plugins.components else "plugin not loaded: containers only"
    return ComponentStatus.from_services(client, component, services, message=message)


def _hint(session: Any, component: str, services: list) -> None:
    """Name the limit setting of OOM-killed services (the component's settings prefix, when its plugin loads)."""
    if not any(s.oom_killed for s in services):
        return
    from agencystack.limits import oom_hint

    try:
        prefix = session.plugins.component(component).settings_model().prefix()
    except Exception:  # noqa: BLE001 - a missing or broken plugin: the state is still shown, without the hint
        return
    for service in services:
        oom_hint(service, prefix)
