"""What lifecycle hooks return: outcomes, statuses (aggregated by priority, as Juju does) and log lines.

Plain dataclasses: cheap to import, and ``dataclasses.asdict`` gives the ``--json`` form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class State(str, Enum):
    """A service's or component's state. ``priority`` decides aggregation: the worst state wins."""

    FAILED = "failed"  # blocked: needs the operator (crashed, unhealthy, job failed, container missing)
    STARTING = "starting"  # waiting: created, starting, health not yet known
    STOPPED = "stopped"  # exists but not running (after a stop, or scaled to 0)
    RUNNING = "running"  # active: running and healthy (or no healthcheck), or a job that completed
    ABSENT = "absent"  # nothing deployed

    @property
    def priority(self) -> int:
        return _PRIORITY[self]

    @classmethod
    def aggregate(cls, states: list[State]) -> State:
        """The component's state from its services': the highest priority wins; no services means ABSENT."""
        return max(states, key=lambda s: s.priority, default=cls.ABSENT)


_PRIORITY = {State.FAILED: 4, State.STARTING: 3, State.STOPPED: 2, State.RUNNING: 1, State.ABSENT: 0}


@dataclass
class ServiceStatus:
    name: str
    state: State
    detail: str = ""  # e.g. "healthy", "exited (1)", "health: connection refused"
    container: str = ""
    image: str = ""
    memory_used: int | None = None  # bytes, as ``docker stats`` counts them; None when unknown
    memory_limit: int | None = None  # bytes the kernel enforces; None when unlimited or unknown
    oom_killed: bool = False  # the kernel killed it (or a process in it) at its memory limit


@dataclass
class ComponentStatus:
    client: str
    component: str
    state: State
    services: list[ServiceStatus] = field(default_factory=list)
    message: str = ""
    url: str | None = None

    @classmethod
    def from_services(cls, client: str, component: str, services: list[ServiceStatus], **kw: Any) -> ComponentStatus:
        return cls(client, component, State.aggregate([s.state for s in services]), services, **kw)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Outcome:
    """The result of install/restart/backup/restore/uninstall: one summary line plus details for ``--json``."""

    summary: str
    url: str | None = None
    changes: dict[str, list[str]] = field(default_factory=dict)  # e.g. {"create": [...], "unchanged": [...]}
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LogRequest:
    services: tuple[str, ...] = ()
    tail: int | None = 100  # None: everything
    since: str | None = None  # a duration ("10m") or a timestamp, as the engine accepts
    follow: bool = False


@dataclass(frozen=True)
class LogLine:
    service: str
    text: str
