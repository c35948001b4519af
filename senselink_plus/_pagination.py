"""`RecordPager`: every record of any time range, page by page, each exactly once.

The decisions live in `_paging.RangeCursor` (pure, see its docstring for the rules and
the bound); this module only sends the calls it asks for, keeps up to ``concurrency``
in flight, hands their answers back in order and yields what it says.

What is guaranteed, while records are written to the range and expire from it:

- Every record present in the range from the start of the walk to its end is yielded
  exactly once, in the requested order; no ``record_id`` is ever yielded twice.
- Memory holds about ``concurrency`` pages, whatever the length of the range.
- The walk ends within a number of requests the cursor can state; a server that keeps
  repeating or contradicting itself gets `ResponseError`, with back-off before re-reads.
- A record added during the walk may or may not be yielded. Use ``watch`` to follow new
  records.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from datetime import datetime

from . import _endpoints as ep
from ._checks import check_int
from ._exceptions import SenseLinkError
from ._http import HttpRequest, make_request
from ._models import Order, Record, RecordPage
from ._paging import PageRequest, RangeCursor
from ._timeutil import MAX_WINDOW, split_time_range, to_wire_time

__all__ = ["RecordPager"]

#: Sends one list call and parses its page (the client's request loop).
FetchPage = Callable[[HttpRequest], Awaitable[RecordPage]]
#: Waits the back-off of the given attempt before a re-read.
Pause = Callable[[int], Awaitable[object]]


class RecordPager:
    """A lazy walk over the records of a time range; nothing is sent until iterated.

    ``async for record in pager`` yields `Record`s; ``pager.pages()`` yields
    `RecordPage`s holding only records not yielded before. A range over 24 h is walked
    window by window (`split_time_range`) in the requested order. With ``concurrency``
    N, up to N calls are in flight, over the current window's pages and the first pages
    of the windows after it; records still come in order and about N pages are held.
    ``concurrency=1`` sends each call only when the previous page has been consumed.
    Breaking out of the loop cancels every call in flight.

    >>> async for record in client.records(t0, t0 + timedelta(days=3)):  # doctest: +SKIP
    ...     print(record.record_id)
    """

    def __init__(
        self,
        fetch: FetchPage,
        base_url: str,
        time_from: datetime | str,
        time_to: datetime | str,
        *,
        sn: str | None,
        order: Order | int,
        page_size: int,
        concurrency: int,
        max_items: int | None,
        pause: Pause,
    ) -> None:
        # Everything is checked here so bad input fails at the call, before iteration.
        start, end = ep.window_bounds(time_from, time_to)
        self.sn = None if sn is None else ep.check_sn(sn)
        self.order = ep.check_order(order)
        self.page_size = ep.check_page_size(page_size, "page_size")
        self.concurrency = check_int(concurrency, "concurrency")
        self.max_items = None if max_items is None else check_int(max_items, "max_items", minimum=0)
        windows = split_time_range(start, end, MAX_WINDOW)
        self.windows = windows if self.order is Order.ASCENDING else windows[::-1]
        self._fetch = fetch
        self._pause = pause
        # Every call is this one with its own window, page and size.
        self._template = ep.build_list_records(
            base_url, *self.windows[0], sn=self.sn, order=self.order, size=self.page_size
        )
        # The parameters every call repeats (sn, order), when the template has the
        # layout _http writes directly; else _http fills the template in key by key.
        keys = [key for key, _ in self._template.params]
        self._middle = (
            self._template.params[2:-2]
            if keys[:2] == ["time_from", "time_to"] and keys[-2:] == ["page", "size"]
            else None
        )

    def __repr__(self) -> str:
        first, last = self.windows[0], self.windows[-1]
        lo = min(first[0], last[0]).isoformat()
        hi = max(first[1], last[1]).isoformat()
        return (
            f"RecordPager({lo} .. {hi}, sn={self.sn!r}, order={self.order.name}, "
            f"windows={len(self.windows)}, page_size={self.page_size}, "
            f"concurrency={self.concurrency})"
        )

    def __aiter__(self) -> AsyncIterator[Record]:
        return self._iter_records()

    async def _iter_records(self) -> AsyncGenerator[Record, None]:
        async with contextlib.aclosing(self._iter_pages()) as pages:
            async for page in pages:
                for record in page.records:
                    yield record

    def pages(self) -> AsyncIterator[RecordPage]:
        """Iterate page by page; each page holds only records not yielded before."""
        return self._iter_pages()

    def _http(self, request: PageRequest) -> HttpRequest:
        template = self._template
        middle = self._middle
        if middle is not None:  # the template's layout: window, [sn], order, page, size
            return make_request(
                template.method,
                template.url,
                (
                    ("time_from", to_wire_time(request.time_from)),
                    ("time_to", to_wire_time(request.time_to)),
                    *middle,
                    ("page", str(request.page)),
                    ("size", str(request.size)),
                ),
            )
        values = {
            "time_from": to_wire_time(request.time_from),
            "time_to": to_wire_time(request.time_to),
            "page": str(request.page),
            "size": str(request.size),
        }
        params = tuple((key, values.get(key, value)) for key, value in template.params)
        return make_request(template.method, template.url, params)

    async def _iter_pages(self) -> AsyncGenerator[RecordPage, None]:
        cursor = RangeCursor(
            self.windows,
            order=self.order,
            page_size=self.page_size,
            lookahead=self.concurrency,
            max_items=self.max_items,
        )
        eager = self.concurrency > 1
        tasks: dict[int, asyncio.Future[RecordPage]] = {}
        fetch = self._fetch
        quiet = False  # backing off, or closing: nothing new goes out

        def start() -> None:
            for request in cursor.sends():
                if eager:
                    task = asyncio.ensure_future(fetch(self._http(request)))
                    tasks[request.seq] = task
                    task.add_done_callback(functools.partial(arrived, request))

        def arrived(request: PageRequest, task: asyncio.Future[RecordPage]) -> None:
            # An answer before its turn frees a slot, and a later window's first page
            # lets that window's next pages go out now (each is still fed in its turn).
            if task.cancelled() or task.exception() is not None:
                return
            if cursor.arrived(request, task.result()) and not quiet:
                start()

        try:
            start()
            while (request := cursor.needed()) is not None:
                task = tasks.pop(request.seq, None)
                try:
                    page = await (task if task is not None else fetch(self._http(request)))
                    step = cursor.feed(request, page)
                except SenseLinkError as error:
                    if error.request is None:
                        error.request = self._http(request).info()
                    raise
                for dropped in step.cancel:
                    stale = tasks.pop(dropped.seq, None)
                    if stale is not None:
                        stale.cancel()
                if eager and not step.backoff:
                    start()  # in flight while the consumer takes this page
                if step.records:
                    yield RecordPage(page.page_num, page.page_size, page.total, step.records)
                if step.backoff:
                    quiet = True
                    await self._pause(step.backoff)
                    quiet = False
                start()
        finally:
            quiet = True
            pending = list(tasks.values())
            for task in pending:
                task.cancel()
            # Gathering retrieves every outcome, so no "exception never retrieved" warning.
            await asyncio.gather(*pending, return_exceptions=True)
