"""What lifecycle hooks return: outcomes, statuses (aggregated by priority, as Juju does) and log lines.

Plain dataclasses: cheap to import, and ``dataclasses.asdict`` gives the ``--json`` form.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from agencystack.errors import UsageError


class State(str, Enum):
    """A service's or component's state. ``priority`` decides aggregation: the worst state wins."""

    FAILED = "failed"  # blocked: needs the operator (crashed, unhealthy, job failed, container missing)
    STARTING = "starting"  # waiting: created, starting, health not yet known
    STOPPED = "stopped"  # exists but not running (after a stop, or scaled to 0)
    RUNNING = "running"  # active: running and healthy (or no healthcheck)
    COMPLETED = "completed"  # a one-shot job that exited 0: done, as it should be (never makes a component worse)
    ABSENT = "absent"  # nothing deployed

    @property
    def priority(self) -> int:
        return _PRIORITY[self]

    @classmethod
    def aggregate(cls, states: list[State]) -> State:
        """The component's state from its services': the highest priority wins; no services means ABSENT."""
        return max(states, key=lambda s: s.priority, default=cls.ABSENT)


_PRIORITY = {State.FAILED: 5, State.STARTING: 4, State.STOPPED: 3, State.RUNNING: 2, State.COMPLETED: 1,
             State.ABSENT: 0}


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
    host: str = "local"  # the Docker host it runs on (agencystack.fleet; "local": the engine at DOCKER_HOST)

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
    since: str | None = None  # a duration ("10m") or a timestamp (see :func:`parse_since`)
    follow: bool = False

    def __post_init__(self) -> None:
        from agencystack import names
        from agencystack.errors import UsageError

        names.service_names(self.services)
        if self.tail is not None and not 0 <= self.tail <= MAX_TAIL:
            raise UsageError(f"invalid --tail {self.tail}: use 1 to {MAX_TAIL} lines, or 0 for everything")
        if self.since is not None:
            parse_since(self.since)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_since(value: str | None) -> float | None:
    """``LogRequest.since`` as a unix time: a duration ("10m", "1h30m", "45s"), a unix timestamp, or an RFC 3339 /
    ISO timestamp. Anything else is bad input (:class:`~agencystack.errors.UsageError`, exit 2)."""
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
        raise UsageError(f"invalid --since {value!r}: use a duration such as 10m or 2h, or a timestamp such as "
                         "2026-01-31T12:00:00Z") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True)
class LogLine:
    service: str
    text: str
