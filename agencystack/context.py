"""The context every targeted hook receives: who (client), what (component), its settings, paths and engine.

Built by the CLI (or by a program driving agencystack) with :func:`LifecycleContext.open`; settings are loaded and
validated there, before any lock, log line or file write, so bad input changes nothing. The lifecycle wrapper loads
them again once it holds the (client, component) lock (:meth:`LifecycleContext.reload_settings`): what another call
saved while this one waited (a generated secret above all) is what this call uses, never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from agencystack import names
from agencystack.errors import ComponentError, UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from agencystack.component import Component
    from agencystack.engine import Deployment, Driver, Plan, Progress
    from agencystack.fleet import DockerHost
    from agencystack.hosts import Conflict
    from agencystack.integrations import SsoState
    from agencystack.limits import Limits
    from agencystack.logging import BoundLogger, Redactor
    from agencystack.plugin_host import Plugins
    from agencystack.results import Outcome, ServiceStatus
    from agencystack.settings import ComponentSettings, GlobalSettings, LoadedSettings
    from agencystack.stack import Stack
    from agencystack.state import ComponentDir, StateRoot


class LifecycleContext:
    """One lifecycle call's view of the world. Plugin authors use the documented attributes and methods only
    (docs/plugins.md, "The context", lists them all; tests/data/plugin_api.json records them).

    Attributes: ``client``, ``component`` (its :class:`~agencystack.Component`), ``action``, ``global_settings``
    (host-wide settings), ``settings`` (the component's settings), ``state_root`` (the
    :class:`~agencystack.StateRoot`: every path under the state root, e.g. ``state_root.cache(name)``), ``dir`` (its
    :class:`~agencystack.ComponentDir` there), ``project`` (engine project name), ``log`` (a structlog logger bound
    to client/component/action), ``progress`` (callable ``(service, message)``), ``engine`` (the driver, connected
    on first use), ``host``, ``edge_address``, ``components`` (the known components by name), ``sso`` (what became
    of the stack's request for SSO), ``flags`` (this call's ``--set``/``--domain`` values), ``loaded`` (the
    settings with the layer of each value).

    Deprecated since plugin API 1.1.0 (removed in 2.0.0; each warns when a plugin reads it): ``facts`` (use
    :meth:`record_fact`), ``redactor`` (use :meth:`add_secret`), ``plugins`` (use :attr:`components`).
    """

    client: str
    component: Component
    action: str
    global_settings: GlobalSettings
    loaded: LoadedSettings
    progress: Progress
    state_root: StateRoot
    dir: ComponentDir
    project: str
    flags: dict[str, str]
    sso: SsoState | None

    def __init__(self, *, client: str, component: Component, action: str, global_settings: GlobalSettings,
                 plugins: Plugins, redactor: Redactor, loaded: LoadedSettings, progress: Progress,
                 engine: Driver | None = None, flags: dict[str, str] | None = None,
                 connect: Callable[[DockerHost], Driver] | None = None):
        self.client = client
        self.component = component
        self.action = action
        self.global_settings = global_settings
        self._plugins = plugins
        self._redactor = redactor
        self.loaded = loaded
        self.progress = progress
        self.state_root: StateRoot = global_settings.state_root
        self.dir = self.state_root.component(client, component.name)
        self.project = names.project(client, component.name)
        self._engine = engine
        self._connect = connect  # how to reach the host's engine on first use, when given no driver
        self._stack: Stack | None = None
        self.flags = dict(flags or {})  # this call's --set/--domain values, as .env keys
        self._facts: dict[str, Any] = {}  # what the lifecycle wrapper records in the manifest after the action
        self.sso = None  # an agencystack.SsoState once the stack asked for SSO
        self._added_env: dict[str, str] = {}
        self._literal_settings: ComponentSettings | None = None  # set while the stack hooks run

    # -- what a plugin records and registers ----------------------------------------------------------------
    def record_fact(self, key: str, value: Any) -> None:
        """Record ``key`` (e.g. ``url``) for the manifest: the lifecycle wrapper writes it after the action; the
        dashboard's context and ``status`` read it from there. JSON values only."""
        self._facts[key] = value

    def add_secret(self, *values: str) -> None:
        """Register secret values (a token read from an API) so that no log line, console output or error message
        shows them."""
        self._redactor.add(*values)

    @property
    def components(self) -> Mapping[str, Component]:
        """Every component the loaded plugins provide, by name (read-only)."""
        from types import MappingProxyType

        return MappingProxyType(self._plugins.components)

    # -- deprecated members (the core uses them silently; a plugin is warned) --------------------------------
    @property
    def facts(self) -> dict[str, Any]:
        if not _from_core():
            _deprecated("LifecycleContext.facts")
        return self._facts

    @property
    def redactor(self) -> Redactor:
        if not _from_core():
            _deprecated("LifecycleContext.redactor")
        return self._redactor

    @property
    def plugins(self) -> Plugins:
        if not _from_core():
            _deprecated("LifecycleContext.plugins")
        return self._plugins

    @classmethod
    def open(cls, *, plugins: Plugins, global_settings: GlobalSettings, component: str, action: str, redactor: Redactor,
             client: str | None = None, flags: dict[str, str] | None = None, domain: str | None = None,
             progress: Progress | None = None, engine: Driver | None = None,
             connect: Callable[[DockerHost], Driver] | None = None, host: str | None = None,
             relocating: bool = False) -> LifecycleContext:
        """Validate the request and load settings (generating missing secrets in memory only).

        The request goes to the Docker host the client is placed on (:func:`agencystack.placement.place`: its
        recorded host; ``host`` (``--host``) for a new client, or automatic by free capacity on install; the local
        engine when the root has no other): ``global_settings`` of the context are that host's. The engine is
        ``engine``, else what ``connect(host)`` returns when first needed (contexts of one invocation share a
        driver per host), else a driver of its own for the host, pinged on first use."""
        from agencystack import placement
        from agencystack import settings as settings_mod
        from agencystack.engine import no_progress

        spec = plugins.component(names.component_name(component))
        # a per-host component (the edge) has one instance per host (per host namespace): the reserved client
        global_settings, client = placement.place(global_settings, spec, client, host=host, action=action,
                                                  relocating=relocating)
        model = spec.settings_model()
        flags = dict(flags or {})
        if domain is not None:
            if "domain" not in model.model_fields:
                raise UsageError(f"component {spec.name!r} has no domain setting")
            domain = names.domain(domain)
            for key, value in flags.items():  # --set POSTHOG_DOMAIN=... too: both must say the same
                if _names_field(model, key, "domain") and _same_domain(names.control_characters(
                        value, f"--set {key}")) != domain:
                    raise UsageError(f"--domain {domain} contradicts --set {key}={value}: give one of them")
            flags[model.env_key("domain")] = domain
        env_file = global_settings.state_root.component(client, spec.name).env_file
        loaded = settings_mod.load(model, global_settings, env_file, flags, client=client)
        redactor.add(*loaded.values.secret_values())
        return cls(client=client, component=spec, action=action, global_settings=global_settings, plugins=plugins,
                   redactor=redactor, loaded=loaded, progress=progress or no_progress, engine=engine, flags=flags,
                   connect=connect)

    # -- settings -----------------------------------------------------------------------------------------------
    @property
    def settings(self) -> ComponentSettings:
        """The component's settings (while the stack hooks build the stack: with each ``$`` of a text value held
        as a literal, see :mod:`agencystack.stack`)."""
        return self._literal_settings if self._literal_settings is not None else self.loaded.values

    def reload_settings(self) -> None:
        """Load the settings again (once the lock is held, and after the .env changed, e.g. on restore); this call's
        flags still apply. Secrets generated by an earlier load and not saved are dropped for the saved ones."""
        from agencystack import settings as settings_mod

        self.loaded = settings_mod.load(type(self.settings), self.global_settings, self.dir.env_file, self.flags,
                                        client=self.client)
        self._redactor.add(*self.loaded.values.secret_values())
        self._stack = None  # rebuilt from the new settings

    def save_settings(self) -> list[str]:
        """Write generated secrets and flags to the .env (once; later runs find them there). Returns changed keys.

        A generated secret already saved is never overwritten: if one appeared since the settings were loaded
        (a caller that did not hold the lock), this refuses instead of replacing it."""
        saved = self.dir.read_env()
        clobbered = sorted(k for k in self.loaded.generated if saved.get(k) and saved[k] != self.loaded.to_save[k])
        if clobbered:
            raise ComponentError(f"{', '.join(clobbered)} was saved for client {self.client} by another call since "
                                 "this one loaded its settings: not overwriting it; run the command again")
        if self.loaded.to_save and self.dir.save_env(self.loaded.to_save):
            return sorted(self.loaded.to_save)
        return []

    # -- other components of the same client ----------------------------------------------------------------
    def sibling(self, component: str, action: str = "plan") -> LifecycleContext:
        """The context of another component for this client (a per-host one: the host's), sharing this call's
        plugins, engine, redactor and progress; its settings are loaded (bad ones: UsageError) but nothing is
        written. Run an action on it through :mod:`agencystack.lifecycle` (``lifecycle.install(sibling)``)."""
        return LifecycleContext.open(plugins=self._plugins, global_settings=self.global_settings, component=component,
                                     action=action, redactor=self._redactor, client=self.client,
                                     progress=self.progress, engine=self._engine, connect=self._connect)

    def installed_components(self) -> list[str]:
        """The components installed for this client (:attr:`~agencystack.state.ComponentDir.installed`), by name."""
        return [found.component for found in self.state_root.installed(self.client)]

    # -- logging ------------------------------------------------------------------------------------------------
    @cached_property
    def log(self) -> BoundLogger:
        from agencystack.logging import get_logger

        return get_logger(client=self.client, component=self.component.name, action=self.action)

    # -- the stack ----------------------------------------------------------------------------------------------
    def stack(self) -> Stack:
        """The component's desired stack after integrations amended it and this client's limit settings
        (``<PREFIX><SERVICE>_MEMORY``, ...) overrode its services' limits, validated (cached per context)."""
        if self._stack is None:
            from pydantic import ValidationError

            from agencystack.stack import Stack, mark_literal, settle_literals

            values = self.loaded.values
            marked = {name: mark_literal(value) for name in type(values).model_fields
                      if isinstance(value := getattr(values, name), str) and "$" in value}
            self._literal_settings = values.model_copy(update=marked)
            try:
                built = self._plugins.stack(self)
                if not isinstance(built, Stack):
                    raise TypeError(f"the stack hook of {self.component.name!r} returned {type(built).__name__}")
                self._plugins.modify_stack(self, built)
                from agencystack.limits import apply_overrides

                apply_overrides(built.services, self.loaded.limits, type(self.settings).prefix())  # this client's
                data = built.model_dump()
                stack = Stack.model_validate(settle_literals(data) if marked else data)  # no mark: nothing to settle
            except ValidationError as exc:  # the plugin author's bug, not the user's: exit 1, plugin named
                raise ComponentError(f"plugin {self._plugins.owner(self.component.name).label} built an invalid "
                                     f"stack for component {self.component.name}: {_stack_error(exc)}") from None
            finally:
                self._literal_settings = None
            missing = sorted(stack.references() - set(self.env()))
            if missing:
                raise UsageError(f"{self.component.name} stack references unset setting(s): {', '.join(missing)}")
            keys = self.settings.secret_keys()
            secrets = {k: v for k, v in self.env().items() if k in keys and v}
            for service, place, key in stack.literal_secrets(secrets)[:1]:
                raise UsageError(f"{self.component.name} stack puts the value of secret setting {key} literally in "
                                 f"service {service}, {place}: reference it as ${{{key}}} (agencystack.stack.ref)")
            self._stack = stack
        return self._stack

    def limits(self, service: str, default: Limits) -> Limits:
        """This client's limits of ``service``: the component's ``default`` with the client's settings
        (``<PREFIX><SERVICE>_MEMORY``, ...) applied, as :meth:`stack` will apply them. For a component whose process
        must be told its memory (Redpanda's ``--memory``, a JVM heap) while it builds its stack."""
        from types import SimpleNamespace

        from agencystack.limits import apply_overrides, service_key, split_key

        prefix = type(self.settings).prefix()
        target = SimpleNamespace(name=service, limits=default)
        mine = {k: v for k, v in self.loaded.limits.items()
                if (split_key(prefix, k) or ("",))[0] == service_key(service)}
        apply_overrides([target], mine, prefix)
        return target.limits

    def env(self) -> dict[str, str]:
        """What ``${KEY}`` references resolve to: the component's settings as KEY=value (secrets included), plus
        what integrations added with :meth:`add_env`."""
        return {**self.settings.env(), **self._added_env}

    def add_env(self, values: dict[str, str], *, secret: bool = True) -> None:
        """Let an integration (the SSO provider) add ``${KEY}`` values to this deployment's env; secret values are
        registered with the redactor first, so they never reach a log line or the console."""
        if secret:
            self._redactor.add(*values.values())
        self._added_env.update(values)

    def public_url(self, host: str, path: str = "/") -> str:
        """``host`` + ``path`` as users reach it through this host's edge (scheme and published port)."""
        from agencystack.edge import host_settings
        from agencystack.edge.routing import Edge, public_url

        edge = host_settings(self.global_settings)
        return public_url(f"http://{host}{path}", Edge(network=edge.network, http_port=edge.http_port,
                                                       https_port=edge.https_port))

    def deployment(self) -> Deployment:
        from agencystack.engine import Deployment

        return Deployment(project=self.project, client=self.client, component=self.component.name,
                          stack=self.stack(), env=self.env(), directory=self.dir.path,
                          version=self.component.version or "", secret_keys=self.settings.secret_keys())

    # -- engine -------------------------------------------------------------------------------------------------
    @property
    def engine(self) -> Driver:
        if self._engine is None and self._connect is not None:
            self._engine = self._connect(self.host)
        if self._engine is None:
            from agencystack.placement import connect

            self._engine = connect(self.host)
            self._engine.ping()
        return self._engine

    @property
    def host(self) -> DockerHost:
        """The Docker host this client is placed on (:mod:`agencystack.placement`; the local engine by default)."""
        return self.global_settings.host

    def plan(self) -> Plan:
        """What ``deploy`` would change (no side effects). The stack is built and checked before the engine is
        contacted: a plugin's or the user's mistake is reported as such on a host whose engine is down too."""
        deployment = self.deployment()
        return self.engine.plan(deployment)

    def host_conflicts(self) -> list[Conflict]:
        """The public hosts of this stack that another client or component already routes (see hosts.py)."""
        from agencystack import hosts

        wanted = {r.host for r in self.stack().routes}
        return hosts.conflicts(self.state_root, self.client, self.component.name, wanted)

    def check_owner(self) -> None:
        """Refuse (exit 2) when this project's containers on the engine belong to another state root: several
        AGENCYSTACK_ROOTs may share one engine, but never a project (the per-host edge above all)."""
        import os

        mine = os.path.realpath(self.dir.path)
        others = sorted(d for d in self.engine.directories(self.project) if d and os.path.realpath(d) != mine)
        if others:
            root = self.state_root.root_of(others[0], self.client, self.component.name)
            raise UsageError(f"{self.project} on this engine belongs to another state root ({root}): set "
                             f"AGENCYSTACK_ROOT={root} to manage it, or uninstall it there first")

    @property
    def edge_address(self) -> str:
        """Where this host's edge answers (the engine's host; loopback for a local engine): the address to send a
        request for a routed URL to, with the URL's host as ``Host`` header."""
        from agencystack.probes import edge_address

        return edge_address(self.global_settings.docker_host)

    def wait_for_probes(self, stack: Stack) -> None:
        """Wait until every :class:`~agencystack.HttpProbe` of ``stack`` answers (each bounded by its ``wait``);
        ComponentError naming the probe otherwise. :meth:`deploy` calls it: the default install waits for them."""
        if not stack.probes:
            return
        from agencystack import probes

        which = self.component.name + ("" if self.component.per_host else f" -c {self.client}")
        probes.wait(stack.probes, via=self.edge_address,
                    who=f"{self.component.name} for {self.client}", progress=self.progress,
                    hint=f"; see 'agencystack logs {which}'")

    def probe_rows(self) -> list[ServiceStatus]:
        """One :class:`~agencystack.ServiceStatus` row per probe of the stack, as the default status shows them."""
        from agencystack import probes

        return probes.rows(self.stack().probes, self.edge_address)

    def deploy(self) -> Outcome:
        """The default install: save settings, render the compose file, apply the plan, record the facts for the
        manifest. A component's own ``install`` calls it, then adds its steps. It is the core's default ``install``
        implementation (:func:`agencystack.defaults.deploy`), asked of the plugin host like any hook."""
        return self._plugins.default_install(self)


def _from_core() -> bool:
    """Whether the code that read a deprecated member (two frames up) is the core's own."""
    from agencystack.deprecations import from_core

    return from_core(depth=3)


def _deprecated(what: str) -> None:
    from agencystack.deprecations import warn

    warn(what, depth=3)


def _names_field(model: type[ComponentSettings], key: str, field: str) -> bool:
    """Whether ``key`` as a user typed it (``POSTHOG_DOMAIN``, ``domain``) names ``field`` of ``model``."""
    try:
        return model.field_for(key) == field
    except UsageError:
        return False  # an unknown key: the settings loader names it


def _same_domain(value: str) -> str:
    """``value`` as a domain compares (lowercased, no trailing dot); as typed when it is no domain at all."""
    try:
        return names.domain(value)
    except UsageError:
        return value


def _stack_error(exc: Any) -> str:
    """A pydantic error of a stack as ``Service.start_timeout: Input should be ...`` (first error; how many more)."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "value"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{exc.title}.{where}: {first['msg'].removeprefix('Value error, ')}{more}"
