"""The root command group: each sub-command is built when it is first asked for.

Typer builds the click command of every registered command (its parameters, their types and convertors) before it
parses anything; for one invocation only one sub-command runs. :class:`LazyGroup` knows each sub-command by name
and how to get its registration (importing the module that makes it), and builds it when click resolves it (or
shell completion lists it). Its help lists every sub-command with the short help Typer would show, taken from the
registration (the callback's docstring or the group's help) without building the sub-command.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from typer import main as typer_main
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandInfo, TyperInfo


class LazyGroup(TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._pending: dict[str, tuple[Callable[[], Any], dict[str, Any], bool]] = {}  # name -> how to build it
        self.on_build: Callable[[Any], None] = lambda command: None

    def defer(self, name: str, registration: Callable[[], CommandInfo | TyperInfo], *,
              pretty_exceptions_short: bool, rich_markup_mode: Any, suggest_commands: bool = True) -> None:
        """Add sub-command ``name``, built on first use from ``registration()`` (what ``app.command()`` or
        ``app.add_typer()`` records; asked for only when the command runs or help lists it)."""
        self._pending[name] = (registration, dict(pretty_exceptions_short=pretty_exceptions_short,
                                                  rich_markup_mode=rich_markup_mode),
                               suggest_commands)

    def _build(self, name: str) -> Any:
        registration, options, suggest_commands = self._pending.pop(name)
        info = registration()
        if isinstance(info, CommandInfo):
            return typer_main.get_command_from_info(info, **options)
        return typer_main.get_group_from_info(info, suggest_commands=suggest_commands, **options)

    def _stand_in(self, name: str) -> TyperCommand:
        """A help-only command with the help Typer gives the registration (nothing built)."""
        info = self._pending[name][0]()
        if isinstance(info, CommandInfo):
            text = inspect.getdoc(info.callback) if info.help is None else inspect.cleandoc(info.help)
            return TyperCommand(name=name, help=text, short_help=info.short_help, hidden=info.hidden,
                                deprecated=info.deprecated)
        solved = typer_main.solve_typer_info_defaults(info)
        return TyperCommand(name=name, help=solved.help, short_help=solved.short_help, hidden=solved.hidden,
                            deprecated=solved.deprecated)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self._pending:
            built = self._build(cmd_name)
            self.on_build(built)
            self.commands[cmd_name] = built
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and args[0] not in self._pending:
            for name in list(self._pending):  # not a command: Typer suggests close names from the built ones
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        """Run the sub-command; Ctrl-C is the typed :class:`~agencystack.errors.Interrupted` (exit 130, rendered
        as every failure is: Typer would turn it into a bare exit code, with nothing said)."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            from agencystack.errors import Interrupted

            raise Interrupted("interrupted") from None

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(n for n in self._pending if n not in self.commands)]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Typer's command list, from the stand-ins of the sub-commands not built yet."""
        rows = [(name, self.commands.get(name) or self._stand_in(name)) for name in self.list_commands(ctx)]
        rows = [(name, cmd) for name, cmd in rows if not cmd.hidden]
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])
