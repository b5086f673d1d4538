"""Per-service resource limits: the model, its units, and the settings every component gets for them.

A service's :class:`Limits` (memory, memory reservation, CPUs, pids) is part of the stack a component describes;
its values are the component's defaults. The core makes every one of them overridable per client through settings,
without the component declaring anything: ``<PREFIX><SERVICE>_<KIND>`` where ``<SERVICE>`` is the service name in
capitals with ``-`` and ``.`` as ``_`` and ``<KIND>`` one of :data:`KINDS`, e.g. ``POSTHOG_CLICKHOUSE_MEMORY=3g``
or ``KEYCLOAK_KEYCLOAK_CPUS=1.5``. They come through the same layers as any setting (``--set``, environment, the
client's .env) and are checked twice: units when the settings load, the service name and the component's
minimum (``Limits.min_memory``) when the stack is built — both before anything is written or changed (exit 2).

Units are docker's (binary: ``512m`` = 512 MiB, ``3g`` = 3 GiB; ``b``, ``k``, ``m``, ``g``, ``t`` with an optional
``i`` and ``b``); a bare number is bytes, as for ``docker run --memory``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from agencystack.errors import UsageError

#: the engine's own floor for a memory limit (docker refuses less than 6 MiB)
ENGINE_MIN_MEMORY = 6 * 1024**2
MIN_CPUS = 0.01
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
#: setting suffix -> Limits field
KINDS = {"MEMORY_RESERVATION": "memory_reservation", "MEMORY": "memory", "CPUS": "cpus", "PIDS": "pids"}


def parse_size(value: Any) -> int:
    """``"512m"`` -> 536870912 (docker's binary units); an int is bytes. ValueError with the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"invalid size {value!r}: use a number with a unit, e.g. 512m or 3g")
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.lower()])


def format_size(size: int | None) -> str:
    """Bytes as a short binary size: 536870912 -> ``"512 MiB"``, 1610612736 -> ``"1.5 GiB"``."""
    if size is None:
        return "none"
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            text = f"{size / factor:.1f}".removesuffix(".0")
            return f"{text} {unit}"
    return f"{size} B"


def compose_size(size: int) -> str:
    """Bytes as compose writes a size: ``"512m"`` when exact, else ``"<bytes>b"``."""
    for unit, factor in (("g", 1024**3), ("m", 1024**2), ("k", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}b"


Size = Annotated[int, BeforeValidator(parse_size), Field(ge=ENGINE_MIN_MEMORY)]


class Limits(BaseModel):
    """Resource limits of one service. None means unlimited (the engine's default).

    ``memory``: hard limit (the kernel OOM-kills past it; no swap beyond it). ``memory_reservation``: the soft
    limit the kernel reclaims towards under host pressure. ``cpus``: CPU time in cores (``0.5`` = half a core).
    ``pids``: processes and threads. ``min_memory``: the component's documented minimum for the service: a
    client's override below it is refused (it is not a limit itself).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    memory: Size | None = None
    memory_reservation: Size | None = None
    cpus: float | None = Field(default=None, ge=MIN_CPUS)
    pids: int | None = Field(default=None, ge=16)
    min_memory: Size | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Limits:
        if self.memory is not None and self.memory_reservation is not None \
                and self.memory_reservation > self.memory:
            raise ValueError(f"memory reservation {format_size(self.memory_reservation)} is above the memory limit "
                             f"{format_size(self.memory)}")
        if self.memory is not None and self.min_memory is not None and self.memory < self.min_memory:
            raise ValueError(f"memory {format_size(self.memory)} is below the minimum {format_size(self.min_memory)}")
        return self

    @property
    def is_set(self) -> bool:
        return any(v is not None for v in (self.memory, self.memory_reservation, self.cpus, self.pids))

    def applied(self) -> dict[str, Any]:
        """What the engine applies (``min_memory`` is a rule, not a limit)."""
        return {k: v for k, v in self.model_dump(exclude={"min_memory"}).items() if v is not None}

    def token(self) -> str:
        """A stable one-line form (``cpus=0.5,memory=536870912``): the container label the plan compares."""
        return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(self.applied().items()))

    @classmethod
    def from_token(cls, token: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in filter(None, token.split(",")):
            key, _, value = part.partition("=")
            out[key] = float(value) if key == "cpus" else int(value)
        return out

    def describe(self) -> str:
        """``memory 1 GiB (reserved 512 MiB), 1.5 CPUs, 256 pids``."""
        parts = []
        if self.memory is not None:
            parts.append(f"memory {format_size(self.memory)}" + (
                f" (reserved {format_size(self.memory_reservation)})" if self.memory_reservation else ""))
        elif self.memory_reservation is not None:
            parts.append(f"memory reserved {format_size(self.memory_reservation)}")
        if self.cpus is not None:
            parts.append(f"{self.cpus:g} CPUs")
        if self.pids is not None:
            parts.append(f"{self.pids} pids")
        return ", ".join(parts) or "unlimited"


# -- settings ------------------------------------------------------------------------------------------------------
def service_key(service: str) -> str:
    """``ingestion-general`` -> ``INGESTION_GENERAL``."""
    return re.sub(r"[-.]", "_", service).upper()


def setting_key(prefix: str, service: str, kind: str = "MEMORY") -> str:
    """The setting that overrides a service's limit: ``setting_key("POSTHOG_", "clickhouse")`` ->
    ``POSTHOG_CLICKHOUSE_MEMORY``."""
    return f"{prefix}{service_key(service)}_{kind}"


def split_key(prefix: str, key: str) -> tuple[str, str] | None:
    """``POSTHOG_CLICKHOUSE_MEMORY`` -> (``CLICKHOUSE``, ``memory``) when ``key`` names a limit, else None."""
    upper = key.upper()
    if prefix and not upper.startswith(prefix.upper()):
        return None
    rest = upper[len(prefix):]
    for suffix, field in KINDS.items():  # MEMORY_RESERVATION before MEMORY
        if rest.endswith("_" + suffix) and len(rest) > len(suffix) + 1:
            return rest[: -len(suffix) - 1], field
    return None


def parse_value(field: str, value: Any) -> Any:
    """One override's value, validated for its kind (units, engine minimums); ValueError in one line."""
    text = str(value).strip()
    if field in ("memory", "memory_reservation"):
        size = parse_size(text)
        if size < ENGINE_MIN_MEMORY:
            raise ValueError(f"{format_size(size)} is below the engine's minimum of {format_size(ENGINE_MIN_MEMORY)}")
        return size
    if field == "cpus":
        try:
            cpus = float(text)
        except ValueError:
            raise ValueError(f"invalid CPUs {text!r}: use a number of cores, e.g. 0.5 or 2") from None
        if cpus < MIN_CPUS:
            raise ValueError(f"{text} CPUs is below the minimum of {MIN_CPUS}")
        return cpus
    try:
        pids = int(text)
    except ValueError:
        raise ValueError(f"invalid pids {text!r}: use a whole number, e.g. 512") from None
    if pids < 16:
        raise ValueError(f"{pids} pids is below the minimum of 16")
    return pids


def apply_overrides(services: Iterable[Any], overrides: Mapping[str, Any], prefix: str) -> None:
    """Set each override (``{setting key: value}``) on its service's ``limits``, in place; UsageError naming the
    setting for an unknown service, a value below the service's minimum, or an inconsistent result."""
    by_key = {service_key(s.name): s for s in services}
    grouped: dict[str, dict[str, tuple[str, Any]]] = {}
    for key, value in overrides.items():
        parsed = split_key(prefix, key)
        if parsed is None:
            continue
        name, field = parsed
        if name not in by_key:
            known = ", ".join(sorted(s.name for s in by_key.values())) or "none"
            raise UsageError(f"invalid setting {key}: no service {name.lower().replace('_', '-')!r} "
                             f"(services: {known})")
        grouped.setdefault(name, {})[field] = (key, value)
    for name, fields in grouped.items():
        service = by_key[name]
        current = service.limits
        update: dict[str, Any] = {}
        for field, (key, value) in fields.items():
            try:
                update[field] = parse_value(field, value)
            except ValueError as exc:
                raise UsageError(f"invalid setting {key}: {exc}") from None
        memory = update.get("memory", current.memory)
        if current.min_memory is not None and memory is not None and memory < current.min_memory:
            key = fields.get("memory", (setting_key(prefix, service.name),))[0]
            raise UsageError(f"invalid setting {key}: {format_size(memory)} is below {service.name}'s minimum of "
                             f"{format_size(current.min_memory)}")
        try:
            service.limits = Limits.model_validate({**current.model_dump(), **update})
        except ValueError as exc:
            message = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
            keys = ", ".join(k for k, _ in fields.values())
            raise UsageError(f"invalid setting {keys}: {message.removeprefix('Value error, ')}") from None


def long_running(service: Any) -> bool:
    """Services that hold memory while the stack runs (not one-shot jobs, not scaled to 0)."""
    return bool(service.replicas) and not service.job


def oom_hint(status: Any, prefix: str) -> None:
    """Name the setting that raises an OOM-killed service's memory limit in its status detail."""
    if getattr(status, "oom_killed", False) and "raise it with" not in status.detail:
        now = f" (now {format_size(status.memory_limit)})" if status.memory_limit else ""
        status.detail += f"; raise it with {setting_key(prefix, status.name)}=<size>{now}"
