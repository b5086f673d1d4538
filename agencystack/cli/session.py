"""The CLI's side of one invocation: the core's :class:`~agencystack.invocation.Invocation` plus the console's
modes (``--json``, ``-v``, a command that prints only its own output).

Console concerns only: under ``--json`` no progress is printed and the console log is quiet (a script reads
stdout); otherwise progress lines go to stderr. Everything else (plugins, settings, engines, contexts) is the core's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agencystack.invocation import Invocation

if TYPE_CHECKING:
    import typer

    from agencystack.engine import Progress


class Session(Invocation):
    def __init__(self, json_output: bool = False, verbose: bool = False):
        super().__init__(verbose=verbose)
        self.json_output = json_output
        self.silent = False  # no progress and a quiet log whatever --json says (render: stdout is the file alone)
        self._console: Progress | None = None

    @property
    def quiet(self) -> bool:
        return self._quiet or self.json_output or self.silent

    @quiet.setter
    def quiet(self, value: bool) -> None:
        self._quiet = value

    @property
    def progress(self) -> Progress:
        """Console lines on stderr; nothing under --json (a script reads stdout) or for a silent command."""
        if self._progress is not None or self.json_output or self.silent:
            return Invocation.progress.fget(self)
        if self._console is None:
            from agencystack.cli.progress import console_progress

            self._console = console_progress()
        return self._console

    @progress.setter
    def progress(self, sink: Progress | None) -> None:
        self._progress = sink

    @classmethod
    def of(cls, ctx: typer.Context, json_output: bool = False) -> Session:
        """The invocation's session, as a command (or a command of a group, such as ``backup create``) finds it,
        set to print ``--json`` or not."""
        session = ctx.obj if ctx.obj is not None else ctx.find_root().obj
        session.json_output = json_output
        return session
