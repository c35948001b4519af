"""Client.watch under failure: failed polls, back-off, failures that tell, and clean
stops."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from senselink_plus import (
    Client,
    ClientClosedError,
    RetryPolicy,
    ServerError,
    ValidationError,
)
from senselink_plus.testing import Emulator
from tests.conftest import MakeClient
from tests.watch_helpers import (
    T0,
    ClientFactory,
    Clock,
    ListServer,
    WatchStopped,
    at,
    ids,
    store,
    store_between,
    take,
)


@pytest.fixture
def fake_time() -> Clock:  # overrides conftest's, so make_client shares this clock
    return Clock()


# --- failures ---------------------------------------------------------------------------


async def test_failed_polls_back_off_and_the_watch_goes_on(
    emu: Emulator, watch_client: ClientFactory, fake_time: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    history = store(emu, -300, n=5, span=60)
    emu.fail("list", status=503, times=4)
    client = watch_client(retry=RetryPolicy(max_attempts=1))
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
    emu: Emulator, watch_client: ClientFactory
) -> None:
    history = store(emu, -3000, n=250, span=600)  # three pages of 100
    client = watch_client(retry=RetryPolicy(max_attempts=1))
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
    emu: Emulator, watch_client: ClientFactory, fake_time: Clock
) -> None:
    from senselink_plus import ClientClosedError

    client = watch_client()

    async def close(before: float, after: float) -> None:
        await client.aclose()

    fake_time.on_sleep = close
    with pytest.raises(ClientClosedError):
        await take(client.watch(poll_interval=10), 1)
    assert len(fake_time.sleeps) == 1


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
    emu: Emulator, watch_client: ClientFactory
) -> None:
    store(emu, -30, n=3)
    watch = watch_client().watch(since=at(-60), poll_interval=5)
    first = await anext(watch)
    with pytest.raises(ServerError, match="thrown by the consumer"):
        await watch.athrow(ServerError("thrown by the consumer", code=500, status=500))
    assert first.record_id > 0


async def test_an_idle_watch_polls_a_bounded_range(
    emu: Emulator, watch_client: ClientFactory, fake_time: Clock, tmp_path: Path
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
        async for _ in watch_client().watch(poll_interval=3600, checkpoint=state):
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


# --- failures that tell -------------------------------------------------------------------


async def test_a_long_retry_after_is_honoured_between_polls(
    emu: Emulator, watch_client: ClientFactory, fake_time: Clock
) -> None:
    history = store(emu, -300, n=3, span=60)
    emu.fail("list", status=429, retry_after=3600)
    got = await take(watch_client().watch(since=at(-600), poll_interval=10), 3)
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
