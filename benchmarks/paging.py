"""records() at realistic latency and over one large window: a script, never a test.

Run: ``python benchmarks/paging.py [--repeats N] [--delay S] [--windows N] [--memory N]``

1. Latency: ``--windows`` windows of one page each (one device, one page a day), every
   list answer delayed ``--delay`` seconds by the emulator's delay fault. SDK
   ``records(concurrency=1)`` and ``records(concurrency=8)`` against a hand-written
   aiohttp client that gathers the windows 8 at a time. Runs are interleaved; medians.
   Targets (issue 9): concurrency 8 at least 4x faster than 1, and at least 0.8x the
   hand-written gather's speed.
2. Memory: peak RSS growth while ``records()`` walks ``--memory`` records of one 24 h
   window (emulator in a child process, the walk in a fresh interpreter). Target:
   under 8 MiB for 500,000 records.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (the shared emulator process and baseline helpers)

import senselink_plus as slp  # noqa: E402
from senselink_plus.testing import Emulator  # noqa: E402

APP_KEY, APP_SECRET, SN = bench.APP_KEY, bench.APP_SECRET, bench.SN


async def base_windows(
    http: aiohttp.ClientSession, url: str, windows: list[tuple[datetime, datetime]], limit: int
) -> list[dict[str, Any]]:
    """What an expert writes: every window's pages, ``limit`` windows at a time."""
    gate = asyncio.Semaphore(limit)

    async def one(lo: datetime, hi: datetime) -> list[dict[str, Any]]:
        window = {"time_from": lo.isoformat(), "time_to": hi.isoformat()}
        async with gate:
            return await bench.base_list_sequential(http, url, window)

    parts = await asyncio.gather(*(one(lo, hi) for lo, hi in windows))
    return [r for part in parts for r in part]


async def latency(repeats: int, delay: float, days: int) -> dict[str, float]:
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    start = end - timedelta(days=days)
    emu = Emulator(app_key=APP_KEY, app_secret=APP_SECRET)
    span = timedelta(days=days) - timedelta(minutes=2)
    emu.seed(days * 50, start=start + timedelta(minutes=1), span=span, sn=SN)
    windows = slp.split_time_range(start, end)
    times: dict[str, list[float]] = {"sdk c=1": [], "sdk c=8": [], "hand-written gather": []}
    async with emu, aiohttp.ClientSession() as http:
        emu.delay("list", delay, times=10**9)
        url = emu.base_url + bench.RECORD_PATH
        async with slp.Client(APP_KEY, APP_SECRET, base_url=emu.base_url) as client:
            for _ in range(repeats):
                for name in times:
                    began = time.perf_counter()
                    if name == "hand-written gather":
                        got = len(await base_windows(http, url, windows, 8))
                    else:
                        conc = 1 if name == "sdk c=1" else 8
                        got = len([r async for r in client.records(start, end, concurrency=conc)])
                    times[name].append(time.perf_counter() - began)
                    assert got == days * 50, (name, got)
    return {name: statistics.median(values) for name, values in times.items()}


async def _memory_child(base_url: str, start: str, end: str, count: int) -> None:
    t0, t1 = datetime.fromisoformat(start), datetime.fromisoformat(end)
    async with slp.Client(APP_KEY, APP_SECRET, base_url=base_url) as client:
        await client.list_records(t0, t0 + timedelta(hours=1), size=100)  # warm the session
        gc.collect()
        bench.reset_peak()
        rss0 = bench._status_kib("VmRSS")
        seen, last = 0, -1
        began = time.perf_counter()
        async for record in client.records(t0, t1, concurrency=8):
            if record.record_id <= last:
                raise AssertionError(f"record {record.record_id} after {last}")
            last = record.record_id
            seen += 1
        elapsed = time.perf_counter() - began
    if seen != count:
        raise AssertionError(f"saw {seen} records, expected {count}")
    peak = bench._status_kib("VmHWM")
    print(json.dumps({"growth_mib": (peak - rss0) / 1024, "seconds": elapsed}))


def memory(count: int) -> dict[str, float]:
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    start = end - timedelta(hours=24)
    emu = bench.EmulatorProcess([(count, start + timedelta(seconds=1), timedelta(hours=23), SN)])
    try:
        command = [sys.executable, __file__, "--memory-child", emu.base_url]
        command += [start.isoformat(), end.isoformat(), str(count)]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    finally:
        emu.close()
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed:\n{done.stderr}")
    result: dict[str, float] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        asyncio.run(_memory_child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.020)
    parser.add_argument("--windows", type=int, default=30)
    parser.add_argument("--memory", type=int, default=500_000)
    args = parser.parse_args()
    got = asyncio.run(latency(args.repeats, args.delay, args.windows))
    c1, c8, base = got["sdk c=1"], got["sdk c=8"], got["hand-written gather"]
    print(f"latency: {args.windows} windows of one page, every answer delayed {args.delay}s")
    for name, seconds in got.items():
        print(f"  {name:22s} {seconds * 1000:8.1f} ms")
    print(f"  c=8 vs c=1: {c1 / c8:.2f}x faster (target >= 4)")
    print(f"  c=8 vs hand-written gather: {base / c8:.2f}x its speed (target >= 0.8)")
    if args.memory:
        mem = memory(args.memory)
        print(
            f"memory: {args.memory:,} records in one 24 h window, concurrency 8: peak RSS "
            f"+{mem['growth_mib']:.1f} MiB (target < 8), {mem['seconds']:.1f} s, "
            f"{args.memory / mem['seconds']:,.0f} records/s"
        )


if __name__ == "__main__":
    main()
