"""`FileCheckpoint`'s acknowledgement journal: the position at the latest
acknowledgement, in a file beside the state (``<state>.acks``), so that a record
acknowledged after the last save does not come again after a process kill.

Each acknowledgement overwrites the journal's head with one ``pwrite`` of one record,
and nothing is fsync'd: once ``pwrite`` returns, the bytes are the kernel's, and a
process killed at any point (``kill -9``, an OOM kill, a crash) leaves them in place.
Only an OS crash or a power loss can lose or tear them; the state file, replaced with
fsync at its own cadence, is then what holds. A record that does not check out (torn,
foreign, garbage) is never trusted: reading it gives None.

A record is ``MAGIC``, the payload's length and the CRC-32 of length and payload
(big-endian, 16 bytes in all), then the payload: the state as JSON. Bytes past it (a
longer record written before) are ignored.

>>> decode(encode(b'{"watermark": 7}'))
{'watermark': 7}
>>> decode(encode(b'{"watermark": 7}')[:-1]) is None
True
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import orjson

from ._exceptions import ValidationError
from ._watchstate import state_covers

__all__ = ["AckJournal", "decode", "encode", "read_journal"]

MAGIC = b"slp-ack1"
_HEADER = struct.Struct(">8sII")
#: A journal record is a watch state (a few KiB); anything longer is not one.
MAX_RECORD = 16 << 20

_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

_READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def encode(payload: bytes) -> bytes:
    """One journal record holding ``payload``."""
    length = len(payload).to_bytes(4, "big")
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload, zlib.crc32(length))) + payload


def decode(data: bytes) -> dict[str, Any] | None:
    """The state in the record at the head of ``data``; None when there is none that
    checks out (empty, torn, foreign or garbage)."""
    if len(data) < _HEADER.size:
        return None
    magic, length, crc = _HEADER.unpack_from(data)
    payload = data[_HEADER.size : _HEADER.size + length]
    if magic != MAGIC or len(payload) != length:
        return None
    if zlib.crc32(payload, zlib.crc32(length.to_bytes(4, "big"))) != crc:
        return None
    try:
        state = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return state if isinstance(state, dict) else None


class AckJournal:
    """The journal file, open for the lock holder: `write` at each acknowledgement,
    `read` at load, `clear` when it is not to be trusted, `remove` at a clean close.

    Opened once (without following a symlink, and only when it is a regular file), so
    every write is one system call on a file descriptor: no path lookup, no fsync.
    """

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path
        #: The state last written (None: nothing since it was opened or cleared).
        self.written: Mapping[str, Any] | None = None
        #: Whether what it held when opened was read and cleared (until then it may
        #: hold a killed watcher's acknowledgements).
        self.cleared = False

    @classmethod
    def open(cls, path: str) -> AckJournal:
        """Open (creating) the journal at ``path``; a `ValidationError` when it is a
        symlink or not a regular file."""
        try:
            fd = os.open(path, _FLAGS, 0o666)
        except OSError as exc:
            why = "it is a symlink" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
            raise ValidationError(
                f"cannot open the acknowledgement journal {path!r}: {why}", field="checkpoint"
            ) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ValidationError(
                f"the acknowledgement journal {path!r} is not a regular file", field="checkpoint"
            )
        return cls(fd, path)

    def write(self, state: Mapping[str, Any]) -> None:
        """Make ``state`` survive a process kill: one ``pwrite``, no fsync."""
        record = encode(orjson.dumps(state))
        if _write_head(self.fd, record) != len(record):
            raise OSError(errno.EIO, "short write")
        self.written = state

    def read(self) -> dict[str, Any] | None:
        """The state journaled, or None when none checks out."""
        size = os.fstat(self.fd).st_size
        return decode(_read_head(self.fd, min(size, MAX_RECORD + _HEADER.size)))

    def clear(self) -> None:
        """Forget what the journal holds (it is not to be trusted, or it is saved)."""
        os.ftruncate(self.fd, 0)
        self.written = None
        self.cleared = True

    def saved_by(self, durable: Mapping[str, Any] | None) -> bool:
        """Whether the state file's ``durable`` state holds everything journaled."""
        if not self.cleared:
            return False
        return self.written is None or (durable is not None and state_covers(durable, self.written))

    def remove(self) -> None:
        """Delete the journal file (everything in it is saved), then `close`."""
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def read_journal(path: str) -> dict[str, Any] | None:
    """The state journaled at ``path`` by whoever holds it (read without the lock,
    never through a symlink); None when there is none that checks out."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        return decode(_read_head(fd, min(info.st_size, MAX_RECORD + _HEADER.size)))
    finally:
        os.close(fd)


def _write_head(fd: int, data: bytes) -> int:
    """One write of ``data`` at the start of the file."""
    if hasattr(os, "pwrite"):
        return os.pwrite(fd, data, 0)
    os.lseek(fd, 0, os.SEEK_SET)  # pragma: no cover - Windows has no pwrite
    return os.write(fd, data)  # pragma: no cover


def _read_head(fd: int, size: int) -> bytes:
    """Up to ``size`` bytes from the start of the file."""
    if hasattr(os, "pread"):
        return os.pread(fd, size, 0)
    os.lseek(fd, 0, os.SEEK_SET)  # pragma: no cover - Windows has no pread
    return os.read(fd, size)  # pragma: no cover
