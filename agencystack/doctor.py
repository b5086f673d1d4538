"""Host checks for ``agencystack doctor`` and for install's resource check."""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agencystack.errors import AgencyStackError

MIN_MEMORY_GB = 4  # the seed's documented minimum
MIN_CPUS = 2
MIN_FREE_DISK_GB = 10


@dataclass
class Check:
    name: str
    result: Literal["ok", "warn", "fail"]
    detail: str


def memory_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def port_free(port: int, host: str = "0.0.0.0") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def overcommit(engine, ratio: float) -> Check:
    """The memory limits of everything placed on the engine's host against its memory (see agencystack.capacity)."""
    from agencystack.capacity import assess, verdict

    host, placed = engine.placed()
    capacity = assess(host, placed)
    result = verdict(capacity, ratio)
    detail = capacity.describe()
    if result != "ok":
        detail += ("; past the host's memory" if result == "warn" else
                   f"; past AGENCYSTACK_MEMORY_OVERCOMMIT={ratio:g}: install refuses to add more")
    return Check("memory limits", result if result != "fail" else "warn", detail)


def run_checks(base) -> list[Check]:
    checks = []
    try:
        from agencystack.engine import connect

        engine = connect(base.docker_host)
        version = engine.ping()
        checks.append(Check("engine", "ok", f"reachable at {base.docker_host}, API {version}"))
        checks.append(overcommit(engine, base.memory_overcommit))
    except AgencyStackError as exc:
        checks.append(Check("engine", "fail", str(exc)))
    mem = memory_gb()
    checks.append(Check("memory", "ok" if mem >= MIN_MEMORY_GB else "fail",
                        f"{mem:.1f} GB (minimum {MIN_MEMORY_GB} GB)"))
    n = cpus()
    checks.append(Check("cpus", "ok" if n >= MIN_CPUS else "fail", f"{n} (minimum {MIN_CPUS})"))
    where = _existing_parent(base.root)
    free = shutil.disk_usage(where).free / 1024**3
    checks.append(Check("disk", "ok" if free >= MIN_FREE_DISK_GB else "warn",
                        f"{free:.1f} GB free at {where} (want {MIN_FREE_DISK_GB} GB+)"))
    for port in (80, 443):
        free_port = port_free(port)
        checks.append(Check(f"port {port}", "ok" if free_port else "warn",
                            "free" if free_port else "in use (the edge needs it, unless it is the edge itself)"))
    return checks
