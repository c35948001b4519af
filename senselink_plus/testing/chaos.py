"""Chaos scenarios: ingestion, a watch and uploads while the emulator fails a share of
requests at random, each checked for records lost, duplicated or misreported.

``benchmarks/chaos.py`` runs them at full size with realistic delays and prints the
figures for docs/RELIABILITY.md; ``tests/test_reliability.py`` runs them small.

>>> figures = await chaos_records(n=2_000, days=1, rate=0.2, seed=1)  # doctest: +SKIP
>>> (figures.lost, figures.duplicated)  # doctest: +SKIP
(0, 0)
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs

import senselink_plus as slp

from ._emulator import Emulator
from ._samples import sample_image

__all__ = [
    "Figures",
    "chaos_records",
    "chaos_uploads",
    "chaos_watch",
    "quick_sleep",
    "report",
]


@attrs.frozen
class Figures:
    """What one chaos run did."""

    scenario: str
    checked: int
    requests: int
    retries: int
    faults: dict[str, int]
    seconds: float
    lost: int
    duplicated: int
    extra: dict[str, int] = attrs.field(factory=dict)


def _counting_hooks() -> tuple[dict[str, list[Any]], Counter[str]]:
    counts: Counter[str] = Counter()

    def on_request(event: slp.Event) -> None:
        counts["requests"] += 1

    def on_retry(event: slp.Event) -> None:
        counts["retries"] += 1

    return {"request": [on_request], "retry": [on_retry]}, counts


def _client_options(
    hooks: dict[str, list[Any]], sleep_cap: float | None, **more: Any
) -> dict[str, Any]:
    """Keyword arguments for `Emulator.client`: the counting hooks, a capped sleep."""
    options: dict[str, Any] = {"event_hooks": hooks, **more}
    if sleep_cap is not None:
        options["sleep"] = quick_sleep(sleep_cap)
    return options


def quick_sleep(cap: float) -> Callable[[float], Awaitable[None]]:
    """A sleep that waits at most ``cap`` seconds (tests: no long real waits)."""

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(min(seconds, cap))

    return sleep


async def chaos_records(
    *,
    n: int = 20_000,
    days: int = 3,
    rate: float = 0.2,
    seed: int = 1,
    delay: tuple[float, float] = (0.05, 0.5),
    sleep_cap: float | None = None,
    concurrency: int = 4,
) -> Figures:
    """`records()` over ``days`` days holding ``n`` records, with ``rate`` of requests failing."""
    end = datetime.now(timezone.utc).replace(microsecond=0)
    start = end - timedelta(days=days)
    hooks, counts = _counting_hooks()
    options = _client_options(
        hooks,
        sleep_cap,
        retry=slp.RetryPolicy(max_attempts=10, initial_delay=0.05, max_delay=1.0),
    )
    async with Emulator(request_log_size=1_000_000) as emu:
        expected = list(
            emu.seed(
                n,
                start=start + timedelta(seconds=1),
                span=timedelta(days=days) - timedelta(seconds=2),
            )
        )
        chaos = emu.chaos(rate, seed=seed, delay=delay, retry_after="1")
        began = time.perf_counter()
        async with emu.client(**options) as client:
            got = [r.record_id async for r in client.records(start, end, concurrency=concurrency)]
        seconds = time.perf_counter() - began
    return Figures(
        "records() over 3 days",
        checked=len(got),
        requests=counts["requests"],
        retries=counts["retries"],
        faults=dict(chaos.counts),
        seconds=seconds,
        lost=len(set(expected) - set(got)),
        duplicated=len(got) - len(set(got)),
    )


async def chaos_watch(
    *,
    seeded: int = 500,
    written: int = 2_000,
    rate: float = 0.2,
    seed: int = 2,
    delay: tuple[float, float] = (0.05, 0.5),
    sleep_cap: float = 0.02,
    timeout: float = 120.0,
) -> Figures:
    """`watch()` while a writer adds ``written`` records, with ``rate`` of polls failing."""
    hooks, counts = _counting_hooks()
    now = datetime.now(timezone.utc)
    async with Emulator(request_log_size=1_000_000) as emu:
        before = list(
            emu.seed(seeded, start=now - timedelta(minutes=30), span=timedelta(minutes=20))
        )
        chaos = emu.chaos(rate, seed=seed, route="list", delay=delay, retry_after="1")
        writer_ids: list[int] = []
        began = time.perf_counter()
        async with (
            emu.client(
                retry=slp.RetryPolicy(max_attempts=2, initial_delay=0.01, max_delay=0.05),
                event_hooks=hooks,
                sleep=quick_sleep(sleep_cap),
            ) as watcher,
            emu.client() as writer_client,
        ):

            async def writer() -> None:
                for i in range(written):
                    created = await writer_client.create_record(
                        f"GATE-{i % 4}", sample_image("visitor"), extend={"i": i}
                    )
                    writer_ids.append(created.record_id)
                    if i % 50 == 0:
                        await asyncio.sleep(0)

            async def reader() -> list[int]:
                got: list[int] = []
                target = seeded + written
                since = now - timedelta(hours=1)
                async for record in watcher.watch(since=since, poll_interval=0.01):
                    got.append(record.record_id)
                    if len(set(got)) >= target and len(writer_ids) == written:
                        break
                return got

            write_task = asyncio.create_task(writer())
            got = await asyncio.wait_for(reader(), timeout)
            await write_task
        seconds = time.perf_counter() - began
    expected = set(before) | set(writer_ids)
    return Figures(
        "watch() during 2,000 writes",
        checked=len(got),
        requests=counts["requests"],
        retries=counts["retries"],
        faults=dict(chaos.counts),
        seconds=seconds,
        lost=len(expected - set(got)),
        duplicated=len(got) - len(set(got)),
    )


async def chaos_uploads(
    *,
    n: int = 2_000,
    rate: float = 0.2,
    seed: int = 3,
    delay: tuple[float, float] = (0.05, 0.5),
    sleep_cap: float | None = None,
    in_flight: int = 16,
) -> Figures:
    """``n`` uploads with ``rate`` of them hitting a fault; checks nobody is misinformed."""
    hooks, counts = _counting_hooks()
    options = _client_options(hooks, sleep_cap, max_concurrency=in_flight)
    outcome: dict[int, str] = {}
    async with Emulator(request_log_size=1_000_000) as emu:
        chaos = emu.chaos(rate, seed=seed, route="create", delay=delay, retry_after="1")
        began = time.perf_counter()
        async with emu.client(**options) as client:

            async def upload(i: int) -> None:
                try:
                    await client.create_record("GATE-1", sample_image("alice"), extend={"i": i})
                except slp.SenseLinkError as exc:
                    outcome[i] = "may exist" if exc.record_may_exist else "not stored"
                else:
                    outcome[i] = "created"

            await asyncio.gather(*(upload(i) for i in range(n)))
        seconds = time.perf_counter() - began
        stored = Counter(int(r["extend"].split(":")[1].rstrip("}")) for r in emu.records)
    misinformed, extra = _upload_outcomes(outcome, stored)
    return Figures(
        "2,000 create_record calls",
        checked=len(outcome),
        requests=counts["requests"],
        retries=counts["retries"],
        faults=dict(chaos.counts),
        seconds=seconds,
        lost=misinformed,
        duplicated=sum(count - 1 for count in stored.values()),
        extra=extra,
    )


def _upload_outcomes(outcome: dict[int, str], stored: Counter[int]) -> tuple[int, dict[str, int]]:
    """How many callers were misinformed about their upload, and the outcomes counted."""
    created = {i for i, o in outcome.items() if o == "created"}
    may_exist = {i for i, o in outcome.items() if o == "may exist"}
    not_stored = {i for i, o in outcome.items() if o == "not stored"}
    misinformed = (
        len(created - set(stored))  # told created, but nothing stored
        + len(set(stored) - created - may_exist)  # stored without the caller being told
        + len(not_stored & set(stored))  # told "not stored", but it was
    )
    return misinformed, {
        "created": len(created),
        "may exist (stored)": len(may_exist & set(stored)),
        "may exist (not stored)": len(may_exist - set(stored)),
        "not stored": len(not_stored),
        "records stored": sum(stored.values()),
    }


def report(figures: Figures) -> str:
    """The figures of one run as a Markdown section."""
    faults = ", ".join(f"{k} {v}" for k, v in sorted(figures.faults.items()))
    lines = [
        f"### {figures.scenario}",
        "",
        f"- records/calls checked: {figures.checked:,}",
        f"- requests sent: {figures.requests:,}; retries: {figures.retries:,}",
        f"- faults injected ({sum(figures.faults.values()):,}): {faults}",
        f"- wall time: {figures.seconds:.1f} s",
        f"- lost or misreported: {figures.lost}; duplicated: {figures.duplicated}",
    ]
    lines += [f"- {k}: {v:,}" for k, v in figures.extra.items()]
    return "\n".join(lines)
