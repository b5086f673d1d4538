"""Resource limits on the Docker Engine: applied at create, changed in place, observed for status and capacity.

- **Create.** :func:`engine_fields` gives the engine's HostConfig fields for a service's
  :class:`~agencystack.limits.Limits` (swap is capped at the memory limit: a tenant cannot escape its limit into
  swap), the same fields an in-place update sends; :func:`limit_labels` records them on the container
  (``io.agencystack.limits``), so that the plan sees them in its list call.
- **Change in place.** A service whose only difference is its limits is planned as ``update``: the engine's
  container update API changes the running container's cgroup (same container id, no restart, no downtime).
  Removing a limit cannot be done in place (the engine ignores a zero): that is a recreate. Nor can a memory limit
  go below what the container uses now (the kernel refuses): apply then recreates that one container under the new
  limit, saying so. A stopped container gets its new limits before it starts. Labels cannot change after create, so a container updated in place still carries
  its old label: :func:`settle` inspects only the containers whose label differs from the desired limits and drops
  the update when the engine already applies them.
- **Status: memory use against the limit, with no call per container.** The engine has no call that returns the
  stats of many containers: ``/containers/{id}/stats`` is per container and slow. Measured here (docker 20.10, 10
  busybox containers): ``stream=false`` 1.9 s per container (it waits for a second CPU sample), ``one-shot`` 1.0 s
  per container, serially; the list call 6 ms. The kernel already has the numbers: the container's memory cgroup,
  read from ``/sys/fs/cgroup`` when the engine runs on this host (a local socket): 0.2 ms per container, no engine
  call. :func:`usage` reads four small files per container (cgroup v1 and v2, cgroupfs and systemd layouts) and
  counts what ``docker stats`` shows (usage minus inactive file cache); the limit shown is the kernel's, so it is
  current after an in-place update. Where the cgroups are not readable (a remote engine) status shows the limit
  recorded in the label and no use, rather than one slow call per container.
- **OOM kills.** A container killed at its limit exits 137 with ``State.OOMKilled``, which only inspect shows;
  with a restart policy it is running again a moment later. Status asks the engine's event log once for recent
  ``oom`` events of managed containers (one call for the whole host), reads the cgroup's ``oom_kill`` counter of
  running containers, and inspects only the containers those point at (and exited ones with code 137).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agencystack.engine.interface import Change
from agencystack.engine import labels
from agencystack.limits import Limits, format_size

if TYPE_CHECKING:
    from agencystack.stack import Service

CGROUP_ROOT = Path("/sys/fs/cgroup")
UNLIMITED = 1 << 60  # cgroup v1 reports "no limit" as a page-rounded 2^63-1
OOM_WINDOW = 3600  # seconds of the engine's event log searched for OOM kills


# -- create -------------------------------------------------------------------------------------------------------
def engine_fields(service: Service) -> dict[str, Any]:
    """The service's limits as the engine's HostConfig fields: merged into a new container's host config, and the
    body of the container update that changes them in place. Memory and swap are set together (no swap beyond the
    limit; the engine refuses a memory limit above the current swap limit)."""
    limits = service.limits
    out: dict[str, Any] = {}
    if limits.memory is not None:
        out["Memory"] = out["MemorySwap"] = limits.memory
    if limits.memory_reservation is not None:
        out["MemoryReservation"] = limits.memory_reservation
    if limits.cpus is not None:
        out["NanoCpus"] = int(round(limits.cpus * 1e9))
    if limits.pids is not None:
        out["PidsLimit"] = limits.pids
    return out


def limit_labels(service: Service) -> dict[str, str]:
    return {labels.LIMITS: service.limits.token()} if service.limits.is_set else {}


# -- plan ---------------------------------------------------------------------------------------------------------
def _describe(values: Mapping[str, Any]) -> Limits:
    return Limits.model_construct(**{k: values.get(k) for k in ("memory", "memory_reservation", "cpus", "pids")})


def change(service: Service, container_labels: Mapping[str, str]) -> tuple[str, str] | None:
    """("update" | "recreate", reason) when the container's recorded limits differ from the service's, else None."""
    wanted = service.limits.applied()
    had = Limits.from_token(container_labels.get(labels.LIMITS, ""))
    if had == wanted:
        return None
    reason = f"limits {_describe(had).describe()} -> {_describe(wanted).describe()}"
    if set(had) - set(wanted):
        return "recreate", reason + " (a limit removed: the engine cannot unset it in place)"
    return "update", reason + " (in place)"


def _actual(inspected: Mapping[str, Any]) -> dict[str, Any]:
    """The limits a container has now, from inspect's HostConfig, in :meth:`Limits.applied` form."""
    hc = inspected.get("HostConfig") or {}
    out: dict[str, Any] = {}
    if hc.get("Memory"):
        out["memory"] = int(hc["Memory"])
    if hc.get("MemoryReservation"):
        out["memory_reservation"] = int(hc["MemoryReservation"])
    if hc.get("NanoCpus"):
        out["cpus"] = hc["NanoCpus"] / 1e9
    if hc.get("PidsLimit") and hc["PidsLimit"] > 0:
        out["pids"] = int(hc["PidsLimit"])
    return out


def settle(api: Any, deployment: Any, actions: list[Any]) -> None:
    """Drop planned in-place updates the engine already applies (the label is older than an earlier update)."""
    pending = [a for a in actions if a.change.kind == "update" and a.current is not None]
    if not pending:
        return
    with ThreadPoolExecutor(max_workers=min(8, len(pending))) as pool:
        found = list(pool.map(lambda a: api.inspect_container(a.current.id), pending))
    for action, inspected in zip(pending, found, strict=True):
        service = deployment.stack.service(action.change.service)
        if _actual(inspected) == service.limits.applied():
            action.change = Change(action.change.service, "unchanged", "")


# -- change in place ----------------------------------------------------------------------------------------------
def update(api: Any, container_id: str, service: Service) -> None:
    """Apply the service's limits to the existing container (the engine's container update; same id, no restart).

    The docker SDK's ``update_container`` has no CPUs or pids: the API call is made with the SDK's own request
    helpers (:func:`engine_fields`)."""
    response = api._post_json(api._url("/containers/{0}/update", container_id), data=engine_fields(service))
    api._raise_for_status(response)


def below_use(exc: Exception) -> bool:
    """Whether the engine refused an update because the container uses more memory than the new limit (runc:
    "unable to set memory limit to N (current usage: M ...)"; the kernel: "device or resource busy")."""
    text = str(exc)
    return "unable to set memory limit" in text or "device or resource busy" in text


# -- status -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Usage:
    used: int | None  # bytes in use (without inactive file cache), None when unknown
    limit: int | None  # the limit the kernel enforces now, None when unlimited or unknown
    oom_kills: int = 0  # processes the kernel OOM-killed in this container since it started


def _read(path: str) -> str | None:
    """A cgroup file's text (a few hundred bytes at most), or None: plain os calls, read for every container on
    every status (a file object per read cost as much as the rest of a status)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 65536).decode()
    except OSError:
        return None
    finally:
        os.close(fd)


def _stat(text: str | None, key: str, default: int = 0) -> int:
    """The number of ``key`` in a cgroup stat file (``key value`` lines), ``default`` when absent: found, not
    parsed whole (memory.stat has some 40 lines, read per container on every status)."""
    if not text:
        return default
    at = 0 if text.startswith(f"{key} ") else text.find(f"\n{key} ")
    if at < 0:
        return default
    start = text.index(" ", at + 1) + 1
    end = text.find("\n", start)
    value = text[start:end if end >= 0 else None].strip()
    return int(value) if value.lstrip("-").isdigit() else default


#: where the engine puts a container's memory cgroup (cgroupfs and systemd drivers), per cgroup version
_LAYOUTS = (("memory/docker/{}", 1), ("memory/system.slice/docker-{}.scope", 1), ("docker/{}", 2),
            ("system.slice/docker-{}.scope", 2))


def _cgroup_dir(container_id: str, root: Path, first: int = 0) -> tuple[str, int, int] | None:
    """The container's memory cgroup directory, the cgroup version and the layout's index (try ``first`` first:
    one engine puts every container the same way)."""
    order = (first, *(i for i in range(len(_LAYOUTS)) if i != first))
    for index in order:
        rel, version = _LAYOUTS[index]
        path = f"{root}/{rel.format(container_id)}"
        if os.path.exists(f"{path}/{'memory.usage_in_bytes' if version == 1 else 'memory.current'}"):
            return path, version, index
    return None


def cgroup_usage(container_id: str, root: Path = CGROUP_ROOT, layout: list[int] | None = None) -> Usage | None:
    """What ``docker stats`` shows for memory, read from the kernel; None when the cgroup is not found here.
    ``layout`` (a one-item list) carries the layout found from one call to the next."""
    found = _cgroup_dir(container_id, root, layout[0] if layout else 0)
    if found is None:
        return None
    path, version, index = found
    if layout is not None:
        layout[:] = [index]
    if version == 1:
        usage, limit = _read(f"{path}/memory.usage_in_bytes"), _read(f"{path}/memory.limit_in_bytes")
        stat = _read(f"{path}/memory.stat")
        inactive = _stat(stat, "total_inactive_file", _stat(stat, "cache"))
        kills = _stat(_read(f"{path}/memory.oom_control"), "oom_kill")
    else:
        usage, limit = _read(f"{path}/memory.current"), _read(f"{path}/memory.max")
        inactive = _stat(_read(f"{path}/memory.stat"), "inactive_file")
        kills = _stat(_read(f"{path}/memory.events"), "oom_kill")
    if usage is None or not usage.strip().isdigit():
        return None
    used = max(0, int(usage) - inactive)
    bound = int(limit) if limit and limit.strip().isdigit() and int(limit) < UNLIMITED else None
    return Usage(used, bound, kills)


def local_engine(address: str) -> bool:
    """Whether the engine's cgroups are this host's (a unix socket on this machine)."""
    return address.startswith("unix://") and CGROUP_ROOT.is_dir()


def usage(address: str, containers: Iterable[Any]) -> dict[str, Usage]:
    """{container id: Usage} for running containers: from the kernel when local, else the label's limit only."""
    out: dict[str, Usage] = {}
    local = local_engine(address)
    layout = [0]
    for c in containers:
        if c.state not in ("running", "paused", "restarting"):
            continue
        found = cgroup_usage(c.id, layout=layout) if local else None
        if found is None:
            found = Usage(None, Limits.from_token(c.labels.get(labels.LIMITS, "")).get("memory"))
        out[c.id] = found
    return out


def oom_events(api: Any, window: float = OOM_WINDOW) -> set[str]:
    """Ids of managed containers the kernel OOM-killed (their main process) within ``window`` seconds: one call."""
    now = int(time.time())
    filters = {"type": ["container"], "event": ["oom"], "label": [f"{labels.MANAGED}=true"]}
    try:
        response = api._get(api._url("/events"), params={"since": now - int(window), "until": now,
                                                         "filters": json.dumps(filters)}, stream=False)
        api._raise_for_status(response)
    except Exception:  # noqa: BLE001 - best effort: inspect of exited containers still finds OOM kills
        return set()
    ids = set()
    for line in response.text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        ident = event.get("id") or (event.get("Actor") or {}).get("ID")
        if ident:
            ids.add(ident)
    return ids


def oom_killed(api: Any, containers: Iterable[Any], suspects: set[str], use: Mapping[str, Usage]) -> dict[str, int]:
    """{container id: restart count} of containers the engine marks ``State.OOMKilled``, inspecting only suspects:
    exited with 137, named by an ``oom`` event, or with OOM kills in their cgroup."""
    candidates = [c for c in containers
                  if c.id in suspects or (use.get(c.id) and use[c.id].oom_kills)
                  or (c.state in ("exited", "dead", "restarting") and c.exit_code == 137)]
    if not candidates:
        return {}

    def one(c: Any) -> tuple[str, dict[str, Any] | None]:
        try:
            return c.id, api.inspect_container(c.id)
        except Exception:  # noqa: BLE001 - gone meanwhile
            return c.id, None

    with ThreadPoolExecutor(max_workers=min(8, len(candidates))) as pool:
        found = list(pool.map(one, candidates))
    return {cid: int(info.get("RestartCount") or 0) for cid, info in found
            if info and (info.get("State") or {}).get("OOMKilled")}


def annotate(status: Any, container: Any, use: Usage | None, oom: dict[str, int]) -> None:
    """Put memory use, limit and an OOM kill on a ServiceStatus (the status hook adds the setting to raise)."""
    from agencystack.results import State

    label_limit = Limits.from_token(container.labels.get(labels.LIMITS, "")).get("memory")
    if use is not None:
        status.memory_used, status.memory_limit = use.used, use.limit
    else:
        status.memory_limit = label_limit
    limit = status.memory_limit or label_limit
    at = f" at its memory limit ({format_size(limit)})" if limit else " at its memory limit"
    kills = use.oom_kills if use is not None else 0
    if container.state == "running" and kills:  # the main process lives; others in it were killed
        status.oom_killed = True
        status.detail = f"{status.detail}; {kills} process(es) OOM-killed inside{at}"
    elif container.id in oom:
        status.oom_killed = True
        if container.state == "running":
            status.detail = f"{status.detail}; OOM-killed{at} and restarted ({oom[container.id]} restarts)"
        elif container.state == "restarting":
            status.state, status.detail = State.FAILED, f"OOM-killed{at}, restarting ({oom[container.id]} restarts)"
        else:
            status.state, status.detail = State.FAILED, f"OOM-killed{at} (exit {container.exit_code})"


# -- capacity -----------------------------------------------------------------------------------------------------
def placed(address: str, containers: Iterable[Any]) -> dict[str, dict[str, int | None]]:
    """{project: {service: memory limit or None (unlimited)}} of every managed container that holds memory (running,
    or set to restart); the kernel's current limit when local, else the recorded one."""
    out: dict[str, dict[str, int | None]] = {}
    local = local_engine(address)
    layout = [0]
    for c in containers:
        if not c.project or c.is_oneoff or c.is_job or c.state not in ("running", "restarting", "paused"):
            continue
        found = cgroup_usage(c.id, layout=layout) if local else None
        limit = found.limit if found is not None else Limits.from_token(c.labels.get(labels.LIMITS, "")).get("memory")
        out.setdefault(c.project, {})[c.service or c.name] = limit
    return out


def host_memory(api: Any) -> int:
    """The engine host's memory in bytes (``docker info``'s MemTotal; this machine's when the engine omits it)."""
    try:
        total = int(api.info().get("MemTotal") or 0)
    except Exception:  # noqa: BLE001
        total = 0
    return total or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
