"""The core's default lifecycle implementations (a core plugin, ``trylast``): they work from the component's stack.

A component that implements only ``components`` and ``stack`` gets install, status, logs, restart, uninstall,
backup and restore from here: install deploys the stack and waits for its :class:`~agencystack.HttpProbe` s; status
shows each service and each probe. A component's own implementation runs first; answering ``None`` falls through to
these. The default install is :func:`deploy`; a component that adds steps to its install calls it as
``context.deploy()``.
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
    return deploy(context)


def deploy(context):
    """The default install (``context.deploy()``): plan (no change), refuse a project another state root deployed,
    check the host's memory, then -- under the root's host-wide lock -- refuse hosts another client or component
    routes and write the claim (settings, ``compose.yaml``); apply the plan; record the facts for the manifest; say
    what changed. A re-run that changes nothing still fails when a service is unhealthy or restarting."""
    from agencystack import hosts
    from agencystack.engine import compose
    from agencystack.errors import ComponentError
    from agencystack.results import Outcome

    deployment = context.deployment()
    plan = context.engine.plan(deployment)  # changes nothing: before check_owner, whose list the plan's answers
    context.check_owner()
    if not plan.is_noop:
        _check_capacity(context, deployment)
    with context.state_root.hosts_lock(context.action, context.global_settings.lock_timeout):
        # the rendered compose file is the claim on the hosts: checked and written under the host-wide lock
        hosts.refuse(context.host_conflicts(), context.component.name, context.client)
        context.dir.ensure()
        saved = context.save_settings()
        _write_if_changed(context.dir.compose_file, compose.render(deployment))
    if not plan.is_noop:
        try:
            context.engine.apply(deployment, plan, context.progress)
        except ComponentError as exc:
            raise ComponentError(_name_image_settings(context, str(exc), deployment.stack)) from None
    elif plan.ailing:
        ailing = ", ".join(f"{c.service} is {c.reason}" for c in plan.ailing)
        which = context.component.name + ("" if context.component.per_host else f" -c {context.client}")
        raise ComponentError(f"{context.component.name} for {context.client}: nothing to change, but {ailing} (see "
                             f"'agencystack logs {which}'; 'agencystack restart {which}' restarts it)")
    context.wait_for_probes(deployment.stack)
    context.facts.update(version=context.component.version, project=context.project,
                         images={s.name: s.image for s in deployment.stack.services},
                         **_where(context, deployment))
    if context.sso is not None:
        from dataclasses import asdict

        from agencystack.sso import wait_for_gate

        if context.sso.state == "protected":  # not before the edge really sends the UI to the login
            wait_for_gate(context, context.sso.provider)
        context.facts["sso"] = asdict(context.sso)
    changes = plan.by_kind()
    summary = (f"{context.component.name} for {context.client}: no changes" if plan.is_noop else
               f"{context.component.name} for {context.client}: " +
               ", ".join(f"{len(v)} {k}" for k, v in changes.items()))
    details = {"saved_settings": saved}
    if context.sso is not None:
        details["sso"] = context.facts["sso"]
        if context.sso.state in ("unprotected", "pending"):
            summary += f"; SSO {context.sso.state}: {context.sso.detail}"
    return Outcome(summary=summary, changes=changes, details=details)


def _where(context, deployment) -> dict:
    """Where users reach the component and where a dashboard on the edge network probes it: the manifest's ``url``
    (the route serving the whole host, else the first route, as the edge serves it) and ``health`` (the path of
    the stack's first HttpProbe when a route serves it, else that route's first path; ``internal``: the routed
    service's container by its name on the edge network), which the dashboard registry document carries."""
    from urllib.parse import urlsplit

    from agencystack.edge.routing import serving
    from agencystack.engine.labels import container_name

    routes = deployment.stack.routes
    if not routes:
        return {}
    ui = next((r for r in routes if not r.paths and not r.prefixes), routes[0])
    first = urlsplit(deployment.stack.probes[0].url) if deployment.stack.probes else None
    probe = first.path if first is not None else ""
    checked = (serving(routes, first.hostname or "", probe) if probe else None) or ui
    path = probe or (checked.paths or checked.prefixes or ["/"])[0]
    return {"url": context.public_url(ui.host), "health": {
        "url": context.public_url(checked.host, path),
        "internal": f"http://{container_name(context.project, checked.service)}:{checked.port}{path}"}}


def _write_if_changed(path, text: str) -> None:
    """Write ``text`` to ``path`` (atomically, 0600) unless the file already holds exactly that: a no-op install
    leaves the rendered compose file as it is (an edited one is overwritten)."""
    import os

    from agencystack.state import SECRET_FILE_MODE, atomic_write

    try:
        if os.stat(path).st_mode & 0o777 == SECRET_FILE_MODE and path.read_text() == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write(path, text)



def _check_capacity(context, deployment) -> None:
    """Warn when this deployment's memory limits take the host's total past its memory; refuse (ComponentError,
    nothing changed) when they grow it past ``AGENCYSTACK_MEMORY_OVERCOMMIT`` times (see agencystack.capacity).
    """
    from agencystack import capacity
    from agencystack.errors import ComponentError
    from agencystack.limits import format_size, long_running, setting_key

    placed = getattr(context.engine, "placed", None)
    if placed is None:  # a driver that cannot tell
        return
    host, current = placed()
    adding = {s.name: s.limits.memory for s in deployment.stack.services if long_running(s)}
    after = capacity.assess(host, current, project=context.project, adding=adding)
    verdict = capacity.verdict(after, context.global_settings.memory_overcommit)
    if verdict == "ok":
        return
    grows = sum(v or 0 for v in adding.values()) > sum(v or 0 for v in current.get(context.project, {}).values())
    who = f"{context.component.name} for {context.client}"
    if verdict == "fail" and grows:
        biggest = max(adding, key=lambda n: adding[n] or 0, default=None)
        example = (f" (e.g. {setting_key(type(context.settings).prefix(), biggest)}, now "
                   f"{format_size(adding[biggest])})" if biggest and adding[biggest] else "")
        ratio = context.global_settings.memory_overcommit
        raise ComponentError(f"{who}: refusing to overcommit memory: {after.describe()}, past "
                             f"AGENCYSTACK_MEMORY_OVERCOMMIT={ratio:g}; lower this client's limits{example} or "
                             "raise the ratio")
    message = f"memory overcommitted: {after.describe()}"
    context.log.warning(message)
    context.progress(context.component.name, message)


def _name_image_settings(context, message: str, stack) -> str:
    """Turn the driver's generic 'check the image setting' into the settings that override that image."""
    generic = "check the image setting, or configure a registry mirror"
    image = next((s.image for s in stack.services if f"image {s.image} " in message), None)
    if image is None or generic not in message:
        return message
    secrets = set(context.settings.secret_values())
    env = {k: v for k, v in context.env().items() if v not in secrets}
    pins = [k for k, v in env.items() if len(v) >= 3 and v in image and not k.endswith("_DOMAIN")]
    pins = [k for k in pins if k.endswith(("_IMAGE", "_TAG"))] or pins  # EDGE_BINARY=traefik is no pin
    mirrors = [k for k in env if "MIRROR" in k]
    if not pins:
        return message
    hint = f"set {' and '.join(pins[:2])}" + (f", or a registry mirror with {mirrors[0]}" if mirrors else
                                              ", or configure a registry mirror")
    return message.replace(generic, hint)


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
    if context.sso is not None:  # set while the stack was built (agencystack.sso)
        services.append(sso_row(context.sso))
    services.extend(context.probe_rows())  # the stack's HttpProbes, through the edge: last, as users reach it
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
    """Containers of the project exist, or it is installed (agencystack.state: ComponentDir.installed)."""
    return bool(context.engine.status(context.project).get(context.project)) or context.dir.installed


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
