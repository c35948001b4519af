"""`_limits`: the rate limiter's pace and the concurrency cap, with fake time."""

from __future__ import annotations

import asyncio

import pytest

from senselink_plus import ValidationError
from senselink_plus._limits import RateLimiter, make_semaphore


class Clock:
    """A timer and a sleep that moves it: no real waits."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def timer(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_the_first_call_goes_at_once_and_the_next_wait_their_turn() -> None:
    clock = Clock()
    limiter = RateLimiter(4.0, timer=clock.timer, sleep=clock.sleep)
    for _ in range(3):
        await limiter.acquire()
    assert clock.slept == [0.25, 0.25]
    assert clock.now == pytest.approx(100.5)


async def test_time_that_passed_counts_towards_the_next_turn() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, timer=clock.timer, sleep=clock.sleep)
    await limiter.acquire()
    clock.now += 0.2
    await limiter.acquire()
    assert clock.slept == [pytest.approx(0.3)]
    clock.now += 10
    await limiter.acquire()  # idle time is not saved up for a burst
    await limiter.acquire()
    assert clock.slept[1:] == [pytest.approx(0.5)]


async def test_concurrent_callers_queue_in_call_order() -> None:
    clock = Clock()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    limiter = RateLimiter(10.0, timer=clock.timer, sleep=sleep)
    await asyncio.gather(*(limiter.acquire() for _ in range(4)))
    assert waits == [pytest.approx(0.1), pytest.approx(0.2), pytest.approx(0.3)]


@pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan"), "5", True])
def test_a_rate_must_be_a_finite_positive_number(rate: object) -> None:
    clock = Clock()
    with pytest.raises(ValidationError, match="rate_limit") as caught:
        RateLimiter(rate, timer=clock.timer, sleep=clock.sleep)  # type: ignore[arg-type]
    assert caught.value.field == "rate_limit"


async def test_make_semaphore() -> None:
    assert make_semaphore(None) is None
    semaphore = make_semaphore(2)
    assert semaphore is not None
    async with semaphore, semaphore:
        assert semaphore.locked()
    with pytest.raises(ValidationError, match="max_concurrency is 0"):
        make_semaphore(0)
