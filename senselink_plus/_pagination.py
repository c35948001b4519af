"""`RecordPager`: every record of any time range, page by page, each exactly once.

The decisions live in `_paging.Walk` (pure; its docstring states the invariant, the
proof and the bounds); this module only sends the calls it asks for, up to
``concurrency`` in flight, and yields what it says. Each call runs in a task that feeds
its own answer to the walk and sends the next call at once (`_relay.Relay`).

What is guaranteed, while records are written to the range and expire from it:

- Every record present in the range from the start of the walk to its end is yielded
  exactly once, in the requested order; no ``record_id`` is ever yielded twice.
- ``total`` decides nothing: a stale count (servers count, then select) neither ends
  the walk early nor raises.
- Memory holds about 4 pages per call in flight (of 50 to 100 records; smaller pages:
  as many as hold about 200 records), counting the pages read ahead, those waiting for
  the consumer and those on their way, whatever the length of the range; nothing is
  read ahead while every call is answered before the consumer comes back for more.
- The walk ends within the bound `_paging.Walk` states; a server that breaks the
  listing's rules (ignores ``time_from`` or ``page``, repeats, reshuffles) gets
  `ResponseError`, with back-off before re-reads.
- A record added during the walk may or may not be yielded; a range that ends in the
  future is read up to about the newest record when the walk began. Use ``watch`` to
  follow new records.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime, timedelta, timezone

from . import _endpoints as ep
from ._checks import check_int
from ._endpoints import ORDER_TEXT
from ._http import HttpRequest, make_request
from ._models import Order, Record, RecordPage
from ._paging import PageRequest, Walk
from ._relay import FetchPage, Pause, Relay
from ._timeutil import to_wire_time

__all__ = ["MAX_CONCURRENCY", "RecordPager"]

_SECOND = timedelta(seconds=1)
#: The most list calls one walk keeps in flight (it holds about 4 pages per call).
MAX_CONCURRENCY = 64


class RecordPager:
    """A lazy walk over the records of a time range; nothing is sent until iterated.

    Made by `Client.records` (its arguments: ``time_from``, ``time_to``, ``sn``,
    ``order``, ``page_size``, ``concurrency``, ``max_items``, ``timeout``); its own
    constructor is internal, and every argument is checked there, at the call.

    ``async for record in pager`` yields `Record`s; ``pager.pages()`` yields
    `RecordPage`s holding only records not yielded before. Any range length works: the
    walk reads it in time slices of at most 24 h, by keyset (each page starts at the
    second of the last record taken). With ``concurrency`` N, up to N slices near the
    head of the walk are read at once (N from 1 to `MAX_CONCURRENCY`, 64); records still
    come in order and about 4 N pages are held (more when pages hold under 50 records).
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
        self.concurrency = check_int(concurrency, "concurrency", maximum=MAX_CONCURRENCY)
        self.max_items = None if max_items is None else check_int(max_items, "max_items", minimum=0)
        self._start = int(start.timestamp())
        self._end = int(end.timestamp())
        self._zone = start.tzinfo
        self._fetch = fetch
        self._pause = pause
        # Every call is this one with its own window, order, page and size.
        utc = datetime.fromtimestamp(self._start, timezone.utc)
        self._template = ep.build_list_records(
            base_url, utc, utc + _SECOND, sn=self.sn, order=self.order
        )

    def __repr__(self) -> str:
        start = datetime.fromtimestamp(self._start, self._zone).isoformat()
        end = datetime.fromtimestamp(self._end, self._zone).isoformat()
        return (
            f"RecordPager({start} .. {end}, sn={self.sn!r}, order={self.order.name}, "
            f"page_size={self.page_size}, concurrency={self.concurrency})"
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
        zone = self._zone
        values = {
            "time_from": to_wire_time(datetime.fromtimestamp(request.time_from, zone)),
            "time_to": to_wire_time(datetime.fromtimestamp(request.time_to, zone)),
            "order": ORDER_TEXT[request.order],
            "page": str(request.page),
            "size": str(request.size),
        }
        template = self._template
        params = tuple((key, values.get(key, value)) for key, value in template.params)
        return make_request(template.method, template.url, params)

    async def _iter_pages(self) -> AsyncGenerator[RecordPage, None]:
        walk = Walk(
            self._start,
            self._end,
            order=self.order,
            page_size=self.page_size,
            concurrency=self.concurrency,
            max_items=self.max_items,
        )
        relay = Relay(walk, self._fetch, self._http, self._pause, self.concurrency)
        try:
            while True:
                while relay.ready:
                    yield relay.ready.popleft()
                if relay.error is not None:
                    raise relay.error
                if walk.done:
                    return
                await relay.next_news()
        finally:
            await relay.close()
