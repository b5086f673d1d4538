"""Backup and restore commands (see agencystack.backup).

``backup`` is a group whose first argument is either a component or one of the reserved words ``list`` and
``verify``: ``agencystack backup posthog``, ``agencystack backup list``, ``agencystack backup verify FILE``. Click
cannot mix a positional argument with subcommands, so the group routes anything that is not a subcommand to a
hidden ``create`` command (a component may therefore not be called ``list``, ``verify`` or ``create``).
"""

# No `from __future__ import annotations`: Typer would eval every string annotation at start-up.

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from agencystack.cli import options
from agencystack.cli.output import Reply, say
from agencystack.cli.session import Session

RESERVED = ("list", "verify", "create")


class BackupGroup(TyperGroup):
    """``backup COMPONENT ...`` runs the hidden ``create`` command; ``backup list|verify ...`` the subcommands."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args:
            from agencystack.errors import UsageError

            raise UsageError("name a component to back up, or use 'backup list' or 'backup verify ARCHIVE' "
                             "(see 'agencystack backup --help')")
        if args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["create", *args]
        return super().parse_args(ctx, args)


backup_app = typer.Typer(
    name="backup", cls=BackupGroup, no_args_is_help=False, rich_markup_mode=None,
    help="Back up a component for a client into one verified archive; list and verify archives.\n\n"
         "  agencystack backup COMPONENT [--client-id C] [--dest DIR] [--keep-last N] [--keep-days D] "
         "[--encrypt-key-file F]\n\n"
         "  agencystack backup list [COMPONENT] [--client-id C] [--dest DIR]\n\n"
         "  agencystack backup verify ARCHIVE [--key-file F]\n\n"
         "'list', 'verify' and 'create' are reserved words, never component names.",
)

Dest = Annotated[Path | None, typer.Option("--dest", metavar="DIR", show_default=False,
                                           help="Directory of the archives (default: backups/ in the "
                                                "component's directory for the client, created 0700; "
                                                "'uninstall --purge' keeps it).")]
KeyFile = Annotated[Path | None, typer.Option("--key-file", metavar="FILE", show_default=False,
                                              help="Key file of an encrypted archive.")]


def register(app: typer.Typer) -> None:
    app.add_typer(backup_app)
    app.command("restore")(restore)


def _existing(path: Path | None, what: str) -> None:
    """A file the user names must exist: bad input (exit 2), checked before anything else is opened or asked."""
    from agencystack.errors import UsageError

    if path is not None and not path.is_file():
        raise UsageError(f"{what} {path} {'is not a file' if path.exists() else 'does not exist'}")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


@backup_app.command("create", hidden=True)
def create(ctx: typer.Context, component: options.Component, client_id: options.ClientId = None,
           dest: Dest = None,
           keep_last: int | None = typer.Option(None, "--keep-last", metavar="N", show_default=False,
                                                help="After a successful backup, keep only the newest N archives "
                                                     "of this component and client (with --keep-days: either "
                                                     "rule keeps)."),
           keep_days: float | None = typer.Option(None, "--keep-days", metavar="D", show_default=False,
                                                  help="After a successful backup, delete archives older than D "
                                                       "days (the new one is always kept)."),
           encrypt_key_file: Path | None = typer.Option(None, "--encrypt-key-file", metavar="FILE",
                                                        show_default=False,
                                                        help="Encrypt the archive (AES-256-GCM) with the key in "
                                                             "FILE (>= 32 bytes; keep it safe, apart)."),
           json_output: options.Json = False) -> Reply:
    """Back up COMPONENT (or every installed component of a bundle) for a client: database dumps, volumes and
    its .env, in one archive each."""
    from agencystack.backup import operations
    from agencystack.errors import UsageError

    if component in RESERVED:
        raise UsageError(f"'{component}' is a reserved word of 'backup', not a component")
    operations.check_retention(keep_last, keep_days)
    _existing(encrypt_key_file, "key file")
    session = Session.of(ctx, json_output)
    from agencystack import bulk

    bundle = bulk.find(session, component)
    if bundle is not None:
        from agencystack.cli import bundles

        return bundles.backup(session, bundle, client_id, json_output=json_output, dest=dest,
                              keep_last=keep_last, keep_days=keep_days, key_file=encrypt_key_file)
    context = session.context(component, "backup", client=client_id)
    result = operations.backup(context, dest=dest, keep_last=keep_last, keep_days=keep_days,
                               key_file=encrypt_key_file)

    def text() -> None:
        say(f"{result.summary}" if result.summary else f"{result.component} for {result.client}: backed up")
        say(f"  archive  {result.archive} ({_size(result.size)}{', encrypted' if result.encrypted else ''}, "
            f"{result.seconds:.1f}s)")
        for part in result.parts:
            say(f"  part     {part['name']:<12} {part['kind']:<9} {_size(part['raw_size'])} -> "
                f"{_size(part['size'])}")
        for path in result.deleted:
            say(f"  deleted  {path} (retention)")

    return Reply(result, text)


@backup_app.command("list")
def list_(ctx: typer.Context, component: options.OptionalComponent = None, client_id: options.ClientId = None,
          dest: Dest = None, json_output: options.Json = False) -> Reply:
    """List the archives of a client (all its components, or COMPONENT), newest first."""
    from agencystack import names
    from agencystack.backup import operations

    session = Session.of(ctx, json_output)
    client = names.client_id(client_id or session.global_settings.client_id)
    if component is not None:
        names.component_name(component)
    entries = operations.listing(session.global_settings.state_root, client, component, dest)

    def text() -> None:
        if not entries:
            where = dest or session.global_settings.state_root.client_dir(client)
            say(f"no backups of {component or 'any component'} for client {client} (looked in {where})")
            return
        rows = [("CREATED", "COMPONENT", "CLIENT", "SIZE", "STATE", "ARCHIVE")]
        rows += [(e["created"] or "?", e["component"] or "?", e["client"] or "?", _size(e["size"]), e["state"],
                  e["archive"]) for e in entries]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for row in rows:
            say("  ".join(cell.ljust(widths[i]) if i < 5 else cell for i, cell in enumerate(row)))

    return Reply(entries, text)


@backup_app.command("verify")
def verify(ctx: typer.Context,
           archive: Path = typer.Argument(..., metavar="ARCHIVE", show_default=False,
                                          help="The archive file to check."),
           key_file: KeyFile = None, json_output: options.Json = False) -> Reply:
    """Check an archive completely: manifest, every part's checksum and size, every part decompressed."""
    from agencystack.backup import operations

    _existing(archive, "archive")
    _existing(key_file, "key file")
    session = Session.of(ctx, json_output)
    report = operations.verify(archive, key_file)

    def text() -> None:
        say(f"{archive}: ok ({report['component']} {report['component_version']} for client {report['client']}, "
            f"created {report['created']}{', encrypted' if report['encrypted'] else ''})")
        for part in report["parts"]:
            say(f"  {part['name']:<12} {part['kind']:<9} {_size(part['raw_size'])} -> {_size(part['size'])}  "
                f"sha256 {part['sha256'][:16]}…  ok")

    return Reply(report, text)


def restore(ctx: typer.Context, component: options.Component,
            from_: Path = typer.Option(..., "--from", metavar="ARCHIVE", show_default=False,
                                       help="The archive to restore (verified whole before anything changes)."),
            client_id: options.ClientId = None,
            force: bool = typer.Option(False, "--force", help="Restore an archive of another component or of a "
                                                              "different major version."),
            key_file: KeyFile = None,
            domain: options.Domain = None, host: options.Host = None,
            json_output: options.Json = False) -> Reply:
    """Restore COMPONENT for a client from an archive; into another client id it makes an independent clone."""
    from agencystack.backup import operations

    _existing(from_, "archive")
    _existing(key_file, "key file")
    session = Session.of(ctx, json_output)
    context = session.context(component, "restore", client=client_id, domain=domain, host=host)
    outcome = operations.restore(context, from_, key_file=key_file, force=force)
    return Reply(outcome, lambda: say(outcome.summary + (f"\n{outcome.url}" if outcome.url else "")))
