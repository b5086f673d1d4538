"""``agencystack settings show COMPONENT -c CLIENT``: every resolved setting with the layer it came from."""

# No `from __future__ import annotations`: Typer would eval every string annotation at start-up.

import typer

from agencystack.cli import options
from agencystack.cli.output import Reply

settings_app = typer.Typer(help="A component's settings for a client, as commands resolve them.",
                           no_args_is_help=True)

LAYERS = {"flag": "--set", "environment": "environment", "file": ".env", "default": "default",
          "generated": "generated (saved on install)"}
MASK = "********"


def register(app: typer.Typer) -> None:
    app.add_typer(settings_app, name="settings")


@settings_app.command("show")
def show(ctx: typer.Context, component: options.Component, client_id: options.ClientId = None,
         domain: options.Domain = None, set_: options.Set = None, json_output: options.Json = False) -> Reply:
    """Print each setting of COMPONENT for a client with its layer (--set > environment > the client's .env >
    default; generated secrets); secret values are masked. Reads only: nothing is written."""
    from agencystack.cli.output import say
    from agencystack.cli.session import Session

    session = Session.of(ctx, json_output)
    context = session.context(component, "plan", client=client_id, flags=set_, domain=domain)
    rows = resolved(context)

    def text() -> None:
        say(f"{context.component.name} for client {context.client} ({context.dir.env_file}):")
        width = max((len(r["key"]) for r in rows), default=0)
        value_width = min(max((len(r["value"]) for r in rows), default=0), 60)
        for row in rows:
            say(f"  {row['key']:<{width}}  {row['value']:<{value_width}}  {LAYERS.get(row['layer'], row['layer'])}")

    return Reply({"client": context.client, "component": context.component.name, "settings": rows}, text)


def resolved(context) -> list:
    """``[{key, value, layer, secret}]`` for every field of the component's settings and every per-service limit
    override; secret values replaced by a mask (an unset secret shows empty)."""
    model = type(context.settings)
    secrets = context.settings.secret_keys()
    values = context.settings.env()
    loaded = context.loaded
    rows = []
    for name in model.model_fields:
        key = model.env_key(name)
        value = values.get(key, "")
        secret = key in secrets
        rows.append({"key": key, "value": MASK if secret and value else value,
                     "layer": loaded.sources.get(name, "default"), "secret": secret})
    prefix = model.prefix()
    for key, value in sorted(loaded.limits.items()):
        name = key.removeprefix(prefix).lower()
        rows.append({"key": key, "value": value, "layer": loaded.sources.get(name, "default"), "secret": False})
    return rows
