"""A listing served from a real database the way page/size APIs usually are: a script.

Run: ``python benchmarks/db_listing.py [--repeats N] [--records N] [--calls-records N]``
(a script that measures and prints, never a test; `paging.py` runs the same cases and
writes them into RESULTS.md).

The server is a small ``aiohttp.web`` app in a child process that speaks the list
endpoint (``GET /api/v1/plus/record``: ``time_from``/``time_to`` ISO-8601 with offset,
``order`` 0/1, ``page``, ``size``, optional ``sn``; the auth parameters are ignored)
from stdlib ``sqlite3``, answering every call the usual way::

    SELECT count(*) FROM record WHERE create_at BETWEEN ? AND ?
    SELECT ... FROM record WHERE create_at BETWEEN ? AND ?
        ORDER BY record_id LIMIT size OFFSET (page - 1) * size

(``create_at`` in ms; ``time_from * 1000 <= create_at <= time_to * 1000``). So a deep
``page`` costs the database ``OFFSET`` rows and every ``count(*)`` the rows of its
window. The server counts the list calls it answers and the deepest ``page`` asked
(``GET /_bench/stats``, loopback only).

1. Throughput over 100,000 records in one 24 h window: ``client.records()`` at
   concurrency 1 and 8 against a hand-written page-number client (page 1 to learn
   ``total``, then pages 2..N; sequential, and 8 in flight behind a semaphore),
   interleaved. Targets: the SDK >= 3x the hand-written throughput both ways; the
   deepest ``page`` the SDK asks <= concurrency + 1.
2. List calls per window: 24 h, evenly spaced records and Poisson arrivals at the same
   rate, page size 100, concurrency 1, 2, 4, 8: calls / ceil(N / 100). Targets: <= 1.15
   even, <= 1.25 Poisson, at every concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import multiprocessing
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (the hand-written client and the shared helpers)

import senselink_plus as slp  # noqa: E402

APP_KEY, APP_SECRET, SN = bench.APP_KEY, bench.APP_SECRET, bench.SN
RECORD_PATH = bench.RECORD_PATH
STATS_PATH = "/_bench/stats"
DAY = timedelta(hours=24)
MAX_SIZE = 100

THROUGHPUT_RECORDS = 100_000
CALLS_RECORDS = 20_000
CALLS_CONCURRENCY = (1, 2, 4, 8)
#: Page sizes of case 2: the default, and small pages (slices of them are longer).
CALLS_PAGE_SIZES = (100, 10)
POISSON_SEED = 20_261_129
THROUGHPUT_FLOOR = 3.0
EVEN_CEILING, POISSON_CEILING = 1.15, 1.25

# --- the data -----------------------------------------------------------------------


def even_times(start_ms: int, span_ms: int, count: int) -> list[int]:
    """``count`` create_at values spread evenly over ``[start_ms, start_ms + span_ms]``."""
    last = max(count - 1, 1)
    return [start_ms + span_ms * i // last for i in range(count)]


def poisson_times(start_ms: int, span_ms: int, rate_per_ms: float, seed: int) -> list[int]:
    """Arrivals of a Poisson process of ``rate_per_ms`` over the span (ms, sorted)."""
    rng = random.Random(seed)
    times: list[int] = []
    now = float(start_ms)
    while True:
        now += rng.expovariate(rate_per_ms)
        if now > start_ms + span_ms:
            return times
        times.append(int(now))


@dataclass(frozen=True)
class DataSet:
    """Records of one device in ``[start, start + 24 h]``, stored in time order."""

    name: str
    start: datetime
    times_ms: list[int]

    @property
    def window(self) -> tuple[datetime, datetime]:
        return self.start, self.start + DAY


def create_db(sets: Sequence[DataSet]) -> sqlite3.Connection:
    """An in-memory table of every set's records: ids ascend with ``create_at``."""
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute(
        "CREATE TABLE record (record_id INTEGER PRIMARY KEY, sn TEXT NOT NULL,"
        " image_id TEXT NOT NULL, user_id INTEGER, verify_score REAL,"
        " device_timestamp INTEGER, timezone TEXT, create_at INTEGER NOT NULL, extend TEXT)"
    )
    db.execute("CREATE INDEX record_create_at ON record (create_at)")
    db.execute("CREATE INDEX record_sn_create_at ON record (sn, create_at)")
    record_id = 1_000_000
    for data in sorted(sets, key=lambda d: d.start):
        rows = []
        for created in data.times_ms:
            user = (record_id % 10) + 1 if record_id % 3 == 0 else None
            score = 0.93 if user else 0.31
            image_id = f"{created // 1000:08x}a1b2c3{record_id:010x}"
            rows.append(
                (record_id, SN, image_id, user, score, created // 1000, "GMT+9:00", created)
            )
            record_id += 1
        db.executemany(
            "INSERT INTO record (record_id, sn, image_id, user_id, verify_score,"
            " device_timestamp, timezone, create_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    db.commit()
    db.execute("ANALYZE")
    return db


# --- the server ---------------------------------------------------------------------

COLUMNS = (
    "record_id, sn, image_id, user_id, verify_score, device_timestamp, timezone, create_at, extend"
)
FIELDS = tuple(name.strip() for name in COLUMNS.split(","))


class Listing:
    """The list endpoint over one SQLite table, and what it was asked."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.calls = 0
        self.max_page = 0
        self.db_seconds = 0.0

    def _error(self, desc: str) -> web.Response:
        body = {"code": 30001, "message": "Invalid parameter", "desc": desc}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def list_records(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            start = datetime.fromisoformat(query["time_from"])
            end = datetime.fromisoformat(query["time_to"])
            page = int(query.get("page", "1"))
            size = int(query.get("size", "20"))
            order = query.get("order", "0")
        except (KeyError, ValueError) as error:
            return self._error(f"bad parameter: {error}")
        if start.utcoffset() is None or end.utcoffset() is None:
            return self._error("times need an offset")
        if not timedelta(0) <= end - start <= DAY:
            return self._error("the window must be 0..24 h")
        if page < 1 or not 1 <= size <= MAX_SIZE or order not in ("0", "1"):
            return self._error("page >= 1, size 1..100, order 0 or 1")
        self.calls += 1
        self.max_page = max(self.max_page, page)
        where = "create_at BETWEEN ? AND ?"
        args: list[Any] = [int(start.timestamp()) * 1000, int(end.timestamp()) * 1000]
        if "sn" in query:
            where += " AND sn = ?"
            args.append(query["sn"])
        direction = "ASC" if order == "1" else "DESC"
        began = time.perf_counter()
        (total,) = self.db.execute(f"SELECT count(*) FROM record WHERE {where}", args).fetchone()
        rows = self.db.execute(
            f"SELECT {COLUMNS} FROM record WHERE {where} ORDER BY record_id {direction}"
            " LIMIT ? OFFSET ?",
            [*args, size, (page - 1) * size],
        ).fetchall()
        self.db_seconds += time.perf_counter() - began
        data = {
            "page_num": page,
            "page_size": size,
            "total": total,
            "list": [dict(zip(FIELDS, row, strict=True)) for row in rows],
        }
        body = orjson.dumps({"code": 200, "message": "OK", "data": data})
        return web.Response(body=body, content_type="application/json")

    async def stats(self, request: web.Request) -> web.Response:
        body = {"calls": self.calls, "max_page": self.max_page, "db_seconds": self.db_seconds}
        if request.query.get("reset") == "1":
            self.calls, self.max_page, self.db_seconds = 0, 0, 0.0
        return web.Response(body=orjson.dumps(body), content_type="application/json")


def _serve(conn: Connection, sets: Sequence[DataSet]) -> None:
    asyncio.run(_serve_main(conn, sets))


async def _serve_main(conn: Connection, sets: Sequence[DataSet]) -> None:
    listing = Listing(create_db(sets))
    app = web.Application()
    app.router.add_get(RECORD_PATH, listing.list_records)
    app.router.add_get(STATS_PATH, listing.stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    conn.send(f"http://127.0.0.1:{port}")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_reader(conn.fileno(), stop.set)
    await stop.wait()
    await runner.cleanup()


class DbListingProcess:
    """The SQLite-backed list endpoint, served by a child process until `close`."""

    def __init__(self, sets: Sequence[DataSet]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child, sets), daemon=True)
        self._process.start()
        if not self._conn.poll(120):
            self._process.kill()
            raise RuntimeError("the database server did not start within 120 s")
        self.base_url: str = self._conn.recv()

    def close(self) -> None:
        self._conn.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


async def server_stats(http: aiohttp.ClientSession, base_url: str) -> dict[str, Any]:
    """What the server was asked since the last call (and reset it)."""
    async with http.get(base_url + STATS_PATH, params={"reset": "1"}) as response:
        stats: dict[str, Any] = orjson.loads(await response.read())
    return stats


# --- the cases ----------------------------------------------------------------------


def data_sets(throughput: int, calls: int) -> dict[str, DataSet]:
    """Three days of one device, a day apart: 24 h windows that share no record."""
    today = datetime.now(bench.JST).replace(hour=0, minute=0, second=0, microsecond=0)
    starts = [today - timedelta(days=d) for d in (7, 5, 3)]
    span_ms = (DAY - timedelta(minutes=1)) // timedelta(milliseconds=1)

    def ms(moment: datetime) -> int:
        return int(moment.timestamp()) * 1000 + 30_000  # 30 s in: inside the window

    even_rate = calls / span_ms
    return {
        "throughput": DataSet(
            "throughput", starts[0], even_times(ms(starts[0]), span_ms, throughput)
        ),
        "even": DataSet("even", starts[1], even_times(ms(starts[1]), span_ms, calls)),
        "poisson": DataSet(
            "poisson", starts[2], poisson_times(ms(starts[2]), span_ms, even_rate, POISSON_SEED)
        ),
    }


@dataclass
class ThroughputResult:
    """One concurrency of case 1: records/s per repeat, and the SDK's deepest page."""

    concurrency: int
    ours: bench.Samples
    base: bench.Samples
    ratios: bench.Samples
    ours_calls: int
    base_calls: int
    ours_max_page: int
    base_max_page: int
    ours_db_s: float
    base_db_s: float


async def throughput(
    server: DbListingProcess, data: DataSet, repeats: int
) -> list[ThroughputResult]:
    """Case 1: ``records()`` against the hand-written page-number client, interleaved."""
    t0, t1 = data.window
    wire = {"time_from": t0.isoformat(), "time_to": t1.isoformat()}
    url = server.base_url + RECORD_PATH
    count = len(data.times_ms)
    results = []
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
        slp.Client(APP_KEY, APP_SECRET, base_url=server.base_url) as client,
    ):
        await client.list_records(t0, t1, size=100)
        await bench.base_page(http, url, wire, 1)
        for concurrency in (1, 8):

            async def ours(concurrency: int = concurrency) -> list[int]:
                return [r.record_id async for r in client.records(t0, t1, concurrency=concurrency)]

            async def base(concurrency: int = concurrency) -> list[int]:
                if concurrency == 1:
                    items = await bench.base_list_sequential(http, url, wire)
                else:
                    items = await bench.base_list_concurrent(http, url, wire, concurrency)
                return [item["record_id"] for item in items]

            times: dict[str, list[float]] = {"ours": [], "base": []}
            calls: dict[str, list[int]] = {"ours": [], "base": []}
            pages: dict[str, int] = {"ours": 0, "base": 0}
            db_s: dict[str, list[float]] = {"ours": [], "base": []}
            await server_stats(http, server.base_url)
            for repeat in range(repeats):
                order = [("ours", ours), ("base", base)]
                for side, run in order if repeat % 2 == 0 else order[::-1]:
                    began = time.perf_counter()
                    ids = await run()
                    times[side].append(time.perf_counter() - began)
                    stats = await server_stats(http, server.base_url)
                    if len(ids) != count or len(set(ids)) != count or ids != sorted(ids):
                        raise AssertionError(
                            f"{side} c={concurrency}: {len(ids)} ids ({len(set(ids))} "
                            f"distinct), expected {count} in ascending order"
                        )
                    calls[side].append(stats["calls"])
                    pages[side] = max(pages[side], stats["max_page"])
                    db_s[side].append(stats["db_seconds"])
            per_s = {side: bench.Samples([count / s for s in times[side]]) for side in times}
            results.append(
                ThroughputResult(
                    concurrency,
                    per_s["ours"],
                    per_s["base"],
                    bench.paired(
                        bench.Samples(times["ours"]), bench.Samples(times["base"]), throughput=True
                    ),
                    max(calls["ours"]),
                    max(calls["base"]),
                    pages["ours"],
                    pages["base"],
                    statistics.median(db_s["ours"]),
                    statistics.median(db_s["base"]),
                )
            )
    return results


@dataclass
class CallsResult:
    """One data set at one concurrency (case 2): list calls per run, and the least."""

    name: str
    records: int
    page_size: int
    concurrency: int
    calls: list[int]

    @property
    def least(self) -> int:
        return math.ceil(self.records / self.page_size)

    @property
    def ratio(self) -> float:
        return max(self.calls) / self.least


async def calls_per_window(
    server: DbListingProcess, sets: Sequence[DataSet], repeats: int
) -> list[CallsResult]:
    """Case 2: the list calls ``records()`` makes for one 24 h window, counted at the server.
    Calls depend little on timing: small pages (many calls) run once."""
    results = []
    async with (
        aiohttp.ClientSession() as http,
        slp.Client(APP_KEY, APP_SECRET, base_url=server.base_url) as client,
    ):
        for data, size, concurrency in itertools.product(sets, CALLS_PAGE_SIZES, CALLS_CONCURRENCY):
            t0, t1 = data.window
            result = CallsResult(data.name, len(data.times_ms), size, concurrency, [])
            for _ in range(repeats if size == 100 else 1):
                await server_stats(http, server.base_url)
                ids = [
                    r.record_id
                    async for r in client.records(t0, t1, page_size=size, concurrency=concurrency)
                ]
                stats = await server_stats(http, server.base_url)
                if len(ids) != result.records or len(set(ids)) != len(ids):
                    raise AssertionError(
                        f"{data.name} size={size} c={concurrency}: {len(ids)} ids "
                        f"({len(set(ids))} distinct), expected {result.records}"
                    )
                result.calls.append(stats["calls"])
            results.append(result)
    return results


def print_throughput(results: Sequence[ThroughputResult], count: int) -> None:
    print(f"1. {count:,} records in one 24 h window, served from SQLite by page/size:")
    for r in results:
        how = "sequential" if r.concurrency == 1 else f"{r.concurrency} in flight"
        print(
            f"  {how:12s} SDK {r.ours.median:9,.0f} rec/s ({r.ours.spread(',.0f')})  "
            f"hand-written {r.base.median:9,.0f} ({r.base.spread(',.0f')})  "
            f"ratio {r.ratios.median:.2f}x ({r.ratios.spread('.2f')}; target >= "
            f"{THROUGHPUT_FLOOR})"
        )
        print(
            f"  {'':12s} calls SDK {r.ours_calls} vs {r.base_calls}; deepest page SDK "
            f"{r.ours_max_page} (target <= {r.concurrency + 1}) vs {r.base_max_page}; "
            f"database time per run {r.ours_db_s:.2f} s vs {r.base_db_s:.2f} s"
        )


def print_calls(results: Sequence[CallsResult]) -> None:
    print("2. list calls per 24 h window (calls / ceil(N / page size)):")
    for r in results:
        ceiling = EVEN_CEILING if r.name == "even" else POISSON_CEILING
        print(
            f"  {r.name:8s} N={r.records:,} size={r.page_size} c={r.concurrency}: calls {r.calls} "
            f"-> {r.ratio:.3f} (target <= {ceiling})"
        )


async def run_all(
    throughput_records: int, calls_records: int, repeats: int, calls_repeats: int
) -> tuple[list[ThroughputResult], list[CallsResult], int]:
    sets = data_sets(throughput_records, calls_records)
    server = DbListingProcess(list(sets.values()))
    try:
        got = await throughput(server, sets["throughput"], repeats)
        calls = await calls_per_window(server, [sets["even"], sets["poisson"]], calls_repeats)
    finally:
        server.close()
    return got, calls, len(sets["throughput"].times_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls-repeats", type=int, default=3)
    parser.add_argument("--records", type=int, default=THROUGHPUT_RECORDS)
    parser.add_argument("--calls-records", type=int, default=CALLS_RECORDS)
    args = parser.parse_args()
    got, calls, count = asyncio.run(
        run_all(args.records, args.calls_records, args.repeats, args.calls_repeats)
    )
    print_throughput(got, count)
    print_calls(calls)


if __name__ == "__main__":
    main()
