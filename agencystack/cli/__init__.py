"""The ``agencystack`` command: a Typer app assembled from one module per command group.

A command's module is imported when the command runs (or ``--help`` lists it): ``components list`` imports the
components module only. ``app`` (the whole Typer app, which Typer's test runner drives) is assembled on first use.

A command returns a :class:`~agencystack.cli.output.Reply` or raises one typed error; ``main()`` renders either:
text, or under ``--json`` exactly one JSON document on stdout (docs/cli-json.md). A failure is one ``error: ...``
line on stderr with a documented exit code (agencystack.errors.EXIT_CODES): 2 bad input, 3 engine unreachable, 4
lock busy, 5 backup damaged, 1 other component failures and bugs, 130 interrupted.
"""

from __future__ import annotations

import sys
from functools import cache

import typer

from agencystack import __version__
from agencystack.cli.session import Session

SETTINGS: dict = dict(
    name="agencystack",
    help="Install and operate self-hosted components (PostHog, Keycloak, ...) for many clients on Docker.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain click help: keeps `--help` fast (rich loads only for commands that print tables)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
#: every command and command group in the order --help lists them (Typer's order: commands, then groups), with
#: the module of agencystack.cli that registers it
COMMANDS = {"install": "lifecycle", "plan": "lifecycle", "status": "lifecycle", "logs": "lifecycle",
            "restart": "lifecycle", "uninstall": "lifecycle", "doctor": "doctor", "restore": "backup",
            "render": "render", "move": "move", "components": "components", "component": "components",
            "backup": "backup", "settings": "settings", "sso": "sso", "dashboard": "dashboard", "hosts": "hosts"}
MODULES = ("lifecycle", "components", "doctor", "backup", "render", "settings", "sso",  # in registration order
           "dashboard", "hosts", "move")


def __getattr__(name: str) -> typer.Typer:
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = typer.Typer(**SETTINGS, result_callback=_render_in_app)
    app.callback()(_root)
    for module in MODULES:
        _module(module).register(app)
    globals()["app"] = app
    return app


def _module(name: str):
    from importlib import import_module

    return import_module(f"agencystack.cli.{name}")


@cache
def _registered(module: str) -> typer.Typer:
    """A scratch app holding what ``module`` registers."""
    scratch = typer.Typer()
    _module(module).register(scratch)
    return scratch


def _registration(module: str, name: str) -> typer.models.CommandInfo | typer.models.TyperInfo:
    """The registration of command ``name`` (Typer's CommandInfo, or TyperInfo for a group) by ``module``."""
    scratch = _registered(module)
    for command in scratch.registered_commands:
        if (command.name or typer.main.get_command_name(command.callback.__name__)) == name:
            return command
    for group in scratch.registered_groups:
        if typer.main.solve_typer_info_defaults(group).name == name:
            return group
    raise LookupError(f"agencystack.cli.{module} registers no command {name!r}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"agencystack {__version__}")
        raise typer.Exit()


def _render_in_app(value: object, **_params: object) -> object:
    """The whole app's result callback (Typer's test runner drives ``app``, not ``main()``): the reply rendered
    as ``main()`` renders it, its exit code raised."""
    from agencystack.cli.output import Reply

    if isinstance(value, Reply):
        from typer.main import get_current_context  # click's, as typer.main uses it

        code = _render(get_current_context().find_root().obj, value)
        if code:
            raise typer.Exit(code)
    return value


def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show debug log lines."),
    json_output: bool = typer.Option(False, "--json", help="Machine-readable output on stdout (the sub-command's "
                                     "--json, given before it)."),
) -> None:
    if not isinstance(ctx.obj, Session):  # Typer's test runner calls the app without main()
        ctx.obj = Session()
    ctx.obj.verbose = verbose
    if json_output:
        _json_by_default(ctx)


def _json_by_default(ctx: typer.Context) -> None:
    """``agencystack --json status``: the sub-command's own ``--json`` defaults to on (click's default_map reaches
    every sub-command, also of groups such as ``backup list``); bad input when the sub-command has none. Click has
    resolved (and so built) the invoked sub-command before this callback runs; only it is looked at."""
    from agencystack.errors import UsageError

    def defaults(command) -> dict:
        found = {}
        for name, sub in getattr(command, "commands", {}).items():
            if getattr(sub, "commands", None):
                nested = defaults(sub)
                if nested:
                    found[name] = nested
            elif any(p.name == "json_output" for p in sub.params):
                found[name] = {"json_output": True}
        return found

    name = ctx.invoked_subcommand
    sub = ctx.command.get_command(ctx, name) if name else None
    ctx.default_map = defaults(type("Root", (), {"commands": {name: sub}})) if sub is not None else {}
    if name and name not in ctx.default_map:
        raise UsageError(f"'agencystack {name}' has no --json output")


def command() -> typer.core.TyperGroup:
    """The click command of the app, with the global ``-v/--verbose`` also accepted after any sub-command (as git
    and docker accept theirs): click parses it as each command's own option, so ``--set -v`` stays a value.

    Only the sub-command an invocation runs is built (see agencystack.cli.group): building all of them costs more
    than parsing, and ``--help`` lists them from their registrations."""
    from typer.core import TyperOption

    from agencystack.cli.group import LazyGroup

    def _set_verbose(ctx: typer.Context, _param: object, value: bool) -> None:
        if value and isinstance(ctx.find_root().obj, Session):
            ctx.find_root().obj.verbose = True

    def _add(cmd: typer.core.TyperCommand | typer.core.TyperGroup) -> None:
        if not any("--verbose" in p.opts for p in cmd.params):
            cmd.params.append(TyperOption(param_decls=["--verbose", "-v"], is_flag=True, default=False,
                                          expose_value=False, callback=_set_verbose, help="Show debug log lines."))
        for sub in getattr(cmd, "commands", {}).values():
            _add(sub)

    shell = typer.Typer(cls=LazyGroup, **SETTINGS)  # the root group alone: its callback, options and completion
    shell.callback()(_root)
    root = typer.main.get_command(shell)
    root.on_build = _add  # each sub-command as it is built (the root has its own --verbose)
    for name, module in COMMANDS.items():
        root.defer(name, lambda module=module, name=name: _registration(module, name),
                   pretty_exceptions_short=shell.pretty_exceptions_short, rich_markup_mode=shell.rich_markup_mode,
                   suggest_commands=shell.suggest_commands)
    return root


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app and render what comes back (a :class:`~agencystack.cli.output.Reply`
    or one typed error) as text, or under ``--json`` as exactly one JSON document on stdout (docs/cli-json.md)."""
    from typer.exceptions import TyperException

    from agencystack.cli.output import Reply
    from agencystack.errors import AgencyStackError

    argv = sys.argv[1:] if argv is None else list(argv)
    session = Session()
    try:
        code = command().main(args=argv, prog_name="agencystack", standalone_mode=False, obj=session)
        if isinstance(code, Reply):
            return _render(session, code)
    except AgencyStackError as exc:
        return _fail(session, argv, exc.kind, str(exc), exc.exit_code, exc.hint)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        return _fail(session, argv, "interrupted", "interrupted", 130)
    except TyperException as exc:  # click's usage errors, as vendored by typer
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path.removeprefix("agencystack").strip() if ctx else ""
        hint = f"see 'agencystack {where + ' ' if where else ''}--help'" if ctx is not None else None
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group given no command: its help is not one line
            message = "missing command"
        code = getattr(exc, "exit_code", 2) or 2
        return _fail(session, argv, "usage" if code == 2 else "error", " ".join(message.split()), code, hint)
    except BrokenPipeError:
        return 0
    except ValueError as exc:
        if "null byte" not in str(exc):
            return _unexpected(session, argv, exc)
        # a path with a NUL byte: the OS refuses it (only an in-process caller can pass one; exec cannot)
        return _fail(session, argv, "usage", "a path contains a NUL byte", 2)
    except Exception as exc:  # noqa: BLE001
        return _unexpected(session, argv, exc)
    return code if isinstance(code, int) else 0  # a typer.Exit raised in a command comes back as its code


def _unexpected(session: Session, argv: list[str], exc: Exception) -> int:
    """A bug (ours or a plugin's): one redacted line, the traceback only with -v."""
    if session.verbose:
        import traceback

        sys.stderr.write(session.redact("".join(traceback.format_exception(exc))))
    return _fail(session, argv, "unexpected", f"unexpected {type(exc).__name__}: {exc}", 1,
                 None if session.verbose else "run with -v for the traceback")


def _render(session: Session, reply) -> int:
    """A command's reply: its document under --json, its text otherwise; its exit code."""
    from agencystack.cli.output import emit_json

    error = reply.error
    if error is not None:
        if not session.json_output and reply.text is not None:
            reply.text()
        return _fail(session, [], error.kind, str(error), error.exit_code, error.hint, result=reply.document)
    if session.json_output:
        emit_json(reply.document, session.redactor if reply.redact else None)
    elif reply.text is not None:
        reply.text()
    return reply.exit_code


def _fail(session: Session, argv: list[str], kind: str, message: str, code: int, hint: str | None = None,
          result: object = None) -> int:
    """One ``error: ...`` line on stderr (the hint in brackets); under --json also the failure document on stdout."""
    message = " ".join(str(session.redact(message)).split())  # one line, whatever the message carried
    hint = " ".join(str(session.redact(hint)).split()) if hint else None
    print(f"error: {message}" + (f" ({hint})" if hint else ""), file=sys.stderr)
    if session.json_output or json_requested(argv):
        from agencystack.cli.output import emit_json, failure_document

        emit_json(failure_document(kind, message, code, hint, result),
                  session.redactor if result is not None else None)
    return code


def json_requested(argv: list[str]) -> bool:
    """Whether ``--json`` is on the command line as the flag (before or after the sub-command), as click would read
    it: not the value of an option that takes one (``--set --json``), not after ``--``. Asked when parsing failed
    (the command never saw its flag); the sub-commands named are built to learn which options take values."""
    try:
        from agencystack.cli.group import LazyGroup

        cmd = command()
        ctx = typer.Context(cmd, info_name="agencystack")
        skip = False
        for token in argv:
            if skip:
                skip = False
                continue
            if token == "--":
                return False
            if token == "--json":
                return True
            if token.startswith("-"):
                skip = any(token in (*p.opts, *p.secondary_opts) for p in cmd.params
                           if p.param_type_name == "option" and not p.is_flag and not p.count)
                continue
            commands = getattr(cmd, "commands", None)
            if commands is not None:
                sub = (cmd.get_command(ctx, token) if isinstance(cmd, LazyGroup) else commands.get(token)) \
                    or commands.get("create")  # 'backup COMPONENT' is 'backup create COMPONENT'
                if sub is not None:
                    cmd = sub
        return False
    except Exception:  # noqa: BLE001 - a command that cannot be built: the plain reading
        return "--json" in argv[:argv.index("--") if "--" in argv else len(argv)]


def run() -> None:
    """The ``agencystack`` console script.

    Before the interpreter exits, every object alive is frozen out of the garbage collector's view: the teardown
    would otherwise walk all the objects of the imported modules (pydantic, the docker SDK, rich) once more, about
    a quarter of a short command's CPU time (0.47 s against 0.37 s of CPU for a lifecycle command's imports, measured
    with /usr/bin/time on this machine). Exit handlers, flushing and closing run as before."""
    import gc

    code = main()
    gc.freeze()
    sys.exit(code)
