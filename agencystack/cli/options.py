"""Options shared by several commands, declared once."""

# No `from __future__ import annotations`: Typer would eval every string annotation at start-up.

from typing import Annotated

import typer

Component = Annotated[str, typer.Argument(help="Component name (see 'agencystack components list').",
                                          show_default=False)]
OptionalComponent = Annotated[str | None, typer.Argument(help="Component name.", show_default=False)]
ClientId = Annotated[str | None, typer.Option("--client-id", "-c", envvar="CLIENT_ID", show_envvar=True,
                                              help="Client (tenant) id: 1-32 of a-z 0-9 -. Default: 'default'.")]
Domain = Annotated[str | None, typer.Option("--domain", help="The component's public host name "
                                            "(default: <component>.<client>.<DOMAIN>; <component>.<DOMAIN> for the client 'default').")]
Set = Annotated[list[str] | None, typer.Option("--set", "-s", metavar="KEY=VALUE",
                                               help="Set a component setting (repeatable); saved on install.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout; no progress.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Host = Annotated[str | None, typer.Option("--host", help="The Docker host (see 'agencystack hosts list'): where a "
                                          "new client is placed (default: the one with the most free memory).")]
