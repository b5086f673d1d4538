"""``agencystack dashboard serve``: the client's dashboard page served from this host process, for local use.

The page and its server come from the dashboard component's distribution (agencystack-dashboard, the same code
its container runs); health is probed through this host's edge, with each component's public host name, and the
cards' usage figures are fetched with the secrets the core writes to the client's credentials file (0600).
"""

# No `from __future__ import annotations`: Typer would eval every string annotation at start-up.

import typer

from agencystack.cli import options
from agencystack.cli.output import Reply
from agencystack.cli.session import Session

dashboard_app = typer.Typer(name="dashboard", no_args_is_help=True, rich_markup_mode=None,
                            help="The agency dashboard: serve a client's page locally.")


def register(app: typer.Typer) -> None:
    app.add_typer(dashboard_app)


@dashboard_app.command("serve")
def serve(ctx: typer.Context, client_id: options.ClientId = None,
          listen: str = typer.Option("127.0.0.1:8090", "--listen", metavar="ADDRESS:PORT",
                                     help="Where to serve the page."),
          interval: float = typer.Option(10.0, "--interval", help="Seconds between health probes."),
          json_output: options.Json = False) -> Reply:
    """Serve CLIENT's dashboard page (and its JSON API) from this process until interrupted (--json: what was
    served, as one document once it stops)."""
    import importlib

    from agencystack import dashboard_registry, names
    from agencystack.errors import UsageError
    from agencystack.probes import edge_address

    session = Session.of(ctx, json_output)
    client = names.client_id(client_id or session.global_settings.client_id)
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {listen!r}: expected ADDRESS:PORT, e.g. 127.0.0.1:8090")
    try:
        server = importlib.import_module("agencystack_dashboard.web.server")
    except ImportError:
        raise UsageError("the dashboard component's distribution is not installed: pip install -e "
                         "components/dashboard (make install does it)") from None
    session.start_logging()
    root = session.global_settings.state_root
    credentials = root.prepare_dashboard_credentials(client)  # the cards' secrets (usage figures)
    dashboard_registry.write(session.plugins, session.global_settings, client, redactor=session.redactor)
    document = root.dashboard_published(client)
    code = server.main(["--document", str(document), "--listen", listen, "--probe", "edge",
                        "--edge", edge_address(session.global_settings.docker_host),
                        "--interval", f"{interval:g}", "--credentials", str(credentials)])
    return Reply({"client": client, "url": f"http://{listen}/", "document": str(document), "stopped": True},
                 None, code)
