"""Installing many components (a bundle) for one client, or for many clients, at once.

:func:`install` runs one client's components as a dependency graph (``waits``: component -> what it waits for, from
:func:`agencystack.bundle.resolve`): a component starts when everything it waits for finished well, up to
``parallel`` at a time; one that fails makes everything that (transitively) waits for it *skipped*, the others
finish. Every component goes through the lifecycle's typed install (:func:`agencystack.lifecycle.install`), with its
lock, wrappers and manifest, exactly as ``agencystack install <component>`` would: a re-run converges what is there
(no changes) and completes what is missing. :func:`install_clients` does the same for many clients, a bounded number
at a time; one client's failure never stops another's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agencystack.context import LifecycleContext

#: outcomes of one component in a bulk install
OK, UNCHANGED, FAILED, SKIPPED = "ok", "unchanged", "failed", "skipped"
DEFAULT_PARALLEL = 4
DEFAULT_CLIENTS_PARALLEL = 4


@dataclass
class Step:
    """What became of one component: outcome, how long it took, where users reach it, and why (one line)."""

    component: str
    outcome: str = "pending"
    duration: float = 0.0
    url: str | None = None
    detail: str = ""
    started_at: float | None = None  # epoch seconds, for ordering and overlap
    finished_at: float | None = None


@dataclass
class ClientRun:
    """One client's bulk install."""

    client: str
    steps: list[Step] = field(default_factory=list)
    error: str = ""  # why nothing could start for this client (bad settings), else empty
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error and all(s.outcome in (OK, UNCHANGED) for s in self.steps)


#: (component, message): a line of live progress
Report = Callable[[str, str], None]


def install(open_context: Callable[[str], LifecycleContext], waits: dict[str, tuple[str, ...]], *,
            parallel: int = DEFAULT_PARALLEL, report: Report | None = None) -> list[Step]:
    """Install the components of ``waits`` (in its order for the results), each after what it waits for, up to
    ``parallel`` at a time. ``open_context(component)`` builds the component's install context."""
    report = report or (lambda component, message: None)
    steps = {name: Step(name) for name in waits}
    pending = dict(waits)
    running: dict[Future, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="install") as pool:
        while pending or running:
            moved = False
            for name, after in list(pending.items()):
                bad = next((a for a in after if steps[a].outcome in (FAILED, SKIPPED)), None)
                if bad is not None:
                    del pending[name]
                    steps[name].outcome = SKIPPED
                    steps[name].detail = f"{bad} {'failed' if steps[bad].outcome == FAILED else 'was skipped'}"
                    report(name, f"skipped: {steps[name].detail}")
                    moved = True
                elif all(steps[a].outcome in (OK, UNCHANGED) for a in after):
                    del pending[name]
                    running[pool.submit(_one, open_context, steps[name], report)] = name
                    moved = True
            if not running:
                if not moved:  # resolve() never gives this: a wait on something that is not in the graph
                    raise ValueError(f"cannot order {', '.join(pending)}: they wait for what is not installed here")
                continue  # only skips happened in this round: look again
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                del running[future]
                future.result()  # _one never raises but for bugs and interrupts
    return [steps[name] for name in waits]


def _one(open_context: Callable[[str], LifecycleContext], step: Step, report: Report) -> None:
    from agencystack import lifecycle
    from agencystack.errors import AgencyStackError

    step.started_at = time.time()
    started = time.monotonic()
    report(step.component, "installing")
    try:
        context = open_context(step.component)
        outcome = lifecycle.install(context)
    except AgencyStackError as exc:
        step.outcome, step.detail = FAILED, " ".join(str(exc).split())
    except Exception as exc:  # noqa: BLE001 - a plugin's bug fails its component only; the CLI says so in one line
        step.outcome, step.detail = FAILED, " ".join(f"unexpected {type(exc).__name__}: {exc}".split())
    else:
        changes = outcome.changes or {}
        step.outcome = UNCHANGED if changes and set(changes) <= {"unchanged"} else OK
        step.detail = outcome.summary
        step.url = outcome.url or context.facts.get("url")  # what the default install recorded (defaults._where)
    step.duration = round(time.monotonic() - started, 2)
    step.finished_at = time.time()
    report(step.component, f"{step.outcome} in {step.duration:.1f}s" + (f": {step.detail}" if step.outcome == FAILED
                                                                          else ""))


def install_clients(clients: list[str], run_one: Callable[[str], ClientRun], *,
                    parallel: int = DEFAULT_CLIENTS_PARALLEL) -> list[ClientRun]:
    """``run_one(client)`` for every client, up to ``parallel`` clients at a time; a client whose run raises an
    AgencyStackError is reported with that error, the others go on. Results in the order of ``clients``."""
    from agencystack.errors import AgencyStackError

    def guarded(client: str) -> ClientRun:
        started = time.monotonic()
        try:
            result = run_one(client)
        except AgencyStackError as exc:
            result = ClientRun(client, error=" ".join(str(exc).split()))
        result.duration = round(time.monotonic() - started, 2)
        return result

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="client") as pool:
        return list(pool.map(guarded, clients))
