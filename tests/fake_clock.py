"""The one fake clock of the tests: a wall clock, a monotonic timer and a sleep in one.

Pass ``clock.clock`` (or the clock itself: it is callable, as the emulator wants),
``clock.timer`` and ``clock.sleep`` wherever the code takes time as parameters::

    clock = FakeClock()
    client = Client(..., clock=clock.clock, timer=clock.timer, sleep=clock.sleep)

A sleep is recorded in ``sleeps`` and moves ``now`` forward at once. Inside
``await clock.run(awaitable)`` a sleep waits instead, in virtual time: sleepers wake in
the order of their deadlines, ``now`` jumping to each deadline once every runnable task
has had its turn (so concurrent sleepers, a rate limiter's queue, see one timeline).
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs

T = TypeVar("T")

#: Where a clock starts unless told: 2023-11-14T22:13:20Z.
T0 = 1_700_000_000.0


@attrs.define(eq=False)
class FakeClock:
    """Time that moves only when a test sleeps or advances it."""

    now: float = T0
    #: A sleep past this many raises RuntimeError (a loop that would spin forever fails;
    #: it is no SenseLinkError, so no retry swallows it).
    max_sleeps: int | None = None
    #: Called as ``after_sleep(before, after)`` after each sleep (awaited if it returns an
    #: awaitable): where a test stores records "while" the code under test waits.
    after_sleep: Callable[[float, float], Awaitable[None] | None] | None = None
    sleeps: list[float] = attrs.field(factory=list, init=False)
    _parked: list[tuple[float, int, asyncio.Future[None]]] | None = attrs.field(
        default=None, init=False
    )
    _order: itertools.count[int] = attrs.field(factory=itertools.count, init=False)

    def __call__(self) -> float:
        return self.now

    def clock(self) -> float:
        return self.now

    def timer(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        before = self.now
        self.sleeps.append(seconds)
        if self.max_sleeps is not None and len(self.sleeps) > self.max_sleeps:
            raise RuntimeError(f"slept {len(self.sleeps)} times; the test allows {self.max_sleeps}")
        if self._parked is None:
            self.now += seconds
        else:
            woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            deadline = self.now + max(seconds, 0.0)
            heapq.heappush(self._parked, (deadline, next(self._order), woken))
            await woken
        if self.after_sleep is not None:
            done = self.after_sleep(before, self.now)
            if inspect.isawaitable(done):
                await done

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` with sleeps in virtual time (see the module docstring)."""
        self._parked = []
        try:
            task = asyncio.ensure_future(awaitable)
            while not task.done():
                for _ in range(20):  # every runnable task has its turn
                    await asyncio.sleep(0)
                if self._parked and not task.done():
                    deadline, _, woken = heapq.heappop(self._parked)
                    self.now = max(self.now, deadline)
                    woken.set_result(None)
            return await task
        finally:
            self._parked = None


__all__ = ["T0", "FakeClock"]
