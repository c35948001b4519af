"""`CloseGuard`: lets closing a session interrupt what its calls are waiting for."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable
from typing import Any, TypeVar

from ._exceptions import ClientClosedError
from ._http import HttpRequest

__all__ = ["CloseGuard"]

T = TypeVar("T")


class CloseGuard:
    """Whether a session is closed, and the tasks `close` must interrupt.

    `run` awaits in the caller's task, which it registers; `close` cancels the tasks
    registered, and `run` turns that cancel into `ClientClosedError`. No task of its own
    per await (an extra loop turn each): ``uncancel()`` tells the close's cancel apart
    from anyone else's, and a cancel of the caller's own still wins.

    >>> guard = CloseGuard()
    >>> guard.close()
    >>> guard.check()
    Traceback (most recent call last):
    senselink_plus._exceptions.ClientClosedError: the client is closed
    """

    __slots__ = ("_cancelled", "_inflight", "closed")

    def __init__(self) -> None:
        self.closed = False
        self._inflight: set[asyncio.Task[Any]] = set()
        self._cancelled: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()

    @property
    def idle(self) -> bool:
        """True when no task waits in `run`."""
        return not self._inflight

    def check(self) -> None:
        """Raise `ClientClosedError` once closed."""
        if self.closed:
            raise ClientClosedError("the client is closed")

    def close(self) -> None:
        """Mark closed and cancel every task waiting in `run` (but the current one)."""
        self.closed = True
        current = asyncio.current_task() if self._inflight else None  # tasks: a loop runs
        for task in list(self._inflight):
            if task is not current:
                self._cancelled.add(task)
                task.cancel()

    async def run(
        self, awaitable: Awaitable[T], request: HttpRequest | None = None, *, sending: bool = False
    ) -> T:
        """Await ``awaitable``; a `close` meanwhile raises `ClientClosedError` (about
        ``request``; ``sending``: it had been handed to the transport)."""
        task = asyncio.current_task()
        if task is None or task in self._inflight:  # registered further up
            return await awaitable
        self._inflight.add(task)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if task in self._cancelled:
                self._cancelled.discard(task)
                if _uncancel(task) == 0:
                    raise ClientClosedError(
                        "the client was closed during the call",
                        request=None if request is None else request.info(),
                        record_may_exist=sending,  # the session keeps it for creates only
                    ) from None
            raise
        finally:
            self._inflight.discard(task)


def _uncancel(task: asyncio.Task[Any]) -> int:
    """Withdraw one cancel request; how many remain (Task.uncancel is Python 3.11+: on
    3.10 a close and a caller's cancel that arrive together read as the close)."""
    uncancel = getattr(task, "uncancel", None)
    return int(uncancel()) if uncancel is not None else 0
