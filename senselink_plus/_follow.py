"""The watch's decisions, without I/O: where the next poll reads, which records are new,
what to save, and how long to wait after a failed poll.

Everything here is in the *server's* time (``create_at`` and the ``Date`` header); the
driver in `_watch` only feeds it pages and the server's "now", and does the waiting.

- ``cursor``: how far the watch has read, the newest delivered ``create_at`` or the
  end of the last complete poll, whichever is later. The next poll reads from
  ``cursor - overlap`` (never below ``floor``, where a fresh watch began) to the
  server's now, so a record committed up to ``overlap`` late is still found.
- Repeats inside the overlap are recognised from the ids delivered there (in memory)
  and, after a restart, from the saved state: the newest delivered record's second,
  the ids delivered within that second, and the highest id delivered (the listing is
  ordered by ``record_id`` and new records arrive at its end). So the saved state
  (`_watchstate`, re-exported here: `Query`, `state_covers`) is O(records sharing
  the newest second), whatever the history.

>>> query = Query.of("app-key", sn="GATE-1")
>>> start = datetime(2024, 5, 1, tzinfo=timezone.utc)
>>> position = Position.fresh(query, start, overlap=timedelta(minutes=2))
>>> position.window(start + timedelta(seconds=10))[0] == start
True
"""

from __future__ import annotations

import enum
import random
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any

from ._exceptions import APIError, AuthenticationError, SenseLinkError, ValidationError
from ._models import Record
from ._retry import backoff_delay
from ._timeutil import ceil_second, floor_second
from ._watchstate import STATE_VERSION, Query, SavedState, dump_state, state_covers

__all__ = [
    "AUTH_FAILURE_LIMIT",
    "MAX_BACKOFF",
    "MAX_RETRY_AFTER",
    "MAX_SKEW",
    "STATE_VERSION",
    "DateGap",
    "PollFailures",
    "Position",
    "Query",
    "Verdict",
    "believed_now",
    "state_covers",
]

#: The longest wait between failed polls, unless the server asks for longer.
MAX_BACKOFF = 300.0
#: The longest ``Retry-After`` honoured (a day): longer ones wait this long.
MAX_RETRY_AFTER = 86400.0
#: Consecutive polls refused with an `AuthenticationError` that end a watch.
AUTH_FAILURE_LIMIT = 3
#: A server "now" further than this from the local clock (seconds) is not believed:
#: the cloud refuses signatures 30 minutes off, so such a ``Date`` is not its clock
#: (a cache, a broken proxy), and following it could read far into the future.
MAX_SKEW = 3600.0
_SECOND = timedelta(seconds=1)


def believed_now(server: float | None, local: float) -> datetime:
    """The "now" a poll reads up to: the server's (Unix seconds) when within `MAX_SKEW`
    of the ``local`` clock, else (or when the server never said) the local clock.

    >>> believed_now(1_700_000_600.0, 1_700_000_000.0).timestamp()
    1700000600.0
    """
    now = server if server is not None and abs(server - local) <= MAX_SKEW else local
    return datetime.fromtimestamp(now, timezone.utc)


class Verdict(enum.Enum):
    """What a poll should do with a listed record."""

    NEW = "new"
    REPEAT = "repeat"
    #: Outside what the poll asked for: the server's error; taking it could move the
    #: cursor past records not yet seen.
    OUTSIDE = "outside"


class Position:
    """Where a watch is, in server time, and which listed records are new.

    Fed with plain calls: `window` for the next poll, `verdict` for each listed record,
    `deliver` when a record is yielded, `ack` once the consumer is done with it (in
    delivery order; `take` does both), `polled` when a poll completed,
    `state` for what to save.

    >>> position = Position.fresh(query, start, overlap=timedelta(0))  # doctest: +SKIP
    >>> lo, hi = position.window(server_now)  # doctest: +SKIP
    """

    def __init__(
        self,
        query: Query,
        overlap: timedelta,
        *,
        cursor: datetime,
        floor: datetime | None = None,
        newest: datetime | None = None,
        newest_ids: tuple[int, ...] = (),
        watermark: int | None = None,
    ) -> None:
        self.query = query
        self.overlap = overlap
        self.cursor = cursor
        self.floor = floor
        self.newest = newest
        self.watermark = watermark
        self._newest_ids = list(newest_ids)
        # Below this second, ids up to the watermark were delivered before a restart.
        self._restored: tuple[datetime, int] | None = None
        if newest is not None and watermark is not None:
            self._restored = (floor_second(newest), watermark)
        second = None if newest is None else floor_second(newest)
        # Delivered ids a poll may list again, with their create_at (for pruning).
        self._seen: dict[int, datetime] = dict.fromkeys(newest_ids, second or cursor)
        self._prune_at = 1024
        # Delivered, not yet acknowledged (in delivery order), and the cursor a restart
        # may use while any are: it never passes the oldest of them.
        self._outstanding: deque[Record] = deque()
        self._ack_cursor = cursor
        self._origin = floor
        self._delivered_max = watermark

    @classmethod
    def fresh(cls, query: Query, start: datetime, overlap: timedelta) -> Position:
        """A watch beginning at ``start`` (server time): nothing older is delivered."""
        # Whole seconds: create_at may be in seconds, and a record from the start's own
        # second must not fall below the floor.
        begin = floor_second(start.astimezone(timezone.utc))
        return cls(query, overlap, cursor=begin, floor=begin)

    @classmethod
    def after(cls, query: Query, newest: Record, overlap: timedelta) -> Position:
        """A watch beginning right after ``newest``, the newest record stored when it
        began: no record up to it (its own second included) is delivered."""
        begin = floor_second(newest.created_at)
        # As after a restart: below the next second, ids up to newest's came before.
        return cls(
            query,
            overlap,
            cursor=begin,
            floor=begin,
            newest=begin + _SECOND,
            watermark=newest.record_id,
        )

    @classmethod
    def from_state(cls, state: object, query: Query, overlap: timedelta, where: str) -> Position:
        """The position saved as ``state``; a `ValidationError` when it is unusable or
        belongs to another query."""
        saved = SavedState.read(state, query, where)
        return cls(
            query,
            overlap,
            cursor=saved.cursor,
            floor=saved.floor,
            newest=saved.newest,
            newest_ids=saved.ids,
            watermark=saved.watermark,
        )

    # --- polls ---------------------------------------------------------------------

    def start(self) -> datetime:
        """Where the next poll begins: the overlap before the cursor, never below floor."""
        lo = self.cursor - self.overlap
        return lo if self.floor is None else max(lo, self.floor)

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The next poll's ``(lo, hi)``: from `start` to the server's ``now``."""
        lo = self.start()
        return lo, max(now, lo + _SECOND)

    @staticmethod
    def accepted(lo: datetime, hi: datetime) -> tuple[datetime, datetime]:
        """The ``[low, high)`` a poll of ``(lo, hi)`` may answer: whole seconds (the wire
        has no finer), and a second of slack for a server that compares whole seconds."""
        return floor_second(lo), ceil_second(hi) + _SECOND

    def verdict(self, record: Record, lo: datetime, hi: datetime) -> Verdict:
        """Whether a record listed by the poll of ``(lo, hi)`` is new."""
        low, high = self.accepted(lo, hi)
        at = record.created_at
        if not low <= at < high:
            return Verdict.OUTSIDE
        if record.record_id in self._seen:
            return Verdict.REPEAT
        if self.floor is not None and at < self.floor:
            return Verdict.REPEAT  # older than the start: not this watch's
        restored = self._restored
        if restored is not None and at < restored[0] and record.record_id <= restored[1]:
            return Verdict.REPEAT
        return Verdict.NEW

    def deliver(self, record: Record) -> None:
        """``record`` (a `Verdict.NEW` one) is handed to the consumer: no poll lists it
        as new again, and it waits for its acknowledgement (`ack`)."""
        at = record.created_at
        if not self._outstanding:
            self._ack_cursor = self.cursor
        self._outstanding.append(record)
        self._seen[record.record_id] = at
        if self._delivered_max is None or record.record_id > self._delivered_max:
            self._delivered_max = record.record_id
        if at > self.cursor:
            self.cursor = at
        if len(self._seen) >= self._prune_at:
            self._prune()

    def ack(self, record: Record) -> None:
        """The consumer is done with ``record``: the oldest delivered record not yet
        acknowledged. Anything else (twice, out of order, never delivered) is a
        `ValidationError`, so the saved position never jumps."""
        outstanding = self._outstanding
        if not outstanding or outstanding[0].record_id != record.record_id:
            raise self._ack_error(record)
        outstanding.popleft()
        self._acked(record)

    def ack_all(self) -> None:
        """Acknowledge every delivered record (the consumer is done with all of them)."""
        while self._outstanding:
            self._acked(self._outstanding.popleft())

    def widen(self, overlap: timedelta) -> None:
        """Poll from ``overlap`` before the cursor from now on (when that is more than
        today's). Ids already pruned stay recognised: below the old start, ids up to the
        highest delivered were delivered (as after a restart)."""
        if overlap <= self.overlap:
            return
        low = floor_second(self.start())
        if self._delivered_max is not None and (self._restored is None or low >= self._restored[0]):
            self._restored = (low, self._delivered_max)
        if self.floor is None:
            self.floor = self._origin
        self.overlap = overlap

    def take(self, record: Record) -> None:
        """`deliver` and `ack` at once."""
        self.deliver(record)
        self.ack(record)

    @property
    def unacknowledged(self) -> int:
        """How many delivered records wait for their acknowledgement."""
        return len(self._outstanding)

    def _acked(self, record: Record) -> None:
        at, rid = record.created_at, record.record_id
        if self.watermark is None or rid > self.watermark:
            self.watermark = rid
        newest = self.newest
        if newest is None or at > newest:
            if newest is None or floor_second(at) != floor_second(newest):
                self._newest_ids = []
            self.newest = newest = at
        if floor_second(at) == floor_second(newest):
            self._newest_ids.append(rid)
        if at > self._ack_cursor:
            self._ack_cursor = at

    def _ack_error(self, record: Record) -> ValidationError:
        rid = record.record_id
        waiting = [r.record_id for r in self._outstanding]
        if rid in waiting:
            problem = (
                f"record {rid} is acknowledged out of order: record {waiting[0]}, delivered "
                "before it, is not acknowledged yet (acknowledge in delivery order)"
            )
        elif rid in self._seen or (self.watermark is not None and rid <= self.watermark):
            problem = f"record {rid} was already acknowledged"
        else:
            problem = f"record {rid} was not delivered by this watch (or not yet)"
        return ValidationError(problem, field="record")

    def polled(self, hi: datetime) -> bool:
        """A poll read everything stored up to ``hi`` (in ``create_at``'s clock); True
        when the position moved. Without this an idle watch would poll an ever longer
        range."""
        if hi <= self.cursor:
            return False
        self.cursor = hi
        self._prune()
        return True

    def _prune(self) -> None:
        # A poll answers nothing below `low` (see `accepted`), and `start` never goes
        # back, so what lies below it can never be listed again.
        low = floor_second(self.start())
        self._seen = {rid: at for rid, at in self._seen.items() if at >= low}
        # Amortised O(1) a record: prune again once the dict has doubled.
        self._prune_at = max(1024, 2 * len(self._seen))
        if self.floor is not None and floor_second(self.cursor - self.overlap) >= self.floor:
            self.floor = None  # no poll reaches below the start any more
        if self._restored is not None and low >= self._restored[0]:
            self._restored = None

    # --- what to save --------------------------------------------------------------

    def state(self, *, delivered: bool = False) -> dict[str, Any]:
        """The JSON-able state to save: what is acknowledged; with ``delivered``, as if
        every delivered record were acknowledged too.

        Its size is O(records acknowledged within the newest record's second).
        """
        newest, ids, watermark = self.newest, self._newest_ids, self.watermark
        cursor = self._ack_cursor if self._outstanding else self.cursor
        if delivered:
            cursor = self.cursor
            for record in self._outstanding:
                newest, ids, watermark = _fold(newest, ids, watermark, record)
        floor = self.floor
        if floor is None and self._origin is not None and cursor - self.overlap < self._origin:
            floor = self._origin  # a restart from here must not reach below the start
        return dump_state(self.query, cursor, floor, newest, ids, watermark)


def _fold(
    newest: datetime | None, ids: list[int], watermark: int | None, record: Record
) -> tuple[datetime | None, list[int], int | None]:
    """The (newest, ids, watermark) of a state once ``record`` is acknowledged too."""
    at, rid = record.created_at, record.record_id
    watermark = rid if watermark is None else max(watermark, rid)
    if newest is None or floor_second(at) > floor_second(newest):
        return at, [rid], watermark
    if floor_second(at) == floor_second(newest):
        return max(newest, at), [*ids, rid], watermark
    return newest, ids, watermark


class DateGap:
    """How far the server's ``Date`` may run ahead of the clock that stamps
    ``create_at`` (a proxy's clock, say): an upper bound, since every listed record
    was stored before the response that listed it. Positions move on idle polls only
    to the ``Date`` minus this bound, so they never pass a record not yet stored.
    Before any record is seen the bound is `MAX_SKEW`: the ``Date`` only seeds where
    a watch starts (and polls still reach up to it).

    >>> gap = DateGap()
    >>> gap.note(datetime(2024, 5, 1, 0, 2, 5, tzinfo=timezone.utc),
    ...          datetime(2024, 5, 1, 0, 0, 0, tzinfo=timezone.utc))
    >>> gap.lead()
    datetime.timedelta(seconds=125)
    """

    def __init__(self) -> None:
        self.bound: float | None = None

    def note(self, date: datetime, newest: datetime) -> None:
        """A response dated ``date`` listed a record stored at ``newest``."""
        gap = (date - newest).total_seconds()
        if self.bound is None or gap < self.bound:
            self.bound = gap

    def lead(self) -> timedelta:
        """How far behind the ``Date`` an idle poll may move the position."""
        bound = MAX_SKEW if self.bound is None else self.bound
        return timedelta(seconds=min(max(bound, 0.0), MAX_SKEW))


class PollFailures:
    """How long to wait after a failed poll, and when to give up.

    The wait is the retry policy's back-off (`backoff_delay`) from the poll interval up
    to `MAX_BACKOFF`, or the server's ``Retry-After`` when longer (up to a day).
    `AUTH_FAILURE_LIMIT` consecutive `AuthenticationError`s end the watch: a wrong or
    rotated secret is not transient.

    >>> failures = PollFailures(10.0, random.Random(1))
    >>> delay = failures.failed(error)  # doctest: +SKIP
    """

    def __init__(self, interval: float, rng: random.Random) -> None:
        self.interval = interval
        self.rng = rng
        self.count = 0
        self.auth = 0

    def succeeded(self) -> None:
        self.count = self.auth = 0

    def failed(self, error: SenseLinkError) -> float | None:
        """Seconds to wait before the next poll, or None: the watch ends with ``error``."""
        self.count += 1
        self.auth = self.auth + 1 if isinstance(error, AuthenticationError) else 0
        if self.auth >= AUTH_FAILURE_LIMIT:
            return None
        # attempt + 1: the first back-off is one to two intervals, above the usual pace.
        delay = backoff_delay(self.count + 1, self.interval, MAX_BACKOFF, self.rng)
        retry_after = error.retry_after if isinstance(error, APIError) else None
        if retry_after is not None and retry_after > delay:
            delay = min(float(retry_after), MAX_RETRY_AFTER)
        return delay
