"""The Docker Engine driver: :class:`DockerDriver` implements :class:`agencystack.engine.Driver` with the docker SDK.

The only module of agencystack that imports ``docker``. Design notes:

- **Observation is cheap.** Everything the driver needs to plan comes from label-filtered *list* calls (containers,
  networks, volumes, images): a constant number of calls whatever the size of the stack, and no per-container
  inspect. ``status`` is one list call for all projects.
- **Desired vs actual by labels.** A service's container is ``<project>-<service>-1`` with compose's labels and
  ours; ``io.agencystack.config-hash`` (``Service.config_hash``) decides a recreate, as does a changed image id for
  the same reference, a missing network attachment (a create interrupted before every network was connected) or
  more than one container for the service.
- **Crash-safe.** Every step is re-derivable from what the engine holds: a SIGKILL at any point leaves at most one
  container per service (names are unique in the engine), and the next ``apply`` finishes or redoes the step.
- **Quiet when nothing changed.** ``apply`` re-observes, and a service whose container is current is not touched.
- **Secrets** (resolved ``${KEY}`` values) go only into a container's environment, never into arguments, labels
  or messages (container log lines quoted in errors are scrubbed of them).
"""

from __future__ import annotations

import heapq
import queue
import re
import socket as pysocket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, TypeVar

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions
from docker.types import LogConfig
from docker.types import Mount as DockerMount
from docker.utils import socket as docker_socket

from agencystack.engine import Change, Deployment, Plan, Progress, no_progress
from agencystack.engine import labels as L
from agencystack.engine import resources
from agencystack.errors import ComponentError, EngineUnreachable
from agencystack.results import LogLine, LogRequest, ServiceStatus, State
from agencystack.stack import Service, interpolate_all

T = TypeVar("T")

NS = 1_000_000_000
CHUNK = 64 * 1024
LOG_TAIL_IN_ERRORS = 10
MAX_WORKERS = 16
RUNNING_STATES = ("running", "restarting", "paused")  # states a container is stopped from
#: why Docker 20.10 may refuse to remove an empty network (only an engine restart clears it)
STALE_ENDPOINTS = "the engine counts endpoints on it that no longer exist (a Docker 20.10 bug)"
_CONNECTION_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                      urllib3.exceptions.ProtocolError, ConnectionError)


# ================================================================================================================
# errors
# ================================================================================================================
def _reason(exc: BaseException) -> str:
    """The innermost useful words of a connection failure ("No such file or directory", "Connection refused")."""
    seen: set[int] = set()
    stack = [exc]
    best = ""
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException):
                stack.append(arg)
            elif isinstance(arg, str) and not best:
                best = arg
        for nxt in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(nxt, BaseException):
                stack.append(nxt)
    return best or type(exc).__name__


def _is_connection_failure(exc: BaseException) -> bool:
    if isinstance(exc, _CONNECTION_ERRORS):
        return True
    return isinstance(exc, docker.errors.DockerException) and not isinstance(exc, docker.errors.APIError) and (
        "Error while fetching server API version" in str(exc) or "Connection" in str(exc))


def _is_conflict(exc: docker.errors.APIError) -> bool:
    return exc.status_code == 409 or "already in use" in str(exc) or "already exists" in str(exc)


def _explanation(exc: docker.errors.APIError) -> str:
    text = exc.explanation if isinstance(exc.explanation, str) and exc.explanation else str(exc)
    return text.strip()


# ================================================================================================================
# observation: parsing list-call data (pure functions, unit-tested without an engine)
# ================================================================================================================
_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")
_EXIT = re.compile(r"^(?:Exited|Restarting) \((-?\d+)\)")


@dataclass(frozen=True)
class Observed:
    """A container as one list call describes it."""

    id: str
    name: str
    project: str
    service: str
    state: str  # created | running | paused | restarting | removing | exited | dead
    status: str  # e.g. "Up 3 minutes (healthy)", "Exited (1) 2 seconds ago"
    health: str | None  # healthy | unhealthy | starting | None (no healthcheck)
    exit_code: int | None
    labels: Mapping[str, str]
    image: str
    image_id: str
    networks: frozenset[str]

    @property
    def config_hash(self) -> str:
        return self.labels.get(L.CONFIG_HASH, "")

    @property
    def is_job(self) -> bool:
        return self.labels.get(L.JOB) == "true"

    @property
    def is_oneoff(self) -> bool:
        return self.labels.get(L.ONEOFF, "False") == "True"

    @property
    def is_helper(self) -> bool:
        return self.labels.get(L.HELPER) == "true"

    @classmethod
    def from_list(cls, entry: Mapping[str, Any]) -> Observed:
        labels = entry.get("Labels") or {}
        status = entry.get("Status") or ""
        match = _HEALTH.search(status)
        health = None if match is None else ("starting" if match.group(1) == "health: starting" else match.group(1))
        exited = _EXIT.match(status)
        names = entry.get("Names") or []
        networks = ((entry.get("NetworkSettings") or {}).get("Networks") or {}).keys()
        return cls(id=entry["Id"], name=(names[0].lstrip("/") if names else ""),
                   project=labels.get(L.PROJECT, ""), service=labels.get(L.SERVICE, ""),
                   state=(entry.get("State") or "").lower(), status=status, health=health,
                   exit_code=int(exited.group(1)) if exited else None, labels=labels,
                   image=entry.get("Image") or "", image_id=entry.get("ImageID") or "",
                   networks=frozenset(networks))


def service_status(container: Observed) -> ServiceStatus:
    """Map a container's state and health (from list data) to a :class:`ServiceStatus`."""
    state, detail = _classify(container)
    return ServiceStatus(name=container.service or container.name, state=state, detail=detail,
                         container=container.name, image=container.image)


def _classify(c: Observed) -> tuple[State, str]:
    if c.state == "running":
        if c.health == "unhealthy":
            return State.FAILED, "unhealthy"
        if c.health == "starting":
            return State.STARTING, "health: starting"
        return State.RUNNING, "healthy" if c.health == "healthy" else "running"
    if c.state == "created":
        return State.STARTING, "created"
    if c.state == "restarting":
        return State.STARTING, f"restarting (last exit {c.exit_code})" if c.exit_code is not None else "restarting"
    if c.state == "exited":
        code = c.exit_code
        if code == 0:
            return (State.RUNNING, "completed") if c.is_job else (State.STOPPED, "exited (0)")
        if code in (137, 143) and not c.is_job:
            # SIGKILL/SIGTERM of a long-running service: stopped (by an operator, or `agencystack stop`)
            return State.STOPPED, f"stopped (exit {code})"
        return State.FAILED, f"exited ({code})" if code is not None else "exited"
    if c.state == "dead":
        return State.FAILED, "dead"
    if c.state == "paused":
        return State.STOPPED, "paused"
    if c.state == "removing":
        return State.STOPPED, "removing"
    return State.FAILED, c.state or "unknown"


def normalize_ref(ref: str) -> str:
    """An image reference as the engine lists it in RepoTags/RepoDigests (``busybox`` → ``busybox:latest``)."""
    name, at, digest = ref.partition("@")
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if name.startswith("library/") and name.count("/") == 1:
        name = name[len("library/"):]
    if at:
        return f"{name.rsplit(':', 1)[0] if ':' in name.rsplit('/', 1)[-1] else name}@{digest}"
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def image_index(images: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """{normalized reference: image id} from an images list call."""
    index: dict[str, str] = {}
    for image in images:
        for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or []):
            if ref and not ref.startswith("<none>"):
                index[normalize_ref(ref)] = image["Id"]
    return index


@dataclass
class Actual:
    """What the engine holds for one project (from four list calls)."""

    containers: list[Observed]
    networks: dict[str, Mapping[str, Any]]  # engine name -> list entry
    volumes: dict[str, Mapping[str, Any]]  # engine name -> list entry
    images: dict[str, str]  # normalized ref -> image id


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


def _resolved_env(deployment: Deployment, service: Service) -> dict[str, str]:
    try:
        return interpolate_all(service.environment, deployment.env)
    except KeyError as exc:
        raise ComponentError(f"service {service.name!r} of {deployment.project} references unset setting "
                             f"{exc.args[0]}") from None
    except ValueError as exc:
        raise ComponentError(f"service {service.name!r} of {deployment.project} has a malformed ${{...}} "
                             f"reference in its environment ({exc})") from None


def _config_hash(deployment: Deployment, service: Service) -> str:
    _resolved_env(deployment, service)  # a readable error for a missing key
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
        out[L.network_name(deployment.project, net, spec.external)] = own + [a for a in aliases if a != service.name]
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
            digest = _config_hash(deployment, service)
            actions.append(_service_action(deployment, service, found, actual, digest))

    desired = {L.network_name(project, n.name): n for n in stack.networks if not n.external}
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
    create_volumes = [L.volume_name(project, v.name) for v in stack.volumes
                      if not v.external and L.volume_name(project, v.name) not in actual.volumes]
    return Diff(project, actions, create_networks, create_volumes, recreate_networks, remove_networks)


def _service_action(deployment: Deployment, service: Service, found: list[Observed], actual: Actual,
                    digest: str) -> Action:
    name = service.name
    expected = L.container_name(deployment.project, name)
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


def _scrub(deployment: Deployment, text: str) -> str:
    """Replace the deployment's setting values (its secrets among them) in text quoted from the engine.

    The driver cannot tell secrets from other settings, so every value long enough to be one is hidden (ports and
    short words stay readable); the CLI's redactor, which knows the secrets, runs on top of this."""
    values = {v for v in deployment.env.values() if len(v) >= 8 and not v.isdigit()}
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


# ================================================================================================================
# the scheduler's gates
# ================================================================================================================
class _Gate:
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


class _Skipped(Exception):
    """A service not attempted because a dependency failed (the dependency's error is the one reported)."""


# ================================================================================================================
# the driver
# ================================================================================================================
class DockerDriver:
    """:class:`agencystack.engine.Driver` on a Docker Engine at ``address`` (a DOCKER_HOST value)."""

    def __init__(self, address: str, *, timeout: int = 120):
        self.address = address
        self.timeout = timeout
        self._api: docker.APIClient | None = None
        self._fresh = False
        self._lock = threading.Lock()
        # Container exits, one at a time: Debian 12's docker.io 20.10.24 deadlocks in libnetwork when two containers
        # of one network exit at once (network and store locks taken in opposite orders by their endpoint Leave;
        # seen here in a goroutine dump, after which every call touching those containers hung until a restart).
        # Creates and starts stay parallel; only stops, kills and forced removals of running containers queue here.
        self._exits = threading.Lock()

    # -- connection --------------------------------------------------------------------------------------------
    @property
    def api(self) -> docker.APIClient:
        if self._api is None:
            with self._lock:
                if self._api is None:
                    with self._guard():
                        self._api = docker.APIClient(base_url=self.address, version="auto", timeout=self.timeout,
                                                     max_pool_size=MAX_WORKERS * 2, tls=_tls_from_env())
                    self._fresh = True
        return self._api

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn a lost or refused connection into EngineUnreachable naming the address."""
        try:
            yield
        except EngineUnreachable:
            raise
        except Exception as exc:
            if _is_connection_failure(exc):
                raise EngineUnreachable(
                    f"cannot reach the container engine at {self.address}: {_reason(exc)}") from None
            raise

    def ping(self) -> str:
        with self._guard():
            api = self.api
            if not self._fresh:
                api.ping()
            self._fresh = False
            return api.api_version

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    # -- observation -------------------------------------------------------------------------------------------
    def _containers(self, filters: Mapping[str, Any]) -> list[Observed]:
        return [Observed.from_list(e) for e in self.api.containers(all=True, filters=dict(filters))]

    def observe(self, project: str, images: bool = True) -> Actual:
        """Four label-filtered list calls (containers, networks, volumes, images), run concurrently."""
        selector = L.project_filter(project)
        api = self.api
        with ThreadPoolExecutor(max_workers=4) as pool:
            containers = pool.submit(self._containers, selector)
            networks = pool.submit(api.networks, filters=selector)
            volumes = pool.submit(api.volumes, filters=selector)
            listed = pool.submit(api.images) if images else None
            return Actual(
                containers=containers.result(),
                networks={n["Name"]: n for n in networks.result() or []},
                volumes={v["Name"]: v for v in (volumes.result() or {}).get("Volumes") or []},
                images=image_index(listed.result()) if listed else {},
            )

    # -- plan --------------------------------------------------------------------------------------------------
    def plan(self, deployment: Deployment) -> Plan:
        with self._guard():
            work = diff(deployment, self.observe(deployment.project))
            resources.settle(self.api, deployment, work.actions)
            return work.plan()

    # -- apply -------------------------------------------------------------------------------------------------
    def apply(self, deployment: Deployment, plan: Plan | None = None, progress: Progress = no_progress) -> None:
        """Converge on the deployment. ``plan`` is informational: the driver re-observes, so an apply after a crash
        (or after the engine changed since planning) still does exactly what is needed."""
        with self._guard():
            actual = self.observe(deployment.project)
            work = diff(deployment, actual)
            resources.settle(self.api, deployment, work.actions)
            self._check_externals(deployment)
            self._ensure_images(deployment, work, actual, progress)
            self._recreate_networks(deployment, work, progress)
            self._create_networks_and_volumes(deployment, work)
            removals = [a for a in work.actions if a.change.kind == "remove"]
            if removals:
                self._parallel([lambda a=a: self._remove_containers(a.remove, a.change.service, progress,
                                                                    deployment) for a in removals])
            self._run_services(deployment, work, progress)
            for name in work.remove_networks:  # last: containers that used them were recreated or removed above
                if not self._remove_network(name):
                    progress("network", f"{name} is no longer used but stays: {STALE_ENDPOINTS}")

    def _parallel(self, calls: list[Callable[[], T]]) -> list[T]:
        if not calls:
            return []
        if len(calls) == 1:
            return [calls[0]()]
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(calls))) as pool:
            futures = [pool.submit(call) for call in calls]
            return [f.result() for f in futures]

    def _check_externals(self, deployment: Deployment) -> None:
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

    def _ensure_images(self, deployment: Deployment, work: Diff, actual: Actual, progress: Progress) -> None:
        """Every image a create needs is local (pulled if possible) before any container is touched."""
        needed: dict[str, str] = {}  # ref -> first service using it
        for action in work.actions:
            if action.change.kind in ("create", "recreate"):
                service = deployment.stack.service(action.change.service)
                needed.setdefault(service.image, service.name)
        missing = {ref: svc for ref, svc in needed.items() if normalize_ref(ref) not in actual.images}
        if missing:
            self._parallel([lambda r=ref, s=svc: self._pull(r, s, progress) for ref, svc in missing.items()])

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
            reason = _explanation(exc)
        if not reason:
            try:
                self.api.inspect_image(ref)
                return
            except docker.errors.ImageNotFound:
                reason = "the pull finished without the image"
        raise ComponentError(f"image {ref} for service {service} is not available locally and could not be pulled "
                             f"({reason}); check the image setting, or configure a registry mirror")

    def published(self, image: str) -> bool:
        with self._guard():
            try:
                self.api.inspect_distribution(image)
                return True
            except docker.errors.NotFound:
                return False
            except docker.errors.APIError as exc:
                reason = _explanation(exc)
                if exc.status_code in (401, 403, 404) or "manifest unknown" in reason or "not found" in reason:
                    return False  # Docker Hub answers 401 for a repository that does not exist
                raise ComponentError(f"cannot ask the registry about {image}: {reason}") from None

    def _recreate_networks(self, deployment: Deployment, work: Diff, progress: Progress) -> None:
        """Networks whose settings changed: take their services' containers off, remove, create again (below)."""
        if not work.recreate_networks:
            return
        for action in work.actions:
            if action.change.reason.startswith("network "):
                self._remove_containers(action.remove, action.change.service, progress, deployment)
                action.remove = []
        for name in work.recreate_networks:
            progress("network", f"recreating {name}")
            if not self._remove_network(name):
                raise ComponentError(f"cannot recreate network {name}: {STALE_ENDPOINTS}; restart the engine, then "
                                     "re-run")
            work.create_networks.append(name)

    def _create_networks_and_volumes(self, deployment: Deployment, work: Diff) -> None:
        meta = dict(client=deployment.client, component=deployment.component, version=deployment.version)
        stack = deployment.stack
        for net in stack.networks:
            name = L.network_name(deployment.project, net.name)
            if net.external or name not in work.create_networks:
                continue
            try:
                self.api.create_network(name, driver="bridge", internal=net.internal, check_duplicate=True,
                                        labels=L.network_labels(project=deployment.project, network=net.name,
                                                                **meta))
            except docker.errors.APIError as exc:
                if _is_conflict(exc):
                    continue
                hint = ""
                if "address pool" in str(exc):
                    hint = ("; every client's stack has its own networks: give the engine more (smaller) "
                            "address pools with \"default-address-pools\" in /etc/docker/daemon.json, e.g. "
                            "{\"base\": \"10.200.0.0/14\", \"size\": 24}")
                raise ComponentError(f"cannot create network {name}: {_explanation(exc)}{hint}") from None
        for vol in stack.volumes:
            name = L.volume_name(deployment.project, vol.name)
            if vol.external or name not in work.create_volumes:
                continue
            self.api.create_volume(name, driver="local",
                                   labels=L.volume_labels(project=deployment.project, volume=vol.name, **meta))

    def _remove_containers(self, containers: list[Observed], service: str, progress: Progress,
                           deployment: Deployment) -> None:
        if not containers:
            return
        progress(service, "removing")
        for c in containers:
            if self._stop_container(deployment, c):
                self._gone(c.id)

    def _gone(self, container: str, timeout: float = 60) -> None:
        """Remove a container (by id or name) and return once the engine no longer has it. A removal still in
        progress (e.g. requested by an apply that was killed) is waited for, so that its name is free."""
        try:
            with self._exits:  # a forced removal of a running container is an exit too
                self.api.remove_container(container, v=False, force=True)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if "in progress" not in str(exc):
                raise
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.api.inspect_container(container)
            except docker.errors.NotFound:
                return
            time.sleep(0.1)
        raise ComponentError(f"container {container} is still being removed after {timeout:g}s")

    def _run_services(self, deployment: Deployment, work: Diff, progress: Progress) -> None:
        stack = deployment.stack
        actions = {a.change.service: a for a in work.actions if a.change.kind != "remove"}
        runnable = [s for level in stack.levels() for s in level if stack.service(s).replicas]
        created = {name: _Gate() for name in runnable}
        started = {name: _Gate() for name in runnable}
        ready = {name: _Gate() for name in runnable}
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
                        raise _Skipped(dep)
                container_id, fresh = self._converge_service(deployment, service, action, progress, precreated)
                started[name].set(True)
                self._await_ready(deployment, service, container_id, actions[name], fresh, progress)
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
        real = [(n, e) for n, e in errors.items() if not isinstance(e, _Skipped)]
        order = {n: i for i, n in enumerate(runnable)}
        real.sort(key=lambda item: order[item[0]])
        for _, exc in real:  # the engine going away explains everything else
            if isinstance(exc, EngineUnreachable) or _is_connection_failure(exc):
                raise exc
        if real:
            first = real[0][1]
            if len(real) > 1 and isinstance(first, ComponentError):
                others = ", ".join(n for n, _ in real[1:])
                raise ComponentError(f"{first} (also failed: {others})") from None
            raise first

    def _converge_service(self, deployment: Deployment, service: Service, action: Action, progress: Progress,
                          precreated: str | None = None) -> tuple[str, bool]:
        """Create/recreate/start as the action says; return (container id, whether it was (re)started now)."""
        kind = action.change.kind
        if kind == "unchanged":
            assert action.current is not None
            return action.current.id, False
        if kind == "update":
            assert action.current is not None
            progress(service.name, f"updating limits in place: {service.limits.describe()}")
            if self._update_limits(deployment, service, action.current.id, below_use_ok=True):
                return action.current.id, False
            # it uses more than the new memory limit: the kernel cannot shrink it in place; a new container can
            progress(service.name, "uses more memory than its new limit: recreating it under the limit")
            action.remove = [action.current]
            container_id = self._replace(deployment, service, action, progress)
            progress(service.name, "starting")
            self._start(deployment, service, container_id)
            return container_id, True
        if kind == "start":
            assert action.start is not None
            if action.limits:
                self._update_limits(deployment, service, action.start.id)
            progress(service.name, "starting")
            self._start(deployment, service, action.start.id)
            return action.start.id, True
        container_id = precreated or self._replace(deployment, service, action, progress)
        progress(service.name, "starting")
        self._start(deployment, service, container_id)
        return container_id, True

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
            self._remove_containers(action.remove, service.name, progress, deployment)
        progress(service.name, "creating")
        return self._create(deployment, service, action.config_hash)

    def _create(self, deployment: Deployment, service: Service, digest: str) -> str:
        api = self.api
        env = _resolved_env(deployment, service)
        networks = service_networks(deployment, service)
        first = next(iter(networks), None)
        mounts = [DockerMount(target=m.target,
                              source=m.source if m.is_bind else _volume_engine_name(deployment, m.source),
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
            **resources.host_config(service),
        )
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
        labels = L.service_labels(project=deployment.project, service=service.name, client=deployment.client,
                                  component=deployment.component, version=deployment.version,
                                  working_dir=str(deployment.directory), config_hash=digest, job=service.job,
                                  depends_on=service.depends_on, user_labels=service.labels)
        labels.update(resources.labels(service))
        name = L.container_name(deployment.project, service.name)
        kwargs: dict[str, Any] = dict(
            image=service.image, command=service.command, entrypoint=service.entrypoint, name=name,
            environment=env, labels=labels, host_config=host_config, networking_config=networking,
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
                self._gone(name)
                time.sleep(0.2)
        container_id = created["Id"]
        for net, aliases in list(networks.items())[1:]:
            api.connect_container_to_network(container_id, net, aliases=aliases)
        return container_id

    def _service_error(self, deployment: Deployment, service: Service, what: str,
                       exc: docker.errors.APIError) -> ComponentError:
        text = _explanation(exc)
        if "no space left on device" in text:
            text += " (the engine's disk is full: free space on its data root, then re-run)"
        return ComponentError(_scrub(deployment, f"service {service.name} of {deployment.project} {what}: {text}"))

    def _start(self, deployment: Deployment, service: Service, container_id: str) -> None:
        try:
            self.api.start(container_id)
        except docker.errors.APIError as exc:
            text = _explanation(exc)
            if "address already in use" in text or "port is already allocated" in text:
                port = re.search(r"(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]*\]):(\d+)", text)
                where = (f"{port.group(1)}:{port.group(2)}" if port else
                         ", ".join(f"{p.host_ip}:{p.host}" for p in service.ports))
                raise ComponentError(f"port {where} for service {service.name} of {deployment.project} is already "
                                     "in use: free it or choose another port") from None
            raise self._service_error(deployment, service, "cannot start", exc) from None

    # -- readiness ---------------------------------------------------------------------------------------------
    def _await_ready(self, deployment: Deployment, service: Service, container_id: str, action: Action,
                     fresh: bool, progress: Progress) -> None:
        """Wait until the service is healthy (healthcheck), completed (job) or running; bounded by start_timeout."""
        current = action.current
        has_health = service.healthcheck is not None and service.healthcheck.test[0] != "NONE"
        if not fresh and current is not None:
            if service.job and current.state == "exited" and current.exit_code == 0:
                return
            if not service.job and (not has_health or current.health == "healthy"):
                return
        if not has_health and not service.job:
            return
        if service.job:
            progress(service.name, "waiting for completion")
            self._await_job(deployment, service, container_id, progress)
            return
        progress(service.name, "waiting for health")
        deadline = time.monotonic() + service.start_timeout
        delay = 0.05
        if fresh and has_health:
            # the first check runs one interval after the start: nothing to learn before
            time.sleep(max(0.0, min(service.healthcheck.interval, service.start_timeout) - 0.05))
        cap = min(0.5, max(0.1, service.healthcheck.interval / 2)) if has_health else 0.5
        while True:
            state = self.api.inspect_container(container_id)["State"]
            health = (state.get("Health") or {}).get("Status")
            if state.get("Status") in ("exited", "dead"):
                raise self._failure(deployment, service, container_id,
                                    f"exited ({state.get('ExitCode')}) while waiting for health", state)
            if health == "healthy":
                progress(service.name, "healthy")
                return
            if health == "unhealthy":
                raise self._failure(deployment, service, container_id, "is unhealthy", state)
            if time.monotonic() >= deadline:
                raise self._failure(deployment, service, container_id,
                                    f"did not become healthy within {service.start_timeout:g}s", state)
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(cap, delay * 1.5)

    def _await_job(self, deployment: Deployment, service: Service, container_id: str, progress: Progress) -> None:
        """Block on the engine's wait (no polling) until the one-shot exits; exit 0 means completed."""
        try:
            code = self.api.wait(container_id, timeout=max(1, int(service.start_timeout + 0.999)))["StatusCode"]
        except requests.exceptions.ReadTimeout:
            raise self._failure(deployment, service, container_id,
                                f"did not complete within {service.start_timeout:g}s") from None
        if code != 0:
            raise self._failure(deployment, service, container_id, f"job failed: exited ({code})")
        progress(service.name, "completed")

    def _failure(self, deployment: Deployment, service: Service, container_id: str, what: str,
                 state: Mapping[str, Any] | None = None) -> ComponentError:
        def scrub(text: str) -> str:
            return _scrub(deployment, text)

        parts = [f"service {service.name} of {deployment.project} {what}"]
        log = ((state or {}).get("Health") or {}).get("Log") or []
        if log:
            last = log[-1]
            output = " ".join((last.get("Output") or "").split())[:300]
            parts.append(f"last health check (exit {last.get('ExitCode')}): {scrub(output) or '(no output)'}")
        try:
            raw = self.api.logs(container_id, stdout=True, stderr=True, tail=LOG_TAIL_IN_ERRORS)
            lines = [scrub(line) for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]
        except docker.errors.APIError:
            lines = []
        message = "; ".join(parts)
        if lines:
            message += "; last log lines:\n" + "\n".join("  " + line for line in lines[-LOG_TAIL_IN_ERRORS:])
        return ComponentError(message)

    # -- status ------------------------------------------------------------------------------------------------
    def status(self, project: str | None = None) -> dict[str, list[ServiceStatus]]:
        with self._guard():
            containers = [c for c in self._containers(L.managed_filter(project)) if not c.is_oneoff and c.project]
            use = resources.usage(self.address, containers)  # the kernel's numbers: no engine call per container
            oom = resources.oom_killed(self.api, containers, resources.oom_events(self.api), use)
        grouped: dict[str, list[ServiceStatus]] = {project: []} if project is not None else {}
        for c in sorted(containers, key=lambda c: (c.project, c.service, c.name)):
            status = service_status(c)
            resources.annotate(status, c, use.get(c.id), oom)
            grouped.setdefault(c.project, []).append(status)
        return grouped

    def placed(self) -> tuple[int, dict[str, dict[str, int | None]]]:
        with self._guard():
            containers = self._containers(L.managed_filter(None))
            return resources.host_memory(self.api), resources.placed(self.address, containers)

    # -- logs --------------------------------------------------------------------------------------------------
    def _service_containers(self, deployment: Deployment, services: Iterable[str] = ()) -> list[Observed]:
        wanted = set(services)
        unknown = wanted - {s.name for s in deployment.stack.services}
        if unknown:
            raise ComponentError(f"{deployment.component} has no service(s) {', '.join(sorted(unknown))}; it has "
                                 f"{', '.join(s.name for s in deployment.stack.services)}")
        found = [c for c in self._containers(L.project_filter(deployment.project))
                 if c.service and not c.is_oneoff and (not wanted or c.service in wanted)]
        order = {name: i for i, level in enumerate(deployment.stack.levels()) for name in level}
        return sorted(found, key=lambda c: (order.get(c.service, 1 << 30), c.service))

    def logs(self, deployment: Deployment, request: LogRequest) -> Iterator[LogLine]:
        with self._guard():
            containers = self._service_containers(deployment, request.services)
        return self._log_lines(containers, request)

    def _log_lines(self, containers: list[Observed], request: LogRequest) -> Iterator[LogLine]:
        if not containers:
            return
        since = parse_since(request.since)
        tail = "all" if request.tail is None else request.tail
        with self._guard():
            if len(containers) == 1:
                c = containers[0]
                stream = self.api.logs(c.id, stream=True, follow=request.follow, tail=tail, since=since)
                try:
                    for line in split_lines(stream):
                        yield LogLine(c.service, line)
                finally:
                    _close(stream)
            elif not request.follow:
                # each stream is in time order: merge them lazily by timestamp
                streams = [self.api.logs(c.id, stream=True, follow=False, tail=tail, since=since, timestamps=True)
                           for c in containers]
                try:
                    merged = heapq.merge(*[_stamped(c.service, s) for c, s in zip(containers, streams, strict=True)])
                    for _, service, line in merged:
                        yield LogLine(service, line)
                finally:
                    for s in streams:
                        _close(s)
            else:
                yield from self._follow(containers, tail, since)

    def _follow(self, containers: list[Observed], tail: Any, since: Any) -> Iterator[LogLine]:
        lines: queue.Queue[Any] = queue.Queue(maxsize=1024)
        done = object()
        streams: list[Any] = []
        stop = threading.Event()

        def put(item: Any) -> bool:
            """Hand an item to the consumer (bounded: a slow reader slows the pumps); False once it has gone."""
            while not stop.is_set():
                try:
                    lines.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        def pump(c: Observed) -> None:
            try:
                stream = self.api.logs(c.id, stream=True, follow=True, tail=tail, since=since)
                streams.append(stream)
                if stop.is_set():
                    _close(stream)
                for line in split_lines(stream):
                    if not put(LogLine(c.service, line)):
                        break
            except Exception as exc:  # surfaced to the consumer
                put(exc)
            finally:
                put(done)

        threads = [threading.Thread(target=pump, args=(c,), daemon=True) for c in containers]
        for t in threads:
            t.start()
        remaining = len(threads)
        try:
            while remaining:
                item = lines.get()
                if item is done:
                    remaining -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            stop.set()
            for s in streams:
                _close(s)

    # -- exec --------------------------------------------------------------------------------------------------
    def _running_container(self, deployment: Deployment, service: str) -> Observed:
        found = self._service_containers(deployment, (service,))
        running = [c for c in found if c.state == "running"]
        if not running:
            state = found[0].status.lower() if found else "not created"
            raise ComponentError(f"service {service} of {deployment.project} is not running ({state}): "
                                 "install or start it first")
        return running[0]

    def exec(self, deployment: Deployment, service: str, command: list[str], *, env: Mapping[str, str] | None = None,
             stdout: IO[bytes] | None = None, stdin: IO[bytes] | None = None,
             stderr: IO[bytes] | None = None) -> int:
        out = stdout if stdout is not None else sys.stdout.buffer
        err = stderr if stderr is not None else sys.stderr.buffer
        with self._guard():
            container = self._running_container(deployment, service)
            api = self.api
            exec_id = api.exec_create(container.id, command, stdout=True, stderr=True, stdin=stdin is not None,
                                      environment=dict(env) if env else None)["Id"]
            if stdin is None:
                stream = api.exec_start(exec_id, stream=True, demux=True)
                try:
                    for chunk_out, chunk_err in stream:
                        if chunk_out:
                            out.write(chunk_out)
                        if chunk_err:
                            err.write(chunk_err)
                finally:
                    _close(stream)
            else:
                self._exec_with_stdin(exec_id, stdin, out, err)
            out.flush()
            return self._exit_code(exec_id)

    def _exec_with_stdin(self, exec_id: str, stdin: IO[bytes], out: IO[bytes], err: IO[bytes]) -> None:
        sock = self.api.exec_start(exec_id, socket=True)
        raw = getattr(sock, "_sock", sock)
        failure: list[BaseException] = []

        def feed() -> None:
            try:
                while True:
                    chunk = stdin.read(CHUNK)
                    if not chunk:
                        break
                    raw.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the command stopped reading: its exit code tells
            except BaseException as exc:
                failure.append(exc)
            finally:
                try:
                    raw.shutdown(pysocket.SHUT_WR)  # EOF on the command's stdin
                except OSError:
                    pass

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        try:
            for stream_id, data in docker_socket.frames_iter(sock, tty=False):
                (out if stream_id != docker_socket.STDERR else err).write(data)
        finally:
            writer.join(timeout=5)
            try:
                sock.close()
                if raw is not sock:
                    raw.close()
            except OSError:
                pass
        if failure:
            raise failure[0]

    def _exit_code(self, exec_id: str) -> int:
        deadline = time.monotonic() + 10
        while True:
            info = self.api.exec_inspect(exec_id)
            if not info.get("Running") or time.monotonic() > deadline:
                code = info.get("ExitCode")
                return int(code) if code is not None else -1
            time.sleep(0.01)

    # -- restart / stop / remove -------------------------------------------------------------------------------
    def restart(self, deployment: Deployment, services: tuple[str, ...] = (),
                progress: Progress = no_progress) -> None:
        with self._guard():
            stack = deployment.stack
            containers = {c.service: c for c in self._service_containers(deployment, services)}
            order = [name for level in stack.levels() for name in level]
            for name in order:
                service = stack.service(name)
                if services and name not in services:
                    continue
                if service.replicas == 0:
                    continue
                if service.job and not services:
                    continue  # a completed one-shot is not restarted unless asked for by name
                container = containers.get(name)
                if container is None:
                    raise ComponentError(f"service {name} of {deployment.project} has no container: install first")
                progress(name, "restarting")
                with self._exits:
                    self.api.restart(container.id, timeout=int(service.stop_grace_period))
                self._await_ready(deployment, service, container.id, Action(Change(name, "start")), True,
                                  progress)

    def _reverse_levels(self, deployment: Deployment, containers: list[Observed]) -> list[list[Observed]]:
        """Containers grouped for stopping: orphans first, then dependents before what they depend on."""
        stack = deployment.stack
        known = {s.name for s in stack.services}
        groups = [[c for c in containers if c.service not in known]]
        for level in reversed(stack.levels()):
            groups.append([c for c in containers if c.service in level])
        return [g for g in groups if g]

    def stop(self, deployment: Deployment, progress: Progress = no_progress) -> None:
        with self._guard():
            containers = [c for c in self._containers(L.project_filter(deployment.project))
                          if c.state in RUNNING_STATES]
            for group in self._reverse_levels(deployment, containers):
                self._parallel([lambda c=c: self._stop_one(deployment, c, progress) for c in group])

    def _grace(self, deployment: Deployment, service: str) -> int:
        try:
            return int(deployment.stack.service(service).stop_grace_period)
        except KeyError:
            return 10

    def _stop_one(self, deployment: Deployment, c: Observed, progress: Progress) -> None:
        progress(c.service or c.name, "stopping")
        if self._stop_container(deployment, c):
            progress(c.service or c.name, "stopped")

    def _stop_container(self, deployment: Deployment, c: Observed) -> bool:
        """Stop ``c`` if it runs, with its service's grace period, queued on ``self._exits``; False if it is gone."""
        if c.state not in RUNNING_STATES:
            return True
        try:
            with self._exits:
                self.api.stop(c.id, timeout=self._grace(deployment, c.service))
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as exc:
            if "in progress" not in str(exc):  # a removal already under way (a killed run's): it finishes it
                raise
        return True

    def remove(self, deployment: Deployment, purge: bool = False, progress: Progress = no_progress) -> list[str]:
        project = deployment.project
        left: list[str] = []
        with self._guard():
            actual = self.observe(project, images=False)
            # Stop dependents first (the exits queue on self._exits), then remove one at a time: removing many
            # containers of one network at once leaves Docker 20.10 counting endpoints that are gone (measured: 4
            # of 34 uninstalls of 37 services; 0 of 30 with serial removal), and then the network cannot be removed.
            for group in self._reverse_levels(deployment, actual.containers):
                self._parallel([lambda c=c: self._stop_one(deployment, c, progress) for c in group
                                if c.state in RUNNING_STATES])
            for c in actual.containers:
                progress(c.service or c.name, "removing")
                self._gone(c.id)
            external_nets = {n.name for n in deployment.stack.networks if n.external}
            for name, net in actual.networks.items():
                if name in external_nets or (net.get("Labels") or {}).get(L.PROJECT) != project:
                    continue
                if not self._remove_network(name):
                    left.append(f"network {name} is left behind: {STALE_ENDPOINTS}; it is empty, a re-install "
                                f"reuses it, and after the engine's next restart 'docker network rm {name}' removes it")
                    progress("network", left[-1])
            if purge:
                external_vols = {v.name for v in deployment.stack.volumes if v.external}
                for name, vol in actual.volumes.items():
                    if name in external_vols or (vol.get("Labels") or {}).get(L.PROJECT) != project:
                        continue
                    try:
                        self.api.remove_volume(name)
                    except docker.errors.NotFound:
                        pass
        return left

    def _remove_network(self, name: str) -> bool:
        """Remove a project network; False when only the engine's stale endpoint count keeps it (see :meth:`remove`).
        """
        try:
            self.api.remove_network(name)
            return True
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError as exc:
            if "active endpoints" not in str(exc):
                raise ComponentError(f"cannot remove network {name}: {_explanation(exc)}") from None
        # another project's container (e.g. the edge) joined our network: detach it, then remove
        for endpoint in (self.api.inspect_network(name).get("Containers") or {}):
            try:
                self.api.disconnect_container_from_network(endpoint, name, force=True)
            except docker.errors.NotFound:
                pass
        return self._remove_network_when_released(name)

    def _remove_network_when_released(self, name: str) -> bool:
        """Docker 20.10 may report 'active endpoints' for a moment after the last container left: retry briefly.
        If it still does with nothing attached, its endpoint count is stale (fixed only by an engine restart): False.
        """
        from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

        busy = retry_if_exception(lambda e: isinstance(e, docker.errors.APIError) and "active endpoints" in str(e))
        try:
            retry(retry=busy, stop=stop_after_delay(15), wait=wait_exponential(0.1, max=2),
                  reraise=True)(self.api.remove_network)(name)
            return True
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError as exc:
            try:
                attached = self.api.inspect_network(name).get("Containers") or {}
            except docker.errors.NotFound:
                return True
            if attached or "active endpoints" not in str(exc):
                raise ComponentError(f"cannot remove network {name}: {_explanation(exc)}") from None
            return False

    # -- volumes -----------------------------------------------------------------------------------------------
    def _helper(self, deployment: Deployment, volume: str, *, command: list[str] | None = None) -> tuple[str, str]:
        """Create (not start) a helper container mounting the volume at /volume; return (id, image)."""
        stack = deployment.stack
        try:
            spec = next(v for v in stack.volumes if v.name == volume)
        except StopIteration:
            raise ComponentError(f"{deployment.component} has no volume {volume!r}") from None
        engine_name = L.volume_name(deployment.project, volume, spec.external)
        try:
            self.api.inspect_volume(engine_name)
        except docker.errors.NotFound:
            raise ComponentError(f"volume {engine_name} does not exist: install {deployment.component} first") \
                from None
        local = image_index(self.api.images())
        candidates = [s.image for s in stack.services if any(m.source == volume for m in s.volumes)]
        candidates += [s.image for s in stack.services]
        image = next((ref for ref in candidates if normalize_ref(ref) in local), None)
        if image is None:
            image = next(iter(local), None)
        if image is None:
            raise ComponentError(f"no image is available locally to read volume {engine_name}")
        name = f"{deployment.project}-{volume}-helper-{int(time.time() * 1000) % 10**8}"
        labels = {L.PROJECT: deployment.project, L.ONEOFF: "True", L.HELPER: "true", L.MANAGED: "true",
                  L.CLIENT: deployment.client, L.COMPONENT: deployment.component}
        created = self.api.create_container(
            image, command=command, entrypoint=["sh", "-c"] if command else None, name=name, labels=labels,
            user="0", host_config=self.api.create_host_config(
                mounts=[DockerMount(target="/volume", source=engine_name, type="volume")], network_mode="none"))
        return created["Id"], image

    def volume_export(self, deployment: Deployment, volume: str, stdout: IO[bytes]) -> None:
        with self._guard():
            helper, _ = self._helper(deployment, volume)
            try:
                stream, _ = self.api.get_archive(helper, "/volume/.", chunk_size=CHUNK)
                for chunk in stream:
                    stdout.write(chunk)
                stdout.flush()
            finally:
                self.api.remove_container(helper, force=True)

    def volume_import(self, deployment: Deployment, volume: str, stdin: IO[bytes]) -> None:
        # the archive's first entry is the volume's root ("."): the engine does not apply its owner and mode to
        # the directory it extracts into, so the helper does (Postgres refuses a data directory with others' rights)
        head = _read_exactly(stdin, 512)
        script = "find /volume -mindepth 1 -maxdepth 1 -exec rm -rf {} +"
        root = _root_entry(head)
        if root is not None:
            uid, gid, mode = root
            script += f" && chown {uid}:{gid} /volume && chmod {mode:o} /volume"
        with self._guard():
            helper, image = self._helper(deployment, volume, command=[script])
            try:
                try:
                    self.api.start(helper)
                    code = self.api.wait(helper, timeout=600).get("StatusCode")
                except docker.errors.APIError as exc:
                    raise ComponentError(f"cannot empty volume {volume} with image {image} (it needs a shell): "
                                         f"{_explanation(exc)}") from None
                if code != 0:
                    raise ComponentError(f"emptying volume {volume} failed (exit {code})")

                def chunks() -> Iterator[bytes]:
                    if head:
                        yield head
                    while True:
                        chunk = stdin.read(CHUNK)
                        if not chunk:
                            return
                        yield chunk

                if not self.api.put_archive(helper, "/volume", chunks()):
                    raise ComponentError(f"the engine refused the archive for volume {volume}")
            finally:
                self.api.remove_container(helper, force=True)


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _root_entry(block: bytes) -> tuple[int, int, int] | None:
    """(uid, gid, mode) when a tar header block describes the archive's root directory ("." or "./")."""
    import tarfile

    if len(block) < 512:
        return None
    try:
        info = tarfile.TarInfo.frombuf(block[:512], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return None
    if info.isdir() and info.name.rstrip("/") in (".", ""):
        return int(info.uid), int(info.gid), int(info.mode) & 0o7777
    return None


def _tls_from_env() -> Any:
    """TLS settings from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH (as the docker CLI reads them), else None."""
    import os

    if not (os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("DOCKER_CERT_PATH")):
        return None
    from docker.utils import kwargs_from_env

    return kwargs_from_env().get("tls")


def _volume_engine_name(deployment: Deployment, volume: str) -> str:
    external = any(v.name == volume and v.external for v in deployment.stack.volumes)
    return L.volume_name(deployment.project, volume, external)


# ================================================================================================================
# log helpers
# ================================================================================================================
def _close(stream: Any) -> None:
    try:
        stream.close()
    except Exception:
        pass


def split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Chunks (as frames arrive) to text lines, holding at most one partial line."""
    pending = b""
    for chunk in chunks:
        if not chunk:
            continue
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", "replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", "replace").rstrip("\r")


def _stamped(service: str, chunks: Iterable[bytes]) -> Iterator[tuple[str, str, str]]:
    for line in split_lines(chunks):
        stamp, _, text = line.partition(" ")
        yield _sortable(stamp), service, text


def _sortable(stamp: str) -> str:
    """RFC 3339 with the fraction padded to 9 digits, so that strings sort as times."""
    main, dot, rest = stamp.partition(".")
    if not dot:
        return stamp
    digits = re.match(r"\d*", rest).group(0)
    return f"{main}.{digits.ljust(9, '0')}{rest[len(digits):]}"


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_since(value: str | None) -> float | None:
    """``--since``: a duration ("10m", "1h30m", "45s"), a unix timestamp, or an RFC 3339 / ISO timestamp."""
    if not value:
        return None
    text = value.strip()
    if re.fullmatch(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+", text):
        units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
        seconds = sum(float(n) * units[u] for n, u in _DURATION.findall(text))
        return max(0.001, time.time() - seconds)
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        from agencystack.errors import UsageError

        raise UsageError(f"invalid --since {value!r}: use a duration such as 10m or 2h, or a timestamp such as "
                         "2026-01-31T12:00:00Z") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
