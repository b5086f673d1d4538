"""The archive container (format in the package docstring): a streaming writer, a random-access reader, verify.

Plugin authors meet two objects in the ``backup`` and ``restore`` hooks:

* :class:`ArchiveWriter` -- ``with archive.part("uploads", kind="volume") as out: out.write(...)`` streams one
  part (zstd-compressed as it arrives); ``archive.add_bytes(name, data)`` / ``archive.add_stream(name, readable)``
  are shorthands.
* :class:`ArchiveReader` -- ``archive.manifest`` (the JSON manifest as a dict), ``archive.part_names``,
  ``archive.part_info(name)``, ``archive.open(name)`` (a readable binary stream of the part's original bytes,
  checked against its checksum as it is read) and ``archive.read_bytes(name)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from agencystack.errors import BackupError

MAGIC = b"AGSBAK\x00\x01"
TRAILER_MAGIC = b"AGSBEND\x01"
TRAILER = struct.Struct(">8sQQ32s")
FORMAT_VERSION = 1
ARCHIVE_TYPE = "agencystack-backup"
PART_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
READ_SIZE = 1024 * 1024
MAX_MANIFEST = 16 * 1024 * 1024
DEFAULT_LEVEL = 3
DEFAULT_THREADS = 0  # tuned by bench/backup.py: see there


@dataclass(frozen=True)
class PartInfo:
    name: str
    kind: str
    offset: int
    size: int  # stored (compressed) bytes
    sha256: str  # of the stored bytes
    raw_size: int  # original bytes
    spec: dict[str, Any]
    compression: str = "zstd"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "spec": self.spec, "offset": self.offset, "size": self.size,
                "sha256": self.sha256, "raw_size": self.raw_size, "compression": self.compression}


# ================================================================================================================
# writing
# ================================================================================================================
class _Counter:
    """Where compressed part bytes go: into the container (hashed, counted)."""

    def __init__(self, writer: ArchiveWriter):
        self._writer = writer
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        self._writer._emit(data)
        return len(data)

    def flush(self) -> None:
        pass


class PartWriter:
    """The writable end of one part: ``write(bytes)``; closed by the ``ArchiveWriter.part`` context."""

    def __init__(self, compressed: Any, counter: _Counter):
        self._z = compressed
        self._counter = counter
        self.raw_size = 0

    def write(self, data: bytes) -> int:
        if data:
            self._z.write(data)
            self.raw_size += len(data)
        return len(data)

    def flush(self) -> None:  # the driver flushes after a stream: nothing to do before the frame ends
        pass

    def writable(self) -> bool:
        return True


class ArchiveWriter:
    """Writes one archive into ``sink`` (a binary, write-only stream: a file or an EncryptingWriter).

    ``meta`` holds the manifest's top-level facts (client, component, versions, images, created). Parts are
    written one at a time; :meth:`finish` appends the manifest and trailer and returns the manifest.
    """

    def __init__(self, sink: BinaryIO, meta: dict[str, Any], *, level: int | None = None,
                 threads: int | None = None):
        self._sink = sink
        self.meta = dict(meta)
        self.level = DEFAULT_LEVEL if level is None else level
        self.threads = DEFAULT_THREADS if threads is None else threads
        self._sha = hashlib.sha256()
        self._pos = 0
        self._parts: list[PartInfo] = []
        self._busy = False
        self._done = False
        self._emit(MAGIC)

    @property
    def client(self) -> str:
        return self.meta.get("client", "")

    @property
    def component(self) -> str:
        return self.meta.get("component", "")

    @property
    def parts(self) -> list[PartInfo]:
        return list(self._parts)

    @property
    def bytes_written(self) -> int:
        return self._pos

    def _emit(self, data: bytes) -> None:
        self._sink.write(data)
        self._sha.update(data)
        self._pos += len(data)

    @contextlib.contextmanager
    def part(self, name: str, kind: str = "custom", spec: dict[str, Any] | None = None) -> Iterator[PartWriter]:
        """Stream one part: write its original bytes to the yielded object; they are compressed as they arrive."""
        import zstandard

        if self._done:
            raise BackupError("the archive is already finished")
        if self._busy:
            raise BackupError(f"part {name!r} started while another part is being written")
        if not PART_NAME.fullmatch(name or ""):
            raise BackupError(f"invalid part name {name!r}: use lowercase letters, digits, '.', '_' or '-'")
        if any(p.name == name for p in self._parts):
            raise BackupError(f"duplicate part name {name!r}")
        self._busy = True
        offset = self._pos
        counter = _Counter(self)
        cctx = zstandard.ZstdCompressor(level=self.level, threads=self.threads, write_checksum=True)
        compressed = cctx.stream_writer(counter, closefd=False, write_size=READ_SIZE)
        part = PartWriter(compressed, counter)
        try:
            yield part
            compressed.close()  # ends the frame; flushes everything the worker thread still holds
        except BaseException:
            self._done = True  # a half-written part poisons the archive: the caller discards the file
            with contextlib.suppress(Exception):
                compressed.close()
            raise
        finally:
            self._busy = False
        self._parts.append(PartInfo(name=name, kind=kind, offset=offset, size=counter.size,
                                    sha256=counter.sha.hexdigest(), raw_size=part.raw_size, spec=dict(spec or {})))

    def add_stream(self, name: str, source: BinaryIO, kind: str = "custom", spec: dict[str, Any] | None = None) -> None:
        with self.part(name, kind, spec) as out:
            while chunk := source.read(READ_SIZE):
                out.write(chunk)

    def add_bytes(self, name: str, data: bytes, kind: str = "custom", spec: dict[str, Any] | None = None) -> None:
        with self.part(name, kind, spec) as out:
            out.write(data)

    def finish(self, **extra: Any) -> dict[str, Any]:
        """Append the manifest and the trailer; returns the manifest. The sink is not closed."""
        if self._done:
            raise BackupError("the archive cannot be finished (already finished, or a part failed)")
        self._done = True
        manifest = {"format": FORMAT_VERSION, "type": ARCHIVE_TYPE, **self.meta, **extra,
                    "parts": [p.to_json() for p in self._parts]}
        body = json.dumps(manifest, indent=1, sort_keys=False).encode()
        offset = self._pos
        self._emit(body)
        self._sink.write(TRAILER.pack(TRAILER_MAGIC, offset, len(body), self._sha.digest()))
        return manifest


# ================================================================================================================
# reading
# ================================================================================================================
class _Region(io.RawIOBase):
    """A window [offset, offset+size) of a seekable view; hashes what it reads into the given hashers."""

    def __init__(self, view: Any, offset: int, size: int, hashers: tuple[Any, ...] = ()):
        self._view, self._start, self._left = view, offset, size
        self._pos = offset
        self._hashers = hashers

    def readable(self) -> bool:
        return True

    @property
    def remaining(self) -> int:
        return self._left

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self._left:
            size = self._left
        if size <= 0:
            return b""
        self._view.seek(self._pos)
        data = self._view.read(min(size, READ_SIZE * 4))
        if not data:
            raise BackupError("archive is truncated (a part ends past the end of the file)")
        self._pos += len(data)
        self._left -= len(data)
        for h in self._hashers:
            h.update(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def drain(self) -> int:
        n = 0
        while self._left:
            n += len(self.read(READ_SIZE))
        return n


class PartStream(io.RawIOBase):
    """A part's original bytes, decompressed as read; at the end its checksum and size are checked."""

    def __init__(self, reader: ArchiveReader, info: PartInfo):
        import zstandard

        self.info = info
        self._sha = hashlib.sha256()
        self._region = _Region(reader._view, info.offset, info.size, (self._sha,))
        self._z = zstandard.ZstdDecompressor().stream_reader(self._region, read_size=READ_SIZE,
                                                             read_across_frames=False, closefd=False)
        self._raw = 0
        self._eof = False
        self._name = reader.name

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        import zstandard

        if self._eof:
            return b""
        if size is None or size < 0:
            size = READ_SIZE
        try:
            data = self._z.read(size)
        except zstandard.ZstdError as exc:
            raise BackupError(f"{self._name}: part {self.info.name!r} is damaged ({exc})") from None
        if data:
            self._raw += len(data)
            return data
        self._eof = True
        self._region.drain()
        if self._sha.hexdigest() != self.info.sha256 or self._raw != self.info.raw_size:
            raise BackupError(f"{self._name}: part {self.info.name!r} is damaged (checksum or size mismatch)")
        return b""

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class ArchiveReader:
    """Random access to an archive through a seekable plaintext ``view`` (a file, or a DecryptingView).

    Opening reads only the trailer and the manifest; :meth:`verify` reads everything.
    """

    def __init__(self, view: Any, size: int, name: str = "archive", encrypted: bool = False):
        self._view = view
        self.size = size
        self.name = name
        self.encrypted = encrypted
        if size < len(MAGIC) + TRAILER.size:
            raise BackupError(f"{name} is truncated or not an agencystack archive ({size} bytes)")
        view.seek(0)
        if view.read(len(MAGIC)) != MAGIC:
            raise BackupError(f"{name} is not an agencystack backup archive (or its first bytes are damaged)")
        view.seek(size - TRAILER.size)
        magic, offset, length, digest = TRAILER.unpack(view.read(TRAILER.size))
        if magic != TRAILER_MAGIC:
            raise BackupError(f"{name} is truncated or damaged (no trailer at its end)")
        if offset < len(MAGIC) or length > MAX_MANIFEST or offset + length + TRAILER.size != size:
            raise BackupError(f"{name} is damaged (its trailer does not match the file size)")
        self._manifest_offset, self._manifest_length, self._digest = offset, length, digest
        view.seek(offset)
        raw = view.read(length)
        try:
            manifest = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BackupError(f"{name} is damaged (its manifest is not valid JSON)") from None
        self.manifest = manifest
        self._parts = _check_manifest(manifest, offset, name)
        self._verified = False  # verify() passed (the stored bytes; decompressed too or not)
        self._beside: Any = None  # the check running beside a load (_check_beside): a Future of verify()

    # -- manifest ----------------------------------------------------------------------------------------------
    @property
    def part_names(self) -> list[str]:
        return [p.name for p in self._parts]

    @property
    def parts(self) -> list[PartInfo]:
        return list(self._parts)

    def part_info(self, name: str) -> PartInfo:
        for part in self._parts:
            if part.name == name:
                return part
        raise BackupError(f"{self.name} has no part {name!r} (it has: {', '.join(self.part_names) or 'none'})")

    @property
    def component(self) -> str:
        return self.manifest["component"]

    @property
    def client(self) -> str:
        return self.manifest["client"]

    # -- parts -------------------------------------------------------------------------------------------------
    def open(self, name: str) -> PartStream:
        return PartStream(self, self.part_info(name))

    def read_bytes(self, name: str, limit: int = 16 * 1024 * 1024) -> bytes:
        info = self.part_info(name)
        if info.raw_size > limit:
            raise BackupError(f"part {name!r} is {info.raw_size} bytes: stream it with open()")
        stream = self.open(name)
        chunks = []
        while chunk := stream.read(READ_SIZE):
            chunks.append(chunk)
        return b"".join(chunks)

    # -- verify ------------------------------------------------------------------------------------------------
    def verify(self, progress: Callable[[str, str], None] | None = None, *,
               decompress: bool = True) -> list[dict[str, Any]]:
        """Read the whole archive once: every part decompressed and checked, the container checksum too.

        Returns one entry per part (name, kind, size, raw_size, ok); raises BackupError at the first damage.
        ``decompress=False`` (what restore runs before it changes anything) checks the stored bytes only: each
        part's sha256 (of its compressed bytes, as the backup wrote them) and the container's checksum, which covers
        the manifest and its sizes; equal hashes mean the very bytes the backup wrote, so decompressing them adds no
        check, only ~2/3 of the time. The part's stream checks its sha256 and size again as it is read.
        """
        import zstandard

        container = hashlib.sha256()
        self._view.seek(0)
        container.update(self._view.read(len(MAGIC)))
        results = []
        for info in self._parts:
            if progress:
                progress(info.name, "verifying")
            part_sha = hashlib.sha256()
            region = _Region(self._view, info.offset, info.size, (part_sha, container))
            raw = 0
            try:
                if decompress:
                    with zstandard.ZstdDecompressor().stream_reader(region, read_size=READ_SIZE,
                                                                    read_across_frames=False, closefd=False) as z:
                        while chunk := z.read(READ_SIZE):
                            raw += len(chunk)
                else:
                    raw = info.raw_size
            except zstandard.ZstdError as exc:
                raise BackupError(f"{self.name}: part {info.name!r} is damaged (cannot decompress: {exc})") from None
            region.drain()
            if part_sha.hexdigest() != info.sha256:
                raise BackupError(f"{self.name}: part {info.name!r} is damaged (sha256 mismatch)")
            if raw != info.raw_size:
                raise BackupError(f"{self.name}: part {info.name!r} is damaged (decompressed to {raw} bytes, "
                                  f"the manifest says {info.raw_size})")
            results.append({"name": info.name, "kind": info.kind, "size": info.size, "raw_size": raw,
                            "sha256": info.sha256, "ok": True})
        self._view.seek(self._manifest_offset)
        container.update(self._view.read(self._manifest_length))
        if container.digest() != self._digest:
            raise BackupError(f"{self.name} is damaged (the archive checksum does not match)")
        self._verified = True
        return results

    # -- the core's one-pass restore: the stored bytes checked beside the load -----------------------------------
    def _check_beside(self, other: ArchiveReader) -> None:
        """Start ``other.verify(decompress=False)`` in a thread: ``other`` is this archive opened a second time (its
        own file position), so the parts can stream from this one meanwhile. :meth:`_await_verified` joins it."""
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agencystack-verify")
        self._beside = pool.submit(other.verify, decompress=False)
        pool.shutdown(wait=False)

    def _await_verified(self) -> None:
        """Return once every stored byte is known to be what the backup wrote (the container checksum included):
        the check started beside the load, else :meth:`verify` now. BackupError at the first damage."""
        if self._beside is not None:
            beside, self._beside = self._beside, None
            beside.result()
            self._verified = True
        if not self._verified:
            self.verify(decompress=False)

    def _settle(self) -> None:
        """Wait for a check still running beside (a restore that failed before awaiting it), its error dropped."""
        if self._beside is not None:
            beside, self._beside = self._beside, None
            with contextlib.suppress(BaseException):
                beside.result()


def _check_manifest(manifest: Any, manifest_offset: int, name: str) -> list[PartInfo]:
    def bad(why: str) -> BackupError:
        return BackupError(f"{name} has an invalid manifest ({why})")

    if not isinstance(manifest, dict) or manifest.get("type") != ARCHIVE_TYPE:
        raise bad("not an agencystack backup manifest")
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"{name} uses archive format {manifest.get('format')!r}; this agencystack reads format "
                          f"{FORMAT_VERSION}")
    for key in ("client", "component", "created"):
        if not isinstance(manifest.get(key), str):
            raise bad(f"missing {key}")
    parts = manifest.get("parts")
    if not isinstance(parts, list):
        raise bad("missing parts")
    infos, expected, seen = [], len(MAGIC), set()
    for entry in parts:
        try:
            info = PartInfo(name=str(entry["name"]), kind=str(entry["kind"]), offset=int(entry["offset"]),
                            size=int(entry["size"]), sha256=str(entry["sha256"]), raw_size=int(entry["raw_size"]),
                            spec=dict(entry.get("spec") or {}), compression=str(entry.get("compression", "zstd")))
        except (KeyError, TypeError, ValueError):
            raise bad("a part entry lacks name, kind, offset, size, sha256 or raw_size") from None
        if info.name in seen or not PART_NAME.fullmatch(info.name):
            raise bad(f"part name {info.name!r} is invalid or repeated")
        if info.compression != "zstd":
            raise bad(f"part {info.name!r} uses unknown compression {info.compression!r}")
        if info.offset != expected or info.size < 0 or info.raw_size < 0:
            raise bad(f"part {info.name!r} is not where the previous part ends")
        seen.add(info.name)
        expected = info.offset + info.size
        infos.append(info)
    if expected != manifest_offset:
        raise bad("the parts do not end where the manifest starts")
    return infos


# ================================================================================================================
# files
# ================================================================================================================
def sniff(path: Path) -> str:
    """``"plain"``, ``"encrypted"`` or ``"unknown"`` from the first bytes of ``path``."""
    from agencystack.backup.crypto import ENC_MAGIC

    with open(path, "rb") as handle:
        head = handle.read(8)
    return "plain" if head == MAGIC else "encrypted" if head == ENC_MAGIC else "unknown"


@contextlib.contextmanager
def open_archive(path: Path | str, key: Any = None) -> Iterator[ArchiveReader]:
    """Open an archive file (plain, or encrypted with ``key``); BackupError if missing, damaged or not ours."""
    from agencystack.backup.crypto import ENC_MAGIC, DecryptingView

    path = Path(path)
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise BackupError(f"archive {path} does not exist") from None
    except IsADirectoryError:
        raise BackupError(f"archive {path} is a directory") from None
    except PermissionError:
        raise BackupError(f"archive {path} is not readable (permission denied)") from None
    with handle:
        head = handle.read(8)
        handle.seek(0)
        if head == ENC_MAGIC:
            view = DecryptingView(handle, key, name=path.name)
            yield ArchiveReader(view, view.size, name=path.name, encrypted=True)
        else:
            yield ArchiveReader(handle, os.fstat(handle.fileno()).st_size, name=path.name)
