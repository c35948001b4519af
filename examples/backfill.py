"""Backfill 90 days of records from many devices, a bounded number at a time.

    python examples/backfill.py

Each device's range is walked by `records()` (90 windows of 24 h, pages fetched a few
at a time); `max_concurrency` on the client caps the requests in flight across all of
them, so the service sees a steady load whatever the number of devices.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone

import senselink_plus as slp

from _setup import example_client

DEVICES = [f"GATE-{n:02d}" for n in range(1, 9)]


async def main(
    client: slp.Client,
    devices: list[str],
    start: datetime,
    end: datetime,
    *,
    devices_at_once: int = 4,
) -> Counter[str]:
    """Count each device's records in [start, end]."""
    counts: Counter[str] = Counter()
    gate = asyncio.Semaphore(devices_at_once)

    async def one(sn: str) -> None:
        async with gate:
            async for record in client.records(start, end, sn=sn, concurrency=2):
                counts[record.sn] += 1

    await asyncio.gather(*(one(sn) for sn in devices))
    return counts


async def run() -> None:
    end = datetime.now(timezone.utc)
    start = end - timedelta(days=90)

    def seed(emu: object) -> None:
        from senselink_plus.testing import Emulator

        assert isinstance(emu, Emulator)
        emu.seed(20_000, start=start + timedelta(minutes=1), span=timedelta(days=89), sn=DEVICES)

    async with example_client(seed, max_concurrency=8) as client:
        counts = await main(client, DEVICES, start, end)
    for sn, count in sorted(counts.items()):
        print(f"{sn}: {count} records")
    print(f"total: {sum(counts.values())}")


if __name__ == "__main__":
    asyncio.run(run())
