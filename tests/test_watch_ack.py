"""Client.watch acknowledgement, stop() and its one clock, through the public API:
when a record counts as handled, that a saved position never moves backwards, a clean
stop from another task or a signal, and a ``Date`` header that runs ahead of
``create_at``. The rules are checked with each checkpoint kind: a path
(`FileCheckpoint`), a user's own object, and `PostgresCheckpoint` on the throwaway
server of ``tests/test_postgres.py``."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from senselink_plus import (
    Client,
    FileCheckpoint,
    HttpRequest,
    HttpResponse,
    Record,
    ValidationError,
)
from senselink_plus.postgres import PostgresCheckpoint
from senselink_plus.testing import Emulator
from tests.conftest import APP_KEY, APP_SECRET, FakeTime
from tests.test_postgres import postgres_dsn, postgres_server  # noqa: F401
from tests.watch_helpers import MemoryCheckpoint

T0 = 1_700_000_000.0


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, timezone.utc)


class Clock(FakeTime):
    """Fake time; ``on_sleep`` runs after each sleep (records stored "meanwhile")."""

    def __init__(self) -> None:
        super().__init__(T0)
        self.on_sleep: Callable[[], None] | None = None

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if len(self.sleeps) > 2_000:
            raise RuntimeError("the watch kept sleeping")
        if self.on_sleep is not None:
            self.on_sleep()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def emu(clock: Clock) -> AsyncIterator[Emulator]:
    async with Emulator(clock=clock.clock) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator, clock: Clock) -> AsyncIterator[Client]:
    async with emu.client(
        clock=clock.clock, timer=clock.timer, sleep=clock.sleep, rng=random.Random(7)
    ) as made:
        yield made


@pytest.fixture(params=["file", "object", "postgres"])
def checkpoint(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Each kind of checkpoint, as a watch is given it (a path for a file)."""
    if request.param == "file":
        return tmp_path / "state.json"
    if request.param == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")  # the server starts only if asked
        return PostgresCheckpoint(dsn, f"t-{uuid.uuid4().hex[:12]}")
    return MemoryCheckpoint()


def seed(emu: Emulator, n: int, when: float = -600, span: float = 3) -> list[int]:
    return list(emu.seed(n, start=at(when), span=timedelta(seconds=span), sn="GATE-1"))


async def drain(
    client: Client, checkpoint: Any, n: int, since: datetime | None = None
) -> list[int]:
    """The next ``n`` records, handled; then ``break`` out of the ``async with``."""
    got: list[int] = []
    if n == 0:
        return got
    async with client.watch(since=since, checkpoint=checkpoint) as watch:
        async for record in watch:
            got.append(record.record_id)
            if len(got) == n:
                break
    return got


def hand_save(checkpoint: Any) -> Callable[[Mapping[str, Any]], Any]:
    """How a user saves ``watch.state`` by hand: a second object on the same file, or
    in a transaction with their own rows (PostgreSQL)."""
    if isinstance(checkpoint, Path):
        return FileCheckpoint(checkpoint).save
    if isinstance(checkpoint, PostgresCheckpoint):

        async def save_in(state: Mapping[str, Any]) -> None:
            async with checkpoint.transaction() as conn:
                await checkpoint.save_in(conn, state)

        return save_in
    return checkpoint.save  # type: ignore[no-any-return]


# --- acknowledgement --------------------------------------------------------------------


@pytest.mark.parametrize("stop_after", [1, 7, 12])
async def test_break_acknowledges_the_record_handled(
    emu: Emulator, client: Client, clock: Clock, checkpoint: Any, stop_after: int
) -> None:
    # Many records share a second, so the restart's first poll lists several of the
    # delivered ones again: they must be recognised from the saved ids.
    history = seed(emu, 12)
    fresh: list[int] = []
    # Stop mid-stream, as a deploy would: the body ran, so the record in hand is done.
    first = await drain(client, checkpoint, stop_after, since=at(-900))

    def arrive() -> None:  # two records stored during each poll interval
        fresh.extend(seed(emu, 2, when=clock.now - T0 - 1, span=0.5))

    clock.on_sleep = arrive
    second = await drain(client, checkpoint, 12 - stop_after + 4)
    assert first + second == history + fresh[:4]  # nothing skipped, nothing repeated


class BodyFailed(Exception):
    """The consumer's own error, raised while it handles a record."""


async def test_an_exception_in_the_body_redelivers_the_record_in_hand_once(
    emu: Emulator, client: Client, checkpoint: Any
) -> None:
    history = seed(emu, 6)
    first: list[int] = []

    async def consume() -> None:
        async with client.watch(since=at(-900), checkpoint=checkpoint) as watch:
            async for record in watch:
                first.append(record.record_id)
                if len(first) == 4:
                    raise BodyFailed  # the 4th was not handled: it must come again

    with pytest.raises(BodyFailed):
        await consume()
    assert first == history[:4]
    assert await drain(client, checkpoint, 3) == history[3:]  # the 4th once more, then on


async def test_ack_acknowledges_the_record_in_hand_and_twice_is_an_error(
    emu: Emulator, client: Client, checkpoint: Any
) -> None:
    history = seed(emu, 5)
    first: list[int] = []
    twice: list[str] = []

    async def consume() -> None:
        async with client.watch(since=at(-900), checkpoint=checkpoint) as watch:
            async for record in watch:
                first.append(record.record_id)
                watch.ack(record)  # handled: even a failure from here on keeps it done
                try:
                    watch.ack(record)
                except ValidationError as exc:
                    twice.append(str(exc))
                if len(first) == 3:
                    raise KeyError("the body fails after acknowledging")

    with pytest.raises(KeyError):
        await consume()
    assert len(twice) == 3
    assert "already acknowledged" in twice[0]
    assert first == history[:3]
    assert await drain(client, checkpoint, 2) == history[3:]


async def test_explicit_acks_out_of_order_are_refused_and_unacknowledged_come_again(
    emu: Emulator, client: Client, checkpoint: Any
) -> None:
    history = seed(emu, 6)
    handed: list[Record] = []
    async with client.watch(since=at(-900), checkpoint=checkpoint, acks="explicit") as watch:
        async for record in watch:
            handed.append(record)  # given to workers; they finish out of order
            if len(handed) == 4:
                break
        with pytest.raises(ValidationError, match="out of order: record"):
            watch.ack(handed[1])
        watch.ack(handed[0])
        watch.ack(handed[1])
    # Leaving normally acknowledges nothing more in explicit mode: 3 and 4 come again.
    assert await drain(client, checkpoint, 4) == history[2:]
    with pytest.raises(ValidationError, match="acks must be"):
        client.watch(acks="sometimes")  # type: ignore[arg-type]


async def test_explicit_acks_from_another_task_are_saved_while_the_watch_runs(
    emu: Emulator, client: Client, clock: Clock
) -> None:
    history = seed(emu, 250, span=20)  # three pages
    checkpoint = MemoryCheckpoint()
    queue: asyncio.Queue[Record] = asyncio.Queue()
    async with client.watch(since=at(-900), checkpoint=checkpoint, acks="explicit") as watch:

        async def worker() -> None:
            while True:
                watch.ack(await queue.get())
                queue.task_done()

        task = asyncio.create_task(worker())
        count = 0
        async for record in watch:
            queue.put_nowait(record)
            count += 1
            if count == 250:
                break
        await queue.join()
        task.cancel()
    assert checkpoint.state is not None
    assert checkpoint.state["watermark"] == history[-1]


@pytest.mark.parametrize("ending", ["break", "error"])
async def test_a_hand_saved_position_is_never_overwritten_by_an_older_one(
    emu: Emulator, client: Client, checkpoint: Any, ending: str
) -> None:
    history = seed(emu, 5)
    save = hand_save(checkpoint)
    got: list[int] = []

    async def consume() -> None:
        async with client.watch(since=at(-900), checkpoint=checkpoint) as watch:
            async for record in watch:
                got.append(record.record_id)
                state = watch.state
                assert state is not None
                await save(state)  # by hand, with the user's own writes
                if len(got) == 3:
                    if ending == "error":
                        raise KeyError("after the hand save")
                    break

    if ending == "error":
        with pytest.raises(KeyError):
            await consume()
    else:
        await consume()
    # The watch's save at close (for "error": without the record in hand) must not
    # move the saved position back before record 3.
    assert await drain(client, checkpoint, 2) == history[3:]


async def test_a_racing_hand_save_to_a_file_never_regresses_it(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    # Dense records: the watch's own saves run beside the delivery while the body
    # saves each record's state by hand through another FileCheckpoint object.
    history = seed(emu, 300, span=20)
    path = tmp_path / "state.json"
    mine = FileCheckpoint(path)
    marks: list[int] = []
    async with client.watch(since=at(-900), checkpoint=path) as watch:
        async for record in watch:
            state = watch.state
            assert state is not None
            await mine.save(state)
            saved = await mine.load()
            assert saved is not None
            marks.append(saved["watermark"])
            if record.record_id == history[-1]:
                break
    assert marks == sorted(marks)  # never backwards, whoever saved last
    assert marks[-1] == history[-1]
    more = seed(emu, 1, when=-100)
    assert await drain(client, path, 1) == more


# --- stop ---------------------------------------------------------------------------------


async def test_stop_while_the_watch_waits_ends_it_cleanly_and_saves(
    emu: Emulator, clock: Clock, checkpoint: Any
) -> None:
    history = seed(emu, 3)
    waiting = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waiting.set()
        await asyncio.Event().wait()  # a real poll interval: the watch waits here

    async with emu.client(clock=clock.clock, timer=clock.timer, sleep=sleep) as client:
        got: list[int] = []
        async with client.watch(since=at(-900), checkpoint=checkpoint) as watch:

            async def stopper() -> None:
                await waiting.wait()
                watch.stop()

            task = asyncio.create_task(stopper())
            async for record in watch:
                got.append(record.record_id)
            await task
        assert got == history
        watch.stop()  # again, and after the end: nothing happens
        more = seed(emu, 2, when=-100)
        async with emu.client(clock=clock.clock, timer=clock.timer, sleep=clock.sleep) as again:
            assert await drain(again, checkpoint, 2) == more


async def test_stop_in_the_body_ends_at_the_record_boundary_after_saving(
    emu: Emulator, client: Client, checkpoint: Any
) -> None:
    history = seed(emu, 6)
    got: list[int] = []
    watch = client.watch(since=at(-900), checkpoint=checkpoint)
    async for record in watch:  # no async with: stop() alone ends it and saves
        got.append(record.record_id)
        if len(got) == 2:
            watch.stop()
    assert got == history[:2]
    assert await drain(client, checkpoint, 4) == history[2:]


SERVICE = textwrap.dedent(
    """
    import asyncio, signal, sys
    import senselink_plus as slp

    async def main(base_url, path, since):
        async with slp.Client(base_url=base_url) as client:
            watch = client.watch(checkpoint=path, since=since, poll_interval=0.05)
            async with watch:
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(signum, watch.stop)
                async for record in watch:
                    print(record.record_id, flush=True)

    asyncio.run(main(*sys.argv[1:]))
    """
)


@pytest.mark.parametrize("when", ["waiting", "busy"])
async def test_sigterm_to_a_service_exits_0_and_keeps_the_last_record_handled(
    tmp_path: Path, when: str
) -> None:
    async with Emulator(app_key=APP_KEY, app_secret=APP_SECRET) as emu:
        now = datetime.now(timezone.utc)
        path = tmp_path / "state.json"
        history = list(
            emu.seed(
                40 if when == "busy" else 5,
                start=now - timedelta(minutes=4),
                span=timedelta(minutes=1),
            )
        )
        env = {**os.environ, "SENSELINK_APP_KEY": APP_KEY, "SENSELINK_APP_SECRET": APP_SECRET}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SERVICE,
            emu.base_url,
            str(path),
            (now - timedelta(minutes=5)).isoformat(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        printed: list[int] = []
        target = 3 if when == "busy" else len(history)
        try:
            while len(printed) < target:
                line = await asyncio.wait_for(proc.stdout.readline(), 30)
                assert line, (await proc.communicate())[1].decode()
                printed.append(int(line))
            proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        printed += [int(line) for line in out.split()]
        assert proc.returncode == 0, err.decode()
        assert printed == history[: len(printed)]
        async with emu.client() as client:
            rest = await drain(client, path, len(history) - len(printed))
        assert printed + rest == history  # the last one handled is not delivered again


# --- one clock: a Date header ahead of create_at ------------------------------------------


def shifted_date(emu: Emulator, seconds: float) -> Callable[[HttpRequest], Any]:
    """A transport (via MockTransport) to the emulator whose answers carry a ``Date``
    ``seconds`` ahead of the server's clock, as a proxy's own clock might."""
    import email.utils

    from senselink_plus import AiohttpTransport

    inner = AiohttpTransport()

    async def handler(request: HttpRequest) -> HttpResponse:
        response = await inner.send(request)
        headers = dict(response.headers)
        headers = {k: v for k, v in headers.items() if k.lower() != "date"}
        headers["Date"] = email.utils.formatdate(emu.now() + seconds, usegmt=True)
        return HttpResponse(response.status, headers, response.content)

    handler.inner = inner  # type: ignore[attr-defined]
    return handler


@pytest.mark.parametrize("ahead", [125, 600])
@pytest.mark.parametrize(
    "start",
    [
        "since",  # since= in the server's time
        "after-a-record",  # no since: starts right after the newest record stored
        "quiet",  # no since, and no record stored anywhere near now
    ],
)
async def test_a_date_header_ahead_of_create_at_loses_nothing_and_warns_once(
    clock: Clock, ahead: float, start: str, caplog: pytest.LogCaptureFixture
) -> None:
    from senselink_plus.testing import MockTransport

    async with Emulator(
        clock=clock.clock,
        clock_offset=timedelta(minutes=-3),
        app_key=APP_KEY,
        app_secret=APP_SECRET,
    ) as emu:
        handler = shifted_date(emu, ahead)
        server_now = datetime.fromtimestamp(emu.now(), timezone.utc)
        if start == "after-a-record":
            emu.seed(1, start=server_now - timedelta(minutes=10), span=timedelta(0), sn="GATE-1")
        else:  # long before: neither delivered nor seen by the watch's first look
            emu.seed(1, start=server_now - timedelta(days=2), span=timedelta(0), sn="GATE-1")
        stored: list[int] = []
        rng = random.Random(5)

        def arrive() -> None:  # a few records stamped by the server during each sleep
            for _ in range(rng.randint(0, 2)):
                when = datetime.fromtimestamp(emu.now(), timezone.utc)
                stored.extend(emu.seed(1, start=when, span=timedelta(0), sn="GATE-1"))

        clock.on_sleep = arrive
        since = server_now - timedelta(seconds=30) if start == "since" else None
        got: list[int] = []
        async with Client(
            APP_KEY,
            APP_SECRET,
            base_url=emu.base_url,
            transport=MockTransport(handler),
            clock=clock.clock,
            timer=clock.timer,
            sleep=clock.sleep,
            rng=random.Random(1),
        ) as client:
            with caplog.at_level(logging.WARNING, logger="senselink_plus"):
                async with client.watch(since=since, poll_interval=5) as watch:
                    async for record in watch:
                        got.append(record.record_id)
                        if len(stored) >= 198 and got[-1] == stored[197]:
                            break
        await handler.inner.aclose()  # type: ignore[attr-defined]
    assert got == stored[:198]  # 0 lost (was 162 of 198 at +125 s)
    late = [r for r in caplog.records if "runs ahead of the clock that stamps" in r.getMessage()]
    assert len(late) == (1 if ahead > 2 * 120 else len(late[:1]))  # once at most
