"""Archive files on disk: names, the atomic temporary file, listing and retention.

Names: ``<component>_<client>_<YYYYmmddTHHMMSSZ>[-N].agsb[.enc]`` (UTC). Neither a component name nor a client
id may contain ``_``, so a name parses back unambiguously; ``-N`` disambiguates backups within one second. Only
files matching that pattern are ever listed or deleted by retention.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from agencystack.errors import UsageError

SUFFIX = ".agsb"
ENC_SUFFIX = ".agsb.enc"
STAMP = "%Y%m%dT%H%M%SZ"
NAME = re.compile(r"(?P<component>[a-z][a-z0-9-]*)_(?P<client>[a-z0-9-]+)_(?P<stamp>\d{8}T\d{6}Z)"
                  r"(?:-(?P<seq>\d+))?\.agsb(?P<enc>\.enc)?")
PARTIAL = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.partial")


@dataclass(frozen=True)
class ArchiveFile:
    path: Path
    component: str
    client: str
    created: datetime
    seq: int
    encrypted: bool

    @property
    def order(self) -> tuple[datetime, int]:
        return (self.created, self.seq)


def parse(path: Path) -> ArchiveFile | None:
    match = NAME.fullmatch(path.name)
    if not match:
        return None
    created = datetime.strptime(match["stamp"], STAMP).replace(tzinfo=UTC)
    return ArchiveFile(path, match["component"], match["client"], created, int(match["seq"] or 0),
                       bool(match["enc"]))


def new_name(directory: Path, component: str, client: str, when: datetime, encrypted: bool) -> Path:
    """A name not yet taken in ``directory`` (nor by a partial file of it)."""
    base = f"{component}_{client}_{when.astimezone(UTC).strftime(STAMP)}"
    suffix = ENC_SUFFIX if encrypted else SUFFIX
    for seq in range(0, 10_000):
        stem = f"{base}{f'-{seq}' if seq else ''}"
        taken = [directory / f"{stem}{s}" for s in (SUFFIX, ENC_SUFFIX)]
        if not any(p.exists() for p in taken) and not any(directory.glob(f".{stem}.agsb*.partial")):
            return directory / f"{stem}{suffix}"
    raise UsageError(f"too many backups named {base}* in {directory}")


def check_destination(path: Path) -> Path:
    """The destination ``path`` as an absolute path, if a backup can be written there: an existing writable
    directory, or a missing one whose nearest existing parent is a writable directory. UsageError naming the path
    otherwise (nothing is created: :func:`ensure_destination` does that)."""
    path = path.expanduser().absolute()
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"backup destination {path} is not a directory" if probe == path else
                         f"cannot create backup destination {path}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"backup destination {path} is not writable" if probe == path else
                         f"cannot create backup destination {path}: {probe} is not writable")
    return path


def ensure_destination(path: Path) -> Path:
    """Create a missing destination (and missing parents) with mode 0700; an existing one is left as it is. A
    destination that cannot be made is bad input (UsageError naming it), and what was made on the way is removed."""
    path = check_destination(path)
    if path.exists():
        return path
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    made: list[Path] = []
    try:
        for directory in reversed(missing):
            directory.mkdir(mode=0o700)
            made.append(directory)
            os.chmod(directory, 0o700)
    except OSError as exc:
        for directory in reversed(made):
            with contextlib.suppress(OSError):
                directory.rmdir()
        reason = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or type(exc).__name__)
        raise UsageError(f"cannot create backup destination {path} ({reason.lower()})") from None
    return path
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    try:
        for directory in reversed(missing):
            directory.mkdir(mode=0o700)
            os.chmod(directory, 0o700)
    except PermissionError:
        raise UsageError(f"cannot create backup destination {path} (permission denied)") from None
    return path


class AtomicFile:
    """A new file written under a temporary name (0600) and renamed into place by :meth:`commit`.

    Leaving the ``with`` block without ``commit`` (an error, an interrupt) deletes the temporary file.
    """

    def __init__(self, final: Path):
        self.final = final
        self.temp = final.with_name(f".{final.name}.{os.getpid()}.partial")
        fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)
        self.handle: BinaryIO = os.fdopen(fd, "wb", buffering=1024 * 1024)
        self.committed = False

    def __enter__(self) -> AtomicFile:
        return self

    def commit(self) -> Path:
        from agencystack.state import fsync_dir

        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.rename(self.temp, self.final)
        self.committed = True
        fsync_dir(self.final.parent)
        return self.final

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            with contextlib.suppress(Exception):
                self.handle.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp)


def remove_stale_partials(directory: Path, component: str, client: str) -> list[Path]:
    """Delete temporary files of this (component, client) left by a killed backup (their process is gone)."""
    removed = []
    for path in directory.glob(f".{component}_{client}_*.partial"):
        match = PARTIAL.fullmatch(path.name)
        if not match or not NAME.fullmatch(match["name"]):
            continue
        pid = int(match["pid"])
        if pid != os.getpid() and _alive(pid):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def archives(directory: Path, component: str | None = None, client: str | None = None) -> list[ArchiveFile]:
    """Archives in ``directory`` (optionally of one component and/or client), newest first."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        info = parse(path)
        if info is None or not path.is_file():
            continue
        if (component and info.component != component) or (client and info.client != client):
            continue
        found.append(info)
    return sorted(found, key=lambda a: a.order, reverse=True)


def expired(found: list[ArchiveFile], *, keep_last: int | None, keep_days: float | None, now: datetime,
            protect: Path | None = None) -> list[ArchiveFile]:
    """What retention deletes: archives neither among the newest ``keep_last`` nor newer than ``keep_days`` days.

    Both rules keep (an archive is kept if either keeps it); with neither, nothing is deleted. ``protect`` (the
    archive just written) is never deleted.
    """
    if keep_last is None and keep_days is None:
        return []
    ordered = sorted(found, key=lambda a: a.order, reverse=True)
    keep = set()
    if keep_last is not None:
        keep.update(a.path for a in ordered[:keep_last])
    if keep_days is not None:
        cutoff = now - timedelta(days=keep_days)
        keep.update(a.path for a in ordered if a.created >= cutoff)
    if protect is not None:
        keep.add(protect)
    return [a for a in ordered if a.path not in keep]


def apply_retention(directory: Path, component: str, client: str, *, keep_last: int | None,
                    keep_days: float | None, protect: Path, now: datetime | None = None) -> list[Path]:
    """Delete the expired archives of (component, client) in ``directory``; returns what was deleted."""
    doomed = expired(archives(directory, component, client), keep_last=keep_last, keep_days=keep_days,
                     now=now or datetime.now(UTC), protect=protect)
    deleted = []
    for archive in doomed:
        with contextlib.suppress(FileNotFoundError):
            archive.path.unlink()
            deleted.append(archive.path)
    return deleted


def describe(path: Path) -> dict[str, Any]:
    """What ``backup list`` shows for one file: from its name, plus its manifest when it is not encrypted.

    Only the trailer and the manifest are read (use verify to check every byte)."""
    from agencystack.backup.archive import open_archive, sniff
    from agencystack.errors import BackupError

    info = parse(path)
    entry: dict[str, Any] = {
        "archive": str(path), "name": path.name, "component": info.component if info else None,
        "client": info.client if info else None,
        "created": info.created.strftime("%Y-%m-%dT%H:%M:%SZ") if info else None,
        "size": path.stat().st_size, "encrypted": bool(info and info.encrypted), "state": "ok", "parts": None,
    }
    try:
        kind = sniff(path)
        if kind == "encrypted":
            entry.update(encrypted=True, state="encrypted")
        elif kind == "unknown":
            entry["state"] = "damaged: not an agencystack archive"
        else:
            with open_archive(path) as reader:
                m = reader.manifest
                entry.update(component_version=m.get("component_version", ""),
                             core_version=m.get("core_version", ""),
                             parts=[{"name": p.name, "kind": p.kind, "size": p.size, "raw_size": p.raw_size}
                                    for p in reader.parts])
    except BackupError as exc:
        entry["state"] = f"damaged: {exc}"
    except OSError as exc:
        entry["state"] = f"unreadable: {exc.strerror or exc}"
    return entry
