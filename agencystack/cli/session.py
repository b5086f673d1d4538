"""One CLI invocation's shared objects: global settings, plugins, the redactor and console output modes.

Everything is created on first use, so a command pays only for what it touches (``--help`` loads no plugin).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

    from agencystack.context import LifecycleContext
    from agencystack.engine import Driver
    from agencystack.fleet import DockerHost
    from agencystack.logging import Redactor
    from agencystack.plugins import Plugins
    from agencystack.settings import GlobalSettings


class Session:
    def __init__(self, json_output: bool = False, verbose: bool = False):
        self.json_output = json_output
        self.verbose = verbose
        self._logging_ready = False
        self._engines: dict[str, Driver] = {}

    @cached_property
    def redactor(self) -> Redactor:
        from agencystack.logging import Redactor

        return Redactor()

    @cached_property
    def global_settings(self) -> GlobalSettings:
        from agencystack.settings import GlobalSettings

        return GlobalSettings.load()

    @cached_property
    def plugins(self) -> Plugins:
        from agencystack.plugins import load

        return load()

    def engine(self, host: DockerHost | None = None) -> Driver:
        """The driver of ``host``'s engine (default: the local one) that every context of this invocation on that
        host shares (one connection per host, pinged once, at the first use; ``status --all`` takes one snapshot of
        every project on each host)."""
        host = host or self.global_settings.host
        if host.name not in self._engines:
            from agencystack.placement import connect

            engine = connect(host)
            engine.ping()
            self._engines[host.name] = engine
        return self._engines[host.name]

    def start_logging(self) -> None:
        if not self._logging_ready:
            from agencystack.logging import configure

            configure(self.global_settings.state_root, self.redactor, quiet=self.json_output, verbose=self.verbose)
            self._logging_ready = True

    def progress(self) -> Any:
        """Where long work reports: console lines on stderr, nothing under --json (a script reads stdout)."""
        if self.json_output:
            from agencystack.engine import no_progress

            return no_progress
        from agencystack.cli.progress import console_progress

        return console_progress()

    def context(self, component: str, action: str, *, client: str | None = None,
                flags: list[str] | None = None, domain: str | None = None, progress: Any = None,
                global_settings: GlobalSettings | None = None, pairs: dict[str, str] | None = None,
                host: str | None = None, relocating: bool = False) -> LifecycleContext:
        """Validate input and build the context (nothing is written); then start logging. ``progress`` replaces
        the console's, ``global_settings`` the invocation's (a bulk install's client with a domain of its own),
        ``pairs`` are flags already split into KEY -> VALUE; ``host`` places a new client (``--host``)."""
        from agencystack import names
        from agencystack.context import LifecycleContext

        context = LifecycleContext.open(
            plugins=self.plugins, global_settings=global_settings or self.global_settings, component=component,
            action=action, redactor=self.redactor, client=client, flags={**names.setting_pairs(flags), **(pairs or {})},
            domain=domain, progress=progress or (None if self.json_output else self.progress()), connect=self.engine,
            host=host, relocating=relocating,
        )
        self.start_logging()
        return context

    @classmethod
    def of(cls, ctx: typer.Context, json_output: bool = False) -> Session:
        """The invocation's session, as a command (or a command of a group, such as ``backup create``) finds it,
        set to print ``--json`` or not."""
        session = ctx.obj if ctx.obj is not None else ctx.find_root().obj
        session.json_output = json_output
        return session

    def redact(self, value: Any) -> Any:
        return self.redactor.scrub(value) if "redactor" in self.__dict__ else value
