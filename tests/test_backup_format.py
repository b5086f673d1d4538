"""The archive format, encryption, names and retention: pure tests, no engine."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agencystack.backup import files
from agencystack.backup.archive import MAGIC, TRAILER, ArchiveWriter, open_archive
from agencystack.backup.crypto import EncryptingWriter, Key, load_key
from agencystack.errors import BackupError, UsageError

META = {"client": "acme", "component": "demo", "created": "2026-11-26T10:00:00Z", "component_version": "1.2.0",
        "core_version": "0.1.0"}
KEY = Key(b"k" * 44, "test.key")


def payload(n: int, seed: int = 0) -> bytes:
    """Half random, half repetitive: compresses like a dump."""
    rnd = hashlib.sha256(str(seed).encode()).digest() * (n // 64 + 1)
    return bytes(a ^ (i % 7) for i, a in enumerate(rnd[:n // 2])) + b"INSERT INTO t VALUES (42);\n" * (n // 54)


def write_archive(path: Path, parts: dict[str, bytes], key: Key | None = None, chunk: int = 4096) -> dict:
    with open(path, "wb") as handle:
        sink = EncryptingWriter(handle, key, chunk_size=chunk) if key else handle
        writer = ArchiveWriter(sink, META)
        for name, data in parts.items():
            with writer.part(name, kind="custom", spec={"n": len(data)}) as out:
                for i in range(0, len(data), 10_000):  # streamed in pieces, like an exec stream
                    out.write(data[i:i + 10_000])
        manifest = writer.finish()
        if key:
            sink.close()
    return manifest


PARTS = {"db": payload(300_000, 1), "redis": payload(50_000, 2), "env": b"DEMO_SECRET=abc\n", "empty": b""}


@pytest.fixture(params=[False, True], ids=["plain", "encrypted"])
def archive(request, tmp_path):
    key = KEY if request.param else None
    path = tmp_path / "demo_acme_20261126T100000Z.agsb"
    manifest = write_archive(path, PARTS, key)
    return path, key, manifest


def test_round_trip_every_part_and_manifest(archive):
    path, key, manifest = archive
    assert [p["name"] for p in manifest["parts"]] == list(PARTS)
    with open_archive(path, key) as reader:
        assert reader.encrypted == (key is not None)
        report = reader.verify()
        assert [r["name"] for r in report] == list(PARTS) and all(r["ok"] for r in report)
        for name, data in PARTS.items():
            assert reader.read_bytes(name) == data
            info = reader.part_info(name)
            assert info.raw_size == len(data) and len(info.sha256) == 64 and info.spec == {"n": len(data)}
        m = reader.manifest
        assert (m["client"], m["component"], m["component_version"], m["format"]) == ("acme", "demo", "1.2.0", 1)


def test_plain_layout_is_as_documented(tmp_path):
    path = tmp_path / "a.agsb"
    write_archive(path, {"env": b"X=1\n"})
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    magic, offset, length, digest = TRAILER.unpack(data[-TRAILER.size:])
    manifest = json.loads(data[offset:offset + length])
    assert manifest["parts"][0]["offset"] == len(MAGIC)
    assert hashlib.sha256(data[:offset + length]).digest() == digest
    part = manifest["parts"][0]
    import zstandard

    stored = data[part["offset"]:part["offset"] + part["size"]]
    assert hashlib.sha256(stored).hexdigest() == part["sha256"]
    assert zstandard.ZstdDecompressor().decompressobj().decompress(stored) == b"X=1\n"  # recoverable by hand


def _damage_points(path: Path, key) -> dict[str, int]:
    """A byte inside each part, the manifest and the trailer (offsets in the file)."""
    size = path.stat().st_size
    if key is not None:  # encrypted: spread over the ciphertext
        return {f"at {frac:.2f}": int(size * frac) for frac in (0.02, 0.3, 0.6, 0.9, 0.999)}
    with open_archive(path) as reader:
        points = {f"part {p.name}": p.offset + p.size // 2 for p in reader.parts if p.size}
    points["magic"] = 3
    points["manifest"] = size - TRAILER.size - 40
    points["trailer offset"] = size - TRAILER.size + 12
    points["trailer checksum"] = size - 5
    return points


@pytest.mark.parametrize("decompress", [True, False], ids=["deep", "hashes-restore-checks"])
def test_a_flipped_byte_anywhere_is_detected_by_verify(archive, tmp_path, decompress):
    path, key, _ = archive
    original = path.read_bytes()
    for where, pos in _damage_points(path, key).items():
        bad = bytearray(original)
        bad[pos] ^= 0x01
        damaged = tmp_path / "damaged.agsb"
        damaged.write_bytes(bytes(bad))
        with pytest.raises(BackupError) as caught:
            with open_archive(damaged, key) as reader:
                reader.verify(decompress=decompress)
        assert "\n" not in str(caught.value), where


@pytest.mark.parametrize("decompress", [True, False], ids=["deep", "hashes-restore-checks"])
def test_a_flipped_byte_in_a_part_names_the_part(tmp_path, decompress):
    path = tmp_path / "a.agsb"
    write_archive(path, PARTS)
    with open_archive(path) as reader:
        info = reader.part_info("redis")
    bad = bytearray(path.read_bytes())
    bad[info.offset + info.size // 2] ^= 0x40
    path.write_bytes(bytes(bad))
    with pytest.raises(BackupError, match="part 'redis' is damaged"):
        with open_archive(path) as reader:
            reader.verify(decompress=decompress)


@pytest.mark.parametrize("decompress", [True, False], ids=["deep", "hashes-restore-checks"])
def test_a_truncated_archive_is_detected(archive, tmp_path, decompress):
    path, key, _ = archive
    original = path.read_bytes()
    for cut in (1, 10, TRAILER.size, TRAILER.size + 1, len(original) // 3, len(original) - 9):
        truncated = tmp_path / "truncated.agsb"
        truncated.write_bytes(original[:-cut])
        with pytest.raises(BackupError):
            with open_archive(truncated, key) as reader:
                reader.verify(decompress=decompress)


def test_streaming_a_part_that_fails_its_checksum_raises(tmp_path):
    """open() checks as it reads (a file changed after verify is still caught)."""
    path = tmp_path / "a.agsb"
    write_archive(path, {"db": payload(200_000)})
    with open_archive(path) as reader:
        info = reader.part_info("db")
    bad = bytearray(path.read_bytes())
    bad[info.offset + info.size - 3] ^= 0x01  # inside the zstd checksum or the last block
    path.write_bytes(bytes(bad))
    with open_archive(path) as reader:
        stream = reader.open("db")
        with pytest.raises(BackupError, match="part 'db' is damaged"):
            while stream.read(65536):
                pass


def test_wrong_key_missing_key_and_short_key(tmp_path):
    path = tmp_path / "a.agsb.enc"
    write_archive(path, PARTS, KEY)
    with pytest.raises(BackupError, match="does not open"):
        with open_archive(path, Key(b"x" * 44, "other.key")):
            pass
    with pytest.raises(UsageError, match="encrypted: pass its key"):
        with open_archive(path, None):
            pass
    short = tmp_path / "short.key"
    short.write_text("too-short\n")
    with pytest.raises(UsageError, match="at least 32"):
        load_key(short)
    with pytest.raises(UsageError, match="does not exist"):
        load_key(tmp_path / "nope.key")


def test_encryption_hides_the_content_and_the_key_never_shows(tmp_path):
    path = tmp_path / "a.agsb.enc"
    write_archive(path, {"env": b"DEMO_SECRET=super-secret-value-123\n" * 50}, KEY)
    data = path.read_bytes()
    assert b"super-secret-value" not in data and b"DEMO_SECRET" not in data and b'"parts"' not in data
    assert "k" * 44 not in repr(KEY) and "k" * 44 not in str(KEY)


def test_reordered_encrypted_chunks_fail(tmp_path):
    path = tmp_path / "a.agsb.enc"
    write_archive(path, {"db": os.urandom(100_000)}, KEY, chunk=4096)
    data = bytearray(path.read_bytes())
    stride, head = 4096 + 16, 44
    first, second = data[head:head + stride], data[head + stride:head + 2 * stride]
    data[head:head + stride], data[head + stride:head + 2 * stride] = second, first
    path.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="fails authentication"):
        with open_archive(path, KEY) as reader:
            reader.verify()


def test_writer_memory_stays_flat_for_a_large_part():
    """A 64 MB part streamed through the writer allocates far less than the part (nothing buffered whole)."""
    sink = _NullSink()
    tracemalloc.start()
    writer = ArchiveWriter(sink, META)
    with writer.part("big") as out:
        for _ in range(64):
            out.write(os.urandom(1 << 20))
    writer.finish()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sink.size > 64 << 20
    assert peak < 8 << 20, f"peak Python allocation {peak} bytes while writing 64 MB"


class _NullSink(io.RawIOBase):
    size = 0

    def write(self, data) -> int:
        self.size += len(data)
        return len(data)


def test_part_names_are_validated_and_unique(tmp_path):
    writer = ArchiveWriter(_NullSink(), META)
    with pytest.raises(BackupError, match="invalid part name"):
        writer.add_bytes("../etc", b"")
    writer.add_bytes("env", b"x")
    with pytest.raises(BackupError, match="duplicate"):
        writer.add_bytes("env", b"y")


def test_a_failed_part_poisons_the_writer():
    writer = ArchiveWriter(_NullSink(), META)
    with pytest.raises(RuntimeError):
        with writer.part("db") as out:
            out.write(b"partial")
            raise RuntimeError("pg_dump died")
    with pytest.raises(BackupError):
        writer.finish()


def test_not_an_archive(tmp_path):
    junk = tmp_path / "junk.agsb"
    junk.write_bytes(os.urandom(500))
    with pytest.raises(BackupError, match="not an agencystack"):
        with open_archive(junk):
            pass
    with pytest.raises(BackupError, match="does not exist"):
        with open_archive(tmp_path / "missing.agsb"):
            pass


# ---------------------------------------------------------------------------------------------------------------
# names, atomic files, retention
# ---------------------------------------------------------------------------------------------------------------
def test_names_parse_back_and_never_collide(tmp_path):
    when = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
    first = files.new_name(tmp_path, "posthog", "acme-eu", when, encrypted=False)
    assert first.name == "posthog_acme-eu_20261126T100000Z.agsb"
    first.write_bytes(b"x")
    second = files.new_name(tmp_path, "posthog", "acme-eu", when, encrypted=True)
    assert second.name == "posthog_acme-eu_20261126T100000Z-1.agsb.enc"
    info = files.parse(second)
    assert (info.component, info.client, info.created, info.seq, info.encrypted) == (
        "posthog", "acme-eu", when, 1, True)
    assert files.parse(tmp_path / "notes.txt") is None


def test_atomic_file_is_0600_and_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "demo_acme_20261126T100000Z.agsb"
    with pytest.raises(RuntimeError):
        with files.AtomicFile(final) as target:
            target.handle.write(b"half")
            assert oct(os.stat(target.temp).st_mode & 0o777) == "0o600"
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with files.AtomicFile(final) as target:
        target.handle.write(b"whole")
        target.commit()
    assert [p.name for p in tmp_path.iterdir()] == [final.name]
    assert oct(final.stat().st_mode & 0o777) == "0o600"


def test_stale_partials_of_dead_processes_are_removed(tmp_path):
    dead = tmp_path / ".demo_acme_20261126T100000Z.agsb.999999999.partial"
    dead.write_bytes(b"x")
    alive = tmp_path / f".demo_acme_20261126T100001Z.agsb.{os.getppid()}.partial"
    alive.write_bytes(b"x")
    other = tmp_path / ".other_acme_20261126T100000Z.agsb.999999999.partial"
    other.write_bytes(b"x")
    assert files.remove_stale_partials(tmp_path, "demo", "acme") == [dead]
    assert alive.exists() and other.exists()


def test_destination_is_created_0700_but_an_existing_one_is_left_alone(tmp_path):
    new = files.ensure_destination(tmp_path / "a" / "b")
    assert oct(new.stat().st_mode & 0o777) == "0o700" and oct((tmp_path / "a").stat().st_mode & 0o777) == "0o700"
    existing = tmp_path / "shared"
    existing.mkdir(mode=0o755)
    os.chmod(existing, 0o755)
    files.ensure_destination(existing)
    assert oct(existing.stat().st_mode & 0o777) == "0o755"
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        files.ensure_destination(tmp_path / "file")


NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def _fake(tmp_path: Path, ages_days: list[float], component="demo", client="acme") -> list[Path]:
    made = []
    for age in ages_days:
        when = NOW - timedelta(days=age)
        path = files.new_name(tmp_path, component, client, when, encrypted=False)
        path.write_bytes(b"fake")
        made.append(path)
    return made


def _names(paths) -> set[str]:
    return {Path(p).name for p in paths}


@pytest.mark.parametrize("keep_last,keep_days,kept_ages", [
    (3, None, [0, 1, 2]),
    (None, 2.5, [0, 1, 2]),
    (1, 4.5, [0, 1, 2, 3, 4]),  # either rule keeps
    (5, 0.5, [0, 1, 2, 3, 4]),
    (None, None, [0, 1, 2, 3, 4, 5, 6, 10, 30]),  # no rule: nothing deleted
])
def test_retention_keeps_exactly_what_it_should(tmp_path, keep_last, keep_days, kept_ages):
    ages = [0, 1, 2, 3, 4, 5, 6, 10, 30]
    made = dict(zip(ages, _fake(tmp_path, ages)))
    others = _fake(tmp_path, [40], client="other") + _fake(tmp_path, [40], component="else")
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("keep me")
    deleted = files.apply_retention(tmp_path, "demo", "acme", keep_last=keep_last, keep_days=keep_days,
                                    protect=made[0], now=NOW)
    remaining = {p.name for p in tmp_path.iterdir()}
    assert {made[a].name for a in kept_ages} | _names(others) | {"notes.txt"} == remaining
    assert _names(deleted) == {made[a].name for a in ages if a not in kept_ages}


def test_retention_never_deletes_the_archive_just_written(tmp_path):
    made = _fake(tmp_path, [0, 1, 2])
    newest_by_clock = made[0]
    # the one just written has an older name (e.g. a clock step back): it is still kept
    protect = made[2]
    deleted = files.apply_retention(tmp_path, "demo", "acme", keep_last=1, keep_days=None, protect=protect, now=NOW)
    assert protect.exists() and newest_by_clock.exists() and _names(deleted) == {made[1].name}
