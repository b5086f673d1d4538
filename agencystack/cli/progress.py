"""Console progress while pulling, creating and waiting: one line per finished step, on stderr."""

from __future__ import annotations

import sys
import threading

from agencystack.engine import Progress

_DONE = {"healthy", "completed", "started", "running", "removed", "restarted", "unchanged"}


def console_progress() -> Progress:
    """A Progress printing ``  service  message`` lines on stderr (thread-safe; the driver works in parallel)."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False, force_terminal=None if sys.stderr.isatty() else False)
    lock = threading.Lock()

    def progress(service: str, message: str) -> None:
        mark = "[green]✓[/]" if message in _DONE else "[cyan]…[/]"
        with lock:
            console.print(f"  {mark} [bold]{service}[/] {message}")

    return progress
