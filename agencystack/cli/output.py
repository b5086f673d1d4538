"""How results reach the terminal: JSON on stdout for scripts, short human lines (and tables) otherwise.

Imported by every command module at start-up: what only some commands use (json, rich) is imported where used.
"""

from __future__ import annotations

import sys
from enum import Enum
from typing import Any


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


def say(text: str) -> None:
    sys.stdout.write(text + "\n")


def warn(text: str) -> None:
    sys.stderr.write(f"warning: {text}\n")


STATE_STYLE = {"failed": "red", "starting": "yellow", "stopped": "yellow", "running": "green", "completed": "green",
               "absent": "dim"}


def status_table(statuses: list[Any]) -> None:
    """Print component statuses (each with its services) as one table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    fleet = any(getattr(s, "host", "local") != "local" for s in statuses)  # a HOST column once there are several
    for column in ("HOST",) * fleet + ("CLIENT", "COMPONENT", "SERVICE", "STATE", "MEMORY", "DETAIL"):
        table.add_column(column)
    for status in statuses:
        state = status.state.value
        table.add_row(*(status.host,) * fleet, status.client, status.component, "",
                      f"[{STATE_STYLE[state]}]{state}[/]", "", status.message or (status.url or ""))
        for service in status.services:
            sstate = service.state.value
            table.add_row(*("",) * fleet, "", "", service.name, f"[{STATE_STYLE[sstate]}]{sstate}[/]",
                          memory(service), service.detail)
    Console(highlight=False).print(table)


def memory(service: Any) -> str:
    """``120 MiB / 512 MiB (23%)`` (use against limit), ``120 MiB`` without a limit, ``- / 512 MiB`` unknown use."""
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
            text = f"[red]{text}[/]"
    return text
