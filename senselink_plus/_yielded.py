"""What a walk has yielded: the one output of `_paging.Walk`, checked and capped.

Every page the walk yields passes `Yielded.emit`. It trims the page to ``max_items``
and checks that the page's first ``record_id`` moves on past the last one yielded
(along the walk's order): a server whose ``create_at`` disagrees with its order gets
`ResponseError`, and no record is ever yielded twice.

"""

from __future__ import annotations

import attrs

from ._exceptions import ResponseError
from ._models import RecordPage
from ._walkorder import BIG, Axis

__all__ = ["Step", "Yielded"]


@attrs.frozen
class Step:
    """After one answer: yield ``pages`` in order; back off ``backoff`` attempts' worth."""

    pages: tuple[RecordPage, ...] = ()
    backoff: int = 0


class Yielded:
    """How many records were yielded, and the last one's place along the walk."""

    def __init__(self, axis: Axis, max_items: int | None) -> None:
        self.axis = axis
        self.max_items = max_items
        self.count = 0
        self._last_rid = -BIG  # of the last record yielded, along the walk

    @property
    def full(self) -> bool:
        """``max_items`` records were yielded."""
        return self.max_items is not None and self.count >= self.max_items

    def wanted(self) -> int | None:
        """How many more records are wanted (None: all there are)."""
        return None if self.max_items is None else self.max_items - self.count

    def emit(self, page: RecordPage) -> RecordPage:
        """``page`` as it is yielded: trimmed to ``max_items``, checked to move on."""
        records = page.records
        wanted = self.wanted()
        if wanted is not None:
            records = records[: max(0, wanted)]
        if not records:
            return RecordPage(page.page_num, page.page_size, page.total, ())
        first, last = self.axis.rid(records[0]), self.axis.rid(records[-1])
        if first <= self._last_rid:
            raise ResponseError(
                f"record {records[0].record_id} comes again, or out of order, although the "
                "walk has passed it: the server's create_at disagrees with its order"
            )
        self._last_rid = last
        self.count += len(records)
        if len(records) != len(page.records):
            return RecordPage(page.page_num, page.page_size, page.total, records)
        return page
