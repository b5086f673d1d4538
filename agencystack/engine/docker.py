"""The Docker Engine driver: :class:`DockerDriver` implements :class:`agencystack.engine.Driver` with the docker SDK.

The only module of agencystack that makes the docker SDK's client objects; the driver composes the engine's rooms:

- **connection** (:mod:`~agencystack.engine.client`): one API handle, errors in one line naming the address;
- **observation** (:mod:`~agencystack.engine.observe`): a constant number of label-filtered list calls, no
  per-container inspect; ``status`` is one list call for all projects;
- **desired vs actual** (:mod:`~agencystack.engine.diff`): by labels, config hash, image id and network
  attachments, pure;
- **convergence** (:mod:`~agencystack.engine.converge`): crash-safe steps in dependency order, gated on
  readiness (:mod:`~agencystack.engine.readiness`: healthy, completed or running, bounded by the start timeout);
  quiet when nothing changed (``apply`` re-observes, and a current container is not touched);
- **streams** (:mod:`~agencystack.engine.streams`): logs, exec and volume tars in constant memory.

Secrets (resolved ``${KEY}`` values) go only into a container's environment, never into arguments, labels or
messages (what errors quote from the engine is masked by the deployment's redactor).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import IO, Any

from agencystack.engine import sdk  # noqa: F401 - first: the docker SDK without its ssh transport
import docker
import docker.errors

from agencystack.engine import labels, resources
from agencystack.engine.client import MAX_WORKERS, RUNNING_STATES, STALE_ENDPOINTS, EngineClient, parallel
from agencystack.engine.converge import Converger, published, stop_container
from agencystack.engine.diff import Action, diff
from agencystack.engine.interface import Change, Deployment, EngineInfo, Plan, Progress, no_progress
from agencystack.engine.observe import Actual, Observed, containers, observe, service_containers, service_status
from agencystack.engine.readiness import Readiness
from agencystack.engine.streams import Streams
from agencystack.errors import ComponentError
from agencystack.results import LogLine, LogRequest, ServiceStatus


class DockerDriver:
    """:class:`agencystack.engine.Driver` on a Docker Engine at ``address`` (a DOCKER_HOST value)."""

    def __init__(self, address: str, *, timeout: int = 120, tls_cert_path: Any = None, tls_verify: bool = True,
                 tls_from_env: bool = True):
        self.address = address
        self.timeout = timeout
        self._tls = (tls_cert_path, tls_verify, tls_from_env)
        self.client = EngineClient(address, self._connect)
        self.readiness = Readiness(self.client)
        self.converge = Converger(self.client, self.readiness)
        self.streams = Streams(self.client)
        self._snapshot: dict[str, list[ServiceStatus]] | None = None
        self._directories: dict[str, set[str]] = {}  # per project, from the last observation (see directories)
        self._owner_listing: tuple[str, Actual] | None = None  # what directories() observed, for a remove next

    # -- connection --------------------------------------------------------------------------------------------
    def _connect(self) -> docker.APIClient:
        if self.address.startswith("ssh://"):
            sdk.enable_ssh()
        cert_path, verify, from_env = self._tls
        tls = _tls_from_files(cert_path, verify) if cert_path else _tls_from_env() if from_env else None
        return sdk.APIClient(base_url=self.address, version="auto", timeout=self.timeout,
                             max_pool_size=MAX_WORKERS * 2, tls=tls)

    @property
    def api(self) -> docker.APIClient:
        return self.client.api

    def ping(self) -> str:
        with self.client.guard():
            api = self.api
            if not self.client.fresh:
                api.ping()
            self.client.fresh = False
            return api.api_version

    def close(self) -> None:
        self.client.close()

    def info(self) -> EngineInfo:
        with self.client.guard():
            found = self.api.info()
        swarm = found.get("Swarm") or {}
        return EngineInfo(version=str(found.get("ServerVersion") or ""), memory=int(found.get("MemTotal") or 0),
                          cpus=int(found.get("NCPU") or 0),
                          swarm_manager=swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable")))

    def observe(self, project: str, images: bool = True) -> Actual:
        self._owner_listing = None
        actual = observe(self.client, project, images)
        self._directories[project] = {c.labels.get(labels.WORKING_DIR, "") for c in actual.containers}
        return actual

    def directories(self, project: str) -> set[str]:
        """The working directories of the project's containers. Right after a ``plan`` of the project (nothing
        changed on this driver since), the plan's observation answers: a no-op install lists the containers once.
        Otherwise the project is observed (its containers, networks and volumes listed at once: one round trip),
        and a ``remove`` of it right after (the owner check of an uninstall) acts on that observation."""
        seen = self._directories.pop(project, None)
        if seen is not None:
            return seen
        with self.client.guard():
            actual = self.observe(project, images=False)
        self._directories.pop(project, None)
        self._owner_listing = (project, actual)
        return {c.labels.get(labels.WORKING_DIR, "") for c in actual.containers}

    # -- plan and apply ----------------------------------------------------------------------------------------
    def plan(self, deployment: Deployment) -> Plan:
        with self.client.guard():
            work = diff(deployment, self.observe(deployment.project))
            resources.settle(self.api, deployment, work.actions)
            return work.plan()

    def apply(self, deployment: Deployment, plan: Plan | None = None, progress: Progress = no_progress) -> None:
        """Converge on the deployment. ``plan`` is informational: the driver re-observes, so an apply after a crash
        (or after the engine changed since planning) still does exactly what is needed."""
        self._owner_listing = None
        try:
            self._apply(deployment, progress)
        finally:
            self._directories.clear()  # what was observed no longer holds

    def _apply(self, deployment: Deployment, progress: Progress) -> None:
        converge = self.converge
        with self.client.guard():
            actual = self.observe(deployment.project)
            work = diff(deployment, actual)
            resources.settle(self.api, deployment, work.actions)
            converge.check_externals(deployment)
            converge.ensure_images(deployment, work, actual, progress)
            converge.recreate_networks(deployment, work, progress)
            converge.create_networks_and_volumes(deployment, work)
            removals = [a for a in work.actions if a.change.kind == "remove"]
            if removals:
                parallel([lambda a=a: converge.remove_containers(a.remove, a.change.service, progress, deployment)
                          for a in removals])
            converge.run_services(deployment, work, progress)
            for name in work.remove_networks:  # last: containers that used them were recreated or removed above
                if not self.client.remove_network(name):
                    progress("network", f"{name} is no longer used but stays: {STALE_ENDPOINTS}")

    def published(self, image: str) -> bool:
        return published(self.client, image)

    # -- status, logs, exec ------------------------------------------------------------------------------------
    @contextmanager
    def snapshot(self) -> Iterator[dict[str, list[ServiceStatus]]]:
        taken = self.status(None)
        self._snapshot = taken
        try:
            yield taken
        finally:
            self._snapshot = None

    def status(self, project: str | None = None) -> dict[str, list[ServiceStatus]]:
        if self._snapshot is not None:  # inside snapshot(): no engine call
            wanted = self._snapshot if project is None else {project: self._snapshot.get(project, [])}
            return {p: [dataclasses.replace(s) for s in found] for p, found in wanted.items()}
        with self.client.guard(), ThreadPoolExecutor(1) as pool:
            events = pool.submit(resources.oom_events, self.api)  # beside the list: one round trip, not two
            found = [c for c in containers(self.client, labels.managed_filter(project))
                     if not c.is_oneoff and c.project]
            use = resources.usage(self.address, found)  # the kernel's numbers: no engine call per container
            oom = resources.oom_killed(self.api, found, events.result(), use)
        grouped: dict[str, list[ServiceStatus]] = {project: []} if project is not None else {}
        for c in sorted(found, key=lambda c: (c.project, c.service, c.name)):
            status = service_status(c)
            resources.annotate(status, c, use.get(c.id), oom)
            grouped.setdefault(c.project, []).append(status)
        return grouped

    def addresses(self, project: str, service: str) -> dict[str, str]:
        with self.client.guard():
            found = containers(self.client, labels.project_filter(project))
        running = [c for c in found if c.service == service and c.state == "running" and not c.is_oneoff]
        return dict(running[0].addresses) if running else {}

    def placed(self) -> tuple[int, dict[str, dict[str, int | None]]]:
        with self.client.guard(), ThreadPoolExecutor(1) as pool:
            memory = pool.submit(resources.host_memory, self.api)  # beside the list: one round trip, not two
            found = containers(self.client, labels.managed_filter(None))
            return memory.result(), resources.placed(self.address, found)

    def logs(self, deployment: Deployment, request: LogRequest) -> Iterator[LogLine]:
        with self.client.guard():
            found = service_containers(self.client, deployment, request.services)
        return self.streams.log_lines(found, request)

    def exec(self, deployment: Deployment, service: str, command: list[str], *, env: Mapping[str, str] | None = None,
             stdout: IO[bytes] | None = None, stdin: IO[bytes] | None = None,
             stderr: IO[bytes] | None = None) -> int:
        return self.streams.exec(deployment, service, command, env=env, stdout=stdout, stdin=stdin, stderr=stderr)

    # -- restart / stop / remove -------------------------------------------------------------------------------
    def restart(self, deployment: Deployment, services: tuple[str, ...] = (),
                progress: Progress = no_progress) -> None:
        self._owner_listing = None
        with self.client.guard():
            stack = deployment.stack
            found = {c.service: c for c in service_containers(self.client, deployment, services)}
            order = [name for level in stack.levels() for name in level]
            for name in order:
                service = stack.service(name)
                if services and name not in services:
                    continue
                if service.replicas == 0:
                    continue
                if service.job and not services:
                    continue  # a completed one-shot is not restarted unless asked for by name
                container = found.get(name)
                if container is None:
                    raise ComponentError(f"service {name} of {deployment.project} has no container: install first")
                progress(name, "restarting")
                self.client.restart(container.id, int(service.stop_grace_period))
                self.readiness.await_ready(deployment, service, container.id, Action(Change(name, "start")), True,
                                           progress)

    def stop(self, deployment: Deployment, progress: Progress = no_progress, keep: Collection[str] = ()) -> None:
        self._owner_listing = None
        with self.client.guard():
            running = [c for c in containers(self.client, labels.project_filter(deployment.project))
                       if c.state in RUNNING_STATES and c.service not in keep]
            _in_reverse_dependency_order(deployment, running, lambda c: self._stop_one(deployment, c, progress))

    def _stop_one(self, deployment: Deployment, c: Observed, progress: Progress) -> None:
        progress(c.service or c.name, "stopping")
        if stop_container(self.client, deployment, c):
            progress(c.service or c.name, "stopped")

    def network_attached(self, name: str) -> list[str]:
        with self.client.guard():
            return self.client.network_attached(name)

    def remove(self, deployment: Deployment, purge: bool = False, progress: Progress = no_progress) -> list[str]:
        try:
            return self._remove(deployment, purge, progress)
        finally:
            self._directories.clear()  # what was observed no longer holds
            self._owner_listing = None

    def _remove(self, deployment: Deployment, purge: bool, progress: Progress) -> list[str]:
        project = deployment.project
        with self.client.guard():
            listed = self._owner_listing
            # the owner check just observed the project (an uninstall, under its lock): that observation holds
            actual = listed[1] if listed is not None and listed[0] == project else self.observe(project, images=False)
            external_nets = {n.name for n in deployment.stack.networks if n.external}
            ours = [name for name, net in actual.networks.items()
                    if name not in external_nets and (net.get("Labels") or {}).get(labels.PROJECT) == project]
            external_vols = {v.name for v in deployment.stack.volumes if v.external}
            volumes = [name for name, vol in actual.volumes.items() if purge and name not in external_vols
                       and (vol.get("Labels") or {}).get(labels.PROJECT) == project]
            if purge:
                released = self._purge(actual.containers, ours, volumes, progress)
            else:
                self._take_down(deployment, actual.containers, progress)
                # networks at once: nothing uses them any more
                released = dict(zip(ours, parallel([lambda n=n: self.client.remove_network(n) for n in ours]),
                                    strict=True))
        left: list[str] = []
        for name in ours:
            if not released.get(name, True):
                left.append(f"network {name} is left behind: {STALE_ENDPOINTS}; it is empty, a re-install "
                            f"reuses it, and after the engine's next restart 'docker network rm {name}' removes it")
                progress("network", left[-1])
        return left

    def _take_down(self, deployment: Deployment, found: list[Observed], progress: Progress) -> None:
        """Stop as docker compose's down does: each container once what depends on it has stopped, in parallel
        (orphans at once); each is removed as soon as it has stopped, but one at a time (one remover): removing
        many containers of one network at once leaves Docker 20.10 counting endpoints that are gone more often,
        and the network then stays until the engine restarts (bench/exits.py)."""
        with ThreadPoolExecutor(max_workers=1) as remover:
            removals: list[Future[None]] = []

            def take_down(c: Observed) -> None:
                if c.state in RUNNING_STATES:
                    self._stop_one(deployment, c, progress)
                removals.append(remover.submit(self._remove_one, c, progress))

            _in_reverse_dependency_order(deployment, found, take_down)
            for removal in removals:
                removal.result()

    def _purge(self, found: list[Observed], networks: list[str], volumes: list[str],
               progress: Progress) -> dict[str, bool]:
        """The data goes: order and graceful stops buy nothing. Every container is force-removed at once (the
        engine kills it; its anonymous volumes go with it, as ``compose down -v``), and each of the project's
        networks and volumes as soon as the last container using it is gone, beside the removals still under way.
        What a container that could not be removed uses is left; the first error is raised once the rest is
        done. Returns, per network, whether it went (False: Docker 20.10's stale endpoint count keeps it)."""
        users = {("network", n): sum(n in c.networks for c in found) for n in networks}
        users |= {("volume", v): sum(v in c.volumes for c in found) for v in volumes}
        released: dict[str, bool] = {}
        lock = threading.Lock()
        futures: list[Future[None]] = []

        with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
            def remove(kind: str, name: str) -> None:
                if kind == "network":
                    released[name] = self.client.remove_network(name)
                else:
                    self._remove_volume(name)

            def submit(kind: str, name: str) -> None:
                with lock:
                    futures.append(pool.submit(remove, kind, name))

            def container(c: Observed) -> None:
                self._remove_one(c, progress, volumes=True)
                for key in [("network", n) for n in c.networks] + [("volume", v) for v in c.volumes]:
                    with lock:
                        if key not in users:
                            continue
                        users[key] -= 1
                        last = users[key] == 0
                    if last:
                        submit(*key)

            for c in found:
                with lock:
                    futures.append(pool.submit(container, c))
            for key, count in users.items():
                if count == 0:  # used by no container (one that was stopped and removed by hand, say)
                    submit(*key)
            errors: list[BaseException] = []
            done = 0
            while True:
                with lock:
                    if done == len(futures):
                        break
                    future = futures[done]
                done += 1
                if (error := future.exception()) is not None:
                    errors.append(error)
        if errors:
            raise errors[0]
        return released

    def _remove_one(self, c: Observed, progress: Progress, volumes: bool = False) -> None:
        progress(c.service or c.name, "removing")
        self.client.gone(c.id, volumes=volumes)

    def _remove_volume(self, name: str) -> bool:
        try:
            self.api.remove_volume(name)
        except docker.errors.NotFound:
            pass
        return True

    # -- volumes -----------------------------------------------------------------------------------------------
    def volume_export(self, deployment: Deployment, volume: str, stdout: IO[bytes]) -> None:
        self.streams.volume_export(deployment, volume, stdout)

    def volume_import(self, deployment: Deployment, volume: str, stdin: IO[bytes]) -> None:
        self.streams.volume_import(deployment, volume, stdin)


def _in_reverse_dependency_order(deployment: Deployment, found: list[Observed],
                                 action: Callable[[Observed], None]) -> None:
    """Run ``action`` on every container, in parallel, each once every container of the services that depend on its
    service is done (as compose's down walks the graph): dependents before what they depend on, a service nothing
    depends on (and an orphan, of no service of the stack) at once. When ``action`` fails on a container, what its
    service depends on is left alone; the first exception is raised once the rest is done."""
    stack = deployment.stack
    known = {s.name for s in stack.services}
    dependents = {name: {s.name for s in stack.services if name in s.depends_on} for name in known}
    pending = {name: sum(c.service == name for c in found) for name in known}
    done = {name: threading.Event() for name in known}
    failed: set[str] = set()
    lock = threading.Lock()
    for name, count in pending.items():
        if count == 0:
            done[name].set()

    def run(c: Observed) -> None:
        ok = False
        try:
            if c.service in known:
                for dependent in dependents[c.service]:
                    done[dependent].wait()
                if failed & dependents[c.service]:
                    return  # a dependent could not be taken down: keep what it depends on
            action(c)
            ok = True
        finally:
            if c.service in known:
                with lock:
                    if not ok:
                        failed.add(c.service)
                    pending[c.service] -= 1
                    if pending[c.service] == 0:
                        done[c.service].set()

    # submitted dependents first (a bounded pool takes them in order): a container only ever waits for containers
    # submitted before it, which are running or done, so the waits cannot fill the pool
    level = {name: i for i, names in enumerate(stack.levels()) for name in names}
    ordered = sorted(found, key=lambda c: -level.get(c.service, 1 << 30))
    parallel([lambda c=c: run(c) for c in ordered])


def _tls_from_files(cert_path: Any, verify: bool) -> Any:
    """TLS with the client certificate and CA in ``cert_path`` (ca.pem, cert.pem, key.pem), read where they are."""
    import os

    from docker.tls import TLSConfig

    join = lambda name: os.path.join(str(cert_path), name)  # noqa: E731
    return TLSConfig(client_cert=(join("cert.pem"), join("key.pem")), ca_cert=join("ca.pem"), verify=verify)


def _tls_from_env() -> Any:
    """TLS settings from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH (as the docker CLI reads them), else None."""
    import os

    if not (os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("DOCKER_CERT_PATH")):
        return None
    from docker.utils import kwargs_from_env

    return kwargs_from_env().get("tls")
