"""The Swarm driver: :class:`SwarmDriver` implements :class:`agencystack.engine.Driver` on a Swarm manager.

Scheduling, spreading and failover are Swarm's: the driver turns each stack service into a Swarm service
(:mod:`~agencystack.engine.swarm_spec`), applies them level by level in dependency order (a level once the one before
it is ready: Swarm has no ``depends_on``), and reads back services, tasks and nodes in a constant number of list
calls. A stack service with a named volume stays on the node its volume was first created on: the driver labels that
node (``io.agencystack.volume.<volume>=true``) and constrains the service to it.

A task's container lives on its node's engine: ``exec``, volume tars and purging volumes reach that engine at the
address in the node's ``io.agencystack.engine`` label (set by the operator, e.g. ``docker node update --label-add
io.agencystack.engine=ssh://ops@node2 <node>``), with the single-host :class:`~agencystack.engine.docker.DockerDriver`
(a task's container carries the compose labels that driver finds containers by).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from agencystack.engine import labels
from agencystack.engine import swarm_spec as specs
from agencystack.engine.client import parallel
from agencystack.engine.docker import DockerDriver
from agencystack.engine.interface import Change, Deployment, EngineInfo, Plan, Progress, no_progress
from agencystack.errors import ComponentError
from agencystack.results import LogLine, LogRequest, ServiceStatus, State

POLL = 0.5  # seconds between looks at a service's tasks while waiting for it
SETTLE = 60  # seconds a purge waits for removed services' containers to go from their nodes
_FAILED_TASK = ("failed", "rejected", "orphaned")


@dataclass(frozen=True)
class Node:
    """One node of the swarm, as ``node ls`` shows it."""

    id: str
    hostname: str
    state: str  # ready | down | unknown | disconnected
    availability: str  # active | pause | drain
    role: str  # manager | worker
    manager: str  # leader | reachable | unreachable | "" (a worker)
    memory: int
    cpus: int
    engine_version: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def schedulable(self) -> bool:
        return self.state == "ready" and self.availability == "active"

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Node:
        desc, spec = raw.get("Description") or {}, raw.get("Spec") or {}
        res = desc.get("Resources") or {}
        manager = raw.get("ManagerStatus") or {}
        return cls(id=raw["ID"], hostname=desc.get("Hostname", ""), state=(raw.get("Status") or {}).get("State", ""),
                   availability=spec.get("Availability", ""), role=spec.get("Role", ""),
                   manager="leader" if manager.get("Leader") else manager.get("Reachability", ""),
                   memory=int(res.get("MemoryBytes") or 0), cpus=int((res.get("NanoCPUs") or 0) // specs.NS),
                   engine_version=(desc.get("Engine") or {}).get("EngineVersion", ""), labels=spec.get("Labels") or {})


class SwarmDriver(DockerDriver):
    """:class:`agencystack.engine.Driver` on the Swarm whose manager answers at ``address``."""

    # -- the swarm -------------------------------------------------------------------------------------------
    def nodes(self) -> list[Node]:
        with self.client.guard():
            return sorted((Node.of(n) for n in self.api.nodes()), key=lambda n: n.hostname or n.id)

    def info(self) -> EngineInfo:
        """The manager's engine version; memory and CPUs of the nodes that can take tasks."""
        with self.client.guard():
            version = str(self.api.version().get("Version") or "")
        up = [n for n in self.nodes() if n.schedulable]
        return EngineInfo(version=version, memory=sum(n.memory for n in up), cpus=sum(n.cpus for n in up),
                          swarm_manager=True)

    def set_availability(self, node: str, availability: str) -> Node:
        """Drain (``drain``) or reopen (``active``) the node named ``node`` (hostname or id)."""
        found = self._node(node)
        with self.client.guard():
            raw = self.api.inspect_node(found.id)
            self.api.update_node(found.id, raw["Version"]["Index"], {**raw["Spec"], "Availability": availability})
        return self._node(node)

    def _node(self, name: str) -> Node:
        nodes = self.nodes()
        for node in nodes:
            if name in (node.hostname, node.id):
                return node
        raise ComponentError(f"the swarm has no node {name!r} (nodes: {', '.join(n.hostname for n in nodes)})")

    def node_engine(self, node: Node) -> DockerDriver:
        address = node.labels.get(specs.NODE_ENGINE)
        if not address:
            raise ComponentError(f"node {node.hostname} has no {specs.NODE_ENGINE} label: set it to the address of "
                                 f"its engine (docker node update --label-add {specs.NODE_ENGINE}=ssh://... "
                                 f"{node.hostname})")
        return DockerDriver(address)

    # -- observation -----------------------------------------------------------------------------------------
    def _services(self, project: str | None) -> list[dict[str, Any]]:
        selector = [f"{labels.MANAGED}=true"] + ([f"{specs.STACK_NAMESPACE}={project}"] if project else [])
        return self.api.services(filters={"label": selector})

    def _tasks(self, services: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {s["ID"]: [] for s in services}
        if services:
            for task in self.api.tasks(filters={"service": [s["ID"] for s in services]}):
                found.setdefault(task["ServiceID"], []).append(task)
        return found

    def directories(self, project: str) -> set[str]:
        with self.client.guard():
            return {s["Spec"]["Labels"].get(labels.WORKING_DIR, "") for s in self._services(project)}

    # -- plan and apply --------------------------------------------------------------------------------------
    @staticmethod
    def _desired(deployment: Deployment) -> dict[str, tuple[dict[str, Any], str | None]]:
        """{service: (its stamped spec, the node label its volumes' node carries, or None for a stateless one)}.
        Every stateful service of a deployment shares one node (two services may mount one volume): the label
        is named after the first volume any service mounts."""
        mounted = specs.pinned_volumes(deployment.stack.services)
        label = specs.pin_label(deployment.project, mounted[0]) if mounted else None
        desired = {}
        for service in deployment.stack.services:
            pin = label if specs.stateful(service) else None
            desired[service.name] = (specs.stamped(specs.pinned(specs.build(deployment, service), pin)), pin)
        return desired

    def plan(self, deployment: Deployment) -> Plan:
        with self.client.guard():
            return self._plan(deployment)[0]

    def _plan(self, deployment: Deployment) -> tuple[Plan, dict[str, Any], dict[str, dict[str, Any]], list[Node]]:
        project = deployment.project
        nodes = self.nodes()
        running = {s["Spec"]["Labels"].get(labels.SERVICE, ""): s for s in self._services(project)}
        tasks = self._tasks(list(running.values()))
        desired = self._desired(deployment)
        plan = Plan(project)
        for name, (spec, _) in desired.items():
            found = running.get(name)
            if found is None:
                plan.changes.append(Change(name, "create", "not created"))
            elif found["Spec"]["Labels"].get(labels.CONFIG_HASH) != spec["Labels"][labels.CONFIG_HASH]:
                plan.changes.append(Change(name, "recreate", "config hash differs"))
            elif _replicas(found["Spec"]) != _replicas(spec):
                plan.changes.append(Change(name, "start", "scaled down"))
            else:
                state, _ = _state(found, tasks.get(found["ID"], []), nodes)
                plan.changes.append(Change(name, "unchanged", "" if state in (State.RUNNING, State.COMPLETED)
                                           else "unhealthy"))
        plan.changes += [Change(name, "remove", "orphaned") for name in running if name not in desired]
        pinned = {label for n in nodes for label in n.labels if label.startswith(specs.PIN_PREFIX)}
        if any(pin and pin not in pinned for _, pin in desired.values()):  # a first install: on the node chosen
            plan.create_volumes = sorted(set(specs.pinned_volumes(deployment.stack.services)))
        wanted = {labels.network_name(project, n.name) for n in deployment.stack.networks if not n.external}
        ours = {n["Name"] for n in self.api.networks(filters={"label": f"{labels.PROJECT}={project}"})}
        plan.create_networks = sorted(wanted - ours)
        plan.remove_networks = sorted(ours - wanted)
        return plan, desired, running, nodes

    def apply(self, deployment: Deployment, plan: Plan | None = None, progress: Progress = no_progress) -> None:
        """Converge: networks, volume pins, then each dependency level's services created or updated in parallel,
        each waited for (desired tasks running and healthy, a job completed) before the next level; orphans
        removed. A re-observed plan: what is current is not touched (no update call, no version bump)."""
        with self.client.guard():
            plan, desired, running, nodes = self._plan(deployment)
            self._networks(deployment, plan)
            self._pin(deployment, nodes, {pin for _, pin in desired.values() if pin})
            kinds = {c.service: c.kind for c in plan.changes}
            for level in deployment.stack.levels():
                parallel([lambda n=n: self._converge(deployment, n, desired[n][0], running.get(n), kinds[n],
                                                     progress) for n in level])
            for change in plan.changes:
                if change.kind == "remove":
                    progress(change.service, "removing")
                    self.api.remove_service(running[change.service]["ID"])
            for name in plan.remove_networks:
                self.api.remove_network(name)

    def _networks(self, deployment: Deployment, plan: Plan) -> None:
        for name in plan.create_networks:
            short = name.removeprefix(deployment.project + "_")
            internal = any(n.name == short and n.internal for n in deployment.stack.networks)
            self.api.create_network(name, driver="overlay", attachable=True, internal=internal,
                                    labels=labels.network_labels(project=deployment.project, network=short,
                                                                 client=deployment.client,
                                                                 component=deployment.component,
                                                                 version=deployment.version))

    def _pin(self, deployment: Deployment, nodes: list[Node], pins: set[str]) -> None:
        """Label a node for each volume not yet pinned: a schedulable node holding the fewest pinned volumes
        (then the most memory)."""
        for pin in sorted(pins):
            if any(pin in n.labels for n in nodes):
                continue
            free = [n for n in nodes if n.schedulable]
            if not free:
                raise ComponentError(f"no node of the swarm can take volume {pin.removeprefix(specs.PIN_PREFIX)}")
            node = min(free, key=lambda n: (sum(k.startswith(specs.PIN_PREFIX) for k in n.labels), -n.memory,
                                            n.hostname))
            raw = self.api.inspect_node(node.id)
            spec = raw["Spec"]
            self.api.update_node(node.id, raw["Version"]["Index"],
                                 {**spec, "Labels": {**(spec.get("Labels") or {}), pin: "true"}})
            nodes[nodes.index(node)] = Node.of(self.api.inspect_node(node.id))

    def _converge(self, deployment: Deployment, name: str, spec: dict[str, Any], found: dict[str, Any] | None,
                  kind: str, progress: Progress) -> None:
        service = deployment.stack.service(name)
        if kind == "create":
            progress(name, "creating")
            self.api.create_service(**_call(spec))
        elif kind in ("recreate", "start"):
            progress(name, "updating (rolling)" if kind == "recreate" else "scaling up")
            assert found is not None
            self.api.update_service(found["ID"], found["Version"]["Index"], fetch_current_spec=False, **_call(spec))
        if service.replicas == 0:
            return
        progress(name, "waiting for completion" if service.job else "waiting for health")
        self.await_ready(deployment, name, service.start_timeout)
        progress(name, "completed" if service.job else "healthy")

    def await_ready(self, deployment: Deployment, name: str, timeout: float) -> None:
        """Wait until service ``name`` has its desired tasks running and healthy (a job: completed), its update
        done; ComponentError naming it, with its tasks' last error, when it rolled back or the time is up."""
        full = specs.service_name(deployment.project, name)
        deadline = time.monotonic() + timeout
        redact = deployment.redactor()
        while True:
            found = self.api.inspect_service(full)
            update = found.get("UpdateStatus") or {}
            if update.get("State", "").startswith("rollback") or update.get("State") == "paused":
                raise ComponentError(f"service {name} of {deployment.project}: the update failed and was rolled "
                                     f"back ({redact(update.get('Message', ''))})")
            tasks = self.api.tasks(filters={"service": found["ID"]})
            state, detail = _state(found, tasks, self.nodes() if time.monotonic() > deadline else [])
            if state in (State.RUNNING, State.COMPLETED) and update.get("State") in (None, "", "completed"):
                return
            if state == State.FAILED and found["Spec"]["Labels"].get(labels.JOB) == "true":
                raise ComponentError(f"service {name} of {deployment.project} failed: {redact(detail)}")
            if time.monotonic() > deadline:
                raise ComponentError(f"service {name} of {deployment.project} is not ready after {timeout:g} s: "
                                     f"{redact(detail)}")
            time.sleep(POLL)

    # -- status ----------------------------------------------------------------------------------------------
    def status(self, project: str | None = None) -> dict[str, list[ServiceStatus]]:
        if self._snapshot is not None:
            return super().status(project)
        with self.client.guard():
            services = self._services(project)
            tasks = self._tasks(services)
            nodes = self.nodes()
        grouped: dict[str, list[ServiceStatus]] = {project: []} if project is not None else {}
        for s in sorted(services, key=lambda s: s["Spec"]["Name"]):
            spec_labels = s["Spec"]["Labels"]
            state, detail = _state(s, tasks.get(s["ID"], []), nodes)
            limit = ((s["Spec"]["TaskTemplate"].get("Resources") or {}).get("Limits") or {}).get("MemoryBytes")
            grouped.setdefault(spec_labels.get(labels.PROJECT, ""), []).append(ServiceStatus(
                name=spec_labels.get(labels.SERVICE, ""), state=state, detail=detail, container=s["Spec"]["Name"],
                image=s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"], memory_limit=limit or None))
        return grouped

    def placed(self) -> tuple[int, dict[str, dict[str, int | None]]]:
        info = self.info()
        found: dict[str, dict[str, int | None]] = {}
        with self.client.guard():
            for s in self._services(None):
                spec = s["Spec"]
                if spec["Labels"].get(labels.JOB) == "true" or not _replicas(spec):
                    continue
                limit = ((spec["TaskTemplate"].get("Resources") or {}).get("Limits") or {}).get("MemoryBytes")
                found.setdefault(spec["Labels"].get(labels.PROJECT, ""), {})[spec["Labels"].get(labels.SERVICE, "")] = (
                    limit * _replicas(spec) if limit else None)
        return info.memory, found

    def addresses(self, project: str, service: str) -> dict[str, str]:
        for task in self._running_tasks(project, service):
            return {a["Network"]["Spec"]["Name"]: a["Addresses"][0].split("/")[0]
                    for a in task.get("NetworksAttachments") or [] if a.get("Addresses")}
        return {}

    def _running_tasks(self, project: str, service: str) -> list[dict[str, Any]]:
        """The service's running tasks; none for a service that does not exist (the engine answers 404 to a task
        filter naming it, where the local driver finds no container: both are "not running" to the core)."""
        import docker.errors

        try:
            with self.client.guard():
                tasks = self.api.tasks(filters={"service": specs.service_name(project, service),
                                                "desired-state": "running"})
        except docker.errors.NotFound:
            return []
        return [t for t in tasks if (t.get("Status") or {}).get("State") == "running"]

    # -- a task's node: logs, exec, volumes ------------------------------------------------------------------
    def _task_node(self, deployment: Deployment, service: str) -> Node:
        up = self._running_tasks(deployment.project, service)
        if not up:
            raise ComponentError(f"service {service} of {deployment.project} has no running task: install or start "
                                 "it first")
        return self._node(up[0]["NodeID"])

    def _volume_node(self, deployment: Deployment, volume: str) -> Node:
        pin = specs.pin_label(deployment.project, volume)
        for node in self.nodes():
            if pin in node.labels:
                return node
        raise ComponentError(f"volume {volume} of {deployment.project} is on no node: install it first")

    def logs(self, deployment: Deployment, request: LogRequest) -> Iterator[LogLine]:
        """Each node's containers of the deployment, one node after the other (``follow`` follows each in turn)."""
        def lines() -> Iterator[LogLine]:
            for node in self.nodes():
                if node.state == "ready" and node.labels.get(specs.NODE_ENGINE):
                    yield from self.node_engine(node).logs(deployment, request)
        return lines()

    def exec(self, deployment: Deployment, service: str, command: list[str], *, env: Mapping[str, str] | None = None,
             stdout: IO[bytes] | None = None, stdin: IO[bytes] | None = None,
             stderr: IO[bytes] | None = None) -> int:
        node = self.node_engine(self._task_node(deployment, service))
        return node.exec(deployment, service, command, env=env, stdout=stdout, stdin=stdin, stderr=stderr)

    def volume_export(self, deployment: Deployment, volume: str, stdout: IO[bytes]) -> None:
        self.node_engine(self._volume_node(deployment, volume)).volume_export(deployment, volume, stdout)

    def volume_import(self, deployment: Deployment, volume: str, stdin: IO[bytes]) -> None:
        self.node_engine(self._volume_node(deployment, volume)).volume_import(deployment, volume, stdin)

    # -- restart / stop / remove -----------------------------------------------------------------------------
    def restart(self, deployment: Deployment, services: tuple[str, ...] = (),
                progress: Progress = no_progress) -> None:
        """A rolling restart (``docker service update --force``) of each service in dependency order, gated on
        health; a completed job only when named."""
        with self.client.guard():
            running = {s["Spec"]["Labels"].get(labels.SERVICE): s for s in self._services(deployment.project)}
            for level in deployment.stack.levels():
                for name in level:
                    service = deployment.stack.service(name)
                    if (services and name not in services) or service.replicas == 0 or (service.job and not services):
                        continue
                    if name not in running:
                        raise ComponentError(f"service {name} of {deployment.project} is not created: install first")
                    progress(name, "restarting")
                    found = running[name]
                    self.api.update_service(found["ID"], found["Version"]["Index"], force_update=True,
                                            fetch_current_spec=True)
                    self.await_ready(deployment, name, service.start_timeout)

    def stop(self, deployment: Deployment, progress: Progress = no_progress, keep: Collection[str] = ()) -> None:
        """Scale every service but those in ``keep`` to 0 (``apply`` scales them up again)."""
        with self.client.guard():
            for s in self._services(deployment.project):
                spec = s["Spec"]
                name = spec["Labels"].get(labels.SERVICE, "")
                if name in keep or "Replicated" not in spec.get("Mode", {}):
                    continue
                progress(name, "stopping")
                self.api.update_service(s["ID"], s["Version"]["Index"], fetch_current_spec=False,
                                        **_call({**spec, "Mode": {"Replicated": {"Replicas": 0}}}))

    def remove(self, deployment: Deployment, purge: bool = False, progress: Progress = no_progress) -> list[str]:
        """Remove the project's services and networks; with ``purge`` its volumes on every node and their pins.
        Returns what could not be removed (a node whose engine is not reachable keeps its volume)."""
        project, left = deployment.project, []
        with self.client.guard():
            for s in self._services(project):
                progress(s["Spec"]["Labels"].get(labels.SERVICE, s["Spec"]["Name"]), "removing")
                self.api.remove_service(s["ID"])
            nodes = self.nodes()
            engines = {n.id: self.node_engine(n) for n in nodes if n.labels.get(specs.NODE_ENGINE) and
                       n.state == "ready"}
            left += [f"node {n.hostname} is not reachable: what it holds of {project} stays" for n in nodes
                     if n.id not in engines]
            parallel([lambda e=e: _await_no_containers(e, project) for e in engines.values()])
            for net in self.api.networks(filters={"label": f"{labels.PROJECT}={project}"}):
                external = {labels.network_name(project, n.name, True) for n in deployment.stack.networks
                            if n.external}
                if net["Name"] not in external:
                    self.api.remove_network(net["Id"])
            if purge:
                parallel([lambda e=e: _remove_volumes(e, project) for e in engines.values()])
                for node in nodes:
                    pins = [k for k in node.labels if k.startswith(specs.PIN_PREFIX + project + "_")]
                    if pins:
                        raw = self.api.inspect_node(node.id)
                        spec = raw["Spec"]
                        self.api.update_node(node.id, raw["Version"]["Index"], {
                            **spec, "Labels": {k: v for k, v in (spec.get("Labels") or {}).items() if k not in pins}})
        return left


def _replicas(spec: Mapping[str, Any]) -> int:
    """How many tasks the spec asks for; a global service: 1 (one per node that may take it, at least one)."""
    mode = spec.get("Mode") or {}
    if "Global" in mode:
        return 1
    if "Replicated" in mode:
        return int(mode["Replicated"].get("Replicas") or 0)
    return int((mode.get("ReplicatedJob") or {}).get("TotalCompletions") or 1)


def _call(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The docker SDK's create_service/update_service arguments for a ServiceSpec."""
    return {"task_template": spec["TaskTemplate"], "name": spec["Name"], "labels": spec["Labels"],
            "mode": spec["Mode"], "update_config": spec.get("UpdateConfig"),
            "rollback_config": spec.get("RollbackConfig"), "endpoint_spec": spec["EndpointSpec"]}


def _state(service: Mapping[str, Any], tasks: list[dict[str, Any]], nodes: list[Node]) -> tuple[State, str]:
    """A service's state from its tasks: running when its desired tasks all run (healthy: a task with a
    healthcheck is ``starting`` until then); a job completed once a task completed. What it waits for is named:
    a node that is down or drained (a pinned service's), or its tasks' last error."""
    spec = service["Spec"]
    want = _replicas(spec)
    job = spec["Labels"].get(labels.JOB) == "true"
    current = [t for t in tasks if t.get("DesiredState") in ("running", "complete")]
    states = [(t.get("Status") or {}).get("State", "") for t in current]
    by_node = {n.id: n for n in nodes}
    where = sorted({by_node[t["NodeID"]].hostname for t, s in zip(current, states, strict=True)
                    if s == "running" and t.get("NodeID") in by_node})
    if job:
        if "complete" in states:
            return State.COMPLETED, "completed"
        failed = [t for t in tasks if (t.get("Status") or {}).get("State") in _FAILED_TASK]
        if failed and not any(s in ("running", "starting", "pending", "assigned", "preparing") for s in states):
            return State.FAILED, _err(failed[-1])
        return State.STARTING, "running"
    if want == 0:
        return State.STOPPED, "scaled to 0"
    if "Global" in (spec.get("Mode") or {}):  # every task the scheduler gave a node must run
        want = max(len(current), 1)
    up = states.count("running")
    detail = f"{up}/{want} running" + (f" on {', '.join(where)}" if where else "")
    if up >= want:
        return State.RUNNING, detail
    constraints = spec["TaskTemplate"].get("Placement", {}).get("Constraints") or []
    for node in nodes:
        pin = next((c for c in constraints if c.removeprefix("node.labels.").split("==")[0] in node.labels), None)
        if pin and not node.schedulable:
            why = "down" if node.state != "ready" else f"availability {node.availability}"
            return State.FAILED, (f"{detail}; waits for node {node.hostname} ({why}), which holds its volume: "
                                  f"bring it back ('agencystack hosts undrain') or move its data")
    pending = [t for t in current if (t.get("Status") or {}).get("Err")]
    if pending:
        return State.STARTING, f"{detail}; {_err(pending[-1])}"
    return State.STARTING, detail


def _err(task: Mapping[str, Any]) -> str:
    status = task.get("Status") or {}
    return status.get("Err") or status.get("Message") or status.get("State", "")


def _await_no_containers(engine: DockerDriver, project: str) -> None:
    """Wait until the node's engine holds no container of ``project``: its agent stops and removes the tasks of
    removed services; a completed job's container it leaves behind (Docker 20.10), so that one is removed here."""
    import docker.errors

    deadline = time.monotonic() + SETTLE
    while found := engine.api.containers(all=True, filters=labels.project_filter(project)):
        for c in found:
            if c.get("State") in ("exited", "dead", "created"):
                try:
                    engine.api.remove_container(c["Id"], force=True)
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as exc:
                    if "already in progress" not in str(exc):  # the node's agent is removing it: wait for it
                        raise
        if time.monotonic() > deadline:
            raise ComponentError(f"containers of {project} are still on {engine.address} after {SETTLE} s")
        time.sleep(POLL)


def _remove_volumes(engine: DockerDriver, project: str) -> None:
    for volume in engine.api.volumes(filters={"label": f"{labels.PROJECT}={project}"}).get("Volumes") or []:
        engine.api.remove_volume(volume["Name"])
