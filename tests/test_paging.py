"""The paging engine of records(), through its pure parts: walk coordinates, one slice's
reader, the slice planner, and the `Walk` over an honest listing that changes while it
is read (tests/fake_listing.py). The promise checked everywhere: every record present
from the start of the walk to its end is yielded, none twice, in order, and an honest
server never gets `ResponseError`."""

from __future__ import annotations

import bisect
import doctest
import itertools
import random

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from senselink_plus import (
    Order,
    RecordPage,
    ResponseError,
    _horizon,
    _slice,
    _slice_plan,
    _walkorder,
)
from senselink_plus._paging import FAIL_LIMIT, PROBE_AFTER, PageRequest, Walk
from senselink_plus._slice import Plan, Slice, place
from senselink_plus._slice_plan import SlicePlanner
from senselink_plus._walkorder import DAY, Axis, Key, PageKeys
from tests.fake_listing import Churn, Listing, in_order, walk

T0 = 1_700_000_000  # a whole second, unix time
A, D = Order.ASCENDING, Order.DESCENDING


# --- walk coordinates ------------------------------------------------------------------


@pytest.mark.parametrize("order", Order)
@given(start=st.integers(0, 10 * DAY), length=st.integers(1, 5 * DAY))
def test_windows_partition_the_range_within_a_call_each(
    order: Order, start: int, length: int
) -> None:
    axis = Axis(order, T0 + start, T0 + start + length)
    first, seen = axis.first, []
    while first <= axis.last:
        last = axis.window(first)
        assert first <= last <= axis.last
        time_from, time_to = axis.bounds(first, last)
        assert 0 < time_to - time_from <= DAY
        seen.append((first, last))
        first = last + 1
    assert seen[0][0] == axis.first
    assert seen[-1][1] == axis.last
    assert len(seen) == -(-length // DAY)


def test_bounds_reach_one_second_past_the_slice_but_never_past_the_range() -> None:
    axis = Axis(A, T0, T0 + 100)
    assert axis.bounds(T0 + 10, T0 + 20) == (T0 + 10, T0 + 21)
    assert axis.bounds(T0 + 10, T0 + 100) == (T0 + 10, T0 + 100)
    down = Axis(D, T0, T0 + 100)
    # walk seconds -(T0+20)..-(T0+10) are real T0+10..T0+20; the listing starts (from the
    # top) at real T0+20 and includes all of that second
    assert down.bounds(-(T0 + 20), -(T0 + 10)) == (T0 + 10, T0 + 21)


def test_no_window_of_no_length_is_sent_at_the_range_end() -> None:
    # The last second alone would be [end, end]: widened into a second already passed
    # (ascending) or below the slice (descending).
    assert Axis(A, T0, T0 + 100).bounds(T0 + 100, T0 + 100) == (T0 + 99, T0 + 100)
    assert Axis(D, T0, T0 + 100).bounds(-(T0 + 100), -(T0 + 100)) == (T0 + 99, T0 + 100)
    for order in Order:
        listing = Listing.of([T0 + 100] * 30)
        assert len(check_walk(listing, T0, T0 + 100, order=order, page_size=7)) == 30


@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(1, 3)), max_size=30),
    st.tuples(st.integers(-1, 6), st.sampled_from([-_walkorder.BIG, 0, 2, 40, _walkorder.BIG])),
)
def test_page_keys_bisect_as_a_list_of_keys_does(
    steps: list[tuple[int, int]], key: tuple[int, int]
) -> None:
    # keys along a page: seconds never go back, ids strictly increase
    seconds = list(itertools.accumulate(step for step, _ in steps))
    rids = list(itertools.accumulate(gap for _, gap in steps))
    page = PageKeys(seconds, rids)
    assert list(page) == [Key(*pair) for pair in zip(seconds, rids, strict=True)]
    assert page.bisect_right(Key(*key)) == bisect.bisect_right(list(page), Key(*key))


def test_keys_increase_along_the_walk_in_both_orders() -> None:
    listing = Listing.of([T0 * 1000 + 5, T0 * 1000 + 999, (T0 + 1) * 1000])
    for order in Order:
        request = PageRequest(1, T0, T0 + 2, 1, 10, order)
        _, page_keys = Axis(order, T0, T0 + 2).checked(request, listing.answer(request).records)
        keys = list(page_keys)
        assert keys == sorted(keys)
        assert len(set(keys)) == 3


# --- placing a positional page ------------------------------------------------------------


@given(position=st.integers(0, 100_000), largest=st.integers(4, 100))
def test_a_placed_page_holds_the_anchor_the_one_before_and_room_after(
    position: int, largest: int
) -> None:
    placed = place(position, largest)
    if placed is None:  # only where no size up to `largest` has room (then keyset reads)
        assert all(position % size in (size - 1, 0) or size < 2 for size in range(2, 5))
        return
    page, size = placed
    start, stop = (page - 1) * size, page * size
    assert 2 <= size <= largest
    assert start <= max(position - 1, 0)
    assert position < stop - 1


def test_place_prefers_the_most_room() -> None:
    assert place(99, 100) == (2, 98)
    assert place(0, 100) == (1, 100)


# --- one slice ----------------------------------------------------------------------------


def keys(*pairs: tuple[int, int]) -> PageKeys:
    return PageKeys([second for second, _ in pairs], [rid for _, rid in pairs])


def test_a_keyset_page_takes_what_lies_ahead_and_a_short_one_ends_the_slice() -> None:
    part = Slice.of(10, 20)
    taken = part.take(Plan(10, 1, 3), keys((10, 1), (11, 2), (12, 3)), 3)
    assert (taken.start, taken.stop, taken.done) == (0, 3, False)
    assert part.mark == Key(12, 3)
    assert part.plan(3, 100) == Plan(12, 1, 3)
    taken = part.take(Plan(12, 1, 3), keys((12, 3), (13, 4)), 3)
    assert (taken.start, taken.stop, taken.done) == (1, 2, True)


def test_a_record_past_the_slice_ends_it_and_is_not_taken() -> None:
    part = Slice.of(10, 20)
    taken = part.take(Plan(10, 1, 3), keys((19, 1), (20, 2), (21, 3)), 3)
    assert (taken.start, taken.stop, taken.done) == (0, 2, True)


def test_a_crowded_second_is_read_by_position_and_each_page_must_reach_back() -> None:
    part = Slice.of(10, 20)
    crowded = keys(*((10, rid) for rid in range(1, 11)))
    part.take(Plan(10, 1, 10), crowded, 10)
    plan = part.plan(10, 100)
    # page 2 of 8 holds positions 8..15: ids 9 and 10 (the mark), then what follows
    assert plan == Plan(10, 2, 8)
    # Records expired before it: the page starts past the mark and is not used.
    failed = part.take(plan, keys((10, 11), (10, 12)), plan.size)
    assert failed.failed
    assert failed.stop == failed.start
    assert part.plan(10, 100) == Plan(10, 1, 10)  # read again by keyset
    # It reaches back: what follows the mark is taken.
    part.take(Plan(10, 1, 10), crowded, 10)
    taken = part.take(plan, keys((10, 9), (10, 10), (10, 11), (11, 12)), plan.size)
    assert (taken.start, taken.stop, taken.done) == (2, 4, True)


def test_a_small_server_cap_still_leaves_room_for_a_checked_page() -> None:
    part = Slice.of(10, 20)
    part.take(Plan(10, 1, 4), keys((10, 1), (10, 2), (10, 3), (10, 4)), 4)
    plan = part.plan(4, 4)
    assert plan.page > 1
    assert plan.offset <= 3 < plan.offset + plan.size - 1


def test_a_full_page_behind_the_mark_walks_on_and_a_repeat_fails() -> None:
    part = Slice(10, Key(20, 2**63), Key(10, 9))
    page = keys((10, 1), (10, 2), (10, 3), (10, 4))
    assert not part.take(Plan(10, 1, 4), page, 4).failed
    plan = part.plan(4, 100)
    assert plan.page > 1 or plan.size > 4
    again = keys(*((10, rid) for rid in range(5 - plan.size, 5)))  # ends where it ended
    assert part.take(plan, again, plan.size).failed


def test_failed_checks_in_a_row_raise() -> None:
    part = Slice(10, Key(20, 2**63), Key(10, 3))
    for _ in range(FAIL_LIMIT):
        assert part.take(Plan(10, 2, 4), keys((10, 7)), 4).failed
    with pytest.raises(ResponseError, match="in a row"):
        part.take(Plan(10, 2, 4), keys((10, 7)), 4)


# --- the slice planner ----------------------------------------------------------------------


@pytest.mark.parametrize("module", [_walkorder, _slice, _slice_plan, _horizon])
def test_the_examples_in_the_docstrings_hold(module: object) -> None:
    result = doctest.testmod(module, globs={"Order": Order, **vars(module)})
    assert result.attempted > 0
    assert result.failed == 0


def test_slices_are_sized_from_density_and_the_fill_adapts() -> None:
    planner = SlicePlanner(page_size=100)
    assert planner.seconds() is None
    planner.observe(records=100, seconds=50)
    assert planner.seconds() == 190  # 4 pages of 100 at 2 a second, at a fill of 0.95
    planner.observe(records=98, seconds=49, full=True)  # a full page brought 98 new ones
    assert planner.seconds() == 4 * 98 * 0.95 * 99 // 198
    planner.finished(pages=6)  # overflowed: aim lower
    assert planner.seconds() == 4 * 98 * 0.90 * 99 // 198
    planner.observe(records=0, seconds=10**6)
    assert planner.seconds() == DAY or planner.seconds() > 180


def test_slices_of_small_pages_hold_more_pages_and_are_cut_apart_at_the_end() -> None:
    assert [SlicePlanner(size).pages for size in (100, 50, 25, 10, 1)] == [4, 4, 8, 20, 200]
    planner = SlicePlanner(page_size=10)
    assert planner.ahead(0, 10**6) is None  # nothing known yet
    assert planner.half(0, 10**6) is None
    planner.observe(records=10, seconds=10, full=True)  # 1 a second, 10 new records a page
    length = planner.seconds()  # 20 pages of 10 at a fill of 0.95
    least = planner.seconds(4)
    assert (length, least) == (190, 38)
    # Cut at one length once a quarter of a slice or more lies past it (CUT_PAST).
    assert planner.ahead(100, 100 + length * 5 // 4 - 1) is None
    assert planner.ahead(100, 100 + length * 5 // 4) == 100 + length - 1
    assert planner.half(100, 100 + 2 * least - 1) is None
    assert planner.half(100, 100 + 2 * least) == 100 + least


# --- the walk over an honest listing --------------------------------------------------------


def times_at(rate: float, count: int, rng: random.Random, ms: bool = True) -> list[int]:
    """``count`` create_at values arriving as a Poisson process of ``rate`` a second."""
    at, out = 0.0, []
    for _ in range(count):
        at += rng.expovariate(rate)
        out.append(T0 * 1000 + int(at * 1000) if ms else T0 + int(at))
    return out


def check_walk(
    listing: Listing, start: int, end: int, *, order: Order = A, **options: object
) -> list[int]:
    before = set(listing.between(start, end))
    got = walk(listing, start, end, order=order, **options)  # type: ignore[arg-type]
    after = set(listing.between(start, end))
    assert len(got) == len(set(got)), "a record came twice"
    assert in_order(got, order)
    missing = (before & after) - set(got)
    assert not missing, f"{len(missing)} records present throughout were skipped"
    return got


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    count=st.integers(0, 300),
    per_second=st.sampled_from([0.01, 0.5, 3, 40, 170]),
    ms=st.booleans(),
    whole_seconds=st.booleans(),
    stale=st.integers(0, 3),
    order=st.sampled_from(Order),
    page_size=st.integers(1, 100) | st.sampled_from([1, 2, 3, 100]),
    concurrency=st.integers(1, 8),
    arrivals=st.integers(0, 5),
    expiries=st.integers(0, 2),
    cut_start=st.booleans(),
    cut_end=st.sampled_from(["before", "at", "future"]),
)
def test_every_record_present_throughout_is_yielded_once_whatever_the_churn(
    seed: int,
    count: int,
    per_second: float,
    ms: bool,
    whole_seconds: bool,
    stale: int,
    order: Order,
    page_size: int,
    concurrency: int,
    arrivals: int,
    expiries: int,
    cut_start: bool,
    cut_end: str,
) -> None:
    rng = random.Random(seed)
    times = times_at(per_second, count, rng, ms)
    listing = Listing.of(times, whole_seconds=whole_seconds, stale=stale)
    newest = (times[-1] // 1000 if ms else times[-1]) if times else T0
    span = newest - T0
    start = T0 + (rng.randint(0, span // 2) if cut_start and span else 0)
    end = {"before": max(start + 1, newest - span // 3), "at": newest + 1, "future": newest + 600}
    churn = Churn(rng, arrivals=arrivals, expiries=expiries, step=rng.choice([0, 1, 400, 3000]))
    if not ms:
        churn.step //= 1000
    check_walk(
        listing,
        start,
        end[cut_end],
        order=order,
        page_size=page_size,
        concurrency=concurrency,
        churn=churn,
        pick=lambda n: rng.randrange(n),
        max_calls=50_000,
    )


@pytest.mark.parametrize(("page_size", "concurrency"), [(100, 4), (10, 2), (10, 4), (10, 8)])
def test_a_crowded_listing_with_expiries_during_the_walk(page_size: int, concurrency: int) -> None:
    """1,000 records at 170 a second, a few expiring while the walk runs (once 4 skipped)."""
    for seed in range(20):
        rng = random.Random(seed)
        listing = Listing.of(times_at(170, 1000, rng))
        churn = Churn(rng, expiries=1)
        check_walk(
            listing, T0, T0 + 60, page_size=page_size, concurrency=concurrency, churn=churn,
            pick=lambda n, rng=rng: rng.randrange(n),
        )  # fmt: skip


def test_page_size_1_under_heavy_expiry() -> None:
    for seed in range(20):
        rng = random.Random(seed)
        listing = Listing.of(times_at(40, 200, rng))
        check_walk(listing, T0, T0 + 60, page_size=1, churn=Churn(rng, expiries=2))


@pytest.mark.parametrize("order", Order)
def test_a_stale_total_neither_ends_the_walk_nor_raises(order: Order) -> None:
    """Count, then select: an arrival between the two makes a page hold more than the
    total allows (once "total=0 allows only 0 pages" after 3 calls)."""
    for seed in range(30):
        rng = random.Random(seed)
        listing = Listing.of(times_at(3, 300, rng), stale=3)
        got = check_walk(
            listing, T0, T0 + 3600, order=order, page_size=10, concurrency=4,
            churn=Churn(rng, arrivals=3, step=300), pick=lambda n, rng=rng: rng.randrange(n),
        )  # fmt: skip
        assert got


@pytest.mark.parametrize("total_error", [-1000, -3, 5, 10_000])
def test_a_wrong_total_decides_nothing(total_error: int) -> None:
    listing = Listing.of(times_at(3, 500, random.Random(1)), total_error=total_error)
    got = check_walk(listing, T0, T0 + 3600, page_size=50, concurrency=3)
    assert len(got) == 500


def test_a_range_that_ends_in_the_future_ends_though_records_arrive_faster_than_pages() -> None:
    rng = random.Random(3)
    listing = Listing.of(times_at(50, 300, rng))
    existing = set(listing.ids)
    got = walk(
        listing, T0, T0 + 7 * DAY, page_size=10, churn=Churn(rng, arrivals=30, step=100),
        max_calls=5_000,
    )  # fmt: skip
    assert existing <= set(got)
    assert len(listing.calls) < 5_000


@pytest.mark.parametrize("concurrency", [1, 4, 8])
def test_max_items_asks_no_more_than_it_needs(concurrency: int) -> None:
    listing = Listing.of([T0 + i for i in range(300)])
    got = walk(listing, T0, T0 + 3 * DAY, page_size=10, concurrency=concurrency, max_items=25)
    assert got == listing.ids[:25]
    assert len(listing.calls) == 3


@pytest.mark.parametrize("order", Order)
def test_seconds_denser_than_a_page_on_window_edges(order: Order) -> None:
    times = [T0 + DAY - 1] * 250 + [T0 + DAY] * 250 + [T0 + 2 * DAY] * 120
    for whole_seconds in (False, True):
        for concurrency in (1, 3):
            listing = Listing.of(times, whole_seconds=whole_seconds)
            got = check_walk(
                listing, T0, T0 + 2 * DAY, order=order, page_size=100, concurrency=concurrency
            )
            assert len(got) == 620


def test_a_server_that_caps_the_page_size_is_read_at_its_size() -> None:
    listing = Listing.of([T0 + i // 7 for i in range(500)], cap=20)
    got = check_walk(listing, T0, T0 + 3600, page_size=100, concurrency=4)
    assert len(got) == 500


@pytest.mark.parametrize(("page_size", "count"), [(100, 10_000), (10, 2_000)])
def test_calls_stay_close_to_the_minimum(page_size: int, count: int) -> None:
    """``count`` records over a day, evenly spaced: within 15 % of ceil(N / page_size) at
    every concurrency; Poisson arrivals: within 25 % (pages of 10 in slices of 4 pages
    cost 1.21 and 1.29)."""
    even = [T0 * 1000 + i * (DAY * 1000 // count) for i in range(count)]
    poisson = times_at(count / DAY, count, random.Random(7))
    for times, slack in ((even, 1.15), (poisson, 1.25)):
        for concurrency in (1, 2, 4, 8):
            listing = Listing.of(times)
            got = walk(listing, T0, T0 + DAY, page_size=page_size, concurrency=concurrency)
            assert len(got) == count
            assert len(listing.calls) <= count / page_size * slack, (
                concurrency,
                len(listing.calls),
            )


def rounds_taken(listing: Listing, end: int, *, page_size: int, concurrency: int) -> int:
    """How many answer latencies a walk over ``listing`` takes when every answer takes
    one (calls sent together are answered together)."""
    walker = Walk(T0, end, order=A, page_size=page_size, concurrency=concurrency)
    flight: list[tuple[int, int, PageRequest]] = []
    now = 0
    while not walker.done:
        flight.extend((now + 1, request.seq, request) for request in walker.sends())
        flight.sort()
        now, _, request = flight.pop(0)
        walker.feed(request, listing.answer(request))
    return now


def test_the_end_of_a_walk_of_small_pages_still_runs_in_parallel() -> None:
    # 2,000 records in pages of 10: 200 calls, at least 26 rounds at 8 in flight. Slices
    # of small pages are long (about 200 records), so the last ones are cut in halves
    # while calls are to spare (without: 47 rounds).
    times = [T0 * 1000 + i * 1500 for i in range(2000)]
    assert rounds_taken(Listing.of(times), T0 + 3600, page_size=10, concurrency=8) <= 35


@pytest.mark.parametrize(("concurrency", "most"), [(4, 19), (8, 11)])
def test_windows_of_a_few_pages_are_read_in_parallel(concurrency: int, most: int) -> None:
    # 10 days of 667 records a day (one device), 7 pages of 100 a day: 70 calls, at
    # least 18 rounds at 4 in flight and 9 at 8. A day is cut at a slice's length (4
    # pages) and its far end read apart; left whole, each day went page by page while
    # the pages read ahead of it filled the memory budget (20 and 14 rounds).
    times = [T0 + i * 10 * DAY // 6670 for i in range(6670)]
    listing = Listing.of(times)
    assert rounds_taken(listing, T0 + 10 * DAY, page_size=100, concurrency=concurrency) <= most
    assert len(listing.calls) <= 72


def test_pages_stay_shallow() -> None:
    listing = Listing.of([T0 * 1000 + i * 4320 for i in range(20_000)])
    walk(listing, T0, T0 + DAY, page_size=100, concurrency=8, pick=lambda n: n - 1)
    assert max(call.page for call in listing.calls) <= 8 + 1


def test_in_flight_and_held_pages_stay_bounded() -> None:
    listing = Listing.of([T0 * 1000 + i * 864 for i in range(20_000)])
    walker = Walk(T0, T0 + DAY, order=A, page_size=100, concurrency=4)
    flight: list[PageRequest] = []
    most = 0
    while not walker.done:
        flight.extend(walker.sends())
        assert len(flight) <= 4
        request = flight.pop(len(flight) - 1)  # the newest first: the head waits longest
        walker.feed(request, listing.answer(request))
        most = max(most, sum(len(part.held) for part in walker.parts))
    assert most <= 5 * 4  # 4 * concurrency to send more, and what was in flight then


def test_pages_waiting_and_calls_in_flight_count_against_the_read_ahead() -> None:
    # Pages yielded but not yet taken by the consumer, and the pages the calls in flight
    # will bring, count as held: the head of the walk is always read, nothing more
    # once the budget (P * concurrency pages) is used up.
    listing = Listing.of([T0 * 1000 + i * 864 for i in range(20_000)])
    sent = {}
    for waiting in (0, 14, 16):
        walker = Walk(T0, T0 + DAY, order=A, page_size=100, concurrency=4)
        (first,) = walker.sends()  # alone: the density is not known yet
        walker.feed(first, listing.answer(first))
        assert walker.planner.pages * 4 == 16
        sent[waiting] = len(walker.sends(waiting=waiting))
    assert sent == {0: 4, 14: 2, 16: 1}


def test_nothing_is_read_ahead_when_not_asked_to() -> None:
    # ahead=False (the consumer found every call answered): the head slice's next page
    # (and the probe for the newest record, once due) only; its later pages follow one
    # by one, and the walk still yields everything.
    listing = Listing.of([T0 * 1000 + i * 864 for i in range(20_000)])
    walker = Walk(T0, T0 + DAY, order=A, page_size=100, concurrency=4)
    got: list[int] = []
    while not walker.done:
        requests = walker.sends(ahead=False)
        assert [r.order for r in requests].count(A) == 1
        for request in requests:
            got += answered(walker, request, listing.answer(request))
    assert got == listing.ids
    assert len(listing.calls) <= 207  # keyset pages of the head, as at concurrency 1


# --- servers that break the rules -------------------------------------------------------------


def answered(walker: Walk, request: PageRequest, page: RecordPage) -> list[int]:
    return [r.record_id for p in walker.feed(request, page).pages for r in p.records]


def run_against(answer: object, *, order: Order = A, page_size: int = 10) -> int:
    """Walk until ResponseError, never yielding a record twice; the number of calls
    since the last one that yielded something (the bound: failed checks in a row, each
    followed by a keyset read, and a page walking on)."""
    walker = Walk(T0, T0 + 3600, order=order, page_size=page_size, concurrency=2)
    seen: list[int] = []
    calls = idle = 0
    try:
        while not walker.done and calls < 500:
            for request in walker.sends():
                calls += 1
                new = answered(walker, request, answer(request))  # type: ignore[operator]
                idle = 0 if new else idle + 1
                seen += new
    except ResponseError:
        assert len(seen) == len(set(seen))
        return idle
    raise AssertionError(f"no ResponseError after {calls} calls")


def test_a_server_that_ignores_time_from_gets_response_error() -> None:
    listing = Listing.of([T0 + i // 20 for i in range(500)])

    def answer(request: PageRequest) -> RecordPage:
        return listing.answer(attrs_evolve(request, time_from=T0))

    # its records before time_from are not in the listing asked for: never taken
    assert run_against(answer) <= 2 * (FAIL_LIMIT + 1)


def test_a_server_that_ignores_page_gets_response_error() -> None:
    """Where only a page past the first can go on (a second of 300 records)."""
    listing = Listing.of([T0] * 300)

    def answer(request: PageRequest) -> RecordPage:
        return listing.answer(attrs_evolve(request, page=1))

    # each failed check: a keyset read, pages walking on as they double to 100, the check
    assert run_against(answer) <= (FAIL_LIMIT + 1) * 8


def test_a_server_that_reshuffles_gets_response_error() -> None:
    listing = Listing.of([T0 + i for i in range(50)])

    def answer(request: PageRequest) -> RecordPage:
        page = listing.answer(request)
        return RecordPage(page.page_num, page.page_size, page.total, page.records[::-1])

    assert run_against(answer) <= 2


def test_a_server_that_sends_more_than_asked_gets_response_error() -> None:
    listing = Listing.of([T0 + i for i in range(50)])

    def answer(request: PageRequest) -> RecordPage:
        return listing.answer(attrs_evolve(request, size=request.size + 1))

    assert run_against(answer) <= 2


def attrs_evolve(request: PageRequest, **changes: int) -> PageRequest:
    return attrs.evolve(request, **changes)


def test_the_probe_is_sent_once_for_long_ascending_walks() -> None:
    listing = Listing.of([T0 + i for i in range(3000)])
    walk(listing, T0, T0 + DAY, page_size=100)
    probes = [call for call in listing.calls if call.order is D]
    assert len(probes) == 1
    assert len(listing.calls) <= 31 + 1
    short = Listing.of([T0 + i for i in range(100 * (PROBE_AFTER - 2))])
    walk(short, T0, T0 + DAY, page_size=100)
    assert all(call.order is A for call in short.calls)


def test_the_probe_reads_the_whole_of_its_last_second() -> None:
    """A server comparing milliseconds: the newest record, stamped inside the second
    a probe ends at, is still found (and so still yielded)."""
    times = [T0 * 1000 + i * 150 for i in range(179)] + [(T0 + 26) * 1000 + 196]
    listing = Listing.of(times)
    got = check_walk(listing, T0, T0 + 2 * DAY, page_size=17, concurrency=8)
    assert got[-1] == listing.ids[-1]
