"""Console progress while pulling, creating and waiting: one line per finished step, on stderr."""

from __future__ import annotations

import sys
import threading

from agencystack.cli.output import colours, paint
from agencystack.engine import Progress

_DONE = {"healthy", "completed", "started", "running", "removed", "restarted", "unchanged"}


def console_progress() -> Progress:
    """A Progress printing ``  ✓ service message`` lines on stderr (thread-safe: the driver works in parallel),
    coloured on a terminal only.

    Plain writes, not rich: rich's console took ~40 ms to make at the first line and a few ms a line to parse its
    markup, under the lock and the interpreter's lock, while the driver's threads waited to send their stops and
    starts (an uninstall's first stop left 67 ms after it was due); and a message with ``[brackets]`` in it is
    printed as it is, not read as markup."""
    lock = threading.Lock()

    def progress(service: str, message: str) -> None:
        stream = sys.stderr
        on = colours(stream)
        mark = paint("✓", "green", on) if message in _DONE else paint("…", "cyan", on)
        line = f"  {mark} {paint(service, 'bold', on)} {message}\n"
        with lock:
            stream.write(line)
            stream.flush()

    return progress
