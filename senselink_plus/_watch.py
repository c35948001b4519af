"""`Client.watch`: follow new records as they are stored, with a resumable checkpoint."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import orjson

from ._checks import check_seconds
from ._exceptions import (
    ClientClosedError,
    EventLoopError,
    RedirectError,
    SenseLinkError,
    ValidationError,
)
from ._files import check_target_path, write_atomically
from ._models import Order, Record
from ._timeutil import MAX_WINDOW, ceil_second, floor_second, to_aware

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["Checkpoint", "FileCheckpoint", "watch_records"]

logger = logging.getLogger("senselink_plus")

T = TypeVar("T")

STATE_VERSION = 1
MAX_BACKOFF = 300.0


@runtime_checkable
class Checkpoint(Protocol):
    """Where `Client.watch` keeps its position: any object with these two methods."""

    async def load(self) -> Mapping[str, Any] | None:
        """The state last saved, or None when there is none yet."""
        ...

    async def save(self, state: Mapping[str, Any]) -> None:
        """Keep ``state`` (a JSON-able mapping) so `load` returns it after a restart."""
        ...


class FileCheckpoint:
    """A JSON checkpoint file, replaced atomically (temp file, fsync, rename) on save.

    >>> async for record in client.watch(checkpoint=FileCheckpoint("state.json")):  # doctest: +SKIP
    ...     ...
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def __repr__(self) -> str:
        return f"FileCheckpoint({self.path!r})"

    async def load(self) -> Mapping[str, Any] | None:
        """Read the saved state; None when the file does not exist yet."""
        return await asyncio.to_thread(self._load)

    async def save(self, state: Mapping[str, Any]) -> None:
        """Write ``state`` as JSON, replacing the file atomically (fsync, then rename)."""
        await asyncio.to_thread(self._save, orjson.dumps(state))

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

    def _save(self, payload: bytes) -> None:
        write_atomically(self.path, payload, durable=True)


class _Position:
    """The newest delivered record's time, the ids delivered near it, and the start.

    ``floor`` is where a fresh watch began (``since``, or now): nothing older is
    delivered, even inside the overlap. It is kept only while a poll could still reach
    below it.
    """

    def __init__(
        self, cursor: datetime, seen: dict[int, datetime], floor: datetime | None = None
    ) -> None:
        self.cursor = cursor
        self.seen = seen
        self.floor = floor

    @classmethod
    def from_state(cls, state: object, where: str) -> _Position:
        try:
            if not isinstance(state, Mapping):
                raise TypeError(f"expected a mapping, not {type(state).__name__}")
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"unknown version {state.get('version')!r}")
            cursor = to_aware(state["cursor"], "cursor").astimezone(timezone.utc)
            seen = {
                int(record_id): to_aware(at, "seen").astimezone(timezone.utc)
                for record_id, at in state["seen"]
            }
            raw_floor = state.get("floor")
            floor = (
                None if raw_floor is None else to_aware(raw_floor, "floor").astimezone(timezone.utc)
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(
                f"checkpoint {where} holds no usable watch state: {exc}", field="checkpoint"
            ) from None
        return cls(cursor, seen, floor)

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "cursor": self.cursor.isoformat(),
            "seen": [[record_id, at.isoformat()] for record_id, at in self.seen.items()],
        }
        if self.floor is not None:
            state["floor"] = self.floor.isoformat()
        return state

    def start(self, overlap: timedelta) -> datetime:
        """Where the next poll begins: the overlap before the cursor, never below floor."""
        lo = self.cursor - overlap
        return lo if self.floor is None else max(lo, self.floor)

    def wants(self, record: Record) -> bool:
        if record.record_id in self.seen:
            return False
        return self.floor is None or record.created_at >= self.floor

    def take(self, record: Record, overlap: timedelta) -> None:
        """The consumer has taken ``record``."""
        at = record.created_at
        self.seen[record.record_id] = at
        self._move_to(at, overlap)

    def polled(self, until: datetime, overlap: timedelta) -> bool:
        """A poll read everything stored up to ``until``; True when the position moved.

        Without this an idle watch (no records for days) would poll an ever longer
        range. The cursor stays an overlap behind ``until`` for clock skew and late
        commits.
        """
        return self._move_to(until - overlap, overlap)

    def _move_to(self, moment: datetime, overlap: timedelta) -> bool:
        if moment <= self.cursor:
            return False
        self.cursor = moment
        # A poll starts at cursor - overlap, rounded down to the second: only ids
        # stored after that can come again.
        horizon = floor_second(self.cursor - overlap) - timedelta(seconds=1)
        self.seen = {rid: when for rid, when in self.seen.items() if when >= horizon}
        if self.floor is not None and horizon >= self.floor:
            self.floor = None  # no poll reaches below the start any more
        return True


_CHECKPOINT_HELP = "checkpoint must be a path or an object with async load() and save(state)"


def _checkpoint(value: str | os.PathLike[str] | Checkpoint | None) -> Checkpoint | None:
    if value is None:
        return value
    # isinstance against the protocol only sees that the attributes exist.
    if isinstance(value, Checkpoint) and callable(value.load) and callable(value.save):
        return value
    if isinstance(value, (str, os.PathLike)):
        return FileCheckpoint(check_target_path(value, "checkpoint"))
    raise ValidationError(_CHECKPOINT_HELP, field="checkpoint")


async def _checkpoint_call(result: Awaitable[T]) -> T:
    if not inspect.isawaitable(result):
        raise ValidationError(f"{_CHECKPOINT_HELP}: it returned no awaitable", field="checkpoint")
    return await result


def watch_records(
    client: Client,
    *,
    sn: str | None,
    since: datetime | str | None,
    poll_interval: float,
    checkpoint: str | os.PathLike[str] | Checkpoint | None,
    overlap: timedelta,
) -> AsyncGenerator[Record, None]:
    """Check the arguments now, then return the watching generator."""
    from ._endpoints import check_sn

    store = _checkpoint(checkpoint)
    interval = check_seconds(poll_interval, "poll_interval")
    if not isinstance(overlap, timedelta) or not timedelta(0) <= overlap <= MAX_WINDOW:
        raise ValidationError(
            f"overlap must be a timedelta from 0 to {MAX_WINDOW}", field="overlap"
        )
    start = None if since is None else to_aware(since, "since").astimezone(timezone.utc)
    return _watch(
        client,
        sn=None if sn is None else check_sn(sn),
        since=start,
        interval=interval,
        store=store,
        overlap=overlap,
    )


async def _watch(
    client: Client,
    *,
    sn: str | None,
    since: datetime | None,
    interval: float,
    store: Checkpoint | None,
    overlap: timedelta,
) -> AsyncGenerator[Record, None]:
    def now() -> datetime:
        return datetime.fromtimestamp(client._clock(), timezone.utc)

    state = await _checkpoint_call(store.load()) if store is not None else None
    if state is not None:
        position = _Position.from_state(state, repr(store))
    else:
        # Whole seconds: create_at may be in seconds, and a record from the start's own
        # second must not fall below the floor.
        start = floor_second(since or now())
        position = _Position(start, {}, floor=start)
        if store is not None:
            # Saved at once, so a restart before the first record still resumes from here
            # rather than from its own "now", which would skip what was stored meanwhile.
            await _checkpoint_call(store.save(position.to_state()))
    failures = 0
    while True:
        lo = position.start(overlap)
        hi = max(now(), lo + timedelta(seconds=1))
        failed: SenseLinkError | None = None
        # What the server may answer for this poll (a second of slack for a server that
        # compares whole seconds): a record outside it is the server's error, and taking
        # it would deliver something older than the start, or move the cursor past
        # records not yet seen.
        low, high = floor_second(lo), ceil_second(hi) + timedelta(seconds=1)
        pager = client.records(lo, hi, sn=sn, order=Order.ASCENDING, concurrency=1)
        async with contextlib.aclosing(pager.__aiter__()) as records:  # type: ignore[type-var]
            while True:
                # Only the poll is guarded: what the consumer throws in at the yield
                # below is theirs, never taken for a failed poll.
                try:
                    record = await anext(records)
                except StopAsyncIteration:
                    break
                except (ValidationError, ClientClosedError, EventLoopError, RedirectError):
                    raise  # no later poll would do better: end the watch
                except SenseLinkError as exc:
                    failed = exc
                    break
                if not low <= record.created_at < high:
                    logger.warning(
                        "watch: skipped record %d stored at %s, outside the polled window %s .. %s",
                        record.record_id,
                        record.created_at.isoformat(),
                        lo.isoformat(),
                        hi.isoformat(),
                    )
                    continue
                if not position.wants(record):
                    continue
                yield record
                # The consumer asked for the next one, so it is done with this one.
                position.take(record, overlap)
                if store is not None:
                    await _checkpoint_call(store.save(position.to_state()))
        if failed is None:
            failures = 0
            if position.polled(hi, overlap) and store is not None:
                await _checkpoint_call(store.save(position.to_state()))
            await client._until_closed(client._sleep(interval))
            continue
        failures += 1
        delay = min(MAX_BACKOFF, interval * 2 ** min(failures, 16))
        delay = delay / 2 + client._rng.uniform(0, delay / 2)
        logger.warning(
            "watch poll failed (%s: %s); retrying in %.1fs", type(failed).__name__, failed, delay
        )
        await client._until_closed(client._sleep(delay))
