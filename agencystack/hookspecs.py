"""Every hook of agencystack. Each function is empty: its docstring is the contract.

Hooks are grouped by phase, in the order one command meets them:

1. Discovery   -- ``components``, ``bundles``
2. Building    -- ``stack``, ``modify_stack``
3. Lifecycle   -- ``install``, ``status``, ``logs``, ``restart``, ``backup``, ``restore``, ``uninstall``
4. Integration -- ``sso_protect``, ``dashboard_entries``

Two kinds of dispatch (see :mod:`agencystack.plugin_host`):

* **Targeted** hooks (``stack``, every lifecycle hook, ``dashboard_entries``) reach only the plugin that registered the target
  component, plus the core's wrappers (lock, log context, timing) and the core's default implementations. They are
  ``firstresult``: the first non-``None`` answer wins, and the core's defaults run last (``trylast``), so a component
  that answers ``None`` -- or does not implement the hook at all -- gets the default behaviour, which works from
  the component's :class:`~agencystack.stack.Stack`.
* **Broadcast** hooks (``components``, ``bundles``, ``modify_stack``) reach every plugin; ``dashboard_entries`` is
  targeted at the plugin of the component it describes; ``sso_protect``
  reaches every plugin but stops at the first identity provider that answers.

Argument names are part of the contract: an implementation may accept any subset of them, by name. What may change
between releases, and how a deprecated hook or argument warns, is docs/plugins.md's compatibility policy (enforced by
tests/test_plugin_api.py against the recorded API, tests/data/plugin_api.json: every hook's arguments with their types,
its dispatch, and every member of what it receives and returns).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # annotations only: importing this module costs pluggy alone
    from collections.abc import Iterator

    from agencystack.backup.archive import ArchiveReader, ArchiveWriter
    from agencystack.bundle import Bundle
    from agencystack.component import Component
    from agencystack.context import LifecycleContext
    from agencystack.integrations import DashboardContext, DashboardEntry, SsoAdmin, SsoApplication, SsoGrant
    from agencystack.results import ComponentStatus, LogLine, LogRequest, Outcome
    from agencystack.stack import Stack

hookspec = pluggy.HookspecMarker("agencystack")

#: the hooks called only on the plugin that provides the target component (``context.component``) plus the core's
#: wrappers and defaults; every other hook is broadcast (reaches every plugin)
TARGETED = frozenset({"stack", "install", "status", "logs", "restart", "backup", "restore", "uninstall", "sso_admin",
                      "dashboard_entries"})


# ---------------------------------------------------------------------------------------------------------------
# 1. Discovery
# ---------------------------------------------------------------------------------------------------------------


@hookspec
def components() -> list[Component]:
    """List the components this plugin provides.

    Called once per command, on every plugin, while plugins load. Must be cheap and free of side effects: no engine,
    no files, no network, no heavy imports (name the settings model by import path).

    Returns: a list of :class:`agencystack.Component`. Names must be unique across all plugins: a name two plugins
    claim is *contested* (unusable until the operator keeps one, see :mod:`agencystack.plugin_host`); a plugin claiming
    a name the core provides (``edge``) is broken.
    """


@hookspec
def bundles() -> list[Bundle]:
    """List the bundles this plugin contributes: named sets of components installed together.

    Broadcast, called on every plugin when a command names something that is not a component (``agencystack
    install demo-core``). Cheap and free of side effects, like ``components``. The core contributes ``demo-core``
    (edge, keycloak, dashboard, posthog); a third party defines its own bundle, or joins one by returning a
    :class:`agencystack.Bundle` of the same name: the members of every contribution to a name are merged (a member
    named twice counts once).

    The core installs a bundle's members and everything they ``require`` in dependency order: a component after
    the components it requires and, when the bundle holds an identity provider (``provides=("sso",)``), every
    other member after the provider (the SSO relation), except what the provider itself requires. Members that do
    not depend on each other install in parallel (bounded). A member that fails stops only the members that depend
    on it (reported as skipped); the others finish.

    Returns: a list of :class:`agencystack.Bundle`. A bundle name must not be a component's name (a name both is
    means the component: the bundle is never used).
    """


# ---------------------------------------------------------------------------------------------------------------
# 2. Building the desired stack
# ---------------------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def stack(context: LifecycleContext) -> Stack | None:
    """Describe what should run for the target component: data, not engine calls.

    Targeted, firstresult. ``context`` is an :class:`agencystack.LifecycleContext` whose ``settings`` are loaded and
    whose generated secrets exist. Must be deterministic for the same settings (the plan diffs it against what
    runs) and must reference secrets as ``${KEY}`` of the component's .env (:func:`agencystack.ref`), never inline
    their values: the core refuses (exit 2, naming service and variable) a stack with the value of one of the
    component's secret settings in an environment variable, label, command, entrypoint or healthcheck. A stack
    that fails the model's validation is reported as this plugin's bug (exit 1, naming plugin and field).

    Resource limits: give each service its default :class:`agencystack.Limits` (memory, reservation, CPUs, pids,
    and the ``min_memory`` a client may not go below). Every client can override them with the settings
    ``<PREFIX><SERVICE>_MEMORY`` / ``_MEMORY_RESERVATION`` / ``_CPUS`` / ``_PIDS``, which the core provides and applies
    after this hook; nothing to declare. A process that must be told its memory asks ``context.limits(service,
    default)`` for the client's values.

    Returns: an :class:`agencystack.Stack`. Components that run no containers return an empty ``Stack()``.
    """


@hookspec
def modify_stack(context: LifecycleContext, stack: Stack) -> None:
    """Amend another component's stack before it is validated, planned and rendered.

    Broadcast: called on every plugin, for every stack built. Integrations live here: the edge turns
    ``stack.routes`` into Traefik labels and attaches the edge network; an identity provider adds its forward-auth
    middleware to routes that ask for SSO. Change ``stack`` in place; return nothing. Must be deterministic and
    idempotent (it runs on every plan, including ``agencystack plan``, which must not touch anything).
    """


# ---------------------------------------------------------------------------------------------------------------
# 3. Lifecycle (targeted, firstresult; the core's defaults run last)
# ---------------------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def install(context: LifecycleContext) -> Outcome | None:
    """Install or converge the target component for ``context.client``; re-running with nothing changed is a no-op.

    Called by ``agencystack install`` with the (client, component) lock held, after the core installed the
    components this one ``requires`` and checked the host against its ``resources``. The core's default
    (``context.deploy()``) deploys ``context.stack()`` through the engine (create/recreate/remove per service,
    dependency order, health-gated), waits for the stack's :class:`agencystack.HttpProbe` s, and records the
    manifest. A component that needs more (waiting for an HTTP health URL, creating a realm) implements
    this hook, calls ``context.deploy()`` itself and adds its steps.

    Returns: an :class:`agencystack.Outcome` (summary line, URL, changes), or ``None`` to fall through to the
    default. Raise :class:`agencystack.ComponentError` with one line naming what broke.
    """


@hookspec(firstresult=True)
def status(context: LifecycleContext) -> ComponentStatus | None:
    """Report the target component's state for ``context.client``. Read-only; no lock is taken.

    The core's default aggregates container states from the engine by priority
    (failed > starting > stopped > running), with one row per :class:`agencystack.HttpProbe` of the stack (failed
    when it does not answer as expected) and the ``sso`` row. ``status --all`` goes through this hook too (with
    the engine's one listing of every container). A component may add rows on top (a ``wrapper``).

    Returns: an :class:`agencystack.ComponentStatus`.
    """


@hookspec(firstresult=True)
def logs(context: LifecycleContext, request: LogRequest) -> Iterator[LogLine] | None:
    """Stream the target component's logs. Read-only; no lock is taken.

    ``request`` is an :class:`agencystack.LogRequest` (services, tail, since, follow). The core's default streams
    container logs, interleaved with a service prefix.

    Returns: an iterator of :class:`agencystack.LogLine`, produced as lines arrive (never buffered whole).
    """


@hookspec(firstresult=True)
def restart(context: LifecycleContext, services: tuple[str, ...]) -> Outcome | None:
    """Restart the target component's services, in dependency order, each gated on health.

    ``services`` is a tuple of service names, empty for all. Called with the lock held.

    Returns: an :class:`agencystack.Outcome`.
    """


@hookspec(firstresult=True)
def backup(context: LifecycleContext, archive: ArchiveWriter) -> Outcome | None:
    """Write the target component's data into ``archive`` (an :class:`agencystack.ArchiveWriter`).

    Called by ``agencystack backup`` with the lock held. The core's default writes every part the stack declares
    in ``Stack.backups`` (database dumps streamed from the running service, volume archives, the .env). The data
    must be consistent while the application writes: use the database's own dump, never copied data files.

    Returns: an :class:`agencystack.Outcome`.
    """


@hookspec(firstresult=True)
def restore(context: LifecycleContext, archive: ArchiveReader) -> Outcome | None:
    """Restore the target component from ``archive`` (an :class:`agencystack.ArchiveReader`).

    Called by ``agencystack restore`` with the lock held; a component's own ``restore`` only after the whole
    archive has been verified. The core's default loads Postgres parts into scratch databases while the component
    runs and the archive is checked beside it, then stops the stack only to swap them in (else it stops the stack
    and restores every declared part in place, once the check has passed), starts it and waits for health.

    Returns: an :class:`agencystack.Outcome`.
    """


@hookspec(firstresult=True)
def uninstall(context: LifecycleContext, purge: bool) -> Outcome | None:
    """Remove the target component's containers and networks for ``context.client``.

    Volumes and the client directory (.env with its secrets) are kept unless ``purge`` is true (the CLI asks first,
    or needs ``--yes``). Called with the lock held. Other clients are never touched. Not called while installed
    components require this one (the core refuses, naming them) unless the operator forces it.

    Returns: an :class:`agencystack.Outcome`.
    """


# ---------------------------------------------------------------------------------------------------------------
# 4. Integrations (named contracts between components)
# ---------------------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def sso_protect(context: LifecycleContext, application: SsoApplication, stack: Stack | None
                ) -> SsoGrant | None:
    """Provide single sign-on for ``application`` (an :class:`agencystack.SsoApplication`) in ``stack``.

    Implemented by identity-provider components (Keycloak). Called by the core (:mod:`agencystack.sso`) while
    another component's stack is modified (before the edge labels it), when one of its routes asks for SSO and the
    component did not opt out (``<PREFIX>SSO=false``). ``context`` is the *protected* component's context.

    The provider adds its gate to ``stack`` (e.g. an oauth2-proxy service, its ``/oauth2/`` route and the
    forward-auth middleware's definition as labels) and the secrets it needs to the deployment's env with
    :meth:`agencystack.LifecycleContext.add_env` (never into the stack itself); the core then attaches
    ``grant.middleware`` to every protected route. Side effects (creating the OIDC client through the provider's
    admin API) only when ``context.action == "install"``; on any other action (plan, status, backup) answer from
    saved state. Must be idempotent: create the OIDC client the first time, converge it afterwards, never rotate an
    existing client secret. When the provider is installed but cannot converge yet (not ready), answer a grant with
    ``state="pending"``: the core still attaches the middleware, so protected paths fail closed.

    Returns: an :class:`agencystack.SsoGrant`, or ``None`` when this plugin is not an identity provider or none is
    installed for the client (the core then reports the routes as **unprotected**).
    """


@hookspec(firstresult=True)
def sso_admin(context: LifecycleContext) -> SsoAdmin | None:
    """The identity provider's people and secrets, for ``agencystack sso`` (targeted at the component whose
    :attr:`agencystack.Component.provides` has ``"sso"``).

    Returns: an :class:`agencystack.integrations.SsoAdmin`: an object with ``list_users() -> list[dict]`` (username,
    email, enabled), ``add_user(email, *, temporary) -> str`` (the new password: shown once by the CLI, never
    logged), ``remove_user(email) -> bool`` and ``rotate(component) -> None`` (a new client secret for that
    component's OIDC client), or ``None``. Optional members (a provider without them: the CLI says it cannot):
    ``logout_user(email) -> bool`` (end the user's sessions now), ``unlock_user(email) -> bool`` (lift a
    brute-force lockout) and ``revalidate_seconds: int`` (within how long a removed user or ended session loses
    access to every protected UI); the ``-> bool`` members answer False when there is no such user.
    """


@hookspec
def dashboard_entries(context: DashboardContext) -> list[DashboardEntry]:
    """Describe what the agency dashboard shows for one of this plugin's components installed for the client.

    Targeted: called on the plugin that provides ``context.component`` (once per installed component, whenever the
    core rewrites the client's dashboard registry document: after every lifecycle action, see
    :mod:`agencystack.dashboard_registry`). ``context`` is an :class:`agencystack.DashboardContext`, read-only:
    ``client``, ``component``, the component's loaded ``settings``, its ``manifest``, its ``url`` and the names of
    the client's ``installed`` components; a plugin never reads files itself. Cheap: no engine calls, no network.
    Never put a secret into an entry (the core scrubs known secret values anyway).

    Deprecated since plugin API 1.1.0, working until 2.0.0 (:mod:`agencystack.deprecations`): the 1.0.0 contract,
    broadcast with a context of the client (``client``, the global settings as ``base``), each plugin filtering on
    what is installed. An implementation that reads ``context.base`` is warned and answers for its own component.

    Returns: a list of :class:`agencystack.DashboardEntry` (may be empty).
    """
