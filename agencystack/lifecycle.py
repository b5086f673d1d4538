"""The lifecycle, as the core runs it for the CLI and for any program that embeds AgencyStack.

Public functions, one per lifecycle action (``from agencystack import lifecycle``):

* :func:`install` installs first every component the target ``requires`` (:attr:`agencystack.Component.requires`)
  that is not installed for the client (depth first, each through its own install), then the target;
* :func:`uninstall` refuses (exit 2, nothing changed) to remove a component that installed components require,
  naming them, unless ``force`` is given (then it warns and removes);
* :func:`restart` refuses (exit 2, before any lock or log line) a service the target's stack does not have;
* :func:`install` refuses public hosts another client or component routes before the target's own install runs;
* :func:`status`, :func:`logs`, :func:`restart`, :func:`backup`, :func:`restore` dispatch to the target's hook.

Around every action, the wrappers below (pluggy ``wrapper=True`` hook implementations registered like any plugin)
run without the component doing anything:

* mutating actions (install, restart, backup, restore, uninstall) hold the per-(client, component) lock, and load
  the component's settings again once they hold it (a call that waited sees what the one before it saved);
* install checks the host against the component's :class:`~agencystack.Resources` (below the minimum: refused,
  nothing changed; below the recommendation: a warning), once, for every component (the client's Docker host:
  this machine's figures for the local engine, the engine's own for another host);
* install and restore record the client's placement on its host (:mod:`agencystack.placement`);
* every action binds the log context (client, component, action), times itself and logs its outcome as one JSON
  line in the component's log;
* mutating actions record their outcome (and the facts the action gathered) in the component's manifest, then
  rewrite the client's dashboard registry document (:mod:`agencystack.dashboard_registry`; a successful backup's
  once its archive is committed, by :func:`agencystack.backup.operations.backup`); a failed first install is
  recorded once it left anything in the component's directory (it is installed from then on), a refused one not;
* status: a component whose last install or restore failed is ``failed``, with that error as its message, whatever
  its status hook answers (or fails with).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from agencystack.markers import hookimpl

if TYPE_CHECKING:
    from agencystack.context import LifecycleContext
    from agencystack.invocation import Invocation
    from agencystack.results import ComponentStatus, LogLine, LogRequest, Outcome

MUTATING = ("install", "restart", "backup", "restore", "uninstall")


# -- the lifecycle, one typed function per action ----------------------------------------------------------------
def install(context: LifecycleContext) -> Outcome:
    """Install (or converge) the target component, after the components it requires that are not installed yet.
    Public hosts of the target that another client or component routes are refused before the target's install
    (UsageError: for it nothing is locked, logged or recorded; the default install checks again under the
    host-wide lock)."""
    from agencystack import hosts

    _install_requirements(context, (context.component.name,))
    hosts.refuse(context.host_conflicts(), context.component.name, context.client)
    return context.plugins.install(context)


def status(context: LifecycleContext) -> ComponentStatus:
    return context.plugins.status(context)


def logs(context: LifecycleContext, request: LogRequest) -> Iterator[LogLine]:
    return context.plugins.logs(context, request)


def restart(context: LifecycleContext, services: tuple[str, ...] = ()) -> Outcome:
    """Restart the target's ``services`` (all when empty); each must be a service of its stack (UsageError before
    anything is locked, logged or recorded otherwise)."""
    check_services(context, services)
    return context.plugins.restart(context, tuple(services))


def check_services(context: LifecycleContext, services: tuple[str, ...] | list[str]) -> None:
    """UsageError (exit 2) naming each of ``services`` that is no service of the target's stack (no engine). A
    component whose stack runs no service (its own hooks do the work) names its services itself."""
    from agencystack.errors import UsageError
    from agencystack.names import service_names

    service_names(tuple(services))
    known = {s.name for s in context.stack().services}
    unknown = sorted(set(services) - known)
    if unknown and known:
        raise UsageError(f"unknown service(s) {', '.join(unknown)} of {context.component.name} "
                         f"(known: {', '.join(sorted(known))})")


def backup(context: LifecycleContext, archive: Any) -> Outcome:
    return context.plugins.backup(context, archive)


def restore(context: LifecycleContext, archive: Any) -> Outcome:
    return context.plugins.restore(context, archive)


def uninstall(context: LifecycleContext, purge: bool = False, *, force: bool = False) -> Outcome:
    """Remove the target component. Refused (UsageError, nothing changed) while installed components require it,
    unless ``force``: then the dependents are named in a warning and in the outcome."""
    dependents = check_uninstall(context, force=force)
    outcome = context.plugins.uninstall(context, purge)
    if dependents:
        message = f"{', '.join(dependents)} required {context.component.name} and will not work without it"
        context.log.warning(message)
        outcome.summary += f"; warning: {message}"
        outcome.details["dependents"] = dependents
    return outcome


def check_uninstall(context: LifecycleContext, *, force: bool = False) -> list[str]:
    """The installed components that require the target; UsageError (exit 2) naming them unless ``force``.
    :func:`uninstall` calls it; a caller that asks the operator first (``--purge``) calls it before asking."""
    from agencystack.errors import UsageError

    dependents = required_by(context)
    if dependents and not force:
        raise UsageError(f"{_which(context)} is required by {', '.join(dependents)}: uninstall "
                         f"{'them' if len(dependents) > 1 else 'it'} first, or use --force (they stop working)")
    return dependents


def require_installed(context: LifecycleContext) -> None:
    """UsageError (exit 2) when the component is not installed for the client: nothing to show, nothing to ask the
    engine (``logs``)."""
    from agencystack.errors import UsageError

    if not context.dir.installed:
        raise UsageError(f"{_which(context)} is not installed (see 'agencystack status --all')")


def require_services(context: LifecycleContext, services: tuple[str, ...] | list[str]) -> None:
    """UsageError (exit 2) when a name of ``services`` (``--service``) is no service of the component's stack
    (checked without the engine)."""
    from agencystack.errors import UsageError

    known = {s.name for s in context.stack().services}
    unknown = sorted(set(services) - known)
    if unknown:
        raise UsageError(f"unknown service(s) {', '.join(unknown)} of {context.component.name} "
                         f"(known: {', '.join(sorted(known)) or 'none'})")


def sso_admin(invocation: Invocation, client: str | None, action: str = "sso") -> tuple[LifecycleContext, Any]:
    """The client's identity provider (the component whose ``provides`` has ``"sso"``) as its ``sso_admin`` hook
    answers it: ``(the provider's context, its admin)``. UsageError (exit 2) when no plugin provides one, it is not
    installed for the client, or it manages no users."""
    from agencystack.errors import UsageError

    providers = [c.name for c in invocation.plugins.components.values() if "sso" in c.provides]
    if not providers:
        raise UsageError("no identity provider plugin is installed (e.g. agencystack-keycloak)")
    context = invocation.context(providers[0], action, client=client)
    if not context.dir.installed:
        raise UsageError(f"{providers[0]} is not installed for {context.client}: "
                         f"agencystack install {providers[0]} -c {context.client}")
    admin = invocation.plugins.sso_admin(context)
    if admin is None:
        raise UsageError(f"{providers[0]} does not manage users")
    return context, admin


def run(context: LifecycleContext, action: str, **kwargs: Any) -> Any:
    """Dispatch an action by name (kept for callers written before the typed functions; the core does not use it).
    ``install`` and ``uninstall`` go through :func:`install` / :func:`uninstall`, requirements and all."""
    if action == "sso_admin":
        return context.plugins.sso_admin(context)
    if action not in (*MUTATING, "status", "logs"):
        raise ValueError(f"unknown lifecycle action {action!r}")
    return globals()[action](context, **kwargs)


# -- requirements ------------------------------------------------------------------------------------------------
def _install_requirements(context: LifecycleContext, chain: tuple[str, ...]) -> None:
    """Install each component ``context``'s component requires (depth first) that is not installed yet, saying so.
    A requirement naming an unknown component, or a cycle, is bad input: exit 2 before anything is installed."""
    from agencystack.errors import UsageError

    for name in context.component.requires:
        if name in chain:
            raise UsageError(f"components require each other in a cycle: {' -> '.join((*chain, name))}")
        try:
            needed = context.sibling(name, "install")
        except UsageError as exc:
            raise UsageError(f"{context.component.name} requires {name}, which cannot be installed: {exc}") from None
        if needed.dir.installed:
            continue
        _install_requirements(needed, (*chain, name))
        context.progress(context.component.name, f"requires {name}, which is not installed: installing it first")
        outcome = needed.plugins.install(needed)
        context.progress(name, outcome.summary)


def required_by(context: LifecycleContext) -> list[str]:
    """Installed components that require the target: of the same client, or of every client for a per-host
    component (the edge). Named ``component`` or ``component (client)``."""
    name, found = context.component.name, []
    known = context.plugins.components
    for installed in context.state_root.installed():
        client, component = installed.client, installed.component
        spec = known.get(component)
        if spec is None or name not in spec.requires or (client != context.client and not context.component.per_host):
            continue
        found.append(component if client == context.client else f"{component} ({client})")
    return found


def _which(context: LifecycleContext) -> str:
    return context.component.name + ("" if context.component.per_host else f" for client {context.client}")


# -- resources ---------------------------------------------------------------------------------------------------
def check_resources(context: LifecycleContext) -> None:
    """Refuse (ComponentError, nothing changed) a host below the component's :class:`~agencystack.Resources`
    minimum; warn below its recommendation. The same figures as ``agencystack doctor``."""
    from agencystack import doctor
    from agencystack.errors import ComponentError

    memory, cpus = doctor.memory_gb(), doctor.cpus()
    if not context.host.is_local:  # another machine's engine: its host's figures, as the engine reports them
        info = context.engine.info()
        memory, cpus = info.memory / 1024**3, info.cpus
    for check in doctor.component_checks([context.component], memory, cpus):
        if check.result == "fail":
            raise ComponentError(f"{check.detail}: {check.fix}")
        if check.result == "warn":
            context.log.warning(check.detail)
            context.progress(context.component.name, f"{check.detail}: {check.fix}")


# -- the wrappers around every action (core hook implementations) ----------------------------------------------
def _wrapper(action: str):
    locked = action in MUTATING

    @hookimpl(wrapper=True, specname=action)
    def wrapper(context):
        with contextlib.ExitStack() as stack:
            if locked:
                stack.enter_context(context.state_root.lifecycle_lock(context.client, context.component.name, action,
                                                                      context.global_settings.lock_timeout))
                context.reload_settings()
            log = context.log.bind(action=action, console=False)  # the CLI prints the outcome itself
            started = time.monotonic()
            log.debug(f"{action} started")
            before = _contents(context.dir.path) if action == "install" else None
            manifest: dict[str, Any] | None = None
            try:
                if action == "install":
                    check_resources(context)
                if action in ("install", "restore"):  # the client lives where it is installed from now on
                    from agencystack import placement

                    placement.record(context.state_root, context.client, context.host.name,
                                     timeout=context.global_settings.lock_timeout)
                result = yield
                if action == "status":  # the manifest, read once: the recorded URL, a failed last install
                    manifest = _installed_manifest(context)
                    if getattr(result, "url", "") is None and manifest is not None:
                        result.url = _url_in(manifest)
            except BaseException as exc:
                duration = round(time.monotonic() - started, 3)
                log.error(f"{action} failed", outcome="failed", duration=duration,
                          error=f"{type(exc).__name__}: {exc}")
                if action == "status" and isinstance(exc, Exception) and _failed_deploy(context):
                    return _failed_status(context, None, exc)  # what failed is the install: say that
                if locked and _acted(context, action, exc, before):
                    _record_failure(context, action, exc, log)
                raise
            if action == "status" and _failed_in(manifest):
                result = _failed_status(context, result, None, manifest)
            duration = round(time.monotonic() - started, 3)
            summary = getattr(result, "summary", None)
            log.info(summary or f"{action} done", outcome="ok", duration=duration)
            if locked and (context.dir.has_state or action == "install"):  # an install that wrote no settings
                context.dir.record(action, "ok", **context.facts)  # is installed too: its manifest says so
            # a backup's archive is complete only once backup.operations has committed it: that refreshes the
            # document then (here it would be rewritten twice, the first time without the new archive)
            if locked and action != "backup":
                _refresh_dashboard(context)
            return result

    wrapper.__name__ = wrapper.__qualname__ = f"{action}_wrapper"
    return wrapper


def recorded_url(context: LifecycleContext) -> str | None:
    """Where users reach the component as its last deploy recorded it (the manifest's ``url``, what
    ``dashboard.json`` shows too): a status answered without a URL gets this one."""
    return _url_in(context.dir.read_manifest())


def _url_in(manifest: dict[str, Any]) -> str | None:
    url = manifest.get("url")
    return url if isinstance(url, str) and url else None


def _installed_manifest(context: LifecycleContext) -> dict[str, Any] | None:
    """The component's manifest when it is installed (:attr:`~agencystack.state.ComponentDir.installed`; ``{}``
    for one with settings and no manifest), else None: one read of it for what a status adds."""
    from agencystack.state import installed_by

    manifest = context.dir.read_manifest()
    if not manifest and not context.dir.has_state:
        return None
    return manifest if installed_by(manifest) else None


def _contents(path) -> frozenset[str] | None:
    """The names in a component's directory (None: there is none), to tell what an install left behind."""
    import os

    try:
        return frozenset(os.listdir(path))
    except OSError:
        return None


def _acted(context: LifecycleContext, action: str, exc: BaseException, before: frozenset[str] | None) -> bool:
    """Whether a failed action is recorded (and so, for an install, makes the component installed): it has state
    (settings, a manifest), or -- a first install -- it wrote its claim (compose.yaml: hosts, containers) or
    anything else into the component's directory, or created it (PostHog's install does, before it fetches
    upstream's files). An install that refused (exit 2) or left the directory as it found it changed nothing."""
    from agencystack.errors import UsageError

    if context.dir.has_state:
        return True
    if action != "install" or isinstance(exc, UsageError):
        return False
    return context.dir.compose_file.is_file() or _contents(context.dir.path) not in (before, None)


def _record_failure(context: LifecycleContext, action: str, exc: BaseException, log: Any) -> None:
    """The failed outcome in the manifest (one atomic write) and the dashboard document. A problem writing them is
    a warning: the action's own error is what the caller gets, with its exit code."""
    error = context.redactor.text(str(exc) or type(exc).__name__)
    try:
        context.dir.record(action, "failed", error=error, **context.facts)
    except OSError as problem:
        log.warning(f"the failed {action} was not recorded in {context.dir.manifest_file}: {problem}")
        return
    _refresh_dashboard(context)


def _failed_deploy(context: LifecycleContext) -> dict[str, Any] | None:
    """The manifest's last action when it is a failed install or restore of an installed component, else None."""
    return _failed_in(_installed_manifest(context))


def _failed_in(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    """:func:`_failed_deploy` of an installed component's manifest (None: not installed)."""
    last = (manifest or {}).get("last_action") or {}
    if last.get("action") in ("install", "restore") and last.get("outcome") == "failed":
        return {**last, "error": (manifest or {}).get("error") or ""}
    return None


def _failed_status(context: LifecycleContext, result: ComponentStatus | None,
                   exc: Exception | None, manifest: dict[str, Any] | None = None) -> ComponentStatus:
    """A component whose last install (or restore) failed is ``failed``, with that error as its message, whatever
    its containers say (nothing may be deployed at all after a failed first install); when the status hook itself
    failed too (its stack cannot be built without what the install did not fetch), that error follows.
    ``manifest``: the installed component's, when the caller read it already."""
    from agencystack.results import ComponentStatus, State

    last = (_failed_in(manifest) if manifest is not None else _failed_deploy(context)) or {}
    message = f"{last.get('action')} failed at {last.get('at')}: {last.get('error') or 'no error recorded'}"
    if exc is not None:
        message += f" (status: {context.redactor.text(str(exc) or type(exc).__name__)})"
    if result is None:
        return ComponentStatus(context.client, context.component.name, State.FAILED, [], message)
    result.state = State.FAILED
    result.message = f"{message}; {result.message}" if result.message else message
    return result


def _refresh_dashboard(context: LifecycleContext) -> None:
    """Every mutating action ends by rewriting the client's dashboard registry document -- of a client that has a
    directory: an action on a client never installed (``uninstall`` of a typo) creates nothing for it."""
    from agencystack import dashboard_registry

    if context.state_root.client_dir(context.client).is_dir():
        dashboard_registry.refresh(context)


install_wrapper = _wrapper("install")
status_wrapper = _wrapper("status")
logs_wrapper = _wrapper("logs")
restart_wrapper = _wrapper("restart")
backup_wrapper = _wrapper("backup")
restore_wrapper = _wrapper("restore")
uninstall_wrapper = _wrapper("uninstall")
