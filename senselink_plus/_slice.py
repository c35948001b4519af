"""The keyset reader of one time slice: fed the keys of a page, it says what to take.

A `Slice` owns the walk seconds ``[first, end.second]`` and keeps a watermark ``mark``:
every key ``<= mark`` is behind (taken already, or before the slice). It reads one page
at a time, each planned from the previous answer (`Slice.plan`):

- **keyset**: page 1 of the listing from ``mark.second``. Every record ahead of the
  mark has a key ``>= mark.second``, so it is in that listing, after everything behind:
  the page's records ahead of the mark are exactly the next ones. Always usable.
- **positional**, only inside a second that holds more records than a page: page ``q``
  of a listing from an earlier second, placed to begin at or before a record known to
  be behind (the `Anchor`). It is used only if its first record is still behind the
  mark (it "reaches back"): the page is contiguous, so what follows is again exactly
  the next records. One that does not reach back is dropped, and the slice re-reads by
  keyset. Nothing is ever taken from an unchecked page.

The slice ends on a page that is short or that shows a record past ``end``: every
record it owns and has not taken came before that record, in that page.
"""

from __future__ import annotations

import attrs

from ._exceptions import ResponseError
from ._models import RecordPage
from ._walkorder import BIG, Key, PageKeys

__all__ = ["FAIL_LIMIT", "WALK_LIMIT", "Anchor", "Part", "Plan", "Slice", "Taken", "place"]

#: Pages in a row that fail their check (do not reach back, or bring nothing new)
#: before the slice gives up with `ResponseError`.
FAIL_LIMIT = 8
#: Pages in a row that only walk on through one crowded second (all behind the mark).
WALK_LIMIT = 1000
#: Whatever the page size, a positional page may be this large, so one can always be
#: placed with room after the anchor.
MIN_POSITIONAL = 10


@attrs.frozen
class Plan:
    """Page ``page`` of ``size`` of the listing that starts at walk second ``listing``."""

    listing: int
    page: int
    size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


@attrs.frozen
class Anchor:
    """At ``position`` of the listing from ``listing`` was ``key``, at or behind the mark."""

    listing: int
    position: int
    key: Key


@attrs.frozen
class Taken:
    """What a page gave: ``page.records[start:stop]`` are taken, in order."""

    start: int
    stop: int
    #: The slice is read to its end.
    done: bool = False
    #: The page failed its check and was not used.
    failed: bool = False
    #: The walk seconds the records taken cover, for the density (0: nothing to learn):
    #: from the first taken to the last on a full page (time before the first may be
    #: empty), from the mark to the slice's end on its last page.
    seconds: int = 0


def place(position: int, largest: int, margin: int = 1) -> tuple[int, int] | None:
    """``(page, size)`` of the page, no larger than ``largest``, that holds ``position``
    and ``margin`` before it (against records removed ahead of them) and the most
    positions after ``position``; None if no such page has room after it.

    >>> place(99, 100)  # page 2 of 98 holds positions 98..195
    (2, 98)
    """
    target = max(position - margin, 0)
    best = None
    room = 0
    for size in range(largest, 1, -1):
        page = target // size + 1
        after = page * size - 1 - position
        if after > room:
            best, room = (page, size), after
    return best


@attrs.define(eq=False)
class Slice:
    """One slice of the walk, read by keyset (see the module docstring)."""

    first: int
    end: Key
    mark: Key
    anchor: Anchor | None = None
    failures: int = 0
    walked: int = 0
    done: bool = False

    @classmethod
    def of(cls, first: int, last: int) -> Slice:
        return cls(first, Key(last, BIG), Key(first, -BIG))

    @property
    def last(self) -> int:
        return self.end.second

    def cut(self, last: int) -> Slice | None:
        """End this slice at walk second ``last``; the slice of what lay past it (None:
        nothing did)."""
        if last >= self.last:
            return None
        rest = Slice(last + 1, self.end, Key(last + 1, -BIG))
        self.end = Key(last, BIG)
        return rest

    def cap(self, newest: Key, *, reading: bool) -> None:
        """Nothing past ``newest`` is read; a slice not ``reading`` with nothing left
        before it is done."""
        self.end = min(self.end, newest)
        if not reading and (self.first > self.last or self.mark >= self.end):
            self.done = True

    def plan(self, size: int, largest: int) -> Plan:
        """The next page to read: keyset of ``size``, or positional up to ``largest``."""
        anchor = self.anchor
        if anchor is not None:
            # Walking on through a crowded second, double the size each page (arrivals
            # in that second push the mark down a descending listing).
            grown = min(largest, max(size, MIN_POSITIONAL) << min(max(self.walked - 1, 0), 6))
            position = anchor.position
            placed = (
                place(position, grown) or place(position, largest) or place(position, largest, 0)
            )
            if placed is not None:
                return Plan(anchor.listing, *placed)
        return Plan(self.mark.second, 1, size)

    def take(self, plan: Plan, keys: PageKeys, size: int) -> Taken:
        """Feed the keys of the page answered for ``plan`` (checked to strictly increase)
        of ``size`` records at most (the size the server served)."""
        mark = self.mark
        if not keys and size <= 0:
            return self._fail("a full page held only records outside the window asked for")
        if plan.page > 1 and (not keys or keys[0] > mark):
            return self._fail("a page did not reach back to the last record taken")
        start = keys.bisect_right(mark)
        stop = keys.bisect_right(self.end)
        if stop > start:
            self.mark = keys[stop - 1]
            self.failures = self.walked = 0
        if stop < len(keys) or len(keys) < size:
            self.done = True
            return Taken(start, stop, done=True, seconds=self.last - mark.second + 1)
        if stop > start:
            self.anchor = self._after_taking(plan, keys)
            return Taken(start, stop, seconds=self.mark.second - keys[start].second + 1)
        return self._walk_on(plan, keys)

    def _after_taking(self, plan: Plan, keys: PageKeys) -> Anchor | None:
        """Read on by keyset, unless the mark's second fills half the page or more: then
        by position in this same listing, from the mark (the last key of the page)."""
        second = self.mark.second
        same = len(keys) - keys.bisect_right(Key(second, -BIG))
        if same < len(keys) and 2 * same <= len(keys):
            return None
        return Anchor(plan.listing, plan.offset + len(keys) - 1, self.mark)

    def _walk_on(self, plan: Plan, keys: PageKeys) -> Taken:
        """A full page all behind the mark: the mark lies further down this listing."""
        if self.anchor is not None and keys[-1] <= self.anchor.key:
            return self._fail("a page brought nothing past the one before")
        self.walked += 1
        if self.walked > WALK_LIMIT:
            raise ResponseError(
                f"{WALK_LIMIT} pages in a row held only records already passed: "
                "the server does not page through its listing"
            )
        self.anchor = Anchor(plan.listing, plan.offset + len(keys) - 1, keys[-1])
        return Taken(0, 0)

    def _fail(self, why: str) -> Taken:
        self.failures += 1
        self.anchor = None
        if self.failures > FAIL_LIMIT:
            raise ResponseError(f"{FAIL_LIMIT + 1} pages in a row failed their check ({why})")
        return Taken(0, 0, failed=True)


@attrs.define(eq=False)
class Part:
    """A slice in the walk (`_paging.Walk`): its read in flight and the pages waiting
    for their turn."""

    slice: Slice
    reading: bool = False
    started: bool = False
    #: Cut to the planner's length: how many pages it took tunes the planner.
    sized: bool = False
    pages: int = 0
    held: list[RecordPage] = attrs.Factory(list)
