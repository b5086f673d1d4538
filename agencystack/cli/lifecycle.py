"""Lifecycle commands: install, plan, status, logs, restart, uninstall."""

# No `from __future__ import annotations`: Typer would eval every string annotation at start-up.

from pathlib import Path

import typer

from agencystack.cli import options
from agencystack.cli.output import emit_json, say, status_table
from agencystack.cli.session import Session


def register(app: typer.Typer) -> None:
    for command in (install, plan, status, logs, restart, uninstall):
        app.command()(command)


def install(ctx: typer.Context, component: options.Component, client_id: options.ClientId = None,
            domain: options.Domain = None, set_: options.Set = None, host: options.Host = None,
            json_output: options.Json = False,
            clients: Path | None = typer.Option(None, "--clients", metavar="FILE", show_default=False,
                                                help="Install for every client of FILE (YAML: id, domain, "
                                                     "settings per client), a bounded number at a time."),
            parallel: int = typer.Option(4, "--parallel", metavar="N",
                                         help="A bundle's independent components installed at once, per client."),
            clients_parallel: int = typer.Option(4, "--clients-parallel", metavar="N",
                                                 help="Clients installed at once (with --clients).")) -> None:
    """Install COMPONENT (or a bundle such as demo-core) for a client, or converge it; re-running with nothing
    changed changes nothing."""
    from agencystack import lifecycle

    session = Session.of(ctx, json_output)
    from agencystack.cli import bundles

    bundle = bundles.find(session, component)
    if bundle is not None or clients is not None:
        from agencystack.errors import UsageError

        if domain is not None:
            raise UsageError("--domain names one component's host: for a bundle or --clients give each client's "
                             "domain (DOMAIN, or 'domain:' in the clients file)")
        code = bundles.install(session, bundle or bundles.single(session, component), client_id=client_id,
                               clients_file=clients, flags=set_, host=host, parallel=parallel,
                               clients_parallel=clients_parallel, json_output=json_output)
        raise typer.Exit(code)
    context = session.context(component, "install", client=client_id, flags=set_, domain=domain, host=host)
    outcome = lifecycle.install(context)  # what the component requires first (the core resolves it)
    if json_output:
        emit_json(outcome, session.redactor)
    else:
        say(outcome.summary + (f"\n{outcome.url}" if outcome.url else ""))


def plan(ctx: typer.Context, component: options.Component, client_id: options.ClientId = None,
         domain: options.Domain = None, set_: options.Set = None, host: options.Host = None,
         json_output: options.Json = False) -> None:
    """Show what 'install' would change, without changing anything."""
    session = Session.of(ctx, json_output)
    context = session.context(component, "plan", client=client_id, flags=set_, domain=domain, host=host)
    result = context.plan()
    conflicts = context.host_conflicts()
    settings = {context.settings.env_key(k): src for k, src in sorted(context.loaded.sources.items())}
    if json_output:
        emit_json({"client": context.client, "component": context.component.name, "project": result.project,
                   "conflicts": [{"host": c.host, "client": c.client, "component": c.component} for c in conflicts],
                   "changes": result.changes, "create_networks": result.create_networks,
                   "create_volumes": result.create_volumes, "recreate_networks": result.recreate_networks,
                   "remove_networks": result.remove_networks, "settings": settings,
                   "generate": context.loaded.generated,
                   "sso": context.sso and {"state": context.sso.state, "detail": context.sso.detail,
                                           "routes": list(context.sso.routes)}}, session.redactor)
        _refuse_conflicts(conflicts, context)
        return
    say(f"{context.component.name} for client {context.client} (project {result.project}):")
    for change in result.changes:
        say(f"  {change.kind:<9} {change.service}" + (f"  ({change.reason})" if change.reason else ""))
    for verb, kind, items in (("create", "network", result.create_networks),
                              ("create", "volume", result.create_volumes),
                              ("recreate", "network", result.recreate_networks),
                              ("remove", "network", result.remove_networks)):
        for item in items:
            say(f"  {verb:<9} {kind} {item}")
    if context.loaded.generated:
        say(f"  generate  {', '.join(context.loaded.generated)} (saved to the .env on install)")
    if context.sso is not None:
        say(f"  sso       {context.sso.state}: {context.sso.detail}")
    for conflict in conflicts:
        say(f"  conflict  {conflict}: install will refuse")
    if result.is_noop:
        say("  nothing to change")
    _refuse_conflicts(conflicts, context)


def _refuse_conflicts(conflicts, context) -> None:
    """plan exits 2 as install would, after showing the plan."""
    from agencystack import hosts

    hosts.refuse(conflicts, context.component.name, context.client)


def status(ctx: typer.Context, component: options.OptionalComponent = None, client_id: options.ClientId = None,
           all_: bool = typer.Option(False, "--all", "-a", help="Every client and component: one engine query per "
                                     "host, hosts in parallel."),
           host: options.Host = None, json_output: options.Json = False) -> None:
    """Show the state of COMPONENT (or of a bundle's components) for a client (or of everything with --all;
    --host: only that host's)."""
    from agencystack import lifecycle
    from agencystack.errors import UsageError

    session = Session.of(ctx, json_output)
    if all_:
        from agencystack.overview import status_all

        statuses = status_all(session, host)
    elif component:
        from agencystack.cli import bundles

        bundle = bundles.find(session, component)
        which = bundles.members(session, bundle) if bundle is not None else [component]
        contexts = [session.context(name, "status", client=client_id, host=host) for name in which]
        statuses = [lifecycle.status(context) for context in contexts]
        for context, found in zip(contexts, statuses, strict=True):
            found.host = context.host.name
    else:
        raise UsageError("name a component, or use --all")
    if json_output:
        emit_json(statuses, session.redactor)
    else:
        status_table(statuses)
    if any(s.state.value == "failed" for s in statuses):
        raise typer.Exit(1)


def logs(ctx: typer.Context, component: options.Component, client_id: options.ClientId = None,
         service: list[str] | None = typer.Option(None, "--service", help="Only this service (repeatable)."),
         tail: int = typer.Option(100, "--tail", "-n", help="Lines from the end of each service's log (0: all)."),
         since: str | None = typer.Option(None, "--since", help="Only lines since a duration (10m) or timestamp."),
         follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming new lines.")) -> None:
    """Stream COMPONENT's logs (or a bundle's: its installed components'), each line prefixed with its service."""
    import sys

    from agencystack import lifecycle
    from agencystack.results import LogRequest

    session = Session.of(ctx)
    request = LogRequest(services=tuple(service or ()), tail=tail or None, since=since, follow=follow)
    from agencystack.cli import bundles

    bundle = bundles.find(session, component)
    if bundle is not None:
        bundles.logs(session, bundle, client_id, request)
        return
    context = session.context(component, "logs", client=client_id)
    _require_installed(context)
    _require_services(context, request.services)
    width = max((len(s.name) for s in context.stack().services), default=0)
    for line in lifecycle.logs(context, request):
        sys.stdout.write(f"{line.service:<{width}} | {session.redactor.text(line.text)}\n")
        sys.stdout.flush()


def _require_installed(context) -> None:
    """Exit 2 when the component is not installed for the client (nothing to show, nothing to ask the engine)."""
    from agencystack.errors import UsageError

    if not context.dir.installed:
        which = context.component.name + ("" if context.component.per_host else f" for client {context.client}")
        raise UsageError(f"{which} is not installed (see 'agencystack status --all')")


def _require_services(context, services) -> None:
    """Exit 2 when a --service names no service of the component's stack (checked without the engine)."""
    from agencystack.errors import UsageError

    known = {s.name for s in context.stack().services}
    unknown = sorted(set(services) - known)
    if unknown:
        raise UsageError(f"unknown service(s) {', '.join(unknown)} of {context.component.name} "
                         f"(known: {', '.join(sorted(known)) or 'none'})")


def restart(ctx: typer.Context, component: options.Component, client_id: options.ClientId = None,
            service: list[str] | None = typer.Option(None, "--service", help="Only this service (repeatable)."),
            json_output: options.Json = False) -> None:
    """Restart COMPONENT's services one by one, in dependency order, waiting for health."""
    from agencystack import lifecycle, names

    session = Session.of(ctx, json_output)
    services = names.service_names(tuple(service or ()))  # bad input stops before the lock
    context = session.context(component, "restart", client=client_id)
    outcome = lifecycle.restart(context, services)
    emit_json(outcome, session.redactor) if json_output else say(outcome.summary)


def uninstall(ctx: typer.Context, component: options.Component, client_id: options.ClientId = None,
              purge: bool = typer.Option(False, "--purge", help="Also delete volumes (data) and the settings."),
              force: bool = typer.Option(False, "--force", help="Remove it even though installed components "
                                         "require it (they stop working)."),
              yes: options.Yes = False, host: options.Host = None, json_output: options.Json = False) -> None:
    """Remove COMPONENT's containers and networks for a client; data is kept unless --purge. Refused while other
    installed components require it, unless --force."""
    from agencystack import lifecycle
    from agencystack.errors import UsageError

    session = Session.of(ctx, json_output)
    context = session.context(component, "uninstall", client=client_id, host=host)
    lifecycle.check_uninstall(context, force=force)  # refused before the operator is asked anything
    if purge and not yes:
        import sys

        if not sys.stdin.isatty():
            raise UsageError("--purge deletes data: confirm with --yes")
        typer.confirm(f"Delete {context.component.name}'s data and settings for client {context.client}?",
                      abort=True)
    outcome = lifecycle.uninstall(context, purge, force=force)
    emit_json(outcome, session.redactor) if json_output else say(outcome.summary)
