"""The stack model: what a component wants running, as validated data.

A component's ``stack`` hook returns a :class:`Stack`. It can be validated, planned, rendered as a compose file and
diffed without an engine. Secrets never appear in it: environment values reference the component's .env keys as
``${KEY}`` (see :func:`ref`), exactly as compose interpolates them; ``$$`` is a literal dollar.

A setting's value is always literal, wherever the component puts it: while the stack is built
(:meth:`agencystack.context.LifecycleContext.stack`) each ``$`` of a setting's value is held as
:data:`SETTING_DOLLAR` (no value may hold a control character, so it stands for nothing else), and once the hooks
returned :func:`settle_literals` writes it as ``$$`` in environment values (the one place ``${KEY}`` is
interpolated) and as ``$`` everywhere else (commands, labels, ... are passed to the engine as they are). So a title
``${POSTHOG_SECRET}`` or ``$(reboot)`` reaches the container as those characters; references come only from
:func:`ref` (or a ``${KEY}`` the component writes itself).
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agencystack.limits import Limits

Seconds = Annotated[float, Field(ge=0)]
NAME = r"^[a-z0-9][a-z0-9_.-]*$"
Condition = Literal["started", "healthy", "completed"]
DEFAULT_NETWORK = "default"


def ref(key: str) -> str:
    """Reference a .env key from an environment value: ``ref("POSTHOG_SECRET")`` -> ``"${POSTHOG_SECRET}"``."""
    return "${" + key + "}"


#: what a ``$`` of a setting's value is while a stack is built (see the module docstring): a control character,
#: which no setting's value may hold (agencystack.settings refuses them in every layer)
SETTING_DOLLAR = "\x1a"


def mark_literal(value: str) -> str:
    """A setting's value as the stack hook sees it: each ``$`` held as :data:`SETTING_DOLLAR`."""
    return value.replace("$", SETTING_DOLLAR)


def settle_literals(data: object, *, environment: bool = False) -> object:
    """A stack's data (``Stack.model_dump()``) with every :data:`SETTING_DOLLAR` written as a literal ``$``:
    ``$$`` (compose's escape) in the values of a service's ``environment``, ``$`` elsewhere."""
    if isinstance(data, str):
        return data.replace(SETTING_DOLLAR, "$$" if environment else "$")
    if isinstance(data, list):
        return [settle_literals(item, environment=environment) for item in data]
    if isinstance(data, dict):
        return {settle_literals(k): settle_literals(v, environment=environment or k == "environment" and
                                                    isinstance(v, dict))
                for k, v in data.items()}
    return data


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True)


class HealthCheck(_Model):
    """Like compose's healthcheck: ``test`` is ``["CMD", ...]`` or ``["CMD-SHELL", "..."]``."""

    test: list[str]
    interval: Seconds = 5
    timeout: Seconds = 5
    retries: int = Field(default=20, ge=1)
    start_period: Seconds = 0

    @field_validator("test")
    @classmethod
    def _form(cls, value: list[str]) -> list[str]:
        if not value or value[0] not in ("CMD", "CMD-SHELL", "NONE"):
            raise ValueError('healthcheck test must start with "CMD", "CMD-SHELL" or "NONE"')
        return value


def postgres_healthcheck(user: str, database: str | None = None, **timing: float) -> HealthCheck:
    """The health check to give a Postgres service: ``pg_isready`` over TCP (``-h 127.0.0.1``).

    Over the local socket (pg_isready's default) it reports ready while the image's entrypoint still runs its
    temporary, socket-only server during initialisation, so dependants that connect over the network fail their
    first start. ``timing``: ``interval``, ``timeout``, ``retries``, ``start_period``."""
    test = f"pg_isready -q -h 127.0.0.1 -U {user}" + (f" -d {database}" if database else "")
    return HealthCheck(test=["CMD-SHELL", test], **timing)


class Mount(_Model):
    """A named volume of the stack (``source`` = volume name) or a bind mount (``source`` = absolute host path)."""

    source: str
    target: str
    read_only: bool = False

    @property
    def is_bind(self) -> bool:
        return self.source.startswith("/")


class Port(_Model):
    """A published port; bound to loopback unless the component decides otherwise."""

    container: int = Field(ge=1, le=65535)
    host: int = Field(ge=1, le=65535)
    host_ip: str = "127.0.0.1"
    protocol: Literal["tcp", "udp"] = "tcp"


class Logging(_Model):
    """Container log driver; the default caps disk use (upstream PostHog's users filled disks without it)."""

    driver: str = "json-file"
    options: dict[str, str] = Field(default_factory=lambda: {"max-size": "50m", "max-file": "3"})


#: Service fields only a Swarm host reads: outside the single-host config hash, so existing installs keep theirs
SWARM_ONLY = frozenset({"swarm_replicas", "swarm_global", "swarm_placement"})


class Service(_Model):
    """One service (one container, or none when ``replicas`` is 0).

    ``job``: a one-shot task (migrations, topic creation) that must exit 0; dependents may wait with condition
    ``completed``. ``networks`` maps stack network names to aliases. ``start_timeout`` bounds the wait for health
    (or completion, for jobs) during apply and restart. ``limits`` (:class:`~agencystack.limits.Limits`) are the
    component's defaults; every client may override them through settings (see :mod:`agencystack.limits`).
    """

    name: str = Field(pattern=NAME)
    image: str = Field(min_length=1)
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    volumes: list[Mount] = Field(default_factory=list)
    networks: dict[str, list[str]] = Field(default_factory=lambda: {DEFAULT_NETWORK: []})
    ports: list[Port] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    healthcheck: HealthCheck | None = None
    depends_on: dict[str, Condition] = Field(default_factory=dict)
    restart: Literal["no", "always", "unless-stopped", "on-failure"] = "unless-stopped"
    init: bool = False
    logging: Logging = Field(default_factory=Logging)
    replicas: Literal[0, 1] = 1
    #: how many tasks a Swarm runs of this service when it is stateless (no named volume, not a job); a
    #: single-host engine runs one container whatever it says
    swarm_replicas: int = Field(default=1, ge=1)
    #: on a Swarm host, one task on every node that may take it (mode global: an edge on each node's ports); its
    #: named volumes are each node's own, never pinned to one; a single-host engine runs one container
    swarm_global: bool = False
    #: Swarm placement constraints (e.g. ``node.role == manager``); a single-host engine ignores them
    swarm_placement: list[str] = Field(default_factory=list)
    job: bool = False
    user: str | None = None
    working_dir: str | None = None
    stop_grace_period: Seconds = 10
    start_timeout: Seconds = 180
    limits: Limits = Field(default_factory=Limits)

    @model_validator(mode="after")
    def _job_does_not_restart(self) -> Service:
        if self.job and self.restart not in ("no", "on-failure"):
            self.restart = "no"
        return self

    def config_hash(self, env: Mapping[str, str]) -> str:
        """A digest of everything that defines the container, with ``${KEY}`` resolved: changed hash = recreate.

        ``limits`` are left out: the engine changes them on the running container (see
        :mod:`agencystack.engine.resources`), and stacks from before limits existed keep their hash; so is
        the ``swarm_*`` fields, which a single-host engine does not use."""
        resolved = self.model_copy(update={"environment": interpolate_all(self.environment, env)})
        return hashlib.sha256(resolved.model_dump_json(exclude={"limits", *SWARM_ONLY}).encode()).hexdigest()


class Volume(_Model):
    """A named volume; ``external`` ones are owned elsewhere and never created or removed by this stack."""

    name: str = Field(pattern=NAME)
    external: bool = False


class Network(_Model):
    """A network of the stack. ``external`` names a network owned by another stack (the edge network)."""

    name: str = Field(pattern=NAME)
    external: bool = False
    internal: bool = False


class Route(_Model):
    """An HTTP route from the edge to a service; the edge turns it into Traefik labels.

    ``paths`` match exactly, ``prefixes`` match a path and everything below it (``/i/v0`` matches ``/i/v0`` and
    ``/i/v0/...``, never ``/i/v0x``); neither means every path on ``host``. ``strip_prefix`` removes the matched
    prefix before the request reaches the service (a service mounted under ``/livestream`` that serves ``/events``).
    ``public`` routes stay reachable without SSO (SDK ingestion); others are protected when ``sso`` is requested
    and an identity provider exists (see :mod:`agencystack.sso`: the provider's forward-auth middleware is added to
    ``middlewares``).
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    service: str
    port: int = Field(ge=1, le=65535)
    host: str
    paths: list[str] = Field(default_factory=list)
    prefixes: list[str] = Field(default_factory=list)
    priority: int | None = None
    strip_prefix: bool = False
    public: bool = False
    sso: bool = False
    middlewares: list[str] = Field(default_factory=list)  # Traefik middlewares (by name) after strip_prefix


class PostgresDump(_Model):
    """A logical dump of a Postgres database, taken with the database's own tools inside ``service``."""

    kind: Literal["postgres"] = "postgres"
    name: str
    service: str
    user: str = "postgres"
    database: str = "postgres"
    password_key: str | None = None  # .env key of the password (passed as PGPASSWORD, never as an argument)


class VolumeArchive(_Model):
    """A tar of a named volume's contents (for file stores: uploads, recordings)."""

    kind: Literal["volume"] = "volume"
    name: str
    volume: str


class CommandDump(_Model):
    """Any service-native backup: ``dump`` streams the data to stdout, ``load`` reads it from stdin."""

    kind: Literal["command"] = "command"
    name: str
    service: str
    dump: list[str]
    load: list[str]
    env_keys: list[str] = Field(default_factory=list)


class EnvFile(_Model):
    """The component's .env (its secrets): without it restored data may be unreadable."""

    kind: Literal["env"] = "env"
    name: str = "env"


BackupPart = Annotated[PostgresDump | VolumeArchive | CommandDump | EnvFile, Field(discriminator="kind")]


class HttpProbe(_Model):
    """An HTTP check the core runs for the component: the default install (``context.deploy()``) waits until it
    answers, and the default status shows it as a row (``failed`` when it does not answer as expected).

    ``url`` as the operator would open it (a routed host's URL is rewritten to the scheme and port the edge serves);
    the request goes through this host's edge, so DNS and certificates need not be ready. ``expect_status``: the
    answer that means healthy. ``timeout``: per request. ``wait``: how long install waits for it (0: install does
    not wait; status still shows it). ``interval``: between attempts while waiting. ``name``: the status row
    (default: the URL's path, e.g. ``/_health``).
    """

    url: str
    expect_status: int = 200
    timeout: Seconds = 5
    wait: Seconds = 300
    interval: Seconds = Field(default=2, gt=0)
    name: str | None = None

    @property
    def label(self) -> str:
        from urllib.parse import urlsplit

        return self.name or urlsplit(self.url).path or "/"


class Stack(_Model):
    """Everything a component wants running for one client."""

    services: list[Service] = Field(default_factory=list)
    volumes: list[Volume] = Field(default_factory=list)
    networks: list[Network] = Field(default_factory=lambda: [Network(name=DEFAULT_NETWORK)])
    routes: list[Route] = Field(default_factory=list)
    backups: list[BackupPart] = Field(default_factory=list)
    probes: list[HttpProbe] = Field(default_factory=list)

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def network(self, name: str) -> Network:
        for network in self.networks:
            if network.name == name:
                return network
        raise KeyError(name)

    @model_validator(mode="after")
    def _consistent(self) -> Stack:
        problems = list(self.problems())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def problems(self):
        """Yield each inconsistency in one line (unknown references, duplicates, dependency cycles)."""
        names = [s.name for s in self.services]
        volumes = {v.name for v in self.volumes}
        networks = {n.name for n in self.networks}
        for kind, items in (("service", names), ("volume", [v.name for v in self.volumes]),
                            ("network", [n.name for n in self.networks]), ("route", [r.name for r in self.routes]),
                            ("backup part", [b.name for b in self.backups])):
            dupes = sorted({i for i in items if items.count(i) > 1})
            if dupes:
                yield f"duplicate {kind} name(s): {', '.join(dupes)}"
        for service in self.services:
            for dep in service.depends_on:
                if dep not in names:
                    yield f"service {service.name!r} depends on unknown service {dep!r}"
            for mount in service.volumes:
                if not mount.is_bind and mount.source not in volumes:
                    yield f"service {service.name!r} mounts undeclared volume {mount.source!r}"
            for net in service.networks:
                if net not in networks:
                    yield f"service {service.name!r} joins undeclared network {net!r}"
        for route in self.routes:
            if route.service not in names:
                yield f"route {route.name!r} targets unknown service {route.service!r}"
        for part in self.backups:
            if getattr(part, "service", None) and part.service not in names:
                yield f"backup part {part.name!r} reads unknown service {part.service!r}"
            if isinstance(part, VolumeArchive) and part.volume not in volumes:
                yield f"backup part {part.name!r} archives undeclared volume {part.volume!r}"
        try:
            self.levels()
        except ValueError as exc:
            yield str(exc)

    def levels(self) -> list[list[str]]:
        """Services grouped by dependency depth: each group may start in parallel once the previous is ready."""
        pending = {s.name: set(s.depends_on) & {x.name for x in self.services} for s in self.services}
        levels: list[list[str]] = []
        while pending:
            ready = sorted(n for n, deps in pending.items() if not deps)
            if not ready:
                raise ValueError(f"dependency cycle among services: {', '.join(sorted(pending))}")
            levels.append(ready)
            for name in ready:
                del pending[name]
            for deps in pending.values():
                deps.difference_update(ready)
        return levels

    def references(self) -> set[str]:
        """Every .env key the stack references through ``${KEY}``."""
        return {key for s in self.services for value in s.environment.values() for key in _referenced(value)}

    def literal_secrets(self, secrets: Mapping[str, str]) -> list[tuple[str, str, str]]:
        """Where a secret's value (``secrets``: setting key -> value) is written literally instead of referenced:
        ``(service, place, setting key)`` with place ``environment VAR``, ``label NAME``, ``command``,
        ``entrypoint`` or ``healthcheck``. A literal would land in compose.yaml and the container's config."""
        found = []
        for service in self.services:
            places = [(f"environment variable {k}", v) for k, v in service.environment.items()]
            places += [(f"label {k}", v) for k, v in service.labels.items()]
            places += [(what, " ".join(argv)) for what, argv in (
                ("command", service.command), ("entrypoint", service.entrypoint),
                ("healthcheck", service.healthcheck.test if service.healthcheck else None)) if argv]
            for place, text in places:
                found += [(service.name, place, key) for key, secret in secrets.items() if _contains(text, secret)]
        return found


def _contains(text: str, secret: str) -> bool:
    """A short value (a user's 3-letter password) is only caught whole, so ``true`` in a flag is no false alarm."""
    return secret == text or (len(secret) >= 8 and secret in text)


def _referenced(value: str) -> set[str]:
    return {m.group("named") or m.group("braced") for m in string.Template.pattern.finditer(value)
            if m.group("named") or m.group("braced")}


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Resolve ``${KEY}`` (and ``$$``) the way compose does; a missing key raises KeyError naming it."""
    return string.Template(value).substitute(env)


def interpolate_all(values: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    return {k: interpolate(v, env) for k, v in values.items()}

