"""Desired against actual: the plan, per service, from a deployment and what the engine lists. Pure.

A service's container is ``<project>-<service>-1`` with compose's labels and ours; ``io.agencystack.config-hash``
(``Service.config_hash``) decides a recreate, as does a changed image id for the same reference, a missing network
attachment (a create interrupted before every network was connected) or more than one container for the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agencystack.engine import labels, resources
from agencystack.engine.interface import Change, Deployment, Plan
from agencystack.engine.observe import Actual, Observed, normalize_ref
from agencystack.errors import ComponentError
from agencystack.stack import Service, interpolate_all


@dataclass
class Action:
    """One service's (or orphan's) step in an apply: the public :class:`Change` plus what it acts on."""

    change: Change
    remove: list[Observed] = field(default_factory=list)  # containers to stop and remove first
    start: Observed | None = None  # the existing container to start (kind "start")
    current: Observed | None = None  # the existing, current container (kind "unchanged" or "update")
    config_hash: str = ""
    limits: bool = False  # kind "start": apply the service's limits to the container before starting it


@dataclass
class Diff:
    project: str
    actions: list[Action]
    create_networks: list[str]
    create_volumes: list[str]
    recreate_networks: list[str] = field(default_factory=list)  # their settings changed (``internal``)
    remove_networks: list[str] = field(default_factory=list)  # the project's, no longer in the stack

    def plan(self) -> Plan:
        return Plan(project=self.project, changes=[a.change for a in self.actions],
                    create_networks=list(self.create_networks), create_volumes=list(self.create_volumes),
                    recreate_networks=list(self.recreate_networks), remove_networks=list(self.remove_networks))


def resolved_env(deployment: Deployment, service: Service) -> dict[str, str]:
    try:
        return interpolate_all(service.environment, deployment.env)
    except KeyError as exc:
        raise ComponentError(f"service {service.name!r} of {deployment.project} references unset setting "
                             f"{exc.args[0]}") from None
    except ValueError as exc:
        raise ComponentError(f"service {service.name!r} of {deployment.project} has a malformed ${{...}} "
                             f"reference in its environment ({exc})") from None


def config_hash(deployment: Deployment, service: Service) -> str:
    resolved_env(deployment, service)  # a readable error for a missing key
    return service.config_hash(deployment.env)


def service_networks(deployment: Deployment, service: Service) -> dict[str, list[str]]:
    """{engine network name: aliases} for a service: its name on the project's own networks plus listed aliases.

    On an external network (shared with other projects, e.g. the edge network every client's routed services join)
    the service name is NOT an alias: ``capture`` of one client must never resolve to another client's container.
    """
    out: dict[str, list[str]] = {}
    for net, aliases in service.networks.items():
        spec = deployment.stack.network(net)
        own = [] if spec.external else [service.name]
        engine_name = labels.network_name(deployment.project, net, spec.external)
        out[engine_name] = own + [a for a in aliases if a != service.name]
    return out


def diff(deployment: Deployment, actual: Actual) -> Diff:
    """Desired (the deployment) against actual (what the engine lists): the plan, per service. Pure."""
    project = deployment.project
    stack = deployment.stack
    by_service: dict[str, list[Observed]] = {}
    actions: list[Action] = []
    for c in actual.containers:
        if c.is_oneoff:
            if c.is_helper:  # a helper left behind by an interrupted volume export/import
                actions.append(Action(Change(c.name, "remove", "leftover helper container"), remove=[c]))
            continue  # an operator's `docker compose run`: not ours to touch
        if not c.service:
            continue
        by_service.setdefault(c.service, []).append(c)

    wanted = {s.name for s in stack.services}
    for name in sorted(set(by_service) - wanted):
        actions.append(Action(Change(name, "remove", "orphaned"), remove=by_service[name]))

    for level in stack.levels():
        for name in level:
            service = stack.service(name)
            found = by_service.get(name, [])
            if service.replicas == 0:
                if found:
                    actions.append(Action(Change(name, "remove", "replicas 0"), remove=found))
                else:
                    actions.append(Action(Change(name, "unchanged", "replicas 0")))
                continue
            digest = config_hash(deployment, service)
            actions.append(_service_action(deployment, service, found, actual, digest))

    desired = {labels.network_name(project, n.name): n for n in stack.networks if not n.external}
    create_networks = [name for name in desired if name not in actual.networks]
    recreate_networks = [name for name, net in desired.items()
                         if name in actual.networks and bool(actual.networks[name].get("Internal")) != net.internal]
    remove_networks = sorted(set(actual.networks) - set(desired))  # listed by the project's label: ours
    for action in actions:  # a network is recreated with nothing attached: so are the services on it
        changed = sorted(n for c in by_service.get(action.change.service, []) for n in c.networks
                         if n in recreate_networks)
        if changed and action.change.kind in ("unchanged", "start", "update"):
            action.change = Change(action.change.service, "recreate", f"network {changed[0]} changes")
            action.remove, action.start, action.current = by_service[action.change.service], None, None
    create_volumes = [labels.volume_name(project, v.name) for v in stack.volumes
                      if not v.external and labels.volume_name(project, v.name) not in actual.volumes]
    return Diff(project, actions, create_networks, create_volumes, recreate_networks, remove_networks)


def _service_action(deployment: Deployment, service: Service, found: list[Observed], actual: Actual,
                    digest: str) -> Action:
    name = service.name
    expected = labels.container_name(deployment.project, name)
    main = [c for c in found if c.name == expected]
    if not main:
        reason = "leftover containers" if found else "not created"
        return Action(Change(name, "create", reason), remove=found, config_hash=digest)
    current = main[0]
    recreate = None
    if len(found) > 1:
        recreate = "more than one container"
    elif current.config_hash != digest:
        recreate = "config hash differs" if current.config_hash else "not created by agencystack"
    elif current.image_id and actual.images.get(normalize_ref(service.image), current.image_id) != current.image_id:
        recreate = "image changed"
    elif not set(service_networks(deployment, service)) <= current.networks:
        recreate = "network attachment missing"
    elif current.state in ("paused", "dead", "removing"):
        recreate = current.state
    if recreate:
        return Action(Change(name, "recreate", recreate), remove=found, config_hash=digest)
    limits = None if service.job else resources.change(service, current.labels)  # a job's apply at its next run
    if limits and limits[0] == "recreate":
        return Action(Change(name, "recreate", limits[1]), remove=found, config_hash=digest)
    if limits and current.state in ("running", "restarting"):
        return Action(Change(name, "update", limits[1]), current=current, config_hash=digest)
    if current.state in ("running", "restarting"):
        # unchanged, but not well: a re-run must not report success over it (see LifecycleContext.deploy)
        reason = "unhealthy" if current.health == "unhealthy" else (
            "restarting" if current.state == "restarting" else "")
        return Action(Change(name, "unchanged", reason), current=current, config_hash=digest)
    if current.state == "exited" and service.job and current.exit_code == 0:
        return Action(Change(name, "unchanged", "completed"), current=current, config_hash=digest)
    reason = "created, not started" if current.state == "created" else (
        f"exited ({current.exit_code})" if current.exit_code is not None else current.state)
    if limits:
        reason += f"; {limits[1]}"
    return Action(Change(name, "start", reason), start=current, config_hash=digest, limits=bool(limits))


def volume_engine_name(deployment: Deployment, volume: str) -> str:
    external = any(v.name == volume and v.external for v in deployment.stack.volumes)
    return labels.volume_name(deployment.project, volume, external)
