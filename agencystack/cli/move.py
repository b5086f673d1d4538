"""``agencystack move``: a client from its host to another (see agencystack.move)."""

# No `from __future__ import annotations`: Typer would eval every string annotation at start-up.

import typer

from agencystack.cli import options
from agencystack.cli.output import Reply


def register(app: typer.Typer) -> None:
    app.command("move")(move)


def move(ctx: typer.Context, client_id: options.ClientId = None,
         to: str | None = typer.Option(None, "--to", help="The target host (see 'agencystack hosts list')."),
         finalize: bool = typer.Option(False, "--finalize", help="Remove the stopped source of a finished move."),
         rollback: bool = typer.Option(False, "--rollback", help="Undo a move not finalized: the client goes "
                                       "back to its source, what the target got is removed."),
         json_output: options.Json = False) -> Reply:
    """Move a client's components to another host: backup, verify, restore there, health-check, stop the source.
    An interrupted move resumes when run again (or --rollback); --finalize removes the stopped source."""
    from agencystack import move as moving
    from agencystack.cli.output import say
    from agencystack.cli.session import Session
    from agencystack.errors import UsageError

    session = Session.of(ctx, json_output)
    if finalize and rollback:
        raise UsageError("--finalize and --rollback exclude each other")
    if client_id is None:
        raise UsageError("name the client: -c CLIENT")
    session.start_logging()
    result = moving.move(session, client_id, to, finalize=finalize, rollback=rollback)
    return Reply(result, lambda: say(result["summary"]))
