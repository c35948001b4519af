"""Ingest new records into SQLite as they are stored, resumable after a crash.

`watch()` yields each record once; the upsert makes a re-delivered record harmless
(after a crash, at most the records delivered since the last save come again: the
watch saves after each page and each second), and the checkpoint file makes a restart
pick up where it stopped. One watcher at a time: a second one on the same checkpoint
raises `CheckpointInUseError`.

    python examples/ingest_to_sqlite.py records.db state.json
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
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
) -> int:
    """Copy records into ``db_path``; stop after ``max_items`` (None: run forever)."""
    db = sqlite3.connect(db_path)
    try:
        db.execute(SCHEMA)
        count = 0
        # ``async with``: leaving the block saves the position and releases the
        # checkpoint's lock at once, not whenever the garbage collector gets to it.
        async with client.watch(
            since=since, checkpoint=checkpoint, poll_interval=poll_interval
        ) as watch:
            async for record in watch:
                with db:  # one transaction per record
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


def _seed(emu: object) -> None:
    from senselink_plus.testing import Emulator

    assert isinstance(emu, Emulator)
    now = datetime.now(timezone.utc)
    emu.seed(250, start=now - timedelta(hours=2), span=timedelta(hours=1), sn=["A", "B"])


async def run(db_path: str, checkpoint: str) -> None:
    since = datetime.now(timezone.utc) - timedelta(hours=3)
    async with example_client(_seed) as client:
        count = await main(client, db_path, checkpoint, since=since, max_items=250)
    print(f"ingested {count} records into {db_path}")


if __name__ == "__main__":
    db, state = (sys.argv[1:3] + ["records.db", "state.json"][len(sys.argv[1:3]) :])[:2]
    asyncio.run(run(db, state))
