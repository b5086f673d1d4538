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


#: the most lines ``--tail`` may ask for (0 asks for everything)
MAX_TAIL = 1_000_000


@dataclass(frozen=True)
class LogRequest:
    """What ``logs`` asks for. Checked when made, before any engine call: bad input is exit 2 and nothing else."""

    services: tuple[str, ...] = ()
    tail: int | None = 100  # None: everything
    since: str | None = None  # a duration ("10m") or a timestamp, as the engine accepts
    follow: bool = False

    def __post_init__(self) -> None:
        from agencystack import names
        from agencystack.errors import UsageError

        names.service_names(self.services)
        if self.tail is not None and not 0 <= self.tail <= MAX_TAIL:
            raise UsageError(f"invalid --tail {self.tail}: use 1 to {MAX_TAIL} lines, or 0 for everything")
        if self.since is not None:
            from agencystack.engine.docker import parse_since  # (moving next to LogRequest: see issue 10)

            parse_since(self.since)


@dataclass(frozen=True)
class LogLine:
    service: str
    text: str
