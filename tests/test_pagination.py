"""RecordPager: windows, paging, exactly-once, misbehaving servers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from senselink_plus import (
    Client,
    HttpRequest,
    HttpResponse,
    InvalidParameterError,
    Order,
    RecordPage,
    ResponseError,
    ValidationError,
)
from senselink_plus.testing import MockTransport
from tests.conftest import APP_KEY, APP_SECRET, error, ok
from tests.fake_clock import FakeClock
from tests.fake_listing import list_data, window_of

T0 = datetime(2024, 3, 1, tzinfo=timezone(timedelta(hours=9)))
T0_MS = int(T0.timestamp() * 1000)


def wire(record_id: int, create_at_ms: int, sn: str = "SN1") -> dict[str, Any]:
    return {
        "record_id": record_id,
        "sn": sn,
        "image_id": f"{record_id:024x}",
        "user_id": None,
        "verify_score": 0.3,
        "device_timestamp": create_at_ms // 1000,
        "timezone": "GMT+9:00",
        "create_at": create_at_ms,
        "extend": None,
    }


class FakeServer:
    """A list endpoint over an in-memory table the test may edit, as the spec describes it."""

    def __init__(self, records: list[dict[str, Any]], cap: int = 100) -> None:
        self.records = sorted(records, key=lambda r: r["record_id"])
        self.calls: list[dict[str, str]] = []
        self.cap = cap  # the largest page it serves (and says so in page_size)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        q = dict(request.params)
        self.calls.append(q)
        lo, hi = window_of(q)
        assert hi - lo <= 24 * 3600
        return ok(list_data(self.records, q, cap=self.cap))


def client_for(handler: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]) -> Client:
    return Client(
        APP_KEY, APP_SECRET, base_url="https://api.test", transport=MockTransport(handler)
    )


async def collect(client: Client, *args: Any, **kwargs: Any) -> list[int]:
    return [r.record_id async for r in client.records(*args, **kwargs)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    offsets=st.lists(
        st.integers(0, 3 * 86400)
        | st.sampled_from([0, 86399, 86400, 86401, 2 * 86400, 3 * 86400, 3 * 86400 + 1]),
        max_size=120,
    ),
    page_size=st.integers(1, 100),
    order=st.sampled_from(Order),
    days=st.integers(1, 3),
    concurrency=st.integers(1, 5),
)
async def test_every_record_exactly_once_in_order(
    offsets: list[int], page_size: int, order: Order, days: int, concurrency: int
) -> None:
    # Offsets are whole seconds, so many records sit exactly on window boundaries.
    records = [wire(1000 + i, T0_MS + off * 1000) for i, off in enumerate(sorted(offsets))]
    server = FakeServer(records)
    async with client_for(server) as client:
        got = await collect(
            client,
            T0,
            T0 + timedelta(days=days),
            order=order,
            page_size=page_size,
            concurrency=concurrency,
        )
    expected = [r["record_id"] for r in records if r["create_at"] <= T0_MS + days * 86400_000]
    if order is Order.DESCENDING:
        expected.reverse()
    assert got == expected
    # A page may ask for fewer records than page_size, to overlap the one before it;
    # a page_size under 10 may grow a little where no smaller page can.
    assert all(0 < int(call["size"]) <= max(page_size, 10) for call in server.calls)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(0, 400),
    page_size=st.integers(1, 40),
    order=st.sampled_from(Order),
    concurrency=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
)
async def test_answers_in_any_order_under_churn_lose_and_repeat_nothing(
    count: int, page_size: int, order: Order, concurrency: int, seed: int
) -> None:
    # Each answer comes after 0-3 turns of the loop (so answers overtake each other), and
    # before it a record may arrive at the newest end and the oldest may expire.
    rng = random.Random(seed)
    times = sorted(rng.randrange(3000) for _ in range(count))
    server = FakeServer([wire(i, T0_MS + t * 1000) for i, t in enumerate(times)])
    expired: set[int] = set()
    arrived = [count]
    newest = [T0_MS + (times[-1] if times else 0) * 1000]  # ever, expired or not

    async def churning(request: HttpRequest) -> HttpResponse:
        for _ in range(rng.randrange(4)):
            await asyncio.sleep(0)
        if rng.random() < 0.4:
            newest[0] = min(newest[0] + 1000, T0_MS + 3_599_000)
            server.records.append(wire(arrived[0], newest[0]))
            arrived[0] += 1
        if rng.random() < 0.3 and server.records:
            expired.add(server.records.pop(0)["record_id"])
        return server(request)

    async with client_for(churning) as client:
        got = await collect(
            client,
            T0,
            T0 + timedelta(hours=1),
            order=order,
            page_size=page_size,
            concurrency=concurrency,
        )
    assert len(got) == len(set(got))
    assert got == sorted(got, reverse=order is Order.DESCENDING)
    assert set(range(count)) - expired <= set(got)


async def test_concurrency_is_capped_at_64_before_anything_is_sent() -> None:
    server = FakeServer([wire(i, T0_MS + i * 1000) for i in range(3000)])
    async with client_for(server) as client:
        with pytest.raises(ValidationError, match=r"concurrency .* 1\.\.64") as info:
            client.records(T0, T0 + timedelta(hours=2), concurrency=65)
        assert info.value.field == "concurrency"
        assert server.calls == []
        got = await collect(client, T0, T0 + timedelta(hours=2), concurrency=64, page_size=10)
    assert got == list(range(3000))


async def test_a_90_day_range_is_walked_window_by_window() -> None:
    records = [wire(i, T0_MS + i * 3600_000) for i in range(90 * 24)]
    server = FakeServer(records)
    async with client_for(server) as client:
        got = await collect(client, T0, T0 + timedelta(days=90))
    assert got == [r["record_id"] for r in records]
    # (an ascending walk of more than 16 calls also asks once for the newest record)
    windows = {(c["time_from"], c["time_to"]) for c in server.calls if c["order"] == "1"}
    assert len(windows) == 90
    assert ("2024-03-01T00:00:00+09:00", "2024-03-02T00:00:00+09:00") in windows


async def test_descending_starts_with_the_latest_window() -> None:
    server = FakeServer([wire(1, T0_MS), wire(2, T0_MS + 30 * 3600_000)])
    async with client_for(server) as client:
        assert await collect(client, T0, T0 + timedelta(days=2), order=Order.DESCENDING) == [2, 1]
    assert server.calls[0]["time_from"] == "2024-03-02T00:00:00+09:00"
    assert server.calls[0]["order"] == "0"


async def test_max_items_stops_early_and_sends_no_more() -> None:
    server = FakeServer([wire(i, T0_MS + i * 1000) for i in range(250)])
    async with client_for(server) as client:
        assert await collect(client, T0, T0 + timedelta(hours=1), max_items=150) == list(range(150))
        assert len(server.calls) == 2
        assert await collect(client, T0, T0 + timedelta(hours=1), max_items=0) == []
        assert len(server.calls) == 2


async def test_pages_are_deduplicated_and_truncated() -> None:
    server = FakeServer([wire(i, T0_MS + i * 1000) for i in range(25)])
    async with client_for(server) as client:
        pages = [
            p
            async for p in client.records(
                T0, T0 + timedelta(hours=1), page_size=10, max_items=23
            ).pages()
        ]
    assert [r.record_id for p in pages for r in p.records] == list(range(23))
    assert all(0 < len(p) <= 10 for p in pages)


async def test_filters_by_sn() -> None:
    server = FakeServer([wire(1, T0_MS, "A"), wire(2, T0_MS + 1000, "B")])
    async with client_for(server) as client:
        assert await collect(client, T0, T0 + timedelta(hours=1), sn="B") == [2]
    assert server.calls[0]["sn"] == "B"


async def test_nothing_is_sent_until_iterated() -> None:
    server = FakeServer([])
    async with client_for(server) as client:
        pager = client.records(T0, T0 + timedelta(days=3))
        assert server.calls == []
        assert "2024-03-04T00:00:00+09:00" in repr(pager)
        assert await collect(client, T0, T0 + timedelta(days=3)) == []
    assert len(server.calls) == 3


async def test_a_page_that_does_not_advance_is_an_error() -> None:
    rows = [wire(i, T0_MS) for i in range(3)]

    def stuck(request: HttpRequest) -> HttpResponse:
        return ok({"page_num": 1, "page_size": 3, "total": 10, "list": rows})

    async with client_for(stuck) as client:
        with pytest.raises(ResponseError, match=r"in a row|the page holds"):
            await collect(client, T0, T0 + timedelta(hours=1), page_size=3)


async def test_pages_out_of_order_are_an_error() -> None:
    def shrinking(request: HttpRequest) -> HttpResponse:
        page = int(dict(request.params)["page"])
        rows = [wire(page * 1000 + i, T0_MS) for i in range(100)]
        total = 1000 if page == 1 else 50
        return ok({"page_num": page, "page_size": 100, "total": total, "list": rows})

    async with client_for(shrinking) as client:
        with pytest.raises(ResponseError, match=r"not in record_id order"):
            await collect(client, T0, T0 + timedelta(hours=1), order=Order.DESCENDING)


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_an_over_stated_total_ends_cleanly_with_every_record(concurrency: int) -> None:
    """A count that runs ahead of the list (total=1000, 150 held) is common."""
    server = FakeServer([wire(i, T0_MS + i * 1000) for i in range(150)])
    inner = server.__call__

    def over_stated(request: HttpRequest) -> HttpResponse:
        body = orjson.loads(inner(request).content)
        body["data"]["total"] = 1000
        return ok(body["data"])

    async with client_for(over_stated) as client:
        got = await collect(client, T0, T0 + timedelta(hours=1), concurrency=concurrency)
    assert got == list(range(150))
    # The total would ask for 10 pages. Answers are fed one by one as they come, so a
    # slice may be cut before the empty slices read with it are known: one call more.
    assert len(server.calls) <= 3 + concurrency


async def test_a_server_capping_the_page_size_is_followed() -> None:
    records = [wire(i, T0_MS + i) for i in range(120)]

    capped = FakeServer(records, cap=50)

    async with client_for(capped) as client:
        assert await collect(client, T0, T0 + timedelta(hours=1)) == list(range(120))


async def test_total_growing_under_descending_writes_loses_nothing() -> None:
    records = [wire(i, T0_MS + i * 1000) for i in range(250)]
    server = FakeServer(records)
    inner = server.__call__

    def with_writes(request: HttpRequest) -> HttpResponse:
        response = inner(request)
        if dict(request.params)["page"] == "1":  # 10 new records land after page 1
            server.records.extend(wire(1000 + i, T0_MS + 300_000 + i) for i in range(10))
        return response

    async with client_for(with_writes) as client:
        got = await collect(client, T0, T0 + timedelta(hours=1), order=Order.DESCENDING)
    assert len(got) == len(set(got))
    assert set(range(250)) <= set(got)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 101}, "page_size"),
        ({"concurrency": 0}, "concurrency"),
        ({"max_items": -1}, "max_items"),
        ({"order": 3}, "order"),
        ({"sn": ""}, "sn"),
    ],
)
async def test_bad_arguments_fail_at_the_call(kwargs: dict[str, Any], field: str) -> None:
    async with client_for(FakeServer([])) as client:
        with pytest.raises(ValidationError) as info:
            client.records(T0, T0 + timedelta(days=1), **kwargs)
    assert info.value.field == field


class SlowServer(FakeServer):
    """Answers after yielding to the loop, and tracks how many requests overlap."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        super().__init__(records)
        self.in_flight = 0
        self.peak = 0
        self.started: list[int] = []

    async def handle(self, request: HttpRequest) -> HttpResponse:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.started.append(int(dict(request.params)["page"]))
        try:
            for _ in range(3):
                await asyncio.sleep(0)
            return self(request)
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize("concurrency", [1, 2, 8])
async def test_concurrency_keeps_order_and_bounds_pages_in_flight(concurrency: int) -> None:
    server = SlowServer([wire(i, T0_MS + i * 10) for i in range(2000)])
    async with client_for(server.handle) as client:
        got = await collect(
            client, T0, T0 + timedelta(hours=1), page_size=50, concurrency=concurrency
        )
    assert got == list(range(2000))
    assert server.peak == concurrency
    # 40 pages of 50 at best; 100 records a second leave pages overlapping by a few.
    assert len(server.calls) <= 50


async def test_concurrency_one_is_lazy() -> None:
    server = SlowServer([wire(i, T0_MS + i * 10) for i in range(500)])
    async with client_for(server.handle) as client:
        pages = client.records(T0, T0 + timedelta(hours=1), concurrency=1).pages()
        await pages.__anext__()
        await asyncio.sleep(0.01)
        assert server.started == [1]
        await pages.__anext__()
        assert server.started == [1, 2]
        await pages.aclose()  # type: ignore[attr-defined]


@pytest.mark.parametrize("concurrency", [2, 4, 8])
async def test_an_instant_server_is_read_no_further_ahead_than_the_consumer_needs(
    concurrency: int,
) -> None:
    # Every answer is in before the consumer comes back for more: pages read ahead
    # would only wait in memory (each a hundred Records the garbage collector keeps
    # walking), so once the consumer has seen that, only what comes next is asked.
    server = FakeServer([wire(i, T0_MS + i * 10) for i in range(20_000)])
    async with client_for(server) as client:
        pages = client.records(T0, T0 + timedelta(hours=1), concurrency=concurrency).pages()
        ahead = []  # calls made but not yet yielded as pages, at each page yielded
        async for _ in pages:
            ahead.append(len(server.calls) - len(ahead) - 1)
    assert len(ahead) >= 200
    assert max(ahead) >= 2 * concurrency  # read ahead until the consumer first came back
    assert max(ahead[len(ahead) // 2 :]) <= 4  # then only what comes next


@pytest.mark.parametrize("concurrency", [2, 4, 8])
async def test_a_consumer_that_stops_taking_pages_stops_the_calls(concurrency: int) -> None:
    # Memory holds about 5 pages per call in flight, so the calls stop while nobody reads.
    server = SlowServer([wire(i, T0_MS + i * 1000) for i in range(20_000)])
    async with client_for(server.handle) as client:
        pages = client.records(T0, T0 + timedelta(hours=6), concurrency=concurrency).pages()
        await pages.__anext__()
        for _ in range(500):
            await asyncio.sleep(0)
        sent = len(server.calls)
        for _ in range(500):
            await asyncio.sleep(0)
        assert len(server.calls) == sent
        assert server.in_flight == 0
        assert sent <= 1 + 6 * concurrency
        await pages.aclose()  # type: ignore[attr-defined]


async def test_the_next_calls_are_in_flight_before_the_consumer_gets_a_page() -> None:
    # A consumer that works on a page without awaiting anything gives the loop no turn:
    # the calls that follow must already be on their way when it gets the page.
    server = SlowServer([wire(i, T0_MS + i * 10) for i in range(5000)])
    async with client_for(server.handle) as client:
        pages = client.records(T0, T0 + timedelta(hours=1), concurrency=4).pages()
        for _ in range(5):
            await pages.__anext__()
            assert server.in_flight > 0
        await pages.aclose()  # type: ignore[attr-defined]


async def test_a_call_goes_out_as_soon_as_the_answer_before_it_is_read() -> None:
    # Calls sent together are answered together. The next call must not wait until all
    # of those answers are read: that wait, once a round, cost records() 3-4 % of its
    # throughput against a hand-written client at 5-30 ms an answer.
    server = FakeServer([wire(i, T0_MS + i * 10) for i in range(5000)])
    gate = asyncio.Event()
    log: list[str] = []

    async def held(request: HttpRequest) -> HttpResponse:
        log.append("call")
        if len(log) > 1:  # the first call (alone: the density is unknown) goes through
            await gate.wait()
        log.append("answer")
        return server(request)

    async with client_for(held) as client:
        pages = client.records(T0, T0 + timedelta(hours=1), concurrency=4).pages()
        await pages.__anext__()
        for _ in range(5):
            await asyncio.sleep(0)
        assert log.count("call") == 5  # the first and 4 held
        del log[:]
        gate.set()
        for _ in range(5):
            await asyncio.sleep(0)
        await pages.aclose()  # type: ignore[attr-defined]
    assert log[:3] == ["answer", "call", "answer"]


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_nothing_is_sent_while_a_back_off_runs(concurrency: int) -> None:
    # The third call and its re-read get a full page of records outside the window
    # asked: the second failed check in a row asks for a back-off before the next read.
    from senselink_plus._pagination import RecordPager
    from senselink_plus._wire import structure

    rows = [wire(i, T0_MS + i * 1000) for i in range(3000)]
    stray = [wire(10_000 + i, T0_MS - 3_600_000) for i in range(100)]
    sent: list[tuple[str, ...]] = []
    spoiled: list[tuple[str, ...]] = []
    pauses: list[int] = []

    async def fetch(request: HttpRequest) -> RecordPage:
        q = dict(request.params)
        call = (q["time_from"], q["time_to"], q["page"], q["size"])
        sent.append(call)
        if len(sent) == 3:
            spoiled.append(call)
        await asyncio.sleep(0)
        data = list_data(rows, q)
        if call in spoiled and sent.count(call) <= 2:
            data = {**data, "list": stray[: int(q["size"])]}
        return structure(data, RecordPage, request, 200)

    async def pause(attempt: int) -> None:
        pauses.append(attempt)
        before = len(sent)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(sent) == before

    pager = RecordPager(
        fetch,
        "https://api.test",
        T0,
        T0 + timedelta(hours=1),
        sn=None,
        order=Order.ASCENDING,
        page_size=100,
        concurrency=concurrency,
        max_items=None,
        pause=pause,
    )
    got = [record.record_id async for record in pager]
    assert got == list(range(3000))
    assert pauses == [1]


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_an_error_on_the_wire_ends_the_walk_after_the_records_before_it(
    concurrency: int,
) -> None:
    server = SlowServer([wire(i, T0_MS + i * 1000) for i in range(3000)])

    async def failing(request: HttpRequest) -> HttpResponse:
        if len(server.calls) == 6:
            return error(30001, "Param Invalid")
        return await server.handle(request)

    got: list[int] = []

    async def consume(client: Client) -> None:
        async for record in client.records(T0, T0 + timedelta(hours=1), concurrency=concurrency):
            got.append(record.record_id)

    async with client_for(failing) as client:
        with pytest.raises(InvalidParameterError) as info:
            await consume(client)
        for _ in range(10):
            await asyncio.sleep(0)
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    assert info.value.request is not None
    assert got == list(range(len(got)))
    assert server.in_flight == 0


async def test_breaking_out_leaves_nothing_in_flight() -> None:
    server = SlowServer([wire(i, T0_MS + i * 10) for i in range(5000)])
    async with client_for(server.handle) as client:
        async for record in client.records(T0, T0 + timedelta(hours=1), concurrency=8):
            if record.record_id == 150:
                break
        for _ in range(10):
            await asyncio.sleep(0)
        assert server.in_flight == 0
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_cancelling_the_consumer_leaves_nothing_in_flight() -> None:
    server = SlowServer([wire(i, T0_MS + i * 10) for i in range(5000)])
    async with client_for(server.handle) as client:

        async def consume() -> None:
            async for _ in client.records(T0, T0 + timedelta(hours=1), concurrency=8):
                await asyncio.sleep(0)

        task = asyncio.create_task(consume())
        for _ in range(30):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(10):
            await asyncio.sleep(0)
        assert server.in_flight == 0
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


@pytest.mark.parametrize("order", list(Order))
@pytest.mark.parametrize("concurrency", [1, 4])
async def test_live_writes_lose_and_repeat_nothing(order: Order, concurrency: int) -> None:
    """A writer adds records to the window while a reader walks it."""
    server = FakeServer([wire(i, T0_MS + i * 10) for i in range(1000)])
    next_id = [5000]

    async def writing(request: HttpRequest) -> HttpResponse:
        # Concurrent requests are answered out of order (higher pages first within a
        # batch), and 7 new records are stored in the window before each answer.
        page = int(dict(request.params)["page"])
        for _ in range(3 * (4 - page % 4)):
            await asyncio.sleep(0)
        for _ in range(7):
            server.records.append(wire(next_id[0], T0_MS + 20_000 + next_id[0]))
            next_id[0] += 1
        return server(request)

    async with client_for(writing) as client:
        got = await collect(
            client, T0, T0 + timedelta(hours=1), order=order, page_size=50, concurrency=concurrency
        )
    assert len(got) == len(set(got))
    assert set(range(1000)) <= set(got)
    assert got == sorted(got, reverse=order is Order.DESCENDING)


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_expiring_records_do_not_make_the_walk_skip(concurrency: int) -> None:
    """Retention removes the oldest records mid-walk; ascending offsets shift back."""
    base = [wire(i, T0_MS + i * 10) for i in range(1000)]
    server = SlowServer(base)

    async def expiring(request: HttpRequest) -> HttpResponse:
        if dict(request.params)["page"] != "1":
            del server.records[:13]  # the 13 oldest expire before each later page
        return await server.handle(request)

    async with client_for(expiring) as client:
        got = await collect(
            client, T0, T0 + timedelta(hours=1), page_size=50, concurrency=concurrency
        )
    assert len(got) == len(set(got))
    assert got == sorted(got)
    survivors = {r["record_id"] for r in server.records}
    assert survivors <= set(got)


@pytest.mark.parametrize("expiring_per_request", [0.3, 1.0, 3.0])
async def test_a_window_at_the_retention_edge_is_walked_without_stalling(
    expiring_per_request: float,
) -> None:
    """Records keep expiring from the start of the window while it is read."""
    from senselink_plus.testing import Emulator

    clock = FakeClock()
    start = datetime.fromtimestamp(clock.now, timezone.utc) - timedelta(hours=10)
    per_second = 4000 / 2400  # 4,000 records over the window's first 40 minutes

    def advance(event: Any) -> None:
        if event.path.endswith("/record"):
            clock.advance(expiring_per_request / per_second)

    async with Emulator(clock=clock, retention=timedelta(hours=10)) as emu:
        emu.seed(4000, start=start + timedelta(seconds=30), span=timedelta(minutes=40))
        async with emu.client(clock=clock.clock, event_hooks={"request": [advance]}) as client:
            got = [
                r.record_id
                async for r in client.records(start, start + timedelta(hours=1), page_size=100)
            ]
        survivors = {r["record_id"] for r in emu.records}
        requests = len(emu.requests)
    assert len(got) == len(set(got))
    assert got == sorted(got)
    assert survivors <= set(got)
    assert requests < 200  # 40 pages; a walk that keeps rewinding would need thousands


@pytest.mark.parametrize("sn", [None, "SN1"])
@pytest.mark.parametrize("order", [Order.ASCENDING, Order.DESCENDING])
def test_each_call_the_pager_sends_is_what_build_list_records_makes(
    sn: str | None, order: Order
) -> None:
    from senselink_plus import _endpoints as ep
    from senselink_plus._pagination import RecordPager
    from senselink_plus._paging import PageRequest

    async def never(request: HttpRequest) -> Any:
        raise AssertionError("nothing is sent")

    async def no_pause(attempt: int) -> None:
        raise AssertionError("no back-off")

    jst = timezone(timedelta(hours=9))
    t0 = datetime(2024, 5, 1, tzinfo=jst)
    pager = RecordPager(
        never,
        "https://api.test",
        t0,
        t0 + timedelta(days=2),
        sn=sn,
        order=order,
        page_size=50,
        concurrency=2,
        max_items=None,
        pause=no_pause,
    )
    lo, hi = t0 + timedelta(hours=3, seconds=7), t0 + timedelta(days=1)
    asked = PageRequest(9, int(lo.timestamp()), int(hi.timestamp()), 4, 37, order)
    expected = ep.build_list_records(
        "https://api.test", lo, hi, sn=sn, order=order, page=4, size=37
    )
    assert pager._http(asked) == expected
