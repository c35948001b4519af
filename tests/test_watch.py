"""Client.watch: tailing new records with an overlap, a checkpoint, catch-up and back-off."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import itertools
import json
import logging
import os
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from senselink_plus import (
    Client,
    ClientClosedError,
    FileCheckpoint,
    HttpRequest,
    HttpResponse,
    Record,
    RetryPolicy,
    SenseLinkError,
    ServerError,
    ValidationError,
)
from senselink_plus.testing import Emulator
from tests.conftest import APP_KEY, JPEG, FakeTime, MakeClient, ok

T0 = 1_700_000_000.0  # the fake clock's start: 2023-11-14T22:13:20Z
OVERLAP = timedelta(minutes=2)


def at(seconds: float) -> datetime:
    """The aware UTC instant ``seconds`` after T0 (negative: before)."""
    return datetime.fromtimestamp(T0 + seconds, timezone.utc)


class Clock(FakeTime):
    """One fake clock for the emulator and the client; sleeping advances it at once.

    ``on_sleep(before, after)`` runs after each sleep, so a test can store records
    "while" the watch waits; ``limit`` turns a watch that would spin forever into a
    failure (a RuntimeError is not a SenseLinkError, so the watch lets it through).
    """

    def __init__(self, start: float = T0) -> None:
        super().__init__(start)
        self.on_sleep: Callable[[float, float], Awaitable[None]] | None = None
        self.limit = 2_000

    async def sleep(self, seconds: float) -> None:
        before = self.now
        await super().sleep(seconds)
        if len(self.sleeps) > self.limit:
            raise RuntimeError(f"the watch slept {len(self.sleeps)} times")
        if self.on_sleep is not None:
            await self.on_sleep(before, self.now)


class WatchStopped(Exception):
    """Raised from a test's fake sleep to end a watch that yields nothing."""


@pytest.fixture
def fake_time() -> Clock:  # overrides conftest's, so make_client shares this clock
    return Clock()


@pytest.fixture
async def emu(fake_time: Clock) -> AsyncIterator[Emulator]:
    async with Emulator(clock=fake_time.clock) as emulator:
        yield emulator


ClientFactory = Callable[..., Client]


@pytest.fixture
async def make(emu: Emulator, fake_time: Clock) -> AsyncIterator[ClientFactory]:
    """Clients on the emulator, on the shared fake clock, closed after the test."""
    clients: list[Client] = []

    def factory(**options: Any) -> Client:
        options.setdefault("clock", fake_time.clock)
        options.setdefault("timer", fake_time.timer)
        options.setdefault("sleep", fake_time.sleep)
        options.setdefault("rng", random.Random(1234))
        client = emu.client(**options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


def store(emu: Emulator, when: float, n: int = 1, span: float = 0.0) -> list[int]:
    """Store ``n`` records spread over ``[T0 + when, T0 + when + span]``; return their ids."""
    return list(emu.seed(n, start=at(when), span=timedelta(seconds=span), sn="GATE-1"))


def store_between(emu: Emulator, before: float, after: float, n: int) -> list[int]:
    """Store ``n`` records strictly inside the fake interval ``(before, after)``."""
    step = (after - before) / (n + 1)
    ids: list[int] = []
    for i in range(1, n + 1):
        ids += store(emu, before - T0 + i * step)
    return ids


async def take(watch: AsyncIterator[Record], n: int) -> list[Record]:
    """The next ``n`` records of a watch, closing it afterwards."""
    got: list[Record] = []
    if n == 0:
        return got
    async with contextlib.aclosing(watch):  # type: ignore[type-var]
        async for record in watch:
            got.append(record)
            if len(got) == n:
                break
    return got


def ids(records: list[Record]) -> list[int]:
    return [r.record_id for r in records]


def list_windows(emu: Emulator) -> list[tuple[datetime, datetime]]:
    return [
        (datetime.fromisoformat(r.query["time_from"]), datetime.fromisoformat(r.query["time_to"]))
        for r in emu.requests
        if r.route == "list"
    ]


class MemoryCheckpoint:
    """A custom checkpoint: async load/save of a copy, counting saves."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None
        self.saves: list[dict[str, Any]] = []

    async def load(self) -> Mapping[str, Any] | None:
        await asyncio.sleep(0)
        return copy.deepcopy(self.state)

    async def save(self, state: Mapping[str, Any]) -> None:
        await asyncio.sleep(0)
        self.state = copy.deepcopy(dict(state))
        self.saves.append(self.state)


# --- where a watch starts ------------------------------------------------------------


async def test_starts_from_now_and_yields_new_records_oldest_first_across_polls(
    emu: Emulator, make: ClientFactory, fake_time: Clock
) -> None:
    old = store(emu, -3 * 3600, n=20, span=3600)
    # Stored before the watch started, but inside the overlap of its first poll.
    old += store(emu, -60) + store(emu, -1, n=3)  # the newest three share a second
    created: list[int] = []

    async def produce(before: float, after: float) -> None:
        created.extend(store_between(emu, before, after, 3))

    fake_time.on_sleep = produce
    client = make()
    got = await take(client.watch(poll_interval=10), 15)
    assert ids(got) == created[:15]
    assert not set(ids(got)) & set(old)
    assert all(r.created_at > at(0) for r in got)
    assert len(list_windows(emu)) >= 5  # many polls, one sleep of 10 s between each
    assert fake_time.sleeps[:5] == [10.0] * 5


async def test_records_uploaded_during_the_watch_are_yielded(
    emu: Emulator, make: ClientFactory, fake_time: Clock
) -> None:
    gate = make(retry=RetryPolicy.none())
    uploaded: list[int] = []

    async def upload(before: float, after: float) -> None:
        created = await gate.create_record("GATE-1", JPEG, extend={"n": len(uploaded)})
        uploaded.append(created.record_id)

    fake_time.on_sleep = upload
    got = await take(make().watch(poll_interval=5), 6)
    assert ids(got) == uploaded[:6]
    assert [r.extend_data for r in got] == [{"n": i} for i in range(6)]


async def test_since_yields_older_records_first(
    emu: Emulator, make: ClientFactory, fake_time: Clock
) -> None:
    before_since = store(emu, -7200 - 600, n=3, span=540)  # the last one is 1 min before since
    history = store(emu, -7200, n=40, span=3600)
    created: list[int] = []

    async def produce(before: float, after: float) -> None:
        created.extend(store_between(emu, before, after, 2))

    fake_time.on_sleep = produce
    got = await take(make().watch(since=at(-7200), poll_interval=10), 46)
    assert ids(got) == history + created[:6]
    assert not set(ids(got)) & set(before_since)
    assert [r.created_at for r in got] == sorted(r.created_at for r in got)


async def test_since_accepts_an_iso_string(emu: Emulator, make: ClientFactory) -> None:
    history = store(emu, -600, n=5, span=60)
    got = await take(make().watch(since="2023-11-14T22:03:20Z"), 5)  # T0 - 10 min
    assert ids(got) == history


async def test_sn_filters_the_watch(emu: Emulator, make: ClientFactory) -> None:
    emu.seed(6, start=at(-300), span=timedelta(seconds=60), sn=["GATE-1", "GATE-2"])
    got = await take(make().watch(sn="GATE-2", since=at(-600)), 3)
    assert {r.sn for r in got} == {"GATE-2"}
    assert all(r.query.get("sn") == "GATE-2" for r in emu.requests if r.route == "list")


async def test_a_fresh_watch_with_a_checkpoint_saves_its_start_at_once(
    emu: Emulator, make: ClientFactory, fake_time: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "state.json"

    async def crash(before: float, after: float) -> None:
        if len(fake_time.sleeps) == 3:
            raise WatchStopped

    fake_time.on_sleep = crash
    client = make()
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
    emu: Emulator, make: ClientFactory, fake_time: Clock
) -> None:
    created: list[int] = []

    async def produce(before: float, after: float) -> None:
        created.extend(store_between(emu, before, after, 4))

    fake_time.on_sleep = produce
    got = await take(make().watch(poll_interval=15), 60)
    assert ids(got) == created[:60]
    assert len(set(ids(got))) == 60
    # The polls did overlap: most records were in the window of two or more polls.
    windows = list_windows(emu)
    assert all(b[0] < a[1] for a, b in itertools.pairwise(windows))
    listed = Counter(r.record_id for r in got for lo, hi in windows if lo <= r.created_at <= hi)
    assert sum(1 for n in listed.values() if n >= 2) >= 50


class ListServer:
    """A list endpoint over a table the test edits, so commit order can be chosen.

    The emulator stamps ``create_at`` on arrival and never lets it go back; a real
    service may commit a record after a newer one, with an earlier ``create_at``.
    """

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.calls: list[dict[str, str]] = []
        self.fail_next = 0

    def add(self, record_id: int, seconds: float) -> int:
        ms = round((T0 + seconds) * 1000)
        self.rows.append(
            {
                "record_id": record_id,
                "sn": "GATE-1",
                "image_id": f"{record_id:024x}",
                "user_id": None,
                "verify_score": 0.3,
                "device_timestamp": ms // 1000,
                "timezone": "GMT+0:00",
                "create_at": ms,
                "extend": None,
            }
        )
        self.rows.sort(key=lambda row: row["record_id"])
        return record_id

    def __call__(self, request: HttpRequest) -> HttpResponse:
        q = dict(request.params)
        self.calls.append(q)
        if self.fail_next:
            self.fail_next -= 1
            return HttpResponse(503, {"content-type": "application/json"}, b"{}")
        lo = datetime.fromisoformat(q["time_from"]).timestamp() * 1000
        hi = datetime.fromisoformat(q["time_to"]).timestamp() * 1000
        rows = [row for row in self.rows if lo <= row["create_at"] <= hi]
        page, size = int(q["page"]), int(q["size"])
        chunk = rows[(page - 1) * size : page * size]
        return ok({"page_num": page, "page_size": size, "total": len(rows), "list": chunk})


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


# --- restarts from a checkpoint -------------------------------------------------------


@pytest.fixture(params=["file", "object"])
def checkpoint(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "file":
        return tmp_path / "state.json"
    return MemoryCheckpoint()


class CrashingCheckpoint(MemoryCheckpoint):
    """Counts what was delivered at each save; after ``crash()`` no save lands (kill -9)."""

    def __init__(self, delivered: list[int]) -> None:
        super().__init__()
        self.delivered = delivered
        self.saved_after: list[int] = []
        self.crashed = False

    async def save(self, state: Mapping[str, Any]) -> None:
        if not self.crashed:
            handled = len(self.delivered)  # the state covers these (asked for the next)
            await super().save(state)
            self.saved_after.append(handled)


class SlowCheckpoint(MemoryCheckpoint):
    """Saves that take a while (a few loop turns), counting how many overlap."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most = 0

    async def save(self, state: Mapping[str, Any]) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        for _ in range(20):
            await asyncio.sleep(0)
        await super().save(state)
        self.running -= 1


@pytest.mark.parametrize("durable_acks", [False, True])
async def test_saves_run_beside_the_delivery_one_at_a_time_and_the_last_lands(
    emu: Emulator, make: ClientFactory, durable_acks: bool
) -> None:
    history = store(emu, -3000, n=1000, span=30)  # ten pages
    checkpoint = SlowCheckpoint()
    watch = make().watch(since=at(-3600), checkpoint=checkpoint, durable_acks=durable_acks)
    got = await take(watch, 1000)
    assert ids(got) == history
    assert checkpoint.most == 1
    if durable_acks:  # the start, then one save for each acknowledgement
        marks = [state["watermark"] for state in checkpoint.saves[1:]]
        assert marks == history[:-1]
    else:
        assert 3 <= len(checkpoint.saves) <= 12  # the start, pages (coalesced), the close
    assert checkpoint.saves[-1]["watermark"] == history[-2]  # the last was in hand


@pytest.mark.parametrize("crash_after", [1, 99, 100, 101, 250])
async def test_a_crash_repeats_at_most_the_records_delivered_since_the_last_save(
    emu: Emulator, make: ClientFactory, crash_after: int
) -> None:
    history = store(emu, -3000, n=300, span=20)  # dense: 15 records a second, 3 pages
    first: list[int] = []
    checkpoint = CrashingCheckpoint(first)
    client = make()
    watch = client.watch(since=at(-3600), checkpoint=checkpoint, durable_acks=False)
    async for record in watch:
        first.append(record.record_id)
        if len(first) == crash_after:
            checkpoint.crashed = True  # nothing more reaches the store, not even the close
            break
    await watch.aclose()
    assert len(checkpoint.saves) < 10  # coalesced: not one save a record
    handled = checkpoint.saved_after[-1]  # records fully handled at the last save
    checkpoint.crashed = False
    rest = ids(await take(client.watch(checkpoint=checkpoint), 300 - handled))
    assert rest == history[handled:]  # nothing skipped
    repeated = set(first) & set(rest)
    assert repeated == set(first[handled:])  # only what came after the last save
    assert len(repeated) <= 100  # at most a page: a save follows every page


@pytest.mark.parametrize("crash_after", [1, 99, 100, 101, 250])
async def test_with_durable_acks_a_crash_repeats_only_the_record_in_hand(
    emu: Emulator, make: ClientFactory, crash_after: int
) -> None:
    history = store(emu, -3000, n=300, span=20)
    first: list[int] = []
    checkpoint = CrashingCheckpoint(first)
    client = make()
    watch = client.watch(since=at(-3600), checkpoint=checkpoint)
    async for record in watch:
        first.append(record.record_id)
        if len(first) == crash_after:
            checkpoint.crashed = True  # killed while it handles this one
            break
    await watch.aclose()
    # Each record was saved as acknowledged before the next was handed out.
    assert checkpoint.saved_after[1:] == list(range(1, crash_after))
    checkpoint.crashed = False
    rest = ids(await take(client.watch(checkpoint=checkpoint), 300 - crash_after + 1))
    assert first[:-1] + rest == history  # only the record in hand comes again


async def test_the_position_is_saved_after_each_page_and_on_close(
    emu: Emulator, make: ClientFactory, checkpoint: Any
) -> None:
    history = store(emu, -600, n=10, span=60)
    load = FileCheckpoint(checkpoint).load if isinstance(checkpoint, Path) else checkpoint.load
    client = make()
    # Coalesced saves (each acknowledgement saved at once: test_watch_durable_acks.py).
    watch = client.watch(since=at(-900), checkpoint=checkpoint, durable_acks=False)
    started = await load()  # not yet: the watch starts when iterated
    assert started is None
    got = [await anext(watch) for _ in range(5)]  # the 5th is "in hand"
    state = await load()
    assert state is not None  # the start, saved before the first poll
    assert datetime.fromisoformat(state["cursor"]) == at(-900)
    # What the consumer would save with its own writes once the 5th is handled.
    assert watch.state is not None
    assert datetime.fromisoformat(watch.state["cursor"]) == got[4].created_at
    assert watch.state["ids"] == [got[4].record_id]  # one record a 6 s second
    assert watch.state["watermark"] == got[4].record_id
    await watch.aclose()  # stopping saves, but does not mark the record in hand as done
    state = await load()
    assert state is not None
    assert datetime.fromisoformat(state["cursor"]) == got[3].created_at
    assert state["ids"] == [got[3].record_id]
    rest = await take(client.watch(checkpoint=checkpoint), 6)
    assert ids(got[:4] + rest) == history


async def test_catching_up_after_a_three_day_outage_uses_24_hour_windows(
    emu: Emulator, make: ClientFactory, fake_time: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "state.json"
    before = store(emu, -300, n=3, span=120)
    client = make()
    assert ids(await take(client.watch(since=at(-600), checkpoint=path), 3)) == before
    # Down for three days while the gates keep storing records, one every 50 minutes.
    during = store(emu, 60, n=86, span=85 * 3000)
    during += store(emu, 3 * 86400 - 100)
    fake_time.now += 3 * 86400
    emu.reset_requests()

    got = ids(await take(client.watch(checkpoint=path, poll_interval=10), 1 + 87))
    assert got == before[-1:] + during  # the record in hand at the stop, then all in order
    windows = list_windows(emu)
    assert all(hi - lo <= timedelta(hours=24) for lo, hi in windows)
    distinct = sorted(set(windows))
    assert len(distinct) == 4  # 3 days and the overlap: four windows, walked in order
    assert [lo for lo, _ in windows] == sorted(lo for lo, _ in windows)
    assert all(b[0] == a[1] for a, b in itertools.pairwise(distinct))
    # From the saved cursor (the 2nd record: the 3rd was in hand), less the overlap.
    assert distinct[0][0] == at(-240) - OVERLAP
    assert distinct[-1][1] >= at(3 * 86400)
    assert fake_time.sleeps == []  # one poll caught up with all three days
    state = orjson.loads(path.read_bytes())
    assert datetime.fromisoformat(state["cursor"]) == at(60 + 85 * 3000)


# --- failures ---------------------------------------------------------------------------


async def test_failed_polls_back_off_and_the_watch_goes_on(
    emu: Emulator, make: ClientFactory, fake_time: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    history = store(emu, -300, n=5, span=60)
    emu.fail("list", status=503, times=4)
    client = make(retry=RetryPolicy(max_attempts=1))
    watch = client.watch(since=at(-600), poll_interval=10)
    with caplog.at_level(logging.WARNING, logger="senselink_plus"):
        got = [await anext(watch) for _ in range(5)]
    assert ids(got) == history
    backoffs = fake_time.sleeps
    assert len(backoffs) == 4
    assert all(a < b for a, b in itertools.pairwise(backoffs))
    assert 10 <= backoffs[0] <= 20
    assert 80 <= backoffs[3] <= 160
    warnings = [r for r in caplog.records if "watch poll failed" in r.getMessage()]
    assert len(warnings) == 4
    assert all("ServerError" in r.getMessage() for r in warnings)

    # After a good poll the back-off starts over.
    emu.fail("list", status=503, times=1)
    fresh: list[int] = []

    async def produce(before: float, after: float) -> None:
        if not fresh:
            fresh.extend(store_between(emu, before, after, 1))

    fake_time.on_sleep = produce
    assert (await anext(watch)).record_id == fresh[0]
    await watch.aclose()
    assert fake_time.sleeps[4] == 10.0  # the normal interval after the good poll
    assert 10 <= fake_time.sleeps[5] <= 20  # the first back-off again


async def test_a_poll_failing_mid_walk_resumes_without_gaps_or_repeats(
    emu: Emulator, make: ClientFactory
) -> None:
    history = store(emu, -3000, n=250, span=600)  # three pages of 100
    client = make(retry=RetryPolicy(max_attempts=1))
    got: list[int] = []
    async with contextlib.aclosing(client.watch(since=at(-3600))) as watch:
        async for record in watch:
            got.append(record.record_id)
            if len(got) in (1, 150):
                emu.fail("list", status=503)  # the next page fails
            if len(got) == 250:
                break
    assert got == history
    assert sum(1 for r in emu.requests if r.fault == "fail") == 2


async def test_wrong_credentials_do_not_end_the_watch(
    emu: Emulator, fake_time: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    history = store(emu, -300, n=3, span=60)
    client = Client(
        emu.app_key,
        "not-the-secret",
        base_url=emu.base_url,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        rng=random.Random(5),
    )

    async def rotate(before: float, after: float) -> None:
        if len(fake_time.sleeps) == 2:
            emu.app_secret = "not-the-secret"  # the operator fixes the server side

    fake_time.on_sleep = rotate
    async with client:
        with caplog.at_level(logging.WARNING, logger="senselink_plus"):
            got = await take(client.watch(since=at(-600), poll_interval=10), 3)
    assert ids(got) == history
    refused = [r for r in emu.requests if not r.auth_ok]
    assert len(refused) == 2  # two refusals in a row: not yet the end
    warnings = [r.getMessage() for r in caplog.records if "AuthenticationError" in r.getMessage()]
    assert len(warnings) == 2
    assert "attempt 1:" in warnings[0]
    assert "attempt 2:" in warnings[1]
    assert all(a < b for a, b in itertools.pairwise(fake_time.sleeps))
    assert "not-the-secret" not in caplog.text


async def test_closing_the_client_ends_the_watch(
    emu: Emulator, make: ClientFactory, fake_time: Clock
) -> None:
    from senselink_plus import ClientClosedError

    client = make()

    async def close(before: float, after: float) -> None:
        await client.aclose()

    fake_time.on_sleep = close
    with pytest.raises(ClientClosedError):
        await take(client.watch(poll_interval=10), 1)
    assert len(fake_time.sleeps) == 1


# --- arguments and the checkpoint file --------------------------------------------------


class SyncCheckpoint:
    def load(self) -> None:
        return None

    def save(self, state: Mapping[str, Any]) -> None:
        pass


@pytest.mark.parametrize(
    "kwargs",
    [
        {"poll_interval": 0},
        {"poll_interval": -1.0},
        {"poll_interval": float("nan")},
        {"poll_interval": True},
        {"poll_interval": "10"},
        {"checkpoint": 42},
        {"checkpoint": b"state.json"},
        {"checkpoint": object()},
        {"since": datetime(2024, 1, 1)},  # naive: no zone is guessed
        {"since": "2024-01-01T00:00:00"},
        {"since": "yesterday"},
        {"since": 1_700_000_000},
        {"sn": ""},
        {"overlap": timedelta(seconds=-1)},
        {"overlap": 120},
    ],
)
async def test_bad_arguments_fail_at_the_call(
    make_client: MakeClient, kwargs: dict[str, Any]
) -> None:
    client = make_client(ListServer())
    with pytest.raises(ValidationError):
        client.watch(**kwargs)
    assert client._session.transport.requests == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[1, 2]",
        b"{}",
        b'{"version": 2, "cursor": "2024-01-01T00:00:00+00:00", "seen": []}',
        b'{"version": 1, "cursor": "2024-01-01T00:00:00", "seen": []}',
        b'{"version": 1, "cursor": "2024-01-01T00:00:00+00:00", "seen": [1]}',
        b'{"version": 1, "cursor": "2024-01-01T00:00:00+00:00", "seen": {"1": "x"}}',
    ],
)
async def test_a_corrupt_checkpoint_file_fails_at_the_first_iteration(
    make_client: MakeClient, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    client = make_client(ListServer())
    watch = client.watch(checkpoint=path)  # the file is read when iteration starts
    with pytest.raises(ValidationError, match="checkpoint"):
        await anext(watch)
    assert client._session.transport.requests == []  # type: ignore[attr-defined]
    assert path.read_bytes() == content  # left for a human to look at


@pytest.mark.parametrize("state", [[1, 2], "state", {"version": 1}, {"cursor": "x"}])
async def test_a_custom_checkpoint_with_unusable_state_fails_cleanly(
    make_client: MakeClient, state: Any
) -> None:
    checkpoint = MemoryCheckpoint()
    checkpoint.state = state
    with pytest.raises(ValidationError, match="checkpoint"):
        await anext(make_client(ListServer()).watch(checkpoint=checkpoint))


async def test_a_checkpoint_with_sync_methods_is_refused(make_client: MakeClient) -> None:
    watch = make_client(ListServer()).watch(checkpoint=SyncCheckpoint())
    with pytest.raises(ValidationError, match="async"):
        await anext(watch)


async def test_the_checkpoint_file_holds_versioned_json_and_is_replaced_atomically(
    make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ListServer()
    for i in range(5):
        server.add(100 + i, -50 + 10 * i)
    path = tmp_path / "state.json"
    client = make_client(server)
    watch = client.watch(since=at(-60), checkpoint=str(path))
    got = [await anext(watch) for _ in range(5)]
    assert ids(got) == [100, 101, 102, 103, 104]
    state = orjson.loads(path.read_bytes())  # the start, saved before the first poll
    assert state["version"] == 2
    assert state["query"] == {
        "sn": None,
        "order": "ascending",
        "app": hashlib.sha256(APP_KEY.encode()).hexdigest()[:16],
    }
    # Where the watch began, kept while a poll's overlap could still reach below it.
    assert datetime.fromisoformat(state["floor"]) == at(-60)
    assert datetime.fromisoformat(state["cursor"]) == at(-60)
    assert state["ids"] == []
    assert state["newest"] is None
    assert state["watermark"] is None
    # No temp file: the state, its lock, and the acknowledgement journal.
    assert sorted(os.listdir(tmp_path)) == ["state.json", "state.json.acks", "state.json.lock"]

    # A crash between writing the temp file and renaming it leaves the old state whole.
    def crash(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(SenseLinkError, match="disk gone"):
        await anext(watch)  # the page is done, so its save comes, and fails
    monkeypatch.undo()
    assert orjson.loads(path.read_bytes()) == state
    assert sorted(os.listdir(tmp_path)) == ["state.json", "state.json.acks", "state.json.lock"]
    assert APP_KEY not in path.read_text()


async def test_seen_ids_stay_few_whatever_the_stream_length(
    emu: Emulator, make: ClientFactory, fake_time: Clock
) -> None:
    # 500 records over an hour of fake time, polled every 30 s with a 2 min overlap.
    times = [7.2 * (i + 1) for i in range(500)]
    pending = list(times)

    async def produce(before: float, after: float) -> None:
        while pending and T0 + pending[0] <= after:
            store(emu, pending.pop(0))

    fake_time.on_sleep = produce
    checkpoint = MemoryCheckpoint()
    got = await take(make().watch(poll_interval=30, checkpoint=checkpoint), 500)
    assert len(set(ids(got))) == 500
    # The start, then once a poll that delivered (each page), and the close.
    assert 200 <= len(checkpoint.saves) <= 502
    sizes = [len(orjson.dumps(state)) for state in checkpoint.saves]
    # One record a second at most here: the state stays the same small size.
    assert max(len(state["ids"]) for state in checkpoint.saves) <= 1
    assert max(sizes) < 400
    last = checkpoint.saves[-1]
    assert last["floor"] is None
    assert last["watermark"] == got[-2].record_id  # the last one was in hand at the close


# --- clean stops --------------------------------------------------------------------------


def others() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


async def test_breaking_out_leaves_no_task_behind(make_client: MakeClient, tmp_path: Path) -> None:
    server = ListServer()
    for i in range(300):
        server.add(i + 1, -3000 + i)
    client = make_client(server)
    got = 0
    async for _ in client.watch(since=at(-3600), checkpoint=tmp_path / "state.json"):
        got += 1
        if got == 150:  # mid-page
            break
    # The abandoned watch is closed by asyncio's finaliser, which saves (in a thread).
    for _ in range(5):
        await asyncio.sleep(0)
    if others():
        await asyncio.wait(others(), timeout=5)
    assert others() == set()
    state = orjson.loads((tmp_path / "state.json").read_bytes())
    assert state["watermark"] == 149  # 1..149 handled, the 150th in hand


async def test_cancelling_a_watch_that_waits_leaves_no_task_behind(
    make_client: MakeClient,
) -> None:
    forever = asyncio.Event()
    waiting = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waiting.set()
        await forever.wait()

    client = make_client(ListServer(), sleep=sleep)

    async def consume() -> None:
        async for _ in client.watch(poll_interval=10):
            pass

    task = asyncio.ensure_future(consume())
    await waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(5):
        await asyncio.sleep(0)
    assert others() == set()


async def test_an_error_thrown_in_by_the_consumer_is_not_taken_for_a_failed_poll(
    emu: Emulator, make: ClientFactory
) -> None:
    store(emu, -30, n=3)
    watch = make().watch(since=at(-60), poll_interval=5)
    first = await anext(watch)
    with pytest.raises(ServerError, match="thrown by the consumer"):
        await watch.athrow(ServerError("thrown by the consumer", code=500, status=500))
    assert first.record_id > 0


async def test_an_idle_watch_polls_a_bounded_range(
    emu: Emulator, make: ClientFactory, fake_time: Clock, tmp_path: Path
) -> None:
    """Days without records must not make each poll read a longer range."""
    state = tmp_path / "state.json"
    polls: list[int] = []

    async def count(before: float, after: float) -> None:
        polls.append(len(emu.requests))
        if after - T0 > 10 * 86400:
            raise WatchStopped

    fake_time.on_sleep = count
    fake_time.limit = 1000
    with pytest.raises(WatchStopped):
        async for _ in make().watch(poll_interval=3600, checkpoint=state):
            pass
    per_poll = [b - a for a, b in itertools.pairwise(polls)]
    assert len(per_poll) > 200
    assert max(per_poll) == 1  # one list request per poll, day 1 as on day 10
    saved = json.loads(state.read_text())
    assert datetime.fromisoformat(saved["cursor"]) > at(9 * 86400)


async def test_closing_the_client_wakes_a_watch_between_polls(emu: Emulator) -> None:
    client = emu.client(clock=lambda: T0)
    watch = client.watch(poll_interval=3600)

    async def consume() -> None:
        async for _ in watch:
            pass

    task = asyncio.create_task(consume())
    for _ in range(200):  # until the first poll is done and the watch sleeps
        await asyncio.sleep(0.001)
        if emu.requests:
            break
    await asyncio.sleep(0.01)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await asyncio.wait_for(task, 2)


@pytest.mark.parametrize("where", ["missing-folder", "a-folder"])
async def test_an_unusable_checkpoint_path_is_refused_at_the_call(
    make_client: MakeClient, tmp_path: Path, where: str
) -> None:
    path = tmp_path / "nope" / "state.json" if where == "missing-folder" else tmp_path
    client = make_client(ListServer())
    with pytest.raises(ValidationError) as info:
        client.watch(checkpoint=path)
    assert info.value.field == "checkpoint"


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


# --- one checkpoint, one query, one watcher --------------------------------------------------


async def test_a_checkpoint_of_another_sn_is_refused_naming_both(
    emu: Emulator, make: ClientFactory, tmp_path: Path
) -> None:
    emu.seed(6, start=at(-300), span=timedelta(seconds=60), sn=["GATE-A", "GATE-B"])
    path = tmp_path / "state.json"
    client = make()
    got = await take(client.watch(sn="GATE-A", since=at(-600), checkpoint=path), 3)
    assert {r.sn for r in got} == {"GATE-A"}
    saved = path.read_bytes()
    emu.reset_requests()
    watch = client.watch(sn="GATE-B", checkpoint=path)
    with pytest.raises(ValidationError) as info:
        await anext(watch)
    message = str(info.value)
    assert "sn 'GATE-A'" in message
    assert "sn 'GATE-B'" in message
    assert str(path) in message
    assert info.value.field == "checkpoint"
    assert emu.requests == []  # refused before any poll
    assert path.read_bytes() == saved  # and left as it was
    # Its own query still resumes from it; and the lock was released by the refusal.
    assert [r.sn for r in await take(client.watch(sn="GATE-A", checkpoint=path), 1)] == ["GATE-A"]


async def test_a_second_watcher_on_a_locked_checkpoint_is_refused_at_once(
    emu: Emulator, make: ClientFactory, tmp_path: Path
) -> None:
    from senselink_plus import CheckpointInUseError

    history = store(emu, -300, n=4, span=60)
    path = tmp_path / "state.json"
    client = make()
    first = client.watch(since=at(-600), checkpoint=path)
    assert (await anext(first)).record_id == history[0]
    emu.reset_requests()
    second = client.watch(since=at(-600), checkpoint=str(path))
    with pytest.raises(CheckpointInUseError) as info:
        await anext(second)
    assert str(path) in str(info.value)
    assert "another watcher holds" in str(info.value)
    assert emu.requests == []
    assert ids([await anext(first)]) == history[1:2]  # the first goes on, untouched
    await first.aclose()  # releases the lock
    assert ids(await take(client.watch(checkpoint=path), 3)) == history[1:]


class LeaseCheckpoint(MemoryCheckpoint):
    """A checkpoint with the optional hooks, recording the order of calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def acquire(self) -> None:
        self.calls.append("acquire")

    async def load(self) -> Mapping[str, Any] | None:
        self.calls.append("load")
        return await super().load()

    async def save(self, state: Mapping[str, Any]) -> None:
        self.calls.append("save")
        await super().save(state)

    async def release(self) -> None:
        self.calls.append("release")


@pytest.mark.parametrize("ending", ["close", "error"])
async def test_a_checkpoint_with_hooks_is_acquired_first_and_released_last(
    emu: Emulator, make: ClientFactory, ending: str
) -> None:
    store(emu, -300, n=3, span=60)
    checkpoint = LeaseCheckpoint()
    watch = make().watch(since=at(-600), checkpoint=checkpoint)
    await anext(watch)
    if ending == "close":
        await watch.aclose()
    else:
        with pytest.raises(KeyError):
            await watch.athrow(KeyError("the consumer failed"))
    assert checkpoint.calls[:2] == ["acquire", "load"]
    assert checkpoint.calls[-2:] == ["save", "release"]
    assert checkpoint.calls.count("release") == 1


# --- failures that tell -------------------------------------------------------------------


async def test_a_long_retry_after_is_honoured_between_polls(
    emu: Emulator, make: ClientFactory, fake_time: Clock
) -> None:
    history = store(emu, -300, n=3, span=60)
    emu.fail("list", status=429, retry_after=3600)
    got = await take(make().watch(since=at(-600), poll_interval=10), 3)
    assert ids(got) == history
    polls = [r for r in emu.requests if r.route == "list"]
    assert polls[0].fault == "fail"
    # Not 19 polls within the hour: the next one came after it.
    assert polls[1].received_at - polls[0].received_at >= 3600
    assert fake_time.sleeps == [3600.0]


async def test_three_refused_polls_in_a_row_end_the_watch_with_that_error(
    emu: Emulator, fake_time: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    from senselink_plus import AuthenticationError

    store(emu, -300, n=3, span=60)
    client = emu.client(
        app_secret="rotated-away",
        clock=fake_time.clock,
        timer=fake_time.timer,
        sleep=fake_time.sleep,
        rng=random.Random(5),
    )
    async with client:
        with (
            caplog.at_level(logging.WARNING, logger="senselink_plus"),
            pytest.raises(AuthenticationError),
        ):
            await take(client.watch(poll_interval=10), 1)  # from now: the probe fails
    assert len([r for r in emu.requests if not r.auth_ok]) == 3
    assert len(fake_time.sleeps) == 2  # two back-offs, then the end
    messages = [r.getMessage() for r in caplog.records]
    assert sum("watch poll failed (attempt" in m for m in messages) == 2
    assert any("watch ends: 3 consecutive polls refused" in m for m in messages)
    assert "rotated-away" not in caplog.text


# --- crash safety of the checkpoint file ------------------------------------------------------

_SAVER = """
import asyncio, sys
from senselink_plus import FileCheckpoint

async def main():
    checkpoint = FileCheckpoint(sys.argv[1])
    await checkpoint.acquire()
    n = 0
    while True:
        n += 1
        ids = list(range(n, n + 3000))  # a big state: each save takes a while
        await checkpoint.save({"version": 2, "n": n, "ids": ids})
        print(n, flush=True)

asyncio.run(main())
"""


def test_a_kill_9_during_saves_leaves_a_readable_checkpoint_and_no_lock(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from senselink_plus import FileCheckpoint

    path = tmp_path / "state.json"
    with subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(path)], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            for _ in range(20):  # twenty saves done: it is in the middle of more
                assert child.stdout.readline()
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    checkpoint = FileCheckpoint(path)

    async def check() -> Mapping[str, Any] | None:
        await checkpoint.acquire()  # the OS dropped the dead process's lock
        try:
            return await checkpoint.load()
        finally:
            await checkpoint.release()

    state = asyncio.run(check())
    assert state is not None
    assert state["n"] >= 20
    assert state["ids"] == list(range(state["n"], state["n"] + 3000))


@pytest.mark.parametrize(
    "date", ["garbage", "", "Mon, 99 Foo 2024 25:61:61 GMT", "Fri, 01 Jan 99999 00:00:00 GMT"]
)
async def test_an_unreadable_date_header_is_ignored(make_client: MakeClient, date: str) -> None:
    server = ListServer()
    server.add(1, -30)

    def handler(request: HttpRequest) -> HttpResponse:
        response = server(request)
        return HttpResponse(response.status, {**response.headers, "date": date}, response.content)

    client = make_client(handler)
    assert ids(await take(client.watch(since=at(-60)), 1)) == [1]
    assert client._session.server_time() is None  # the local clock stays in charge
