"""Host-wide views across every client and component: ``status --all`` in one engine query."""

from __future__ import annotations

from typing import Any

from agencystack import names, state
from agencystack.results import ComponentStatus, State


def status_all(session: Any) -> list[ComponentStatus]:
    """Aggregate every managed project's containers plus installed-but-empty clients. The engine is asked once
    (a snapshot of every project, see ``Driver.snapshot``): whatever asks it for a project's status while the
    snapshot is held is answered from it."""
    with session.engine().snapshot() as by_project:
        return _statuses(session, by_project)


def _statuses(session: Any, by_project: dict[str, list]) -> list[ComponentStatus]:
    seen = set()
    statuses = []
    for client, component in state.installed(session.global_settings.root):
        project = names.project(client, component)
        seen.add(project)
        services = by_project.get(project, [])
        _hint(session, component, services)
        message = "" if services else "no containers: run install"
        statuses.append(ComponentStatus.from_services(client, component, services, message=message)
                        if services else ComponentStatus(client, component, State.FAILED, [], message))
    for project, services in sorted(by_project.items()):
        if project not in seen:
            client, _, component = project.partition("_")
            statuses.append(ComponentStatus.from_services(client, component, services,
                                                          message="not in this root's state"))
    return statuses


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
