"""``agencystack render``: print the compose file ``install`` would write, touching nothing.

No engine, no network, nothing written: settings load as install loads them (a secret not generated yet shows as
its ``${KEY}`` reference, as in the written file, whose values resolve from the .env), and files a component
mounts from a cache (PostHog's upstream files) are named by their path, not fetched. So a reviewer can diff the
output against upstream, and an operator can read what will run before it runs.
"""

# No `from __future__ import annotations`: Typer would eval every string annotation at start-up.

import typer

from agencystack.cli import options


def register(app: typer.Typer) -> None:
    app.command()(render)


def render(ctx: typer.Context, component: options.Component, client_id: options.ClientId = None,
           domain: options.Domain = None, set_: options.Set = None) -> None:
    """Print the compose file 'install' would write for COMPONENT (no engine, no network, nothing written)."""
    from agencystack.engine import compose
    from agencystack.cli.output import say

    session = ctx.obj
    session.json_output = True  # no progress lines: stdout is the compose file and nothing else
    context = session.context(component, "render", client=client_id, flags=set_, domain=domain)
    say(compose.render(context.deployment()).rstrip("\n"))
