"""PostgresCheckpoint against a real PostgreSQL server: DSNs never shown unless parsed,
names that cannot reach the startup packet, one lease per table whatever its spelling,
and a lease that survives a stalled or idle-timed-out session (standbys reconnect)."""

# ruff: noqa: F811 -- the server fixtures come from test_postgres and are used by name

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import traceback
import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from senselink_plus import CheckpointInUseError, SenseLinkError, ValidationError
from senselink_plus.postgres import (
    CheckpointLostError,
    CheckpointUnavailableError,
    PostgresCheckpoint,
    redact_dsn,
)
from tests.loopback import closed_port
from tests.test_postgres import (  # noqa: F401
    STATE,
    Sleeps,
    admin,
    name,
    postgres_dsn,
    postgres_server,
    took_over,
)

SECRET = "Hunter2Secret"


def _dsns(port: int) -> list[str]:
    where = f"127.0.0.1:{port}/app"
    return [
        f"postgresql://ingest:pa#{SECRET}@{where}",
        f"postgresql://ingest:pa/{SECRET}@{where}",
        f"postgresql://ingest:12/{SECRET}@{where}",
        f"postgresql://ingest:pa?{SECRET}@{where}",
        f"postgresql://ingest:p@{SECRET}@{where}",
        f"postgresql://ingest@{where}?sslpassword={SECRET}",
        f"postgresql://ingest@{where}?options=-c%20password%3D{SECRET}",
        f"postgresql://ingest:{SECRET}@{where}",
        f"host=127.0.0.1 port={port} password='{SECRET} x dbname=app",
        f"host=127.0.0.1 port={port} password={SECRET} dbname=app",
    ]


@pytest.mark.parametrize("index", range(10))
async def test_no_dsn_password_reaches_a_repr_a_message_a_log_or_a_frame(
    index: int, caplog: pytest.LogCaptureFixture
) -> None:
    dsn = _dsns(closed_port())[index]
    checkpoint = PostgresCheckpoint(dsn, "a", connect_timeout=2)
    shown = [repr(checkpoint), checkpoint.where, redact_dsn(dsn)]
    expected = (CheckpointUnavailableError, ValidationError)
    with caplog.at_level(logging.DEBUG, logger="senselink_plus"), pytest.raises(expected) as caught:
        await checkpoint.acquire()
    error = caught.value
    assert isinstance(error, SenseLinkError)
    shown += [str(error), repr(error), caplog.text]
    # The SDK's frames only (this test's own locals hold the DSN it made).
    for frame in traceback.TracebackException.from_exception(error, capture_locals=True).stack:
        if frame.filename != __file__:
            shown += [f"{k}={v}" for k, v in (frame.locals or {}).items()]
    text = "".join(shown)
    assert SECRET not in text
    assert "ingest" not in text  # user info is never shown either


def test_a_parsed_dsn_shows_host_port_and_database_only() -> None:
    assert redact_dsn(f"postgresql://u:{SECRET}@db:5432/app?sslmode=require") == (
        "postgresql://db:5432/app"
    )
    assert redact_dsn(f"host=db port=5432 user=u password={SECRET} dbname=app") == (
        "host=db port=5432 dbname=app"
    )
    assert "could not be parsed" in redact_dsn(f"postgresql://u:a#{SECRET}@db/app")


@pytest.mark.parametrize(
    "bad", ["gate\x00-c search_path=evil", "gate\nb", "gate\x1b[2J", " ", "x" * 201]
)
def test_a_name_that_is_not_printable_or_too_long_is_refused_before_connecting(bad: str) -> None:
    with pytest.raises(ValidationError, match="printable") as caught:
        PostgresCheckpoint("postgresql://db/app", bad)
    assert caught.value.field == "name"


async def test_every_spelling_of_the_table_takes_the_same_lease(
    postgres_dsn: str, admin: asyncpg.Connection, name: str
) -> None:
    table = f"t_{uuid.uuid4().hex[:10]}"
    holder = PostgresCheckpoint(postgres_dsn, name, table=table)
    await holder.acquire()
    try:
        for spelling in (f"public.{table}", table.upper(), f"PUBLIC.{table.upper()}"):
            other = PostgresCheckpoint(postgres_dsn, name, table=spelling, wait=False)
            with pytest.raises(CheckpointInUseError):
                await other.acquire()
        await holder.save(STATE)
    finally:
        await holder.release()
    assert await admin.fetchval(f"SELECT count(*) FROM {table}") == 1


def _with_setting(dsn: str, setting: str, value: str) -> str:
    joiner = "&" if urlsplit(dsn).query else "?"
    return f"{dsn}{joiner}{setting}={value}"


async def _idle_for(admin: asyncpg.Connection, pid: int, seconds: float) -> bool:
    """Whether session ``pid`` stays alive and idle for ``seconds`` (False: it ended)."""
    for _ in range(200):  # bounded: at most 10 s
        row = await admin.fetchrow(
            "SELECT state, extract(epoch FROM now() - state_change) AS idle "
            "FROM pg_stat_activity WHERE pid = $1",
            pid,
        )
        if row is None:
            return False
        if row["state"] == "idle" and row["idle"] >= seconds:
            return True
        await asyncio.sleep(0.05)  # the server's idle timer runs on real time
    return False


async def test_an_idle_session_timeout_does_not_end_the_lease(
    postgres_dsn: str, admin: asyncpg.Connection, name: str
) -> None:
    """The database (or role) ends sessions idle for 200 ms: the holder's session lives
    on through a quiet gap three times that, and it still saves."""
    dsn = _with_setting(postgres_dsn, "idle_session_timeout", "200")
    holder = PostgresCheckpoint(dsn, name)
    await holder.acquire()
    try:
        pid = holder.backend_pid
        assert pid is not None
        assert await _idle_for(admin, pid, 0.6)
        await holder.save(STATE)
        assert await holder.load() == STATE
    finally:
        await holder.release()


async def _standby_pid(admin: asyncpg.Connection, name: str, holder_pid: int) -> int:
    for _ in range(200):
        pid = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> $2",
            f"senselink-plus checkpoint {name}"[:63],
            holder_pid,
        )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.05)
    raise AssertionError("no standby session")


async def test_a_standby_whose_session_ends_reconnects_and_takes_over(
    postgres_dsn: str, admin: asyncpg.Connection, name: str
) -> None:
    holder = PostgresCheckpoint(postgres_dsn, name)
    await holder.acquire()
    await holder.save(STATE)
    sleeps = Sleeps()
    # Bounded steps: whatever the kill interrupts is given up within 2 s.
    standby = PostgresCheckpoint(postgres_dsn, name, dead_after=2, connect_timeout=2, sleep=sleeps)
    taking = asyncio.ensure_future(standby.acquire())
    try:
        await sleeps.until(2)
        assert holder.backend_pid is not None
        first = await _standby_pid(admin, name, holder.backend_pid)
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
        count = len(sleeps.calls)
        await sleeps.until(count + 4)  # still waiting: reconnected and polling again
        assert not taking.done()
        second = await _standby_pid(admin, name, holder.backend_pid)
        assert second != first
    finally:
        await holder.release()
    await took_over(standby, taking)


async def test_a_standby_outlives_a_database_stall_longer_than_dead_after(
    postgres_dsn: str, name: str
) -> None:
    """Through a loopback proxy that stops forwarding for longer than ``dead_after``:
    the standby's poll times out, it reconnects, and takes the lease once it is free."""
    async with stalling_proxy(postgres_dsn) as (proxy, dsn):
        holder = PostgresCheckpoint(postgres_dsn, name)
        await holder.acquire()
        sleeps = Sleeps()
        standby = PostgresCheckpoint(dsn, name, dead_after=2, connect_timeout=1, sleep=sleeps)
        taking = asyncio.ensure_future(standby.acquire())
        try:
            await sleeps.until(2)
            proxy.flowing.clear()
            stalled_at = len(sleeps.calls)
            # The poll in flight times out after dead_after (2 s of real time).
            await asyncio.wait_for(_until_reconnecting(sleeps, stalled_at), 20)
            proxy.flowing.set()
            assert not taking.done()
        finally:
            await holder.release()
        await asyncio.wait_for(taking, 20)
        assert standby.fence is not None
        await standby.release()


class _GatedSleeps(Sleeps):
    """A standby's sleep that holds the standby in its ``hold_at``-th sleep until
    ``gate`` is set."""

    def __init__(self, hold_at: int) -> None:
        super().__init__()
        self.hold_at = hold_at
        self.gate = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        await super().__call__(seconds)
        if len(self.calls) == self.hold_at:
            await self.gate.wait()


async def test_a_standby_whose_idle_session_is_ended_reconnects(
    postgres_dsn: str, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server ends the standby's session while it sleeps between polls, and the
    close reaches the client after the FATAL message: asyncpg then refuses the next
    statement with ``InternalClientError`` (its protocol is mid-error, the connection
    not yet closed). The standby counts that as a lost session and reconnects: asyncpg's
    raw error never ends ``acquire()``."""
    taking: asyncio.Future[None] | None = None
    async with stalling_proxy(postgres_dsn) as (proxy, dsn):
        try:
            holder = PostgresCheckpoint(postgres_dsn, name)
            await holder.acquire()
            sleeps = _GatedSleeps(hold_at=2)
            standby = PostgresCheckpoint(dsn, name, dead_after=2, connect_timeout=2, sleep=sleeps)
            taking = asyncio.ensure_future(standby.acquire())
            try:
                await sleeps.until(2)  # held in its second sleep, between two polls
                await proxy.end_sessions()
                await asyncio.sleep(0.2)  # the loopback delivers the FATAL to the idle client
                with caplog.at_level(logging.WARNING, logger="senselink_plus"):
                    sleeps.gate.set()
                    polling = asyncio.ensure_future(sleeps.until(6))
                    await asyncio.wait([taking, polling], return_when=asyncio.FIRST_COMPLETED)
                    polling.cancel()
                assert not taking.done(), taking.exception()
                assert "session was lost; reconnecting" in caplog.text
            finally:
                await holder.release()
            await asyncio.wait_for(taking, 10)
            assert standby.fence == 2
            await standby.release()
        finally:
            if taking is not None:
                taking.cancel()


async def test_a_holder_whose_idle_session_is_ended_saves_nothing_and_says_so(
    postgres_dsn: str, name: str
) -> None:
    """The same half-closed session under the holder: every call is a
    `CheckpointLostError`, ``load`` included (asyncpg's raw ``InternalClientError`` never
    escapes)."""
    async with stalling_proxy(postgres_dsn) as (proxy, dsn):
        holder = PostgresCheckpoint(dsn, name)
        await holder.acquire()
        await proxy.end_sessions()
        await asyncio.sleep(0.2)  # the loopback delivers the FATAL to the idle client
        with pytest.raises(CheckpointLostError, match="connection was lost"):
            await holder.load()
        with pytest.raises(CheckpointLostError):
            await holder.save(STATE)
        with pytest.raises(CheckpointLostError):
            async with holder.transaction():
                pass
        await holder.release()
        # The next holder finds nothing saved by the lost one.
        again = PostgresCheckpoint(postgres_dsn, name)
        await again.acquire()
        assert await again.load() is None
        await again.release()


async def test_a_session_ended_inside_your_transaction_is_a_lost_lease_and_commits_nothing(
    postgres_dsn: str, admin: asyncpg.Connection, name: str
) -> None:
    """Your statement meets the ended session, and so does the rollback (asyncpg refuses
    it before sending anything): `CheckpointLostError`, not asyncpg's error."""
    holder = PostgresCheckpoint(postgres_dsn, name)
    await holder.acquire()
    await holder.save(STATE)

    async def write_while_the_session_ends() -> None:
        async with holder.transaction() as conn:
            await holder.save_in(conn, {**STATE, "ids": [7]})
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", holder.backend_pid)
            await conn.execute("SELECT 1")

    with pytest.raises(CheckpointLostError, match="connection was lost"):
        await write_while_the_session_ends()
    assert holder.fence is None
    await holder.release()
    again = PostgresCheckpoint(postgres_dsn, name)
    await again.acquire()
    try:
        assert await again.load() == STATE
    finally:
        await again.release()


async def _until_reconnecting(sleeps: Sleeps, after: int) -> None:
    while True:
        await sleeps.until(len(sleeps.calls) + 1)
        if len(sleeps.calls) > after + 1:
            return


#: What the server sends a session that ``pg_terminate_backend`` ends (57P01).
_TERMINATED = b"".join(
    [b"SFATAL\0", b"VFATAL\0", b"C57P01\0", b"Mterminating connection\0", b"\0"]
)
_FATAL_MESSAGE = b"E" + (len(_TERMINATED) + 4).to_bytes(4, "big") + _TERMINATED


@contextlib.asynccontextmanager
async def stalling_proxy(postgres_dsn: str) -> AsyncIterator[tuple[_StallingProxy, str]]:
    """A `_StallingProxy` to the test server's socket, and a DSN that goes through it."""
    folder = parse_qs(urlsplit(postgres_dsn).query)["host"][0]  # the server's socket folder
    sockets = glob.glob(os.path.join(folder, ".s.PGSQL.*"))
    (socket_path,) = [path for path in sockets if not path.endswith(".lock")]
    proxy = _StallingProxy(socket_path)
    await proxy.start()
    try:
        yield proxy, f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres"
    finally:
        await proxy.close()


class _StallingProxy:
    """A loopback TCP proxy to PostgreSQL's socket that holds every byte while
    ``flowing`` is clear, and can end its sessions as the server does."""

    def __init__(self, socket_path: str) -> None:
        self.target = socket_path
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sessions: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._held: list[asyncio.StreamWriter] = []  # ended, but open until close()

    async def end_sessions(self) -> None:
        """Each open session gets the server's FATAL "terminating connection" and its
        server side is closed, while the client's socket stays open (a slow network
        delivers the close later): the client sees the message with no session behind."""
        for client, upstream in self._sessions:
            self._held.append(client)
            upstream.close()
            client.write(_FATAL_MESSAGE)
            await client.drain()
        self._sessions.clear()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._held:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(self.target)
        self._sessions.append((writer, up_writer))
        pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer)),
            asyncio.ensure_future(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        if writer not in self._held:
            writer.close()
        up_writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                await self.flowing.wait()
                if writer.is_closing():
                    break
                writer.write(data)
                await writer.drain()
