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
- **Anchors.** Each chain of page requests starts from the second of the last record
  yielded (``time_from`` when ascending, ``time_to`` when descending), so records that
  expired or arrived on the far side of it cannot move the pages that follow.
- **Overlap.** Pages of a chain after its first are sized so that each begins at least
  one record before the previous one ended (sizes ``m``, ``m-1``, ``m-2``...). A page
  that does not reach back to the watermark proves that the listing moved under the walk
  (records expired before it, or a prefetched page was answered out of turn): it is not
  used, and the walk restarts from the watermark's second. So no record that was in the
  listing throughout is ever skipped, however arrivals, expiries and prefetching
  interleave. (A page size under 3 leaves no room for an overlap; such pages are used
  unchecked.)
- **Bounded.** No page is planned past the largest ``total`` seen; a page that brings
  nothing new (a repeat, a reshuffle, an answer that ignores ``page``) or fails the
  overlap check restarts the chain, with back-off from the second time in a row, and
  the third in a row raises `ResponseError`. So a window costs at most
  ``lookahead * 4 * (P + 1)`` requests, where ``P`` is the number of pages that brought
  a new record (and ``P`` can only grow with records never seen before), plus one for
  each window whose first page was fetched ahead (`RangeCursor.bound`).
- **Ends cleanly** on a short page, on one that reaches its own ``total``, or on a
  restart that finds nothing new; a ``total`` that runs ahead of the listing costs one
  extra request. A page that holds records although its own ``total`` says it cannot
  raises `ResponseError`.

Prefetch: up to ``lookahead`` calls are in flight, spread over the current window's
chain and the first pages of the windows after it, so a range of many small windows
costs about ``windows / lookahead`` round trips. Records still come out in order.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import attrs

from ._exceptions import ResponseError
from ._models import Order, Record, RecordPage

__all__ = ["PageRequest", "RangeCursor", "Step"]

_MS_THRESHOLD = 10**11
#: Pages in a row that bring nothing new before the walk gives up.
UNPRODUCTIVE_LIMIT = 3
_SECOND = timedelta(seconds=1)


@attrs.frozen
class PageRequest:
    """One list call the cursor wants: page ``page`` of ``size`` over the window
    ``[time_from, time_to]``, expected to start at ``start`` in that listing."""

    seq: int
    window: int
    time_from: datetime
    time_to: datetime
    page: int
    size: int
    start: int
    #: Must reach back to the watermark to be used (a page after a chain's first).
    verify: bool
    #: The chain this page belongs to; a restart abandons the older chains.
    chain: int


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
def plan_after(end: int, size: int) -> tuple[int, int] | None:
    """The page ``(number, size)`` that starts at least one record before ``end`` and
    reaches furthest past it, with a size from ``size // 2`` to ``size``; None when no
    such page exists (sizes under 3).

    >>> plan_after(100, 100)   # page 2 of 99 covers [99, 198)
    (2, 99)
    """
    best: tuple[int, int, int] | None = None
    for m in range(size, max(size // 2, 2) - 1, -1):
        start = (end - 1) // m * m
        reach = start + m - end
        if reach > 0 and (best is None or reach > best[0]):
            best = (reach, start // m + 1, m)
            if reach >= m - 1:  # overlap of one record: nothing does better
                break
    return None if best is None else (best[1], best[2])


@attrs.define
class _Window:
    """The walk of one window: its current chain and what it has learnt."""

    index: int
    lo: datetime
    hi: datetime
    #: The chain's listing: [anchor, hi] when ascending, [lo, anchor] when descending.
    anchor: datetime
    size: int
    #: Raw ``create_at`` bounds of the window, a second wider each side (the server's
    #: rounding of its inclusive bounds is not documented).
    bounds: tuple[int, int, int, int]
    chain: int = 0
    #: Pages planned in the chain, and the expected end of the last one.
    planned: int = 0
    planned_end: int = 0
    #: Where the last page used from the chain ended, and the total it was read with.
    used_end: int = 0
    used_total: int = 0
    #: The largest ``total`` answered for the chain's listing (None: not known yet).
    limit: int | None = None
    unproductive: int = 0
    #: The chain's first page (its answer tells the listing's real total).
    first_seq: int = -1
    #: The chain's first page starts past the watermark's second.
    behind: bool = False
    #: The page size the server uses whatever is asked (0: it follows the size asked).
    fixed: int = 0
    #: The last ``total`` answered in this chain, and by how much it last fell between
    #: two answers (records expiring ahead of the walk shift later pages back by that).
    last_total: int | None = None
    drift: int = 0
    #: After a page that did not reach back while the listing shrank: where the next
    #: unseen record now is in the same listing (-1: restart from the watermark).
    rewind: int = -1
    #: The next restart begins at page 1: a restart past the records of the anchor's
    #: second did not reach back, so their count cannot be trusted.
    from_top: bool = False


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
        #: Records seen in the watermark's second up to it (its place in an anchor).
        self.same_second = 0
        #: Requests planned so far.
        self.sent = 0
        self.done = max_items == 0 or not self.windows
        self._seq = 0
        self._in_flight: list[PageRequest] = []  # ordered by need: (window, seq)
        self._first_pages: set[int] = set()
        self._productive: list[int] = []
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
        """Calls to start now: the current window's chain first, then the first pages of
        the windows after it, up to ``lookahead`` in flight."""
        if self.done:
            return []
        before = self._seq
        window = self._window
        if not self._pending(window):
            if self._restart_pays(window):
                self._restart(window)
            else:  # the chain reaches further than a restart would: go on with it
                window.planned = 0
        while len(self._in_flight) < self.lookahead and self._wants_more(window):
            self._plan(window)
        if not self._pending(window):  # the chain planned nothing: start a new one
            self._restart(window)
        index = window.index + 1
        while len(self._in_flight) < self.lookahead and index < len(self.windows):
            if index not in self._first_pages:
                if not self._budget_allows():
                    break
                self._first_pages.add(index)
                self._first(self._fresh_window(index))
            index += 1
        self._in_flight.sort(key=_need_order)
        return [r for r in self._in_flight if r.seq > before]

    def feed(self, request: PageRequest, page: RecordPage) -> Step:
        """Take the answer to ``request`` (the call `needed` named)."""
        if request is not self.needed():
            raise RuntimeError(f"fed {request!r}, but the cursor needs {self.needed()!r}")
        self._in_flight.pop(0)
        return self._take(self._window, request, page)

    def bound(self) -> int:
        """The most requests the walk so far may cost (see the module docstring)."""
        chains = sum((UNPRODUCTIVE_LIMIT + 1) * (p + 1) for p in self._productive)
        return self.lookahead * chains + len(self.windows)

    # --- planning ---------------------------------------------------------------------

    def _open(self, index: int) -> _Window:
        self._productive.append(0)
        return self._fresh_window(index)

    def _fresh_window(self, index: int) -> _Window:
        lo, hi = self.windows[index] if self.windows else (_EPOCH, _EPOCH)
        bounds = _raw_bounds(int(lo.timestamp()) - 1, int(hi.timestamp()) + 1)
        anchor = lo if self.ascending else hi
        return _Window(index, lo, hi, anchor, self.page_size, bounds)

    def _request(
        self, window: _Window, page: int, size: int, start: int, *, verify: bool
    ) -> PageRequest:
        if self.ascending:
            time_from, time_to = window.anchor, window.hi
        else:
            time_from, time_to = window.lo, window.anchor
        self._seq += 1
        self.sent += 1
        window.planned += 1
        window.planned_end = start + size
        request = PageRequest(
            self._seq, window.index, time_from, time_to, page, size, start, verify, window.chain
        )
        self._in_flight.append(request)
        return request

    def _first(self, window: _Window) -> PageRequest:
        request = self._request(window, 1, window.size, 0, verify=False)
        window.first_seq, window.behind = request.seq, False
        return request

    def _budget_allows(self) -> bool:
        if self.remaining is None:
            return True
        return sum(r.size for r in self._in_flight) < self.remaining

    def _pending(self, window: _Window) -> bool:
        return any(r.window == window.index for r in self._in_flight)

    def _wants_more(self, window: _Window) -> bool:
        """Whether the current chain may plan another page now."""
        if window.limit is None:
            return False  # a window's first page goes alone: it tells the total
        if window.planned >= self.lookahead:
            return False  # a chain's pages shrink by one each: restart rather than go on
        return window.planned_end < window.limit and self._budget_allows()

    def _restart_pays(self, window: _Window) -> bool:
        """Whether a new chain from the watermark's second would bring more new records
        with its first page than the current chain's next page."""
        if window.unproductive or self.watermark is None or window.limit is None:
            return True  # after a page that did not fit, only a restart is safe
        if window.used_end >= window.limit:
            return True
        if window.size < 3 or window.fixed:
            return False  # no overlap is possible: plain pages, restarted only when stuck
        behind = 0 if window.from_top else self.same_second
        go_on = self._place(window, window.used_end)
        restart = self._place(window, behind) if behind else (1, window.size, False)
        return _reach(restart, behind) >= _reach(go_on, window.used_end)

    def _plan(self, window: _Window) -> PageRequest:
        page, size, verify = self._place(window, window.planned_end)
        return self._request(window, page, size, (page - 1) * size, verify=verify)

    def _place(self, window: _Window, end: int) -> tuple[int, int, bool]:
        """The page to read next when the records up to position ``end`` are known,
        and whether it overlaps them (so it can be checked). While records expire
        ahead of the walk, the page reaches back further by as many as last expired."""
        end = max(end - window.drift, 1)
        planned = None if window.fixed else plan_after(end, window.size)
        if planned is not None:
            return planned[0], planned[1], True
        # No size gives an overlap (tiny pages, or a server that ignores the size asked):
        # the page holding position ``end``, checked when it starts before it.
        size = window.size
        page = end // size + 1
        return page, size, (page - 1) * size < end

    def _restart(self, window: _Window) -> None:
        """A new chain from the watermark's second (or from the window's start)."""
        if window.rewind >= 0:  # the same listing, from where the shift moved us
            behind, window.rewind = window.rewind, -1
            window.chain += 1
            window.planned = 0
            page, size, verify = self._place(window, max(behind, 1))
            request = self._request(window, page, size, (page - 1) * size, verify=verify)
            window.first_seq, window.behind = request.seq, True
            return
        window.last_total, window.drift = None, 0
        if self.watermark is None:
            window.chain += 1
            window.planned = 0
            self._first(window)
            return
        tz = window.lo.tzinfo
        second = datetime.fromtimestamp(_second(self.watermark_at), timezone.utc).astimezone(tz)
        if self.ascending:  # the listing [anchor, hi]
            anchor = min(max(second, window.lo), window.hi - _SECOND)
        else:  # [lo, anchor]: the watermark's whole second, whatever the unit
            anchor = max(min(second + _SECOND, window.hi), window.lo + _SECOND)
        # In the new listing the watermark sits behind the records of its second (a
        # count too high is caught by the overlap check; too low only re-reads more).
        behind = 0 if window.from_top else self.same_second
        if window.limit is not None:  # what the old listing said is left, and the overlap
            window.limit = max(window.limit - window.used_end + behind, behind + 1)
        window.anchor = anchor
        window.from_top = False
        window.chain += 1
        window.planned = 0
        window.used_end = 0
        if behind == 0:
            self._first(window)
            return
        page, size, verify = self._place(window, behind)
        if page == 1:
            self._first(window)
            return
        request = self._request(window, page, size, (page - 1) * size, verify=verify)
        window.first_seq, window.behind = request.seq, True

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
        if used < request.size:  # the server caps the page size: plan with its size
            window.size = min(window.size, used)
            window.planned_end = min(window.planned_end, start + count)
        fresh, overlaps = self._fresh(window, records)
        previous, window.last_total = window.last_total, total
        fell = 0 if previous is None else max(previous - total, 0)
        if fell:
            window.drift = fell
        if request.verify and not overlaps:
            # The page does not reach back to the last record yielded: the listing moved
            # under the walk, and something in between may have been passed over. When
            # it shrank, records before ours expired: look again where ours moved to.
            shift = window.used_total - total
            if shift > 0 and window.used_end > shift:
                window.rewind = window.used_end - shift
            return self._unproductive(window, request, "does not reach back to the last record")
        if window.limit is None or total > window.limit or request.seq == window.first_seq:
            window.limit = total
        window.used_end, window.used_total = start + count, total
        ended = count < used or start + count >= total
        if fresh:
            window.unproductive = 0
            self._productive[window.index] += 1
            taken = self._yield(fresh, records, start)
        elif ended:
            taken = ()
        else:
            return self._unproductive(window, request, "brings no record not yielded before")
        if self.done:
            return Step(taken, self._drop(None), done=True)
        if ended:
            return self._next_window(window, taken)
        return Step(taken)

    def _fresh(self, window: _Window, records: tuple[Record, ...]) -> tuple[list[Record], bool]:
        """The page's records past the watermark and inside the window, in order; and
        whether the page reaches back to the watermark."""
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

    def _yield(
        self, fresh: list[Record], records: tuple[Record, ...], start: int
    ) -> tuple[Record, ...]:
        remaining = self.remaining
        if remaining is not None:
            if len(fresh) >= remaining:
                fresh = fresh[:remaining]
                self.done = True
            self.remaining = remaining - len(fresh)
        last = fresh[-1]
        self.same_second = self._behind(last, records, start)
        self.watermark = last.record_id
        self.watermark_at = last.create_at
        return tuple(fresh)

    def _behind(self, last: Record, records: tuple[Record, ...], start: int) -> int:
        """How many records a restart's listing holds up to ``last`` (its position):
        those of its second when ascending ([second, hi]); when descending
        ([lo, second + 1 s]), those up to the end of that listing. Counted on the page
        it came in; a count too low only makes the restart re-read more."""
        second = _second(last.create_at)
        top = (second + 1) * 1000, second + 1
        count = 0
        index = len(records)
        for index in range(len(records) - 1, -1, -1):
            if records[index] is last:
                break
        else:
            return 0  # reordered by the page check: count nothing
        for record in records[index::-1]:
            at = record.create_at
            if self.ascending:
                if _second(at) != second:
                    return count
            elif at > top[at < _MS_THRESHOLD]:
                return count
            count += 1
        # The whole page up to ``last`` is in the listing: so may be what came before.
        if start == 0:
            return count
        if self.watermark is not None and _second(self.watermark_at) == second:
            return count + self.same_second - self._overlap(records, index)
        return count

    def _overlap(self, records: tuple[Record, ...], upto: int) -> int:
        """How many of ``records[:upto + 1]`` were yielded before this page."""
        mark = self.watermark
        assert mark is not None
        if self.ascending:
            return sum(1 for r in records[: upto + 1] if r.record_id <= mark)
        return sum(1 for r in records[: upto + 1] if r.record_id >= mark)

    def _unproductive(self, window: _Window, request: PageRequest, why: str) -> Step:
        window.unproductive += 1
        if window.unproductive >= UNPRODUCTIVE_LIMIT:
            self.done = True
            self._drop(None)
            raise ResponseError(
                f"page {request.page} {why}, {window.unproductive} times in a row: the "
                "server is not advancing pages"
            )
        if request.seq == window.first_seq and window.behind:
            window.from_top = True
        # The next restart (planned by `sends`) waits from the second time in a row on.
        return Step(cancel=self._drop(window.index), backoff=window.unproductive - 1)

    def _drop(self, index: int | None) -> tuple[PageRequest, ...]:
        """Forget the calls in flight (of one window, or all) and return them."""
        dropped = tuple(r for r in self._in_flight if index is None or r.window == index)
        self._in_flight = [r for r in self._in_flight if r not in dropped]
        return dropped

    def _next_window(self, window: _Window, taken: tuple[Record, ...]) -> Step:
        cancel = self._drop(window.index)
        index = window.index + 1
        if index >= len(self.windows):
            self.done = True
            return Step(taken, cancel + self._drop(None), done=True)
        following = self._open(index)
        if index in self._first_pages:  # its first page is already in flight
            following.planned, following.planned_end = 1, following.size
        self._window = following
        return Step(taken, cancel)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _reach(placed: tuple[int, int, bool], end: int) -> int:
    """How far past ``end`` the page ``(number, size, _)`` reaches."""
    page, size, _ = placed
    return page * size - end


def _need_order(request: PageRequest) -> tuple[int, int]:
    return request.window, request.seq


def _record_id(record: Record) -> int:
    return record.record_id
