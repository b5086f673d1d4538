"""``agencystack move -c CLIENT --to HOST``: a client's components from the host it is placed on to another.

Steps, each recorded in the client's move journal (``<root>/clients/<client>/move.json``, 0600) before the next
starts, so that a move interrupted at any point is resumed by running the same command again, or undone with
``--rollback``:

1. ``backup``    every installed component of the client is backed up on the source (archives in each component's
                 ``backups/``: they are kept, whatever happens next), each archive verified completely;
2. ``restore``   the client's placement switches to the target, and each archive is restored there (the restore
                 brings settings, volumes and databases, then deploys and waits for health and probes);
3. ``check``     every component's status on the target must be running;
4. ``stopped``   the source's containers are stopped, not removed: its volumes stay as they were.

``--finalize`` then removes the source's containers, networks and volumes and closes the journal. ``--rollback``
(before finalize) puts the client back: placement to the source, the source started again, what the target got
removed. The source keeps running until the target is healthy; what is written on the source after its backup is
not carried over (stop writers first: a move is a short maintenance window, as the README says).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agencystack.errors import ComponentError, UsageError

if TYPE_CHECKING:
    from agencystack.context import LifecycleContext
    from agencystack.invocation import Invocation

STEPS = ("backup", "restore", "check", "stopped")


@dataclass
class Journal:
    client: str
    source: str
    target: str
    step: str = "backup"
    archives: dict[str, str] = field(default_factory=dict)  # component -> archive path
    restored: list[str] = field(default_factory=list)
    started_at: str = ""

    @classmethod
    def load(cls, path: Path) -> Journal | None:
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None

    def save(self, path: Path) -> None:
        from dataclasses import asdict

        from agencystack.state import atomic_write

        atomic_write(path, json.dumps(asdict(self), indent=2) + "\n")


def _components(invocation: Invocation, client: str) -> list[str]:
    """The client's installed components, those others require first."""
    root = invocation.global_settings.state_root
    names = [found.component for found in root.installed(client)]
    known = invocation.plugins.components
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        for needed in getattr(known.get(name), "requires", ()):
            if needed in names:
                visit(needed)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered


def _context(invocation: Invocation, component: str, client: str, host: str, action: str) -> LifecycleContext:
    return invocation.context(component, action, client=client, host=host, relocating=True)


def move(invocation: Invocation, client: str, target: str | None, *, finalize: bool = False,
         rollback: bool = False) -> dict[str, Any]:
    """Move (or resume, finalize, roll back the move of) ``client``; returns what was done."""
    from agencystack import names, placement

    client = names.client_id(client)
    root = invocation.global_settings.state_root
    fleet = invocation.global_settings.fleet()
    path = root.move_file(client)
    journal = Journal.load(path)
    if finalize or rollback:
        if journal is None:
            raise UsageError(f"client {client!r} has no move in progress")
        if target is not None and target != journal.target:
            raise UsageError(f"the move in progress takes {client!r} to {journal.target!r}, not {target!r}")
        return _finalize(invocation, journal, path) if finalize else _rollback(invocation, journal, path)
    if target is None:
        raise UsageError("name the target host: --to HOST")
    fleet.get(target)
    if journal is not None and journal.target != target:
        raise UsageError(f"a move of {client!r} to {journal.target!r} is in progress: run it again with --to "
                         f"{journal.target} to resume, or --rollback")
    if journal is None:
        components = _components(invocation, client)
        if not components:
            raise UsageError(f"client {client!r} has no installed component to move")
        source = placement.host_of(root, client)
        fleet.get(source)
        if source == target:
            raise UsageError(f"client {client!r} is already on host {target!r}")
        from agencystack.state import now

        journal = Journal(client=client, source=source, target=target, started_at=now())
        journal.save(path)
    elif journal.step == "stopped":
        return {"client": client, "from": journal.source, "to": journal.target, "step": journal.step,
                "summary": f"{client} is already on {journal.target}; the source is stopped ('agencystack move -c "
                           f"{client} --finalize' removes it)"}
    return _run(invocation, journal, path)


def _run(invocation: Invocation, journal: Journal, path: Path) -> dict[str, Any]:
    from agencystack import lifecycle, placement
    from agencystack.backup import operations

    root = invocation.global_settings.state_root
    client = journal.client
    components = list(journal.archives) if journal.step != "backup" else _components(invocation, client)
    say = invocation.progress
    if journal.step == "backup":
        for component in components:
            if component in journal.archives and Path(journal.archives[component]).is_file():
                continue
            say(component, f"backing up on {journal.source}")
            context = _context(invocation, component, client, journal.source, "backup")
            result = operations.backup(context)
            journal.archives[component] = result.archive
            journal.save(path)
        for component, archive in journal.archives.items():
            say(component, "verifying the archive")
            operations.verify(Path(archive))
        journal.step = "restore"
        journal.save(path)
    if journal.step == "restore":
        placement.record(root, client, journal.target, timeout=invocation.global_settings.lock_timeout,
                         moved_from=journal.source)
        for component, archive in journal.archives.items():
            say(component, f"restoring on {journal.target}")
            context = _context(invocation, component, client, journal.target, "restore")
            operations.restore(context, Path(archive))
            if component not in journal.restored:
                journal.restored.append(component)
                journal.save(path)
        journal.step = "check"
        journal.save(path)
    if journal.step == "check":
        for component in journal.archives:
            context = _context(invocation, component, client, journal.target, "status")
            status = lifecycle.status(context)
            if status.state.value != "running":
                raise ComponentError(f"{component} for {client} on {journal.target} is {status.state.value} after "
                                     f"the restore ({status.message or 'see agencystack status'}); the source still "
                                     f"runs: fix it and run the move again, or --rollback")
        for component in reversed(list(journal.archives)):
            say(component, f"stopping on {journal.source} (kept: --finalize removes it)")
            context = _context(invocation, component, client, journal.source, "plan")
            context.engine.stop(context.deployment(), context.progress)
        journal.step = "stopped"
        journal.save(path)
    return {"client": client, "from": journal.source, "to": journal.target, "step": journal.step,
            "archives": journal.archives,
            "summary": f"{client} moved from {journal.source} to {journal.target}; the source is stopped, not "
                       f"deleted ('agencystack move -c {client} --finalize' removes it, --rollback moves it back)"}


def _finalize(invocation: Invocation, journal: Journal, path: Path) -> dict[str, Any]:
    if journal.step != "stopped":
        raise UsageError(f"the move of {journal.client!r} is not done yet (step {journal.step}): run it again with "
                         f"--to {journal.target} first")
    say = invocation.progress
    for component in reversed(list(journal.archives)):
        say(component, f"removing from {journal.source}")
        context = _context(invocation, component, journal.client, journal.source, "plan")
        context.engine.remove(context.deployment(), purge=True, progress=context.progress)
    path.unlink()
    return {"client": journal.client, "from": journal.source, "to": journal.target, "step": "finalized",
            "summary": f"{journal.client}: the source on {journal.source} is removed; the move is done"}


def _rollback(invocation: Invocation, journal: Journal, path: Path) -> dict[str, Any]:
    from agencystack import lifecycle, placement

    root = invocation.global_settings.state_root
    say = invocation.progress
    if journal.step != "backup":
        for component in reversed(list(journal.archives)):
            say(component, f"removing from {journal.target}")
            context = _context(invocation, component, journal.client, journal.target, "plan")
            context.engine.remove(context.deployment(), purge=True, progress=context.progress)
        placement.record(root, journal.client, journal.source, timeout=invocation.global_settings.lock_timeout,
                         moved_from=journal.target)
        for component in journal.archives:
            say(component, f"starting again on {journal.source}")
            lifecycle.install(_context(invocation, component, journal.client, journal.source, "install"))
    path.unlink()
    return {"client": journal.client, "from": journal.source, "to": journal.target, "step": "rolled-back",
            "summary": f"{journal.client} stays on {journal.source}; the move was rolled back (archives kept)"}
