"""Drain a dense backlog with `watch()`, with and without a file checkpoint.

Run: ``python benchmarks/watch_backlog.py [--records 10000] [--rounds 3]``

Seeds the emulator with ``--records`` records stored within one minute (about 170
a second: most records share their second with many others), then times a watch from
before them until it has delivered them all: once with no checkpoint and once with a
`FileCheckpoint` (JSON, fsync, atomic rename; saves coalesced per page and per second).
Prints records/s for both (median of ``--rounds``), the ratio, and the checkpoint's
save count and size. The target is a ratio of at least 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from senselink_plus.testing import Emulator


class CountingFile:
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
            async with contextlib.aclosing(watch):  # type: ignore[type-var]
                async for _ in watch:
                    count += 1
                    if count == records:
                        break
            elapsed = time.perf_counter() - began
    return records / elapsed


async def main(records: int, rounds: int) -> None:
    from senselink_plus import FileCheckpoint

    plain: list[float] = []
    saved: list[float] = []
    counter: CountingFile | None = None
    with tempfile.TemporaryDirectory() as folder:
        for n in range(rounds):  # alternated, so drift on a shared machine hits both
            plain.append(await drain(records, None))
            path = os.path.join(folder, f"state-{n}.json")
            counter = CountingFile(FileCheckpoint(path))
            saved.append(await drain(records, counter))
    without, with_file = statistics.median(plain), statistics.median(saved)
    print(f"backlog of {records:,} records stored within one minute, {rounds} rounds (median)")
    print(f"  without a checkpoint:     {without:8,.0f} records/s")
    print(f"  with a file checkpoint:   {with_file:8,.0f} records/s")
    print(f"  ratio:                    {with_file / without:8.2f}  (target >= 0.5)")
    if counter is not None:
        print(f"  saves in the last round:  {counter.saves:8,}")
        print(f"  largest state saved:      {counter.largest:8,} bytes")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    asyncio.run(main(options.records, options.rounds))
