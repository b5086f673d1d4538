"""How results reach the terminal: JSON on stdout for scripts, short human lines (and tables) otherwise.

One outcome model, rendered two ways (docs/cli-json.md): a command returns a :class:`Reply` (its ``--json``
document and how it reads for a person) or raises one typed error (agencystack.errors); ``main()`` renders either:
under ``--json`` exactly one JSON document on stdout (a failure: :func:`failure_document`), otherwise human lines
(a failure: one ``error: ...`` line on stderr). Progress and logs go to stderr either way.

Imported by every command module at start-up: what only some commands use (json, tabulate, rich) is imported where used.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agencystack.errors import AgencyStackError


@dataclass
class Reply:
    """What a command answers: ``document`` (the ``--json`` form: dataclasses, enums, lists and dicts), ``text``
    (prints the human form; None: nothing to print), and the exit code (0, or 1 when the result itself reports a
    failure: a failed component in ``status``, a failed check in ``doctor``, a failed component of a bulk install).
    ``redact``: False only for what is shown once on purpose (a new user's password). ``error``: the failure the
    result ends with (``plan`` of a host another client routes): the text, then its ``error:`` line; under
    ``--json`` its failure document, the result in ``result``; its exit code."""

    document: Any
    text: Callable[[], None] | None = None
    exit_code: int = 0
    redact: bool = True
    error: AgencyStackError | None = None


def failure_document(kind: str, message: str, exit_code: int, hint: str | None = None,
                     result: Any = None) -> dict[str, Any]:
    """The one document a failed command prints under ``--json`` (docs/cli-json.schema.json's ``failure``);
    ``result``: what the command found before it failed (``plan``), when it found something."""
    document = {"ok": False, "exit_code": exit_code, "error": {"kind": kind, "message": message, "hint": hint}}
    if result is not None:
        document["result"] = _plain(result)
    return document


def _plain(value: Any) -> Any:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


def emit_json(value: Any, redactor: Any = None) -> None:
    import json

    data = _plain(value)
    if redactor is not None:
        data = redactor.scrub(data)
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def say(text: str) -> None:
    sys.stdout.write(text + "\n")


def warn(text: str) -> None:
    sys.stderr.write(f"warning: {text}\n")


STATE_STYLE = {"failed": "red", "starting": "yellow", "stopped": "yellow", "running": "green", "completed": "green",
               "absent": "dim"}
_ANSI = {"red": "31", "green": "32", "yellow": "33", "cyan": "36", "dim": "2", "bold": "1"}


def colours(stream: Any = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    import os

    stream = stream or sys.stdout
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


def paint(text: str, style: str | None, on: bool) -> str:
    """``text`` in ``style`` (a name of _ANSI) when ``on``; plain text otherwise."""
    return f"\x1b[{_ANSI[style]}m{text}\x1b[0m" if on and style in _ANSI and text else text


def table(headers: list[str], rows: list[list[Any]], *, stream: Any = None) -> None:
    """Rows under headers in aligned columns, two spaces apart, the way ``docker ps`` prints them.

    Each cell is a string or ``(text, style)``; styles are painted only on a terminal (tabulate aligns around the
    colour codes). tabulate, not rich: rich's table layout took ~5 ms a row, a third of ``status --all``."""
    from tabulate import tabulate

    stream = stream or sys.stdout
    on = colours(stream)
    cells = [[paint(*c, on) if isinstance(c, tuple) else ("" if c is None else str(c)) for c in row] for row in rows]
    text = tabulate(cells, headers=[paint(h, "bold", on) for h in headers], tablefmt="plain", disable_numparse=True)
    stream.write(text + "\n")


def status_table(statuses: list[Any]) -> None:
    """Print component statuses (each with its services) as one table."""
    fleet = any(getattr(s, "host", "local") != "local" for s in statuses)  # a HOST column once there are several
    rows: list[list[Any]] = []
    for status in statuses:
        state = status.state.value
        rows.append([*(status.host,) * fleet, status.client, status.component, "", (state, STATE_STYLE[state]), "",
                     status.message or (status.url or "")])
        for service in status.services:
            sstate = service.state.value
            rows.append([*("",) * fleet, "", "", service.name, (sstate, STATE_STYLE[sstate]), memory(service),
                         service.detail])
    table([*("HOST",) * fleet, "CLIENT", "COMPONENT", "SERVICE", "STATE", "MEMORY", "DETAIL"], rows)


def memory(service: Any) -> str | tuple[str, str]:
    """``120 MiB / 512 MiB (23%)`` (use against limit), ``120 MiB`` without a limit, ``- / 512 MiB`` unknown use; a
    table cell painted red from 90% of the limit."""
    from agencystack.limits import format_size

    used, limit = getattr(service, "memory_used", None), getattr(service, "memory_limit", None)
    if used is None and limit is None:
        return ""
    if limit is None:
        return format_size(used)
    text = f"{format_size(used) if used is not None else '-'} / {format_size(limit)}"
    if used is not None:
        percent = 100 * used / limit
        text += f" ({percent:.0f}%)"
        if percent >= 90:
            return (text, "red")
    return text
