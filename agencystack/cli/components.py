"""``agencystack components list``: what plugins provide, and which plugins are broken and why;
``agencystack component new NAME``: a new component distribution to start from (agencystack.scaffold)."""

# No `from __future__ import annotations`: Typer would eval every string annotation at start-up.

from pathlib import Path

import typer

from agencystack.cli import options
from agencystack.cli.output import Reply

components_app = typer.Typer(help="Components provided by installed plugins.", no_args_is_help=True)
component_app = typer.Typer(help="Write a new component (for plugin authors).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(components_app, name="components")
    app.add_typer(component_app, name="component")


@component_app.command("new")
def new(ctx: typer.Context, name: str = typer.Argument(..., help="The component's name: lowercase letters, digits and dashes.",
                                   show_default=False),
        directory: Path | None = typer.Option(None, "--dir", metavar="DIR", show_default=False,
                                              help="Where to write the distribution (default: ./NAME); new or "
                                                   "empty."),
        json_output: options.Json = False) -> Reply:
    """Write a complete component distribution: pyproject with the entry point, plugin, settings with a generated
    secret, a stack (web service, PostgreSQL, route, backups, probe), a dashboard entry and tests."""
    from agencystack import scaffold
    from agencystack.cli.output import say
    from agencystack.cli.session import Session

    Session.of(ctx, json_output)
    target = directory if directory is not None else Path(name)
    written = scaffold.create(name, target)

    def text() -> None:
        say(f"wrote {len(written)} files to {target}:")
        for path in written:
            say(f"  {path.relative_to(target)}")
        say(f"next: pip install -e {target}  (then: agencystack components list; agencystack install {name}; "
            f"pytest {target})")

    return Reply({"name": name, "directory": str(target), "written": [str(p.relative_to(target)) for p in written]},
                 text, redact=False)


def _plugin_api_warnings(plugins) -> None:
    """One warning (stderr) per plugin using a deprecated member or a module outside the plugin API."""
    from agencystack.cli.output import warn

    for line in plugins.warnings():
        warn(line)


@components_app.command("list")
def list_(ctx: typer.Context, json_output: options.Json = False) -> Reply:
    """List every component (name, version, distribution, plugin status), broken plugins (named after their entry
    point) and contested names (claimed by two plugins: unusable until the operator keeps one) included."""
    from agencystack.cli.output import say
    from agencystack.cli.session import Session
    from agencystack.plugin_host import contested_message

    plugins = Session.of(ctx, json_output).plugins
    rows = []
    for record in plugins.records:
        plugin = {"distribution": record.distribution, "plugin": record.name, "module": record.value or None}
        for component in record.components:
            rows.append({"name": component.name, "version": component.version, **plugin, "status": "ok",
                         "description": component.description, "requires": list(component.requires)})
        for name in record.contested:
            rows.append({"name": name, "version": record.version, **plugin, "status": "contested",
                         "error": contested_message(name, plugins.contested[name])})
        if not record.ok:  # no component is known: the row is named after the plugin (its entry point's name)
            rows.append({"name": record.name, "version": record.version, **plugin, "status": "broken",
                         "error": record.error})
    _plugin_api_warnings(plugins)

    def text() -> None:
        width = max((len(r["name"]) for r in rows), default=4)
        for row in rows:
            head = f"{row['name']:<{width}}  {row['version']:<8}  {row['distribution']:<24}"
            if row["status"] == "ok":
                say(f"{head}  {row['description']}")
            elif row["status"] == "contested":
                say(f"{head}  CONTESTED: {row['error']}")
            else:
                say(f"{head}  BROKEN: {row['error']}")

    return Reply(rows, text, redact=False)
