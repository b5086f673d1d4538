"""The root command group: each sub-command is built from the app's registrations when it is first asked for.

Typer builds the click command of every registered command (its parameters, their types and convertors) before it
parses anything; for one invocation only one sub-command runs. :class:`LazyGroup` keeps the registrations and
builds a sub-command when click resolves it (or shell completion lists it). Its help lists every sub-command with
the short help Typer would show, taken from the registration (the callback's docstring or the group's help)
without building the sub-command.
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
        self._pending: dict[str, tuple[Callable[[], Any], Any]] = {}  # name -> (build, a help-only stand-in)
        self.on_build: Callable[[Any], None] = lambda command: None

    def defer(self, info: CommandInfo | TyperInfo, *, pretty_exceptions_short: bool, rich_markup_mode: Any,
              suggest_commands: bool = True) -> None:
        """Register ``info`` (an ``app.command()`` or ``app.add_typer()`` registration) to be built on first use."""
        if isinstance(info, CommandInfo):
            name = info.name or typer_main.get_command_name(info.callback.__name__)  # type: ignore[union-attr]
            text = inspect.getdoc(info.callback) if info.help is None else inspect.cleandoc(info.help)
            stand_in = TyperCommand(name=name, help=text, short_help=info.short_help, hidden=info.hidden,
                                     deprecated=info.deprecated)

            def build() -> Any:
                return typer_main.get_command_from_info(info, pretty_exceptions_short=pretty_exceptions_short,
                                                        rich_markup_mode=rich_markup_mode)
        else:
            solved = typer_main.solve_typer_info_defaults(info)
            name = solved.name
            stand_in = TyperCommand(name=name, help=solved.help, short_help=solved.short_help, hidden=solved.hidden,
                                     deprecated=solved.deprecated)

            def build() -> Any:
                return typer_main.get_group_from_info(info, pretty_exceptions_short=pretty_exceptions_short,
                                                      rich_markup_mode=rich_markup_mode,
                                                      suggest_commands=suggest_commands)
        self._pending[name] = (build, stand_in)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self._pending:
            built = self._pending.pop(cmd_name)[0]()
            self.on_build(built)
            self.commands[cmd_name] = built
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and args[0] not in self._pending:
            for name in list(self._pending):  # not a command: Typer suggests close names from the built ones
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(n for n in self._pending if n not in self.commands)]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Typer's command list, from the stand-ins of the sub-commands not built yet."""
        rows = [(name, self.commands.get(name) or self._pending[name][1]) for name in self.list_commands(ctx)]
        rows = [(name, cmd) for name, cmd in rows if not cmd.hidden]
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])
