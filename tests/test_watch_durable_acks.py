"""Durable acknowledgements, through the public API: an acknowledged record does not
come again after the watching process is killed (``kill -9``), with each checkpoint
kind; `FileCheckpoint`'s acknowledgement journal is trusted only when it checks out
(a torn, garbage, foreign or older one is ignored, and nothing is lost), lives with
the lock, and is removed at a clean close."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from senselink_plus import CheckpointInUseError, Client, FileCheckpoint, ValidationError
from senselink_plus.postgres import PostgresCheckpoint
from senselink_plus.testing import Emulator
from tests.conftest import APP_KEY, APP_SECRET
from tests.test_postgres import postgres_dsn, postgres_server  # noqa: F401
from tests.test_watch_ack import at, drain, seed
from tests.test_watch_ack import client as client
from tests.test_watch_ack import clock as clock
from tests.test_watch_ack import emu as emu
from tests.watch_helpers import MemoryCheckpoint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL, POSIX files")

# --- kill -9 right after an acknowledgement ------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    import senselink_plus as slp
    from senselink_plus import _saving

    # No coalesced save comes during this short run (the start is saved at once): what
    # survives the kill is what the acknowledgements themselves made durable.
    _saving.SAVE_EVERY = 3600.0

    async def main(base_url, since, acks, hang_at, where, name=None):
        checkpoint = where
        if name is not None:
            from senselink_plus.postgres import PostgresCheckpoint
            checkpoint = PostgresCheckpoint(where, name)
        async with slp.Client(base_url=base_url) as client:
            watch = client.watch(
                checkpoint=checkpoint, since=since, poll_interval=0.05, acks=acks
            )
            async with watch:
                count = 0
                async for record in watch:
                    count += 1
                    if acks == "explicit":
                        saved = watch.ack(record)
                        if name is not None:
                            await saved  # a database save: wait for it
                    print(record.record_id, flush=True)
                    if count == int(hang_at):
                        await asyncio.Event().wait()  # handling this one: killed here

    asyncio.run(main(*sys.argv[1:]))
    """
)
HANG_AT = 5


async def _run_until_killed(
    emu: Emulator, since: datetime, acks: str, where: list[str]
) -> list[int]:
    """Start the child, read what it handled, and SIGKILL it once it hangs."""
    env = {**os.environ, "SENSELINK_APP_KEY": APP_KEY, "SENSELINK_APP_SECRET": APP_SECRET}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        emu.base_url,
        since.isoformat(),
        acks,
        str(HANG_AT),
        *where,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    printed: list[int] = []
    try:
        while len(printed) < HANG_AT:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, (await proc.stderr.read()).decode()
            printed.append(int(line))
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return printed


@pytest.mark.parametrize("acks", ["auto", "explicit"])
@pytest.mark.parametrize("kind", ["file", "postgres"])
async def test_kill_9_right_after_an_acknowledgement_does_not_deliver_it_again(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str, acks: str
) -> None:
    async with Emulator(app_key=APP_KEY, app_secret=APP_SECRET) as emu:
        now = datetime.now(timezone.utc)
        start = now - timedelta(minutes=4)
        history = list(emu.seed(10, start=start, span=timedelta(seconds=30)))
        path = tmp_path / "state.json"
        if kind == "file":
            where, checkpoint = [str(path)], lambda: path
        else:
            dsn, name = request.getfixturevalue("postgres_dsn"), f"k-{uuid.uuid4().hex[:12]}"
            where, checkpoint = [dsn, name], lambda: PostgresCheckpoint(dsn, name)
        printed = await _run_until_killed(emu, start - timedelta(minutes=1), acks, where)
        assert printed == history[:HANG_AT]
        # Auto: asking for the 5th acknowledged the 4th (the 5th is in hand). Explicit:
        # the 5th was acknowledged before it was printed.
        acknowledged = HANG_AT - 1 if acks == "auto" else HANG_AT
        if kind == "file":
            # The state file's own saves hold none of them: the journal does.
            assert orjson.loads(path.read_bytes())["watermark"] is None
            assert os.path.exists(f"{path}.acks")
        async with emu.client() as client:
            rest = await drain(client, checkpoint(), len(history) - acknowledged)
        assert rest == history[acknowledged:]  # not one acknowledged record again
    if kind == "file":
        assert not os.path.exists(f"{path}.acks")  # a clean close removes the journal


# --- the journal: trusted only when it checks out ------------------------------------------


async def _killed_mid_stream(
    client: Client, path: Path, handled: int, since: datetime, sn: str | None = None
) -> tuple[bytes, bytes]:
    """The state file and journal as a kill -9 would leave them once ``handled`` records
    are acknowledged (the watch itself then closes normally)."""
    left: tuple[bytes, bytes] | None = None
    async with client.watch(sn=sn, since=since, checkpoint=path) as watch:
        count = 0
        async for _ in watch:
            count += 1
            if count == handled + 1:  # asking for it acknowledged the one before
                left = (path.read_bytes(), Path(f"{path}.acks").read_bytes())
                break
    assert left is not None
    return left


def _leave(path: Path, state: bytes, journal: bytes) -> None:
    path.write_bytes(state)
    Path(f"{path}.acks").write_bytes(journal)


async def test_a_journal_that_checks_out_resumes_after_the_last_acknowledgement(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    history = seed(emu, 8)
    path = tmp_path / "state.json"
    state, journal = await _killed_mid_stream(client, path, 4, at(-900))
    assert orjson.loads(state)["watermark"] is None  # only the journal holds the four
    _leave(path, state, journal)
    assert await drain(client, path, 4) == history[4:]
    assert orjson.loads(path.read_bytes())["watermark"] == history[-1]


def _torn(journal: bytes) -> list[bytes]:
    """Ways a journal can be broken. Its record: 8 bytes of magic, the payload's length
    and CRC-32 (4 bytes each), the payload; bytes after it are an older, longer one's."""
    end = 16 + int.from_bytes(journal[8:12], "big")
    flipped = bytearray(journal)
    flipped[end - 5] ^= 0x01
    return [
        journal[: end - 3],  # cut short (a power loss mid-write)
        bytes(flipped),  # one bit off: its checksum fails
        journal[:10],  # only part of its header
        b"",
        os.urandom(len(journal)),
        b"{" + journal[1:],  # another format
    ]


async def test_a_torn_or_garbage_journal_is_ignored_and_nothing_is_lost(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    history = seed(emu, 8)
    path = tmp_path / "state.json"
    state, journal = await _killed_mid_stream(client, path, 4, at(-900))
    for bad in _torn(journal):
        _leave(path, state, bad)
        # Back to the saved state: records acknowledged since come again, none is lost.
        assert await drain(client, path, 8) == history
        assert not os.path.exists(f"{path}.acks")


async def test_a_journal_behind_the_saved_state_is_ignored(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    history = seed(emu, 8)
    path = tmp_path / "state.json"
    _, old_journal = await _killed_mid_stream(client, path, 2, at(-900))  # 2 journaled
    # The watch went on (its break acknowledged a 3rd), and another ran to the 5th.
    assert await drain(client, path, 2) == history[3:5]
    Path(f"{path}.acks").write_bytes(old_journal)  # 2 handled: behind the file
    assert await drain(client, path, 3) == history[5:]


async def test_a_journal_of_another_watch_or_without_its_state_is_ignored(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    history = seed(emu, 8)
    # A watch of another query (every device) leaves a journal further on ...
    _, foreign = await _killed_mid_stream(client, tmp_path / "other.json", 7, at(-900))
    # ... beside the state of a watch of GATE-1's records.
    path = tmp_path / "state.json"
    state, _ = await _killed_mid_stream(client, path, 2, at(-900), sn="GATE-1")
    _leave(path, state, foreign)
    got: list[int] = []
    async with client.watch(sn="GATE-1", checkpoint=path) as watch:
        async for record in watch:
            got.append(record.record_id)
            if len(got) == 8:
                break
    assert got == history
    # A state file moved away (to start afresh) leaves its journal: not trusted either.
    fresh = tmp_path / "fresh.json"
    _, journal = await _killed_mid_stream(client, fresh, 6, at(-900))
    fresh.unlink()
    Path(f"{fresh}.acks").write_bytes(journal)
    assert await drain(client, fresh, 8, since=at(-900)) == history


async def test_the_journal_lives_with_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    holder = FileCheckpoint(path)
    await holder.acquire()
    try:
        assert holder.journal_path == f"{path}.acks"
        assert os.path.exists(holder.journal_path)  # opened with the lock, for one writer
        with pytest.raises(CheckpointInUseError):
            await FileCheckpoint(path).acquire()  # a second watcher is still refused
        assert await holder.load() is None
    finally:
        await holder.release()
    assert not os.path.exists(holder.journal_path)  # read, nothing journaled: removed
    victim = tmp_path / "victim"
    Path(f"{path}.acks").symlink_to(victim)
    with pytest.raises(ValidationError, match="symlink"):
        await FileCheckpoint(path).acquire()
    assert not victim.exists()
    os.unlink(f"{path}.acks")
    os.mkfifo(f"{path}.acks")
    with pytest.raises(ValidationError, match="not a regular file"):
        await FileCheckpoint(path).acquire()
    os.unlink(f"{path}.acks")
    again = FileCheckpoint(path)
    await again.acquire()  # the failed attempts kept no lock
    await again.release()


async def test_a_reader_without_the_lock_sees_the_journal_and_changes_nothing(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    history = seed(emu, 6)
    path = tmp_path / "state.json"
    state, journal = await _killed_mid_stream(client, path, 3, at(-900))
    _leave(path, state, journal)
    loaded = await FileCheckpoint(path).load()
    assert loaded is not None
    assert loaded["watermark"] == history[2]
    assert path.read_bytes() == state  # a reader folds nothing in, clears nothing
    assert Path(f"{path}.acks").read_bytes() == journal


# --- the other kinds: save per acknowledgement ----------------------------------------------


async def test_await_ack_returns_once_your_checkpoint_saved_it(
    emu: Emulator, client: Client
) -> None:
    history = seed(emu, 4)
    checkpoint = MemoryCheckpoint()
    async with client.watch(since=at(-900), checkpoint=checkpoint, acks="explicit") as watch:
        async for record in watch:
            await watch.ack(record)
            assert checkpoint.state is not None
            assert checkpoint.state["watermark"] == record.record_id
            if record.record_id == history[-1]:
                break


async def test_without_durable_acks_saves_are_coalesced(emu: Emulator, client: Client) -> None:
    history = seed(emu, 6)
    checkpoint = MemoryCheckpoint()
    saves: list[int | None] = []
    save = checkpoint.save

    async def counted(state: Any) -> None:
        saves.append(state["watermark"])
        await save(state)

    checkpoint.save = counted  # type: ignore[method-assign]
    watch = client.watch(since=at(-900), checkpoint=checkpoint, durable_acks=False)
    async with watch:
        async for record in watch:
            if record.record_id == history[-1]:
                break
    assert saves == [None, history[-1]]  # the start and the close, nothing between
    with pytest.raises(ValidationError, match="durable_acks"):
        client.watch(durable_acks="yes")  # type: ignore[arg-type]


async def test_the_exactly_once_recipe_costs_no_extra_save_a_record(
    postgres_dsn: str,  # noqa: F811
    emu: Emulator,
    client: Client,
) -> None:
    history = seed(emu, 6)
    table = f"cp_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_dsn)
    try:
        # The checkpoint's table, made beforehand with a trigger counting its UPDATEs.
        await admin.execute(
            f"CREATE TABLE {table} (name text PRIMARY KEY, state jsonb, "
            "fence bigint NOT NULL DEFAULT 0, saved_at timestamptz);"
            f"CREATE TABLE {table}_n (n int);"
            f"CREATE FUNCTION {table}_f() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$BEGIN INSERT INTO {table}_n VALUES (1); RETURN NEW; END$$;"
            f"CREATE TRIGGER {table}_t AFTER UPDATE OF state ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_f()"
        )
        checkpoint = PostgresCheckpoint(postgres_dsn, "recipe", table=table)
        async with client.watch(since=at(-900), checkpoint=checkpoint) as watch:
            async for record in watch:
                async with checkpoint.transaction() as conn:
                    await checkpoint.save_in(conn, watch.state)
                if record.record_id == history[-1]:
                    break
        updates = await admin.fetchval(f"SELECT count(*) FROM {table}_n")
        # The start, then one save_in a record; acknowledging what save_in committed
        # sends nothing more.
        assert updates == 1 + len(history)
    finally:
        await admin.execute(f"DROP TABLE IF EXISTS {table}, {table}_n")
        await admin.execute(f"DROP FUNCTION IF EXISTS {table}_f()")
        await admin.close()
