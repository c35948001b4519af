"""Client.watch: where a watch starts, exactly once across polls with an overlap, and the
server's clock."""

from __future__ import annotations

import itertools
import logging
import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from senselink_plus import (
    HttpRequest,
    HttpResponse,
    RetryPolicy,
)
from senselink_plus.testing import Emulator
from tests.conftest import JPEG, MakeClient
from tests.watch_helpers import (
    OVERLAP,
    T0,
    ClientFactory,
    Clock,
    ListServer,
    MemoryCheckpoint,
    WatchStopped,
    at,
    ids,
    list_windows,
    store,
    store_between,
    take,
)


@pytest.fixture
def fake_time() -> Clock:  # overrides conftest's, so make_client shares this clock
    return Clock()


# --- where a watch starts ------------------------------------------------------------


async def test_starts_from_now_and_yields_new_records_oldest_first_across_polls(
    emu: Emulator, watch_client: ClientFactory, fake_time: Clock
) -> None:
    old = store(emu, -3 * 3600, n=20, span=3600)
    # Stored before the watch started, but inside the overlap of its first poll.
    old += store(emu, -60) + store(emu, -1, n=3)  # the newest three share a second
    created: list[int] = []

    async def produce(before: float, after: float) -> None:
        created.extend(store_between(emu, before, after, 3))

    fake_time.on_sleep = produce
    client = watch_client()
    got = await take(client.watch(poll_interval=10), 15)
    assert ids(got) == created[:15]
    assert not set(ids(got)) & set(old)
    assert all(r.created_at > at(0) for r in got)
    assert len(list_windows(emu)) >= 5  # many polls, one sleep of 10 s between each
    assert fake_time.sleeps[:5] == [10.0] * 5


async def test_records_uploaded_during_the_watch_are_yielded(
    emu: Emulator, watch_client: ClientFactory, fake_time: Clock
) -> None:
    gate = watch_client(retry=RetryPolicy.none())
    uploaded: list[int] = []

    async def upload(before: float, after: float) -> None:
        created = await gate.create_record("GATE-1", JPEG, extend={"n": len(uploaded)})
        uploaded.append(created.record_id)

    fake_time.on_sleep = upload
    got = await take(watch_client().watch(poll_interval=5), 6)
    assert ids(got) == uploaded[:6]
    assert [r.extend_data for r in got] == [{"n": i} for i in range(6)]


async def test_since_yields_older_records_first(
    emu: Emulator, watch_client: ClientFactory, fake_time: Clock
) -> None:
    before_since = store(emu, -7200 - 600, n=3, span=540)  # the last one is 1 min before since
    history = store(emu, -7200, n=40, span=3600)
    created: list[int] = []

    async def produce(before: float, after: float) -> None:
        created.extend(store_between(emu, before, after, 2))

    fake_time.on_sleep = produce
    got = await take(watch_client().watch(since=at(-7200), poll_interval=10), 46)
    assert ids(got) == history + created[:6]
    assert not set(ids(got)) & set(before_since)
    assert [r.created_at for r in got] == sorted(r.created_at for r in got)


async def test_since_accepts_an_iso_string(emu: Emulator, watch_client: ClientFactory) -> None:
    history = store(emu, -600, n=5, span=60)
    got = await take(watch_client().watch(since="2023-11-14T22:03:20Z"), 5)  # T0 - 10 min
    assert ids(got) == history


async def test_sn_filters_the_watch(emu: Emulator, watch_client: ClientFactory) -> None:
    emu.seed(6, start=at(-300), span=timedelta(seconds=60), sn=["GATE-1", "GATE-2"])
    got = await take(watch_client().watch(sn="GATE-2", since=at(-600)), 3)
    assert {r.sn for r in got} == {"GATE-2"}
    assert all(r.query.get("sn") == "GATE-2" for r in emu.requests if r.route == "list")


async def test_a_fresh_watch_with_a_checkpoint_saves_its_start_at_once(
    emu: Emulator, watch_client: ClientFactory, fake_time: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "state.json"

    async def crash(before: float, after: float) -> None:
        if len(fake_time.sleeps) == 3:
            raise WatchStopped

    fake_time.on_sleep = crash
    client = watch_client()
    memory = MemoryCheckpoint()
    with pytest.raises(WatchStopped):
        await take(client.watch(poll_interval=10, checkpoint=memory), 1)  # nothing arrives
    # The first save came before the first poll: where the watch began. Nothing is
    # stored within half an hour, so it begins where its first look began.
    assert datetime.fromisoformat(memory.saves[0]["cursor"]) == at(-1800)
    assert datetime.fromisoformat(memory.saves[0]["floor"]) == at(-1800)
    fake_time.sleeps.clear()
    began = fake_time.now - T0
    with pytest.raises(WatchStopped):
        await take(client.watch(poll_interval=10, checkpoint=path), 1)
    state = orjson.loads(path.read_bytes())
    # Never past the server's now.
    assert at(began - 1800) <= datetime.fromisoformat(state["cursor"]) <= at(fake_time.now - T0)
    # Down for an hour; what was stored meanwhile comes on restart, not from a new "now".
    fake_time.on_sleep = None
    stored = store(emu, 600, n=4, span=1200)
    fake_time.now += 3600
    got = await take(client.watch(poll_interval=10, checkpoint=path), 4)
    assert ids(got) == stored


# --- exactly once across polls --------------------------------------------------------


async def test_records_inside_the_overlap_are_not_yielded_twice(
    emu: Emulator, watch_client: ClientFactory, fake_time: Clock
) -> None:
    created: list[int] = []

    async def produce(before: float, after: float) -> None:
        created.extend(store_between(emu, before, after, 4))

    fake_time.on_sleep = produce
    got = await take(watch_client().watch(poll_interval=15), 60)
    assert ids(got) == created[:60]
    assert len(set(ids(got))) == 60
    # The polls did overlap: most records were in the window of two or more polls.
    windows = list_windows(emu)
    assert all(b[0] < a[1] for a, b in itertools.pairwise(windows))
    listed = Counter(r.record_id for r in got for lo, hi in windows if lo <= r.created_at <= hi)
    assert sum(1 for n in listed.values() if n >= 2) >= 50


async def test_a_late_committed_record_inside_the_overlap_is_delivered(
    make_client: MakeClient, fake_time: Clock
) -> None:
    server = ListServer()
    server.add(1, -30)
    server.add(2, -10)
    polls = 0

    async def commit(before: float, after: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 1:
            server.add(3, -20)  # committed after 2 was delivered, stamped before it
            server.add(4, after - T0 - 1)
        elif polls == 2:
            server.add(5, -10)  # the same instant as 2: the overlap's edge
            server.add(6, after - T0 - 45)  # 45 s before 4, which was delivered
            server.add(7, after - T0)

    fake_time.on_sleep = commit
    client = make_client(server)
    got = await take(client.watch(since=at(-60), poll_interval=30), 7)
    assert ids(got) == [1, 2, 3, 4, 5, 6, 7]
    assert len(server.calls) == 3


@pytest.mark.parametrize(
    ("overlap", "expected"), [(OVERLAP, [1, 3]), (timedelta(minutes=5), [1, 2, 3])]
)
async def test_the_overlap_bounds_how_late_a_commit_may_be(
    make_client: MakeClient, fake_time: Clock, overlap: timedelta, expected: list[int]
) -> None:
    server = ListServer()
    server.add(1, -10)

    async def commit(before: float, after: float) -> None:
        if len(fake_time.sleeps) == 1:
            server.add(2, -10 - 180)  # 3 min before the cursor, overlap is 2 min
            server.add(3, after - T0)

    fake_time.on_sleep = commit
    watch = make_client(server).watch(since=at(-600), poll_interval=30, overlap=overlap)
    assert ids(await take(watch, len(expected))) == expected


# --- server time ------------------------------------------------------------------------


@pytest.mark.parametrize("skew_minutes", [-10, 10])
@pytest.mark.parametrize("with_since", [False, True])
async def test_a_client_clock_ten_minutes_off_the_servers_misses_nothing(
    fake_time: Clock, skew_minutes: int, with_since: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # The server's clock runs skew_minutes behind the client's (ahead when negative).
    async with Emulator(
        clock=fake_time.clock, clock_offset=timedelta(minutes=-skew_minutes)
    ) as emu:
        server_now = datetime.fromtimestamp(emu.now(), timezone.utc)
        before = list(emu.seed(3, start=server_now - timedelta(minutes=20), span=timedelta(0)))
        history = list(
            emu.seed(5, start=server_now - timedelta(minutes=4), span=timedelta(minutes=3))
        )
        options: dict[str, Any] = {
            "clock": fake_time.clock,
            "timer": fake_time.timer,
            "sleep": fake_time.sleep,
            "rng": random.Random(3),
        }
        gate = emu.client(**options)
        watcher = emu.client(**options)
        uploaded: list[int] = []

        async def upload(before: float, after: float) -> None:
            for _ in range(2):  # stamped by the server, in its time
                uploaded.append((await gate.create_record("GATE-1", JPEG)).record_id)

        fake_time.on_sleep = upload
        since = server_now - timedelta(minutes=10) if with_since else None
        expected_first = history if with_since else []
        with caplog.at_level(logging.WARNING, logger="senselink_plus"):
            got = ids(
                await take(watcher.watch(since=since, poll_interval=10), len(expected_first) + 40)
            )
        await gate.aclose()
        await watcher.aclose()
    assert got == expected_first + uploaded[:40]
    assert not set(got) & set(before)
    skew_warnings = [r for r in caplog.records if "off the server's" in r.getMessage()]
    assert len(skew_warnings) == 1  # once, however many polls
    assert f"{skew_minutes * 60:+d} s" in skew_warnings[0].getMessage()
    # Every poll read up to the server's now, not the client's (but the first with
    # since: no Date seen yet, it read to the local now and moved only to the server's).
    polls = [r for r in emu.requests if r.route == "list" and r.query.get("order") == "1"]
    for request in polls[1:] if with_since else polls:
        time_to = datetime.fromisoformat(request.query["time_to"]).timestamp()
        assert abs(time_to - request.received_at) <= 2
    assert len(polls) > 15


async def test_a_wild_date_header_does_not_unbound_a_poll(
    make_client: MakeClient, fake_time: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    server = ListServer()
    server.add(1, -30)

    def handler(request: HttpRequest) -> HttpResponse:
        response = server(request)
        return HttpResponse(
            response.status,
            {**response.headers, "date": "Fri, 01 Jan 2100 00:00:00 GMT"},
            response.content,
        )

    async def stop(before: float, after: float) -> None:
        if len(fake_time.sleeps) == 5:
            raise WatchStopped

    fake_time.on_sleep = stop
    got: list[int] = []

    async def consume() -> None:
        async for record in make_client(handler).watch(since=at(-60), poll_interval=10):
            got.append(record.record_id)

    with pytest.raises(WatchStopped):
        await consume()
    assert got == [1]
    assert "is not the server's clock, so the local one is used" in caplog.text
    assert len(server.calls) == 5  # one request a poll: no day-long windows walked
    # The date is not believed (the cloud refuses clocks 30 minutes off): local time.
    for n, call in enumerate(server.calls):
        assert datetime.fromisoformat(call["time_to"]) == at(n * 10)
