"""A stack's service as a Swarm service spec (pure: no engine call), and the digest that decides an update.

Each stack service becomes one Swarm service ``<project>_<service>`` (``docker stack deploy``'s name, with its
``com.docker.stack.namespace`` label, so ``docker stack ps <project>`` shows it):

- the core's limits become resource limits *and* reservations (the scheduler places by reservations);
- the healthcheck is the container's (a task is ``running`` only once healthy);
- ``endpoint_mode`` is ``dnsrr`` and ports are published in ``host`` mode: without IPVS (these engines run without
  iptables) the service VIP and the ingress routing mesh do not work; the service is reachable by its stack name
  (an alias on each of its networks), which resolves to its tasks' addresses;
- restart policy from the service's ``restart``; rolling updates one task at a time, gated on health
  (``failure_action: rollback``), ``start-first`` for stateless services, ``stop-first`` for those with a volume;
- a one-shot job is a ``replicated-job``; a stateless service runs ``swarm_replicas`` tasks spread over the nodes;
  a service with a named volume is constrained to the node that holds its volume (``pin``: a node label); a
  ``swarm_global`` service (the edge) runs one task on every node its ``swarm_placement`` allows, each with its own
  volumes; the routing labels (``traefik.*``) are on the service as well, where Traefik's Swarm provider reads them.

The spec's digest (over everything above, secrets resolved) is recorded in the service's config-hash label: an
unchanged digest means no update call at all, so a no-op re-apply bumps no service's version.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from agencystack.engine import labels
from agencystack.stack import interpolate, interpolate_all

if TYPE_CHECKING:
    from agencystack.engine.interface import Deployment
    from agencystack.stack import Service

STACK_NAMESPACE = "com.docker.stack.namespace"
#: node label: the address of that node's own engine (exec, volume tars and removal reach a task's node through it)
NODE_ENGINE = "io.agencystack.engine"
#: node label prefix: ``io.agencystack.volume.<engine volume name>=true`` on the node that holds the volume
PIN_PREFIX = "io.agencystack.volume."
NS = 1_000_000_000
MONITOR = 5  # seconds a rolling update watches each new task before the next


def service_name(project: str, service: str) -> str:
    """``docker stack deploy``'s name: ``<project>_<service>``."""
    return f"{project}_{service}"


def pin_label(project: str, volume: str) -> str:
    return PIN_PREFIX + labels.volume_name(project, volume)


def stateful(service: Service) -> bool:
    """A service with a named volume: it stays on its volume's node (a global one has a volume on every node)."""
    return not service.swarm_global and any(not m.is_bind for m in service.volumes)


def pinned_volumes(services: list[Service]) -> list[str]:
    """The named volumes the stateful services mount, in order: what a first install creates on the node it pins."""
    return [m.source for s in services if stateful(s) for m in s.volumes if not m.is_bind]


def replicas(service: Service) -> int:
    if service.replicas == 0:
        return 0
    return 1 if service.job or stateful(service) else max(service.swarm_replicas or 1, 1)


def _ns(seconds: float) -> int:
    return int(seconds * NS)


def build(deployment: Deployment, service: Service) -> dict[str, Any]:
    """The Swarm ServiceSpec (the engine API's JSON) of ``service``, without its pin and without the digest label."""
    project = deployment.project
    env = interpolate_all(service.environment, deployment.env)
    container_labels = labels.service_labels(
        project=project, service=service.name, client=deployment.client, component=deployment.component,
        version=deployment.version, working_dir=str(deployment.directory), config_hash=None, job=service.job,
        depends_on=service.depends_on, user_labels=service.labels)
    container: dict[str, Any] = {
        "Image": service.image, "Env": [f"{k}={v}" for k, v in sorted(env.items())], "Labels": container_labels,
        "Init": service.init, "StopGracePeriod": _ns(service.stop_grace_period),
        "Mounts": [_mount(project, deployment, m) for m in service.volumes]}
    if service.entrypoint is not None:
        container["Command"] = [interpolate(a, deployment.env) for a in service.entrypoint]
    if service.command is not None:
        container["Args"] = [interpolate(a, deployment.env) for a in service.command]
    if service.user:
        container["User"] = service.user
    if service.working_dir:
        container["Dir"] = service.working_dir
    if service.healthcheck is not None:
        check = service.healthcheck
        container["Healthcheck"] = {"Test": check.test, "Interval": _ns(check.interval), "Timeout": _ns(check.timeout),
                                    "Retries": check.retries, "StartPeriod": _ns(check.start_period)}
    limits = service.limits
    res: dict[str, Any] = {}
    if limits.memory is not None:
        res["MemoryBytes"] = limits.memory
    if limits.cpus is not None:
        res["NanoCPUs"] = int(limits.cpus * NS)
    if limits.pids is not None:
        res["Pids"] = limits.pids
    reserve = {k: v for k, v in res.items() if k != "Pids"}
    if limits.memory_reservation is not None:
        reserve["MemoryBytes"] = limits.memory_reservation
    restart = {"no": "none", "on-failure": "on-failure"}.get(service.restart, "any")
    task: dict[str, Any] = {
        "ContainerSpec": container,
        "Resources": {"Limits": res, "Reservations": reserve},
        "RestartPolicy": {"Condition": restart, "Delay": _ns(1), "MaxAttempts": 0},
        "Placement": {"Constraints": list(service.swarm_placement),
                      "Preferences": [{"Spread": {"SpreadDescriptor": "node.id"}}]},
        "Networks": [{"Target": labels.network_name(project, net, _external(deployment, net)),
                      "Aliases": sorted({service.name, *aliases})} for net, aliases in sorted(service.networks.items())],
        "LogDriver": {"Name": service.logging.driver, "Options": dict(service.logging.options)},
    }
    count = replicas(service)
    spec: dict[str, Any] = {
        "Name": service_name(project, service.name),
        "Labels": {**labels.ours(deployment.client, deployment.component, deployment.version),
                   labels.PROJECT: project, labels.SERVICE: service.name, STACK_NAMESPACE: project,
                   labels.WORKING_DIR: str(deployment.directory), **({labels.JOB: "true"} if service.job else {}),
                   **_routing(service.labels)},
        "TaskTemplate": task,
        "EndpointSpec": {"Mode": "dnsrr", "Ports": [
            {"Protocol": p.protocol, "TargetPort": p.container, "PublishedPort": p.host, "PublishMode": "host"}
            for p in service.ports]},
    }
    if service.job:
        spec["Mode"] = {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": count}}
    else:
        spec["Mode"] = {"Global": {}} if service.swarm_global and count else {"Replicated": {"Replicas": count}}
        order = "stop-first" if stateful(service) else "start-first"
        update = {"Parallelism": 1, "Order": order, "FailureAction": "rollback", "Monitor": _ns(MONITOR),
                  "Delay": 0}
        spec["UpdateConfig"] = update
        spec["RollbackConfig"] = {**update, "FailureAction": "pause"}
    return spec


def _routing(user_labels: dict[str, str]) -> dict[str, str]:
    """The edge's labels (``traefik.*``) on the service too: Traefik's Swarm provider reads services' labels, not
    their containers'."""
    return {k: v for k, v in user_labels.items() if k.startswith("traefik.")}


def pinned(spec: dict[str, Any], label: str | None) -> dict[str, Any]:
    """``spec`` constrained to the node carrying node label ``label`` (None: free to go anywhere)."""
    if label is not None:
        spec["TaskTemplate"]["Placement"]["Constraints"] = [
            *spec["TaskTemplate"]["Placement"]["Constraints"], f"node.labels.{label}==true"]
    return spec


def digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def stamped(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with its digest recorded in its labels (what :func:`digest` of a running service is compared to)."""
    spec["Labels"] = {**spec["Labels"], labels.CONFIG_HASH: digest(spec)}
    return spec


def _external(deployment: Deployment, network: str) -> bool:
    return any(n.name == network and n.external for n in deployment.stack.networks)


def _mount(project: str, deployment: Deployment, mount: Any) -> dict[str, Any]:
    if mount.is_bind:
        return {"Type": "bind", "Source": mount.source, "Target": mount.target, "ReadOnly": mount.read_only}
    external = any(v.name == mount.source and v.external for v in deployment.stack.volumes)
    return {"Type": "volume", "Source": labels.volume_name(project, mount.source, external), "Target": mount.target,
            "ReadOnly": mount.read_only, "VolumeOptions": {"Labels": labels.volume_labels(
                project=project, volume=mount.source, client=deployment.client, component=deployment.component,
                version=deployment.version)}}
