"""Client-side caps: how many requests are in flight, and how many start per second."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ._checks import check_int, check_seconds

__all__ = ["RateLimiter", "make_semaphore"]


class RateLimiter:
    """Space request starts at least ``1 / rate`` seconds apart (a steady pace, no bursts).

    Time comes in through ``timer`` and ``sleep`` so tests need not wait.
    """

    def __init__(
        self,
        rate: float,
        *,
        timer: Callable[[], float],
        sleep: Callable[[float], Awaitable[object]],
    ) -> None:
        rate = check_seconds(rate, "rate_limit")  # a finite number > 0, like a duration
        self.rate = rate
        self._interval = 1.0 / rate
        self._timer = timer
        self._sleep = sleep
        self._next = float("-inf")

    async def acquire(self) -> None:
        """Wait for this caller's turn; turns are handed out in call order."""
        now = self._timer()
        start = max(now, self._next)
        # Book the slot before sleeping so concurrent callers queue behind it.
        self._next = start + self._interval
        if start > now:
            await self._sleep(start - now)


def make_semaphore(limit: int | None) -> asyncio.Semaphore | None:
    """A semaphore for ``max_concurrency`` (None: no cap)."""
    if limit is None:
        return None
    return asyncio.Semaphore(check_int(limit, "max_concurrency"))
