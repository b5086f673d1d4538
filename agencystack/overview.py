"""Host-wide views across every client and component: ``status --all`` in one engine query."""

from __future__ import annotations

from typing import Any

from agencystack import names, state
from agencystack.results import ComponentStatus, State


def status_all(session: Any) -> list[ComponentStatus]:
    """Aggregate every managed project's containers (one engine list call) plus installed-but-empty clients."""
    from agencystack.engine import connect

    engine = connect(session.global_settings.docker_host)
    by_project = engine.status(None)
    seen = set()
    statuses = []
    for client, component in state.installed(session.global_settings.root):
        project = names.project(client, component)
        seen.add(project)
        services = by_project.get(project, [])
        message = "" if services else "no containers: run install"
        statuses.append(ComponentStatus.from_services(client, component, services, message=message)
                        if services else ComponentStatus(client, component, State.FAILED, [], message))
    for project, services in sorted(by_project.items()):
        if project not in seen:
            client, _, component = project.partition("_")
            statuses.append(ComponentStatus.from_services(client, component, services,
                                                          message="not in this root's state"))
    return statuses
