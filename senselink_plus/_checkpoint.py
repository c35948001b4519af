"""Where `Client.watch` keeps its position: the checkpoint protocol and `FileCheckpoint`.

The protocol
------------
A checkpoint is any object with two async methods:

- ``load() -> Mapping | None``: the state last saved, or None when there is none yet.
- ``save(state) -> None``: keep ``state`` so that ``load`` returns it after a restart.

and, optionally, two more async hooks, for a checkpoint that takes a lock or lease:

- ``acquire() -> None``: called once, before ``load``. Take the lock; when another
  watcher holds it, raise (`CheckpointInUseError` is the SDK's error for that) so the
  watch ends at once.
- ``release() -> None``: called once when the watch ends (closed, broken out of,
  failed or cancelled), if ``acquire`` returned. Drop the lock.

The state is a small JSON-able mapping (str keys; str, int, None and lists of ints
as values), at most a few KiB: its size is O(records sharing the newest delivered
record's second), never O(history). Treat it as opaque; it records which query it
belongs to (``sn``, order, an app key fingerprint; never the secret), and loading it
into a watch of another query raises `ValidationError` naming both.

When the watch saves: after the records of each page are handled, at least once a
second while records flow, after a poll moves an idle position, and when the watch
ends. What is saved is the acknowledged position (see `Watch`): a restart never skips
a record and repeats at most those acknowledged since the last save, plus those not
acknowledged. A saved position never moves backwards: the watch never saves a state
behind the one it loaded, saved, or reads back as it closes (a hand save of
``watch.state``), and `FileCheckpoint` and `PostgresCheckpoint` refuse such a save
from anyone. To repeat none, save the position together with your own writes: the
object ``watch()`` returns has a ``state`` property, the state to save once the record
just yielded is handled (e.g. in the same database transaction as the rows written).

>>> watch = client.watch(checkpoint="state.json")  # doctest: +SKIP
>>> async for record in watch:  # doctest: +SKIP
...     async with db.transaction():
...         await db.insert(record)
...         await db.save_position(watch.state)
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import threading
from collections.abc import Awaitable, Mapping
from typing import IO, Any, Protocol, TypeVar, runtime_checkable

import orjson

from ._exceptions import SenseLinkError, ValidationError
from ._files import check_target_path, write_atomically
from ._follow import state_covers

__all__ = [
    "Checkpoint",
    "CheckpointInUseError",
    "FileCheckpoint",
    "as_checkpoint",
    "checkpoint_call",
]

T = TypeVar("T")


@runtime_checkable
class Checkpoint(Protocol):
    """Where `Client.watch` keeps its position: any object with async ``load`` and
    ``save``, and optionally async ``acquire()`` (called once before ``load``: take a
    lock or lease, or raise `CheckpointInUseError`) and ``release()`` (called once when
    the watch ends). The state is a small JSON-able mapping, opaque to you; it names
    the query it belongs to. Saves come after each page, each second while records
    flow, and at the end, one at a time; a restart repeats at most the records
    delivered since the last completed save (save ``watch.state`` with your own writes
    to repeat none).

    >>> class Memory:
    ...     state = None
    ...     async def load(self): return self.state
    ...     async def save(self, state): self.state = dict(state)
    """

    async def load(self) -> Mapping[str, Any] | None:
        """The state last saved, or None when there is none yet."""
        ...

    async def save(self, state: Mapping[str, Any]) -> None:
        """Keep ``state`` (a JSON-able mapping) so `load` returns it after a restart."""
        ...


class CheckpointInUseError(SenseLinkError):
    """Another watcher holds this checkpoint (its lock or lease); nothing was read.

    >>> try:  # doctest: +SKIP
    ...     async for record in client.watch(checkpoint="state.json"): ...
    ... except CheckpointInUseError as exc:
    ...     print(exc)  # names the file and its lock
    """


if sys.platform == "win32":  # pragma: no cover
    import msvcrt

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


class FileCheckpoint:
    """A JSON checkpoint file, replaced atomically (temp file, fsync, rename) on save,
    and locked for one watcher at a time by a sidecar ``<path>.lock`` file.

    The lock is an advisory OS lock: released on `release` (the watch's end) and by the
    OS when the process dies, however it dies; the lock file itself stays.

    >>> async for record in client.watch(checkpoint=FileCheckpoint("state.json")):  # doctest: +SKIP
    ...     ...
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"FileCheckpoint({self.path!r})"

    @property
    def lock_path(self) -> str:
        """The sidecar file whose OS lock marks the watcher using this checkpoint."""
        return self.path + ".lock"

    async def acquire(self) -> None:
        """Take the lock, or raise `CheckpointInUseError` at once when another holds it."""
        self._take_lock()

    async def release(self) -> None:
        """Drop the lock (the OS drops it too if the process dies)."""
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()

    async def load(self) -> Mapping[str, Any] | None:
        """Read the saved state; None when the file does not exist yet."""
        return await asyncio.to_thread(self._load)

    async def save(self, state: Mapping[str, Any]) -> None:
        """Write ``state`` as JSON, replacing the file atomically (fsync, then rename),
        unless the file holds a newer position of the same watch: a saved position
        never moves backwards (a hand save of ``watch.state`` racing the watch's own)."""
        await asyncio.to_thread(self._save, state)

    def _save(self, state: Mapping[str, Any]) -> None:
        with _path_lock(self.path):
            current = _read_quietly(self.path)
            if (
                current is not None
                and current.get("query") == state.get("query")
                and not state_covers(state, current)
            ):
                return
            write_atomically(self.path, orjson.dumps(state), durable=True)

    def _take_lock(self) -> None:
        if self._lock is not None:
            raise CheckpointInUseError(
                f"checkpoint {self.path!r} is already in use by a watch of this object"
            )
        try:
            handle = open(self.lock_path, "a+b")  # noqa: SIM115 - held until release()
        except OSError as exc:
            raise ValidationError(
                f"cannot open the checkpoint lock {self.lock_path!r}: {exc.strerror or exc}",
                field="checkpoint",
            ) from None
        if not _try_lock(handle):
            handle.close()
            raise CheckpointInUseError(
                f"checkpoint {self.path!r} is in use: another watcher holds its lock "
                f"{self.lock_path!r}; one checkpoint serves one watcher at a time"
            )
        self._lock = handle

    def _load(self) -> Mapping[str, Any] | None:
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ValidationError(
                f"cannot read checkpoint {self.path!r}: {exc.strerror}", field="checkpoint"
            ) from None
        try:
            state = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ValidationError(
                f"checkpoint {self.path!r} is not valid JSON; move it away to start afresh",
                field="checkpoint",
            ) from None
        if not isinstance(state, dict):
            raise ValidationError(
                f"checkpoint {self.path!r} does not hold a JSON object", field="checkpoint"
            )
        return state


_PATH_LOCKS: dict[str, threading.Lock] = {}
_PATH_LOCKS_LOCK = threading.Lock()


def _path_lock(path: str) -> threading.Lock:
    """One lock a file in this process: read-compare-write is one step."""
    key = os.path.realpath(path)
    with _PATH_LOCKS_LOCK:
        return _PATH_LOCKS.setdefault(key, threading.Lock())


def _read_quietly(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as handle:
            state = orjson.loads(handle.read())
    except (OSError, orjson.JSONDecodeError):
        return None
    return state if isinstance(state, dict) else None


_CHECKPOINT_HELP = "checkpoint must be a path or an object with async load() and save(state)"


def as_checkpoint(value: str | os.PathLike[str] | Checkpoint | None) -> Checkpoint | None:
    """A checkpoint argument as a `Checkpoint`: a path becomes a `FileCheckpoint`."""
    if value is None:
        return value
    # isinstance against the protocol only sees that the attributes exist.
    if isinstance(value, Checkpoint) and callable(value.load) and callable(value.save):
        for hook in ("acquire", "release"):
            if getattr(value, hook, None) is not None and not callable(getattr(value, hook)):
                raise ValidationError(
                    f"checkpoint.{hook} must be an async method", field="checkpoint"
                )
        return value
    if isinstance(value, (str, os.PathLike)):
        return FileCheckpoint(check_target_path(value, "checkpoint"))
    raise ValidationError(_CHECKPOINT_HELP, field="checkpoint")


async def checkpoint_call(result: Awaitable[T]) -> T:
    """Await what a checkpoint method returned; a sync method is a `ValidationError`."""
    if not inspect.isawaitable(result):
        raise ValidationError(f"{_CHECKPOINT_HELP}: it returned no awaitable", field="checkpoint")
    return await result
