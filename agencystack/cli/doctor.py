"""``agencystack doctor``: can this host run components? (engine, RAM, CPUs, disk, ports 80/443), with fixes."""

# No `from __future__ import annotations`: Typer would eval every string annotation at start-up.

import typer

from agencystack.cli import options


def register(app: typer.Typer) -> None:
    app.command()(doctor)


def doctor(ctx: typer.Context, json_output: options.Json = False) -> None:
    """Check the engine (reachable, API version), RAM and CPUs (4 GB / 2 cores, and what each component needs),
    disk, ports 80/443, broken and contested plugins; each check that does not pass names its fix."""
    from agencystack.cli.output import emit_json, say
    from agencystack.doctor import plugin_api_checks, plugin_checks, run_checks

    checks = run_checks(ctx.obj.global_settings, ctx.obj.plugins.components.values())
    checks += plugin_checks(ctx.obj.plugins)
    checks += plugin_api_checks(ctx.obj.plugins)
    if json_output:
        emit_json(checks)
    else:
        marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
        for check in checks:
            say(f"[{marks[check.result]}] {check.name}: {check.detail}")
            if check.fix:
                say(f"       fix: {check.fix}")
    if any(c.result == "fail" for c in checks):
        raise typer.Exit(1)
