"""The driver interface: what the core hands a container engine driver, and what it gets back.

The core hands a driver a :class:`Deployment` (one component's stack for one client, with the values its ``${KEY}``
references resolve to, and which of them are secrets) and asks it to ``plan``, ``apply``, report ``status``, stream
``logs``, ``exec`` a command with streamed output, ``restart`` and ``remove``.
:class:`agencystack.engine.docker.DockerDriver` implements it on the Docker Engine API; a Swarm driver can follow.

Labels identify everything a driver owns (see :mod:`agencystack.engine.labels`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from agencystack.logging import Redactor
    from agencystack.results import LogLine, LogRequest, ServiceStatus
    from agencystack.stack import Stack

#: "update": only the service's resource limits differ; they are changed on the running container (same id)
ChangeKind = Literal["create", "recreate", "start", "remove", "unchanged", "update"]

#: progress(service, message): called as work advances ("pulling", "creating", "waiting for health", "healthy")
Progress = Callable[[str, str], None]


def no_progress(service: str, message: str) -> None:
    """A Progress that shows nothing (``--json``)."""


@dataclass(frozen=True)
class Deployment:
    """One component's desired state for one client, as the driver needs it."""

    project: str  # engine project name, e.g. "acme_posthog" (compose's project name too)
    client: str
    component: str
    stack: Stack
    env: Mapping[str, str]  # what ``${KEY}`` in the stack resolves to (the component's .env and overrides)
    directory: Path  # the component's directory (compose's working_dir label; relative bind mounts)
    version: str = ""  # the component's version, recorded in labels
    secret_keys: frozenset[str] = frozenset()  # which keys of ``env`` hold secrets

    def redactor(self) -> Redactor:
        """The redactor for text quoted from the engine: it masks this deployment's secret values, nothing else."""
        from agencystack.logging import Redactor

        return Redactor(self.env[key] for key in self.secret_keys if key in self.env)


@dataclass(frozen=True)
class Change:
    service: str
    kind: ChangeKind
    reason: str = ""  # e.g. "image changed", "config hash differs", "not running", "orphaned"; for an unchanged
    # service that is not well: "unhealthy" or "restarting" (see :data:`AILING`)


AILING = ("unhealthy", "restarting")


@dataclass(frozen=True)
class EngineInfo:
    """What an engine says about itself and its host (``hosts list``, placement, the resources check)."""

    version: str  # the engine's version, e.g. "20.10.24"
    memory: int  # the host's memory in bytes (0: unknown)
    cpus: int  # CPUs the engine can use (0: unknown)
    swarm_manager: bool = False  # the engine is a manager of an active Swarm (``hosts add`` detects a swarm so)


@dataclass
class Plan:
    """What ``apply`` would do; ``agencystack plan`` prints it."""

    project: str
    changes: list[Change] = field(default_factory=list)
    create_networks: list[str] = field(default_factory=list)
    create_volumes: list[str] = field(default_factory=list)
    recreate_networks: list[str] = field(default_factory=list)  # settings changed: services on them recreated
    remove_networks: list[str] = field(default_factory=list)  # the project's, no longer in its stack

    @property
    def is_noop(self) -> bool:
        return (not self.create_networks and not self.create_volumes and not self.recreate_networks
                and not self.remove_networks and all(c.kind == "unchanged" for c in self.changes))

    @property
    def ailing(self) -> list[Change]:
        """Services the plan leaves as they are although they are unhealthy or restarting."""
        return [c for c in self.changes if c.kind == "unchanged" and c.reason in AILING]

    def by_kind(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for change in self.changes:
            grouped.setdefault(change.kind, []).append(change.service)
        return grouped


class Driver(Protocol):
    """What the core needs from a container engine."""

    def ping(self) -> str:
        """Return the engine's API version; raise EngineUnreachable naming the address otherwise."""

    def info(self) -> EngineInfo:
        """The engine's version and its host's memory and CPUs, in one call."""

    def directories(self, project: str) -> set[str]:
        """The state directories (compose's working_dir label) of the project's containers: who deployed it."""

    def plan(self, deployment: Deployment) -> Plan:
        """Diff the desired stack against what runs (by labels and config hash). No side effects."""

    def apply(self, deployment: Deployment, plan: Plan, progress: Progress = no_progress) -> None:
        """Make it so: networks and volumes first, then services in dependency order (independent ones in
        parallel), each gated on its depends_on conditions and bounded by ``start_timeout``; orphans removed.
        Raise ComponentError naming the service (with its last health output and log lines) on failure."""

    def status(self, project: str | None = None) -> dict[str, list[ServiceStatus]]:
        """States of every managed container, grouped by project (all projects when ``project`` is None), in a
        constant number of engine calls, with each one's memory use and limit (``memory_used``/``memory_limit``,
        no engine call per container) and whether the kernel OOM-killed it (``oom_killed``; only the containers
        that look OOM-killed are inspected)."""

    def snapshot(self) -> AbstractContextManager[dict[str, list[ServiceStatus]]]:
        """While inside, :meth:`status` answers from one engine query for every project, made on entry (and
        yielded): a host-wide view (``status --all``) asks the engine once, however many components' status hooks
        then ask for their own project. Each answer is a copy: a hook may amend what it gets."""

    def addresses(self, project: str, service: str) -> dict[str, str]:
        """{network name: IPv4 address} of the service's running container (empty when none runs), in one list
        call: the address a peer on that network sees its connections come from."""

    def placed(self) -> tuple[int, dict[str, dict[str, int | None]]]:
        """(the engine host's memory in bytes, {project: {service: memory limit, None when unlimited}}) for every
        managed container that holds memory: what the overcommit check adds up."""

    def logs(self, deployment: Deployment, request: LogRequest) -> Iterator[LogLine]:
        """Stream log lines (all services interleaved, or those requested), as they arrive."""

    def exec(self, deployment: Deployment, service: str, command: list[str], *, env: Mapping[str, str] | None = None,
             stdout: IO[bytes] | None = None, stdin: IO[bytes] | None = None,
             stderr: IO[bytes] | None = None) -> int:
        """Run ``command`` in the service's running container, streaming stdout to ``stdout`` and ``stdin`` from
        ``stdin`` in constant memory; return the exit code. ``env`` values never appear in any argument list.
        The command's stderr goes to ``stderr`` (default: this process's stderr), so a caller can quote it in a
        one-line error after redacting it."""

    def restart(self, deployment: Deployment, services: tuple[str, ...], progress: Progress = no_progress) -> None:
        """Restart services (all when empty) one at a time in dependency order, each gated on health."""

    def stop(self, deployment: Deployment, progress: Progress = no_progress, keep: Collection[str] = ()) -> None:
        """Stop every container of the project but those of the services in ``keep`` (kept, so that ``apply``
        starts them again)."""

    def network_attached(self, name: str) -> list[str]:
        """The names of the containers attached to the network ``name`` (any project's; none when it is absent)."""

    def remove(self, deployment: Deployment, purge: bool = False, progress: Progress = no_progress) -> list[str]:
        """Remove the project's containers and networks; its volumes too when ``purge``. Without ``purge`` the
        containers stop gracefully, dependents first; with it they are force-removed at once (the data goes). Returns
        warnings: what could not be removed although nothing is left in it (an empty network the engine will not let
        go)."""

    def published(self, image: str) -> bool:
        """Whether the registry of ``image`` (name:tag, as the engine resolves it, mirrors and credentials included)
        has it, without pulling it. False when the registry answers that it does not; ComponentError when the
        registry cannot be asked."""

    def volume_export(self, deployment: Deployment, volume: str, stdout: IO[bytes]) -> None:
        """Stream a tar of the named volume's contents to ``stdout``."""

    def volume_import(self, deployment: Deployment, volume: str, stdin: IO[bytes]) -> None:
        """Replace the named volume's contents with the tar read from ``stdin``."""

