"""The plugin host: the plugins loaded into one PluginManager (their records: broken, contested) and a typed way
to call their hooks. :func:`agencystack.plugins.load` builds it; the contexts carry it (this module knows no
context: a hook call's context is whatever names its component, :class:`Targeted`).

* A component name claimed by two plugins never silently picks a winner (entry points load in name order, so
  "first wins" would let any plugin hide another): the component is *contested* -- listed with every claimant and
  its distribution, unusable (``install`` etc. exit 2 naming them) until the operator keeps one, e.g.
  ``AGENCYSTACK_PLUGINS=-impostor``. The hint names the entry point of a third-party claimant to drop, never
  a first-party one (:data:`FIRST_PARTY`: the distributions shipped with agencystack). A plugin claiming a name
  the core itself provides (``edge``) is broken: the core cannot be unloaded, so there is nothing to choose.
* A plugin's mistakes are one line each, in its record's ``error``: an unknown hook (with the nearest hook's name),
  an implementation asking for an argument its hook does not have (the hook, the argument, the hook's arguments;
  never pluggy's multi-line ``PluginValidationError``).
* Core code calls hooks only through :class:`Plugins`' typed methods (one per hook, as tox 4 does), never through
  ``pm.hook`` directly and never by a hook's name as a string.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

from agencystack.component import Component
from agencystack.errors import AgencyStackError, UsageError
from agencystack.names import COMPONENT_NAME

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from agencystack.bundle import Bundle
    from agencystack.integrations import DashboardContext, DashboardEntry, SsoApplication, SsoGrant
    from agencystack.results import ComponentStatus, LogLine, LogRequest, Outcome
    from agencystack.settings import GlobalSettings
    from agencystack.stack import Stack

    #: ``(plugins, global settings or None: this process's, client)`` -> the DashboardContext of each component
    #: installed for that client (what ``dashboard_entries`` asks on behalf of a Nov-27 caller)
    ClientContexts = Callable[["Plugins", GlobalSettings | None, str], list[DashboardContext]]

#: what limits the entry points loaded (agencystack.plugins.load); the contested hint names it
PLUGINS_ENV = "AGENCYSTACK_PLUGINS"
#: the distributions shipped in agencystack's own repository (canonical names, PEP 503): a contested name's hint
#: never proposes to drop these. A third party cannot pose as one: installing a distribution of the same name
#: replaces the first-party one (pip keeps one distribution per name), so both cannot claim at once.
FIRST_PARTY = frozenset({"agencystack", "agencystack-posthog", "agencystack-keycloak", "agencystack-dashboard"})
DEFAULTS_PLUGIN = "agencystack.defaults"
CORE_PLUGINS = ("agencystack.lifecycle", DEFAULTS_PLUGIN, "agencystack.edge", "agencystack.sso", "agencystack.bundle")


@dataclass
class PluginRecord:
    """One plugin as ``components list`` shows it."""

    name: str  # the entry point's name (what AGENCYSTACK_PLUGINS names), or the core module's
    distribution: str
    version: str
    value: str = ""  # what the entry point names: ``module`` or ``module:attr``
    ok: bool = True
    error: str = ""
    components: list[Component] = field(default_factory=list)
    core: bool = False
    contested: list[str] = field(default_factory=list)  # names this plugin claims that another plugin claims too
    private_imports: list[str] = field(default_factory=list)  # agencystack.* modules outside the API it imported

    @property
    def label(self) -> str:
        return f"{self.name} ({self.distribution} {self.version})".replace(" )", ")")

    @property
    def first_party(self) -> bool:
        """Shipped with agencystack (:data:`FIRST_PARTY`), or the core itself."""
        return self.core or canonical_name(self.distribution) in FIRST_PARTY


class Targeted(Protocol):
    """What a hook is called with: a context naming the component the call is for (``LifecycleContext``, or
    ``DashboardContext``); a targeted call goes to that component's plugin."""

    @property
    def component(self) -> Component: ...


class Plugins:
    """The loaded plugins and typed calls into their hooks."""

    def __init__(self, pm: pluggy.PluginManager, records: list[PluginRecord], owners: dict[str, object],
                 claims: dict[str, list[PluginRecord]] | None = None, *,
                 client_contexts: ClientContexts | None = None):
        self._pm = pm
        self._client_contexts = client_contexts  # the Nov-27 dashboard_entries shim's contexts (see there)
        self.records = records
        self._owners = owners  # component name -> the plugin object that provides it (contested names: none)
        self._claims = claims if claims is not None else {}  # component name -> every plugin claiming it
        self._core = [pm.get_plugin(name) for name in CORE_PLUGINS if pm.get_plugin(name) is not None]
        #: names in AGENCYSTACK_PLUGINS that no installed entry point has (load warns about them)
        self.unknown: list[str] = []

    # -- discovery ----------------------------------------------------------------------------------------------
    @property
    def components(self) -> dict[str, Component]:
        return {c.name: c for r in self.records if r.ok for c in r.components}

    @property
    def broken(self) -> list[PluginRecord]:
        return [r for r in self.records if not r.ok]

    @property
    def contested(self) -> dict[str, list[PluginRecord]]:
        """Component names claimed by more than one plugin: unusable until the operator keeps one."""
        return {name: records for name, records in self._claims.items() if len(records) > 1}

    def component(self, name: str) -> Component:
        """The component called ``name``, or a UsageError listing the known ones (and any broken plugin)."""
        known = self.components
        if name in known:
            return known[name]
        if name in self.contested:
            raise UsageError(contested_message(name, self.contested[name]))
        hint = f"known: {', '.join(sorted(known)) or 'none'}"
        if self.broken:
            hint += f"; broken plugins: {', '.join(r.name for r in self.broken)} (see 'agencystack components list')"
        raise UsageError(f"unknown component {name!r} ({hint})")

    def bundles(self) -> dict[str, Bundle]:
        """Every bundle the plugins contribute (``bundles`` hook), contributions to one name merged; a name that is
        also a component's is left out (the component wins). A plugin's invalid answer is skipped."""
        from agencystack.bundle import Bundle

        merged: dict[str, Bundle] = {}
        for answer in self._pm.hook.bundles():
            for bundle in answer or ():
                if not isinstance(bundle, Bundle) or not COMPONENT_NAME.fullmatch(bundle.name):
                    continue
                if bundle.name in self.components or bundle.name in self.contested:
                    continue
                known = merged.get(bundle.name)
                members = tuple(dict.fromkeys((*(known.components if known else ()), *bundle.components)))
                merged[bundle.name] = Bundle(bundle.name, members, (known.description if known else "")
                                             or bundle.description)
        return dict(sorted(merged.items()))

    def bundle(self, name: str) -> Bundle | None:
        """The bundle called ``name``, or None when there is none (or ``name`` is a component)."""
        return self.bundles().get(name)

    def owner(self, component: str) -> PluginRecord:
        """The record of the plugin that provides ``component``."""
        return next(r for r in self.records if any(c.name == component for c in r.components))

    def register(self, plugin: object, name: str, distribution: str = "(in-process)") -> PluginRecord:
        """Register a plugin object directly (programs embedding agencystack, tests), with the same checks."""
        record = PluginRecord(name=name, distribution=distribution, version="")
        register_plugin(self._pm, record, self._owners, lambda: plugin, self._claims)
        self.records.append(record)
        return record

    def implementations(self, plugin: str) -> list[tuple[str, Callable[..., Any]]]:
        """``(hook, function)`` for each hook the plugin registered as ``plugin`` implements (none: unknown)."""
        registered = self._pm.get_plugin(plugin)
        if registered is None:
            return []
        return [(caller.name, impl.function) for caller in self._pm.get_hookcallers(registered) or []
                for impl in caller.get_hookimpls() if impl.plugin is registered]

    def warnings(self) -> list[str]:
        """One line per (plugin, problem), for ``components list`` and ``doctor``: a deprecated member its hook
        implementations read (:func:`agencystack.deprecations.read_by`), or a module outside the public API it
        imported while loading."""
        from agencystack import deprecations

        lines = []
        for record in self.records:
            if record.core or not record.ok:
                continue
            lines += [f"plugin {record.label}: {hook} reads context.{deprecation.member}: {deprecation.message()}"
                      for hook, function in self.implementations(record.name)
                      for deprecation in deprecations.read_by(hook, function)]
            lines += [f"plugin {record.label} imports {module}, which is not part of the plugin API (import from "
                      "'agencystack' only, and 'agencystack.testing' in tests): it may change in any release"
                      for module in record.private_imports]
        return list(dict.fromkeys(lines))

    # -- targeted calls: one typed method per hook (a misspelt hook is an AttributeError, and a type error) ---
    def stack(self, context: Targeted) -> Stack:
        """The target component's ``stack`` hook (validation and integrations: ``LifecycleContext.stack``)."""
        return self._targeted(self._pm.hook.stack, context.component.name, context=context)

    def install(self, context: Targeted) -> Outcome:
        return self._targeted(self._pm.hook.install, context.component.name, context=context)

    def status(self, context: Targeted) -> ComponentStatus:
        return self._targeted(self._pm.hook.status, context.component.name, context=context)

    def logs(self, context: Targeted, request: LogRequest) -> Iterator[LogLine]:
        return self._targeted(self._pm.hook.logs, context.component.name, context=context, request=request)

    def restart(self, context: Targeted, services: tuple[str, ...]) -> Outcome:
        return self._targeted(self._pm.hook.restart, context.component.name, context=context, services=services)

    def backup(self, context: Targeted, archive: Any) -> Outcome:
        return self._targeted(self._pm.hook.backup, context.component.name, context=context, archive=archive)

    def restore(self, context: Targeted, archive: Any) -> Outcome:
        return self._targeted(self._pm.hook.restore, context.component.name, context=context, archive=archive)

    def own_restore(self, component: str) -> bool:
        """Whether ``component``'s plugin implements ``restore`` itself (else the core's default restores it: that
        one checks the archive while it loads into staging, a component's own is handed a verified archive)."""
        owner = self._owners.get(component)
        return any(impl.plugin is owner for impl in self._pm.hook.restore.get_hookimpls()) if owner else False

    def uninstall(self, context: Targeted, purge: bool) -> Outcome:
        return self._targeted(self._pm.hook.uninstall, context.component.name, context=context, purge=purge)

    def sso_admin(self, context: Targeted) -> Any:
        """The identity provider's people and secrets (``context`` is the provider's own context)."""
        return self._targeted(self._pm.hook.sso_admin, context.component.name, context=context)

    def _targeted(self, caller: pluggy.HookCaller, component: str, **kwargs: Any) -> Any:
        """Call a targeted hook: only the plugin owning ``component`` plus the core's wrappers and defaults."""
        keep = [self._owners[component], *self._core]
        others = [p for p in self._pm.get_plugins() if all(p is not k for k in keep)]
        return self._pm.subset_hook_caller(caller.name, remove_plugins=others)(**kwargs)

    def default_install(self, context: Targeted) -> Outcome:
        """The core's default ``install`` alone: no component's own, no wrapper (``context.deploy()``, for a
        component that adds steps to it)."""
        return self._default(self._pm.hook.install, context=context)

    def default_uninstall(self, context: Targeted, purge: bool) -> Outcome:
        """The core's default ``uninstall`` alone (the edge's own uninstall adds its network's removal to it)."""
        return self._default(self._pm.hook.uninstall, context=context, purge=purge)

    def _default(self, caller: pluggy.HookCaller, **kwargs: Any) -> Any:
        defaults = self._pm.get_plugin(DEFAULTS_PLUGIN)
        others = [p for p in self._pm.get_plugins() if p is not defaults]
        return self._pm.subset_hook_caller(caller.name, remove_plugins=others)(**kwargs)

    # -- broadcast calls ----------------------------------------------------------------------------------------
    def modify_stack(self, context: Targeted, stack: Stack) -> None:
        self._pm.hook.modify_stack(context=context, stack=stack)

    def sso_protect(self, context: Targeted, application: SsoApplication, stack: Stack | None = None
                    ) -> SsoGrant | None:
        return self._pm.hook.sso_protect(context=context, application=application, stack=stack)

    def dashboard_entries(self, context: DashboardContext) -> list[DashboardEntry]:
        """The tiles of ``context.component``: its own plugin's answer (and the core's), never other plugins'.

        Deprecated since plugin API 1.1.0 (:mod:`agencystack.deprecations`), working until 2.0.0: a context
        without ``component`` (the Nov-27 contract: a context of the client, ``client`` and ``base``) asks every
        component installed for that client, warned; an implementation written to that contract (it reads
        ``context.base``, the broadcast era's global settings) answers for its own component only. The contexts of
        that client's components come from ``client_contexts`` (given to :func:`agencystack.plugins.load`; the
        invocation and the test kit give :func:`agencystack.dashboard_registry.contexts`), as the dashboard
        registry document opens them."""
        if not hasattr(context, "component"):
            from agencystack import deprecations

            deprecations.warn("dashboard_entries(context without component)")
            if self._client_contexts is None:
                raise UsageError("dashboard_entries was called with a context of a client (the Nov-27 contract), "
                                 "but these plugins were loaded without a way to open its components' contexts: "
                                 "load them as the test kit does (agencystack_plugins), or pass an "
                                 "agencystack.DashboardContext")
            contexts = self._client_contexts(self, getattr(context, "base", None), context.client)
            return [entry for each in contexts for entry in self.dashboard_entries(each)]
        answers = self._targeted(self._pm.hook.dashboard_entries, context.component.name, context=context)
        entries = [entry for answer in answers or () for entry in answer or ()]
        if getattr(context, "_deprecated_reads", ()):  # a broadcast-era implementation answers for all of its components
            entries = [e for e in entries if getattr(e, "component", None) == context.component.name]
        return entries


def canonical_name(distribution: str) -> str:
    """A distribution's name as PEP 503 compares them: ``Agencystack_PostHog`` is ``agencystack-posthog``."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def contested_message(name: str, claimants: list[PluginRecord]) -> str:
    """The one line that names every claimant of a contested component and how the operator chooses: drop the
    third-party claimants when a first-party plugin claims it too, else each way of keeping one."""
    names = " and ".join(r.label for r in claimants)
    third = [r for r in claimants if not r.first_party]
    if len(third) < len(claimants):
        drop = ",".join(f"-{r.name}" for r in third)
        keep = next(r for r in claimants if r.first_party)
        how = f"e.g. {PLUGINS_ENV}={drop} keeps {keep.label}"
    else:
        how = ", or ".join(f"{PLUGINS_ENV}=" + ",".join(f"-{o.name}" for o in claimants if o is not r)
                           + f" keeps {r.name}" for r in claimants)
        how = f"e.g. {how}"
    return (f"component {name!r} is claimed by plugins {names}: choose one with {PLUGINS_ENV} ({how}) "
            "or uninstall the other distribution")


def register_plugin(pm: pluggy.PluginManager, record: PluginRecord, owners: dict[str, object], loader,
              claims: dict[str, list[PluginRecord]]) -> None:
    """Load and register one plugin; on any failure mark it broken and leave the manager as it was."""
    try:
        plugin = loader()
    except Exception as exc:  # a plugin that fails to import is reported, never fatal
        record.ok, record.error = False, _describe(exc)
        return
    try:
        pm.register(plugin, name=record.name)
    except pluggy.PluginValidationError as exc:  # pluggy validates argument names against the specs here
        record.ok, record.error = False, _unknown_arguments(pm, plugin) or _describe(exc)
        return
    except Exception as exc:
        record.ok, record.error = False, _describe(exc)
        return
    try:
        unknown = sorted(c.name for c in pm.get_hookcallers(plugin) or [] if not c.has_spec())
        if unknown:
            raise UsageError(_unknown_hooks(pm, unknown))
        others = [p for p in pm.get_plugins() if p is not plugin]
        caller = pm.subset_hook_caller(pm.hook.components.name, remove_plugins=others)
        found = [c for answer in caller() for c in answer]
        for component in found:
            if not isinstance(component, Component) or not COMPONENT_NAME.fullmatch(component.name):
                raise UsageError(f"components hook returned an invalid component {component!r}")
            core = next((r for r in claims.get(component.name, ()) if r.core), None)
            if core is not None:
                raise UsageError(f"component {component.name!r} is provided by the core ({core.distribution}) "
                                 "and cannot be replaced by a plugin")
    except Exception as exc:
        pm.unregister(plugin)
        record.ok, record.error = False, _describe(exc)
        return
    for component in found:
        if component.version is None:
            component = dataclasses.replace(component, version=record.version)
        claimants = claims.setdefault(component.name, [])
        claimants.append(record)
        if len(claimants) == 1:
            record.components.append(component)
            owners[component.name] = plugin
            continue
        owners.pop(component.name, None)  # never silently pick a winner: nobody serves a contested name
        for claimant in claimants:
            claimant.components = [c for c in claimant.components if c.name != component.name]
            if component.name not in claimant.contested:
                claimant.contested.append(component.name)


def _unknown_hooks(pm: pluggy.PluginManager, unknown: list[str]) -> str:
    """One line for hook implementations no hookspec declares: each with the nearest hook's name."""
    from difflib import get_close_matches

    known = sorted(name for name in vars(pm.hook) if not name.startswith("_") and getattr(pm.hook, name).has_spec())
    guesses = [f"{name} (misspelled? did you mean {close[0]}?)" if (close := get_close_matches(name, known, n=1))
               else f"{name} (misspelled?)" for name in unknown]
    return f"implements unknown hook(s) {', '.join(guesses)}; the hooks: {', '.join(known)}"


def _unknown_arguments(pm: pluggy.PluginManager, plugin: object) -> str:
    """One line for the first hook implementation of ``plugin`` asking for an argument its hook does not pass
    (what pluggy refuses with a multi-line PluginValidationError): the hook, the argument, the hook's arguments.
    Empty when no implementation does (pluggy refused something else)."""
    import inspect

    for attr in dir(plugin):
        opts = pm.parse_hookimpl_opts(plugin, attr)
        caller = getattr(pm.hook, (opts or {}).get("specname") or attr, None) if opts is not None else None
        if caller is None or caller.spec is None:
            continue
        function = getattr(plugin, attr)
        known = (*caller.spec.argnames, *caller.spec.kwargnames)
        asked = [p.name for p in inspect.signature(function).parameters.values()
                 if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        extra = [name for name in asked if name not in known]
        if extra:
            where = getattr(function, "__module__", None) or type(plugin).__module__
            return (f"{attr}({', '.join(asked)}) in {where}: hook {caller.name!r} has no argument(s) "
                    f"{', '.join(map(repr, extra))} (misspelled? its arguments: {', '.join(known) or 'none'})")
    return ""


def _describe(exc: BaseException) -> str:
    """One line: the exception's type and message; our own errors (already one line for people) as they are."""
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if isinstance(exc, AgencyStackError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
