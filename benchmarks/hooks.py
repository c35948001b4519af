"""What event hooks cost a call: wall and CPU time per call through `MockTransport`.

Run: ``python benchmarks/hooks.py [--calls 3000] [--rounds 5] [--block-ms 1]``

Each case makes a fresh client whose `MockTransport` answers `get_image` at once, warms
it, then times calls one after another, each followed by one turn of the event loop
(the last case: 16 in flight):

- no hooks;
- a quick sync hook (a counter) on every event kind;
- a quick ``async def`` hook on every event kind;
- the OpenTelemetry integration (SDK, in-memory exporter), when it is installed;
- a sync ``response`` hook that blocks ``--block-ms`` (``time.sleep``), one call at a time;
- the same hook with 16 calls in flight.

Prints a Markdown table: per case, medians over ``--rounds`` of µs per call (wall and
this process's CPU, every thread included) and the wall time added over no hooks. The
time after the last call (``aclose``) is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import senselink_plus as slp
from senselink_plus.testing import MockTransport

JPEG = b"\xff\xd8\xff\xe0" + bytes(1000) + b"\xff\xd9"
KINDS = ("start", "request", "response", "retry", "end")
IN_FLIGHT = 16

Hooks = dict[str, list[Callable[[slp.Event], Any]]] | None


def answer(request: slp.HttpRequest) -> slp.HttpResponse:
    return slp.HttpResponse(200, {"content-type": "image/jpeg"}, JPEG)


def quick_sync() -> Hooks:
    seen = [0]

    def count(event: slp.Event) -> None:
        seen[0] += 1

    return {kind: [count] for kind in KINDS}


def quick_async() -> Hooks:
    seen = [0]

    async def count(event: slp.Event) -> None:
        seen[0] += 1

    return {kind: [count] for kind in KINDS}


def otel() -> Hooks:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from senselink_plus.otel import OpenTelemetry

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    return dict(OpenTelemetry(provider).event_hooks())


def blocking(block_ms: float) -> Callable[[], Hooks]:
    def hooks() -> Hooks:
        def slow(event: slp.Event) -> None:
            time.sleep(block_ms / 1000)

        return {"response": [slow]}

    return hooks


async def per_call(hooks: Hooks, calls: int, in_flight: int) -> tuple[float, float]:
    """Wall and CPU µs per call for ``calls`` calls, ``in_flight`` at a time."""
    client = slp.Client("key", "secret", transport=MockTransport(answer), event_hooks=hooks)
    for _ in range(50):
        await client.get_image("img")
        await asyncio.sleep(0)
    todo = iter(range(calls))

    async def worker() -> None:
        for _ in todo:
            await client.get_image("img")
            await asyncio.sleep(0)  # a turn of the loop, as a network answer would give

    wall0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    await client.aclose()
    return wall / calls * 1e6, cpu / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block-ms", type=float, default=1.0)
    args = parser.parse_args()
    slow_calls = max(50, int(200 / max(args.block_ms, 0.01)))
    cases: list[tuple[str, Callable[[], Hooks], int, int]] = [
        ("no hooks", lambda: None, args.calls, 1),
        ("a quick sync hook on every kind", quick_sync, args.calls, 1),
        ("a quick async hook on every kind", quick_async, args.calls, 1),
    ]
    try:
        otel()
        cases.append(("OpenTelemetry (SDK, in-memory exporter)", otel, args.calls, 1))
    except ImportError:
        print("(opentelemetry-sdk is not installed: no OpenTelemetry case)")
    slow = f"a sync response hook blocking {args.block_ms:g} ms"
    cases.append((slow + ", 1 call at a time", blocking(args.block_ms), slow_calls, 1))
    cases.append((f"{slow}, {IN_FLIGHT} in flight", blocking(args.block_ms), slow_calls, IN_FLIGHT))

    results: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in cases}
    for _ in range(args.rounds):  # rounds interleave the cases: load spreads over all
        for name, make, calls, in_flight in cases:
            results[name].append(asyncio.run(per_call(make(), calls, in_flight)))
    bare = statistics.median(w for w, _ in results["no hooks"])
    print(f"senselink_plus {slp.__version__}, medians of {args.rounds} rounds")
    print("| case | wall µs per call | CPU µs per call | wall added over no hooks |")
    print("|---|---:|---:|---:|")
    for name, *_ in cases:
        wall = statistics.median(w for w, _ in results[name])
        cpu = statistics.median(c for _, c in results[name])
        print(f"| {name} | {wall:,.1f} | {cpu:,.1f} | {wall - bare:+,.1f} |")


if __name__ == "__main__":
    main()
