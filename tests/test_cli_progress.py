"""The progress lines long commands print on stderr: one per step, plain when stderr is not a terminal (logs, CI,
pipes), coloured on a terminal unless NO_COLOR is set, the message printed as given."""

from __future__ import annotations

import io
import threading

from agencystack.cli.progress import console_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_lines_are_plain_off_a_terminal_and_keep_brackets(monkeypatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    progress = console_progress()
    progress("db", "waiting for health")
    progress("db", "healthy")
    progress("web", "exited (1): [error] bad config [/etc/app.conf]")  # not read as markup
    assert err.getvalue().splitlines() == [
        "  … db waiting for health", "  ✓ db healthy", "  … web exited (1): [error] bad config [/etc/app.conf]"]


def test_progress_is_coloured_on_a_terminal_unless_no_color(monkeypatch) -> None:
    tty = Terminal()
    monkeypatch.setattr("sys.stderr", tty)
    monkeypatch.delenv("NO_COLOR", raising=False)
    console_progress()("db", "healthy")
    assert tty.getvalue() == "  \x1b[32m✓\x1b[0m \x1b[1mdb\x1b[0m healthy\n"
    tty.seek(0)
    tty.truncate()
    monkeypatch.setenv("NO_COLOR", "1")
    console_progress()("db", "healthy")
    assert tty.getvalue() == "  ✓ db healthy\n"


def test_progress_lines_from_many_threads_never_interleave(monkeypatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    progress = console_progress()
    threads = [threading.Thread(target=lambda i=i: [progress(f"s{i}", "starting") for _ in range(50)])
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = err.getvalue().splitlines()
    assert len(lines) == 400 and all(line in {f"  … s{i} starting" for i in range(8)} for line in lines)
