"""Placement: which Docker host a client lives on, decided once and recorded with the client.

* A client's placement is ``<root>/clients/<client>/placement.json`` (``{"host": NAME, ...}``), written by its
  first install (or restore) under the root's fleet lock. Every later command for any of the client's components
  opens its context on that host (:func:`place`, called by :meth:`agencystack.LifecycleContext.open`): the
  context's global settings carry the host's address, so its engine, its edge (the per-host client
  ``host-<name>``), its probes and its capacity checks are that host's. A client without a placement lives on the
  local engine (:data:`agencystack.fleet.LOCAL`), as before the fleet existed.
* ``install --host NAME`` places a new client there; naming another host than the one a client is placed on is
  refused (exit 2): ``agencystack move`` moves clients.
* Without ``--host``, a new client's install picks the host with the most free memory that meets the component's
  :class:`~agencystack.Resources` (its recommendation when a host can give it, else its minimum), asking every
  host in parallel. A root with only the local engine asks nothing (single-host use is unchanged).
* Per-host components (the edge) exist once per host: ``install edge --host NAME`` installs that host's edge;
  a client's install installs its own host's edge when it requires one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agencystack.errors import ComponentError, UsageError
from agencystack.fleet import LOCAL, DockerHost, Fleet

if TYPE_CHECKING:
    from agencystack.component import Component
    from agencystack.settings import GlobalSettings
    from agencystack.state import StateRoot

GB = 1024**3


def recorded(root: StateRoot, client: str, *, has_state: bool = False) -> str | None:
    """The host recorded for ``client`` while it has state (a component with settings or a manifest), else None.
    ``has_state``: the caller found such a component already (only the placement is read)."""
    if not has_state and not any(True for _ in root.components(client)):
        return None
    try:
        return json.loads(root.placement_file(client).read_text()).get("host") or None
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def host_of(root: StateRoot, client: str, *, has_state: bool = False) -> str:
    """The host ``client`` lives on (:data:`LOCAL` unless recorded otherwise); ``has_state`` as for
    :func:`recorded`."""
    return recorded(root, client, has_state=has_state) or LOCAL


def clients_on(root: StateRoot) -> dict[str, list[str]]:
    """{host name: [clients with state placed there]} (per-host clients such as ``host-<name>`` included)."""
    placed: dict[str, list[str]] = {}
    seen: set[str] = set()
    for found in root.components():
        if found.client in seen:
            continue
        seen.add(found.client)
        placed.setdefault(host_of(root, found.client), []).append(found.client)
    return placed


def remove_host(fleet: Fleet, name: str) -> DockerHost:
    """Unregister host ``name``: refused (exit 2) while clients are placed there (asked under the fleet lock)."""
    return fleet.remove(name, holding=lambda host: clients_on(fleet.root).get(host, []))


def record(root: StateRoot, client: str, host: str, *, timeout: float, moved_from: str | None = None) -> None:
    """Write ``client``'s placement (under the fleet lock). A client placed elsewhere meanwhile (two first installs
    of one client's components racing) is refused unless this is a move (``moved_from`` names the old host)."""
    from agencystack.state import atomic_write, ensure_dir, now

    if host == LOCAL and moved_from is None and not root.placement_file(client).exists():
        return  # the local engine, nothing recorded: single-host roots take no lock and write nothing
    with root.fleet_lock("place", timeout):
        current = recorded(root, client)
        if current == host and moved_from is None:
            return
        if current not in (None, host) and moved_from is None:
            raise ComponentError(f"client {client!r} was placed on host {current!r} meanwhile; run the command "
                                 "again")
        if current in (None, LOCAL) and host == LOCAL and moved_from is None:
            if root.placement_file(client).exists():
                root.placement_file(client).unlink()
            return
        ensure_dir(root.client_dir(client).parent)
        ensure_dir(root.client_dir(client))
        entry: dict[str, Any] = {"host": host, "placed_at": now()}
        if moved_from is not None:
            entry["moved_from"] = moved_from
        atomic_write(root.placement_file(client), json.dumps(entry, indent=2) + "\n")


@dataclass
class Room:
    """What a host can take, as its engine says: for ``hosts list`` and automatic placement."""

    host: DockerHost
    reachable: bool
    error: str = ""
    version: str = ""
    memory: int = 0  # bytes
    cpus: int = 0
    committed: int = 0  # bytes: the sum of the memory limits placed there
    unlimited: int = 0  # services without a memory limit
    nodes: list[Any] = field(default_factory=list)  # a swarm's nodes (agencystack.engine.swarm.Node)
    swarm_manager: bool = False  # the engine manages an active Swarm (registered as a swarm or not)

    @property
    def free(self) -> int:
        return max(self.memory - self.committed, 0)


def room(host: DockerHost) -> Room:
    """Ask ``host``'s engine (once for its facts, once for what it holds); unreachable is an answer too."""
    from agencystack.errors import EngineUnreachable

    driver = connect(host)
    try:
        info = driver.info()
        memory, placed = driver.placed()
        nodes = driver.nodes() if host.swarm else []
    except EngineUnreachable as exc:
        return Room(host, False, error=str(exc))
    finally:
        close = getattr(driver, "close", None)
        if close is not None:
            close()
    limits = [limit for services in placed.values() for limit in services.values()]
    return Room(host, True, version=info.version, memory=info.memory or memory, cpus=info.cpus,
                committed=sum(v for v in limits if v), unlimited=sum(1 for v in limits if v is None), nodes=nodes,
                swarm_manager=info.swarm_manager)


def rooms(hosts: list[DockerHost]) -> list[Room]:
    """:func:`room` of every host, asked in parallel (the slowest host bounds the wait, not the sum)."""
    from concurrent.futures import ThreadPoolExecutor

    if not hosts:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
        return list(pool.map(room, hosts))


def connect(host: DockerHost) -> Any:
    """The engine driver of ``host``: the one place a host's address (and TLS files) become a driver (the Swarm
    driver for a swarm: Swarm then places the client's services on its nodes)."""
    from agencystack.engine import connect as connect_engine

    if host.is_local:
        return connect_engine(host.docker_host)
    return connect_engine(host.docker_host, tls_cert_path=host.tls_cert_path, tls_verify=host.tls_verify,
                          tls_from_env=False, swarm=host.swarm)


def set_availability(host: DockerHost, node: str, availability: str) -> Any:
    """Drain (``drain``) or reopen (``active``) node ``node`` of swarm ``host``: Swarm moves the stateless tasks
    off a drained node; a stateful service stays pinned to its volume's node (its status says it waits for it).
    Returns the node as it is now; exit 2 for a host that is not a swarm."""
    if not host.swarm:
        raise UsageError(f"host {host.name!r} is not a swarm (register one with 'agencystack hosts add NAME "
                         "--docker-host MANAGER --swarm')")
    driver = connect(host)
    try:
        return driver.set_availability(node, availability)
    finally:
        driver.close()


def choose(fleet: Fleet, spec: Component) -> DockerHost:
    """The host with the most free memory that meets ``spec``'s resources (its recommendation where a host can
    give it, else its minimum); ComponentError naming each host's shortfall when none can."""
    found = rooms(fleet.hosts())
    res = spec.resources
    reasons, fits, recommended = [], [], []
    for r in found:
        if not r.reachable:
            reasons.append(f"{r.host.name}: unreachable")
            continue
        need = res.min_memory_gb * GB
        if r.memory < need or r.cpus < res.min_cpus or r.free < need:
            reasons.append(f"{r.host.name}: {r.free / GB:.1f} GB free of {r.memory / GB:.1f} GB, {r.cpus} CPUs "
                           f"(needs {res.min_memory_gb:g} GB, {res.min_cpus} CPUs)")
            continue
        fits.append(r)
        if r.free >= res.recommended_memory_gb * GB and r.cpus >= res.recommended_cpus:
            recommended.append(r)
    pool = recommended or fits
    if not pool:
        raise ComponentError(f"no host has room for {spec.name}: {'; '.join(reasons)} (add a host with "
                             "'agencystack hosts add', or name one with --host)")
    return max(pool, key=lambda r: (r.free, r.host.name == LOCAL)).host


def place(global_settings: GlobalSettings, spec: Component, client: str | None, *, host: str | None = None,
          action: str = "plan", relocating: bool = False) -> tuple[GlobalSettings, str]:
    """(the global settings on the host the request goes to, the client id) for one request.

    ``host`` is ``--host``: required to agree with a client's recorded placement unless ``relocating`` (a move
    opening the client on its target). Global settings already on a host (a sibling context) stay on it."""
    from agencystack import names

    fleet = global_settings.fleet()
    if spec.per_host:
        target = fleet.get(host) if host is not None else global_settings.host
        placed = global_settings.on_host(target)
        return placed, placed.host_client
    client = names.client_id(global_settings.client_id if client is None else client)
    if global_settings.placed and host is None:
        return global_settings, client  # already on the client's host (a fleet view's, a sibling context's)
    if fleet.single and host in (None, LOCAL):
        return global_settings, client  # no registry: nothing to read, nothing to ask (already the local host's)
    current = recorded(global_settings.state_root, client)
    if host is not None:
        target = fleet.get(host)
        if current is not None and current != target.name and not relocating:
            raise UsageError(f"client {client!r} is placed on host {current!r}, not {target.name!r}: "
                             f"'agencystack move -c {client} --to {target.name}' moves it")
    elif current is not None:
        try:
            target = fleet.get(current)
        except UsageError:
            raise UsageError(f"client {client!r} is placed on host {current!r}, which is not registered any more "
                             f"(register it again with 'agencystack hosts add {current} --docker-host ...')") from None
    elif action == "install":
        target = choose(fleet, spec)
    else:
        target = fleet.get(LOCAL)
    return global_settings.on_host(target), client
