"""`RecordPager`: every record of any time range, page by page, each exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING

from . import _endpoints as ep
from ._exceptions import ResponseError, ValidationError
from ._models import Order, Record, RecordPage
from ._timeutil import MAX_WINDOW, split_time_range

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["RecordPager"]

_MS_THRESHOLD = 10**11


def _seconds(raw: int) -> int:
    # create_at has no documented unit (see Record.created_at).
    return raw // 1000 if raw >= _MS_THRESHOLD else raw


class RecordPager:
    """A lazy walk over the records of a time range; nothing is sent until iterated.

    ``async for record in pager`` yields `Record`s; ``pager.pages()`` yields
    `RecordPage`s (deduplicated). A range over 24 h is walked window by window
    (`split_time_range`) in the requested order. The walk stops at the latest
    ``total``, on an empty page, or at ``max_items``; a ``record_id`` is never yielded
    twice; a server that does not advance pages, or sends more pages than its ``total``
    allows, raises `ResponseError`.

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
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValidationError(
                f"concurrency must be an int >= 1, not {concurrency!r}", field="concurrency"
            )
        self.concurrency = concurrency
        if max_items is not None and (
            isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0
        ):
            raise ValidationError(
                f"max_items must be an int >= 0 or None, not {max_items!r}", field="max_items"
            )
        self.max_items = max_items
        windows = split_time_range(start, end, MAX_WINDOW)
        self.windows = windows if self.order is Order.ASCENDING else windows[::-1]

    def __repr__(self) -> str:
        first, last = self.windows[0], self.windows[-1]
        lo = min(first[0], last[0]).isoformat()
        hi = max(first[1], last[1]).isoformat()
        return (
            f"RecordPager({lo} .. {hi}, sn={self.sn!r}, order={self.order.name}, "
            f"windows={len(self.windows)}, page_size={self.page_size})"
        )

    def __aiter__(self) -> AsyncIterator[Record]:
        return self._iter_records()

    async def _iter_records(self) -> AsyncIterator[Record]:
        async for page in self._iter_pages():
            for record in page.records:
                yield record

    def pages(self) -> AsyncIterator[RecordPage]:
        """Iterate page by page; each page holds only records not yielded before."""
        return self._iter_pages()

    async def _iter_pages(self) -> AsyncIterator[RecordPage]:
        remaining = self.max_items
        if remaining == 0:
            return
        # Neighbouring windows share their boundary instant, so a record stored in that
        # second can come in both: remember those ids from one window to the next.
        carried: set[int] = set()
        for lo, hi in self.windows:
            boundary = _seconds(int((hi if self.order is Order.ASCENDING else lo).timestamp()))
            near_edge: set[int] = set()
            async for page in self._walk_window(lo, hi, carried):
                records = page.records
                for record in records:
                    if abs(_seconds(record.create_at) - boundary) <= 1:
                        near_edge.add(record.record_id)
                if remaining is not None:
                    if len(records) >= remaining:
                        records = records[:remaining]
                    remaining -= len(records)
                if records:
                    yield RecordPage(page.page_num, page.page_size, page.total, records)
                if remaining == 0:
                    return
            carried = near_edge

    async def _walk_window(
        self, lo: datetime, hi: datetime, carried: set[int]
    ) -> AsyncIterator[RecordPage]:
        seen: set[int] = set()
        previous_ids: tuple[int, ...] = ()
        fetched = 0
        page_no = 1
        while True:
            request = ep.build_list_records(
                self._client.base_url,
                lo,
                hi,
                sn=self.sn,
                order=self.order,
                page=page_no,
                size=self.page_size,
            )
            page = await self._client._fetch_page(request)
            ids = tuple(record.record_id for record in page.records)
            if ids and ids == previous_ids:
                raise ResponseError(
                    f"page {page_no} repeats page {page_no - 1}: the server is not advancing pages",
                    request=request.info(),
                )
            size = min(self.page_size, page.page_size) if page.page_size > 0 else self.page_size
            if ids and (page_no - 1) * size >= page.total:
                raise ResponseError(
                    f"page {page_no} has records but total={page.total} allows only "
                    f"{-(-page.total // size)} pages of {size}",
                    request=request.info(),
                )
            fresh = tuple(
                record
                for record in page.records
                if record.record_id not in seen and record.record_id not in carried
            )
            seen.update(ids)
            fetched += len(ids)
            yield RecordPage(page.page_num, page.page_size, page.total, fresh)
            if not ids or fetched >= page.total:
                return
            previous_ids = ids
            page_no += 1
