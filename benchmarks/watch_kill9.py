"""kill -9 a watching service at random points while a backlog drains and records
keep arriving; report what was lost and what came twice.

    python benchmarks/watch_kill9.py [--backlog 20000] [--rate 50] [--kills 20]

The emulator runs here (real clock); a child process watches it with a file
checkpoint and prints each record id once it has handled it (the print is the
handling). The child is killed with SIGKILL at random moments, restarted, and at the
end stopped with SIGTERM (watch.stop()) once the writer has stopped and it has caught
up. After each kill the checkpoint's watermark says what was saved: a record at or
below it delivered again would be a broken promise; one above it (handled, not yet
saved: saves are coalesced to one a page or a second) is the documented repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
from collections import Counter
from datetime import datetime, timedelta, timezone

import orjson

from senselink_plus.testing import Emulator

CHILD = """
import asyncio, signal, sys
import senselink_plus as slp

async def main(base_url, path, since):
    async with slp.Client(base_url=base_url) as client:
        async with client.watch(checkpoint=path, since=since, poll_interval=0.2) as watch:
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


def _watermark(path: str) -> int:
    try:
        with open(path, "rb") as handle:
            state = orjson.loads(handle.read())
    except FileNotFoundError:
        return -1
    mark = state.get("watermark")
    return -1 if mark is None else int(mark)


async def run(backlog: int, rate: float, kills: int, seed: int) -> dict[str, object]:
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
        with tempfile.TemporaryDirectory() as scratch:
            path = os.path.join(scratch, "state.json")
            runs: list[list[int]] = []
            saved_at_kill: list[int] = []
            violations = 0
            allowed = 0
            for n in range(kills + 1):
                if n == kills:
                    writing = False
                    await write_task
                printed: list[int] = []
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    CHILD,
                    emu.base_url,
                    path,
                    since,
                    stdout=asyncio.subprocess.PIPE,
                    env=env,
                )
                reading = asyncio.create_task(_reader(proc, printed))
                if n < kills:
                    await asyncio.sleep(rng.uniform(0.3, 2.5))
                    proc.send_signal(signal.SIGKILL)
                else:
                    # Polling the child's progress (its output), not waiting on a peer.
                    while not set(stored) <= set().union(*runs, printed):  # noqa: ASYNC110
                        await asyncio.sleep(0.1)
                    proc.send_signal(signal.SIGTERM)
                code = await proc.wait()
                await reading
                mark = _watermark(path)
                if n < kills:
                    saved_at_kill.append(mark)
                later_runs = runs  # what this run repeats from the earlier ones
                seen_before = Counter(i for r in later_runs for i in r)
                for rid in printed:
                    if seen_before[rid]:
                        earlier_mark = saved_at_kill[n - 1] if n else -1
                        if rid <= earlier_mark:
                            violations += 1
                        else:
                            allowed += 1
                runs.append(printed)
                last_code = code
        handled = Counter(i for r in runs for i in r)
        lost = [i for i in stored if i not in handled]
        return {
            "stored": len(stored),
            "kills": kills,
            "lost": len(lost),
            "delivered_twice_or_more": sum(1 for c in handled.values() if c > 1),
            "repeats_at_or_below_the_saved_watermark": violations,
            "repeats_of_handled_but_unsaved_records": allowed,
            "order_ok_within_each_run": all(r == sorted(r) for r in runs),
            "final_exit_code_after_sigterm": last_code,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = asyncio.run(run(args.backlog, args.rate, args.kills, args.seed))
    for name, value in result.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
