"""``agencystack render``: print the compose file ``install`` would write, touching nothing.

No engine, no network, nothing written: settings load as install loads them (a secret not generated yet shows as
its ``${KEY}`` reference, as in the written file, whose values resolve from the .env), and files a component
mounts from a cache (PostHog's upstream files) are named by their path, not fetched. So a reviewer can diff the
output against upstream, and an operator can read what will run before it runs.
"""

# No `from __future__ import annotations`: Typer would eval every string annotation at start-up.

import typer

from agencystack.cli import options
from agencystack.cli.output import Reply


def register(app: typer.Typer) -> None:
    app.command()(render)


def render(ctx: typer.Context, component: options.Component, client_id: options.ClientId = None,
           domain: options.Domain = None, set_: options.Set = None, json_output: options.Json = False) -> Reply:
    """Print the compose file 'install' would write for COMPONENT (no engine, no network, nothing written);
    --json: {"compose": "<the file>"}."""
    from agencystack.cli.output import say
    from agencystack.cli.session import Session
    from agencystack.engine import compose

    session = Session.of(ctx, json_output)
    session.silent = True  # no progress lines: stdout is the compose file and nothing else
    context = session.context(component, "render", client=client_id, flags=set_, domain=domain)
    text = compose.render(context.deployment())
    return Reply({"client": context.client, "component": context.component.name, "compose": text},
                 lambda: say(text.rstrip("\n")))
