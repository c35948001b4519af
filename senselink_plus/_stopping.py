"""`Watch.stop`: a request to end a watch, safe from a signal handler, another task or
another thread, that cuts short whatever the watch is waiting for."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["StopRequest", "Stopped"]

T = TypeVar("T")


class Stopped(Exception):
    """A stop was requested while the watch waited: the iteration ends."""


class StopRequest:
    """One watch's stop: `bind` it in the watch's event loop, `request` it from
    anywhere; `unless_stopped` awaits a step unless a stop comes first.

    >>> stop = StopRequest()  # doctest: +SKIP
    >>> stop.bind()  # in the running loop  # doctest: +SKIP
    >>> page = await stop.unless_stopped(fetch())  # Stopped once requested  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken: asyncio.Future[None] | None = None

    def bind(self) -> None:
        """Attach to the running event loop (the watch's)."""
        self._loop = asyncio.get_running_loop()
        self._woken = self._loop.create_future()

    def request(self) -> None:
        """Ask the watch to stop; calling it again does nothing more."""
        self.requested = True
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing waits
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        woken = self._woken
        if woken is not None and not woken.done():
            woken.set_result(None)

    async def unless_stopped(self, step: Awaitable[T]) -> T:
        """Await ``step``, or raise `Stopped` (cancelling it) if a stop comes first."""
        woken = self._woken
        if self.requested or woken is None:
            if inspect.iscoroutine(step):
                step.close()
            raise Stopped
        task = asyncio.ensure_future(step)
        try:
            await asyncio.wait((task, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if task.cancelled():
            raise Stopped
        return task.result()
