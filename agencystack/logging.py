"""Structured logs: human lines on the console, JSON lines per component on disk, secrets redacted everywhere.

* Console: structlog's ConsoleRenderer on stderr (quiet with ``--json``: warnings and errors only).
* File: every event bound to a component is appended as one JSON line to ``<log dir>/components/<component>.log``
  (client, component, action, duration, outcome, ...).
* Loggers (:func:`get_logger`) have structlog's interface and run its processors' steps (log level, ISO UTC
  timestamp, redaction, the file sink, the console filter); structlog itself (its console renderer pulls rich's
  tracebacks and asyncio: ~100 ms of a start) is imported only when a line is printed on the console. A command
  that only records file lines (a no-op install) never imports it.
* Redaction: the :class:`Redactor` knows every secret value loaded in this process (settings fields that are
  secrets, generated or read from a .env) and replaces it with ``***`` in every event, before any renderer or sink
  sees it. The CLI passes error messages through the same redactor, and the engine driver masks what it quotes from
  the engine with one built from the deployment's secrets (``Deployment.redactor``). It is the only redactor: it
  masks secret values only, so image references, host names and other settings stay readable.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agencystack.state import StateRoot

MASK = "***"
MIN_SECRET_LENGTH = 6  # shorter values (e.g. "true") would mask innocent text


class Redactor:
    """Replaces known secret values with ``***`` in strings and nested event data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._ordered: list[str] = []  # longest first, so that a secret containing another is masked whole
        self._lock = threading.Lock()  # contexts opened in parallel (a fleet's status) add their secrets
        self.add(*secrets)

    def add(self, *values: str) -> None:
        new = {v for v in values if v and len(v) >= MIN_SECRET_LENGTH} - self._secrets
        if new:
            with self._lock:
                self._secrets |= new
                self._ordered = sorted(self._secrets, key=len, reverse=True)

    def __call__(self, logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        return {k: self.scrub(v) for k, v in event_dict.items()}

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) for v in value)
        if isinstance(value, BaseException):
            return self.text(str(value))
        return value

    def text(self, value: str) -> str:
        for secret in self._ordered:
            if secret in value:
                value = value.replace(secret, MASK)
        return value


class ComponentFileSink:
    """Appends events that carry a ``component`` to its log file (``<log_dir>/components/<component>.log``, as the
    state root names it) as JSON lines."""

    def __init__(self, state_root: StateRoot):
        self.state_root = state_root
        self._made: set[Path] = set()  # directories made already (a fleet-wide status logs a line per component)

    def __call__(self, logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        component = event_dict.get("component")
        if component:
            from agencystack.state import ensure_dir

            path = self.state_root.component_log(component)
            if path.parent not in self._made:
                ensure_dir(path.parent, 0o750)
                self._made.add(path.parent)
            record = {"level": method, **{k: v for k, v in event_dict.items() if k != "console"}}
            line = json.dumps(record, default=str, sort_keys=False) + "\n"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        return event_dict


_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_PRINT_LOCK = threading.Lock()
_config: _Config | None = None


class _Config:
    def __init__(self, state_root: StateRoot, redactor: Redactor, level: int):
        self.redactor, self.sink, self.console = redactor, ComponentFileSink(state_root), _ConsoleFilter(level)
        self._renderer: Any = None

    def render(self, method: str, event_dict: dict[str, Any]) -> None:
        """Print an event that passed the console filter with structlog's console renderer (imported now)."""
        if self._renderer is None:
            from structlog.dev import ConsoleRenderer

            self._renderer = ConsoleRenderer(colors=sys.stderr.isatty(), timestamp_key=None, sort_keys=False)
        line = self._renderer(None, method, event_dict)
        with _PRINT_LOCK:
            print(line, file=sys.stderr, flush=True)  # sys.stderr as it is now: a closed redirect leaves nothing


def configure(state_root: StateRoot, redactor: Redactor, quiet: bool = False, verbose: bool = False) -> None:
    """Set up logging for this process: redaction, then the file sink, then the console (quiet: warnings and errors;
    verbose: debug lines too)."""
    global _config
    level = 30 if quiet else (10 if verbose else 20)
    _config = _Config(state_root, redactor, level)


class BoundLogger:
    """A logger bound to context (client, component, action, ...), with structlog's methods: ``bind``, ``new``,
    ``unbind``, ``try_unbind``, ``debug``, ``info``, ``warning``/``warn``, ``error``/``err``, ``exception``,
    ``critical``/``fatal``, ``msg``, ``log(level, ...)``. Before :func:`configure`, structlog's defaults log."""

    def __init__(self, context: dict[str, Any]):
        self._context = context

    def bind(self, **new_values: Any) -> BoundLogger:
        return BoundLogger({**self._context, **new_values})

    def new(self, **new_values: Any) -> BoundLogger:
        return BoundLogger(dict(new_values))

    def unbind(self, *keys: str) -> BoundLogger:
        context = dict(self._context)
        for key in keys:
            del context[key]
        return BoundLogger(context)

    def try_unbind(self, *keys: str) -> BoundLogger:
        return BoundLogger({k: v for k, v in self._context.items() if k not in keys})

    def _emit(self, method: str, event: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        if args:  # structlog's interpolation: log.info("%s done", x), or one dict for %(name)s
            event = event % (args[0] if len(args) == 1 and isinstance(args[0], dict) and args[0] else args)
        if _config is None:
            import structlog

            getattr(structlog.get_logger("agencystack").bind(**self._context), method)(event, **kw)
            return
        event_dict = {**self._context, **kw}
        if event is not None:
            event_dict["event"] = event
        contextvars = sys.modules.get("structlog.contextvars")
        if contextvars is not None:  # values bound with structlog.contextvars.bind_contextvars
            event_dict = contextvars.merge_contextvars(None, method, event_dict)
        event_dict["level"] = method
        event_dict["ts"] = datetime.now(tz=UTC).isoformat().replace("+00:00", "Z")
        event_dict = _config.redactor(None, method, event_dict)
        event_dict = _config.sink(None, method, event_dict)
        if _config.console.shows(method, event_dict):
            _config.render(method, _config.console(None, method, event_dict))

    def debug(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self._emit("debug", event, args, kw)

    def info(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self._emit("info", event, args, kw)

    def warning(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self._emit("warning", event, args, kw)

    def error(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self._emit("error", event, args, kw)

    def critical(self, event: Any = None, *args: Any, **kw: Any) -> None:
        self._emit("critical", event, args, kw)

    def exception(self, event: Any = None, *args: Any, **kw: Any) -> None:
        kw.setdefault("exc_info", True)
        self._emit("error", event, args, kw)

    def log(self, level: int, event: Any = None, *args: Any, **kw: Any) -> None:
        name = next((n for n, v in _LEVELS.items() if v == level), None)
        if name is not None:
            self._emit(name, event, args, kw)

    warn = warning
    err = error
    fatal = critical
    msg = info


class _ConsoleFilter:
    """Drops events below the console level after the file sink has recorded them."""

    _LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50, "exception": 40}

    def __init__(self, level: int):
        self.level = level

    def shows(self, method: str, event_dict: dict[str, Any]) -> bool:
        """False for file-only events (``console=False``: the CLI prints outcomes and errors itself) and for levels
        below the console's."""
        return event_dict.get("console", True) is not False and self._LEVELS.get(method, 20) >= self.level

    def __call__(self, logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict.pop("console", None)
        event_dict.pop("ts", None)
        for key in ("client", "component", "action"):
            event_dict.pop(key, None)
        return event_dict


def get_logger(**context: Any) -> BoundLogger:
    return BoundLogger(dict(context))
