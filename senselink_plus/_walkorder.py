"""Walk coordinates: one forward axis for both orders, so the paging code is written once.

A record's `Key` is ``(second, record_id)`` read along the walk: as they are for an
ascending walk, both negated for a descending one. In an honest listing read in the
walk's order, keys strictly increase (``create_at`` never decreases as ``record_id``
grows), so for either order "behind a watermark" is ``key <= mark`` and "ahead" is
``key > mark``. Only the wire differs, and `Axis.bounds` is the one place that knows how.

>>> axis = Axis(Order.DESCENDING, start=100, end=400)
>>> axis.bounds(listing=-300, last=-101)  # walk seconds -300..-101 are real 101..300
(101, 301)
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Sequence
from typing import NamedTuple, overload

import attrs

from ._exceptions import ResponseError
from ._models import Order, Record
from ._timeutil import wire_seconds

__all__ = ["BIG", "DAY", "Axis", "Key", "PageKeys", "PageRequest"]

#: Beyond any record_id: ``Key(s, -BIG)`` sits before every record of walk second ``s``,
#: ``Key(s, BIG)`` after every one.
BIG = 2**63
#: The longest window one list call may ask for, in seconds.
DAY = 86_400


class Key(NamedTuple):
    """Where a record lies along the walk."""

    second: int
    rid: int


@attrs.frozen
class PageRequest:
    """One list call, in real unix seconds: ``page`` of ``size`` over ``[time_from,
    time_to]`` in ``order``; ``seq`` tells the walk's calls apart."""

    seq: int
    time_from: int
    time_to: int
    page: int
    size: int
    order: Order


@attrs.frozen
class Axis:
    """The walk's direction and its range ``[start, end]`` in real unix seconds."""

    order: Order
    start: int
    end: int

    @property
    def ascending(self) -> bool:
        return self.order is Order.ASCENDING

    def rid(self, record: Record) -> int:
        """``record``'s id along the walk (as `Key.rid`)."""
        return record.record_id if self.ascending else -record.record_id

    def _along(self, seconds: list[int], rids: list[int]) -> PageKeys:
        """The keys of records with these seconds and ids, in walk order. A record
        stamped before the one it follows (committed late: a larger id with an earlier
        ``create_at``) is placed in that one's second, so keys never go back."""
        if not self.ascending:
            seconds, rids = list(map(operator.neg, seconds)), list(map(operator.neg, rids))
        if seconds != sorted(seconds):  # sorted() of a list in order is one quick pass
            seconds = list(itertools.accumulate(seconds, max))
        return PageKeys(seconds, rids)

    def checked(
        self, request: PageRequest, records: tuple[Record, ...]
    ) -> tuple[tuple[Record, ...], PageKeys]:
        """The records of the page answered to ``request`` that lie in its window, and
        their keys in walk order. A record outside the window is not in the listing
        asked for: it is dropped, and the page read as if it were not there.
        `ResponseError` if the page holds more than asked, or its records are not in
        ``record_id`` order or repeat one."""
        if len(records) > request.size:
            raise ResponseError(f"asked for {request.size} records, the page holds {len(records)}")
        time_from, time_to = request.time_from, request.time_to
        seconds = wire_seconds([record.create_at for record in records])
        records, seconds = _inside(records, seconds, time_from, time_to)
        rids = [record.record_id for record in records]
        if request.order is not self.order:
            seconds.reverse()
            rids.reverse()
        keys = self._along(seconds, rids)
        ahead = keys.rids
        if any(map(operator.ge, ahead, itertools.islice(ahead, 1, None))):
            a, b = next((a, b) for a, b in itertools.pairwise(ahead) if b <= a)
            raise ResponseError(
                "the page is not in record_id order, or repeats a record "
                f"(records {abs(a)} then {abs(b)})"
            )
        return records, keys

    def bounds(self, listing: int, last: int) -> tuple[int, int]:
        """``(time_from, time_to)`` of the listing that starts at walk second ``listing``
        and holds the walk seconds up to ``last``.

        The far bound reaches one second past ``last`` (capped at the range's end): a
        server that compares milliseconds includes ``last``'s whole second only so. What
        that second brings lies past the slice and is not taken from this listing. A
        window of no length is never sent (the SDK refuses one from its users too); it
        widens by a second instead: ascending, back into a second already passed;
        descending, below the slice (records there lie past it and are not taken).
        """
        if self.ascending:
            time_to = min(last + 1, self.end)
            return min(listing, time_to - 1), time_to
        time_to = min(1 - listing, self.end)
        return min(-last, time_to - 1), time_to

    @property
    def first(self) -> int:
        """The walk second the walk starts at."""
        return self.start if self.ascending else -self.end

    @property
    def last(self) -> int:
        """The walk second the walk ends at."""
        return self.end if self.ascending else -self.start

    def window(self, first: int) -> int:
        """The last walk second of the window that starts at walk second ``first``: as
        long as one list call may ask for (24 h; the one holding ``end`` one second
        more, since its far bound is ``end`` itself, not one past it)."""
        if self.ascending:
            return self.end if self.end - first <= DAY else first + DAY - 1
        top = -first
        size = DAY + 1 if top == self.end else DAY
        return -max(self.start, top - size + 1)


class PageKeys(Sequence[Key]):
    """The keys of one page's records along the walk, each `Key` made when asked for
    (the walk looks at a few of a page's keys: where the mark and the end fall, the
    first and the last)."""

    __slots__ = ("rids", "seconds")

    def __init__(self, seconds: list[int], rids: list[int]) -> None:
        self.seconds = seconds
        self.rids = rids

    def __len__(self) -> int:
        return len(self.rids)

    @overload
    def __getitem__(self, index: int) -> Key: ...

    @overload
    def __getitem__(self, index: slice) -> list[Key]: ...

    def __getitem__(self, index: int | slice) -> Key | list[Key]:
        if isinstance(index, slice):
            return list(map(Key, self.seconds[index], self.rids[index]))
        return Key(self.seconds[index], self.rids[index])

    def bisect_right(self, key: Key) -> int:
        """How many of the keys are ``<= key``, as `bisect.bisect_right` finds, at C
        speed: within a second, keys are ordered by their ids."""
        second, rid = key
        seconds = self.seconds
        low = bisect.bisect_left(seconds, second)
        return bisect.bisect_right(self.rids, rid, low, bisect.bisect_right(seconds, second, low))


def _inside(
    records: tuple[Record, ...], seconds: list[int], time_from: int, time_to: int
) -> tuple[tuple[Record, ...], list[int]]:
    """The records (and their seconds) that lie in ``[time_from, time_to]``."""
    ordered = sorted(seconds)  # the least and greatest: one quick pass, a page is in order
    if not ordered or (time_from <= ordered[0] and ordered[-1] <= time_to):
        return records, seconds
    kept = [i for i, second in enumerate(seconds) if time_from <= second <= time_to]
    return tuple(records[i] for i in kept), [seconds[i] for i in kept]
