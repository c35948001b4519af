"""Cancellation, closing with calls in flight, and the client-wide caps."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from senselink_plus import (
    Client,
    ClientClosedError,
    HttpRequest,
    HttpResponse,
    RetryPolicy,
)
from senselink_plus.testing import Emulator, MockTransport
from tests.conftest import APP_KEY, APP_SECRET, JPEG, ok
from tests.fake_clock import FakeClock

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
EMPTY = {"page_num": 1, "page_size": 100, "total": 0, "list": []}


def other_tasks() -> list[asyncio.Task[object]]:
    """Tasks other than this test's, leaving out the emulator's idle server connections."""
    return [
        t
        for t in asyncio.all_tasks()
        if t is not asyncio.current_task()
        and not getattr(t.get_coro(), "__qualname__", "").startswith("RequestHandler.")
    ]


class Gate:
    """A handler that holds every request until released, counting those in flight."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.in_flight = 0
        self.peak = 0
        self.seen = 0

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        self.seen += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self.release.wait()
            return ok(EMPTY)
        finally:
            self.in_flight -= 1


async def test_cancelling_a_call_leaves_nothing_behind() -> None:
    gate = Gate()
    async with Client(APP_KEY, APP_SECRET, transport=MockTransport(gate)) as client:
        call = asyncio.create_task(client.get_image("abc"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert gate.in_flight == 1
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await asyncio.sleep(0)
        assert gate.in_flight == 0
        assert other_tasks() == []
        assert client._session._guard.idle


async def test_closing_fails_calls_in_flight_with_client_closed() -> None:
    gate = Gate()
    transport = MockTransport(gate)
    client = Client(APP_KEY, APP_SECRET, transport=transport)
    calls = [asyncio.create_task(client.get_image(f"id{i}")) for i in range(5)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert gate.in_flight == 5
    await client.aclose()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, ClientClosedError) for r in results)
    assert all(r.request is not None for r in results if isinstance(r, ClientClosedError))
    assert gate.in_flight == 0
    assert other_tasks() == []
    assert not transport.closed  # the user's transport stays open


async def test_closing_interrupts_a_retry_wait() -> None:
    waiting = asyncio.Event()

    async def long_sleep(seconds: float) -> None:
        waiting.set()
        await asyncio.sleep(3600)

    def busy(request: HttpRequest) -> HttpResponse:
        return HttpResponse(503, {}, b"")

    client = Client(APP_KEY, APP_SECRET, transport=MockTransport(busy), sleep=long_sleep)
    call = asyncio.create_task(client.get_image("abc"))
    await asyncio.wait_for(waiting.wait(), 1)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await asyncio.wait_for(call, 1)


async def test_closing_with_the_default_transport_during_a_slow_answer() -> None:
    async with Emulator() as emu:
        emu.delay("image", 5)
        client = emu.client(retry=RetryPolicy.none())
        call = asyncio.create_task(client.get_image("0" * 24))
        for _ in range(50):
            await asyncio.sleep(0.001)
            if emu.requests:
                break
        await client.aclose()
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(call, 2)
    assert other_tasks() == []


async def test_breaking_out_of_records_against_the_emulator_leaks_nothing() -> None:
    async with Emulator() as emu:
        now = datetime.now(timezone.utc)
        emu.seed(3000, start=now - timedelta(hours=2), span=timedelta(hours=1))
        async with emu.client() as client:
            async for record in client.records(now - timedelta(hours=3), now, concurrency=8):
                if record.record_id > 1_000_150:
                    break
            for _ in range(20):
                await asyncio.sleep(0.001)
            assert other_tasks() == []


async def test_a_thousand_calls_never_exceed_max_concurrency() -> None:
    gate = Gate()
    async with Client(
        APP_KEY, APP_SECRET, transport=MockTransport(gate), max_concurrency=8
    ) as client:
        calls = [
            asyncio.create_task(client.list_records(T0, T0 + timedelta(hours=1)))
            for _ in range(1000)
        ]
        for _ in range(20):
            await asyncio.sleep(0)
        assert gate.in_flight == 8
        gate.release.set()
        pages = await asyncio.gather(*calls)
    assert len(pages) == 1000
    assert gate.peak == 8
    assert gate.seen == 1000


async def test_rate_limit_holds_over_ten_seconds() -> None:
    virtual = FakeClock()
    starts: list[float] = []

    def handler(request: HttpRequest) -> HttpResponse:
        starts.append(virtual.now)
        return ok(EMPTY)

    async with Client(
        APP_KEY,
        APP_SECRET,
        transport=MockTransport(handler),
        rate_limit=20.0,
        clock=virtual.clock,
        timer=virtual.timer,
        sleep=virtual.sleep,
    ) as client:
        await virtual.run(
            asyncio.gather(*(client.list_records(T0, T0 + timedelta(hours=1)) for _ in range(400)))
        )
    assert len(starts) == 400
    begin = starts[0]
    per_window = Counter(int((t - begin) // 10) for t in starts)
    full_windows = [per_window[w] for w in sorted(per_window)][:-1]
    assert full_windows, "the run should span more than one 10 s window"
    for count in full_windows:
        assert abs(count - 200) <= 20  # 20/s over 10 s, within 10%
    assert starts[-1] - begin == pytest.approx(399 / 20.0)


async def test_closing_during_a_create_in_flight_says_the_record_may_exist() -> None:
    gate = Gate()
    client = Client(APP_KEY, APP_SECRET, transport=MockTransport(gate))
    call = asyncio.create_task(client.create_record("SN1", JPEG))
    for _ in range(5):
        await asyncio.sleep(0)
    assert gate.in_flight == 1
    await client.aclose()
    with pytest.raises(ClientClosedError) as info:
        await call
    assert info.value.record_may_exist
    assert "may have been created" in str(info.value)


async def test_closing_before_a_get_is_sent_says_nothing_of_records() -> None:
    gate = Gate()
    client = Client(APP_KEY, APP_SECRET, transport=MockTransport(gate))
    call = asyncio.create_task(client.get_image("abc"))
    for _ in range(5):
        await asyncio.sleep(0)
    await client.aclose()
    with pytest.raises(ClientClosedError) as info:
        await call
    assert not info.value.record_may_exist
