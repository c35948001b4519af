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

When the watch saves: at each acknowledgement, before it hands out the next record
(and before ``await watch.ack(record)`` returns), so an acknowledged record does not
come again after a process kill; after the records of each page are handled, at
least once a second while records flow, after a poll moves an idle position, and
when the watch ends. `FileCheckpoint` journals each acknowledgement instead of a
save (see its docstring); with ``durable_acks=False`` acknowledgements wait for the
other saves. What is saved is the acknowledged position (see `Watch`): a restart
never skips a record and repeats only those not acknowledged (with
``durable_acks=False``, plus those acknowledged since the last save). Each save
runs after the one before it ends. A saved position never moves backwards: the watch
never saves a state behind the one it loaded, saved, or reads back as it closes (a
hand save of ``watch.state``), and `FileCheckpoint` and `PostgresCheckpoint` refuse
such a save from anyone. To repeat none, save the position together with your own writes: the
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
import contextlib
import errno
import inspect
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

import orjson

from ._exceptions import SenseLinkError, ValidationError
from ._files import (
    TEMP_PREFIX,
    check_target_path,
    create_temp_beside,
    remove_stale_temps,
    replace_with,
    write_atomically,
)
from ._journal import AckJournal, read_journal
from ._watchstate import state_covers, supersedes

__all__ = [
    "Checkpoint",
    "CheckpointInUseError",
    "FileCheckpoint",
    "ack_journal",
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
    the query it belongs to. ``save`` is called, one at a time, for each
    acknowledgement (awaited before the next record is handed out: what it makes
    durable is up to you), after each page, each second while records flow, and at
    the end; a restart repeats only records not acknowledged (save ``watch.state``
    with your own writes to repeat none).

    A `typing.Protocol`, not a base class: nothing to construct or inherit. Pass such an
    object as ``client.watch(checkpoint=...)``; `FileCheckpoint` and
    ``senselink_plus.postgres.PostgresCheckpoint`` are the two that come with the SDK.

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

    ``CheckpointInUseError(message)``, a `SenseLinkError`: the SDK's checkpoints raise it
    from ``acquire()``, and so may a checkpoint of your own.

    >>> try:  # doctest: +SKIP
    ...     async for record in client.watch(checkpoint="state.json"): ...
    ... except CheckpointInUseError as exc:
    ...     print(exc)  # names the file and its lock
    """


if sys.platform == "win32":  # pragma: no cover
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    #: Windows locks are mandatory (a locked state file could not be read nor replaced):
    #: only the sidecar is locked there.
    _LOCK_STATE = False

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    _LOCK_STATE = True

_LOCK_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_STATE_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _close(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


class FileCheckpoint:
    """A JSON checkpoint file, replaced atomically (temp file, fsync, rename) on save,
    and locked for one watcher at a time, with an acknowledgement journal beside it.

    The journal, ``<real path>.acks``, holds the position at the latest
    acknowledgement: the watch overwrites it with one ``write`` at each one (no
    fsync), so a record acknowledged after the last save does not come again after a
    process kill (``kill -9``, an OOM kill). `load` returns the later of the saved
    state and a journal entry that checks out (a torn, foreign or older one is
    ignored), and the lock holder folds a later one into the state file. A clean close
    removes the journal once the final save holds it. Against a power loss or an OS
    crash only the last fsync'd save counts: the records acknowledged since may come
    again (at least once).

    ``FileCheckpoint(path)``: ``path`` (a str or path-like) is the state file, written
    at the first save. ``client.watch(checkpoint="state.json")`` makes one from a path.

    The lock is an advisory OS lock on two things, both by identity rather than by the
    path's spelling: the sidecar ``<real path>.lock`` (the state file's path with
    symlinks resolved, opened without following a symlink), and the state file itself
    (its inode: a hard link to it, or a watcher that finds the sidecar deleted, meets
    the lock too; each save locks the new file before it takes the name). Locks are
    released on `release` (the watch's end) and by the OS when the process dies; the
    lock file itself stays. A symlink to the state file stays a link: the file it
    points to is replaced. Temp files a killed watcher left are removed when the lock
    is next taken.

    >>> async for record in client.watch(checkpoint=FileCheckpoint("state.json")):  # doctest: +SKIP
    ...     ...
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock: int | None = None
        self._state_lock: int | None = None
        self._real: str | None = None
        self._journal: AckJournal | None = None
        # The newest state known to be in the file (saved here, or found there).
        self._durable: Mapping[str, Any] | None = None

    def __repr__(self) -> str:
        return f"FileCheckpoint({self.path!r})"

    @property
    def real_path(self) -> str:
        """The state file's path with symlinks resolved (fixed once the lock is taken)."""
        return self._real if self._real is not None else os.path.realpath(self.path)

    @property
    def lock_path(self) -> str:
        """The sidecar file whose OS lock marks the watcher using this checkpoint."""
        return self.real_path + ".lock"

    @property
    def journal_path(self) -> str:
        """The acknowledgement journal, beside the state file (see the class)."""
        return self.real_path + ".acks"

    async def acquire(self) -> None:
        """Take the lock, or raise `CheckpointInUseError` at once when another holds it."""
        self._take_lock()

    async def release(self) -> None:
        """Drop the lock (the OS drops it too if the process dies). The journal is
        removed when the state file holds all it does."""
        journal, self._journal = self._journal, None
        if journal is not None:
            if journal.saved_by(self._durable):
                journal.remove()
            else:
                journal.close()
        lock, self._lock = self._lock, None
        state, self._state_lock = self._state_lock, None
        self._real = None
        _close(state)
        _close(lock)

    async def load(self) -> Mapping[str, Any] | None:
        """Read the saved state, or the journal's when it is a later position of the same
        watch; None when the file does not exist yet."""
        return await asyncio.to_thread(self._load_later)

    def _acknowledge(self, state: Mapping[str, Any]) -> None:
        """Journal ``state`` (the position at an acknowledgement) while the lock is held:
        one write, no fsync, so it survives a process kill."""
        journal = self._journal
        if journal is None:
            return
        try:
            journal.write(state)
        except OSError as exc:
            raise SenseLinkError(
                f"cannot write the acknowledgement journal {journal.path!r}: {exc.strerror or exc}"
            ) from None

    def _load_later(self) -> Mapping[str, Any] | None:
        """`_load`, or the journal's state when it supersedes it. The lock holder folds
        such a state into the file (fsync'd), then clears its journal."""
        saved = self._load()
        journal = self._journal
        later = read_journal(self.journal_path) if journal is None else journal.read()
        if saved is None or later is None or not supersedes(later, saved):
            later = None  # torn, foreign, or not ahead of the file: never trusted
        if journal is not None:
            if later is not None:
                self._save(later)
            journal.clear()
        return saved if later is None else later

    async def save(self, state: Mapping[str, Any]) -> None:
        """Write ``state`` as JSON, replacing the file atomically (fsync, then rename),
        unless the file holds a newer position of the same watch: a saved position
        never moves backwards (a hand save of ``watch.state`` racing the watch's own)."""
        await asyncio.to_thread(self._save, state)

    def _save(self, state: Mapping[str, Any]) -> None:
        with _path_lock(self.real_path):
            current = _read_quietly(self.real_path)
            if (
                current is not None
                and current.get("query") == state.get("query")
                and not state_covers(state, current)
            ):
                self._durable = current
                return
            data = orjson.dumps(state)
            if self._lock is None or not _LOCK_STATE:
                write_atomically(self.real_path, data, durable=True)
            else:
                self._save_locked(data)
            self._durable = state

    @property
    def _temp_prefix(self) -> str:
        return f"{TEMP_PREFIX}{os.path.basename(self.real_path)}-"

    def _in_use(self) -> CheckpointInUseError:
        return CheckpointInUseError(
            f"checkpoint {self.path!r} is in use: another watcher holds its lock "
            f"{self.lock_path!r}; one checkpoint serves one watcher at a time"
        )

    def _take_lock(self) -> None:
        if self._lock is not None:
            raise CheckpointInUseError(
                f"checkpoint {self.path!r} is already in use by a watch of this object"
            )
        self._real = os.path.realpath(self.path)
        try:
            self._lock = self._lock_sidecar()
            self._state_lock = self._lock_state()
            self._journal = AckJournal.open(self.journal_path)
        except BaseException:
            lock, self._lock, self._real = self._lock, None, None
            state, self._state_lock = self._state_lock, None
            _close(state)
            _close(lock)
            raise
        remove_stale_temps(self.real_path, self._temp_prefix)

    def _lock_sidecar(self) -> int:
        """Lock ``<real path>.lock``; retried when the file was deleted or replaced
        between its open and its lock (the lock would then guard nothing)."""
        for _ in range(10):
            try:
                fd = os.open(self.lock_path, _LOCK_FLAGS, 0o666)
            except OSError as exc:
                raise ValidationError(
                    f"cannot open the checkpoint lock {self.lock_path!r}: "
                    f"{'it is a symlink' if exc.errno == errno.ELOOP else exc.strerror or exc}",
                    field="checkpoint",
                ) from None
            if not _try_lock(fd):
                _close(fd)
                raise self._in_use()
            if _same_file(fd, self.lock_path):
                return fd
            _close(fd)
        raise self._in_use()

    def _lock_state(self) -> int | None:
        """Lock the state file's inode, when there is one (None: none yet)."""
        if not _LOCK_STATE:
            return None
        try:
            fd = os.open(self.real_path, _STATE_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ValidationError(
                f"cannot open checkpoint {self.path!r}: {exc.strerror or exc}", field="checkpoint"
            ) from None
        if not _try_lock(fd):
            _close(fd)
            raise self._in_use()
        return fd

    def _save_locked(self, data: bytes) -> None:
        """Write a new state file, lock it, then rename it over the old one: the name
        never points at an unlocked state while the watch holds it."""
        target = self.real_path
        try:
            fd, tmp = create_temp_beside(target, self._temp_prefix)
        except OSError as exc:
            raise SenseLinkError(f"cannot write {target!r}: {exc.strerror or exc}") from None
        try:
            _write_all(fd, data)
            os.fsync(fd)
            _try_lock(fd)  # a new file: nobody else holds it
            replace_with(tmp, target)
        except BaseException as exc:
            _close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise SenseLinkError(f"cannot write {target!r}: {exc.strerror or exc}") from None
            raise
        old, self._state_lock = self._state_lock, fd
        _close(old)

    def _load(self) -> Mapping[str, Any] | None:
        try:
            with open(self.real_path, "rb") as handle:
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


def _same_file(fd: int, path: str) -> bool:
    """Whether ``path`` (not followed) is the file open as ``fd``."""
    try:
        here, there = os.fstat(fd), os.lstat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def ack_journal(store: Checkpoint | None) -> Callable[[Mapping[str, Any]], None] | None:
    """How a watch makes an acknowledgement survive a process kill without waiting for
    a save: `FileCheckpoint`'s journal. None for every other checkpoint (the watch
    awaits its ``save`` instead)."""
    return store._acknowledge if isinstance(store, FileCheckpoint) else None


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
