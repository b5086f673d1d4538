"""Settings: the global ones and a base class for each component's, loaded in layers.

Layers, highest first (Tutor's model, built on pydantic-settings' own sources):

1. flags      -- ``--set KEY=VALUE`` and ``--domain`` on the command line
2. environment -- ``POSTHOG_PORT=...`` in the process environment (keys carry the component's prefix)
3. the client's component .env -- ``<root>/clients/<client>/<component>/.env``
4. defaults   -- field defaults, and defaults derived from global settings (``posthog.<client>.<DOMAIN>``: each
   client's derived defaults see ``<client>.<DOMAIN>`` as the domain, the client ``default`` the bare ``DOMAIN``, so
   two clients never get the same public host by default)

Values are checked in every layer before the model sees them: a control character (newline, CR, NUL, ESC, the rest
of C0, DEL) is refused in any value (exit 2, naming the setting, never showing the value); an empty value is
refused unless the setting's own default is empty, where empty means "unset" (the default), or the setting is marked
:class:`EmptyMeans` (its documented meaning of empty); no value may be longer than
:data:`MAX_VALUE_LENGTH` characters. Defaults are never written to disk. Fields marked ``Annotated[SecretStr | None, generate(...)]`` are secrets: when
no layer has a value, one is generated and saved to the .env (0600) once; afterwards the saved value is kept forever,
and a flag that would change it is refused: there is no silent rotation. Flags given to ``install`` are saved too (the operator's choices stick across re-runs).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import (AfterValidator, AliasChoices, BaseModel, Field, PrivateAttr, SecretStr, ValidationError,
                      model_validator)
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from agencystack import names
from agencystack.errors import UsageError

if TYPE_CHECKING:
    from agencystack.fleet import DockerHost, Fleet
    from agencystack.state import StateRoot

Domain = Annotated[str, AfterValidator(names.domain)]
#: an image setting: checked against the OCI distribution reference grammar (``name[:tag][@digest]``,
#: :func:`agencystack.names.image_reference`), so ``x;rm -rf /`` or ``../../etc`` is refused before anything runs
ImageRef = Annotated[str, AfterValidator(names.image_reference)]
PortNumber = Annotated[int, Field(ge=1, le=65535)]
#: the longest value any setting may have (in any layer); a model may set a lower ``max_length`` per field
MAX_VALUE_LENGTH = 4096


@dataclass(frozen=True)
class generate:  # noqa: N801 - used as an annotation marker: Annotated[SecretStr | None, generate(hex_token, 48)]
    """Marks a settings field as a secret generated once by ``factory(*args)``."""

    factory: Callable[..., str]
    args: tuple[Any, ...] = ()

    def __init__(self, factory: Callable[..., str], *args: Any):
        object.__setattr__(self, "factory", factory)
        object.__setattr__(self, "args", args)

    def __call__(self) -> str:
        return self.factory(*self.args)


def hex_token(nbytes: int = 32) -> str:
    """Hex of ``nbytes`` random bytes."""
    return secrets.token_hex(nbytes)


def urlsafe_token(nchars: int = 32) -> str:
    """Exactly ``nchars`` characters of ``[A-Za-z0-9_-]``."""
    return secrets.token_urlsafe(nchars)[:nchars]


@dataclass(frozen=True)
class EmptyMeans:
    """Marks a setting whose empty value is documented to mean something other than its default:
    ``geoip_url: Annotated[str, EmptyMeans("no GeoIP")] = "https://..."``. Settings whose default is empty accept
    an empty value anyway (it means "unset"); every other setting refuses one (exit 2)."""

    meaning: str


def generated_secret(factory: Callable[..., str] = hex_token, *args: Any) -> Any:
    """Shorthand: ``x: generated_secret(hex_token, 48) = None`` declares a generated secret field."""
    return Annotated[SecretStr | None, generate(factory, *args)]


class GlobalSettings(BaseSettings):
    """Host-wide settings, from the environment (no file): where state and logs live, which engine, base domain."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    root: Path = Field(Path("/opt/agency_stack"), validation_alias=AliasChoices("AGENCYSTACK_ROOT", "root"))
    log_dir: Path = Field(Path("/var/log/agency_stack"), validation_alias=AliasChoices("AGENCYSTACK_LOG_DIR", "log_dir"))
    docker_host: str = Field("unix:///var/run/docker.sock", validation_alias=AliasChoices("DOCKER_HOST", "docker_host"))
    domain: Domain = Field("localhost", validation_alias=AliasChoices("DOMAIN", "AGENCYSTACK_DOMAIN", "domain"))
    client_id: Annotated[str, AfterValidator(names.client_id)] = Field(
        "default", validation_alias=AliasChoices("CLIENT_ID", "AGENCYSTACK_CLIENT_ID", "client_id")
    )
    lock_timeout: float = Field(30.0, ge=0, validation_alias=AliasChoices("AGENCYSTACK_LOCK_TIMEOUT", "lock_timeout"))
    memory_overcommit: float = Field(2.5, gt=0, validation_alias=AliasChoices("AGENCYSTACK_MEMORY_OVERCOMMIT",
                                                                              "memory_overcommit"))
    #: per-host components (the edge) of this namespace live under the client ``host-<namespace>``, with their own
    #: project, state and defaults (the edge's network ``agencystack_edge-<namespace>``): what a test uses on a
    #: shared engine so that it never touches the host's real edge (agencystack.testing sets it)
    host_namespace: Annotated[str, Field(pattern=r"^[a-z0-9]{0,12}$")] = Field(
        "", validation_alias=AliasChoices("AGENCYSTACK_HOST_NAMESPACE", "host_namespace"))

    @model_validator(mode="after")
    def _checked(self) -> GlobalSettings:
        """No control character in any global setting; ``AGENCYSTACK_ROOT`` and ``AGENCYSTACK_LOG_DIR`` are
        directories when they exist (a file there is bad input, found before any engine call)."""
        for name, env_key in (("root", "AGENCYSTACK_ROOT"), ("log_dir", "AGENCYSTACK_LOG_DIR"),
                              ("docker_host", "DOCKER_HOST")):
            names.control_characters(str(getattr(self, name)), env_key)
        for name, env_key in (("root", "AGENCYSTACK_ROOT"), ("log_dir", "AGENCYSTACK_LOG_DIR")):
            path = getattr(self, name)
            try:
                is_file = path.exists() and not path.is_dir()
            except OSError:  # not even its parent can be read: whatever writes there says so
                is_file = False
            if is_file:
                raise UsageError(f"{env_key}={path} is not a directory: point it at a directory (it is created "
                                 "when missing)")
        return self

    #: the Docker host these settings are placed on (agencystack.placement); None: the local engine
    _host: DockerHost | None = PrivateAttr(None)
    _placed: bool = PrivateAttr(False)

    @property
    def host(self) -> DockerHost:
        """The Docker host a command goes to (:mod:`agencystack.fleet`): the local engine at ``DOCKER_HOST`` unless
        these settings were placed on another with :meth:`on_host`."""
        if self._host is not None:
            return self._host
        from agencystack.fleet import local

        return local(self.docker_host)

    def on_host(self, host: DockerHost) -> GlobalSettings:
        """These settings with ``host``'s engine address: everything that reads ``docker_host`` (the driver, the
        edge's address, the edge's socket default) and the per-host client (``host-<name>``) follow it."""
        if host.is_local and self._host is None:
            if self._placed:
                return self
            placed = self.model_copy()
        else:
            placed = self.model_copy(update={"docker_host": host.docker_host})
        placed._host = None if host.is_local else host
        placed._placed = True
        return placed

    @property
    def placed(self) -> bool:
        """Whether these settings were put on a host with :meth:`on_host` (placement found the client's host):
        a request with them goes there without reading the placement again."""
        return self._placed

    def fleet(self) -> Fleet:
        """The hosts of this state root: the local engine at ``docker_host`` and the registered ones."""
        from agencystack.fleet import Fleet

        return Fleet(self.state_root, self.docker_host, self.lock_timeout)

    @property
    def host_client(self) -> str:
        """The client id per-host components live under: ``host`` (``host-<namespace>`` in a host namespace), and
        ``host-<name>`` (``host-<namespace>-<name>``) for a registered host ``name``."""
        return names.host_client(self.host_namespace, "" if self._host is None else self._host.name)

    @property
    def state_root(self) -> StateRoot:
        """Where state and logs live: every path under ``root`` and ``log_dir`` (see agencystack.state)."""
        from agencystack.state import StateRoot

        return StateRoot(self.root, self.log_dir)

    def client_domain(self, client: str | None) -> str:
        """The domain a client's derived defaults see: ``<client>.<DOMAIN>``; the bare ``DOMAIN`` for the client
        ``default`` and for per-host components. Client ids are DNS labels, so the result is a host name."""
        if client in (None, names.DEFAULT_CLIENT, names.HOST, self.host_client):
            return self.domain
        return names.domain(f"{client}.{self.domain}")

    @classmethod
    def load(cls, **overrides: Any) -> GlobalSettings:
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        except UsageError:
            raise
        except ValidationError as exc:
            raise UsageError(f"invalid global setting: {_first_error(exc)}") from None


class ComponentSettings(BaseSettings):
    """Base class of a component's settings. Subclasses set ``model_config = SettingsConfigDict(env_prefix="X_")``.

    Field ``port`` is read from ``X_PORT`` in the environment and saved as ``X_PORT`` in the .env.
    """

    model_config = SettingsConfigDict(extra="forbid", validate_default=True, defer_build=True)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: Any, env_settings: Any,
                                   dotenv_settings: Any, file_secret_settings: Any) -> tuple[Any, ...]:
        """An instance holds what it is given: :func:`load` resolves the layers (defaults, the client's .env, the
        environment, ``--set``) itself and validates the merged values, so constructing must not read the
        environment a second time (that second read was most of a fleet status's time per component)."""
        return (init_settings,)

    @classmethod
    def derived_defaults(cls, global_settings: GlobalSettings) -> dict[str, Any]:
        """Defaults computed from the global settings (e.g. ``{"domain": f"posthog.{global_settings.domain}"}``).
        Never saved."""
        return {}

    # -- introspection used by the loader, the redactor and ``plan`` -----------------------------------------------
    @classmethod
    def prefix(cls) -> str:
        return (cls.model_config.get("env_prefix") or "").upper()

    @classmethod
    def env_key(cls, field_name: str) -> str:
        return f"{cls.prefix()}{field_name.upper()}"

    @classmethod
    def generated_fields(cls) -> dict[str, generate]:
        return {name: marker for name, info in cls.model_fields.items()
                for marker in info.metadata if isinstance(marker, generate)}

    @classmethod
    def field_for(cls, key: str) -> str:
        """Map a key as a user types it (``POSTHOG_PORT``, ``port``, ``PORT``) to the field name."""
        lowered = key.lower()
        prefix = cls.prefix().lower()
        for candidate in (lowered, lowered.removeprefix(prefix) if prefix else lowered):
            if candidate in cls.model_fields:
                return candidate
        known = ", ".join(cls.env_key(n) for n in cls.model_fields) or "none"
        raise UsageError(f"unknown setting {key!r} (known: {known})")

    def env(self) -> dict[str, str]:
        """Every setting as ``KEY=value`` strings (secrets revealed): what ``${KEY}`` references resolve against."""
        values = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            values[self.env_key(name)] = value if isinstance(value, str) else str(value)
        return values

    def secret_values(self) -> list[str]:
        return [v.get_secret_value() for v in (getattr(self, n) for n in type(self).model_fields)
                if isinstance(v, SecretStr) and v.get_secret_value()]

    def secret_keys(self) -> frozenset[str]:
        """The ``KEY`` of every secret setting (a ``SecretStr`` field): which values of :meth:`env` to mask."""
        return frozenset(self.env_key(n) for n in type(self).model_fields if isinstance(getattr(self, n), SecretStr))


@dataclass
class LoadedSettings:
    """A component's settings with where each value came from and what install must save."""

    values: ComponentSettings
    sources: dict[str, str] = field(default_factory=dict)  # field -> "flag" | "environment" | "file" | "default"
    to_save: dict[str, str] = field(default_factory=dict)  # .env key -> value (generated secrets and flags)
    generated: list[str] = field(default_factory=list)  # .env keys generated in this load
    limits: dict[str, str] = field(default_factory=dict)  # .env key -> value: per-service limit overrides


def load(model: type[ComponentSettings], global_settings: GlobalSettings, env_file: Path,
         flags: dict[str, str] | None = None, *, client: str | None = None) -> LoadedSettings:
    """Resolve ``model`` from the four layers and generate missing secrets (in memory; the caller saves).

    ``client`` decides the domain the derived defaults see (:meth:`GlobalSettings.client_domain`). Keys naming a
    service's resource limit (``<PREFIX><SERVICE>_MEMORY``, see :mod:`agencystack.limits`) are not fields: they go
    through the same layers into ``LoadedSettings.limits``, their units checked here."""
    from agencystack import limits as _limits

    flags = dict(flags or {})
    flag_values = {(_limit_name(model, k) or model.field_for(k)): v for k, v in flags.items()}
    file_values = _file_values(model, env_file) if env_file.is_file() else {}
    env_values = _environment(model)
    for where, values in ((f"in {env_file}", file_values), ("in the environment", env_values),
                          ("given with --set", flag_values)):
        _check_values(model, values, where)
    generated_fields = model.generated_fields()
    for name, value in flag_values.items():
        saved = file_values.get(name)
        if name in generated_fields and saved not in (None, "") and value != saved:
            raise UsageError(f"{model.env_key(name)} is a generated secret already saved for this client: it is "
                             "never overwritten (existing data may depend on it); leave the flag out")
    client_settings = (global_settings.model_copy(update={"domain": global_settings.client_domain(client)})
                       if client else global_settings)
    layers = [("default", model.derived_defaults(client_settings)), ("file", file_values),
              ("environment", env_values), ("flag", flag_values)]
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    limit_values: dict[str, str] = {}
    for layer, values in layers:
        for key, value in values.items():
            name = _limit_name(model, key)
            if name:
                limit_values[name], sources[name] = str(value), layer
            else:
                merged[key], sources[key] = value, layer
    for name, value in limit_values.items():
        try:
            _limits.parse_value(_limits.split_key("", name)[1], value)
        except ValueError as exc:
            raise UsageError(f"invalid setting {model.env_key(name)}: {exc}") from None
    generated = []
    for name, marker in generated_fields.items():
        if merged.get(name) is None:
            merged[name], sources[name] = marker(), "generated"
            generated.append(model.env_key(name))
    try:
        instance = _validated(model, merged)
    except ValidationError as exc:
        raise UsageError(f"invalid setting {_first_error(exc, model)}") from None
    values = {**merged, **limit_values}
    to_save = {model.env_key(n): _as_text(values[n]) for n, src in sources.items() if src in ("flag", "generated")}
    for name in model.model_fields:
        sources.setdefault(name, "default")
    return LoadedSettings(instance, sources, to_save, generated,
                          {model.env_key(n): v for n, v in limit_values.items()})


def _validated(model: type[ComponentSettings], merged: dict[str, Any]) -> ComponentSettings:
    """``model.model_validate(merged)``: the same validation, errors and instance. Where pydantic-settings' own
    ``__init__`` would hand ``merged`` on unchanged (:func:`_passes_through`), the model is validated directly: that
    ``__init__`` builds every built-in source first (the environment, a .env, a secrets directory) only for
    :meth:`ComponentSettings.settings_customise_sources` to drop them, which was most of a settings load (a fleet's
    status loads one per component)."""
    if not _passes_through(model):
        return model.model_validate(merged)
    instance = model.__new__(model)
    BaseModel.__init__(instance, **merged)  # what BaseSettings.__init__ ends with, given the values it resolved
    return instance


@lru_cache(maxsize=64)
def _passes_through(model: type[ComponentSettings]) -> bool:
    """Whether ``BaseSettings.__init__`` of ``model`` yields the values it is given (field names, as :func:`load`
    merges them): the model keeps the base class's sources (init only) and ``__init__``, and no field has an alias
    or a name that case-insensitive matching would map (an upper-case letter)."""
    config = model.model_config
    return (model.__init__ is BaseSettings.__init__
            and model.settings_customise_sources.__func__ is ComponentSettings.settings_customise_sources.__func__
            and not config.get("nested_model_default_partial_update")
            and all(info.alias is None and info.validation_alias is None and name == name.lower()
                    for name, info in model.model_fields.items()))


def _file_values(model: type[ComponentSettings], env_file: Path) -> dict[str, str]:
    """The client's .env as pydantic-settings' .env source reads it (``<PREFIX><FIELD>`` by field name, other
    non-empty keys lower-cased), but each value as it was saved (:func:`agencystack.state.parse_env`): a title
    ``${X}`` read back is still ``${X}``, never X's value."""
    from agencystack.state import parse_env

    prefix = model.prefix().lower()
    values = {}
    for key, value in parse_env(env_file.read_text()).items():
        lowered = key.lower()
        field_name = lowered[len(prefix):] if lowered.startswith(prefix) else None
        if field_name in model.model_fields:
            values[field_name] = value
        elif value and lowered not in model.model_fields:
            values[lowered] = value
    return values


def _environment(model: type[ComponentSettings]) -> dict[str, Any]:
    """``model``'s values from the environment (pydantic-settings' EnvSettingsSource) and its services' limit keys
    (``<PREFIX><SERVICE>_MEMORY``, ...), read once per model and environment in a process: a fleet's status loads
    one model's settings for every client, and the source walks every field against every variable each time."""
    return dict(_environment_of(model, tuple(sorted(os.environ.items()))))


@lru_cache(maxsize=16)
def _environment_of(model: type[ComponentSettings], environ: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    values = EnvSettingsSource(model)()
    prefix = model.prefix()
    if prefix:  # only keys with the component's prefix: the environment is everyone's
        values.update({name: v for k, v in environ if k.upper().startswith(prefix) and (name := _limit_name(model, k))})
    return values


def _limit_name(model: type[ComponentSettings], key: str) -> str | None:
    """``clickhouse_memory`` when ``key`` (``POSTHOG_CLICKHOUSE_MEMORY``, ``CLICKHOUSE_MEMORY`` or the lower-case
    name a .env source yields) names a service's resource limit rather than a field of ``model``; else None."""
    from agencystack.limits import split_key

    lowered = key.lower()
    prefix = model.prefix().lower()
    name = lowered.removeprefix(prefix) if prefix and lowered.startswith(prefix) else lowered
    if name in model.model_fields or lowered in model.model_fields:
        return None
    return name if split_key("", name) else None


def accepts_empty(model: type[ComponentSettings], name: str) -> bool:
    """Whether an empty value is accepted for field ``name``: where the default itself is empty (empty means
    "unset", the default) or the field is marked :class:`EmptyMeans`. Never for generated secrets or required
    settings."""
    info = model.model_fields[name]
    if any(isinstance(m, EmptyMeans) for m in info.metadata):
        return True
    return not info.is_required() and info.default is not None and _as_text(info.default) == ""


def _check_values(model: type[ComponentSettings], values: dict[str, Any], where: str) -> None:
    for name, value in values.items():
        if not isinstance(value, (str, SecretStr)):
            continue
        text = _as_text(value)
        key = model.env_key(name)
        names.control_characters(text, f"{key} ({where})")
        if name not in model.model_fields:
            continue
        if text == "" and not accepts_empty(model, name):
            raise UsageError(f"{key} is empty ({where}): give it a value, or leave it out to use the default"
                             + (" (a generated secret)" if name in model.generated_fields() else ""))
        if len(text) > MAX_VALUE_LENGTH:
            raise UsageError(f"{key} is {len(text)} characters long ({where}): the limit is {MAX_VALUE_LENGTH}")


def _as_text(value: Any) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def _first_error(exc: ValidationError, model: type[ComponentSettings] | None = None) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "value"
    key = model.env_key(loc) if model and loc in model.model_fields else loc
    return f"{key}: {err['msg'].removeprefix('Value error, ')}"  # pydantic's prefix for a validator's own words
