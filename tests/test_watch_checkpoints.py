"""Client.watch and its checkpoint: restarts, saves beside the delivery, arguments, the
checkpoint file, one query and one watcher, crash safety."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from senselink_plus import (
    FileCheckpoint,
    HttpRequest,
    HttpResponse,
    SenseLinkError,
    ValidationError,
)
from senselink_plus.testing import Emulator
from tests.conftest import APP_KEY, MakeClient
from tests.watch_helpers import (
    OVERLAP,
    T0,
    ClientFactory,
    Clock,
    ListServer,
    MemoryCheckpoint,
    at,
    ids,
    list_windows,
    store,
    take,
)


@pytest.fixture
def fake_time() -> Clock:  # overrides conftest's, so make_client shares this clock
    return Clock()


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
    emu: Emulator, watch_client: ClientFactory, durable_acks: bool
) -> None:
    history = store(emu, -3000, n=1000, span=30)  # ten pages
    checkpoint = SlowCheckpoint()
    watch = watch_client().watch(since=at(-3600), checkpoint=checkpoint, durable_acks=durable_acks)
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
    emu: Emulator, watch_client: ClientFactory, crash_after: int
) -> None:
    history = store(emu, -3000, n=300, span=20)  # dense: 15 records a second, 3 pages
    first: list[int] = []
    checkpoint = CrashingCheckpoint(first)
    client = watch_client()
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
    emu: Emulator, watch_client: ClientFactory, crash_after: int
) -> None:
    history = store(emu, -3000, n=300, span=20)
    first: list[int] = []
    checkpoint = CrashingCheckpoint(first)
    client = watch_client()
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
    emu: Emulator, watch_client: ClientFactory, checkpoint: Any
) -> None:
    history = store(emu, -600, n=10, span=60)
    load = FileCheckpoint(checkpoint).load if isinstance(checkpoint, Path) else checkpoint.load
    client = watch_client()
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
    emu: Emulator, watch_client: ClientFactory, fake_time: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "state.json"
    before = store(emu, -300, n=3, span=120)
    client = watch_client()
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
    emu: Emulator, watch_client: ClientFactory, fake_time: Clock
) -> None:
    # 500 records over an hour of fake time, polled every 30 s with a 2 min overlap.
    times = [7.2 * (i + 1) for i in range(500)]
    pending = list(times)

    async def produce(before: float, after: float) -> None:
        while pending and T0 + pending[0] <= after:
            store(emu, pending.pop(0))

    fake_time.on_sleep = produce
    checkpoint = MemoryCheckpoint()
    got = await take(watch_client().watch(poll_interval=30, checkpoint=checkpoint), 500)
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


# --- one checkpoint, one query, one watcher --------------------------------------------------


async def test_a_checkpoint_of_another_sn_is_refused_naming_both(
    emu: Emulator, watch_client: ClientFactory, tmp_path: Path
) -> None:
    emu.seed(6, start=at(-300), span=timedelta(seconds=60), sn=["GATE-A", "GATE-B"])
    path = tmp_path / "state.json"
    client = watch_client()
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
    emu: Emulator, watch_client: ClientFactory, tmp_path: Path
) -> None:
    from senselink_plus import CheckpointInUseError

    history = store(emu, -300, n=4, span=60)
    path = tmp_path / "state.json"
    client = watch_client()
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
    emu: Emulator, watch_client: ClientFactory, ending: str
) -> None:
    store(emu, -300, n=3, span=60)
    checkpoint = LeaseCheckpoint()
    watch = watch_client().watch(since=at(-600), checkpoint=checkpoint)
    await anext(watch)
    if ending == "close":
        await watch.aclose()
    else:
        with pytest.raises(KeyError):
            await watch.athrow(KeyError("the consumer failed"))
    assert checkpoint.calls[:2] == ["acquire", "load"]
    assert checkpoint.calls[-2:] == ["save", "release"]
    assert checkpoint.calls.count("release") == 1


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
