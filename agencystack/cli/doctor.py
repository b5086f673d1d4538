"""``agencystack doctor``: can this host run components? (engine, RAM, CPUs, disk, ports 80/443), with fixes."""

# No `from __future__ import annotations`: Typer would eval every string annotation at start-up.

import typer

from agencystack.cli import options
from agencystack.cli.output import Reply


def register(app: typer.Typer) -> None:
    app.command()(doctor)


def doctor(ctx: typer.Context, json_output: options.Json = False) -> Reply:
    """Check the engine (reachable, API version), RAM and CPUs (4 GB / 2 cores, and what each component needs),
    disk, ports 80/443, broken and contested plugins; each check that does not pass names its fix."""
    from agencystack.cli.output import say
    from agencystack.cli.session import Session
    from agencystack.doctor import plugin_api_checks, plugin_checks, run_checks

    session = Session.of(ctx, json_output)
    checks = run_checks(session.global_settings, session.plugins.components.values())
    checks += plugin_checks(session.plugins)
    checks += plugin_api_checks(session.plugins)

    def text() -> None:
        marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
        for check in checks:
            say(f"[{marks[check.result]}] {check.name}: {check.detail}")
            if check.fix:
                say(f"       fix: {check.fix}")

    return Reply(checks, text, 1 if any(c.result == "fail" for c in checks) else 0, redact=False)
