"""Lifecycle dispatch and the wrappers around every lifecycle call (a core plugin).

``run(context, action, **kwargs)`` calls the targeted hook. The wrappers below are pluggy ``wrapper=True`` hook
implementations registered like any plugin, so they run around every component's implementation without the
component doing anything:

* mutating actions (install, restart, backup, restore, uninstall) hold the per-(client, component) lock, and load
  the component's settings again once they hold it (a call that waited sees what the one before it saved);
* every action binds the log context (client, component, action), times itself and logs its outcome as one JSON
  line in the component's log;
* mutating actions record their outcome (and the facts the action gathered) in the component's manifest.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from agencystack.markers import hookimpl

MUTATING = ("install", "restart", "backup", "restore", "uninstall")


def run(context: Any, action: str, **kwargs: Any) -> Any:
    """Dispatch ``action`` to the target component's plugin (and the core's wrappers and defaults)."""
    return context.plugins.call(action, context.component.name, context=context, **kwargs)


def _wrapper(action: str):
    locked = action in MUTATING

    @hookimpl(wrapper=True)
    def wrapper(context):
        with contextlib.ExitStack() as stack:
            if locked:
                stack.enter_context(context.state_root.lifecycle_lock(context.client, context.component.name, action,
                                                                      context.global_settings.lock_timeout))
                context.reload_settings()
            log = context.log.bind(action=action, console=False)  # the CLI prints the outcome itself
            started = time.monotonic()
            log.debug(f"{action} started")
            try:
                result = yield
            except BaseException as exc:
                duration = round(time.monotonic() - started, 3)
                log.error(f"{action} failed", outcome="failed", duration=duration,
                          error=f"{type(exc).__name__}: {exc}")
                if locked and context.dir.has_state:
                    context.dir.record(action, "failed", error=context.redactor.text(str(exc)), **context.facts)
                raise
            duration = round(time.monotonic() - started, 3)
            summary = getattr(result, "summary", None)
            log.info(summary or f"{action} done", outcome="ok", duration=duration)
            if locked and context.dir.has_state:
                context.dir.record(action, "ok", **context.facts)
            return result

    wrapper.__name__ = wrapper.__qualname__ = action
    return wrapper


install = _wrapper("install")
status = _wrapper("status")
logs = _wrapper("logs")
restart = _wrapper("restart")
backup = _wrapper("backup")
restore = _wrapper("restore")
uninstall = _wrapper("uninstall")
