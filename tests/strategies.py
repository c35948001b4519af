"""Hypothesis strategies shared by the test suite.

- `aware_datetimes()`: aware datetimes in fixed offsets and real (DST) zones.
- `time_ranges(max_span=...)`: ``(start, end)`` pairs of aware datetimes, ``start < end``.
- `wire_records()`: one record as the service lists it (a dict in the wire shape).
"""

from __future__ import annotations

import string
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from hypothesis import strategies as st

__all__ = [
    "DST_ZONE_NAMES",
    "aware_datetimes",
    "extend_strings",
    "fixed_offsets",
    "gmt_labels",
    "image_ids",
    "time_ranges",
    "timezones",
    "wire_record_lists",
    "wire_records",
    "zones",
]

#: Real zones, most with DST: Berlin and New York shift an hour, Lord Howe half an hour,
#: St John's sits at -3:30/-2:30, Kathmandu at +5:45; Tokyo and Kolkata never shift.
DST_ZONE_NAMES = (
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Asia/Kathmandu",
)


def _load_zones() -> tuple[ZoneInfo, ...]:
    loaded = []
    for name in DST_ZONE_NAMES:
        try:
            loaded.append(ZoneInfo(name))
        except ZoneInfoNotFoundError:  # no tz database on this machine
            continue
    return tuple(loaded)


_ZONES = _load_zones()

#: Wall-clock bounds for generated times (naive; the zone is attached by hypothesis).
MIN_TIME = datetime(2000, 1, 1)
MAX_TIME = datetime(2037, 12, 31)

#: ``create_at`` bounds in milliseconds (2000-01-01 .. 2100-01-01 UTC).
_MIN_MS = 946_684_800_000
_MAX_MS = 4_102_444_800_000


def fixed_offsets() -> st.SearchStrategy[tzinfo]:
    """`datetime.timezone` offsets from -12:00 to +14:00 in whole minutes, UTC included."""
    return st.one_of(
        st.just(timezone.utc),
        st.integers(min_value=-12 * 60, max_value=14 * 60).map(
            lambda minutes: timezone(timedelta(minutes=minutes))
        ),
    )


def zones() -> st.SearchStrategy[tzinfo]:
    """A few real `zoneinfo` zones, DST ones among them (fixed offsets without a tz db)."""
    if not _ZONES:
        return fixed_offsets()
    return st.sampled_from(_ZONES)


def timezones() -> st.SearchStrategy[tzinfo]:
    """Either a fixed offset or a real zone."""
    return st.one_of(fixed_offsets(), zones())


def aware_datetimes(
    *,
    min_value: datetime = MIN_TIME,
    max_value: datetime = MAX_TIME,
    tz: st.SearchStrategy[tzinfo] | None = None,
) -> st.SearchStrategy[datetime]:
    """Aware datetimes with microseconds, never in a DST gap (such times do not exist).

    ``min_value``/``max_value`` are naive wall-clock bounds, as `st.datetimes` takes them.
    """
    return st.datetimes(
        min_value=min_value,
        max_value=max_value,
        timezones=tz if tz is not None else timezones(),
        allow_imaginary=False,
    )


@st.composite
def time_ranges(
    draw: st.DrawFn,
    *,
    max_span: timedelta = timedelta(days=10),
    min_span: timedelta = timedelta(microseconds=1),
) -> tuple[datetime, datetime]:
    """``(start, end)`` with ``min_span <= end - start <= max_span`` in real (UTC) time.

    ``end`` may be in another zone than ``start``.
    """
    start = draw(aware_datetimes())
    length = draw(st.timedeltas(min_value=min_span, max_value=max_span))
    end_zone = draw(timezones())
    end = (start.astimezone(timezone.utc) + length).astimezone(end_zone)
    return start, end


def gmt_labels() -> st.SearchStrategy[str]:
    """The spec's timezone labels: ``GMT+9:00``, ``GMT-3:30``, ``GMT+0:00``."""

    def label(minutes: int) -> str:
        sign = "-" if minutes < 0 else "+"
        hours, mins = divmod(abs(minutes), 60)
        return f"GMT{sign}{hours}:{mins:02d}"

    return st.integers(min_value=-12 * 4, max_value=14 * 4).map(lambda q: label(q * 15))


def image_ids() -> st.SearchStrategy[str]:
    """24 lowercase hex characters, the shape of the service's image ids."""
    return st.text(alphabet="0123456789abcdef", min_size=24, max_size=24)


_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.text(max_size=8),
)


def extend_strings() -> st.SearchStrategy[str]:
    """Small JSON documents (objects, as devices store them) serialised compactly."""
    return st.dictionaries(st.text(max_size=8), _JSON_SCALARS, max_size=4).map(
        lambda value: orjson.dumps(value).decode()
    )


@st.composite
def wire_records(
    draw: st.DrawFn, *, record_ids: st.SearchStrategy[int] | None = None
) -> dict[str, Any]:
    """One entry of a listing's ``list[]`` exactly as the service sends it.

    ``create_at`` is in milliseconds; ``device_timestamp`` is either unit (the spec does
    not say); ``user_id`` and ``extend`` may be null.
    """
    ids = record_ids if record_ids is not None else st.integers(min_value=1, max_value=2**53)
    return {
        "record_id": draw(ids),
        "sn": draw(
            st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=16)
        ),
        "image_id": draw(image_ids()),
        "user_id": draw(st.none() | st.integers(min_value=1, max_value=2**31)),
        "verify_score": draw(st.floats(min_value=0.0, max_value=1.0)),
        "device_timestamp": draw(
            st.integers(min_value=_MIN_MS // 1000, max_value=_MAX_MS // 1000)
            | st.integers(min_value=_MIN_MS, max_value=_MAX_MS)
        ),
        "timezone": draw(gmt_labels()),
        "create_at": draw(st.integers(min_value=_MIN_MS, max_value=_MAX_MS)),
        "extend": draw(st.none() | extend_strings()),
    }


@st.composite
def wire_record_lists(
    draw: st.DrawFn, *, min_size: int = 0, max_size: int = 20
) -> list[dict[str, Any]]:
    """Records with distinct ``record_id`` s, in ascending ``record_id`` order."""
    ids = draw(
        st.lists(
            st.integers(min_value=1, max_value=10**9),
            min_size=min_size,
            max_size=max_size,
            unique=True,
        )
    )
    return [draw(wire_records(record_ids=st.just(record_id))) for record_id in sorted(ids)]
