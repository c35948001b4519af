"""The paging decisions of `records()`, as a pure object: fed pages, it says what to do.

`Walk` holds no client, reads no clock and never awaits: `Walk.sends` says which list
calls to send, `Walk.feed` takes each answer (in any order) and says what to yield.

**Invariant: a record is yielded only from a page that provably continues the walk.**
The range is cut into disjoint *slices* of whole seconds (`_slice.Slice`), each with its
own watermark ``mark`` (everything at or behind it is taken). A slice takes records
only from page 1 of a listing that starts at or before its mark's second, or from a page
whose first record is at or behind its mark. Proof that nothing is skipped: the listing
is ordered by ``record_id`` and ``create_at`` follows it, so every record ahead of the
mark is in such a listing after everything behind it; either page is contiguous and
holds a record behind the mark (or starts the listing), so the records of it ahead of
the mark are exactly the next ones of the slice. A slice ends on a short page, or on a
page showing a record past its end: all it still owned came before, in that page. A
slice's listing starts inside the slice, so arrivals and expiries elsewhere cannot move
it; slices are yielded in order, and every ``record_id`` yielded is checked to move on
past the last, so none is yielded twice. ``total`` decides nothing.

Bounds: every answer takes a record, ends a slice, walks on through one crowded second
or fails its check; a slice raises `ResponseError` after `FAIL_LIMIT` + 1 failed checks
in a row or `WALK_LIMIT` + 1 pages walking on, and slices last at least a second. After
`PROBE_AFTER` answers an ascending walk asks for the newest record and reads nothing
past it (`_horizon`), so a range that ends in the future is read up to what existed
then. Up to ``concurrency`` calls are in flight; no read ahead is sent past ``P *
concurrency`` pages held, waiting for the consumer or on their way (P =
`SlicePlanner.pages`: 4 of 50-100 records, more smaller).
"""

from __future__ import annotations

import collections

from ._endpoints import MAX_PAGE_SIZE
from ._horizon import PROBE_AFTER, Horizon
from ._models import Order, RecordPage
from ._slice import FAIL_LIMIT, WALK_LIMIT, Part, Plan, Slice
from ._slice_plan import SlicePlanner
from ._walkorder import BIG, Axis, Key, PageRequest
from ._yielded import Step, Yielded

__all__ = ["FAIL_LIMIT", "PROBE_AFTER", "WALK_LIMIT", "PageRequest", "Step", "Walk"]


class Walk:
    """Every record of ``[start, end]`` (unix seconds), in ``order``, once."""

    def __init__(
        self,
        start: int,
        end: int,
        *,
        order: Order,
        page_size: int,
        concurrency: int,
        max_items: int | None = None,
    ) -> None:
        self.axis = Axis(order, start, end)
        self.page_size = page_size
        self.concurrency = concurrency
        self.out = Yielded(self.axis, max_items)
        self.parts: collections.deque[Part] = collections.deque()
        #: Walk seconds no slice holds yet: cut into windows as they are needed.
        self._rest: tuple[int, int] | None = (self.axis.first, self.axis.last)
        self._newest = Key(self.axis.last, BIG)  # nothing past it is read (what a probe found)
        self.planner = SlicePlanner(page_size)
        self.flight: dict[int, tuple[Part | None, Plan]] = {}
        self.largest = MAX_PAGE_SIZE  # the largest page the server serves
        self._seq = 0
        probing = self.axis.ascending and max_items is None  # else the walk is bounded
        self.horizon = Horizon(start, end) if probing else None

    @property
    def done(self) -> bool:
        return self.out.full or (not self.parts and self._rest is None)

    # --- what to send ------------------------------------------------------------------

    def sends(self, waiting: int = 0, *, ahead: bool = True) -> list[PageRequest]:
        """The calls to send now (each once), up to ``concurrency`` in flight. ``waiting``:
        pages yielded and not yet taken (they count against the read-ahead budget, as
        pages held and calls in flight do); ``ahead=False``: nothing read ahead, only the
        head slice's next page (and a probe when due)."""
        out = []
        while len(self.flight) < self.concurrency and not self.done:
            due = self.horizon is not None and self.horizon.due
            request = self._probe() if due else self._next_read(waiting, ahead)
            if request is None:
                break
            out.append(request)
        return out

    def _next_read(self, waiting: int, ahead: bool) -> PageRequest | None:
        if not self.parts:
            self._carve()
        head = self.parts[0]
        if not head.reading and not head.slice.done:
            return self._start(head)
        return self._read_ahead(waiting) if ahead else None

    def _read_ahead(self, waiting: int) -> PageRequest | None:
        """The next call past the head slice, within the memory budget (None: none)."""
        index = 0
        while self._may_read_ahead(waiting):
            if index == len(self.parts) and not self._carve():
                return self._halve()
            part = self.parts[index]
            if not part.reading and not part.slice.done:
                return self._start(part)
            if part.reading:  # what lies a slice's length past its mark comes next
                self._cut(index, self.planner.ahead(part.slice.mark.second, part.slice.last))
            index += 1
        return None

    def _carve(self) -> bool:
        """Append the next window of the range to the slices (False: none is left)."""
        if self._rest is None:
            return False
        first, last = self._rest
        end = min(self.axis.window(first), last)
        self._rest = (end + 1, last) if end < last else None
        window = Slice.of(first, end)
        window.end = min(window.end, self._newest)
        self.parts.append(Part(window))
        return True

    def _may_read_ahead(self, waiting: int) -> bool:
        """Within the memory budget, and (with ``max_items``) while the slices started
        are not expected to hold all that is still wanted."""
        held = waiting + len(self.flight) + sum(len(part.held) for part in self.parts)
        if held >= self.planner.pages * self.concurrency:
            return False
        wanted = self.out.wanted()
        return wanted is None or self._wants_more(wanted)

    def _wants_more(self, wanted: int) -> bool:
        if not self.planner.known:
            return not self.flight  # one call at a time until an answer tells the density
        wanted -= sum(len(page) for part in self.parts for page in part.held)
        started = (part.slice for part in self.parts if part.started and not part.slice.done)
        expected = sum(self.planner.expected(s.last - s.mark.second + 1) for s in started)
        return expected < wanted

    def _halve(self) -> PageRequest | None:
        """At the walk's end, with a call to spare: read the far half of the longest slice apart."""
        reading = [part.slice for part in self.parts if part.reading]
        whole = max(reading, key=lambda s: s.last - s.mark.second, default=None)
        if whole is None:
            return None
        index = next(i for i, part in enumerate(self.parts) if part.slice is whole)
        if not self._cut(index, self.planner.half(whole.mark.second, whole.last)):
            return None
        return self._start(self.parts[index + 1])

    def _cut(self, index: int, last: int | None) -> bool:
        """End the slice at ``index`` at walk second ``last`` (None: leave it whole)."""
        rest = None if last is None else self.parts[index].slice.cut(last)
        if rest is not None:
            self.parts.insert(index + 1, Part(rest))
        return rest is not None

    def _start(self, part: Part) -> PageRequest:
        whole = part.slice
        if not part.started:
            part.started = True
            if self.planner.known:
                part.sized = True
                self._cut(self.parts.index(part), self.planner.ahead(whole.first, whole.last))
        size = min(self.page_size, self.largest)
        wanted = self.out.wanted()
        if wanted is not None and part is self.parts[0]:
            # What is still wanted, and one more: a keyset page starts with the mark.
            size = min(size, wanted + 1)
        plan = whole.plan(size, self.largest)
        part.reading = True
        time_from, time_to = self.axis.bounds(plan.listing, whole.last)
        return self._send(part, plan, time_from, time_to, self.axis.order)

    def _probe(self) -> PageRequest:
        """Ask for the newest record (see `Horizon`)."""
        assert self.horizon is not None
        time_from, time_to = self.horizon.next_probe()
        return self._send(None, Plan(time_from, 1, 1), time_from, time_to, Order.DESCENDING)

    def _send(
        self, part: Part | None, plan: Plan, time_from: int, time_to: int, order: Order
    ) -> PageRequest:
        self._seq += 1
        self.flight[self._seq] = (part, plan)
        return PageRequest(self._seq, time_from, time_to, plan.page, plan.size, order)

    # --- what an answer means ------------------------------------------------------------

    def feed(self, request: PageRequest, page: RecordPage) -> Step:
        """Take the answer to ``request`` (sent by `sends`, answered in any order)."""
        part, plan = self.flight.pop(request.seq)
        records, keys = self.axis.checked(request, page.records)
        strays = len(page.records) - len(records)
        if part is None:
            assert self.horizon is not None
            newest = self.horizon.probed(request.time_from, keys)
            if newest is not None:
                self._cap(newest)
            return Step(self._flush())
        if self.horizon is not None:
            self.horizon.answered(keys)
        part.reading = False
        whole = part.slice
        served = plan.size
        if 0 < page.page_size < served:  # the server capped the size: it says so
            served = self.largest = page.page_size
        taken = whole.take(plan, keys, served - strays)
        part.pages += 1
        if taken.stop > taken.start:
            found = records[taken.start : taken.stop]
            part.held.append(RecordPage(page.page_num, page.page_size, page.total, found))
        if taken.seconds:
            self.planner.observe(taken.stop - taken.start, taken.seconds, full=not taken.done)
        return Step(self._flush(), max(0, whole.failures - 1))

    def _cap(self, newest: Key) -> None:
        """Nothing past ``newest`` existed when the probe was answered: read no further."""
        self._newest = min(self._newest, newest)
        if self._rest is not None:
            first, last = self._rest
            self._rest = (first, min(last, newest.second)) if first <= newest.second else None
        for part in self.parts:
            part.slice.cap(newest, reading=part.reading)

    def _flush(self) -> tuple[RecordPage, ...]:
        """Yield what the slices at the head hold, in order; drop the slices read out."""
        out: list[RecordPage] = []
        while self.parts and not self.done:
            head = self.parts[0]
            out += [page for page in map(self.out.emit, head.held) if page.records]
            head.held.clear()
            if not head.slice.done:
                break
            if head.sized:
                self.planner.finished(head.pages)
            self.parts.popleft()
        return tuple(out)
