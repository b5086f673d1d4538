"""One invocation of the core: what every command (and every program embedding AgencyStack) shares while it runs.

An :class:`Invocation` owns the loaded plugins, the global settings, the one redactor, one engine driver per Docker
host, the start of logging, and the creation of lifecycle contexts. Everything is created on first use, so a command
pays only for what it touches (``--help`` loads no plugin). It knows nothing of a console: where progress goes is a
:data:`~agencystack.engine.Progress` sink given to it (``progress``), and whether the console log is quiet is a flag
(``quiet``); the CLI (agencystack.cli.session) sets both from ``--json``.

The path of a command runs one way: the CLI calls the core with an invocation, the invocation opens contexts
(:meth:`LifecycleContext.open <agencystack.context.LifecycleContext.open>`), the context is placed on its host
(:mod:`agencystack.placement`) and asks the driver of that host (:meth:`engine`).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from agencystack.context import LifecycleContext
    from agencystack.engine import Driver, Progress
    from agencystack.fleet import DockerHost
    from agencystack.logging import Redactor
    from agencystack.plugin_host import Plugins
    from agencystack.settings import GlobalSettings

T = TypeVar("T")


class Invocation:
    """``progress``: where long work reports (None: nowhere); ``quiet``: the console log shows warnings and errors
    only; ``verbose``: it shows debug lines too."""

    def __init__(self, *, progress: Progress | None = None, quiet: bool = False, verbose: bool = False):
        self.quiet = quiet
        self.verbose = verbose
        self._progress = progress
        self._logging_ready = False
        self._engines: dict[str, Driver] = {}

    @property
    def progress(self) -> Progress:
        """The progress sink of this invocation (a no-op when none was given)."""
        if self._progress is None:
            from agencystack.engine import no_progress

            return no_progress
        return self._progress

    @progress.setter
    def progress(self, sink: Progress | None) -> None:
        self._progress = sink

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
        from agencystack.dashboard_registry import contexts
        from agencystack.plugins import load

        return load(client_contexts=contexts)  # a Nov-27 dashboard_entries(context of a client) is answered

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
        """The log sinks (the JSON file, the console on stderr), once: after input is valid, before work."""
        if not self._logging_ready:
            from agencystack.logging import configure

            configure(self.global_settings.state_root, self.redactor, quiet=self.quiet, verbose=self.verbose)
            self._logging_ready = True

    def context(self, component: str, action: str, *, client: str | None = None,
                flags: list[str] | None = None, domain: str | None = None, progress: Progress | None = None,
                global_settings: GlobalSettings | None = None, pairs: dict[str, str] | None = None,
                host: str | None = None, relocating: bool = False) -> LifecycleContext:
        """Validate input and build the context (nothing is written); then start logging. ``flags`` are ``--set``
        values (``KEY=VALUE``), ``pairs`` flags already split into KEY -> VALUE; ``progress`` replaces the
        invocation's sink, ``global_settings`` the invocation's (a bulk install's client with a domain of its own);
        ``host`` places a new client (``--host``)."""
        from agencystack import names
        from agencystack.context import LifecycleContext

        context = LifecycleContext.open(
            plugins=self.plugins, global_settings=global_settings or self.global_settings, component=component,
            action=action, redactor=self.redactor, client=client, flags={**names.setting_pairs(flags), **(pairs or {})},
            domain=domain, progress=progress or self.progress, connect=self.engine, host=host, relocating=relocating,
        )
        self.start_logging()
        return context

    def redact(self, value: T) -> T:
        """``value`` with every secret this invocation loaded masked (as it is, when none was loaded yet)."""
        return self.redactor.scrub(value) if "redactor" in self.__dict__ else value
