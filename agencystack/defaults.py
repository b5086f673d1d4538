"""The core's default lifecycle implementations (a core plugin, ``trylast``): they work from the component's stack.

A component that implements only ``components`` and ``stack`` gets install, status, logs, restart, uninstall,
backup and restore from here: install deploys the stack and waits for its :class:`~agencystack.HttpProbe` s; status
shows each service and each probe. A component's own implementation runs first; answering ``None`` falls through to these.
"""

from __future__ import annotations

import shutil

from agencystack.markers import hookimpl


@hookimpl(trylast=True)
def stack(context):
    from agencystack.stack import Stack

    return Stack()


@hookimpl(trylast=True)
def install(context):
    return context.deploy()


@hookimpl(trylast=True)
def status(context):
    from agencystack.results import ComponentStatus, ServiceStatus, State

    running = {s.name: s for s in context.engine.status(context.project).get(context.project, [])}
    if not running and not context.dir.installed:
        return ComponentStatus(context.client, context.component.name, State.ABSENT, message="not installed")
    services = []
    for service in context.stack().services:
        if service.name in running:
            services.append(running.pop(service.name))
        elif service.replicas == 0:  # by design: shown, but it does not make the component "stopped"
            services.append(ServiceStatus(service.name, State.ABSENT, "scaled to 0"))
        else:
            services.append(ServiceStatus(service.name, State.FAILED, "missing: run install"))
    services.extend(running.values())  # orphans still show
    from agencystack.limits import oom_hint

    for service in services:
        oom_hint(service, type(context.settings).prefix())
    services.extend(context.probe_rows())  # the stack's HttpProbes, through the edge
    if context.sso is not None:  # set while the stack was built (agencystack.sso)
        services.append(sso_row(context.sso))
    return ComponentStatus.from_services(context.client, context.component.name, services)


def sso_row(sso):
    """The ``sso`` row of a status: protected runs, pending starts; unprotected and disabled change no aggregate."""
    from agencystack.results import ServiceStatus, State

    state = {"protected": State.RUNNING, "pending": State.STARTING}.get(sso.state, State.ABSENT)
    return ServiceStatus("sso", state, f"{sso.state}: {sso.detail}")


@hookimpl(trylast=True)
def logs(context, request):
    return context.engine.logs(context.deployment(), request)


@hookimpl(trylast=True)
def restart(context, services):
    from agencystack.errors import UsageError
    from agencystack.results import Outcome

    known = {s.name for s in context.stack().services}
    unknown = sorted(set(services) - known)
    if unknown:
        raise UsageError(f"unknown service(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    context.engine.restart(context.deployment(), tuple(services), context.progress)
    return Outcome(summary=f"{context.component.name} for {context.client}: restarted "
                           f"{', '.join(services) if services else 'all services'}")


@hookimpl(trylast=True)
def uninstall(context, purge):
    from agencystack.results import Outcome

    context.check_owner()  # never remove what another state root deployed under the same project name
    if not purge and not _deployed(context):  # a second uninstall: say so, never "removed" again
        return Outcome(summary=f"{context.component.name} for {context.client}: not installed (nothing to remove)",
                       details={"removed": False})
    warnings = context.engine.remove(context.deployment(), purge=purge, progress=context.progress) or []
    for warning in warnings:
        context.log.warning(warning)
    name, client = context.component.name, context.client
    details = {"warnings": warnings} if warnings else {}
    left = f" (warning: {'; '.join(warnings)})" if warnings else ""
    if not purge:
        return Outcome(summary=f"{name} for {client}: removed (volumes and settings kept; --purge deletes them){left}",
                       details=details)
    kept = _purge_dir(context.dir)
    note = f"; backups kept in {context.dir.backups}" if kept else ""
    return Outcome(summary=f"{name} for {client}: removed with its volumes and settings{note}{left}", details=details)


def _deployed(context) -> bool:
    """Containers of the project exist, or the manifest's last install/restore/uninstall was not an uninstall."""
    if context.engine.status(context.project).get(context.project):
        return True
    history = context.dir.read_manifest().get("history", [])
    done = [h["action"] for h in history if h.get("outcome") == "ok" and h.get("action") in
            ("install", "restore", "uninstall")]
    return bool(done) and done[-1] != "uninstall"


def _purge_dir(cdir) -> bool:
    """Delete the component's directory except archives in its backups/ (a purge must not destroy the way back)."""
    if not cdir.exists:
        return False
    keep = cdir.backups.is_dir() and any(cdir.backups.iterdir())
    for entry in cdir.path.iterdir():
        if keep and entry == cdir.backups:
            continue
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    if not keep:
        cdir.path.rmdir()
    return keep


@hookimpl(trylast=True)
def backup(context, archive):
    from agencystack.backup.parts import write_parts

    return write_parts(context, archive)


@hookimpl(trylast=True)
def restore(context, archive):
    from agencystack.backup.parts import restore_parts

    return restore_parts(context, archive)
