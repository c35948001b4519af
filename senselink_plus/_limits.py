"""Client-side caps: how many requests are in flight, and how many start per second."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ._exceptions import ValidationError

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
        if not rate > 0:
            raise ValidationError(
                f"rate_limit must be > 0 requests per second, not {rate!r}", field="rate_limit"
            )
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
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError(
            f"max_concurrency must be an int >= 1 or None, not {limit!r}", field="max_concurrency"
        )
    return asyncio.Semaphore(limit)
