"""What ``agencystack backup``, ``backup list``, ``backup verify`` and ``restore`` run (the CLI only parses).

Each function validates its input first (bad input: UsageError, exit 2, nothing written), then works; any failure
while writing an archive becomes one BackupError line (exit 5) and leaves no file behind; a restore changes nothing
until the whole archive has been verified and judged to fit the target.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agencystack.errors import BackupError, EngineUnreachable, LockTimeout, UsageError

if TYPE_CHECKING:
    from agencystack.context import LifecycleContext
    from agencystack.state import StateRoot


@dataclass
class BackupResult:
    archive: str
    client: str
    component: str
    size: int
    encrypted: bool
    parts: list[dict[str, Any]]
    deleted: list[str] = field(default_factory=list)
    summary: str = ""
    seconds: float = 0.0


def default_destination(context: LifecycleContext) -> Path:
    """``<root>/clients/<client>/<component>/backups`` (the component directory's ``backups``)."""
    return context.dir.backups


def check_retention(keep_last: int | None, keep_days: float | None) -> None:
    if keep_last is not None and keep_last < 1:
        raise UsageError(f"--keep-last must be at least 1 (got {keep_last}): the new archive is always kept")
    if keep_days is not None and keep_days <= 0:
        raise UsageError(f"--keep-days must be more than 0 (got {keep_days:g})")


def _meta(context: LifecycleContext, created: datetime) -> dict[str, Any]:
    from agencystack.version import __version__

    meta: dict[str, Any] = {
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"), "client": context.client,
        "component": context.component.name, "component_version": context.component.version or "",
        "core_version": __version__, "project": context.project,
    }
    with contextlib.suppress(Exception):
        meta["images"] = {s.name: s.image for s in context.stack().services}
    return meta


def backup(context: LifecycleContext, *, dest: Path | None = None, keep_last: int | None = None,
           keep_days: float | None = None, key_file: Path | None = None, level: int | None = None,
           threads: int | None = None) -> BackupResult:
    """Back up one (client, component) into a new archive; then apply retention to its older archives."""
    import time

    from agencystack.backup import files
    from agencystack.backup.archive import ArchiveWriter
    from agencystack.backup.crypto import EncryptingWriter, key_file_too_open, load_key
    from agencystack import lifecycle

    check_retention(keep_last, keep_days)
    if dest is not None:  # bad input, named before anything is read, locked or asked of the engine
        files.check_destination(Path(dest))
    key = load_key(key_file) if key_file else None
    if key is not None:
        context.redactor.add(*key.text_forms())
        if key_file_too_open(key_file):
            context.log.warning("the key file may be read by group or others: chmod 600 it", key_file=str(key_file))
    if not context.dir.installed:
        raise UsageError(f"{context.component.name} is not installed for client {context.client}: nothing to back up")
    directory = files.ensure_destination(Path(dest) if dest else default_destination(context))
    files.remove_stale_partials(directory, context.component.name, context.client)
    started = time.monotonic()
    created = datetime.now(UTC)
    final = files.new_name(directory, context.component.name, context.client, created, key is not None)
    options = {k: v for k, v in (("level", level), ("threads", threads)) if v is not None}
    try:
        with files.AtomicFile(final) as target:
            sink = EncryptingWriter(target.handle, key) if key is not None else target.handle
            writer = ArchiveWriter(sink, _meta(context, created), **options)
            outcome = lifecycle.backup(context, writer)
            if not writer.parts:
                raise BackupError("the backup hook wrote no part")
            manifest = writer.finish()
            if key is not None:
                sink.close()
            target.commit()
    except (UsageError, EngineUnreachable, LockTimeout, BackupError):
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        from agencystack.backup.parts import describe_failure

        raise BackupError(context.redactor.text(
            f"backup of {context.component.name} for {context.client} failed: {describe_failure(exc)} "
            "(no archive written)")) from None
    deleted = files.apply_retention(directory, context.component.name, context.client, keep_last=keep_last,
                                    keep_days=keep_days, protect=final)
    size = final.stat().st_size
    result = BackupResult(
        archive=str(final), client=context.client, component=context.component.name, size=size,
        encrypted=key is not None, deleted=[str(p) for p in deleted],
        parts=[{k: p[k] for k in ("name", "kind", "size", "raw_size", "sha256")} for p in manifest["parts"]],
        summary=getattr(outcome, "summary", "") or "", seconds=round(time.monotonic() - started, 3))
    context.log.info("archive written", archive=str(final), size=size, encrypted=result.encrypted,
                     deleted=len(deleted), console=False)  # the command prints the result itself
    from agencystack import dashboard_registry
    from agencystack.state import now

    context.dir.note(last_backup={"archive": str(final), "at": now(), "size": size,
                                  "state": "encrypted" if key is not None else "ok"})
    dashboard_registry.refresh(context)  # the archive is complete only now: the dashboard shows its size
    return result


# ================================================================================================================
# verify / list
# ================================================================================================================
def verify(path: Path, key_file: Path | None = None, progress: Any = None) -> dict[str, Any]:
    """Check an archive completely (every byte read, every part decompressed). BackupError when damaged."""
    from agencystack.backup.archive import open_archive
    from agencystack.backup.crypto import load_key

    key = load_key(key_file) if key_file else None
    with open_archive(path, key) as reader:
        parts = reader.verify(progress)
        manifest = reader.manifest
        return {"archive": str(path), "ok": True, "encrypted": reader.encrypted, "client": manifest["client"],
                "component": manifest["component"], "component_version": manifest.get("component_version", ""),
                "core_version": manifest.get("core_version", ""), "created": manifest["created"],
                "images": manifest.get("images", {}), "size": Path(path).stat().st_size, "parts": parts}


def listing(root: StateRoot, client: str, component: str | None = None,
            dest: Path | None = None) -> list[dict[str, Any]]:
    """Archives of ``client`` (one component, or all of the client's components), newest first."""
    from agencystack.backup import files

    if dest is not None:
        dest = Path(dest).expanduser()
        if not dest.is_dir():
            raise UsageError(f"{dest} is not a directory")
        directories = [dest]
    else:
        directories = root.backup_dirs(client, component)
    found = [a for d in directories for a in files.archives(d, component, client)]
    found.sort(key=lambda a: (a.component, a.created, a.seq), reverse=True)
    return [files.describe(a.path) for a in found]


# ================================================================================================================
# restore
# ================================================================================================================
def _major(version: Any) -> int | None:
    import re

    match = re.match(r"\s*v?(\d+)", str(version or ""))
    return int(match.group(1)) if match else None


def compatibility(manifest: dict[str, Any], context: LifecycleContext) -> list[str]:
    """Why the archive may not fit the target: another component, or a different major version."""
    from agencystack.version import __version__

    problems = []
    if manifest["component"] != context.component.name:
        problems.append(f"the archive holds component {manifest['component']!r}, not {context.component.name!r}")
    for what, theirs, ours in (("component", manifest.get("component_version"), context.component.version),
                               ("agencystack", manifest.get("core_version"), __version__)):
        a, b = _major(theirs), _major(ours)
        if a is not None and b is not None and a != b:
            problems.append(f"it was made by {what} {theirs}, this is {ours} (major versions differ)")
    return problems


def restore(context: LifecycleContext, path: Path, *, key_file: Path | None = None, force: bool = False) -> Any:
    """Check the archive fits, run the restore hook (lock held) and report. The whole archive is verified before
    any live change (every stored byte hashed against the manifest, the container checksum: the bytes the backup
    wrote, without decompressing them, which ``backup verify`` also does): before a component's own ``restore``
    runs; for the core's default, beside its load into staging (a second reader of the file), awaited before the
    swap (:func:`agencystack.backup.parts.restore_parts`)."""
    from agencystack.backup.archive import open_archive
    from agencystack.backup.crypto import load_key
    from agencystack import lifecycle

    key = load_key(key_file) if key_file else None
    if key is not None:
        context.redactor.add(*key.text_forms())
    with open_archive(path, key) as reader, contextlib.ExitStack() as beside:
        if context.plugins.own_restore(context.component.name):
            context.progress("archive", "verifying every part")
            reader.verify(decompress=False)  # every stored byte hashed before the component's own restore runs
        else:  # the core's default loads into staging while a second reader checks the stored bytes; the load
            # awaits the check before any live change (restore_parts); an early failure still waits for it (LIFO:
            # the check ends before its file closes)
            second = beside.enter_context(open_archive(path, key))
            beside.callback(reader._settle)
            reader._check_beside(second)
        problems = compatibility(reader.manifest, context)
        if problems and not force:
            raise BackupError(f"{Path(path).name}: {'; '.join(problems)} (--force restores it anyway)")
        for problem in problems:
            context.log.warning(f"restoring despite: {problem}")
        try:
            outcome = lifecycle.restore(context, reader)
        except (UsageError, LockTimeout, EngineUnreachable, KeyboardInterrupt):
            raise
        except Exception as exc:
            from agencystack.backup.parts import describe_failure

            started = "restored_from" in context.facts  # set by the default restore when it starts changing things
            hint = (f"; {context.component.name} may be left stopped or partly restored: fix the cause and run the "
                    "same restore again") if started else "; nothing was changed"
            raise BackupError(context.redactor.text(f"restore of {context.component.name} for {context.client} "
                                                    f"failed: {describe_failure(exc)}{hint}")) from None
    if problems and outcome is not None:
        outcome.details["forced_despite"] = problems
    return outcome
