"""Memory overcommit: the sum of the memory limits of everything placed on the host against the host's memory.

Limits keep one tenant from taking another's memory only while they add up to what the host has. ``doctor`` shows
the sum; ``install`` warns when the limits it is about to place would take the sum past the host's memory, and
refuses (nothing changed) past ``AGENCYSTACK_MEMORY_OVERCOMMIT`` times the host's memory (default 2.5: a limit is
headroom above what a service usually needs and services rarely sit at their limits together, but far beyond that
the host runs out before any tenant reaches its limit, and the kernel's OOM killer picks among all tenants instead
of within the one that overran). Services without a memory limit are named: they are bounded only by the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agencystack.limits import format_size

DEFAULT_RATIO = 2.5


@dataclass
class Capacity:
    host: int  # bytes
    committed: int  # bytes: the sum of memory limits
    unlimited: list[str] = field(default_factory=list)  # "project/service" without a memory limit

    @property
    def ratio(self) -> float:
        return self.committed / self.host if self.host else 0.0

    def describe(self) -> str:
        text = (f"memory limits total {format_size(self.committed)} on a {format_size(self.host)} host "
                f"({self.ratio:.0%})")
        if self.unlimited:
            shown = ", ".join(self.unlimited[:5]) + (f" and {len(self.unlimited) - 5} more"
                                                      if len(self.unlimited) > 5 else "")
            text += f"; without a limit: {shown}"
        return text


def assess(host: int, placed: Mapping[str, Mapping[str, int | None]], *, project: str | None = None,
           adding: Mapping[str, int | None] | None = None) -> Capacity:
    """The host's commitment; with ``project`` and ``adding``, as it will be once that project runs ``adding``
    (its current containers are replaced, not added to)."""
    total, unlimited = 0, []
    wanted = dict(placed)
    if project is not None and adding is not None:
        wanted[project] = dict(adding)
    for proj, services in sorted(wanted.items()):
        for service, limit in sorted(services.items()):
            if limit is None:
                unlimited.append(f"{proj}/{service}")
            else:
                total += limit
    return Capacity(host, total, unlimited)


def verdict(capacity: Capacity, ratio: float) -> str:
    """"ok", "warn" (past the host's memory) or "fail" (past ``ratio`` times it)."""
    if capacity.ratio > ratio:
        return "fail"
    if capacity.ratio > 1.0:
        return "warn"
    return "ok"
