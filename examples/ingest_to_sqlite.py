"""Ingest new records into SQLite as they are stored, resumable after a crash.

`watch()` yields each record once; the upsert makes a re-delivered record harmless
(after a crash, at most the records delivered since the last save come again: the
watch saves after each page and each second), and the checkpoint file makes a restart
pick up where it stopped. One watcher at a time: a second one on the same checkpoint
raises `CheckpointInUseError`.

    python examples/ingest_to_sqlite.py records.db state.json
    python examples/ingest_to_sqlite.py          # a throwaway database and checkpoint

Without paths, the database and checkpoint live in a temporary folder removed at the
end. Against the local emulator (no SENSELINK_APP_KEY) it stops once it has caught up
and nothing new came for a few seconds: a fresh emulator's data may lie before the
position a previous run saved, and the example must end either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import tempfile
from collections.abc import AsyncGenerator
from datetime import datetime, timedelta, timezone

import senselink_plus as slp

from _setup import example_client

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    record_id INTEGER PRIMARY KEY,
    sn TEXT NOT NULL,
    image_id TEXT NOT NULL,
    user_id INTEGER,
    verify_score REAL,
    created_at TEXT NOT NULL,
    extend TEXT
)
"""
UPSERT = """
INSERT INTO records (record_id, sn, image_id, user_id, verify_score, created_at, extend)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(record_id) DO UPDATE SET
    sn = excluded.sn, image_id = excluded.image_id, user_id = excluded.user_id,
    verify_score = excluded.verify_score, created_at = excluded.created_at,
    extend = excluded.extend
"""


async def main(
    client: slp.Client,
    db_path: str,
    checkpoint: str,
    *,
    since: datetime | None = None,
    max_items: int | None = None,
    poll_interval: float = 10.0,
    idle_stop: float | None = None,
) -> int:
    """Copy records into ``db_path``; stop after ``max_items`` or once nothing new came
    for ``idle_stop`` seconds (None, None: run forever)."""
    db = sqlite3.connect(db_path)
    try:
        db.execute(SCHEMA)
        count = 0
        # ``async with``: leaving the block saves the position and releases the
        # checkpoint's lock at once, not whenever the garbage collector gets to it.
        async with client.watch(
            since=since, checkpoint=checkpoint, poll_interval=poll_interval
        ) as watch, contextlib.aclosing(_until_idle(watch, idle_stop)) as records:
            # SIGTERM (systemd, Docker, Kubernetes) or Ctrl-C: the record in hand is
            # committed and acknowledged, the position saved, and the loop ends.
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, watch.stop)
            async for record in records:
                with db:  # one transaction per record: committed before the next is asked for
                    db.execute(
                        UPSERT,
                        (
                            record.record_id,
                            record.sn,
                            record.image_id,
                            record.user_id,
                            record.verify_score,
                            record.created_at.isoformat(),
                            record.extend,
                        ),
                    )
                count += 1
                if max_items is not None and count >= max_items:
                    break
        return count
    finally:
        db.close()


async def _until_idle(watch: slp.Watch, idle: float | None) -> AsyncGenerator[slp.Record, None]:
    """``watch``'s records until none arrives for ``idle`` seconds (None: no limit)."""
    while True:
        try:
            yield await asyncio.wait_for(anext(watch), idle)
        except (StopAsyncIteration, asyncio.TimeoutError):
            return


def _seed(emu: object) -> None:
    from senselink_plus.testing import Emulator

    assert isinstance(emu, Emulator)
    now = datetime.now(timezone.utc)
    emu.seed(250, start=now - timedelta(hours=2), span=timedelta(hours=1), sn=["A", "B"])


async def run(
    db_path: str | None = None,
    checkpoint: str | None = None,
    *,
    poll_interval: float = 1.0,
    idle_stop: float = 3.0,
) -> int:
    """Ingest into ``db_path`` with ``checkpoint`` (both in a temporary folder when not
    given); against the emulator, stop after ``idle_stop`` seconds without news."""
    with tempfile.TemporaryDirectory(prefix="ingest-") as scratch:
        db_path = db_path or os.path.join(scratch, "records.db")
        checkpoint = checkpoint or os.path.join(scratch, "state.json")
        on_emulator = not os.environ.get("SENSELINK_APP_KEY")
        since = datetime.now(timezone.utc) - timedelta(hours=3)
        async with example_client(_seed) as client:
            count = await main(
                client,
                db_path,
                checkpoint,
                since=since,
                max_items=250,
                poll_interval=poll_interval,
                idle_stop=idle_stop if on_emulator else None,
            )
        print(f"ingested {count} records into {db_path}")
    return count


if __name__ == "__main__":
    paths = sys.argv[1:3]
    asyncio.run(run(*paths))
