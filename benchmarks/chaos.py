"""Chaos runs: ingestion and uploads while the emulator fails a share of requests at random.

    python benchmarks/chaos.py            # full size; prints figures for docs/RELIABILITY.md

The scenarios live in `senselink_plus.testing.chaos`; tests/test_reliability.py runs
them at a smaller size.
"""

from __future__ import annotations

import asyncio

from senselink_plus.testing.chaos import chaos_records, chaos_uploads, chaos_watch, report


async def main() -> None:
    for run in (chaos_records(), chaos_watch(), chaos_uploads()):
        print(report(await run), end="\n\n", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
