"""Console progress while pulling, creating and waiting: one line per finished step, on stderr."""

from __future__ import annotations

import sys
import threading

from agencystack.engine import Progress

_DONE = {"healthy", "completed", "started", "running", "removed", "restarted", "unchanged"}


def console_progress() -> Progress:
    """A Progress printing ``  service  message`` lines on stderr (thread-safe; the driver works in parallel).
    The console (rich) is made at the first line: a command with nothing to report (a no-op install) never
    imports rich."""
    console = None
    lock = threading.Lock()

    def progress(service: str, message: str) -> None:
        nonlocal console
        mark = "[green]✓[/]" if message in _DONE else "[cyan]…[/]"
        with lock:
            if console is None:
                from rich.console import Console

                console = Console(stderr=True, highlight=False, force_terminal=None if sys.stderr.isatty() else False)
            console.print(f"  {mark} [bold]{service}[/] {message}")

    return progress
