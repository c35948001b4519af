"""RangeCursor, the pure paging decisions of records(): plain calls and a model.

The stateful test drives the cursor against a simulated listing (records ordered by
record_id, arriving at the newest end, expiring from the oldest) with arbitrary
interleavings of arrivals, expiries, stale answers to prefetched pages, a server that
caps the page size, over-stated totals, records from outside the window, and repeated or
reshuffled pages. No sockets, no event loop.
"""

from __future__ import annotations

import heapq
import os
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from senselink_plus._exceptions import ResponseError
from senselink_plus._models import Order, Record, RecordPage
from senselink_plus._paging import PageRequest, RangeCursor, plan_after

T0 = datetime(2024, 3, 1, tzinfo=timezone(timedelta(hours=9)))
T0_MS = int(T0.timestamp() * 1000)
WINDOW = (T0, T0 + timedelta(hours=1))


def record(record_id: int, at_ms: int) -> Record:
    return Record(record_id, "SN1", f"{record_id:024x}", at_ms)


class Listing:
    """The server's table, ids growing with time. ``create_at`` is kept in
    milliseconds or in seconds (``unit``); the server compares it with the whole-second
    bounds of a call at that unit or in whole seconds (``compare``)."""

    def __init__(
        self, count: int, spacing_ms: int, *, unit: str = "ms", compare: str = "ms"
    ) -> None:
        self.unit, self.compare = unit, compare
        self.rows: list[Record] = []
        self.next_id = 0
        self.last_ms = T0_MS + 1000
        self.add(count, spacing_ms, first=True)

    def add(self, count: int, spacing_ms: int, *, first: bool = False) -> None:
        for i in range(count):
            if not (first and i == 0):
                self.last_ms = min(self.last_ms + spacing_ms, T0_MS + 3_500_000)
            at = self.last_ms if self.unit == "ms" else self.last_ms // 1000
            self.rows.append(record(self.next_id, at))
            self.next_id += 1

    def _inside(self, at: int, lo_s: int, hi_s: int) -> bool:
        if self.unit == "s":
            return lo_s <= at <= hi_s
        if self.compare == "s":
            return lo_s <= at // 1000 <= hi_s
        return lo_s * 1000 <= at <= hi_s * 1000

    def answer(
        self, request: PageRequest, order: Order, cap: int | None, total_extra: int
    ) -> RecordPage:
        lo_s = int(request.time_from.timestamp())
        hi_s = int(request.time_to.timestamp())
        rows = [r for r in self.rows if self._inside(r.create_at, lo_s, hi_s)]
        if order is Order.DESCENDING:
            rows.reverse()
        size = request.size if cap is None else min(cap, request.size)
        chunk = rows[(request.page - 1) * size : request.page * size]
        return RecordPage(request.page, size, len(rows) + total_extra, tuple(chunk))


def drain(cursor: RangeCursor, answer: object) -> list[int]:
    """Run the cursor to its end against ``answer(request) -> RecordPage``."""
    got: list[int] = []
    for _ in range(10_000):
        cursor.sends()
        request = cursor.needed()
        if request is None:
            return got
        step = cursor.feed(request, answer(request))  # type: ignore[operator]
        got.extend(r.record_id for r in step.records)
    raise AssertionError("the cursor never ended")


# --- plain calls ----------------------------------------------------------------------


def test_plan_after_overlaps_by_one_where_it_can() -> None:
    assert plan_after(100, 100) == (2, 99)
    page, size = plan_after(198, 100) or (0, 0)
    start = (page - 1) * size
    assert start < 198 < start + size
    assert plan_after(6, 3) == (2, 4)  # 6 is a multiple of 3 and 2: a page of 4
    assert plan_after(5, 1) == (3, 2)  # pages of 1 leave no room: a page of 2
    assert plan_after(6, 3, largest=3) is None  # a server that serves no more than 3


@pytest.mark.parametrize("order", list(Order))
@pytest.mark.parametrize("lookahead", [1, 2, 4, 8])
def test_a_quiet_listing_costs_about_one_request_a_page(order: Order, lookahead: int) -> None:
    rng = random.Random(1)
    ats = sorted(rng.randrange(0, 3_600_000) for _ in range(3_333))
    listing = Listing(0, 1)
    listing.rows = [record(i, T0_MS + at) for i, at in enumerate(ats)]
    cursor = RangeCursor([WINDOW], order=order, page_size=100, lookahead=lookahead)
    sizes: list[int] = []

    def answer(request: PageRequest) -> RecordPage:
        sizes.append(request.size)
        return listing.answer(request, order, None, 0)

    got = drain(cursor, answer)
    expected = list(range(3_333))
    assert got == (expected if order is Order.ASCENDING else expected[::-1])
    assert cursor.sent <= 35  # 34 pages of 100 at best: one record of overlap is nearly free
    assert set(sizes) == {100}  # every call asks for the page size it was given
    assert cursor.sent <= cursor.bound()


def test_many_small_windows_are_fetched_ahead() -> None:
    windows = [(T0 + timedelta(days=d), T0 + timedelta(days=d + 1)) for d in range(30)]
    cursor = RangeCursor(windows, order=Order.ASCENDING, page_size=100, lookahead=8)
    first = cursor.sends()
    assert [r.window for r in first] == list(range(8))
    assert all(r.page == 1 for r in first)


def test_lookahead_one_sends_one_call_at_a_time() -> None:
    listing = Listing(500, 10)
    cursor = RangeCursor([WINDOW], order=Order.ASCENDING, page_size=50, lookahead=1)
    for _ in range(5):
        assert len(cursor.sends()) == 1
        assert cursor.sends() == []  # nothing more until this one is answered
        request = cursor.needed()
        assert request is not None
        cursor.feed(request, listing.answer(request, Order.ASCENDING, None, 0))


def test_an_expiry_and_an_arrival_between_two_pages_skip_nothing() -> None:
    """The total is unchanged, so only the overlap check can see the shift."""
    listing = Listing(300, 1000)
    present = {r.record_id for r in listing.rows[1:]}
    cursor = RangeCursor([WINDOW], order=Order.ASCENDING, page_size=100, lookahead=4)
    answered = 0

    def answer(request: PageRequest) -> RecordPage:
        nonlocal answered
        answered += 1
        if answered == 2:
            del listing.rows[0]
            listing.add(1, 1000)
        return listing.answer(request, Order.ASCENDING, None, 0)

    got = drain(cursor, answer)
    assert len(got) == len(set(got))
    assert present <= set(got)


@pytest.mark.parametrize("lookahead", [1, 2, 4])
def test_expiries_reaching_the_walk_and_arrivals_between_pages_skip_nothing(
    lookahead: int,
) -> None:
    """Retention catches up with the walk: the records already read expire (and as
    many arrive, so the total stays put) between the answers to two pages."""
    listing = Listing(300, 1000)
    cursor = RangeCursor([WINDOW], order=Order.ASCENDING, page_size=10, lookahead=lookahead)
    answered = 0
    gone: set[int] = set()

    def answer(request: PageRequest) -> RecordPage:
        nonlocal answered
        answered += 1
        mark = cursor.watermark
        if answered % 2 == 0 and answered < 30 and mark is not None:
            expired = [r for r in listing.rows if r.record_id <= mark]
            listing.rows = [r for r in listing.rows if r.record_id > mark]
            gone.update(r.record_id for r in expired)
            listing.add(len(expired), 1)
        return listing.answer(request, Order.ASCENDING, None, 0)

    got = drain(cursor, answer)
    assert len(got) == len(set(got))
    assert set(range(300)) - gone <= set(got)


def test_pages_that_alternate_end_in_a_response_error_soon() -> None:
    a = tuple(record(i, T0_MS + 1000 + i) for i in range(100))
    b = tuple(record(i, T0_MS + 1000 + i) for i in range(200, 300))
    cursor = RangeCursor([WINDOW], order=Order.ASCENDING, page_size=100, lookahead=4)
    flip = [a, b]

    def alternate(request: PageRequest) -> RecordPage:
        flip.reverse()
        return RecordPage(request.page, 100, 10**6, flip[1])

    with pytest.raises(ResponseError, match="not advancing"):
        drain(cursor, alternate)
    assert cursor.sent <= 60  # an unbounded walk sent 15,000 in 3 s


def test_an_over_stated_total_ends_at_the_short_page() -> None:
    listing = Listing(150, 1000)
    cursor = RangeCursor([WINDOW], order=Order.ASCENDING, page_size=100, lookahead=2)
    got = drain(cursor, lambda r: listing.answer(r, Order.ASCENDING, None, 850))
    assert got == list(range(150))


def test_a_full_page_that_reaches_total_is_checked_with_one_more_request() -> None:
    """A total may be stale: a full last page is followed by one more request, and the
    empty page ends the walk."""
    listing = Listing(200, 1000)
    cursor = RangeCursor([WINDOW], order=Order.ASCENDING, page_size=100, lookahead=1)
    got = drain(cursor, lambda r: listing.answer(r, Order.ASCENDING, None, 0))
    assert got == list(range(200))
    assert cursor.sent == 3


@pytest.mark.parametrize("order", list(Order))
def test_an_under_stated_total_never_ends_the_walk_early(order: Order) -> None:
    """200 records, total says 100: an error (more pages than total allows), never a walk
    that ends quietly after 100."""
    listing = Listing(200, 1000)
    cursor = RangeCursor([WINDOW], order=order, page_size=100, lookahead=2)
    with pytest.raises(ResponseError, match="contradicts"):
        drain(cursor, lambda r: listing.answer(r, order, None, -100))


def test_records_from_outside_the_window_are_not_yielded() -> None:
    listing = Listing(20, 1000)
    stray = record(10**9, T0_MS + 5 * 3_600_000)
    cursor = RangeCursor([WINDOW], order=Order.ASCENDING, page_size=100, lookahead=1)

    def answer(request: PageRequest) -> RecordPage:
        page = listing.answer(request, Order.ASCENDING, None, 0)
        return RecordPage(page.page_num, page.page_size, page.total + 1, (*page.records, stray))

    assert drain(cursor, answer) == list(range(20))


def test_max_items_stops_the_walk_and_its_prefetch() -> None:
    listing = Listing(1000, 100)
    cursor = RangeCursor([WINDOW], order=Order.ASCENDING, page_size=100, lookahead=8, max_items=150)
    got = drain(cursor, lambda r: listing.answer(r, Order.ASCENDING, None, 0))
    assert got == list(range(150))
    assert cursor.sent <= 3


def test_an_empty_listing_ends_the_window() -> None:
    """Every record expires between two pages: the emptied listing ends the walk."""
    listing = Listing(6, 1000)
    cursor = RangeCursor([WINDOW], order=Order.DESCENDING, page_size=3, lookahead=1)
    cursor.sends()
    first = cursor.needed()
    assert first is not None
    got = [
        r.record_id
        for r in cursor.feed(first, listing.answer(first, Order.DESCENDING, None, 0)).records
    ]
    listing.rows.clear()
    got += drain(cursor, lambda r: listing.answer(r, Order.DESCENDING, None, 0))
    assert got == [5, 4, 3]
    assert cursor.done


def test_descending_arrivals_in_the_watermarks_second_are_walked_through() -> None:
    """Records that arrive at the very instant of the last one yielded push it down
    the listing: the walk steps through them instead of giving up."""
    listing = Listing(3, 0)
    cursor = RangeCursor([WINDOW], order=Order.DESCENDING, page_size=3, lookahead=1)
    cursor.sends()
    first = cursor.needed()
    assert first is not None
    step = cursor.feed(first, listing.answer(first, Order.DESCENDING, None, 0))
    assert [r.record_id for r in step.records] == [2, 1, 0]
    listing.add(7, 0)  # ids 3..9, at the same millisecond
    assert drain(cursor, lambda r: listing.answer(r, Order.DESCENDING, None, 0)) == []
    assert cursor.done


def rounds(cursor: RangeCursor, answer: object) -> tuple[list[int], float]:
    """Run the cursor as the driver does, each call answered one round trip after it
    was sent (calls sent together are answered in the order sent): the ids yielded,
    and the round trips the walk took."""
    got: list[int] = []
    answered: dict[int, RecordPage] = {}
    due: list[tuple[float, int, PageRequest]] = []
    now = 0.0

    def send() -> None:
        for request in cursor.sends():
            heapq.heappush(due, (now + 1 + request.seq * 1e-6, request.seq, request))

    send()
    while due:
        now, _, request = heapq.heappop(due)
        if not any(r is request for r in cursor._in_flight):
            continue  # cancelled
        answered[request.seq] = answer(request)  # type: ignore[operator]
        if cursor.arrived(request, answered[request.seq]):
            send()
        while (needed := cursor.needed()) is not None and needed.seq in answered:
            step = cursor.feed(needed, answered.pop(needed.seq))
            got.extend(r.record_id for r in step.records)
            send()
    assert cursor.done
    return got, now


@pytest.mark.parametrize("order", list(Order))
def test_many_windows_keep_every_call_busy(order: Order) -> None:
    """30 windows of 7 pages, 4 in flight: about as many round trips as a client that
    asks every window at once (210 pages / 4 = 53), not a bubble at each window's
    turn (61 here before answers were noted as they came)."""
    start = T0
    ranges = [(start + timedelta(days=k), start + timedelta(days=k + 1)) for k in range(30)]
    rng = random.Random(7)
    ats = sorted(rng.randrange(60, 30 * 86_400 - 60) * 1000 for _ in range(30 * 667))
    listing = Listing(0, 1)
    listing.rows = [record(i, T0_MS + at) for i, at in enumerate(ats)]
    if order is Order.DESCENDING:
        ranges.reverse()
    cursor = RangeCursor(ranges, order=order, page_size=100, lookahead=4)
    got, trips = rounds(cursor, lambda r: listing.answer(r, order, None, 0))
    expected = list(range(len(ats)))
    assert got == (expected if order is Order.ASCENDING else expected[::-1])
    assert trips <= 56, trips
    assert cursor.sent <= 225


# --- the model ------------------------------------------------------------------------


class Walk(RuleBasedStateMachine):
    """A walk of one window while the listing changes under it."""

    @initialize(
        count=st.integers(0, 400),
        spacing=st.sampled_from([1, 10, 400, 1000, 7000]),
        order=st.sampled_from(Order),
        page_size=st.integers(3, 60) | st.just(100),
        lookahead=st.integers(1, 6),
        cap=st.none() | st.integers(3, 40),
        extra=st.sampled_from([0, 0, 0, 7, 500, -1, -30]),
        unit=st.sampled_from(["ms", "s"]),
        compare=st.sampled_from(["ms", "s"]),
        split=st.booleans(),
    )
    def start(
        self,
        count: int,
        spacing: int,
        order: Order,
        page_size: int,
        lookahead: int,
        cap: int | None,
        extra: int,
        unit: str,
        compare: str,
        split: bool,
    ) -> None:
        self.listing = Listing(count, spacing, unit=unit, compare=compare)
        self.spacing = spacing
        self.order = order
        self.cap = cap
        self.extra = extra
        middle = T0 + timedelta(minutes=30)
        windows = [(T0, middle), (middle, WINDOW[1])] if split else [WINDOW]
        if order is Order.DESCENDING:
            windows.reverse()
        self.cursor = RangeCursor(windows, order=order, page_size=page_size, lookahead=lookahead)
        self.present = {r.record_id for r in self.listing.rows}
        self.snapshots: dict[int, list[Record]] = {}
        #: Calls sent and not yet fed or cancelled; answers that came before their turn.
        self.pending: dict[int, PageRequest] = {}
        self.early: dict[int, RecordPage] = {}
        self.got: list[int] = []
        self.failed: ResponseError | None = None
        self.misbehaved = False
        self.expiries_in_a_row = 0

    def _send(self) -> None:
        for request in self.cursor.sends():
            self.snapshots[request.seq] = list(self.listing.rows)
            self.pending[request.seq] = request

    def _page(self, request: PageRequest, stale: bool) -> RecordPage:
        rows = self.snapshots.pop(request.seq) if stale else self.listing.rows
        table = Listing(0, 1, unit=self.listing.unit, compare=self.listing.compare)
        table.rows = rows
        return table.answer(request, self.order, self.cap, self.extra)

    @precondition(lambda self: self.failed is None and not self.cursor.done)
    @rule(pick=st.integers(0, 15), stale=st.booleans())
    def answer_early(self, pick: int, stale: bool) -> None:
        """An answer that comes before its turn, as the driver notes it (`arrived`)."""
        self._send()
        waiting = sorted(seq for seq in self.pending if seq not in self.early)
        if not waiting:
            return
        request = self.pending[waiting[pick % len(waiting)]]
        page = self._page(request, stale)
        self.early[request.seq] = page
        self.cursor.arrived(request, page)

    @rule(count=st.integers(1, 30), spacing=st.sampled_from([0, 1, 300, 1000]))
    def arrive(self, count: int, spacing: int) -> None:
        self.listing.add(count, spacing)

    @rule(count=st.integers(1, 30))
    def expire(self, count: int) -> None:
        gone = self.listing.rows[:count]
        del self.listing.rows[:count]
        self.present -= {r.record_id for r in gone}

    @precondition(lambda self: self.failed is None and not self.cursor.done)
    @rule(stale=st.booleans(), reshuffle=st.booleans())
    def answer(self, stale: bool, reshuffle: bool) -> None:
        self._send()
        request = self.cursor.needed()
        if request is None:
            return
        self.pending.pop(request.seq, None)
        page = self.early.pop(request.seq, None)
        if page is None:
            page = self._page(request, stale)
        if reshuffle and len(page.records) > 1:
            self.misbehaved = True
            shuffled = list(page.records)
            random.Random(request.seq).shuffle(shuffled)
            page = RecordPage(page.page_num, page.page_size, page.total, tuple(shuffled))
        try:
            step = self.cursor.feed(request, page)
        except ResponseError as error:
            # A walk may end with ResponseError (a server that contradicts itself, or
            # one the cursor cannot follow): never with a duplicate or a skip.
            self.failed = error
            return
        for dropped in step.cancel:
            self.pending.pop(dropped.seq, None)
            self.early.pop(dropped.seq, None)
        self.got.extend(r.record_id for r in step.records)

    @invariant()
    def never_twice_and_in_order(self) -> None:
        assert len(self.got) == len(set(self.got))
        ascending = self.order is Order.ASCENDING
        assert self.got == sorted(self.got, reverse=not ascending)

    @invariant()
    def within_the_bound(self) -> None:
        assert self.cursor.sent <= self.cursor.bound()

    def _settled(self, request: PageRequest) -> RecordPage:
        """A quiet listing's answer (the one that came early, if one did)."""
        page = self.early.pop(request.seq, None)
        if page is None:
            page = self.listing.answer(request, self.order, self.cap, self.extra)
        return page

    def teardown(self) -> None:
        if self.failed is None and not self.misbehaved:
            # The server settles: the rest of the walk sees a quiet listing.
            try:
                rest = drain(self.cursor, self._settled)
            except ResponseError as error:
                # An under-stated total is a server that says more pages exist than it
                # allows: an error, never an early end that skips.
                if self.extra >= 0:
                    raise AssertionError(f"a quiet honest listing got {error}") from error
            else:
                self.got.extend(rest)
                self.never_twice_and_in_order()
                self.within_the_bound()
                missed = self.present - set(self.got)
                assert not missed, f"missed {sorted(missed)[:10]}"


Walk.TestCase.settings = settings(
    max_examples=int(os.environ.get("PAGING_EXAMPLES", "200")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestWalk = Walk.TestCase
