"""Backups: one self-verifying archive per backup of a (client, component), and the restore that trusts only it.

Modules: :mod:`~agencystack.backup.archive` (the container format: writer, reader, verify),
:mod:`~agencystack.backup.crypto` (encryption at rest), :mod:`~agencystack.backup.files` (names, atomic files,
listing, retention), :mod:`~agencystack.backup.parts` (the core's default backup/restore of the parts a stack
declares), :mod:`~agencystack.backup.operations` (what the CLI commands run).

Archive format (version 1)
--------------------------
One file, ``<component>_<client>_<YYYYmmddTHHMMSSZ>[-N].agsb`` (``.agsb.enc`` when encrypted), mode 0600, written
under a temporary name (``.<name>.<pid>.partial``), fsynced, then renamed; a failed backup leaves no file behind.
All integers are big-endian::

    container := MAGIC  part-data*  manifest  trailer
    MAGIC     := b"AGSBAK\\x00\\x01"                       8 bytes: "AGSBAK", NUL, format version 1
    part-data := one zstd frame (content checksum on) per part, parts back to back in manifest order
    manifest  := UTF-8 JSON object (below)
    trailer   := b"AGSBEND\\x01" | u64 manifest offset | u64 manifest length | sha256(MAGIC .. end of manifest)
                 (56 bytes, the last bytes of the container)

The manifest is written last, so parts stream straight from their source (``pg_dump``'s stdout, a volume's tar)
through zstd into the file in constant memory -- nothing is buffered whole -- and still get their sizes and
checksums recorded::

    {"format": 1, "type": "agencystack-backup", "created": "2026-11-26T10:15:00Z",
     "client": "acme", "component": "posthog", "component_version": "1.4.0", "core_version": "0.1.0",
     "project": "acme_posthog", "images": {"db": "postgres:15.12-alpine", ...},
     "parts": [{"name": "postgres", "kind": "postgres", "spec": {...the stack's part...},
                "offset": 8, "size": 123456, "sha256": "<hex of the stored (compressed) bytes>",
                "raw_size": 987654, "compression": "zstd"}, ...]}

Verification (``agencystack backup verify``, and ``restore`` before it changes anything) reads the whole file once:
magic, trailer, manifest schema, parts contiguous and in bounds, each part's sha256 and size, each part fully
decompressed (zstd's own content checksum) to its recorded raw size, and the container's sha256 over everything.
A flipped byte anywhere, or a truncated file, is reported in one line naming the part.

Encryption at rest (``--encrypt-key-file``) wraps the whole container (so names, sizes and the manifest are hidden
too) in authenticated chunks, the STREAM construction that age uses, on AES-256-GCM from ``cryptography``::

    encrypted := b"AGSBENC\\x01" | salt (16) | key check (16) | u32 chunk size | chunk*
    chunk i   := AES-256-GCM(key, nonce = u88 i | final-flag byte, aad = the 44 header bytes) of up to
                 chunk-size plaintext bytes; only the last chunk has final-flag 1
    key       := HKDF-SHA256(key file contents, salt, info "agencystack-backup v1 key")
    key check := HKDF-SHA256(key file contents, salt, info "agencystack-backup v1 check")[:16]

Reordered, dropped, flipped or truncated chunks fail authentication; a wrong key is told apart by the key check.
The key file (at least 32 bytes, e.g. ``head -c 32 /dev/urandom | base64 > backup.key``) stays with the operator:
it is never printed, logged or stored.

Getting data out by hand (no agencystack, unencrypted archive): the manifest gives each part's offset and size;
``tail -c +$((offset + 1)) ARCHIVE | head -c SIZE | zstd -d > part`` recovers it (a plain SQL dump for Postgres
parts, a tar for volume parts, the .env text for the env part).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agencystack.lazy import exports

_PUBLIC = {
    "ArchiveWriter": "agencystack.backup.archive",
    "ArchiveReader": "agencystack.backup.archive",
    "open_archive": "agencystack.backup.archive",
}

__all__ = sorted(_PUBLIC)


__getattr__, __dir__ = exports(__name__, _PUBLIC, globals())


if TYPE_CHECKING:  # pragma: no cover
    from agencystack.backup.archive import ArchiveReader, ArchiveWriter, open_archive
