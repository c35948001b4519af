"""Seed the emulator with 1,000,000 records and time listing over HTTP.

Run: ``python benchmarks/emulator_listing.py [--records N] [--requests N]``

Prints the seed time, the memory the records take, and listing latency (p50 / p95 /
max over plain signed aiohttp requests) for windows at the start, middle and end of
the data, with and without the ``sn`` filter, shallow and deep pages. Listing should
stay flat as the store grows: it is O(log n + page size).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import orjson

from senselink_plus._auth import compute_sign
from senselink_plus.testing import Emulator

JST = timezone(timedelta(hours=9))
START = datetime(2024, 1, 1, tzinfo=JST)
SPAN = timedelta(days=80)  # inside the 90-day retention, so every record stays visible


def rss_mb() -> float:
    """Peak resident memory of this process in MB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


async def timed_list(
    http: aiohttp.ClientSession, emu: Emulator, params: dict[str, str]
) -> tuple[float, dict[str, Any]]:
    stamp = str(round(emu.clock() * 1000))  # the emulator checks skew against its own clock
    query = {"app_key": emu.app_key, "timestamp": stamp,
             "sign": compute_sign(stamp, emu.app_secret), **params}
    began = time.perf_counter()
    async with http.get(f"{emu.base_url}/api/v1/plus/record", params=query) as response:
        body = orjson.loads(await response.read())
    elapsed = time.perf_counter() - began
    assert body["code"] == 200, body
    return elapsed, body["data"]


async def main(records: int, requests: int) -> None:
    gc.collect()
    before = rss_mb()
    # The clock sits just after the seeded span, so retention keeps everything.
    emu = Emulator(clock=lambda: (START + SPAN + timedelta(hours=1)).timestamp())
    began = time.perf_counter()
    emu.seed(records, start=START, span=SPAN, sn=["GATE-A", "GATE-B", "GATE-C", "GATE-D"])
    seed_s = time.perf_counter() - began
    print(f"seeded {records:,} records in {seed_s:.2f} s "
          f"(peak RSS +{rss_mb() - before:.0f} MB)")

    cases = {
        "first day, page 1": (START, {}),
        "middle day, page 1": (START + SPAN / 2, {}),
        "last day, page 1": (START + SPAN - timedelta(days=1), {}),
        "middle day, sn, page 1": (START + SPAN / 2, {"sn": "GATE-C"}),
        "middle day, page 100, asc": (START + SPAN / 2, {"page": "100", "order": "1"}),
        "middle day, sn, page 20, desc": (START + SPAN / 2, {"sn": "GATE-B", "page": "20"}),
    }
    async with emu, aiohttp.ClientSession() as http:
        for _ in range(20):  # warm the connection and the code paths
            await timed_list(http, emu, {"time_from": START.isoformat(),
                                         "time_to": (START + timedelta(days=1)).isoformat()})
        print(f"listing latency over HTTP, size=100, {requests} requests each:")
        for name, (day, extra) in cases.items():
            params = {"time_from": day.isoformat(),
                      "time_to": (day + timedelta(hours=24)).isoformat(), "size": "100", **extra}
            samples = []
            total = 0
            for _ in range(requests):
                elapsed, data = await timed_list(http, emu, params)
                samples.append(elapsed * 1000)
                total = data["total"]
                skipped = (int(params.get("page", "1")) - 1) * 100
                assert len(data["list"]) == min(100, max(0, total - skipped))
            samples.sort()
            p95 = samples[int(len(samples) * 0.95) - 1]
            print(f"  {name:<32} total={total:>6,}  p50 {statistics.median(samples):5.2f} ms"
                  f"  p95 {p95:5.2f} ms  max {samples[-1]:5.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.records, args.requests))
