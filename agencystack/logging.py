"""Structured logs: human lines on the console, JSON lines per component on disk, secrets redacted everywhere.

* Console: structlog's ConsoleRenderer on stderr (quiet with ``--json``: warnings and errors only).
* File: every event bound to a component is appended as one JSON line to ``<log dir>/components/<component>.log``
  (client, component, action, duration, outcome, ...).
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
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agencystack.state import StateRoot

MASK = "***"
MIN_SECRET_LENGTH = 6  # shorter values (e.g. "true") would mask innocent text


class Redactor:
    """Replaces known secret values with ``***`` in strings and nested event data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *values: str) -> None:
        self._secrets.update(v for v in values if v and len(v) >= MIN_SECRET_LENGTH)

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
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in value:
                value = value.replace(secret, MASK)
        return value


class ComponentFileSink:
    """Appends events that carry a ``component`` to its log file (``<log_dir>/components/<component>.log``, as the
    state root names it) as JSON lines."""

    def __init__(self, state_root: StateRoot):
        self.state_root = state_root

    def __call__(self, logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        component = event_dict.get("component")
        if component:
            from agencystack.state import ensure_dir

            path = self.state_root.component_log(component)
            ensure_dir(path.parent, 0o750)
            record = {"level": method, **{k: v for k, v in event_dict.items() if k != "console"}}
            line = json.dumps(record, default=str, sort_keys=False) + "\n"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        return event_dict


def configure(state_root: StateRoot, redactor: Redactor, quiet: bool = False, verbose: bool = False) -> None:
    """Set up structlog for this process: redaction, then the file sink, then the console renderer."""
    import logging as stdlib_logging

    import structlog

    level = stdlib_logging.WARNING if quiet else (stdlib_logging.DEBUG if verbose else stdlib_logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            redactor,
            ComponentFileSink(state_root),
            _ConsoleFilter(level),
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(), timestamp_key=None, sort_keys=False),
        ],
        # sys.stderr as it is when a logger is made, not when logging was configured: an embedding program (or a
        # test) that redirects and later closes stderr leaves no dead stream behind
        logger_factory=lambda *args: structlog.PrintLogger(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


class _ConsoleFilter:
    """Drops events below the console level after the file sink has recorded them."""

    _LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50, "exception": 40}

    def __init__(self, level: int):
        self.level = level

    def __call__(self, logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        import structlog

        if event_dict.pop("console", True) is False or self._LEVELS.get(method, 20) < self.level:
            raise structlog.DropEvent  # file-only events (the CLI prints outcomes and errors itself)
        event_dict.pop("ts", None)
        for key in ("client", "component", "action"):
            event_dict.pop(key, None)
        return event_dict


def get_logger(**context: Any) -> Any:
    import structlog

    return structlog.get_logger("agencystack").bind(**context)
