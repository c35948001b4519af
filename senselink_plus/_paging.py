"""The paging decisions of `records()`, as a pure object: fed pages, it says what to do.

`RangeCursor` holds no client, reads no clock and never awaits. A driver asks it which
list calls to send (`RangeCursor.sends`), which answer it needs next
(`RangeCursor.needed`), and feeds each answer back (`RangeCursor.feed`), which says what
to yield, what to cancel, whether to back off, and when the walk is over.

What it relies on (the only promises taken from the server):

1. Within a window, the listing is ordered by ``record_id`` (ascending or descending as
   asked), and a record's ``create_at`` never decreases as ``record_id`` grows: new
   records arrive at the newest end, and retention removes records from the oldest end.
2. A page ``q`` of size ``m`` holds the records at positions ``[(q-1)·m, q·m)`` of the
   listing *as it was when that call was answered*.

Everything else (``total``, the page size echoed, the order within a page, the window
of the records sent back) is checked, never trusted.

How it keeps every record exactly once, with memory bounded by a page:

- **Watermark.** Only records past the last one yielded (a larger ``record_id`` when
  ascending, a smaller one when descending) are yielded. Nothing else is remembered, so
  memory never grows with the window, and a repeat is dropped wherever it comes from
  (a re-read, a page shifted by arrivals, the second two windows share).
- **Anchors.** A call need not list the whole window: it may start its listing at a
  second (``time_from`` ascending, ``time_to`` descending). Records that expire or
  arrive on the far side of that second cannot move its pages. Each record of a page
  that begins a second starts such a listing at a known position, so the next page can
  be asked as "page q of the listing from second s" that starts exactly one record
  before the previous page ended, at the full ``page_size`` (when seconds are crowded,
  with a page a little smaller). A restart uses the listing from the watermark's second,
  placed by an exact tally of the records yielded in the last two seconds. Descending,
  whether that listing holds all of its last second (the server compares whole
  seconds) or only its very start (milliseconds) is learnt from the records sent back.
- **Overlap.** Every page after a listing's first must reach back to the last record
  yielded. One that does not proves that the listing moved under the walk (records
  expired before it, or a page fetched ahead was answered out of turn): it is not used,
  and the walk restarts from the watermark's second. So no record that was in the
  listing throughout is ever skipped, however arrivals, expiries and prefetching
  interleave. (Pages of one or two records leave no room for an overlap; they are used
  unchecked.)
- **Walking on.** Descending, arrivals in the watermark's second push it down the
  listing: a page of records ahead of it, in order, that holds the last record the
  previous step placed (or the watermark) and ends past it, is a step towards it.
- **Bounded.** No page is planned past the largest ``total`` seen (but the one after a
  full page that reaches it); a page that brings nothing new (a repeat, a reshuffle,
  an answer that ignores ``page``) or fails the overlap check restarts from the
  watermark, with back-off from the second time in a row, and the third in a row
  raises `ResponseError`. So a window costs at most ``2 * lookahead * 4 * (P + 1)``
  requests, where ``P`` is the number of pages that brought a new record, moved past a
  shared boundary second or stepped on towards the watermark (so ``P`` grows only with
  records never seen before), plus one for each window whose first page was fetched
  ahead (`RangeCursor.bound`).
- **Ends cleanly** on a short or empty page, or on a restart that finds nothing new. A
  full page that reaches ``total`` is followed by one more request (``total`` may be
  stale); a ``total`` that runs ahead of the listing costs one extra request. A page
  that holds records although its own ``total`` says it cannot raises `ResponseError`,
  so an under-stated ``total`` is an error, never an early end.

Prefetch: up to ``lookahead`` calls of the window being read are in flight, and the
first pages of the windows after it fill what the current window leaves of
``lookahead``, so a range of many small windows costs about ``windows / lookahead``
round trips. Records still come out in order; about ``2 * lookahead`` pages are held at
most.
"""

from __future__ import annotations

import bisect
import functools
import operator
from collections.abc import Sequence
from datetime import datetime, timezone

import attrs

from ._exceptions import ResponseError
from ._models import Order, Record, RecordPage

__all__ = ["PageRequest", "RangeCursor", "Step"]

_MS_THRESHOLD = 10**11
#: Pages in a row that bring nothing new before the walk gives up.
UNPRODUCTIVE_LIMIT = 3
#: Pages that walk on towards the watermark between two records yielded.
RELOCATION_LIMIT = 1000


@attrs.frozen
class PageRequest:
    """One list call the cursor wants: page ``page`` of ``size`` over the listing
    ``[time_from, time_to]``, expected to cover the window's positions from ``start``."""

    seq: int
    window: int
    time_from: datetime
    time_to: datetime
    page: int
    size: int
    #: Expected position of the page's first record in the window's own order.
    start: int
    #: Must reach back to the last record yielded to be used.
    verify: bool
    #: Where the call's listing begins, in the window's positions.
    origin: int
    #: The listing's bound (``time_from`` ascending, ``time_to`` descending), unix s.
    bound: int


@attrs.frozen
class Step:
    """What the driver does after feeding one page.

    Yield ``records`` (in order), cancel the calls in ``cancel``, wait
    ``backoff`` attempts' worth of back-off before sending anything new (0: none), and
    stop when ``done``.
    """

    records: tuple[Record, ...] = ()
    cancel: tuple[PageRequest, ...] = ()
    backoff: int = 0
    done: bool = False


def _second(raw: int) -> int:
    """The unix second of a raw ``create_at`` (milliseconds from 10**11 up)."""
    return raw // 1000 if raw >= _MS_THRESHOLD else raw


def _raw_bounds(lo_s: int, hi_s: int) -> tuple[int, int, int, int]:
    """Raw ``create_at`` bounds of the seconds ``[lo_s, hi_s]`` in both units: a value
    ``v`` lies within when ``a <= v <= b or c <= v <= d``."""
    return lo_s, min(hi_s, _MS_THRESHOLD - 1), max(lo_s * 1000, _MS_THRESHOLD), hi_s * 1000 + 999


@functools.lru_cache(maxsize=4096)
def plan_after(end: int, size: int, largest: int = 100) -> tuple[int, int] | None:
    """The page ``(number, size)`` that starts at least one record before ``end`` and
    reaches furthest past it, with a size from ``size // 2`` to ``size``; when ``end``
    is a multiple of each of those, the largest smaller size that is not, else the
    smallest larger one up to ``largest`` (what the server serves); None when there
    is none.

    >>> plan_after(100, 100)   # page 2 of 99 covers [99, 198)
    (2, 99)
    >>> plan_after(6, 3)       # 6 is a multiple of 3 and 2: page 2 of 4 covers [4, 8)
    (2, 4)
    """
    best: tuple[int, int, int] | None = None
    for m in range(size, max(size // 2, 2) - 1, -1):
        start = (end - 1) // m * m
        reach = start + m - end
        if reach > 0 and (best is None or reach > best[0]):
            best = (reach, start // m + 1, m)
            if reach >= m - 1:  # overlap of one record: nothing does better
                break
    if best is None:  # ``end`` is a multiple of each: any smaller size, else larger
        for m in (*range(size // 2 - 1, 1, -1), *range(max(size + 1, 2), largest + 1)):
            if end % m:
                return (end - 1) // m + 1, m
    return None if best is None else (best[1], best[2])


#: A listing a call may ask for: its bound in unix seconds (``time_from`` ascending,
#: ``time_to`` descending) and where it begins in the window's positions.
Anchor = tuple[int, int]


@attrs.define
class _Window:
    """The walk of one window: what it has planned and what it has learnt."""

    index: int
    lo: datetime
    hi: datetime
    size: int
    lo_s: int
    hi_s: int
    #: Raw ``create_at`` bounds of the window, a second wider each side (the server's
    #: rounding of its inclusive bounds is not documented).
    bounds: tuple[int, int, int, int]
    #: Position of the last record yielded from this window (-1: none yet).
    mark: int = -1
    #: Expected end of the last page planned.
    frontier: int = 0
    #: The latest page used, up to the mark: its records, the position of its first
    #: record, and the second of the record before it.
    page: tuple[Record, ...] = ()
    page_base: int = 0
    page_before: int | None = None
    #: The listing from the watermark's second, and where it begins.
    mark_anchor: Anchor | None = None
    #: The furthest position any ``total`` answered says the window reaches.
    limit: int | None = None
    unproductive: int = 0
    #: The page size the server uses whatever is asked (0: it follows the size asked),
    #: and the largest it serves (the spec's maximum until a page comes back capped).
    fixed: int = 0
    largest: int = 100
    #: How many records left the listing of the last record yielded since it was read
    #: there (records expiring ahead of the walk): a restart reaches back that much less.
    drift: int = 0
    #: The listing the last record yielded was read from, its place there, and that
    #: listing's total then.
    mark_local: tuple[int, int, int] | None = None
    #: The first call of the latest restart that starts past the top of its listing.
    restart_seq: int = -1
    #: The next restart begins at the top of its listing: a restart past the records
    #: of the watermark's second did not reach back, so their count cannot be trusted.
    from_top: bool = False
    #: The second of the last record yielded, and the position after it (a page that
    #: starts there can begin a listing with its first record).
    last_second: int | None = None
    frontier_seen: int = 0
    #: Whether this window yielded a record yet.
    taken: bool = False
    #: The last record a walk towards the watermark placed, and the steps it took
    #: since the last record yielded (see `_relocate`).
    walk_id: int | None = None
    relocations: int = 0
    placings: int = 0
    restarts: int = 0
    #: A listing that ended before the page asked ``(bound, origin, total)``, and the
    #: call that reads its last page.
    tail: tuple[int, int, int] | None = None
    tail_seq: int = -1


class RangeCursor:
    """Every record of consecutive windows, each once, in order: the decisions of
    `RecordPager`, with no I/O.

    >>> cursor = RangeCursor(windows, order=Order.ASCENDING, page_size=100, lookahead=4)
    >>> started = cursor.sends()  # start these calls                 # doctest: +SKIP
    >>> step = cursor.feed(cursor.needed(), page)  # its answer         # doctest: +SKIP
    """

    def __init__(
        self,
        windows: Sequence[tuple[datetime, datetime]],
        *,
        order: Order,
        page_size: int,
        lookahead: int,
        max_items: int | None = None,
    ) -> None:
        self.windows = tuple(windows)
        self.ascending = order is Order.ASCENDING
        self.page_size = page_size
        self.lookahead = max(lookahead, 1)
        #: Records still wanted (None: all).
        self.remaining = max_items
        #: The last record yielded: its id and raw ``create_at``.
        self.watermark: int | None = None
        self.watermark_at = 0
        #: Records yielded in the watermark's second, and in the second yielded before
        #: it: ``(second, all, at the second's very start)`` (a restart's place).
        self.tally = (0, 0, 0)
        self.tally_before = (0, 0, 0)
        #: Descending: the server compares whole seconds (the records of a listing's
        #: last second count whole, not only those at its very start), and whether
        #: that is known yet (learnt from the newest record of a listing's first page).
        self.whole_seconds = False
        self.compare_known = self.ascending
        #: Requests planned so far.
        self.sent = 0
        self.done = max_items == 0 or not self.windows
        self._seq = 0
        self._in_flight: list[PageRequest] = []  # ordered by need: (window, seq)
        #: Later windows whose first page went out ahead of their turn.
        self._ahead: dict[int, _Window] = {}
        #: Calls in flight whose answer came (`arrived`) but was not fed yet.
        self._answered: set[int] = set()
        self._productive: list[int] = []
        self._whens: dict[int, datetime] = {}
        self._window = self._open(0)

    def __repr__(self) -> str:
        where = "done" if self.done else f"window {self._window.index}"
        return (
            f"RangeCursor({where}, watermark={self.watermark}, "
            f"in_flight={len(self._in_flight)}, sent={self.sent})"
        )

    # --- what the driver asks ---------------------------------------------------------

    def needed(self) -> PageRequest | None:
        """The call whose answer decides what comes next (None when the walk is over)."""
        if self.done or not self._in_flight:
            return None
        return self._in_flight[0]

    def sends(self) -> list[PageRequest]:
        """Calls to start now: the current window's next pages first, then the pages
        of the windows after it, up to ``lookahead`` awaiting an answer and
        ``2 * lookahead`` answered or not."""
        if self.done:
            return []
        before = self._seq
        window = self._window
        answered = self._answered
        if not self._pending(window) and (window.limit is None or window.unproductive):
            self._restart(window)  # a window's first page, or after one that did not fit
        while (
            # The window being read gets its own ``lookahead`` calls: first pages of later
            # windows, answered already or not, never hold it back.
            sum(1 for r in self._in_flight if r.window == window.index and r.seq not in answered)
            < self.lookahead
            and window.limit is not None
            and window.frontier < window.limit
            and self._budget_allows(window.index)
            and self._plan(window) is not None
        ):
            pass
        if not self._pending(window):  # nothing left to plan, yet not ended: look again
            self._restart(window)
        index = window.index + 1
        while self._room() and index < len(self.windows):
            ahead = self._ahead.get(index)
            if ahead is None:
                if not self._budget_allows():
                    break
                ahead = self._ahead[index] = self._fresh_window(index)
                self._top(ahead)
            while (  # a later window whose first page is in (`arrived`): its next pages
                self._room()
                and ahead.limit is not None
                and ahead.frontier < ahead.limit
                and self._budget_allows()
                and self._plan(ahead, checked=True) is not None
            ):
                pass
            index += 1
        self._in_flight.sort(key=_need_order)
        return [r for r in self._in_flight if r.seq > before]

    def feed(self, request: PageRequest, page: RecordPage) -> Step:
        """Take the answer to ``request`` (the call `needed` named)."""
        if request is not self.needed():
            raise RuntimeError(f"fed {request!r}, but the cursor needs {self.needed()!r}")
        self._in_flight.pop(0)
        self._answered.discard(request.seq)
        return self._take(self._window, request, page)

    def arrived(self, request: PageRequest, page: RecordPage) -> bool:
        """Take note of an answer as soon as it comes (it is fed in its turn as usual):
        its call no longer counts as awaiting an answer, and a later window's first
        page lets that window's next pages go out before its turn. Nothing is yielded
        or decided. True when `sends` may now have more calls to start."""
        if self.done or not any(r is request for r in self._in_flight):
            return False
        self._answered.add(request.seq)
        ahead = self._ahead.get(request.window)
        if ahead is None or ahead.limit is not None or request.page != 1:
            return True
        if request.window <= self._window.index:
            return True  # its turn came: it is fed as usual
        records = page.records
        count = len(records)
        echoed = page.page_size
        if count > request.size or not 0 < echoed <= request.size:
            return True  # a server that pages its own way: planned in its turn
        ids = [r.record_id for r in records]
        if ids != sorted(ids, reverse=not self.ascending):
            return True
        if echoed < request.size:  # the server caps the page size
            ahead.size = ahead.frontier = echoed
        ahead.page, ahead.page_base, ahead.page_before = records, 0, None
        # As `_take` would: a full page that reaches ``total`` is followed by one more.
        ahead.limit = max(page.total, count + 1) if count == echoed else count
        return True

    def _room(self) -> bool:
        """Whether another call for a later window may go out: fewer than ``lookahead``
        await an answer, and fewer than ``2 * lookahead`` pages are in flight or held."""
        flying = self._in_flight
        return (
            len(flying) - len(self._answered) < self.lookahead
            and len(flying) < 2 * self.lookahead
        )

    def bound(self) -> int:
        """The most requests the walk so far may cost (see the module docstring)."""
        chains = sum((UNPRODUCTIVE_LIMIT + 1) * (p + 1) for p in self._productive)
        # Up to ``lookahead`` calls await an answer, and as many answered ones may be
        # held: a restart can drop twice ``lookahead`` planned calls.
        return 2 * self.lookahead * chains + len(self.windows)

    # --- planning ---------------------------------------------------------------------

    def _open(self, index: int) -> _Window:
        self._productive.append(0)
        ahead = self._ahead.pop(index, None)
        return ahead if ahead is not None else self._fresh_window(index)

    def _fresh_window(self, index: int) -> _Window:
        lo, hi = self.windows[index] if self.windows else (_EPOCH, _EPOCH)
        lo_s, hi_s = int(lo.timestamp()), int(hi.timestamp())
        bounds = _raw_bounds(lo_s - 1, hi_s + 1)
        return _Window(index, lo, hi, self.page_size, lo_s, hi_s, bounds)

    def _request(
        self, window: _Window, anchor: Anchor, page: int, size: int, *, verify: bool
    ) -> PageRequest:
        bound, origin = anchor
        when = self._when(bound, window)
        if self.ascending:
            time_from, time_to = when, window.hi
        else:
            time_from, time_to = window.lo, when
        self._seq += 1
        self.sent += 1
        start = origin + (page - 1) * size
        window.frontier = start + size
        request = PageRequest(
            self._seq, window.index, time_from, time_to, page, size, start, verify, origin, bound
        )
        self._in_flight.append(request)
        return request

    def _top(self, window: _Window) -> PageRequest:
        """The window's first page: the top of its whole listing."""
        return self._request(window, self._top_anchor(window), 1, window.size, verify=False)

    def _when(self, bound: int, window: _Window) -> datetime:
        """The bound as an aware datetime in the window's zone (the window's own ends
        as they were given)."""
        if bound == window.lo_s:
            return window.lo
        if bound == window.hi_s:
            return window.hi
        cached = self._whens.get(bound)
        if cached is None:
            if len(self._whens) > 1024:
                self._whens.clear()
            tz = window.lo.tzinfo
            cached = self._whens[bound] = datetime.fromtimestamp(bound, timezone.utc).astimezone(tz)
        return cached

    def _budget_allows(self, index: int | None = None) -> bool:
        """Whether the records still wanted justify another call (for one window's
        calls in flight, or all of them)."""
        if self.remaining is None:
            return True
        planned = sum(r.size for r in self._in_flight if index is None or r.window == index)
        return planned < self.remaining

    def _pending(self, window: _Window) -> bool:
        return any(r.window == window.index for r in self._in_flight)

    def _plan(self, window: _Window, *, checked: bool = False) -> PageRequest | None:
        """Ask for the next page, unless it would reach no further than the last one
        planned (then the answers in flight must come first), or, when ``checked``, it
        could not be checked against the page before it."""
        anchor, page, size, verify = self._next_page(window)
        if anchor[1] + page * size <= window.frontier or (checked and not verify):
            return None
        return self._request(window, anchor, page, size, verify=verify)

    def _next_page(self, window: _Window) -> tuple[Anchor, int, int, bool]:
        """The page ``(listing, number, size, checked)`` that starts one record before
        the frontier, from whichever known listing lets a full page do that (else the
        size that overlaps best)."""
        end = max(window.frontier, window.mark + 1, 1)
        size = window.size
        if window.fixed:
            # No room to choose an overlap: the next page of the listing the last one
            # came from, checked when it happens to start before ``end``.
            anchor = self._local_anchor(window)
            page = (end - anchor[1]) // size + 1
            return anchor, page, size, anchor[1] + (page - 1) * size < end
        best: tuple[int, Anchor, int, int] | None = None  # (reach, listing, page, size)
        found = self._page_anchor(window, end, size)
        if found is not None:
            anchor, overlap = found
            best = (size - overlap, anchor, (end - 1 - anchor[1]) // size + 1, size)
        mark = window.mark_anchor or (self._local_anchor(window) if window.mark >= 0 else None)
        if mark is not None and mark[1] < end and (best is None or best[0] < size - 1):
            page = (end - 1 - mark[1]) // size + 1
            reach = mark[1] + page * size - end
            if best is None or reach > best[0]:
                best = (reach, mark, page, size)
            if best[0] < size - size // 4:
                # Dense seconds leave few listings to choose from: shrink the page.
                planned = plan_after(end - mark[1], size, window.largest)
                if planned is not None:
                    reach = mark[1] + planned[0] * planned[1] - end
                    if reach > best[0]:
                        best = (reach, mark, planned[0], planned[1])
        if best is None or best[0] <= 0:
            # No overlap is possible: the page holding ``end``, unchecked.
            anchor = mark if mark is not None and mark[1] < end else self._top_anchor(window)
            return anchor, (end - anchor[1]) // size + 1, size, False
        _, anchor, page, size = best
        return anchor, page, size, True

    def _page_anchor(self, window: _Window, end: int, size: int) -> tuple[Anchor, int] | None:
        """A listing that begins on the latest page used (a second's first record)
        such that a page of ``size`` from it starts just before ``end``; with the
        overlap that costs. Looks for an overlap of one record first, then more."""
        count = len(window.page)
        if not count:
            return None
        base = window.page_base
        for overlap in range(1, max(size // 4, 1) + 1):
            index = (end - overlap - base) % size
            if index >= count or base + index > end - overlap:
                continue
            anchor = self._anchor_at(window, index)
            if anchor is not None:
                return anchor, overlap
        return None

    def _anchor_at(self, window: _Window, index: int) -> Anchor | None:
        """The listing that begins with the latest page's record ``index``, if one
        does: its second's first record (ascending), or the newest record at or
        below a second's end that the record before it is past (descending), whether
        the server compares milliseconds or whole seconds."""
        page = window.page
        at = page[index].create_at
        second = _second(at)
        before = _second(page[index - 1].create_at) if index else window.page_before
        if before is None:
            return None
        if self.ascending:
            if before < second and window.lo_s <= second < window.hi_s:
                return second, window.page_base + index
            return None
        bound = second if at < _MS_THRESHOLD else second + 1
        if before > bound and window.lo_s < bound <= window.hi_s:
            return bound, window.page_base + index
        return None

    def _local_anchor(self, window: _Window) -> Anchor:
        """The listing the last record yielded was read from, where it begins."""
        local = window.mark_local
        if local is None:
            return self._top_anchor(window)
        return local[0], window.mark - local[1]

    def _top_anchor(self, window: _Window) -> Anchor:
        return (window.lo_s if self.ascending else window.hi_s), 0

    def _restart(self, window: _Window) -> None:
        """A new start from the watermark's second (or from the window's top), or the
        last page of a listing that ended before the page asked."""
        if self.watermark is None or window.mark < 0:
            self._top(window)
            return
        if window.tail is not None:
            bound, origin, total = window.tail
            window.tail = None
            page = (total - 1) // window.size + 1
            request = self._request(window, (bound, origin), page, window.size, verify=True)
            window.tail_seq = request.seq
            return
        anchor = self._mark_anchor(window)
        behind = window.mark + 1 - anchor[1]  # records of that listing up to the mark
        window.from_top = False
        window.page = ()
        window.mark_anchor = anchor
        window.frontier = window.mark + 1
        if window.fixed:  # no overlap to choose: the page holding it
            page = behind // window.size + 1
            self._request(window, anchor, page, window.size, verify=False)
            return
        planned = plan_after(behind, window.size, window.largest) if behind > 0 else None
        certain = self.compare_known or not self._ambiguous(anchor[0])
        if planned is None and behind >= window.size and certain and not window.from_top:
            # No page the server serves overlaps the mark: the page after it, unchecked.
            self._request(window, anchor, behind // window.size + 1, window.size, verify=False)
            return
        if planned is None or planned[0] == 1 or not certain:
            # From the top of the listing: it holds every record not yet yielded (and
            # its newest record tells how the server compares).
            size = max(window.size, planned[1]) if planned else window.size
            self._request(window, anchor, 1, size, verify=False)
            return
        request = self._request(window, anchor, planned[0], planned[1], verify=True)
        window.restart_seq = request.seq

    # --- taking a page ----------------------------------------------------------------

    def _take(self, window: _Window, request: PageRequest, page: RecordPage) -> Step:
        records = page.records
        count = len(records)
        total = page.total
        echoed = page.page_size
        if 0 < echoed <= request.size:
            used = echoed
        elif echoed > request.size or count > request.size:
            # The server ignores the size asked: pages of its size, as best it can.
            used = window.size = window.fixed = max(echoed, count)
        else:
            used = request.size
        start = (request.page - 1) * used
        if count and start >= total:
            raise ResponseError(
                f"page {request.page} has records but total={total} allows only "
                f"{-(-total // used)} pages of {used}: the server contradicts itself"
            )
        capped = used < request.size
        if capped:  # the server caps the page size: plan with its size
            window.size = min(window.size, used)
            window.largest = min(window.largest, used)
        if not self.compare_known and count:
            self._learn_compare(request, records[0].create_at)
        fresh, overlaps = self._fresh(window, records)
        end = request.origin + total  # where this answer says the window's listing ends
        local = window.mark_local
        if local is not None and local[0] == request.bound:
            # Read from the listing the last record yielded was placed in: records that
            # expired from it since then moved the rest back.
            window.drift = max(local[2] - total, 0)
        # Every listing asked holds all the window has not yielded (it starts at or
        # before the watermark's second): its first page needs no check, and only an
        # empty first page proves it empty.
        if request.verify and request.page > 1 and not overlaps:
            if count:
                # The page does not reach back to the last record yielded: the listing
                # moved under the walk, and something in between may have been missed.
                return self._unproductive(window, request, "does not reach back to the last record")
            # Empty: the listing ends before this page (records expired behind the walk
            # moved it up, or its total runs ahead): its last page by its total, else
            # its first page, tells what is left.
            if request.seq == window.tail_seq or window.unproductive:
                window.from_top = True
            else:
                window.tail = (request.bound, request.origin, max(min(total, start), 1))
            return self._unproductive(window, request, "does not reach back to the last record")
        # Only a short page ends the listing: a full one that reaches ``total`` may
        # stand on a stale count, so one more page is asked past it. A listing's last
        # page with nothing past the watermark ends it too.
        ended = count < used or (request.seq == window.tail_seq and count > 0 and not fresh)
        if count and not ended:
            end = max(end, request.start + count + 1)
        if window.limit is None or end > window.limit or not request.verify:
            window.limit = end
        if fresh:
            window.unproductive = window.relocations = window.placings = window.restarts = 0
            window.walk_id = None
            window.taken = True
            self._productive[window.index] += 1
            previous = self.watermark
            taken = self._yield(fresh)
            moved = self._learn(window, request, records, previous, start, total)
        elif ended:
            taken, moved = (), False
        elif self._boundary_repeats(window, request, records):
            # Records yielded from the window before, on the second they share: the
            # listing continues after them.
            window.mark = request.start + count - 1
            window.mark_local = (request.bound, start + count - 1, total)
            window.page, window.mark_anchor = (), None
            self._productive[window.index] += 1  # it moved the walk: counted in the bound
            if capped:  # the pages in flight were planned with the size asked
                window.frontier = window.mark + 1
                return Step(cancel=self._drop(window.index))
            return Step()
        elif self._relocate(window, request, records, start, total):
            # Records ahead of the watermark, further down this listing than planned
            # (records arrived before it): the walk goes on from there.
            return Step(cancel=self._drop(window.index))
        else:
            return self._unproductive(window, request, "brings no record not yielded before")
        if self.done:
            return Step(taken, self._drop(None), done=True)
        if ended:
            return self._next_window(window, taken)
        if capped or moved:
            # The pages in flight were planned with the size asked, or from a place the
            # page was not at: plan again from the mark.
            window.frontier = window.mark + 1
            return Step(taken, self._drop(window.index))
        return Step(taken)

    def _boundary_repeats(
        self, window: _Window, request: PageRequest, records: tuple[Record, ...]
    ) -> bool:
        """Whether a page of the window's own listing, right after the pages of it
        walked so far, all before this window yielded anything, holds only records
        already yielded, no more than the watermark's second holds (the second a window
        shares with the one before it)."""
        mark = self.watermark
        if mark is None or not records or window.taken or request.origin:
            return False
        if request.bound != self._top_anchor(window)[0] or request.start > window.mark + 1:
            return False  # not contiguous with what this window walked
        if request.start + len(records) - 1 <= window.mark:
            return False  # no further than before
        if request.start + len(records) > self.tally[1] + self.tally_before[1] + window.size:
            return False
        if self.ascending:
            return all(r.record_id <= mark for r in records)
        return all(r.record_id >= mark for r in records)

    def _relocate(
        self,
        window: _Window,
        request: PageRequest,
        records: tuple[Record, ...],
        start: int,
        total: int,
    ) -> bool:
        """Whether the page walks on towards the watermark through records ahead of it
        in the listing (arrivals in its second when descending; records a count placed
        too few of): in order and all yielded before (or newer, descending). If so,
        the walk goes on from its last record.

        Such a page holds no record to yield, so walking through it cannot skip one
        (the page that reaches past the watermark is checked as usual); what is
        checked is that the walk advances: a step holds the last record placed and
        ends past it, or lies wholly past it. A page that ends on the last record
        placed places it again (only further down its listing, or anywhere else from
        that listing's first page), and one that lies
        before it restarts the walk (records moved down); each at most
        `UNPRODUCTIVE_LIMIT` times between two records yielded. So a server that
        repeats, reshuffles or alternates gets no step for long.
        """
        mark = self.watermark
        if mark is None or not records or window.relocations >= RELOCATION_LIMIT:
            return False
        ids = [r.record_id for r in records]
        ascending = self.ascending
        first, last = ids[0], ids[-1]
        if (last > mark if ascending else last < mark) or ids != sorted(
            set(ids), reverse=not ascending
        ):
            return False
        local = window.mark_local
        same = local is not None and local[0] == request.bound
        place = start + len(ids) - 1
        placed = mark if window.walk_id is None else window.walk_id
        if last == placed:  # places it again: further down its listing only, or
            # anywhere else from the listing's first page (expiries move it up)
            moved = place - local[1] if same and local is not None else 1
            if not (moved > 0 or (moved and request.page == 1)):
                return False
            if window.placings >= UNPRODUCTIVE_LIMIT:
                return False
            window.placings += 1
        elif placed not in ids and (first <= placed if ascending else first >= placed):
            # Before it: records moved down since it was placed (arrivals).
            if window.restarts >= UNPRODUCTIVE_LIMIT:
                return False
            window.restarts += 1
        window.walk_id = last
        window.relocations += 1
        window.mark = request.start + len(ids) - 1
        window.mark_local = (request.bound, place, total)
        window.drift = 0
        window.frontier = window.mark + 1
        window.page, window.mark_anchor = (), None
        self._productive[window.index] += 1  # it moved the walk: counted in the bound
        return True

    def _learn(
        self,
        window: _Window,
        request: PageRequest,
        records: tuple[Record, ...],
        previous: int | None,
        start: int,
        total: int,
    ) -> bool:
        """Place the page in the window's positions (by the last record yielded before
        it, else where it was planned), move the mark to the watermark, and keep what
        the next plans need: the seconds of the page's records up to the mark. True
        when the page was not where it was planned (the plans after it are off)."""
        mark = self.watermark
        at_mark = len(records) - 1
        while at_mark >= 0 and records[at_mark].record_id != mark:
            at_mark -= 1
        if at_mark < 0:  # reordered by the page check: positions are not known
            window.page = ()
            window.mark_anchor = None
            return False
        base = request.start
        if window.mark >= 0 and previous is not None:
            for i in range(at_mark + 1):
                if records[i].record_id == previous:
                    base = window.mark - i
                    break
        window.mark = base + at_mark
        window.mark_local = (request.bound, start + at_mark, total)
        window.drift = 0
        window.page_before = window.last_second if request.start == window.frontier_seen else None
        window.page = records[: at_mark + 1]
        window.page_base = base
        window.last_second = _second(records[at_mark].create_at)
        window.frontier_seen = window.mark + 1
        window.mark_anchor = self._mark_anchor(window)
        return base != request.start

    def _mark_anchor(self, window: _Window) -> Anchor:
        """The listing from the watermark's second, and where it begins: the watermark
        sits behind the records of its second (a count too high is caught by the
        overlap check; too low only re-reads more)."""
        second = _second(self.watermark_at)
        if self.ascending:  # the listing [second, hi]
            bound = min(max(second, window.lo_s), window.hi_s - 1)
        else:  # [lo, second + 1 s]: the watermark's whole second, whatever the unit
            bound = max(min(second + 1, window.hi_s), window.lo_s + 1)
        behind = self._behind(bound)
        local = window.mark_local
        if local is not None and local[0] == bound:
            # Placed in that very listing when it was read; less what left it since.
            # Descending, both are floors (arrivals push the watermark down; a walk
            # towards it places a record before it): the higher one is nearer.
            read = max(local[1] + 1 - window.drift, 0)
            behind = read if self.ascending else max(read, behind)
        if window.from_top:
            behind = 0
        return bound, window.mark + 1 - behind

    def _fresh(self, window: _Window, records: tuple[Record, ...]) -> tuple[list[Record], bool]:
        """The page's records past the watermark and inside the window, in order; and
        whether the page reaches back to the watermark."""
        if not records:
            return [], self.watermark is None
        # The common page: ordered, inside the window. Checked with C-speed passes, and
        # its new records are a slice.
        ids = list(map(_record_id, records))
        ats = list(map(_create_at, records))
        a, b, c, d = window.bounds
        low, high = min(ats), max(ats)
        inside = (a <= low and high <= b) or (c <= low and high <= d)
        if inside and ids == sorted(ids, reverse=not self.ascending) and len(set(ids)) == len(ids):
            mark = self.watermark
            if mark is None:
                return list(records), True
            if self.ascending:
                split = bisect.bisect_right(ids, mark)
            else:
                split = len(ids) - bisect.bisect_left(ids[::-1], mark)
            return list(records[split:]), split > 0
        return self._fresh_slow(window, records)

    def _fresh_slow(
        self, window: _Window, records: tuple[Record, ...]
    ) -> tuple[list[Record], bool]:
        """`_fresh` record by record, for pages out of order or reaching outside."""
        mark = self.watermark
        a, b, c, d = window.bounds
        fresh: list[Record] = []
        keep = fresh.append
        overlaps = mark is None
        ordered = True
        last: int | None = None
        if self.ascending:
            for record in records:
                rid = record.record_id
                if mark is not None and rid <= mark:
                    overlaps = True
                    continue
                at = record.create_at
                if not (a <= at <= b or c <= at <= d):
                    continue  # outside the window asked for: the server's error
                if last is not None and rid <= last:
                    ordered = False
                keep(record)
                last = rid
        else:
            for record in records:
                rid = record.record_id
                if mark is not None and rid >= mark:
                    overlaps = True
                    continue
                at = record.create_at
                if not (a <= at <= b or c <= at <= d):
                    continue
                if last is not None and rid >= last:
                    ordered = False
                keep(record)
                last = rid
        if not ordered:  # the server broke the order: restore it, within this page only
            unique = {r.record_id: r for r in fresh}
            fresh = sorted(unique.values(), key=_record_id, reverse=not self.ascending)
        return fresh, overlaps

    def _yield(self, fresh: list[Record]) -> tuple[Record, ...]:
        remaining = self.remaining
        if remaining is not None:
            if len(fresh) >= remaining:
                fresh = fresh[:remaining]
                self.done = True
            self.remaining = remaining - len(fresh)
        self._count(fresh)
        last = fresh[-1]
        self.watermark = last.record_id
        self.watermark_at = last.create_at
        return tuple(fresh)

    def _count(self, fresh: list[Record]) -> None:
        """Add the records about to be yielded to the tally of the last two seconds
        (reads only the records of those seconds: one or two on a sparse page)."""
        runs: list[tuple[int, int, int]] = []
        index = len(fresh) - 1
        while index >= 0 and len(runs) < 2:
            second = _second(fresh[index].create_at)
            count = starts = 0
            while index >= 0:
                at = fresh[index].create_at
                if (at // 1000 if at >= _MS_THRESHOLD else at) != second:
                    break
                count += 1
                starts += at < _MS_THRESHOLD or at % 1000 == 0
                index -= 1
            runs.append((second, count, starts))
        if len(runs) == 1 and index < 0:  # all of them in one second
            second, count, starts = runs[0]
            if self.watermark is not None and self.tally[0] == second:
                self.tally = (second, self.tally[1] + count, self.tally[2] + starts)
            else:
                self.tally_before, self.tally = self.tally, runs[0]
            return
        if index < 0 and self.watermark is not None and self.tally[0] == runs[1][0]:
            older = runs[1]
            runs[1] = (older[0], older[1] + self.tally[1], older[2] + self.tally[2])
        self.tally, self.tally_before = runs[0], runs[1]

    def _behind(self, bound: int, whole: bool | None = None) -> int:
        """How many records yielded lie in the listing with this bound (``[bound, hi]``
        ascending, ``[lo, bound]`` descending): the watermark's place there. ``whole``:
        the server compares whole seconds (default: as learnt)."""
        second, count, starts = self.tally
        before, before_count, before_starts = self.tally_before
        if self.ascending:  # whole seconds from ``bound`` on, whatever the unit
            return count + (before_count if bound <= before < second else 0)
        if whole is None:
            whole = self.whole_seconds
        if bound == second:  # the window's top second: only its start, unless whole
            return count if whole else starts
        extra = before_count if whole else before_starts
        return count + (extra if before == bound else 0)

    def _learn_compare(self, request: PageRequest, newest: int) -> None:
        """Descending: learn how the server compares from the newest record of a
        listing ``[lo, bound]``: one past the very start of the second ``bound`` means
        whole seconds; on a first page, one at or before it, while records past that
        start were yielded, means milliseconds."""
        bound = request.bound * 1000
        if bound < newest < bound + 1000:
            self.whole_seconds = self.compare_known = True
        elif request.page == 1 and newest <= bound and self._ambiguous(request.bound):
            self.compare_known = True

    def _ambiguous(self, bound: int) -> bool:
        """Whether records were yielded in the second ``bound`` past its very start (a
        listing ``[lo, bound]`` holds them only if the server compares whole seconds)."""
        return any(
            second == bound and count > starts
            for second, count, starts in (self.tally, self.tally_before)
        )

    def _unproductive(self, window: _Window, request: PageRequest, why: str) -> Step:
        window.unproductive += 1
        if window.unproductive >= UNPRODUCTIVE_LIMIT:
            self.done = True
            self._drop(None)
            raise ResponseError(
                f"page {request.page} {why}, {window.unproductive} times in a row: the "
                "server is not advancing pages"
            )
        if request.seq == window.restart_seq:
            window.from_top = True  # a restart past its second's records did not fit
        # The restart (planned by `sends`) waits from the second time in a row on.
        return Step(cancel=self._drop(window.index), backoff=window.unproductive - 1)

    def _drop(self, index: int | None) -> tuple[PageRequest, ...]:
        """Forget the calls in flight (of one window, or all) and return them."""
        dropped = tuple(r for r in self._in_flight if index is None or r.window == index)
        self._in_flight = [r for r in self._in_flight if not any(r is d for d in dropped)]
        self._answered.difference_update(r.seq for r in dropped)
        return dropped

    def _next_window(self, window: _Window, taken: tuple[Record, ...]) -> Step:
        cancel = self._drop(window.index)
        index = window.index + 1
        if index >= len(self.windows):
            self.done = True
            return Step(taken, cancel + self._drop(None), done=True)
        self._window = self._open(index)
        return Step(taken, cancel)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _need_order(request: PageRequest) -> tuple[int, int]:
    return request.window, request.seq


_record_id = operator.attrgetter("record_id")
_create_at = operator.attrgetter("create_at")
