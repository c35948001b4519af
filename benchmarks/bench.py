"""The SDK against a hand-written aiohttp + orjson client, side by side, in one run.

Run: ``python benchmarks/bench.py [--repeats N] [--no-write]`` (a script, never a test).

The emulator serves from a child process and the clients run in this one, so on the
2-core machine each has a core and the emulator's CPU does not share an event loop with
the client being measured. Each timed case runs ``--repeats`` times with the SDK and the
baseline interleaved (the order flips every repeat); the table shows medians, the spread
(min..max) and the per-pair ratio ours / baseline (as throughput where more is better):

1. list 50,000 records of one 24 h window, pages of 100: sequential and 8 in flight;
2. upload 5,000 small JPEGs, 16 in flight;
3. client CPU per 100-record page through ``MockTransport`` vs ``orjson.loads``;
4. peak RSS growth while iterating 500,000 records over 5 days (in a fresh interpreter);
5. ``import senselink_plus`` vs ``import aiohttp`` in fresh interpreters.

Then it splits one page's client CPU into steps, profiles (cProfile) the SDK side of
any case that missed its target, prints it all and writes ``benchmarks/RESULTS.md``.
A hand-written section between ``<!-- analysis:start -->`` and ``<!-- analysis:end -->``
in an existing RESULTS.md is kept, and so is the "records() paging" section that
``paging.py`` writes between ``<!-- paging:start -->`` and ``<!-- paging:end -->``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import cProfile
import gc
import hashlib
import importlib.metadata
import json
import multiprocessing
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import orjson

import senselink_plus as slp
from senselink_plus import _endpoints as ep
from senselink_plus._auth import Credentials, sign_request
from senselink_plus.testing import MockTransport

HERE = Path(__file__).resolve().parent
APP_KEY = "bench-app-key"
APP_SECRET = "bench-app-secret"
SN = "BENCH0001"
JST = timezone(timedelta(hours=9))
RECORD_PATH = "/api/v1/plus/record"
ANALYSIS_START, ANALYSIS_END = "<!-- analysis:start -->", "<!-- analysis:end -->"
#: The "records() paging" section, written by paging.py.
PAGING_START, PAGING_END = "<!-- paging:start -->", "<!-- paging:end -->"

LIST_RECORDS = 50_000
UPLOADS = 5_000
UPLOAD_IN_FLIGHT = 16
MEMORY_RECORDS = 500_000
MEMORY_DAYS = 5
MEMORY_CEILING_MIB = 2.0
CPU_PAGES = 2_000
IMPORT_RUNS = 9
PROFILE_LINES = 10
SN_OTHER = "BENCH0002"
RANGE_DAYS = 30
RANGE_RECORDS = 40_000  # over RANGE_DAYS, alternating SN and SN_OTHER
LATENCY_DELAYS = (0.0, 0.005, 0.030)
LATENCY_IN_FLIGHT = 4  # records()' default concurrency
LATENCY_UPLOADS = 800
LATENCY_FLOOR = 0.97
PLOT = "latency.png"

Window = tuple[datetime, datetime]


# --- numbers ------------------------------------------------------------------------


@dataclass
class Samples:
    """Repeated measurements of one quantity."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def spread(self, fmt: str) -> str:
        return f"{format(min(self.values), fmt)}..{format(max(self.values), fmt)}"


@dataclass
class Row:
    """One line of the table: ours, the baseline, their ratio and the target."""

    case: str
    unit: str
    ours: Samples
    base: Samples
    ratios: Samples
    target: str
    met: bool
    fmt: str = ",.0f"
    note: str = ""
    profile: list[str] = field(default_factory=list)


def paired(ours: Samples, base: Samples, *, throughput: bool) -> Samples:
    """Per-repeat ratios ours / baseline (as throughput: baseline time / our time)."""
    pairs = zip(ours.values, base.values, strict=True)
    return Samples([b / o if throughput else o / b for o, b in pairs])


def per_call_us(call: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """Median over ``repeats`` of the CPU microseconds one ``call()`` takes."""
    runs = []
    for _ in range(repeats):
        began = time.process_time()
        for _ in range(calls):
            call()
        runs.append((time.process_time() - began) / calls * 1e6)
    return statistics.median(runs)


# --- profiling the SDK side of a missed case ----------------------------------------


def _where(filename: str, line: int, name: str) -> str:
    for marker in ("senselink_plus/", "site-packages/", "python3.11/", "lib/python"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{name} ({filename}:{line})" if line else name


def summarize(profile: cProfile.Profile) -> list[str]:
    """The top functions by own time, and the SDK's own functions by inclusive time."""
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values()) or 1e-9
    by_own = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)
    lines = [
        f"cProfile (CPU time), {total:.2f} s in all; it inflates many small Python calls:",
        "",
        "| own time | share | calls | function |",
        "|---:|---:|---:|---|",
    ]
    for (filename, line, name), (_, calls, own, _cum, _) in by_own[:PROFILE_LINES]:
        lines.append(
            f"| {own:.3f} s | {own / total:.0%} | {calls:,} | `{_where(filename, line, name)}` |"
        )
    ours = [item for item in stats.items() if "senselink_plus" in item[0][0]]
    ours.sort(key=lambda item: item[1][3], reverse=True)
    lines += ["", "| inclusive | share | SDK function |", "|---:|---:|---|"]
    for (filename, line, name), (_, _calls, _own, cum, _) in ours[:PROFILE_LINES]:
        lines.append(f"| {cum:.3f} s | {cum / total:.0%} | `{_where(filename, line, name)}` |")
    return lines


async def profile_async(run: Callable[[], Awaitable[Any]]) -> list[str]:
    profile = cProfile.Profile(time.process_time)  # CPU time: waiting on the network is free
    profile.enable()
    try:
        await run()
    finally:
        profile.disable()
    return summarize(profile)


# --- the emulator in a child process ------------------------------------------------


Seed = tuple[int, datetime, timedelta, "str | list[str]"]


def _serve_emulator(conn: Connection, seeds: Sequence[Seed]) -> None:
    asyncio.run(_emulator_main(conn, seeds))


async def _emulator_main(conn: Connection, seeds: Sequence[Seed]) -> None:
    from senselink_plus.testing import Emulator

    emu = Emulator(app_key=APP_KEY, app_secret=APP_SECRET)
    # The store appends in time order; the ranges go back in the order given.
    ranges: list[range] = [range(0)] * len(seeds)
    for index in sorted(range(len(seeds)), key=lambda i: seeds[i][1]):
        n, start, span, sn = seeds[index]
        ranges[index] = emu.seed(n, start=start, span=span, sn=sn)
    async with emu:
        conn.send((emu.base_url, ranges))
        stop = asyncio.Event()

        def on_message() -> None:
            message = conn.recv()
            if message == "stop":
                stop.set()
                return
            _, seconds = message  # ("delay", seconds): every answer from now on
            emu.clear_faults()
            if seconds > 0:
                emu.delay("*", seconds, times=2**62)
            conn.send("ok")

        asyncio.get_running_loop().add_reader(conn.fileno(), on_message)
        await stop.wait()


class EmulatorProcess:
    """An `Emulator` seeded and served by a child process until `close`."""

    def __init__(self, seeds: Sequence[Seed]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve_emulator, args=(child, seeds), daemon=True)
        self._process.start()
        if not self._conn.poll(60):
            self._process.kill()
            raise RuntimeError("the emulator process did not start within 60 s")
        self.base_url, self.ranges = self._conn.recv()

    def cpu_seconds(self) -> float:
        """User + system CPU the emulator process has used so far."""
        stat = Path(f"/proc/{self._process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def set_delay(self, seconds: float) -> None:
        """Delay every answer by ``seconds`` (the emulator's delay fault); 0 for none."""
        self._conn.send(("delay", seconds))
        if not self._conn.poll(30) or self._conn.recv() != "ok":
            raise RuntimeError("the emulator process did not take the delay")

    def close(self) -> None:
        self._conn.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


# --- the baseline: what a skilled engineer writes by hand ---------------------------


def signed(params: dict[str, str]) -> dict[str, str]:
    stamp = str(int(time.time() * 1000))
    sign = hashlib.md5(f"{stamp}#{APP_SECRET}".encode(), usedforsecurity=False).hexdigest()
    return {"app_key": APP_KEY, "timestamp": stamp, "sign": sign, **params}


async def base_page(
    http: aiohttp.ClientSession, url: str, window: dict[str, str], page: int
) -> dict[str, Any]:
    query = signed({**window, "order": "1", "page": str(page), "size": "100"})
    async with http.get(url, params=query) as response:
        body = orjson.loads(await response.read())
    if body["code"] != 200:
        raise RuntimeError(f"list failed: {body}")
    data: dict[str, Any] = body["data"]
    return data


async def base_list_sequential(
    http: aiohttp.ClientSession, url: str, window: dict[str, str]
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    page = 1
    while True:
        data = await base_page(http, url, window, page)
        records.extend(data["list"])
        if not data["list"] or page * 100 >= data["total"]:
            return records
        page += 1


async def base_list_concurrent(
    http: aiohttp.ClientSession, url: str, window: dict[str, str], in_flight: int
) -> list[dict[str, Any]]:
    first = await base_page(http, url, window, 1)
    pages = -(-first["total"] // 100)
    gate = asyncio.Semaphore(in_flight)

    async def fetch(page: int) -> list[dict[str, Any]]:
        async with gate:
            data = await base_page(http, url, window, page)
        items: list[dict[str, Any]] = data["list"]
        return items

    rest = await asyncio.gather(*(fetch(page) for page in range(2, pages + 1)))
    records: list[dict[str, Any]] = list(first["list"])
    for items in rest:
        records.extend(items)
    return records


def base_upload_body(image: bytes) -> bytes:
    body = {
        "sn": SN,
        "timestamp": int(time.time()),
        "timezone": "GMT+9:00",
        "image": {"data": base64.b64encode(image).decode("ascii")},
    }
    return orjson.dumps(body)


async def base_upload(http: aiohttp.ClientSession, url: str, image: bytes) -> int:
    headers = {"content-type": "application/json"}
    async with http.post(
        url, params=signed({}), data=base_upload_body(image), headers=headers
    ) as response:
        reply = orjson.loads(await response.read())
    if reply["code"] != 200:
        raise RuntimeError(f"upload failed: {reply}")
    record_id: int = reply["data"]["record_id"]
    return record_id


async def in_flight(count: int, limit: int, call: Callable[[int], Awaitable[int]]) -> list[int]:
    """Run ``call(0..count-1)`` with ``limit`` workers; the same driver for both sides."""
    results = [0] * count
    indexes = iter(range(count))

    async def worker() -> None:
        for i in indexes:
            results[i] = await call(i)

    await asyncio.gather(*(worker() for _ in range(limit)))
    return results


# --- cases 1 and 2: over HTTP -------------------------------------------------------


def make_jpegs(count: int) -> list[bytes]:
    """Distinct small JPEG-shaped images (about 2 KB); the service checks magic bytes."""
    filler = bytes(range(256)) * 8
    head = b"\xff\xd8\xff\xfe" + (len(filler) + 10).to_bytes(2, "big")
    return [head + f"{i:08d}".encode() + filler + b"\xff\xd9" for i in range(count)]


def check_ids(ids: Sequence[int], expected: range, what: str) -> None:
    if len(ids) != len(expected) or set(ids) != set(expected):
        raise AssertionError(
            f"{what}: saw {len(ids)} ids ({len(set(ids))} distinct), expected {len(expected)}"
        )


async def interleave(
    emu: EmulatorProcess,
    repeats: int,
    ours: Callable[[], Awaitable[Any]],
    base: Callable[[], Awaitable[Any]],
    check: Callable[[str, Any], None],
) -> dict[str, Samples]:
    """Wall seconds per run of each side, and client / emulator CPU as a share of wall."""
    suffixes = ("", "_cpu", "_busy", "_emu_busy")
    out = {side + suffix: Samples() for side in ("ours", "base") for suffix in suffixes}
    for repeat in range(repeats):
        order = [("ours", ours), ("base", base)]
        for side, run in order if repeat % 2 == 0 else order[::-1]:
            gc.collect()
            cpu0, emu0, wall0 = time.process_time(), emu.cpu_seconds(), time.perf_counter()
            result = await run()
            wall = time.perf_counter() - wall0
            cpu, emu_cpu = time.process_time() - cpu0, emu.cpu_seconds() - emu0
            check(side, result)
            out[side].values.append(wall)
            out[f"{side}_cpu"].values.append(cpu)
            out[f"{side}_busy"].values.append(cpu / wall)
            out[f"{side}_emu_busy"].values.append(emu_cpu / wall)
    return out


def throughput_row(
    case: str, items: int, got: dict[str, Samples], target: str, floor: float, concurrent: bool
) -> Row:
    ratios = paired(got["ours"], got["base"], throughput=True)
    per_s = {side: Samples([items / s for s in got[side].values]) for side in ("ours", "base")}
    ours_cpu, base_cpu = got["ours_cpu"].median, got["base_cpu"].median
    note = (
        f"client CPU per run ours {ours_cpu:.2f} s vs baseline {base_cpu:.2f} s "
        f"({ours_cpu / base_cpu:.2f}x; {ours_cpu / items * 1e6:.1f} vs "
        f"{base_cpu / items * 1e6:.1f} µs per record); "
        f"CPU busy share of wall time, ours vs baseline: client "
        f"{got['ours_busy'].median:.0%} vs {got['base_busy'].median:.0%}, emulator "
        f"{got['ours_emu_busy'].median:.0%} vs {got['base_emu_busy'].median:.0%}"
    )
    if concurrent and max(got["base_busy"].median, got["base_emu_busy"].median) < 0.85:
        # With requests in flight, one of the two processes should be saturated; when
        # neither is, something else on the machine took a core: the ratio is not sound.
        note += " (WARNING: neither process was saturated; other load disturbed this case)"
    met = ratios.median >= floor
    return Row(case, "records/s", per_s["ours"], per_s["base"], ratios, target, met, note=note)


async def bench_network(emu: EmulatorProcess, window: Window, repeats: int) -> list[Row]:
    url = emu.base_url + RECORD_PATH
    t0, t1 = window
    wire = {"time_from": t0.isoformat(), "time_to": t1.isoformat()}
    expected = emu.ranges[1]
    rows = []
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
        slp.Client(APP_KEY, APP_SECRET, base_url=emu.base_url) as client,
    ):
        # Warm both: connections, code paths.
        await client.list_records(t0, t1, size=100)
        await base_page(http, url, wire, 1)

        def check(side: str, result: Any) -> None:
            if side == "ours":
                ids = [record.record_id for record in result]
            else:
                ids = [item["record_id"] for item in result]
            check_ids(ids, expected, f"listing ({side})")

        for concurrency in (1, 8):

            async def ours(concurrency: int = concurrency) -> list[slp.Record]:
                return [r async for r in client.records(t0, t1, concurrency=concurrency)]

            async def base(concurrency: int = concurrency) -> list[dict[str, Any]]:
                if concurrency == 1:
                    return await base_list_sequential(http, url, wire)
                return await base_list_concurrent(http, url, wire, concurrency)

            got = await interleave(emu, repeats, ours, base, check)
            how = "sequential" if concurrency == 1 else f"{concurrency} pages in flight"
            floor = 0.85 if concurrency == 1 else 0.95
            row = throughput_row(
                f"1. list {LIST_RECORDS:,} records, {how}",
                LIST_RECORDS,
                got,
                f">= {floor:.2f}",
                floor,
                concurrent=concurrency > 1,
            )
            if not row.met:
                row.profile = await profile_async(ours)
            rows.append(row)

        images = make_jpegs(UPLOADS)
        await client.create_record(SN, images[0])
        await base_upload(http, url, images[0])

        def check_upload(side: str, result: Any) -> None:
            if len(set(result)) != UPLOADS:
                raise AssertionError(f"upload ({side}): {len(set(result))} distinct record ids")

        async def ours_upload(i: int) -> int:
            return (await client.create_record(SN, images[i])).record_id

        async def base_upload_one(i: int) -> int:
            return await base_upload(http, url, images[i])

        async def ours_uploads() -> list[int]:
            return await in_flight(UPLOADS, UPLOAD_IN_FLIGHT, ours_upload)

        async def base_uploads() -> list[int]:
            return await in_flight(UPLOADS, UPLOAD_IN_FLIGHT, base_upload_one)

        # Every run appends 5,000 records at "now", far from the listing window; the
        # emulator's append is O(1), so each run does the same work on either side.
        got = await interleave(emu, repeats, ours_uploads, base_uploads, check_upload)
        row = throughput_row(
            f"2. upload {UPLOADS:,} JPEGs, {UPLOAD_IN_FLIGHT} in flight",
            UPLOADS,
            got,
            ">= 0.85",
            0.85,
            concurrent=True,
        )
        if not row.met:
            row.profile = await profile_async(ours_uploads)
        rows.append(row)
    return rows


# --- case 6: what users feel over a slower network ----------------------------------


async def base_walk_range(
    http: aiohttp.ClientSession, url: str, windows: Sequence[Window], sn: str, limit: int
) -> list[dict[str, Any]]:
    """Every record of ``sn`` over consecutive 24 h windows, as a hand-written client
    would walk them: every window at once, pages behind one semaphore, neighbours'
    shared boundary records dropped by id."""
    gate = asyncio.Semaphore(limit)

    async def page(wire: dict[str, str], number: int) -> dict[str, Any]:
        async with gate:
            return await base_page(http, url, wire, number)

    async def walk(window: Window) -> list[list[dict[str, Any]]]:
        wire = {"time_from": window[0].isoformat(), "time_to": window[1].isoformat(), "sn": sn}
        first = await page(wire, 1)
        rest = await asyncio.gather(
            *(page(wire, number) for number in range(2, -(-first["total"] // 100) + 1))
        )
        return [first["list"], *(data["list"] for data in rest)]

    seen: set[int] = set()
    records: list[dict[str, Any]] = []
    for chunks in await asyncio.gather(*(walk(window) for window in windows)):
        for items in chunks:
            for item in items:
                if item["record_id"] not in seen:
                    seen.add(item["record_id"])
                    records.append(item)
    return records


async def bench_latency(
    emu: EmulatorProcess, list_window: Window, range_window: Window, repeats: int
) -> tuple[list[Row], dict[str, dict[float, float]]]:
    """The three user-facing cases at each delay: rows, and their median ratios by delay."""
    url = emu.base_url + RECORD_PATH
    t0, t1 = list_window
    wire = {"time_from": t0.isoformat(), "time_to": t1.isoformat()}
    r0, r1 = range_window
    windows = slp.split_time_range(r0, r1)
    list_ids = emu.ranges[1]
    range_ids = emu.ranges[2][::2]  # the seed alternates SN (first) and SN_OTHER
    images = make_jpegs(LATENCY_UPLOADS)
    rows: list[Row] = []
    ratios: dict[str, dict[float, float]] = {}
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
        slp.Client(APP_KEY, APP_SECRET, base_url=emu.base_url) as client,
    ):
        await client.list_records(t0, t1, size=100)
        await base_page(http, url, wire, 1)

        def listing_check(expected: range, what: str) -> Callable[[str, Any], None]:
            def check(side: str, result: Any) -> None:
                if side == "ours":
                    ids = [record.record_id for record in result]
                else:
                    ids = [item["record_id"] for item in result]
                check_ids(ids, expected, f"{what} ({side})")

            return check

        def upload_check(side: str, result: Any) -> None:
            if len(set(result)) != LATENCY_UPLOADS:
                raise AssertionError(f"upload ({side}): {len(set(result))} distinct record ids")

        async def ours_list() -> list[slp.Record]:
            return [r async for r in client.records(t0, t1, concurrency=LATENCY_IN_FLIGHT)]

        async def base_list() -> list[dict[str, Any]]:
            return await base_list_concurrent(http, url, wire, LATENCY_IN_FLIGHT)

        async def ours_range() -> list[slp.Record]:
            return [r async for r in client.records(r0, r1, sn=SN, concurrency=LATENCY_IN_FLIGHT)]

        async def base_range() -> list[dict[str, Any]]:
            return await base_walk_range(http, url, windows, SN, LATENCY_IN_FLIGHT)

        async def ours_upload(i: int) -> int:
            return (await client.create_record(SN, images[i])).record_id

        async def base_upload_one(i: int) -> int:
            return await base_upload(http, url, images[i])

        async def ours_uploads() -> list[int]:
            return await in_flight(LATENCY_UPLOADS, UPLOAD_IN_FLIGHT, ours_upload)

        async def base_uploads() -> list[int]:
            return await in_flight(LATENCY_UPLOADS, UPLOAD_IN_FLIGHT, base_upload_one)

        cases = [
            (
                f"list a 24 h window ({LIST_RECORDS:,} records, {LATENCY_IN_FLIGHT} in flight)",
                LIST_RECORDS,
                ours_list,
                base_list,
                listing_check(list_ids, "24 h listing"),
            ),
            (
                f"30 days of one device ({len(range_ids):,} records, "
                f"{LATENCY_IN_FLIGHT} in flight)",
                len(range_ids),
                ours_range,
                base_range,
                listing_check(range_ids, "30-day range"),
            ),
            (
                f"upload {LATENCY_UPLOADS:,} JPEGs, {UPLOAD_IN_FLIGHT} in flight",
                LATENCY_UPLOADS,
                ours_uploads,
                base_uploads,
                upload_check,
            ),
        ]
        try:
            for delay in LATENCY_DELAYS:
                emu.set_delay(delay)
                for name, items, ours, base, check in cases:
                    got = await interleave(emu, repeats, ours, base, check)
                    floor = LATENCY_FLOOR if delay else None
                    row = throughput_row(
                        f"6. {delay * 1000:.0f} ms delay: {name}",
                        items,
                        got,
                        f">= {LATENCY_FLOOR:.2f}" if floor else "-",
                        floor if floor else 0.0,
                        concurrent=False,
                    )
                    if not row.met:
                        row.profile = await profile_async(ours)
                    rows.append(row)
                    ratios.setdefault(name, {})[delay] = row.ratios.median
        finally:
            emu.set_delay(0)
    return rows, ratios


def plot_ratios(ratios: dict[str, dict[float, float]], path: Path) -> None:
    """A small PNG of the latency cases' ratios by delay (matplotlib: `bench` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    for (name, by_delay), marker in zip(ratios.items(), "osD", strict=False):
        delays = sorted(by_delay)
        axes.plot(
            [d * 1000 for d in delays],
            [by_delay[d] for d in delays],
            marker=marker,
            label=name.split(" (")[0],
        )
    axes.axhline(1.0, color="grey", linewidth=0.8)
    axes.axhline(
        LATENCY_FLOOR,
        color="red",
        linewidth=0.8,
        linestyle="--",
        label=f"target at 5, 30 ms (>= {LATENCY_FLOOR})",
    )
    axes.set_xticks([d * 1000 for d in LATENCY_DELAYS])
    axes.set_xlabel("every answer delayed by (ms)")
    axes.set_ylabel("throughput SDK / hand-written")
    seen = [LATENCY_FLOOR, 1.0, *(r for by in ratios.values() for r in by.values())]
    axes.set_ylim(min(0.5, min(seen) - 0.05), max(seen) + 0.05)
    axes.legend(fontsize="small", loc="best")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


# --- case 3: client CPU per page, no network ----------------------------------------


async def fetch_pages(base_url: str, window: Window) -> list[bytes]:
    """Every page body of the listing window, as the emulator sends them."""
    url = base_url + RECORD_PATH
    wire = {"time_from": window[0].isoformat(), "time_to": window[1].isoformat()}
    bodies = []
    async with aiohttp.ClientSession() as http:
        for page in range(1, LIST_RECORDS // 100 + 1):
            query = signed({**wire, "order": "1", "page": str(page), "size": "100"})
            async with http.get(url, params=query) as response:
                bodies.append(await response.read())
    assert all(len(orjson.loads(body)["data"]["list"]) == 100 for body in bodies)
    return bodies


def mock_client(responses: Sequence[slp.HttpResponse]) -> tuple[slp.Client, MockTransport]:
    """A client whose transport answers page ``n`` with ``responses[n - 1]``."""

    def answer(request: slp.HttpRequest) -> slp.HttpResponse:
        return responses[int(dict(request.params)["page"]) - 1]

    mock = MockTransport(answer if len(responses) > 1 else lambda request: responses[0])
    client = slp.Client(APP_KEY, APP_SECRET, base_url="http://127.0.0.1:9", transport=mock)
    return client, mock


class ListingMock:
    """The emulator's listing of one window, answered from memory through
    MockTransport: any ``time_from``/``time_to``/``page``/``size``, as the server would
    (records() asks pages of listings that start inside the window). Each answer is
    built once and cached, so repeated runs measure the client alone."""

    def __init__(self, bodies: Sequence[bytes]) -> None:
        self.rows = [row for body in bodies for row in orjson.loads(body)["data"]["list"]]
        self.rows.sort(key=lambda row: row["record_id"])
        self.times = [row["create_at"] for row in self.rows]
        self.cache: dict[tuple[tuple[str, str], ...], slp.HttpResponse] = {}

    def answer(self, request: slp.HttpRequest) -> slp.HttpResponse:
        key = tuple(p for p in request.params if p[0] not in ("app_key", "timestamp", "sign"))
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        query = dict(key)
        lo = int(datetime.fromisoformat(query["time_from"]).timestamp() * 1000)
        hi = int(datetime.fromisoformat(query["time_to"]).timestamp() * 1000)
        first, last = bisect.bisect_left(self.times, lo), bisect.bisect_right(self.times, hi)
        rows = self.rows[first:last]
        if query.get("order") == "0":
            rows = rows[::-1]
        page, size = int(query["page"]), int(query["size"])
        chunk = rows[(page - 1) * size : page * size]
        data = {"page_num": page, "page_size": size, "total": len(rows), "list": chunk}
        body = orjson.dumps({"code": 200, "message": "OK", "data": data})
        response = self.cache[key] = json_response(body)
        return response

    def client(self) -> slp.Client:
        mock = MockTransport(self.answer)
        return slp.Client(APP_KEY, APP_SECRET, base_url="http://127.0.0.1:9", transport=mock)


def json_response(body: bytes) -> slp.HttpResponse:
    return slp.HttpResponse(200, {"content-type": "application/json"}, body)


def bench_cpu(body: bytes, window: Window, repeats: int) -> Row:
    client, mock = mock_client([json_response(body)])
    t0, t1 = window

    async def sdk_pages(n: int) -> float:
        began = time.perf_counter()
        for _ in range(n):
            await client.list_records(t0, t1, size=100)
        mock.requests.clear()
        return (time.perf_counter() - began) / n * 1e6

    def floor_pages(n: int) -> float:
        loads = orjson.loads
        began = time.perf_counter()
        for _ in range(n):
            loads(body)
        return (time.perf_counter() - began) / n * 1e6

    async def run() -> Row:
        ours, base = Samples(), Samples()
        await sdk_pages(200)
        floor_pages(200)
        for repeat in range(repeats):
            gc.collect()
            if repeat % 2:
                base.values.append(floor_pages(CPU_PAGES))
                ours.values.append(await sdk_pages(CPU_PAGES))
            else:
                ours.values.append(await sdk_pages(CPU_PAGES))
                base.values.append(floor_pages(CPU_PAGES))
        ratios = paired(ours, base, throughput=False)
        row = Row(
            "3. client CPU per 100-record page",
            "µs/page",
            ours,
            base,
            ratios,
            "<= 2.0x",
            ratios.median <= 2.0,
            fmt=",.1f",
            note="`client.list_records` through MockTransport vs `orjson.loads` of the body",
        )
        if not row.met:
            row.profile = await profile_async(lambda: sdk_pages(CPU_PAGES))
        await client.aclose()
        return row

    return asyncio.run(run())


# --- where one page's client CPU goes -----------------------------------------------


async def breakdown(emu: EmulatorProcess, window: Window, bodies: Sequence[bytes]) -> list[str]:
    """Client CPU per page (and per upload), step by step: µs, median of 5 runs."""
    base_url = "http://127.0.0.1:9"
    body = bodies[0]
    response = json_response(body)
    credentials = Credentials(APP_KEY, APP_SECRET)
    request = ep.build_list_records(base_url, *window, size=100)
    image = make_jpegs(1)[0]
    now = datetime.now(JST)
    steps: list[tuple[str, float]] = [
        ("orjson.loads of one page (the floor)", per_call_us(lambda: orjson.loads(body), 1000)),
        (
            "SDK parse_record_page: envelope + 100 `Record`s",
            per_call_us(lambda: ep.parse_record_page(response, request), 1000),
        ),
        (
            "SDK build_list_records + sign_request",
            per_call_us(
                lambda: sign_request(
                    ep.build_list_records(base_url, *window, size=100), credentials, 1
                ),
                1000,
            ),
        ),
    ]

    # The pager's own cost: records() against list_records over the same 500 pages.
    responses = [json_response(b) for b in bodies]
    listing = ListingMock(bodies)

    async def list_loop() -> None:
        client, _ = mock_client(responses)
        for page in range(1, len(responses) + 1):
            await client.list_records(*window, page=page, size=100)

    async def pager(concurrency: int) -> None:
        client = listing.client()
        count = 0
        async for _ in client.records(*window, concurrency=concurrency):
            count += 1
        assert count == LIST_RECORDS

    async def per_page(run: Callable[[], Awaitable[None]]) -> float:
        runs = []
        for _ in range(5):
            began = time.process_time()
            await run()
            runs.append((time.process_time() - began) / len(responses) * 1e6)
        return statistics.median(runs)

    loop_us = await per_page(list_loop)
    steps.append(("SDK list_records, whole call, MockTransport", loop_us))
    steps.append(
        ("SDK records(concurrency=1) per page, MockTransport", await per_page(lambda: pager(1)))
    )
    steps.append(
        ("SDK records(concurrency=8) per page, MockTransport", await per_page(lambda: pager(8)))
    )

    # The transport's own cost: one GET of a page over HTTP, without parsing.
    url = emu.base_url + RECORD_PATH
    wire = {"time_from": window[0].isoformat(), "time_to": window[1].isoformat()}
    live = ep.build_list_records(emu.base_url, *window, size=100)
    transport = slp.AiohttpTransport()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:

        async def raw_get() -> None:
            query = signed({**wire, "order": "1", "page": "1", "size": "100"})
            async with http.get(url, params=query) as reply:
                await reply.read()

        async def sdk_send() -> None:
            await transport.send(sign_request(live, credentials, int(time.time() * 1000)))

        http_us: dict[str, Samples] = {"raw": Samples(), "sdk": Samples()}
        for _ in range(5):
            for key, call in (("raw", raw_get), ("sdk", sdk_send)):
                began = time.process_time()
                for _ in range(200):
                    await call()
                http_us[key].values.append((time.process_time() - began) / 200 * 1e6)
    await transport.aclose()
    steps.append(("aiohttp GET + read of one page (the baseline's HTTP)", http_us["raw"].median))
    steps.append(("SDK AiohttpTransport.send of one page", http_us["sdk"].median))
    steps.append(
        (
            "hand-written upload body (base64 + orjson)",
            per_call_us(lambda: base_upload_body(image), 2000),
        )
    )
    steps.append(
        (
            "SDK build_create_record",
            per_call_us(lambda: ep.build_create_record(base_url, SN, image, now=now), 2000),
        )
    )
    return ["| step | client CPU µs |", "|---|---:|"] + [
        f"| {name} | {us:,.1f} |" for name, us in steps
    ]


# --- case 4: memory, in a fresh interpreter -----------------------------------------


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the peak covers the walk alone."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


async def _memory_child(base_url: str, start: str, end: str, first: int, count: int) -> None:
    t0, t1 = datetime.fromisoformat(start), datetime.fromisoformat(end)
    async with slp.Client(APP_KEY, APP_SECRET, base_url=base_url) as client:
        await client.list_records(t0, t0 + timedelta(hours=1), size=100)  # warm the session
        gc.collect()
        reset_peak()
        rss0 = _status_kib("VmRSS")
        seen, last, hwm_first_day = 0, first - 1, 0
        began = time.perf_counter()
        async for record in client.records(t0, t1, concurrency=8):
            # Exactly once, without a set that would itself grow: ascending and dense.
            if record.record_id != last + 1:
                raise AssertionError(f"record {record.record_id} after {last}")
            last = record.record_id
            seen += 1
            if seen == count // MEMORY_DAYS:
                hwm_first_day = _status_kib("VmHWM")
        elapsed = time.perf_counter() - began
    if seen != count:
        raise AssertionError(f"saw {seen} records, expected {count}")
    result = {"rss0": rss0, "hwm_day1": hwm_first_day, "hwm_end": _status_kib("VmHWM")}
    print(json.dumps({**result, "seconds": elapsed}))


def bench_memory(emu: EmulatorProcess, window: Window) -> Row:
    ids = emu.ranges[0]
    command = [
        sys.executable,
        __file__,
        "--memory-child",
        emu.base_url,
        window[0].isoformat(),
        window[1].isoformat(),
        str(ids.start),
        str(len(ids)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed:\n{done.stderr}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    growth = (got["hwm_end"] - got["rss0"]) / 1024
    day1 = (got["hwm_day1"] - got["rss0"]) / 1024
    note = (
        f"peak RSS over the RSS before the walk: +{day1:.1f} MiB after the first day "
        f"({MEMORY_RECORDS // MEMORY_DAYS:,} records), +{growth:.1f} MiB after all "
        f"{MEMORY_DAYS} days, so it does not grow with the range; the walk (concurrency 8) "
        f"took {got['seconds']:.1f} s, {MEMORY_RECORDS / got['seconds']:,.0f} records/s"
    )
    return Row(
        f"4. peak RSS growth, {MEMORY_RECORDS:,} records over {MEMORY_DAYS} days",
        "MiB",
        Samples([growth]),
        Samples([]),
        Samples([]),
        f"< {MEMORY_CEILING_MIB:.0f} MiB",
        growth < MEMORY_CEILING_MIB,
        fmt=".1f",
        note=note,
    )


# --- case 5: import time, in fresh interpreters -------------------------------------


def import_ms(module: str, env: dict[str, str]) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return float(done.stdout) * 1000


def bench_import(runs: int) -> Row:
    with tempfile.TemporaryDirectory(prefix="bench-pyc-") as cache:
        # Both imports read bytecode from one fresh cache, filled by the first run of each
        # (PYTHONDONTWRITEBYTECODE would otherwise make only our source compile each time).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        import_ms("senselink_plus", env)
        import_ms("aiohttp", env)
        ours, base = Samples(), Samples()
        for repeat in range(runs):
            for module, samples in (("senselink_plus", ours), ("aiohttp", base))[
                :: 1 if repeat % 2 == 0 else -1
            ]:
                samples.values.append(import_ms(module, env))
    ratios = paired(ours, base, throughput=False)
    return Row(
        "5. import time (senselink_plus vs aiohttp)",
        "ms",
        ours,
        base,
        ratios,
        "<= 1.15x",
        ratios.median <= 1.15,
        fmt=".1f",
        note="fresh interpreters, warm bytecode cache; senselink_plus imports aiohttp itself",
    )


# --- the report ---------------------------------------------------------------------


def table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| case | unit | ours: median (min..max) | baseline: median (min..max) "
        "| ratio ours/baseline: median (min..max) | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ours = format(row.ours.median, row.fmt)
        if len(row.ours.values) > 1:
            ours += f" ({row.ours.spread(row.fmt)})"
        base = "-"
        if row.base.values:
            base = f"{format(row.base.median, row.fmt)} ({row.base.spread(row.fmt)})"
        ratio = "-"
        if row.ratios.values:
            ratio = f"{row.ratios.median:.3f} ({row.ratios.spread('.2f')})"
        met = "yes" if row.met else "**NO**"
        lines.append(
            f"| {row.case} | {row.unit} | {ours} | {base} | {ratio} | {row.target} | {met} |"
        )
    return lines


def machine(load: tuple[str, str], seconds: float) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
        platform.processor() or "unknown",
    )
    names = ("aiohttp", "orjson", "attrs", "cattrs", "senselink-plus")
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in names)
    return [
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Machine: nproc {len(os.sched_getaffinity(0))}, {model}, "
        f"{platform.system()} {platform.release()}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()})",
        f"- Packages: {versions}",
        f"- Load average (1, 5, 15 min) at start: {load[0]}; at end: {load[1]} "
        "(other processes on the machine add noise; interleaving spreads it over both sides)",
        f"- Whole run: {seconds:.0f} s",
    ]


def kept_section(path: Path, start: str, end: str) -> list[str]:
    """A section of an earlier RESULTS.md this script does not write (the hand-written
    analysis, paging.py's section), if any."""
    if not path.exists():
        return []
    text = path.read_text()
    if start not in text or end not in text:
        return []
    inner = text.split(start, 1)[1].split(end, 1)[0]
    return [start, *inner.strip("\n").splitlines(), end, ""]


def write_results(
    rows: Sequence[Row], steps: Sequence[str], load: tuple[str, str], seconds: float
) -> Path:
    path = HERE / "RESULTS.md"
    missed = [row for row in rows if not row.met]
    lines = [
        "# Benchmark results",
        "",
        f"![throughput SDK / hand-written with every answer delayed 0, 5 and 30 ms]({PLOT})",
        "",
        "What users feel: the SDK's throughput over the hand-written client's (1.0 = as",
        "fast) for a 24 h listing, a 30-day range of one device and uploads, with the",
        "emulator's every answer delayed by 0, 5 and 30 ms (case 6 below).",
        "",
        *table(rows),
        "",
        "Generated by `python benchmarks/bench.py`. The SDK against a",
        "hand-written aiohttp + orjson client (one `ClientSession`, reused connections,",
        "orjson, a fresh md5 sign per request, records kept as dicts) on the same emulator,",
        "which serves from a separate process. SDK and baseline runs are interleaved; ratios",
        "are per pair: throughput ours / baseline for cases 1, 2 and 6 (higher is better),",
        "cost ours / baseline for cases 3 and 5 (lower is better). Case 6 uses `records()`'",
        f"default concurrency ({LATENCY_IN_FLIGHT}) and the same number of pages in flight by",
        "hand; its hand-written 30-day walk asks every window at once and drops the records",
        "neighbouring windows share.",
        "",
        f"Targets met: {len(rows) - len(missed)} of {len(rows)}."
        + (" Missed: " + "; ".join(row.case for row in missed) + "." if missed else ""),
        "",
        *kept_section(path, PAGING_START, PAGING_END),
        "## Targets (the first round's in brackets)",
        "",
        "- (1) listing throughput ratio >= 0.85 sequential, >= 0.95 with 8 in flight (0.90)",
        "- (2) upload throughput ratio, 16 in flight, >= 0.85 (0.95)",
        "- (3) client CPU per 100-record page <= 2x `orjson.loads` of that page (3x)",
        f"- (4) peak RSS growth under {MEMORY_CEILING_MIB:.0f} MiB for 500,000 records "
        "(50 MiB), not growing with the range",
        "- (5) import time <= 1.15x `import aiohttp` (1.3x)",
        f"- (6) with every answer delayed 5 or 30 ms, every ratio >= {LATENCY_FLOOR:.2f}",
        "",
        "## Notes per case",
        "",
        *(f"- {row.case}: {row.note}" for row in rows if row.note),
        "",
        "## Where the client CPU goes",
        "",
        "Per 100-record page (per upload for the last two lines), measured step by step:",
        "",
        *steps,
        "",
    ]
    for row in missed:
        lines += [f"## Missed: {row.case}", "", "The SDK side of this case, profiled:", ""]
        lines += [*row.profile, ""]
    lines += kept_section(path, ANALYSIS_START, ANALYSIS_END)
    lines += ["## Machine", "", *machine(load, seconds), ""]
    path.write_text("\n".join(lines))
    return path


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs per timed case (default 7)")
    parser.add_argument(
        "--latency-repeats", type=int, default=3, help="runs per delayed case (default 3)"
    )
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--memory-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        url, start, end, first, count = args.memory_child
        asyncio.run(_memory_child(url, start, end, int(first), int(count)))
        return

    began = time.perf_counter()
    load_start = loadavg()
    today = datetime.now(JST).replace(hour=0, minute=0, second=0, microsecond=0)
    memory_window = (today - timedelta(days=8), today - timedelta(days=8 - MEMORY_DAYS))
    list_window = (today - timedelta(days=2), today - timedelta(days=1))
    range_window = (today - timedelta(days=12 + RANGE_DAYS), today - timedelta(days=12))
    seeds: list[Seed] = [
        (MEMORY_RECORDS, memory_window[0], memory_window[1] - memory_window[0], SN),
        (LIST_RECORDS, list_window[0], timedelta(hours=23), SN),
        (RANGE_RECORDS, range_window[0], timedelta(days=RANGE_DAYS), [SN, SN_OTHER]),
    ]
    total = MEMORY_RECORDS + LIST_RECORDS + RANGE_RECORDS
    print(f"starting the emulator process ({total:,} records) ...")
    emu = EmulatorProcess(seeds)
    try:
        print("cases 1-2: listing and uploads over HTTP ...")
        rows = asyncio.run(bench_network(emu, list_window, args.repeats))
        print("case 3: client CPU per page ...")
        bodies = asyncio.run(fetch_pages(emu.base_url, list_window))
        rows.append(bench_cpu(bodies[0], list_window, args.repeats))
        print("breakdown of the client CPU ...")
        steps = asyncio.run(breakdown(emu, list_window, bodies))
        print(f"case 4: memory over {MEMORY_RECORDS:,} records ...")
        rows.append(bench_memory(emu, memory_window))
        print("case 6: latency (every answer delayed 0, 5 and 30 ms) ...")
        latency_rows, ratios = asyncio.run(
            bench_latency(emu, list_window, range_window, args.latency_repeats)
        )
    finally:
        emu.close()
    print("case 5: import time ...")
    rows.append(bench_import(IMPORT_RUNS))
    rows += latency_rows
    seconds = time.perf_counter() - began

    print()
    print("\n".join(table(rows)))
    print()
    for row in rows:
        print(f"{row.case}: {row.note}")
    print()
    print("\n".join(steps))
    for row in rows:
        if row.profile:
            print(f"\nmissed: {row.case}\n" + "\n".join(row.profile))
    print(f"\nload average at start {load_start}, at end {loadavg()}; whole run {seconds:.0f} s")
    if not args.no_write:
        plot_ratios(ratios, HERE / PLOT)
        path = write_results(rows, steps, (load_start, loadavg()), seconds)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
