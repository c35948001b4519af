"""Time conversions the wire needs: ISO windows, unix seconds, GMT labels, 24 h splits."""

from __future__ import annotations

import itertools
import operator
import time
from datetime import datetime, timedelta, timezone

from ._checks import shown
from ._exceptions import ValidationError

__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_WINDOW",
    "ceil_second",
    "floor_second",
    "from_wire_timestamp",
    "gmt_label",
    "local_label",
    "offset_label",
    "real_span",
    "split_time_range",
    "to_aware",
    "to_wire_time",
    "wire_second",
]

#: The longest window one list call may ask for.
MAX_WINDOW = timedelta(hours=24)

_MS_THRESHOLD = 10**11

#: Input times must lie in ``[EARLIEST, LATEST)``: the service counts in unix time, and
#: the margin below `datetime.max` keeps rounding, windows and zone changes in range.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9999, 1, 1, tzinfo=timezone.utc)


def to_aware(value: datetime | str, field: str) -> datetime:
    """Return ``value`` as an aware datetime; a naive one or a bad string is refused."""
    # The usual case, a fixed-offset datetime in range, is checked without the general
    # path's guards: such a tzinfo always answers.
    if type(value) is datetime and type(value.tzinfo) is timezone and EARLIEST <= value < LATEST:
        return value
    if isinstance(value, str):
        value = _from_iso(value, field)
    elif not isinstance(value, datetime):
        raise ValidationError(
            f"{field} must be an aware datetime or an ISO-8601 string, not {type(value).__name__}",
            field=field,
        )
    _check_zone(value, field)
    if not EARLIEST <= value < LATEST:
        raise ValidationError(
            f"{field} {value.isoformat()} is out of range: times must be from "
            f"{EARLIEST.isoformat()} up to {LATEST.isoformat()}",
            field=field,
        )
    return value


def _from_iso(value: str, field: str) -> datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f"{field} {value!r} is not an ISO-8601 time (e.g. 2022-12-11T00:00:00+09:00)",
            field=field,
        ) from None


def _check_zone(value: datetime, field: str) -> None:
    """Refuse a naive datetime, or one whose tzinfo does not answer."""
    try:
        offset = value.utcoffset()
    except (TypeError, ValueError) as exc:  # a tzinfo that does not work
        raise ValidationError(f"{field} has an unusable time zone: {exc}", field=field) from None
    if offset is None:
        raise ValidationError(
            f"{field} {value.isoformat()} has no time zone; pass an aware datetime "
            "(e.g. datetime.now(timezone.utc)) so no zone is guessed",
            field=field,
        )


def floor_second(value: datetime) -> datetime:
    """Drop the microseconds."""
    return value.replace(microsecond=0)


def ceil_second(value: datetime) -> datetime:
    """Round up to the next whole second unless already whole."""
    if value.microsecond == 0:
        return value
    return _add(value.replace(microsecond=0), timedelta(seconds=1))


def _add(value: datetime, delta: timedelta) -> datetime:
    # Aware arithmetic with one tzinfo is wall-clock arithmetic; go through UTC so a
    # DST change never makes a 24 h window 23 or 25 real hours long.
    tz = value.tzinfo
    return (value.astimezone(timezone.utc) + delta).astimezone(tz)


def real_span(start: datetime, end: datetime) -> timedelta:
    """``end - start`` in elapsed time.

    Python subtracts and compares two datetimes of the same tzinfo on the wall clock,
    ignoring DST changes and ``fold``: across a fall-back, 24 wall-clock hours are 25
    real ones, and 02:30 (fold=0) to 02:30 (fold=1) is an hour, not zero.
    """
    zone = start.tzinfo
    if zone is end.tzinfo and type(zone) is timezone:
        return end - start  # one fixed offset: wall-clock and elapsed time agree
    return end.astimezone(timezone.utc) - start.astimezone(timezone.utc)


def to_wire_time(value: datetime) -> str:
    """Format as the spec does: whole seconds with the offset (2022-12-11T00:00:00+09:00)."""
    return value.isoformat(timespec="seconds")


def gmt_label(value: datetime) -> str:
    """The spec's timezone label for an aware datetime: ``GMT+9:00``, ``GMT-3:30``."""
    offset = value.utcoffset()
    assert offset is not None
    return offset_label(offset.total_seconds())


#: Labels by UTC offset in seconds: a process meets one or two offsets, so each label is
#: formatted once (an upload asks for one every call).
_LABELS: dict[float, str] = {}


def offset_label(seconds: float) -> str:
    """The spec's timezone label for a UTC offset in seconds (32400 -> ``GMT+9:00``).

    >>> offset_label(-12600)
    'GMT-3:30'
    """
    label = _LABELS.get(seconds)
    if label is None:
        minutes = round(seconds / 60)
        sign = "-" if minutes < 0 else "+"
        hours, mins = divmod(abs(minutes), 60)
        label = f"GMT{sign}{hours}:{mins:02d}"
        if len(_LABELS) < 256:  # offsets are few; a bound keeps a fuzzer from growing it
            _LABELS[seconds] = label
    return label


def local_label(unix_seconds: int) -> str:
    """The label of the local time zone's offset at ``unix_seconds`` (as
    ``datetime.fromtimestamp(unix_seconds).astimezone()`` would give it)."""
    return offset_label(time.localtime(unix_seconds).tm_gmtoff)


def from_wire_timestamp(value: int | float) -> datetime:
    """A raw record timestamp as an aware UTC datetime.

    The unit is not documented: values >= 10**11 are read as milliseconds, smaller
    ones as seconds (10**11 seconds is the year 5138; 10**11 ms is 1973). A value no
    datetime can hold raises ValueError.
    """
    try:
        seconds = value / 1000 if value >= _MS_THRESHOLD else value
        return datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"timestamp {shown(value)} is out of the range of dates") from None


def wire_second(value: int) -> int:
    """The whole unix second of a raw record timestamp (milliseconds from 10**11 on, as
    `from_wire_timestamp` reads it)."""
    return value // 1000 if value >= _MS_THRESHOLD else value


def wire_seconds(values: list[int]) -> list[int]:
    """`wire_second` of each value; at C speed when all are in one unit (a page's are)."""
    ordered = sorted(values)  # the least and greatest: one quick pass, a page is in order
    if not ordered or ordered[-1] < _MS_THRESHOLD:
        return list(values)
    if ordered[0] >= _MS_THRESHOLD:
        return list(map(operator.floordiv, values, itertools.repeat(1000)))
    return list(map(wire_second, values))


def split_time_range(
    start: datetime | str,
    end: datetime | str,
    span: timedelta = MAX_WINDOW,
) -> list[tuple[datetime, datetime]]:
    """Split ``[start, end]`` into consecutive windows of at most ``span``.

    Neighbours share their boundary instant (the server's filter includes both ends).
    Each window keeps the time zone of ``start``.

    >>> from datetime import datetime, timedelta, timezone
    >>> t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> [(a.day, b.day) for a, b in split_time_range(t0, t0 + timedelta(days=2, hours=1))]
    [(1, 2), (2, 3), (3, 3)]
    """
    start = to_aware(start, "time_from")
    end = to_aware(end, "time_to")
    if not isinstance(span, timedelta) or span <= timedelta(0):
        raise ValidationError(f"span must be a positive timedelta, not {shown(span)}", field="span")
    if real_span(start, end) <= timedelta(0):
        raise ValidationError(
            f"time_to {end.isoformat()} must be after time_from {start.isoformat()}",
            field="time_to",
        )
    tz = start.tzinfo
    utc_end = end.astimezone(timezone.utc)
    windows: list[tuple[datetime, datetime]] = []
    lo = start.astimezone(timezone.utc)
    whole, rest = divmod(utc_end - lo, span)
    count = whole + (1 if rest else 0)
    for index in range(count):
        hi = lo + span if index < count - 1 else utc_end
        windows.append((lo.astimezone(tz), hi.astimezone(tz)))
        lo = hi
    return windows
