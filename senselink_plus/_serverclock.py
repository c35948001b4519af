"""The watch's one clock, the server's: its now is the last ``Date`` moved on by the
local timer; how far that ``Date`` may run ahead of the clock that stamps
``create_at`` is learnt from every record listed (`DateGap`); a new record stamped
further behind the previous poll's ``Date`` than the overlap widens the overlap.
Each disagreement is logged once, at WARNING. No I/O: the clocks come in as calls."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from ._follow import MAX_SKEW, DateGap, Position, believed_now
from ._models import Record
from ._timeutil import MAX_WINDOW

__all__ = ["SKEW_WARNING", "ServerClock"]

logger = logging.getLogger("senselink_plus")

#: Local and server clocks further apart than this (seconds) are worth a warning.
SKEW_WARNING = 60.0


class ServerClock:
    """One watch's view of the server's time.

    ``clock`` is the local clock (Unix seconds); ``server_time`` returns the server's
    now from its last ``Date`` and that ``Date``'s skew from the local clock (None
    before any response carried one).

    >>> clock = ServerClock(time.time, session.server_time)  # doctest: +SKIP
    >>> lo, hi = position.window(clock.now())  # doctest: +SKIP
    """

    def __init__(
        self,
        clock: Callable[[], float],
        server_time: Callable[[], tuple[float, float] | None],
    ) -> None:
        self.clock = clock
        self.server_time = server_time
        self.gap = DateGap()
        #: The server's time a poll last read complete to (None before one did).
        self.read_to: datetime | None = None
        self.warned_skew = self.warned_late = False

    def now(self) -> datetime:
        """The server's now: its last ``Date`` moved on by the local timer (the local
        clock only when no response carried a ``Date``, or one an hour off)."""
        local = self.clock()
        reading = self.server_time()
        if reading is None:
            return believed_now(None, local)
        now, skew = reading
        if abs(skew) > SKEW_WARNING and not self.warned_skew:
            self.warned_skew = True
            logger.warning(
                "watch: the local clock is %+.0f s off the server's (from its Date header); %s",
                -skew,
                "the watch follows the server's time"
                if abs(skew) <= MAX_SKEW
                else f"over {MAX_SKEW:.0f} s is not the server's clock, so the local one is used",
            )
        return believed_now(now, local)

    def listed(self, newest: datetime) -> None:
        """A response just listed a record stored at ``newest``."""
        self.gap.note(self.now(), newest)

    def read_complete(self, hi: datetime) -> datetime:
        """A poll read everything up to ``hi`` (or up to the server's now if that is
        earlier: ``hi`` came from the local clock when no ``Date`` had been seen yet).
        Returns how far an idle position may move, in ``create_at``'s clock: that,
        less how far the ``Date`` may run ahead."""
        self.read_to = min(hi, self.now())
        return self.read_to - self.gap.lead()

    def check_late(self, position: Position, record: Record) -> None:
        """A new record stamped further behind the last poll's ``Date`` than the overlap:
        the ``Date`` runs ahead of ``create_at``'s clock (or commits are that late).
        Widen the overlap so the next one is found too, and say so once."""
        read_to = self.read_to
        if read_to is None:
            return
        late = read_to - record.created_at
        overlap = position.overlap
        if late <= overlap:
            return
        position.widen(min(2 * late, MAX_WINDOW / 2))
        if not self.warned_late:
            self.warned_late = True
            logger.warning(
                "watch: record %d is stamped %.0f s before the server's Date of the poll "
                "before it, more than the overlap (%.0f s): the Date header runs ahead of "
                "the clock that stamps create_at (or commits are that late); the overlap "
                "is widened to %.0f s",
                record.record_id,
                late.total_seconds(),
                overlap.total_seconds(),
                position.overlap.total_seconds(),
            )
