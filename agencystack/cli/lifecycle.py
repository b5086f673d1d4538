"""Lifecycle commands: install, plan, status, logs, restart, uninstall."""

# No `from __future__ import annotations`: Typer would eval every string annotation at start-up.

from pathlib import Path

import typer

from agencystack.cli import options
from agencystack.cli.output import Reply, say, status_table
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
                                                 help="Clients installed at once (with --clients).")) -> Reply:
    """Install COMPONENT (or a bundle such as demo-core) for a client, or converge it; re-running with nothing
    changed changes nothing."""
    from agencystack import bulk, lifecycle

    session = Session.of(ctx, json_output)
    bundle = bulk.find(session, component)
    if bundle is not None or clients is not None:
        from agencystack.cli import bundles
        from agencystack.errors import UsageError

        if domain is not None:
            raise UsageError("--domain names one component's host: for a bundle or --clients give each client's "
                             "domain (DOMAIN, or 'domain:' in the clients file)")
        return bundles.install(session, bundle or bulk.single(session, component), client_id=client_id,
                               clients_file=clients, flags=set_, host=host, parallel=parallel,
                               clients_parallel=clients_parallel, json_output=json_output)
    context = session.context(component, "install", client=client_id, flags=set_, domain=domain, host=host)
    outcome = lifecycle.install(context)  # what the component requires first (the core resolves it)
    return _outcome(outcome)


def _outcome(outcome) -> Reply:
    return Reply(outcome, lambda: say(outcome.summary + (f"\n{outcome.url}" if outcome.url else "")))


def plan(ctx: typer.Context, component: options.Component, client_id: options.ClientId = None,
         domain: options.Domain = None, set_: options.Set = None, host: options.Host = None,
         json_output: options.Json = False) -> Reply:
    """Show what 'install' would change, without changing anything. Exits 2 (after showing the plan) when install
    would refuse a host another client or component routes."""
    from agencystack import hosts
    from agencystack.errors import UsageError

    session = Session.of(ctx, json_output)
    context = session.context(component, "plan", client=client_id, flags=set_, domain=domain, host=host)
    result = context.plan()
    conflicts = context.host_conflicts()
    settings = {context.settings.env_key(k): src for k, src in sorted(context.loaded.sources.items())}
    document = {"client": context.client, "component": context.component.name, "project": result.project,
                "conflicts": [{"host": c.host, "client": c.client, "component": c.component} for c in conflicts],
                "changes": result.changes, "create_networks": result.create_networks,
                "create_volumes": result.create_volumes, "recreate_networks": result.recreate_networks,
                "remove_networks": result.remove_networks, "settings": settings,
                "generate": context.loaded.generated,
                "sso": context.sso and {"state": context.sso.state, "detail": context.sso.detail,
                                        "routes": list(context.sso.routes)}}

    def text() -> None:
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

    try:
        hosts.refuse(conflicts, context.component.name, context.client)  # exit 2 as install would, after the plan
    except UsageError as exc:
        return Reply(document, text, error=exc)
    return Reply(document, text)


def status(ctx: typer.Context, component: options.OptionalComponent = None, client_id: options.ClientId = None,
           all_: bool = typer.Option(False, "--all", "-a", help="Every client and component: one engine query per "
                                     "host, hosts in parallel."),
           host: options.Host = None, json_output: options.Json = False) -> Reply:
    """Show the state of COMPONENT (or of a bundle's components) for a client (or of everything with --all;
    --host: only that host's)."""
    from agencystack import bulk
    from agencystack.errors import UsageError

    session = Session.of(ctx, json_output)
    if all_:
        from agencystack.overview import status_all

        statuses = status_all(session, host)
    elif component:
        bundle = bulk.find(session, component)
        statuses = bulk.statuses(session, bulk.members(session, bundle) if bundle is not None else [component],
                                 client_id, host)
    else:
        raise UsageError("name a component, or use --all")
    return Reply(statuses, lambda: status_table(statuses),
                 1 if any(s.state.value == "failed" for s in statuses) else 0)


def logs(ctx: typer.Context, component: options.Component, client_id: options.ClientId = None,
         service: list[str] | None = typer.Option(None, "--service", help="Only this service (repeatable)."),
         tail: int = typer.Option(100, "--tail", "-n", help="Lines from the end of each service's log (0: all)."),
         since: str | None = typer.Option(None, "--since", help="Only lines since a duration (10m) or timestamp."),
         follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming new lines (not with --json)."),
         json_output: options.Json = False) -> Reply | None:
    """Stream COMPONENT's logs (or a bundle's: its installed components'), each line prefixed with its service;
    --json: the lines as one document."""
    import sys

    from agencystack import bulk, lifecycle
    from agencystack.errors import UsageError
    from agencystack.results import LogRequest

    session = Session.of(ctx, json_output)
    request = LogRequest(services=tuple(service or ()), tail=tail or None, since=since, follow=follow)
    if follow and json_output:
        raise UsageError("--follow streams lines as they come; --json answers one document: use one of them")
    bundle = bulk.find(session, component)
    if bundle is not None:
        from agencystack.cli import bundles

        return bundles.logs(session, bundle, client_id, request, json_output=json_output)
    context = session.context(component, "logs", client=client_id)
    lifecycle.require_installed(context)
    lifecycle.require_services(context, request.services)
    lines = lifecycle.logs(context, request)
    if json_output:
        return Reply({"client": context.client, "component": context.component.name,
                      "lines": [{"service": line.service, "text": line.text} for line in lines]})
    width = max((len(s.name) for s in context.stack().services), default=0)
    for line in lines:
        sys.stdout.write(f"{line.service:<{width}} | {session.redactor.text(line.text)}\n")
        sys.stdout.flush()
    return None


def restart(ctx: typer.Context, component: options.Component, client_id: options.ClientId = None,
            service: list[str] | None = typer.Option(None, "--service", help="Only this service (repeatable)."),
            json_output: options.Json = False) -> Reply:
    """Restart COMPONENT's services one by one, in dependency order, waiting for health."""
    from agencystack import lifecycle, names

    session = Session.of(ctx, json_output)
    services = names.service_names(tuple(service or ()))  # bad input stops before the lock
    context = session.context(component, "restart", client=client_id)
    outcome = lifecycle.restart(context, services)
    return Reply(outcome, lambda: say(outcome.summary))


def uninstall(ctx: typer.Context, component: options.Component, client_id: options.ClientId = None,
              purge: bool = typer.Option(False, "--purge", help="Also delete volumes (data) and the settings."),
              force: bool = typer.Option(False, "--force", help="Remove it even though installed components "
                                         "require it (they stop working)."),
              yes: options.Yes = False, host: options.Host = None, json_output: options.Json = False) -> Reply:
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
    return Reply(outcome, lambda: say(outcome.summary))
