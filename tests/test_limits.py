"""`_limits`: the rate limiter's pace and the concurrency cap, with the fake clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from senselink_plus import ValidationError
from senselink_plus._limits import RateLimiter, make_semaphore
from tests.fake_clock import FakeClock

# --- RateLimiter -----------------------------------------------------------------------


async def test_the_first_call_goes_at_once_and_the_next_wait_their_turn() -> None:
    clock = FakeClock(100.0)
    limiter = RateLimiter(4.0, timer=clock.timer, sleep=clock.sleep)
    starts = []
    for _ in range(5):
        await limiter.acquire()
        starts.append(clock.now)
    assert starts == pytest.approx([100.0, 100.25, 100.5, 100.75, 101.0])
    assert clock.sleeps == pytest.approx([0.25] * 4)


async def test_time_that_passed_counts_towards_the_next_turn() -> None:
    clock = FakeClock(100.0)
    limiter = RateLimiter(2.0, timer=clock.timer, sleep=clock.sleep)
    await limiter.acquire()
    clock.advance(0.2)
    await limiter.acquire()
    assert clock.sleeps == [pytest.approx(0.3)]
    clock.advance(10)
    await limiter.acquire()  # idle time is not saved up for a burst
    await limiter.acquire()
    assert clock.sleeps[1:] == [pytest.approx(0.5)]


async def test_concurrent_callers_queue_in_call_order() -> None:
    clock = FakeClock(100.0)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)  # the clock stands still: all callers arrive at once
        await asyncio.sleep(0)

    limiter = RateLimiter(10.0, timer=clock.timer, sleep=sleep)
    await asyncio.gather(*(limiter.acquire() for _ in range(4)))
    assert waits == [pytest.approx(0.1), pytest.approx(0.2), pytest.approx(0.3)]


@pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan"), "5", True])
def test_a_rate_must_be_a_finite_positive_number(rate: object) -> None:
    clock = FakeClock()
    with pytest.raises(ValidationError, match="rate_limit") as caught:
        RateLimiter(rate, timer=clock.timer, sleep=clock.sleep)  # type: ignore[arg-type]
    assert caught.value.field == "rate_limit"


# --- make_semaphore --------------------------------------------------------------------


def test_no_limit_means_no_semaphore() -> None:
    assert make_semaphore(None) is None


async def test_semaphore_admits_limit_holders() -> None:
    semaphore = make_semaphore(2)
    assert isinstance(semaphore, asyncio.Semaphore)
    async with semaphore:
        assert not semaphore.locked()
        async with semaphore:
            assert semaphore.locked()
    assert not semaphore.locked()


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        (0, "max_concurrency is 0; it must be 1.."),
        (-1, "max_concurrency is -1; it must be 1.."),
        (True, "must be an int, not bool"),
        (1.5, "must be an int, not float"),
        ("4", "must be an int, not str"),
    ],
)
def test_make_semaphore_refuses_bad_limits(limit: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        make_semaphore(limit)
    assert info.value.field == "max_concurrency"
