"""`Relay`: the list calls of one `records()` walk in flight, each fed back at once.

Calls sent together are answered together. A driver that waits for an answer, then
feeds every answer that has come and only then sends the next calls, sends each round's
calls after the last answer of the round is read. Here each call's task feeds its own
answer to the walk and sends the walk's next call itself, so a call goes out as soon as
the answer before it is read: with 4 calls in flight at 5-30 ms an answer, that was 3 to
5 % of the walk's throughput (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

from ._exceptions import SenseLinkError
from ._http import HttpRequest
from ._models import RecordPage
from ._paging import PageRequest, Walk

__all__ = ["WAITING", "FetchPage", "Pause", "Relay"]

#: Pages waiting for the consumer that stop a call chain. With 8 calls in flight over
#: 500,000 records, peak RSS grew 1.90-1.99 MiB at 8 (the concurrency) and 1.59-1.60
#: at 2, against 1.47-1.61 for the driver before the relay; a 24 h listing at 30 ms an
#: answer ran as fast at 2 as at 8 (0.967 and 0.970 of a hand-written client), and
#: slower at 1 (0.959 against 0.976).
WAITING = 2

#: Sends one list call and parses its page (the client's request loop).
FetchPage = Callable[[HttpRequest], Awaitable[RecordPage]]
#: Waits the back-off of the given attempt before a re-read.
Pause = Callable[[int], Awaitable[object]]


class Relay:
    """The calls of one walk in flight, each in a task that feeds its answer to the walk
    and sends the walk's next call itself, at once: a call goes out as soon as the answer
    before it is read, not after every answer that came in with it (answers to calls
    sent together come back together). Pages for the consumer wait in `ready`; while
    `WAITING` of them wait (one, at ``concurrency=1``) no task goes on, and the
    consumer's loop sends the next calls. After a page that asks for a back-off,
    nothing is sent until it is over. Pages are read ahead only while the calls are
    what the consumer waits for: when it comes back for more and none is out (an
    instant transport, or a consumer slower than the server), only what comes next is
    asked until calls are out again; pages read ahead would only wait in memory. At
    ``concurrency=1`` the consumer's loop makes the one call itself, with no task
    (163-167 µs a page of 100 over MockTransport, against 177-181 with one, in
    alternation)."""

    def __init__(
        self,
        walk: Walk,
        fetch: FetchPage,
        http: Callable[[PageRequest], HttpRequest],
        pause: Pause,
        concurrency: int,
    ) -> None:
        self.walk = walk
        self._fetch = fetch
        self._http = http
        self._pause = pause
        self._concurrency = concurrency
        self._waiting = min(WAITING, concurrency)
        #: Pages to yield, in walk order.
        self.ready: collections.deque[RecordPage] = collections.deque()
        #: What ended the walk: raised once `ready` is yielded.
        self.error: Exception | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pauses = 0
        self._news: asyncio.Future[None] | None = None
        #: Read ahead (see `next_news`); None until the consumer first came for pages.
        self._ahead: bool | None = None

    async def next_news(self) -> None:
        """Send what the walk asks for, then wait until a page, an error or the end.
        With ``concurrency`` above 1 and no call left in flight, what the walk then
        allows goes out before the pages are yielded: the consumer may work on them
        without giving the loop a turn, and nothing would be on its way meanwhile."""
        # Calls still out when the consumer comes back for more: they, not the consumer,
        # hold the walk back, and reading ahead pays. None out: everything asked came
        # back before it was wanted (an instant transport), and pages read ahead would
        # only wait in memory, so only what comes next is asked until calls are out again.
        self._ahead = self._ahead is None or bool(self.walk.flight) or self._pauses > 0
        requests = self._sends()
        if self._concurrency == 1 and requests:  # one call at a time: no task for it
            await self._carry(requests[0])
            return
        self._send(requests)
        if not self.walk.flight and not self._pauses:  # pragma: no cover - never
            raise RuntimeError("the walk is not over but asks for nothing")
        self._news = asyncio.get_running_loop().create_future()
        await self._news
        if self._concurrency > 1 and not self.walk.flight and self._send(self._sends()):
            await asyncio.sleep(0)  # one turn of the loop puts them on the wire

    def _sends(self) -> list[PageRequest]:
        """What the walk asks to send now: nothing during a back-off or after an error."""
        if self._pauses or self.error is not None:
            return []
        return self.walk.sends(len(self.ready), ahead=self._ahead is not False)

    def _send(self, requests: list[PageRequest]) -> bool:
        for request in requests:
            task = asyncio.ensure_future(self._carry(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return bool(requests)

    def _then(self) -> PageRequest | None:
        """The call a task that just fed its answer sends next (others: new tasks)."""
        if len(self.ready) >= self._waiting:
            return None
        requests = self._sends()
        self._send(requests[1:])
        return requests[0] if requests else None

    async def _carry(self, request: PageRequest | None) -> None:
        """Send ``request``, feed its answer, and go on with the next call while allowed."""
        try:
            while request is not None:
                # No page stays referenced here while the next call is awaited: what the
                # consumer has taken is freed (this frame lives as long as the call chain).
                backoff = self._feed(request, await self._fetch(self._http(request)))
                if backoff:
                    self._pauses += 1
                    try:
                        await self._pause(backoff)
                    finally:
                        self._pauses -= 1
                request = self._then()
        except Exception as error:  # CancelledError (a BaseException) is close()'s
            if self.error is None:
                self.error = error
        finally:
            self._wake()

    def _feed(self, request: PageRequest, page: RecordPage) -> int:
        """Feed one answer to the walk, queue the pages it gives and return the back-off
        it asks for; an error names the call it came from."""
        try:
            step = self.walk.feed(request, page)
        except SenseLinkError as error:
            if error.request is None:
                error.request = self._http(request).info()
            raise
        self.ready.extend(step.pages)
        self._wake()
        return step.backoff

    def _wake(self) -> None:
        if self._news is not None and not self._news.done():
            self._news.set_result(None)

    async def close(self) -> None:
        """Cancel every call in flight (retrieving every outcome: no "never retrieved")."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
