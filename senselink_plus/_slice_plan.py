"""How long a new slice should be: from the density of the records read so far.

A slice is read one page at a time, so slices are what runs in parallel. Each new slice
is sized to hold `SlicePlanner.pages` pages: about `TARGET_RECORDS` records, and at
least `TARGET_PAGES` pages. That is long enough that the re-read that starts each page
and the partly filled page that ends a slice cost little (with small pages, a few pages
would be mostly such waste), short enough that ``concurrency`` of them near the head of
the walk keep the calls busy while holding few records. The density is records per
second over the last `MEMORY` pages; a page's worth is what the full pages of late
brought that was new (a keyset page re-reads its first second). The fill (the share of
the pages aimed at) adapts: a slice that needs more pages than aimed at lowers it, one
that fits raises it a little, so evenly spaced records fill slices to the brim and
bursty ones leave room. Sizes only affect how many calls a walk costs, never what it
yields.

>>> planner = SlicePlanner(page_size=100)
>>> planner.observe(records=100, seconds=50)  # 2 records a second
>>> planner.seconds()  # 4 pages of 100 at a fill of 0.95
190
>>> planner.observe(records=98, seconds=49, full=True)  # full pages bring 98 new ones
>>> planner.seconds()  # 4 pages of 98 at a fill of 0.95, at 198 records in 99 s
186
"""

from __future__ import annotations

import collections

from ._walkorder import DAY

__all__ = ["CUT_PAST", "MEMORY", "TARGET_PAGES", "TARGET_RECORDS", "SlicePlanner"]

#: Records a slice is sized to hold (2 pages of 100)...
TARGET_RECORDS = 200
#: ...and the fewest pages it is sized to hold.
TARGET_PAGES = 4
#: Recent pages the density is measured over.
MEMORY = 8
#: A slice is cut at one slice's length when it reaches this many lengths past its
#: mark: the rest, a quarter of a slice or more, is read apart, in parallel. (At 2,
#: day windows of 7 pages were never cut: each was read page by page while the calls
#: ahead of it waited on the memory budget; 30 days of one device took 55 round trips
#: at 4 in flight, 54 now, and 31 instead of 28 at 8.)
CUT_PAST = 1.25
_FILL_START, _FILL_MIN, _FILL_MAX = 0.95, 0.5, 0.995
_FILL_DOWN, _FILL_UP = 0.05, 0.01


class SlicePlanner:
    """Records per second seen lately, and the length of the next slice."""

    def __init__(self, page_size: int) -> None:
        self.page_size = page_size
        #: The pages a slice is sized to hold.
        self.pages = max(TARGET_PAGES, -(-TARGET_RECORDS // page_size))
        self.fill = _FILL_START
        self._seen: collections.deque[tuple[int, int]] = collections.deque(maxlen=MEMORY)
        self._records = 0
        self._seconds = 0
        self._worth: collections.deque[int] = collections.deque(maxlen=MEMORY)

    @property
    def known(self) -> bool:
        return bool(self._seen)

    def observe(self, records: int, seconds: int, *, full: bool = False) -> None:
        """A page covered ``seconds`` of walk time and held ``records`` new ones there
        (``full``: the page was full, so ``records`` is what a page is worth)."""
        if full:
            self._worth.append(records)
        if len(self._seen) == MEMORY:
            old_records, old_seconds = self._seen[0]
            self._records -= old_records
            self._seconds -= old_seconds
        self._seen.append((records, seconds))
        self._records += records
        self._seconds += seconds

    def finished(self, pages: int) -> None:
        """A slice planned by `seconds` was read in ``pages`` pages."""
        if pages > self.pages:
            self.fill = max(_FILL_MIN, self.fill - _FILL_DOWN)
        else:
            self.fill = min(_FILL_MAX, self.fill + _FILL_UP)

    def seconds(self, pages: int | None = None) -> int | None:
        """The length of the next slice, or of one sized to hold ``pages`` pages (None
        while nothing is known)."""
        if not self._seen:
            return None
        if self._records == 0:
            return DAY
        worth = sum(self._worth) / len(self._worth) if self._worth else self.page_size
        wanted = (pages or self.pages) * worth * self.fill
        return max(1, min(DAY, int(wanted * self._seconds / self._records)))

    def ahead(self, first: int, last: int) -> int | None:
        """Where to end a slice that goes on from walk second ``first`` to ``last``, so
        what lies beyond one slice's length is read apart; None while that would be
        less than a quarter of a slice (`CUT_PAST`) or nothing is known."""
        seconds = self.seconds()
        if seconds is None or (last - first + 1) <= seconds * CUT_PAST:
            return None
        return first + seconds - 1

    def half(self, mark: int, last: int) -> int | None:
        """Where to cut off the far half of a slice being read (at the end of a walk, to
        read it in parallel), if each half holds `TARGET_PAGES` pages or more."""
        least = self.seconds(TARGET_PAGES)
        if least is None or last - mark < 2 * least:
            return None
        return mark + (last - mark) // 2

    def expected(self, seconds: int) -> int:
        """About how many records ``seconds`` of walk time hold (a full page if unknown)."""
        if not self._seen or self._seconds == 0:
            return self.page_size
        return -(-seconds * self._records // self._seconds)
