"""How far an ascending walk reads: up to the newest record when it began, found by asking.

Records keep arriving at the newest end while a walk reads, so an ascending walk over a
range that ends in the future could chase them forever. After `PROBE_AFTER` answers (a
walk of a few pages never asks) `Horizon` says to ask for the newest record: a
descending page of 1 over the last day of the range. None there: the day before, and so
on back to the newest record any answer showed. What it finds bounds the walk; what
arrives later is for `watch`. An answer older than a record already seen came from a
server that does not sort as asked: it bounds nothing.

>>> horizon = Horizon(start=0, end=200_000)
>>> horizon.next_probe()  # the last day of the range, to its end
(113600, 200000)
"""

from __future__ import annotations

from collections.abc import Sequence

from ._walkorder import BIG, DAY, Key

__all__ = ["PROBE_AFTER", "Horizon"]

#: Answers an ascending walk takes before it asks for the newest record.
PROBE_AFTER = 16


class Horizon:
    """The newest record an ascending walk has seen, and the probes that bound it."""

    def __init__(self, start: int, end: int) -> None:
        self.end = end
        self.seen = Key(start, -BIG)  # the newest record any answer showed
        self.due = False
        self._answers = 0
        self._probe_end = end  # the next probe reads back from this second

    def answered(self, keys: Sequence[Key]) -> None:
        """A page of the walk came back (its keys along the walk)."""
        if keys:
            self.seen = max(self.seen, keys[-1])
        self._answers += 1
        if self._answers == PROBE_AFTER:
            self.due = True

    def next_probe(self) -> tuple[int, int]:
        """``(time_from, time_to)`` of the next probe (it is no longer due)."""
        self.due = False
        time_to = min(self._probe_end + 1, self.end)  # all of its last second
        return min(max(time_to - DAY, self.seen.second), time_to - 1), time_to

    def probed(self, time_from: int, keys: Sequence[Key]) -> Key | None:
        """The probe from ``time_from`` found ``keys``: the key nothing past which
        existed then (None: it bounds nothing). With nothing found, the day before is
        probed next, down to the newest second seen."""
        if keys:
            return keys[-1] if keys[-1] >= self.seen else None
        if time_from > self.seen.second:
            self._probe_end = time_from - 1
            self.due = True
        return Key(time_from - 1, BIG)
