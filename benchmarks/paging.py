"""records() paging: the five cases of RESULTS.md's "records() paging" section; a script.

Run: ``python benchmarks/paging.py [--repeats N] [--no-write]`` (never a test). Every case
runs ours and the baseline side by side in one run, interleaved (the order flips every
repeat); the tables show medians with min..max. Loopback only.

1. A listing served from SQLite by page/size (`db_listing.py`): 100,000 records in one
   24 h window, ``records()`` at concurrency 1 and 8 against a hand-written page-number
   client (sequential; 8 in flight). Targets: >= 3x its throughput both ways; the
   deepest ``page`` the SDK asks <= concurrency + 1.
2. List calls per 24 h window (counted at that server): evenly spaced and Poisson
   records, pages of 100 and of 10, concurrency 1, 2, 4, 8. Targets: calls /
   ceil(N / page size) <= 1.15 even, <= 1.25 Poisson.
3. Latency: ``--windows`` windows of one page each (one device, one page a day), every
   list answer delayed ``--delay`` seconds by the emulator's delay fault. SDK
   ``records(concurrency=1)`` and ``records(concurrency=8)`` against a hand-written
   aiohttp client that gathers the windows 8 at a time. Targets: concurrency 8 at
   least 5x faster than 1, and at least 0.9x the hand-written gather's speed.
4. A 24 h listing (50,000 records) with every answer delayed 30 ms: ``records()`` at its
   default concurrency (4) against the hand-written client with 4 pages in flight
   (`bench.py` case 6 measures the same). Target: >= 0.97 of its throughput.
5. Memory: peak RSS growth while ``records()`` walks ``--memory`` records of one 24 h
   window (emulator in a child process, the walk in a fresh interpreter). Target:
   under 2 MiB for 500,000 records.

Then it writes the "records() paging" section of ``benchmarks/RESULTS.md`` (between
``<!-- paging:start -->`` and ``<!-- paging:end -->``; `bench.py` keeps it).
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
import db_listing  # noqa: E402  (cases 1 and 2: the SQLite-backed listing)

import senselink_plus as slp  # noqa: E402
from senselink_plus.testing import Emulator  # noqa: E402

APP_KEY, APP_SECRET, SN = bench.APP_KEY, bench.APP_SECRET, bench.SN
PAGING_START, PAGING_END = "<!-- paging:start -->", "<!-- paging:end -->"
SPEEDUP_FLOOR, GATHER_FLOOR = 5.0, 0.9
LATENCY_FLOOR = bench.LATENCY_FLOOR
SLOW_DELAY = 0.030
SLOW_IN_FLIGHT = bench.LATENCY_IN_FLIGHT
MEMORY_CEILING_MIB = 2.0


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


async def latency(repeats: int, delay: float, days: int) -> dict[str, bench.Samples]:
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
    return {name: bench.Samples(values) for name, values in times.items()}


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


async def slow_listing(repeats: int) -> bench.Row:
    """Case 4: one 24 h window at 30 ms a call, ``records()``' default concurrency."""
    end = datetime.now(bench.JST).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    t0, t1 = end - timedelta(hours=24), end
    count = bench.LIST_RECORDS
    emu = bench.EmulatorProcess([(count, t0, timedelta(hours=23), SN)])
    try:
        emu.set_delay(SLOW_DELAY)
        url = emu.base_url + bench.RECORD_PATH
        wire = {"time_from": t0.isoformat(), "time_to": t1.isoformat()}
        expected = emu.ranges[0]
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
            slp.Client(APP_KEY, APP_SECRET, base_url=emu.base_url) as client,
        ):
            await client.list_records(t0, t1, size=100)
            await bench.base_page(http, url, wire, 1)

            async def ours() -> list[int]:
                return [r.record_id async for r in client.records(t0, t1)]

            async def base() -> list[int]:
                items = await bench.base_list_concurrent(http, url, wire, SLOW_IN_FLIGHT)
                return [item["record_id"] for item in items]

            def check(side: str, ids: list[int]) -> None:
                bench.check_ids(ids, expected, f"24 h listing at 30 ms ({side})")

            got = await bench.interleave(emu, repeats, ours, base, check)
    finally:
        emu.close()
    return bench.throughput_row(
        f"4. 24 h listing ({count:,} records), every answer delayed 30 ms, "
        f"{SLOW_IN_FLIGHT} in flight",
        count,
        got,
        f">= {LATENCY_FLOOR:.2f}",
        LATENCY_FLOOR,
        concurrent=False,
    )


# --- the report ---------------------------------------------------------------------


def met(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def section(
    db: tuple[list[db_listing.ThroughputResult], list[db_listing.CallsResult], int],
    lat: dict[str, bench.Samples] | None,
    lat_args: tuple[float, int],
    slow: bench.Row | None,
    mem: dict[str, float] | None,
    memory_records: int,
    seconds: float,
) -> list[str]:
    """The "records() paging" section of RESULTS.md."""
    throughput, calls, count = db
    rows = [
        "| case | ours: median (min..max) | baseline: median (min..max) "
        "| ratio: median (min..max) | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in throughput:
        how = "sequential" if r.concurrency == 1 else f"{r.concurrency} in flight"
        ours = "SDK c=1" if r.concurrency == 1 else f"SDK c={r.concurrency}"
        rows.append(
            f"| 1. SQLite page/size listing, {count:,} records, {how} (records/s) "
            f"| {ours}: {r.ours.median:,.0f} ({r.ours.spread(',.0f')}) "
            f"| page-number client: {r.base.median:,.0f} ({r.base.spread(',.0f')}) "
            f"| {r.ratios.median:.2f}x ({r.ratios.spread('.2f')}) "
            f"| >= {db_listing.THROUGHPUT_FLOOR:.0f}x | {met(r.ratios.median >= 3.0)} |"
        )
        rows.append(
            f"| 1. deepest `page` asked, {how} | SDK c={r.concurrency}: {r.ours_max_page} "
            f"| page-number client: {r.base_max_page} | - | <= {r.concurrency + 1} "
            f"| {met(r.ours_max_page <= r.concurrency + 1)} |"
        )
    for c in calls:
        ceiling = db_listing.EVEN_CEILING if c.name == "even" else db_listing.POISSON_CEILING
        spacing = "evenly spaced" if c.name == "even" else "Poisson arrivals"
        rows.append(
            f"| 2. list calls per 24 h window, {spacing}, N = {c.records:,}, "
            f"pages of {c.page_size}, c={c.concurrency} "
            f"| {statistics.median(c.calls):.0f} ({min(c.calls)}..{max(c.calls)}) calls "
            f"| least possible: {c.least} | {c.ratio:.3f} (worst run) | <= {ceiling} "
            f"| {met(c.ratio <= ceiling)} |"
        )
    if lat is not None:
        delay, windows = lat_args
        c1, c8, gather = (
            bench.Samples([seconds * 1000 for seconds in lat[name].values])
            for name in ("sdk c=1", "sdk c=8", "hand-written gather")
        )
        speedup = bench.paired(c8, c1, throughput=True)
        vs_gather = bench.paired(c8, gather, throughput=True)
        what = f"3. {windows} one-page windows, {delay * 1000:.0f} ms an answer"
        rows.append(
            f"| {what}: c=8 vs c=1 (ms per walk) | c=8: {c8.median:.1f} ({c8.spread('.1f')}) "
            f"| c=1: {c1.median:.1f} ({c1.spread('.1f')}) "
            f"| {speedup.median:.2f}x ({speedup.spread('.2f')}) | >= {SPEEDUP_FLOOR:.0f}x "
            f"| {met(speedup.median >= SPEEDUP_FLOOR)} |"
        )
        rows.append(
            f"| {what}: c=8 vs a hand-written gather of 8 (ms per walk) "
            f"| c=8: {c8.median:.1f} ({c8.spread('.1f')}) "
            f"| gather: {gather.median:.1f} ({gather.spread('.1f')}) "
            f"| {vs_gather.median:.2f}x ({vs_gather.spread('.2f')}) "
            f"| >= {GATHER_FLOOR} | {met(vs_gather.median >= GATHER_FLOOR)} |"
        )
    if slow is not None:
        rows.append(
            f"| {slow.case} (records/s) | {slow.ours.median:,.0f} ({slow.ours.spread(',.0f')}) "
            f"| {slow.base.median:,.0f} ({slow.base.spread(',.0f')}) "
            f"| {slow.ratios.median:.3f} ({slow.ratios.spread('.3f')}) | {slow.target} "
            f"| {met(slow.met)} |"
        )
    if mem is not None:
        growth = mem["growth_mib"]
        rows.append(
            f"| 5. peak RSS growth, `records(concurrency=8)` over {memory_records:,} records "
            f"of one 24 h window | +{growth:.2f} MiB | - | - | < {MEMORY_CEILING_MIB:.0f} MiB "
            f"| {met(growth < MEMORY_CEILING_MIB)} |"
        )
    notes = [
        "- 1: calls per walk, SDK vs page-number client: "
        + "; ".join(
            f"c={r.concurrency} {r.ours_calls} vs {r.base_calls}, database time per walk "
            f"{r.ours_db_s:.2f} s vs {r.base_db_s:.2f} s"
            for r in throughput
        )
        + ". The server runs `count(*)` and `LIMIT/OFFSET` on every call, so deep pages "
        "cost the database their offset.",
    ]
    if slow is not None:
        notes.append(f"- 4: {slow.note}")
    if mem is not None:
        notes.append(
            f"- 5: the walk took {mem['seconds']:.1f} s, "
            f"{memory_records / mem['seconds']:,.0f} records/s."
        )
    return [
        PAGING_START,
        "## records() paging",
        "",
        "Generated by `python benchmarks/paging.py` "
        f"({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, whole run {seconds:.0f} s, "
        f"load average at the end {bench.loadavg()}). Cases 1-2 against a SQLite-backed "
        "page/size server (`benchmarks/db_listing.py`, a child process), 3-5 against the "
        "emulator. Ratios are per interleaved pair (throughput: more is better).",
        "",
        *rows,
        "",
        *notes,
        PAGING_END,
        "",
    ]


def write_section(lines: list[str]) -> Path:
    """Put the section into RESULTS.md: in place of the old one, else before the
    hand-written analysis, else at the end."""
    path = HERE / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    block = "\n".join(lines)
    if PAGING_START in text and PAGING_END in text:
        before, rest = text.split(PAGING_START, 1)
        after = rest.split(PAGING_END, 1)[1].lstrip("\n")
        text = before + block + after
    elif bench.ANALYSIS_START in text:
        before, after = text.split(bench.ANALYSIS_START, 1)
        text = before + block + bench.ANALYSIS_START + after
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)
    return path


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        asyncio.run(_memory_child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of case 3 (default 5)")
    parser.add_argument("--db-repeats", type=int, default=3, help="runs of case 1 (default 3)")
    parser.add_argument("--calls-repeats", type=int, default=3, help="runs of case 2")
    parser.add_argument("--slow-repeats", type=int, default=3, help="runs of case 4")
    parser.add_argument("--records", type=int, default=db_listing.THROUGHPUT_RECORDS)
    parser.add_argument("--calls-records", type=int, default=db_listing.CALLS_RECORDS)
    parser.add_argument("--delay", type=float, default=0.020)
    parser.add_argument("--windows", type=int, default=30)
    parser.add_argument("--memory", type=int, default=500_000)
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()
    began = time.perf_counter()

    print("cases 1-2: the SQLite-backed page/size listing ...", flush=True)
    db = asyncio.run(
        db_listing.run_all(args.records, args.calls_records, args.db_repeats, args.calls_repeats)
    )
    db_listing.print_throughput(db[0], db[2])
    db_listing.print_calls(db[1])

    print("case 3: one-page windows at latency ...", flush=True)
    lat = asyncio.run(latency(args.repeats, args.delay, args.windows))
    c1, c8, base = (lat[k].median for k in ("sdk c=1", "sdk c=8", "hand-written gather"))
    print(f"3. {args.windows} windows of one page, every answer delayed {args.delay}s")
    for name, samples in lat.items():
        print(f"  {name:22s} {samples.median * 1000:8.1f} ms ({samples.spread('.4f')} s)")
    print(f"  c=8 vs c=1: {c1 / c8:.2f}x faster (target >= {SPEEDUP_FLOOR})")
    print(f"  c=8 vs hand-written gather: {base / c8:.2f}x its speed (target >= {GATHER_FLOOR})")

    print("case 4: a 24 h listing at 30 ms an answer ...", flush=True)
    slow = asyncio.run(slow_listing(args.slow_repeats))
    print(
        f"{slow.case}: SDK {slow.ours.median:,.0f} rec/s vs {slow.base.median:,.0f}, "
        f"ratio {slow.ratios.median:.3f} ({slow.ratios.spread('.3f')}), target {slow.target}"
    )

    mem = None
    if args.memory:
        print(f"case 5: memory over {args.memory:,} records ...", flush=True)
        mem = memory(args.memory)
        print(
            f"5. memory: {args.memory:,} records in one 24 h window, concurrency 8: peak RSS "
            f"+{mem['growth_mib']:.2f} MiB (target < {MEMORY_CEILING_MIB}), "
            f"{mem['seconds']:.1f} s, {args.memory / mem['seconds']:,.0f} records/s"
        )
    seconds = time.perf_counter() - began
    lines = section(db, lat, (args.delay, args.windows), slow, mem, args.memory, seconds)
    print("\n".join(lines))
    print(f"whole run {seconds:.0f} s")
    if not args.no_write:
        print(f"wrote {write_section(lines)}")


if __name__ == "__main__":
    main()
