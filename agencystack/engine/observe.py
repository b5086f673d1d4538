"""What the engine holds: containers, networks, volumes and images, from label-filtered *list* calls.

Observation is cheap: everything a plan needs comes from a constant number of list calls whatever the size of the
stack, with no per-container inspect, and ``status`` is one list call for all projects. The parsing is pure
(unit-tested without an engine); the calls go through an :class:`~agencystack.engine.client.EngineClient`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agencystack.engine import labels
from agencystack.errors import ComponentError
from agencystack.results import ServiceStatus, State

if TYPE_CHECKING:
    from agencystack.engine.client import EngineClient
    from agencystack.engine.interface import Deployment

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
    addresses: Mapping[str, str] = field(default_factory=dict)  # network name -> IPv4 address (running only)
    volumes: frozenset[str] = frozenset()  # the engine names of the volumes it mounts (named and anonymous)

    @property
    def config_hash(self) -> str:
        return self.labels.get(labels.CONFIG_HASH, "")

    @property
    def is_job(self) -> bool:
        return self.labels.get(labels.JOB) == "true"

    @property
    def is_oneoff(self) -> bool:
        return self.labels.get(labels.ONEOFF, "False") == "True"

    @property
    def is_helper(self) -> bool:
        return self.labels.get(labels.HELPER) == "true"

    @classmethod
    def from_list(cls, entry: Mapping[str, Any]) -> Observed:
        found = entry.get("Labels") or {}
        status = entry.get("Status") or ""
        match = _HEALTH.search(status)
        health = None if match is None else ("starting" if match.group(1) == "health: starting" else match.group(1))
        exited = _EXIT.match(status)
        names = entry.get("Names") or []
        attached = (entry.get("NetworkSettings") or {}).get("Networks") or {}
        return cls(id=entry["Id"], name=(names[0].lstrip("/") if names else ""),
                   project=found.get(labels.PROJECT, ""), service=found.get(labels.SERVICE, ""),
                   state=(entry.get("State") or "").lower(), status=status, health=health,
                   exit_code=int(exited.group(1)) if exited else None, labels=found,
                   image=entry.get("Image") or "", image_id=entry.get("ImageID") or "",
                   networks=frozenset(attached),
                   addresses={n: a["IPAddress"] for n, a in attached.items() if (a or {}).get("IPAddress")},
                   volumes=frozenset(m["Name"] for m in entry.get("Mounts") or []
                                     if m.get("Type") == "volume" and m.get("Name")))


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
            return (State.COMPLETED, "exited (0)") if c.is_job else (State.STOPPED, "exited (0)")
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


# -- list calls -------------------------------------------------------------------------------------------------
def containers(client: EngineClient, filters: Mapping[str, Any]) -> list[Observed]:
    return [Observed.from_list(e) for e in client.api.containers(all=True, filters=dict(filters))]


def observe(client: EngineClient, project: str, images: bool = True) -> Actual:
    """Four label-filtered list calls (containers, networks, volumes, images), run concurrently."""
    selector = labels.project_filter(project)
    api = client.api
    with ThreadPoolExecutor(max_workers=4) as pool:
        listed_containers = pool.submit(containers, client, selector)
        networks = pool.submit(api.networks, filters=selector)
        volumes = pool.submit(api.volumes, filters=selector)
        listed_images = pool.submit(api.images) if images else None
        return Actual(
            containers=listed_containers.result(),
            networks={n["Name"]: n for n in networks.result() or []},
            volumes={v["Name"]: v for v in (volumes.result() or {}).get("Volumes") or []},
            images=image_index(listed_images.result()) if listed_images else {},
        )


def service_containers(client: EngineClient, deployment: Deployment, services: Iterable[str] = ()) -> list[Observed]:
    """The containers of the named services (all when none are named), in dependency order."""
    wanted = set(services)
    unknown = wanted - {s.name for s in deployment.stack.services}
    if unknown:
        raise ComponentError(f"{deployment.component} has no service(s) {', '.join(sorted(unknown))}; it has "
                             f"{', '.join(s.name for s in deployment.stack.services)}")
    found = [c for c in containers(client, labels.project_filter(deployment.project))
             if c.service and not c.is_oneoff and (not wanted or c.service in wanted)]
    order = {name: i for i, level in enumerate(deployment.stack.levels()) for name in level}
    return sorted(found, key=lambda c: (order.get(c.service, 1 << 30), c.service))


def running_container(client: EngineClient, deployment: Deployment, service: str) -> Observed:
    found = service_containers(client, deployment, (service,))
    running = [c for c in found if c.state == "running"]
    if not running:
        state = found[0].status.lower() if found else "not created"
        raise ComponentError(f"service {service} of {deployment.project} is not running ({state}): "
                             "install or start it first")
    return running[0]
