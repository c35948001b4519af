"""Chaos: every record exactly once and no misreported upload while 20% of requests fail.

The scenarios live in `senselink_plus.testing.chaos`; benchmarks/chaos.py runs them at
full size with realistic delays and prints the figures for docs/RELIABILITY.md; here
they run with short delays.
"""

from __future__ import annotations

import pytest

from senselink_plus.testing import chaos

FAST = {"delay": (0.0005, 0.002), "sleep_cap": 0.0005}


@pytest.mark.parametrize("seed", [1, 7])
async def test_records_over_three_days_survive_chaos(seed: int) -> None:
    figures = await chaos.chaos_records(n=20_000, days=3, rate=0.2, seed=seed, **FAST)
    assert figures.checked == 20_000
    assert (figures.lost, figures.duplicated) == (0, 0)
    assert figures.retries > 0
    assert sum(figures.faults.values()) > 0.1 * figures.requests


async def test_watch_during_writes_survives_chaos() -> None:
    figures = await chaos.chaos_watch(seeded=500, written=2_000, rate=0.2, timeout=60, **FAST)
    assert (figures.lost, figures.duplicated) == (0, 0)
    assert figures.checked == 2_500
    assert sum(figures.faults.values()) > 0


async def test_no_upload_is_duplicated_or_misreported() -> None:
    figures = await chaos.chaos_uploads(n=2_000, rate=0.2, **FAST)
    assert figures.checked == 2_000
    assert figures.lost == 0  # nobody told "created" without a record, or silently stored
    assert figures.duplicated == 0
    assert figures.faults.get("drop-after-processing", 0) > 0
    # Every drop after processing stored a record the caller was told "may exist" about.
    assert figures.extra["may exist (stored)"] == figures.faults["drop-after-processing"]
    assert figures.extra["records stored"] == (
        figures.extra["created"] + figures.extra["may exist (stored)"]
    )
