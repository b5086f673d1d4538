"""Making it so: a deployment's images, networks and volumes, then its services in dependency order, each gated on
its dependencies' conditions and bounded by its ``start_timeout``.

Independent services start in parallel: each has three gates (created, started, ready) that its dependents wait on;
when a started service counts as ready is :mod:`~agencystack.engine.readiness`'s to say.
Every step is re-derivable from what the engine holds: a SIGKILL at any point leaves at most one container per service
(names are unique in the engine), and the next ``apply`` finishes or redoes the step. Secrets (resolved ``${KEY}``
values) go only into a container's environment, never into arguments, labels or messages: what an error quotes from
the engine (health output, log lines) passes through the deployment's redactor.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from agencystack.engine import sdk  # noqa: F401 - first: the docker SDK without its ssh transport
import docker.errors
from docker.types import LogConfig
from docker.types import Mount as DockerMount

from agencystack.engine import labels, resources
from agencystack.engine.client import (
    RUNNING_STATES,
    STALE_ENDPOINTS,
    EngineRoom,
    explanation,
    is_conflict,
    is_connection_failure,
    parallel,
)
from agencystack.engine.diff import Action, Diff, resolved_env, service_networks, volume_engine_name
from agencystack.engine.interface import Deployment, Progress
from agencystack.engine.observe import Actual, Observed, normalize_ref
from agencystack.engine.readiness import Readiness
from agencystack.errors import ComponentError, EngineUnreachable
from agencystack.stack import Network, Service

if TYPE_CHECKING:
    from agencystack.engine.client import EngineClient

NS = 1_000_000_000


# -- gates ------------------------------------------------------------------------------------------------------
class Gate:
    """A one-shot signal with an outcome: dependents wait on it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.ok = False

    def set(self, ok: bool) -> None:
        self.ok = ok
        self._event.set()

    def wait(self) -> bool:
        self._event.wait()
        return self.ok

    def is_set(self) -> bool:
        return self._event.is_set()


class Skipped(Exception):
    """A service not attempted because a dependency failed (the dependency's error is the one reported)."""


def grace(deployment: Deployment, service: str) -> int:
    """The service's stop grace period in whole seconds (10 for a container of no service of the stack)."""
    try:
        return int(deployment.stack.service(service).stop_grace_period)
    except KeyError:
        return 10


def stop_container(client: EngineClient, deployment: Deployment, c: Observed) -> bool:
    """Stop ``c`` if it runs, with its service's grace period; False if it is gone."""
    if c.state not in RUNNING_STATES:
        return True
    return client.stop(c.id, grace(deployment, c.service))


# -- images -----------------------------------------------------------------------------------------------------
def published(client: EngineClient, image: str) -> bool:
    """Whether the registry of ``image`` has it, without pulling it (see ``Driver.published``)."""
    with client.guard():
        try:
            client.api.inspect_distribution(image)
            return True
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as exc:
            reason = explanation(exc)
            if exc.status_code in (401, 403, 404) or "manifest unknown" in reason or "not found" in reason:
                return False  # Docker Hub answers 401 for a repository that does not exist
            raise ComponentError(f"cannot ask the registry about {image}: {reason}") from None


class Converger(EngineRoom):
    """The steps of an apply, on one engine (``DockerDriver.apply`` runs them in order)."""

    def __init__(self, client: EngineClient, readiness: Readiness | None = None):
        super().__init__(client)
        self.readiness = readiness or Readiness(client)

    def check_externals(self, deployment: Deployment) -> None:
        """External networks and volumes the stack uses must exist before anything is touched."""
        stack = deployment.stack
        used_nets = {n for s in stack.services if s.replicas for n in s.networks}
        used_vols = {m.source for s in stack.services if s.replicas for m in s.volumes if not m.is_bind}
        checks = [("network", net.name, self.api.inspect_network, "install the component that provides it first")
                  for net in stack.networks if net.external and net.name in used_nets]
        checks += [("volume", vol.name, self.api.inspect_volume, "create it first")
                   for vol in stack.volumes if vol.external and vol.name in used_vols]
        for kind, name, inspect, remedy in checks:
            try:
                inspect(name)
            except docker.errors.NotFound:
                raise ComponentError(f"{deployment.project} needs the external {kind} {name!r}, which does not "
                                     f"exist: {remedy}") from None

    def ensure_images(self, deployment: Deployment, work: Diff, actual: Actual, progress: Progress) -> None:
        """Every image a create needs is local (pulled if possible) before any container is touched."""
        needed: dict[str, str] = {}  # ref -> first service using it
        for action in work.actions:
            if action.change.kind in ("create", "recreate"):
                service = deployment.stack.service(action.change.service)
                needed.setdefault(service.image, service.name)
        missing = {ref: svc for ref, svc in needed.items() if normalize_ref(ref) not in actual.images}
        if missing:
            parallel([lambda r=ref, s=svc: self._pull(r, s, progress) for ref, svc in missing.items()])

    def _pull(self, ref: str, service: str, progress: Progress) -> None:
        progress(service, f"pulling {ref}")
        name, _, digest = ref.partition("@")
        repo, tag = (name.rsplit(":", 1) if ":" in name.rsplit("/", 1)[-1] else (name, "latest"))
        reason = ""
        try:
            for event in self.api.pull(repo, tag=digest or tag, stream=True, decode=True):
                if isinstance(event, dict) and event.get("error"):
                    reason = str(event["error"]).strip()
        except docker.errors.APIError as exc:
            reason = explanation(exc)
        if not reason:
            try:
                self.api.inspect_image(ref)
                return
            except docker.errors.ImageNotFound:
                reason = "the pull finished without the image"
        raise ComponentError(f"image {ref} for service {service} is not available locally and could not be pulled "
                             f"({reason}); check the image setting, or configure a registry mirror")

    def recreate_networks(self, deployment: Deployment, work: Diff, progress: Progress) -> None:
        """Networks whose settings changed: take their services' containers off, remove, create again (below)."""
        if not work.recreate_networks:
            return
        for action in work.actions:
            if action.change.reason.startswith("network "):
                self.remove_containers(action.remove, action.change.service, progress, deployment)
                action.remove = []
        for name in work.recreate_networks:
            progress("network", f"recreating {name}")
            if not self.client.remove_network(name):
                raise ComponentError(f"cannot recreate network {name}: {STALE_ENDPOINTS}; restart the engine, then "
                                     "re-run")
            work.create_networks.append(name)

    def create_networks_and_volumes(self, deployment: Deployment, work: Diff) -> None:
        """The networks and volumes the diff lacks, all at once (none depends on another)."""
        meta = dict(client=deployment.client, component=deployment.component, version=deployment.version)
        stack = deployment.stack
        calls = []
        for net in stack.networks:
            name = labels.network_name(deployment.project, net.name)
            if not net.external and name in work.create_networks:
                calls.append(lambda name=name, net=net: self._create_network(deployment, name, net, meta))
        for vol in stack.volumes:
            name = labels.volume_name(deployment.project, vol.name)
            if not vol.external and name in work.create_volumes:
                calls.append(lambda name=name, vol=vol: self.api.create_volume(
                    name, driver="local",
                    labels=labels.volume_labels(project=deployment.project, volume=vol.name, **meta)))
        parallel(calls)

    def _create_network(self, deployment: Deployment, name: str, net: Network, meta: dict[str, str]) -> None:
        try:
            self.api.create_network(
                name, driver="bridge", internal=net.internal, check_duplicate=True,
                labels=labels.network_labels(project=deployment.project, network=net.name, **meta))
        except docker.errors.APIError as exc:
            if is_conflict(exc):
                return
            hint = ""
            if "address pool" in str(exc):
                hint = ("; every client's stack has its own networks: give the engine more (smaller) "
                        "address pools with \"default-address-pools\" in /etc/docker/daemon.json, e.g. "
                        "{\"base\": \"10.200.0.0/14\", \"size\": 24}")
            raise ComponentError(f"cannot create network {name}: {explanation(exc)}{hint}") from None

    def remove_containers(self, containers: list[Observed], service: str, progress: Progress,
                          deployment: Deployment) -> None:
        if not containers:
            return
        progress(service, "removing")
        for c in containers:
            if stop_container(self.client, deployment, c):
                self.client.gone(c.id)

    def run_services(self, deployment: Deployment, work: Diff, progress: Progress) -> None:
        stack = deployment.stack
        actions = {a.change.service: a for a in work.actions if a.change.kind != "remove"}
        runnable = [s for level in stack.levels() for s in level if stack.service(s).replicas]
        created = {name: Gate() for name in runnable}
        started = {name: Gate() for name in runnable}
        ready = {name: Gate() for name in runnable}
        errors: dict[str, BaseException] = {}

        def task(name: str) -> None:
            service = stack.service(name)
            action = actions[name]
            try:
                precreated = None
                if action.change.kind == "create":
                    # Creating is not starting: a new container is made while its dependencies come up (as compose
                    # does), once theirs are made, so that the first to start are not slowed by the rest. A
                    # recreate waits for the dependencies instead: the old container serves until then.
                    for dep in service.depends_on:
                        if dep in created:
                            created[dep].wait()
                    precreated = self._replace(deployment, service, action, progress)
                created[name].set(True)
                for dep, condition in service.depends_on.items():
                    if dep not in started:
                        continue  # replicas 0: nothing to wait for
                    gate = started[dep] if condition == "started" else ready[dep]
                    if not gate.is_set():
                        progress(name, f"waiting for {dep} ({condition})")
                    if not gate.wait():
                        raise Skipped(dep)
                container_id, started_at = self._converge_service(deployment, service, action, progress,
                                                                  precreated)
                started[name].set(True)
                self.readiness.await_ready(deployment, service, container_id, actions[name], started_at is not None,
                                           progress, started=started_at)
                ready[name].set(True)
            except BaseException as exc:
                errors[name] = exc
                for gate in (created[name], started[name], ready[name]):
                    if not gate.is_set():
                        gate.set(False)

        if runnable:
            with ThreadPoolExecutor(max_workers=len(runnable)) as pool:
                for name in runnable:
                    pool.submit(task, name)
        real = [(n, e) for n, e in errors.items() if not isinstance(e, Skipped)]
        order = {n: i for i, n in enumerate(runnable)}
        real.sort(key=lambda item: order[item[0]])
        for _, exc in real:  # the engine going away explains everything else
            if isinstance(exc, EngineUnreachable) or is_connection_failure(exc):
                raise exc
        if real:
            first = real[0][1]
            if len(real) > 1 and isinstance(first, ComponentError):
                others = ", ".join(n for n, _ in real[1:])
                raise ComponentError(f"{first} (also failed: {others})") from None
            raise first

    def _converge_service(self, deployment: Deployment, service: Service, action: Action, progress: Progress,
                          precreated: str | None = None) -> tuple[str, float | None]:
        """Create/recreate/start as the action says; return (container id, the engine's clock when it answered
        the start: None when it was not (re)started now)."""
        kind = action.change.kind
        if kind == "unchanged":
            assert action.current is not None
            return action.current.id, None
        if kind == "update":
            assert action.current is not None
            progress(service.name, f"updating limits in place: {service.limits.describe()}")
            if self._update_limits(deployment, service, action.current.id, below_use_ok=True):
                return action.current.id, None
            # it uses more than the new memory limit: the kernel cannot shrink it in place; a new container can
            progress(service.name, "uses more memory than its new limit: recreating it under the limit")
            action.remove = [action.current]
            container_id = self._replace(deployment, service, action, progress)
            progress(service.name, "starting")
            return container_id, self._start(deployment, service, container_id)
        if kind == "start":
            assert action.start is not None
            if action.limits:
                self._update_limits(deployment, service, action.start.id)
            progress(service.name, "starting")
            return action.start.id, self._start(deployment, service, action.start.id)
        container_id = precreated or self._replace(deployment, service, action, progress)
        progress(service.name, "starting")
        return container_id, self._start(deployment, service, container_id)

    def _update_limits(self, deployment: Deployment, service: Service, container_id: str,
                       below_use_ok: bool = False) -> bool:
        """Apply the service's limits in place; False (with ``below_use_ok``) when the container uses more memory
        than the new limit, which the kernel refuses."""
        try:
            resources.update(self.api, container_id, service)
            return True
        except docker.errors.APIError as exc:
            if below_use_ok and resources.below_use(exc):
                return False
            raise self._service_error(deployment, service, f"cannot change its limits to "
                                      f"{service.limits.describe()} in place", exc) from None

    def _replace(self, deployment: Deployment, service: Service, action: Action, progress: Progress) -> str:
        """Stop and remove the service's containers (old config, leftovers), then create the new one."""
        if action.remove:
            self.remove_containers(action.remove, service.name, progress, deployment)
        progress(service.name, "creating")
        return self._create(deployment, service, action.config_hash)

    def _create(self, deployment: Deployment, service: Service, digest: str) -> str:
        api = self.api
        env = resolved_env(deployment, service)
        networks = service_networks(deployment, service)
        first = next(iter(networks), None)
        mounts = [DockerMount(target=m.target,
                              source=m.source if m.is_bind else volume_engine_name(deployment, m.source),
                              type="bind" if m.is_bind else "volume", read_only=m.read_only)
                  for m in service.volumes]
        restart = {"Name": service.restart} if service.restart != "no" else {"Name": "no"}
        host_config = api.create_host_config(
            mounts=mounts or None,
            port_bindings={f"{p.container}/{p.protocol}": (p.host_ip, p.host) for p in service.ports} or None,
            restart_policy=restart,
            init=True if service.init else None,
            log_config=LogConfig(type=service.logging.driver, config=dict(service.logging.options)),
            network_mode=first or "none",
        )
        host_config.update(resources.engine_fields(service))
        networking = None
        if first:
            networking = api.create_networking_config(
                {first: api.create_endpoint_config(aliases=networks[first])})
        healthcheck = None
        if service.healthcheck is not None:
            check = service.healthcheck
            healthcheck = {"test": check.test} if check.test[0] == "NONE" else {
                "test": check.test, "interval": int(check.interval * NS), "timeout": int(check.timeout * NS),
                "retries": check.retries, "start_period": int(check.start_period * NS)}
        service_labels = labels.service_labels(
            project=deployment.project, service=service.name, client=deployment.client,
            component=deployment.component, version=deployment.version, working_dir=str(deployment.directory),
            config_hash=digest, job=service.job, depends_on=service.depends_on, user_labels=service.labels)
        service_labels.update(resources.limit_labels(service))
        name = labels.container_name(deployment.project, service.name)
        kwargs: dict[str, Any] = dict(
            image=service.image, command=service.command, entrypoint=service.entrypoint, name=name,
            environment=env, labels=service_labels, host_config=host_config, networking_config=networking,
            healthcheck=healthcheck, user=service.user, working_dir=service.working_dir,
            stop_timeout=int(service.stop_grace_period), detach=True,
            ports=[(p.container, p.protocol) for p in service.ports] or None,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                created = api.create_container(**kwargs)
                break
            except docker.errors.APIError as exc:
                if exc.status_code != 409 or time.monotonic() > deadline:
                    raise self._service_error(deployment, service, "cannot be created", exc) from None
                # The name is taken: by a container that appeared since we looked, by one whose removal is still
                # in progress, or by a create still running in the engine for a client that was killed. It is
                # this project's (the name says so): replace it once the engine lets go of it.
                self.client.gone(name)
                time.sleep(0.2)
        container_id = created["Id"]
        for net, aliases in list(networks.items())[1:]:
            api.connect_container_to_network(container_id, net, aliases=aliases)
        return container_id

    def _service_error(self, deployment: Deployment, service: Service, what: str,
                       exc: docker.errors.APIError) -> ComponentError:
        text = explanation(exc)
        if "no space left on device" in text:
            text += " (the engine's disk is full: free space on its data root, then re-run)"
        message = f"service {service.name} of {deployment.project} {what}: {text}"
        return ComponentError(deployment.redactor().text(message))

    def _start(self, deployment: Deployment, service: Service, container_id: str) -> float:
        """Start the container; the engine's clock when it answered (what a wait for its health listens from)."""
        try:
            return self.api.start_dated(container_id)
        except docker.errors.APIError as exc:
            text = explanation(exc)
            if "address already in use" in text or "port is already allocated" in text:
                port = re.search(r"(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]*\]):(\d+)", text)
                where = (f"{port.group(1)}:{port.group(2)}" if port else
                         ", ".join(f"{p.host_ip}:{p.host}" for p in service.ports))
                raise ComponentError(f"port {where} for service {service.name} of {deployment.project} is already "
                                     "in use: free it or choose another port") from None
            raise self._service_error(deployment, service, "cannot start", exc) from None
