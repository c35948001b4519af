"""`RecordPager`: every record of any time range, page by page, each exactly once.

What is guaranteed while records are being written to the range being read:

- Every record present when the walk starts, and still present when it ends, is
  yielded exactly once, in the requested order.
- Records are deduplicated by ``record_id``. New records land at one end of the
  ``record_id`` order: in descending order they push older ones onto later pages (seen
  again, dropped), in ascending order they extend the last page. Records expiring out
  of retention leave from the oldest end, which in ascending order pulls later records
  onto earlier pages; a falling ``total`` is the sign, and the walker then resumes at
  page 1 from the second of the last record it yielded, so page numbers never have to
  keep up with a listing that keeps moving.
- A page fetched ahead (``concurrency`` > 1) is used only if it was read in the same or
  a later state of the listing than the page before it (judged by ``total``); otherwise
  it is fetched again.
- A record added during the walk may or may not be yielded: in ascending order it
  usually is (the walk follows the growing ``total``); in descending order it is not,
  since the top of the listing has already been read. Use ``watch`` to follow new
  records.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from . import _endpoints as ep
from ._checks import check_int
from ._exceptions import ResponseError
from ._http import HttpRequest
from ._models import Order, Record, RecordPage
from ._timeutil import MAX_WINDOW, floor_second, from_wire_timestamp, split_time_range

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["RecordPager"]

_MS_THRESHOLD = 10**11


def _raw_bounds(lo_s: int, hi_s: int) -> tuple[int, int, int, int]:
    """Bounds for raw ``create_at`` values of the seconds ``[lo_s, hi_s]``, in both units.

    ``create_at`` has no documented unit (see Record.created_at): values >= 10**11 are
    milliseconds, smaller ones seconds. A raw value ``v`` lies in the span when
    ``s_lo <= v <= s_hi or ms_lo <= v <= ms_hi``: a per-record test with no calls.
    """
    return (
        lo_s,
        min(hi_s, _MS_THRESHOLD - 1),
        max(lo_s * 1000, _MS_THRESHOLD),
        hi_s * 1000 + 999,
    )


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class RecordPager:
    """A lazy walk over the records of a time range; nothing is sent until iterated.

    ``async for record in pager`` yields `Record`s; ``pager.pages()`` yields
    `RecordPage`s holding only records not yielded before. A range over 24 h is walked
    window by window (`split_time_range`) in the requested order. Within a window, once
    the first page gives ``total``, up to ``concurrency`` pages are fetched at once and
    yielded in order (so about that many pages are held in memory, whatever the range).
    The walk stops at the latest ``total``, on an empty page, or at ``max_items``; a
    ``record_id`` is never yielded twice; a server that does not advance pages, or sends
    more pages than its ``total`` allows, raises `ResponseError`. Breaking out of the
    loop cancels any page still in flight.

    >>> async for record in client.records(t0, t0 + timedelta(days=3)):  # doctest: +SKIP
    ...     print(record.record_id)
    """

    def __init__(
        self,
        client: Client,
        time_from: datetime | str,
        time_to: datetime | str,
        *,
        sn: str | None,
        order: Order | int,
        page_size: int,
        concurrency: int,
        max_items: int | None,
    ) -> None:
        # Everything is checked here so bad input fails at the call, before iteration.
        start, end = ep.window_bounds(time_from, time_to)
        self._client = client
        self.sn = None if sn is None else ep.check_sn(sn)
        self.order = ep.check_order(order)
        self.page_size = ep.check_page_size(page_size, "page_size")
        self.concurrency = check_int(concurrency, "concurrency")
        self.max_items = None if max_items is None else check_int(max_items, "max_items", minimum=0)
        windows = split_time_range(start, end, MAX_WINDOW)
        self.windows = windows if self.order is Order.ASCENDING else windows[::-1]

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

    async def _iter_pages(self) -> AsyncGenerator[RecordPage, None]:
        remaining = self.max_items
        if remaining == 0:
            return
        # Neighbouring windows share their boundary instant, so a record stored in that
        # second can come in both: remember those ids from one window to the next.
        carried: set[int] = set()
        budget = [remaining]  # read by the walker so it never fetches ahead past max_items
        for lo, hi in self.windows:
            walker = _WindowWalker(self, lo, hi, carried, budget)
            async with contextlib.aclosing(walker.pages()) as pages:
                async for page in pages:
                    records = page.records
                    if remaining is not None:
                        if len(records) > remaining:
                            records = records[:remaining]
                            page = RecordPage(page.page_num, page.page_size, page.total, records)
                        remaining -= len(records)
                        budget[0] = remaining
                    if records:
                        yield page
                    if remaining == 0:
                        return
            carried = walker.near_edge


class _WindowWalker:
    """Reads the pages of one window of at most 24 h, fetching ahead when allowed."""

    def __init__(
        self,
        pager: RecordPager,
        lo: datetime,
        hi: datetime,
        carried: set[int],
        budget: list[int | None],
    ) -> None:
        self._pager = pager
        self._budget = budget
        self._lo = lo
        self._hi = hi
        self._carried = carried
        self._ahead: dict[int, asyncio.Task[RecordPage]] = {}
        self._first: HttpRequest | None = None
        #: Ids yielded from within a second of the boundary shared with the next window.
        self.near_edge: set[int] = set()

    def _resume_from(self, raw_create_at: int) -> None:
        """Narrow the window to start at the second of ``raw_create_at``."""
        start = floor_second(from_wire_timestamp(raw_create_at))
        latest = self._hi - timedelta(seconds=1)
        self._lo = max(self._lo, min(start, latest))
        self._first = None

    def _request(self, page_no: int) -> HttpRequest:
        # The window's first request is built (and checked) in full; the others differ
        # only in their page number.
        first = self._first
        if first is None:
            pager = self._pager
            first = self._first = ep.build_list_records(
                pager._client.base_url,
                self._lo,
                self._hi,
                sn=pager.sn,
                order=pager.order,
                page=1,
                size=pager.page_size,
            )
        if page_no == 1:
            return first
        page = str(page_no)
        params = tuple(
            (key, page) if key == "page" else (key, value) for key, value in first.params
        )
        return HttpRequest._normalised(first.method, first.url, params)

    async def _fetch(self, page_no: int) -> RecordPage:
        task = self._ahead.pop(page_no, None)
        if task is not None:
            return await task
        return await self._pager._client._fetch_page(self._request(page_no))

    def _fetch_ahead(self, first: int, last: int, size: int) -> None:
        last = min(last, first + self._pager.concurrency - 1)
        wanted = self._budget[0]
        if wanted is not None:
            last = min(last, first + _ceil_div(wanted, size) - 1)
        for page_no in range(first, last + 1):
            if page_no not in self._ahead:
                request = self._request(page_no)
                self._ahead[page_no] = asyncio.ensure_future(
                    self._pager._client._fetch_page(request)
                )

    async def _drop_ahead(self) -> None:
        tasks = list(self._ahead.values())
        self._ahead.clear()
        for task in tasks:
            task.cancel()
        # Gathering retrieves every outcome, so no "exception never retrieved" warning.
        await asyncio.gather(*tasks, return_exceptions=True)

    async def pages(self) -> AsyncGenerator[RecordPage, None]:
        try:
            async for page in self._walk():
                yield page
        finally:
            await self._drop_ahead()

    async def _walk(self) -> AsyncGenerator[RecordPage, None]:
        ascending = self._pager.order is Order.ASCENDING
        requested = self._pager.page_size
        seen: set[int] = set()
        # The window in whole seconds, a second wider each side: the server's rounding of
        # its inclusive bounds is not documented.
        s_lo, s_hi, ms_lo, ms_hi = _raw_bounds(
            int(self._lo.timestamp()) - 1, int(self._hi.timestamp()) + 1
        )
        # The instant shared with the next window walked (the end when ascending).
        edge = int((self._hi if ascending else self._lo).timestamp())
        e_lo, e_hi, em_lo, em_hi = _raw_bounds(edge - 1, edge + 1)
        near_edge = self.near_edge
        last_at: int | None = None  # raw create_at of the last record kept
        resumed_at: int | None = None
        prev_total: int | None = None
        prev_ids: tuple[int, ...] = ()
        prev_no = 0
        rereads = 0
        page_no = 1
        while True:
            page = await self._fetch(page_no)
            total = page.total
            size = min(requested, page.page_size) if page.page_size > 0 else requested
            if prev_total is not None and total < prev_total:
                # This page was read in an earlier state than the one before it (fetched
                # ahead), or records left the listing; either way it may have missed some.
                await self._drop_ahead()
                if rereads == 0:
                    rereads = 1
                    continue  # read this page again, in the current state
                if ascending and last_at is not None and last_at != resumed_at:
                    # Records expired from the start and shifted the rest back: page
                    # numbers cannot keep up while that goes on, so resume at page 1 from
                    # the second of the last record yielded (``seen`` drops repeats).
                    # Only once per record yielded, so the walk always moves on.
                    resumed_at = last_at
                    self._resume_from(last_at)
                    page_no = 1
                    prev_total, prev_ids, prev_no, rereads = None, (), 0, 0
                    continue
                prev_total = total  # nothing could have shifted past us
            rereads = 0
            ids = tuple(record.record_id for record in page.records)
            if ids and ids == prev_ids:
                what = f"repeats page {prev_no}" if page_no != prev_no else "came back unchanged"
                raise ResponseError(
                    f"page {page_no} {what} while total={total} promises more: the server "
                    "is not advancing pages",
                    request=self._request(page_no).info(),
                )
            if ids and (page_no - 1) * size >= total:
                raise ResponseError(
                    f"page {page_no} has records but total={total} allows only "
                    f"{_ceil_div(total, size)} pages of {size}",
                    request=self._request(page_no).info(),
                )
            carried = self._carried
            fresh: list[Record] = []
            keep = fresh.append
            remember = seen.add
            for record in page.records:
                record_id = record.record_id
                at = record.create_at
                # A record outside the window asked for is the server's error: it belongs
                # to (and is yielded from) its own window.
                if (
                    record_id in seen
                    or record_id in carried
                    or not (s_lo <= at <= s_hi or ms_lo <= at <= ms_hi)
                ):
                    continue
                remember(record_id)
                keep(record)
                last_at = at
                if e_lo <= at <= e_hi or em_lo <= at <= em_hi:
                    near_edge.add(record_id)
            yield RecordPage(page.page_num, page.page_size, total, tuple(fresh))
            covered = (page_no - 1) * size + len(ids)
            if not ids or covered >= total:
                return
            prev_total, prev_ids, prev_no = total, ids, page_no
            # A short page that total says should hold more (records arrived since it
            # was read) is read again; a full one is followed by the next.
            if len(ids) >= size:
                page_no += 1
            if self._pager.concurrency > 1:
                self._fetch_ahead(page_no, _ceil_div(total, size), size)
