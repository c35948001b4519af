"""The one fake listing of the tests: an honest page/size server that changes while it is read.

`Listing` keeps records as ``(record_id, create_at)`` in ``record_id`` order and answers
a list call the way page/size APIs are usually built: it counts, then selects (so
``total`` may be a few versions stale), and filters ``time_from <= create_at <=
time_to`` comparing milliseconds or whole seconds. Between answers, `Churn` adds records
at the newest end (never behind the newest ``create_at``) and expires the oldest.

`walk` drives `senselink_plus._paging.Walk` against it without an event loop: calls in
flight are answered in an order the caller picks (a random one, in the searches), and
churn may land between any two answers, so a page fetched early may be answered late.

The server's one rule for a window lives in `in_window`; `list_data` applies it to wire
records for fakes that answer HTTP requests (a ``FakeServer`` over a table a test edits).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from senselink_plus import Order, Record, RecordPage
from senselink_plus._paging import PageRequest, Walk

#: A ``create_at`` at or above this is in milliseconds (1973 in ms, year 5138 in seconds).
MS = 10**11


def record(record_id: int, create_at: int, sn: str = "GATE-1") -> Record:
    return Record(
        record_id=record_id,
        sn=sn,
        image_id=f"img{record_id}",
        user_id=None,
        verify_score=0.0,
        device_timestamp=create_at,
        timezone="GMT+9:00",
        create_at=create_at,
        extend=None,
    )


def second_of(create_at: int) -> int:
    return create_at // 1000 if create_at >= MS else create_at


def in_window(create_at: int, lo: int, hi: int, *, whole_seconds: bool = False) -> bool:
    """Whether the server lists ``create_at`` (ms or s) for bounds ``lo``..``hi`` (unix
    seconds, both inclusive): compared in the record's own unit, or in whole seconds."""
    if whole_seconds:
        return lo <= second_of(create_at) <= hi
    if create_at >= MS:
        return lo * 1000 <= create_at <= hi * 1000
    return lo <= create_at <= hi


def window_of(params: Mapping[str, str]) -> tuple[int, int]:
    """A list call's ``time_from`` and ``time_to`` as unix seconds."""
    lo, hi = (datetime.fromisoformat(params[key]) for key in ("time_from", "time_to"))
    return int(lo.timestamp()), int(hi.timestamp())


def list_data(
    rows: Sequence[Mapping[str, Any]],
    params: Mapping[str, str],
    *,
    cap: int = 100,
    whole_seconds: bool = False,
) -> dict[str, Any]:
    """The ``data`` of a list call's answer over wire records kept in ``record_id`` order:
    those in the window (and of the ``sn`` asked), in the order asked, one page of them;
    pages of at most ``cap`` records, as ``page_size`` says."""
    lo, hi = window_of(params)
    sn = params.get("sn")
    hits = [
        row
        for row in rows
        if in_window(row["create_at"], lo, hi, whole_seconds=whole_seconds)
        and sn in (None, row["sn"])
    ]
    if params["order"] == "0":
        hits.reverse()
    page, size = int(params["page"]), min(int(params["size"]), cap)
    chunk = hits[(page - 1) * size : page * size]
    return {"page_num": page, "page_size": size, "total": len(hits), "list": chunk}


@attrs.define
class Listing:
    """An honest page/size listing over records kept in ``record_id`` order."""

    ids: list[int] = attrs.Factory(list)
    times: list[int] = attrs.Factory(list)
    #: Compare bounds in whole seconds (else in the records' own unit, ms or s).
    whole_seconds: bool = False
    #: ``total`` is computed this many versions before the page is selected.
    stale: int = 0
    #: Serve at most this many records a page, and say so in ``page_size``.
    cap: int = 100
    #: Added to every ``total`` (a count that is simply wrong).
    total_error: int = 0
    calls: list[PageRequest] = attrs.Factory(list)
    _history: list[tuple[list[int], list[int]]] = attrs.Factory(list)

    @classmethod
    def of(cls, times: list[int], first_id: int = 1, **options: Any) -> Listing:
        times = sorted(times)
        return cls(list(range(first_id, first_id + len(times))), times, **options)

    def add(self, create_at: int) -> None:
        self._remember()
        next_id = self.ids[-1] + 1 if self.ids else 1
        self.ids.append(next_id)
        self.times.append(max(create_at, self.times[-1] if self.times else create_at))

    def expire(self, count: int = 1) -> None:
        self._remember()
        del self.ids[:count], self.times[:count]

    def _remember(self) -> None:
        self._history.append((list(self.ids), list(self.times)))
        del self._history[: -max(self.stale, 1)]

    def _matches(self, at: int, lo: int, hi: int) -> bool:
        return in_window(at, lo, hi, whole_seconds=self.whole_seconds)

    def _select(self, ids: list[int], times: list[int], lo: int, hi: int) -> list[int]:
        return [i for i, at in zip(ids, times, strict=True) if self._matches(at, lo, hi)]

    def answer(self, request: PageRequest) -> RecordPage:
        assert request.time_from < request.time_to, f"a window of no length: {request}"
        self.calls.append(request)
        ids, times = self.ids, self.times
        if self.stale and self._history:
            ids, times = self._history[-min(self.stale, len(self._history))]
        counted = self._select(ids, times, request.time_from, request.time_to)
        total = max(0, len(counted) + self.total_error)
        rows = [
            (i, at)
            for i, at in zip(self.ids, self.times, strict=True)
            if self._matches(at, request.time_from, request.time_to)
        ]
        if request.order is Order.DESCENDING:
            rows.reverse()
        size = min(request.size, self.cap)
        chunk = rows[(request.page - 1) * size : request.page * size]
        return RecordPage(request.page, size, total, tuple(record(i, at) for i, at in chunk))

    def snapshot(self) -> Listing:
        """A copy frozen as the listing is now (to answer a call as it was when sent)."""
        return attrs.evolve(self, ids=list(self.ids), times=list(self.times), calls=self.calls)

    def between(self, lo: int, hi: int) -> list[int]:
        """Ids the listing ``[lo, hi]`` holds now."""
        return [i for i, at in zip(self.ids, self.times, strict=True) if self._matches(at, lo, hi)]


@attrs.define
class Churn:
    """Arrivals and expiries that land between answers."""

    rng: random.Random
    arrivals: int = 0  # at most this many per answer
    expiries: int = 0
    #: create_at of arrivals: the newest's, plus 0..step (in the records' unit).
    step: int = 1000

    def apply(self, listing: Listing) -> None:
        for _ in range(self.rng.randint(0, self.arrivals)):
            newest = listing.times[-1] if listing.times else 0
            listing.add(newest + self.rng.randint(0, self.step))
        count = self.rng.randint(0, self.expiries)
        if count:
            listing.expire(count)


def walk(
    listing: Listing,
    start: int,
    end: int,
    *,
    order: Order = Order.ASCENDING,
    page_size: int = 100,
    concurrency: int = 1,
    max_items: int | None = None,
    churn: Churn | None = None,
    pick: Callable[[int], int] = lambda n: 0,
    max_calls: int = 100_000,
) -> list[int]:
    """The ids `Walk` yields over ``listing``; ``pick(n)`` chooses which of the ``n``
    calls in flight is answered next (0: the oldest)."""
    walker = Walk(
        start, end, order=order, page_size=page_size, concurrency=concurrency, max_items=max_items
    )
    flight: list[PageRequest] = []
    got: list[int] = []
    while not walker.done:
        flight.extend(walker.sends())
        assert flight, "the walk is not over but asks for nothing"
        assert len(flight) <= concurrency, "more calls in flight than the concurrency"
        request = flight.pop(pick(len(flight)))
        if churn is not None:
            churn.apply(listing)
        step = walker.feed(request, listing.answer(request))
        got.extend(r.record_id for page in step.pages for r in page.records)
        assert len(listing.calls) <= max_calls, "the walk does not end"
    return got


def present_throughout(before: list[int], after: list[int]) -> set[int]:
    """Ids present at the start and still at the end (none can have left and come back)."""
    return set(before) & set(after)


def in_order(ids: list[int], order: Order) -> bool:
    pairs = itertools.pairwise(ids)
    if order is Order.ASCENDING:
        return all(a < b for a, b in pairs)
    return all(a > b for a, b in pairs)


__all__ = [
    "Churn",
    "Listing",
    "in_order",
    "in_window",
    "list_data",
    "present_throughout",
    "record",
    "second_of",
    "walk",
    "window_of",
]
