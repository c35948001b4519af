"""`ServerDate`: the server's time, read from the ``Date`` header of its answers."""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from datetime import timezone

__all__ = ["ServerDate", "parse_http_date"]


def parse_http_date(raw: str) -> float | None:
    """The epoch seconds an HTTP ``Date`` value names, or None when it names none.

    >>> parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT")
    784111777.0
    """
    try:
        when = email.utils.parsedate_to_datetime(raw)
        if when.tzinfo is None:  # "-0000": UTC, as HTTP dates always are
            when = when.replace(tzinfo=timezone.utc)
        return when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class ServerDate:
    """The server's time: its last ``Date`` header, moved on by the local timer.

    ``clock`` is local wall time, ``timer`` monotonic. The header changes once a second
    at most, so `note` parses a value only when it changed, and keeps the first reading
    of each (the closest to the second it names). A session and its copies share one;
    a watch reads it through `Session.server_time` (its own view of the server's time,
    with skew warnings, is `_serverclock.ServerClock`).

    >>> server = ServerDate(clock=lambda: 100.0, timer=lambda: 5.0)
    >>> server.note("Thu, 01 Jan 1970 00:02:00 GMT")
    >>> server.now()
    (120.0, 20.0)
    """

    __slots__ = ("_clock", "_reading", "_timer", "raw")

    def __init__(self, clock: Callable[[], float], timer: Callable[[], float]) -> None:
        self._clock = clock
        self._timer = timer
        #: The ``Date`` value of the reading (None before one).
        self.raw: str | None = None
        # (server epoch, local timer, local clock) when ``raw`` was first seen.
        self._reading: tuple[float, float, float] | None = None

    def note(self, raw: str | None) -> None:
        """Take a response's ``Date`` value (None, or one that does not parse: ignored)."""
        if raw is None or raw == self.raw:
            return
        server = parse_http_date(raw)
        if server is not None:
            self.raw = raw
            self._reading = (server, self._timer(), self._clock())

    def now(self) -> tuple[float, float] | None:
        """The server's time now and how far the local clock is off it (server minus
        local), in seconds; None until a usable ``Date`` was seen."""
        if self._reading is None:
            return None
        server, timer, clock = self._reading
        return server + (self._timer() - timer), server - clock
