"""Encryption at rest: AES-256-GCM in authenticated chunks (STREAM), keyed by a file the operator holds.

See the package docstring for the layout. :class:`EncryptingWriter` is a write-only sink (constant memory: one
chunk); :class:`DecryptingView` gives seekable, authenticated random access to the plaintext, so the archive
reader works the same on encrypted and plain files.
"""

from __future__ import annotations

import hmac
import os
import stat
import struct
from pathlib import Path
from typing import BinaryIO

from agencystack.errors import BackupError, UsageError

ENC_MAGIC = b"AGSBENC\x01"
SALT_SIZE = 16
CHECK_SIZE = 16
TAG_SIZE = 16
HEADER = struct.Struct(">8s16s16sI")  # magic, salt, key check, chunk size
CHUNK_SIZE = 1024 * 1024
MIN_KEY_BYTES = 32
MAX_KEY_BYTES = 4096
_INFO_KEY = b"agencystack-backup v1 key"
_INFO_CHECK = b"agencystack-backup v1 check"


class Key:
    """Key material read from a key file. ``repr`` and ``str`` never show it."""

    __slots__ = ("_material", "source")

    def __init__(self, material: bytes, source: str = "key"):
        self._material = material
        self.source = source

    def __repr__(self) -> str:
        return f"Key(source={self.source!r})"

    __str__ = __repr__

    def derive(self, salt: bytes) -> tuple[bytes, bytes]:
        """(AES key, key check) for one archive's salt."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO_KEY).derive(self._material)
        check = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO_CHECK).derive(self._material)
        return key, check[:CHECK_SIZE]

    def text_forms(self) -> list[str]:
        """The key as text (for the redactor): it must never appear anywhere."""
        try:
            return [self._material.decode()]
        except UnicodeDecodeError:
            return []


def load_key(path: Path | str) -> Key:
    """Read a key file: at least 32 bytes (surrounding whitespace ignored). Bad input is a UsageError."""
    path = Path(path).expanduser()
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"key file {path} is not a regular file")
        if info.st_size > MAX_KEY_BYTES:
            raise UsageError(f"key file {path} is larger than {MAX_KEY_BYTES} bytes: is it really a key?")
        material = path.read_bytes().strip()
    except FileNotFoundError:
        raise UsageError(f"key file {path} does not exist") from None
    except PermissionError:
        raise UsageError(f"key file {path} is not readable") from None
    if len(material) < MIN_KEY_BYTES:
        raise UsageError(f"key file {path} holds {len(material)} bytes; at least {MIN_KEY_BYTES} are needed "
                         "(e.g. head -c 32 /dev/urandom | base64 > backup.key)")
    return Key(material, str(path))


def key_file_too_open(path: Path | str) -> bool:
    """True when group or others may read the key file (worth a warning)."""
    try:
        return bool(Path(path).expanduser().stat().st_mode & 0o077)
    except OSError:
        return False


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


class EncryptingWriter:
    """A write-only binary sink that encrypts into ``sink`` chunk by chunk; ``close()`` writes the final chunk."""

    def __init__(self, sink: BinaryIO, key: Key, chunk_size: int = CHUNK_SIZE):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        salt = os.urandom(SALT_SIZE)
        aes_key, check = key.derive(salt)
        self._aead = AESGCM(aes_key)
        self._header = HEADER.pack(ENC_MAGIC, salt, check, chunk_size)
        self._sink = sink
        self._chunk = chunk_size
        self._buffer = bytearray()
        self._index = 0
        self._closed = False
        sink.write(self._header)

    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError("write to a closed EncryptingWriter")
        self._buffer += data
        # keep at least one byte buffered: the last chunk must be encrypted with the final flag
        while len(self._buffer) > self._chunk:
            self._emit(bytes(self._buffer[:self._chunk]), final=False)
            del self._buffer[:self._chunk]
        return len(data)

    def _emit(self, plain: bytes, final: bool) -> None:
        self._sink.write(self._aead.encrypt(_nonce(self._index, final), plain, self._header))
        self._index += 1

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        if not self._closed:
            self._emit(bytes(self._buffer), final=True)
            self._buffer.clear()
            self._closed = True
            self._sink.flush()


class DecryptingView:
    """Seekable read access to the plaintext of an encrypted archive; every chunk is authenticated on read."""

    def __init__(self, handle: BinaryIO, key: Key | None, name: str = "archive"):
        self._handle = handle
        self.name = name
        header = handle.read(HEADER.size)
        if len(header) < HEADER.size:
            raise BackupError(f"{name} is truncated (incomplete encryption header)")
        magic, salt, check, chunk = HEADER.unpack(header)
        if magic != ENC_MAGIC:
            raise BackupError(f"{name} is not an encrypted agencystack archive")
        if key is None:
            raise UsageError(f"{name} is encrypted: pass its key with --key-file")
        if not 1024 <= chunk <= 64 * 1024 * 1024:
            raise BackupError(f"{name} is damaged (implausible chunk size in its header)")
        aes_key, expected = key.derive(salt)
        if not hmac.compare_digest(check, expected):
            raise BackupError(f"the key in {key.source} does not open {name} (wrong key file, or a damaged header)")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(aes_key)
        self._header = header
        self._chunk = chunk
        body = os.fstat(handle.fileno()).st_size - HEADER.size
        stride = chunk + TAG_SIZE
        self._chunks = -(-body // stride) if body > 0 else 0
        last = body - (self._chunks - 1) * stride if self._chunks else 0
        if self._chunks == 0 or last < TAG_SIZE:
            raise BackupError(f"{name} is truncated (no complete encrypted chunk)")
        self.size = (self._chunks - 1) * chunk + last - TAG_SIZE
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None

    def _plain_chunk(self, index: int) -> bytes:
        if self._cached and self._cached[0] == index:
            return self._cached[1]
        from cryptography.exceptions import InvalidTag

        stride = self._chunk + TAG_SIZE
        self._handle.seek(HEADER.size + index * stride)
        data = self._handle.read(stride)
        try:
            plain = self._aead.decrypt(_nonce(index, index == self._chunks - 1), data, self._header)
        except InvalidTag:
            raise BackupError(f"{self.name} is damaged or truncated: encrypted chunk {index} (bytes "
                              f"{HEADER.size + index * stride}-{HEADER.size + index * stride + len(data)}) "
                              "fails authentication") from None
        self._cached = (index, plain)
        return plain

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self._pos
        size = min(size, self.size - self._pos)
        out = []
        while size > 0:
            index, within = divmod(self._pos, self._chunk)
            plain = self._plain_chunk(index)
            piece = plain[within:within + size]
            if not piece:
                break
            out.append(piece)
            self._pos += len(piece)
            size -= len(piece)
        return b"".join(out)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)
