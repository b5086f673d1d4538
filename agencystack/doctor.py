"""Host checks for ``agencystack doctor`` and for install's resource check.

Every check that does not pass names its fix (:attr:`Check.fix`): how to install or start the engine, how much
memory a component needs, what to do about a port that is taken.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from agencystack.errors import AgencyStackError

if TYPE_CHECKING:
    from agencystack.component import Component
    from agencystack.plugin_host import Plugins

MIN_MEMORY_GB = 4  # the seed's documented minimum
MIN_CPUS = 2
MIN_FREE_DISK_GB = 10
MEMORY_SLACK = 0.95  # a "4 GB" host reports a little less than 4 GB (the same slack as install's check)
EDGE_PORTS = (80, 443)


@dataclass
class Check:
    name: str
    result: Literal["ok", "warn", "fail"]
    detail: str
    fix: str = ""  # what to do about it, for every check that is not "ok"


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


def engine_fix(docker_host: str, which=shutil.which) -> str:
    """How to get an engine answering at ``docker_host``: install it, start it, or get access to its socket."""
    parts = urlsplit(docker_host)
    if parts.scheme != "unix":
        return (f"start the engine at {docker_host} or make it reachable from here, or point DOCKER_HOST at a "
                "running engine (unix:///var/run/docker.sock for this host's own)")
    sock = Path(parts.path)
    if which("dockerd") is None and which("docker") is None:
        return ("install Docker Engine: apt-get install -y docker.io (as root; it starts the engine), then run "
                "'agencystack doctor' again")
    if sock.exists() and not os.access(sock, os.R_OK | os.W_OK):
        return (f"no access to {sock}: add yourself to the docker group (sudo usermod -aG docker $USER, then log "
                "in again), or run as root")
    return (f"start the engine: systemctl start docker (Debian's docker.io listens on /var/run/docker.sock), or "
            f"'make engine' in the source tree for a local test engine; set DOCKER_HOST if it listens elsewhere "
            f"than {sock}")


def component_checks(components: Iterable[Component], memory: float, n_cpus: int) -> list[Check]:
    """One check per component that states what it needs: fail below its minimum, warn below upstream's
    recommendation, with the size to grow the host to."""
    checks = []
    for component in components:
        need = component.resources
        if not (need.min_memory_gb or need.min_cpus or need.recommended_memory_gb or need.recommended_cpus):
            continue
        name = component.name
        if memory < need.min_memory_gb * MEMORY_SLACK or n_cpus < need.min_cpus:
            checks.append(Check(f"resources for {name}", "fail",
                                f"{name} needs at least {need.min_memory_gb:g} GB memory and {need.min_cpus} "
                                f"CPUs; this host has {memory:.1f} GB and {n_cpus}",
                                f"resize this host to at least {max(need.min_memory_gb, need.recommended_memory_gb):g}"
                                f" GB memory and {max(need.min_cpus, need.recommended_cpus)} CPUs, or install "
                                f"{name} on a larger host ('agencystack install' refuses this one)"))
        elif memory < need.recommended_memory_gb * MEMORY_SLACK or n_cpus < need.recommended_cpus:
            short = ([f"{memory:.1f} GB memory (recommended: {need.recommended_memory_gb:g} GB)"]
                     if memory < need.recommended_memory_gb * MEMORY_SLACK else [])
            short += [f"{n_cpus} CPUs (recommended: {need.recommended_cpus})"] if n_cpus < need.recommended_cpus else []
            verb = "are" if len(short) > 1 else "is"
            checks.append(Check(f"resources for {name}", "warn",
                                f"this host's {' and '.join(short)} {verb} below upstream's recommendation for {name}",
                                f"expect a slow first boot; {need.recommended_memory_gb:g} GB and "
                                f"{need.recommended_cpus} CPUs make {name} comfortable"))
        else:
            checks.append(Check(f"resources for {name}", "ok",
                                f"{memory:.1f} GB / {n_cpus} CPUs (needs {need.min_memory_gb:g} GB / "
                                f"{need.min_cpus})"))
    return checks


def port_fix(port: int) -> str:
    return (f"see what holds it: ss -ltnp 'sport = :{port}'; stop or move that service (the edge, Traefik, needs "
            f"ports 80 and 443 for HTTP and ACME); if it is AgencyStack's own edge, nothing to do")


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


def run_checks(global_settings, components: Iterable[Component] = (), ports: Iterable[int] = EDGE_PORTS) -> list[Check]:
    """Engine, host memory and CPUs (overall and per component in ``components``), disk, ``ports``."""
    checks = []
    try:
        from agencystack.engine import connect

        engine = connect(global_settings.docker_host)
        version = engine.ping()
        checks.append(Check("engine", "ok", f"reachable at {global_settings.docker_host}, API {version}"))
        checks.append(overcommit(engine, global_settings.memory_overcommit))
    except AgencyStackError as exc:
        checks.append(Check("engine", "fail", str(exc), engine_fix(global_settings.docker_host)))
    mem = memory_gb()
    resize = f"resize this host to at least {MIN_MEMORY_GB} GB memory and {MIN_CPUS} CPUs"
    checks.append(Check("memory", "ok" if mem >= MIN_MEMORY_GB else "fail",
                        f"{mem:.1f} GB (minimum {MIN_MEMORY_GB} GB)", "" if mem >= MIN_MEMORY_GB else resize))
    n = cpus()
    checks.append(Check("cpus", "ok" if n >= MIN_CPUS else "fail", f"{n} (minimum {MIN_CPUS})",
                        "" if n >= MIN_CPUS else resize))
    checks.extend(component_checks(components, mem, n))
    where = _existing_parent(global_settings.root)
    free = shutil.disk_usage(where).free / 1024**3
    enough = free >= MIN_FREE_DISK_GB
    checks.append(Check("disk", "ok" if enough else "warn",
                        f"{free:.1f} GB free at {where} (want {MIN_FREE_DISK_GB} GB+)",
                        "" if enough else f"free space on the file system of {where}, or point AGENCYSTACK_ROOT "
                                          f"at a larger one"))
    for port in ports:
        free_port = port_free(port)
        checks.append(Check(f"port {port}", "ok" if free_port else "warn",
                            "free" if free_port else "in use (the edge needs it, unless it is the edge itself)",
                            "" if free_port else port_fix(port)))
    return checks


def plugin_checks(plugins: Plugins) -> list[Check]:
    """A warning per broken plugin (its entry point, distribution and one-line error) and per contested component
    (every claimant and how to keep one): what ``components list`` shows, so that ``doctor`` alone tells an operator
    that a plugin is not loaded."""
    from agencystack.plugin_host import contested_message

    checks = [Check(f"plugin {r.name}", "warn", f"{r.label} is broken, not loaded: {r.error}",
                    f"fix or uninstall {r.distribution}, or skip it with AGENCYSTACK_PLUGINS=-{r.name}")
              for r in plugins.broken]
    checks += [Check(f"component {name}", "warn", contested_message(name, claimants),
                     "keep one plugin (AGENCYSTACK_PLUGINS) or uninstall the other distribution")
               for name, claimants in plugins.contested.items()]
    return checks


def plugin_api_checks(plugins: Any) -> list[Check]:
    """A warning per plugin that uses a deprecated member of the plugin API or imports a module outside it
    (:meth:`agencystack.plugin_host.Plugins.warnings`)."""
    return [Check("plugin api", "warn", line, "update the plugin to the replacement named (docs/plugins.md, "
                  "CHANGELOG.md's Plugin API)") for line in plugins.warnings()]
