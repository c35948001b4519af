"""Time conversions: parsing, rounding, wire format, GMT labels, and 24 h windows."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from senselink_plus import ValidationError, split_time_range
from senselink_plus._timeutil import (
    MAX_WINDOW,
    ceil_second,
    floor_second,
    from_wire_timestamp,
    gmt_label,
    to_aware,
    to_wire_time,
    wire_second,
    wire_seconds,
)
from tests.strategies import aware_datetimes, time_ranges, zones

UTC = timezone.utc
JST = timezone(timedelta(hours=9))
NST = timezone(-timedelta(hours=3, minutes=30))
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(value: datetime) -> datetime:
    # Aware datetimes sharing one tzinfo compare by wall clock; compare instants instead.
    return value.astimezone(UTC)


# --- to_aware --------------------------------------------------------------------------


def test_to_aware_returns_an_aware_datetime_unchanged() -> None:
    value = datetime(2022, 12, 11, tzinfo=JST)
    assert to_aware(value, "time_from") is value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-12-11T00:00:00+09:00", datetime(2022, 12, 11, tzinfo=JST)),
        ("2022-12-11T00:00:00Z", datetime(2022, 12, 11, tzinfo=UTC)),
        ("2022-12-11T00:00:00z", datetime(2022, 12, 11, tzinfo=UTC)),
        ("2022-12-11T00:00:00.250000-03:30", datetime(2022, 12, 11, 0, 0, 0, 250000, NST)),
        ("  2022-12-11T00:00:00+00:00\n", datetime(2022, 12, 11, tzinfo=UTC)),
    ],
)
def test_to_aware_parses_iso_strings_with_an_offset(text: str, expected: datetime) -> None:
    parsed = to_aware(text, "time_from")
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


def test_to_aware_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValidationError, match="no time zone") as info:
        to_aware(datetime(2022, 12, 11), "time_from")
    assert info.value.field == "time_from"


def test_to_aware_refuses_a_naive_string() -> None:
    with pytest.raises(ValidationError, match="no time zone") as info:
        to_aware("2022-12-11T00:00:00", "time_to")
    assert info.value.field == "time_to"


class _NoOffset(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def test_to_aware_refuses_a_tzinfo_without_an_offset() -> None:
    with pytest.raises(ValidationError) as info:
        to_aware(datetime(2022, 12, 11, tzinfo=_NoOffset()), "since")
    assert info.value.field == "since"


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2022-13-01T00:00:00+00:00", "2022-12-11T25:00:00Z", "12/11/2022"]
)
def test_to_aware_refuses_bad_strings(text: str) -> None:
    with pytest.raises(ValidationError, match="not an ISO-8601 time") as info:
        to_aware(text, "time_from")
    assert info.value.field == "time_from"
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    "value", [1_670_684_400, 1.5, None, date(2022, 12, 11), b"2022-12-11T00:00:00Z"]
)
def test_to_aware_refuses_other_types(value: object) -> None:
    with pytest.raises(ValidationError, match=type(value).__name__) as info:
        to_aware(value, "time_from")  # type: ignore[arg-type]
    assert info.value.field == "time_from"


# --- floor / ceil ----------------------------------------------------------------------


def test_floor_and_ceil_second() -> None:
    value = datetime(2022, 12, 11, 23, 59, 59, 1, tzinfo=JST)
    assert floor_second(value) == datetime(2022, 12, 11, 23, 59, 59, tzinfo=JST)
    assert ceil_second(value) == datetime(2022, 12, 12, 0, 0, 0, tzinfo=JST)
    assert ceil_second(value).tzinfo is JST


def test_whole_seconds_are_left_alone() -> None:
    value = datetime(2022, 12, 11, 0, 0, 5, tzinfo=JST)
    assert floor_second(value) == value
    assert ceil_second(value) == value


def test_ceil_second_across_a_dst_fall_back_is_half_a_real_second() -> None:
    # 02:59:59.5 CEST, the last instant before Berlin falls back to 02:00 CET.
    value = datetime(2024, 10, 27, 2, 59, 59, 500000, tzinfo=BERLIN, fold=0)
    ceiled = ceil_second(value)
    assert utc(ceiled) - utc(value) == timedelta(microseconds=500000)
    assert ceiled.utcoffset() == timedelta(hours=1)


@given(aware_datetimes())
def test_floor_and_ceil_bracket_the_value(value: datetime) -> None:
    low, high = floor_second(value), ceil_second(value)
    assert low.microsecond == 0
    assert high.microsecond == 0
    assert utc(low) <= utc(value) <= utc(high)
    step = timedelta(0) if value.microsecond == 0 else timedelta(seconds=1)
    assert utc(high) - utc(low) == step
    assert low.tzinfo is value.tzinfo
    assert high.tzinfo is value.tzinfo


# --- to_wire_time ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2022, 12, 11, tzinfo=JST), "2022-12-11T00:00:00+09:00"),
        (datetime(2022, 12, 11, 8, 30, 15, 999999, tzinfo=JST), "2022-12-11T08:30:15+09:00"),
        (datetime(2022, 12, 11, tzinfo=UTC), "2022-12-11T00:00:00+00:00"),
        (datetime(2022, 12, 11, tzinfo=NST), "2022-12-11T00:00:00-03:30"),
        (datetime(2024, 7, 1, 12, tzinfo=BERLIN), "2024-07-01T12:00:00+02:00"),
        (datetime(2024, 1, 1, 12, tzinfo=BERLIN), "2024-01-01T12:00:00+01:00"),
    ],
)
def test_to_wire_time_is_whole_seconds_with_the_offset(value: datetime, expected: str) -> None:
    assert to_wire_time(value) == expected


@given(aware_datetimes())
def test_to_wire_time_reads_back_as_the_floored_instant(value: datetime) -> None:
    text = to_wire_time(value)
    parsed = to_aware(text, "time_from")
    assert utc(parsed) == utc(floor_second(value))
    assert parsed.utcoffset() == value.utcoffset()
    assert "." not in text


# --- gmt_label -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        (JST, "GMT+9:00"),
        (NST, "GMT-3:30"),
        (UTC, "GMT+0:00"),
        (timezone(timedelta(hours=5, minutes=45)), "GMT+5:45"),
        (timezone(timedelta(hours=14)), "GMT+14:00"),
        (timezone(timedelta(hours=-12)), "GMT-12:00"),
        (timezone(timedelta(minutes=-30)), "GMT-0:30"),
    ],
)
def test_gmt_label(tz: tzinfo, expected: str) -> None:
    assert gmt_label(datetime(2022, 12, 11, tzinfo=tz)) == expected


def test_gmt_label_follows_dst() -> None:
    assert gmt_label(datetime(2024, 1, 15, 12, tzinfo=BERLIN)) == "GMT+1:00"
    assert gmt_label(datetime(2024, 7, 15, 12, tzinfo=BERLIN)) == "GMT+2:00"
    assert gmt_label(datetime(2024, 7, 15, 12, tzinfo=NEW_YORK)) == "GMT-4:00"


# --- from_wire_timestamp ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1658136457, datetime(2022, 7, 18, 9, 27, 37, tzinfo=UTC)),
        (1659423903029, datetime(2022, 8, 2, 7, 5, 3, 29000, tzinfo=UTC)),
        (130000000, EPOCH + timedelta(seconds=130000000)),
        (10**11 - 1, EPOCH + timedelta(seconds=10**11 - 1)),  # still seconds (year 5138)
        (10**11, EPOCH + timedelta(milliseconds=10**11)),  # milliseconds from here (1973)
        (0, EPOCH),
        (1658136457.5, datetime(2022, 7, 18, 9, 27, 37, 500000, tzinfo=UTC)),
    ],
)
def test_from_wire_timestamp_unit_rule(raw: int | float, expected: datetime) -> None:
    value = from_wire_timestamp(raw)
    assert value == expected
    assert value.tzinfo is UTC


@given(st.integers(min_value=10**11, max_value=4_102_444_800_000))
def test_from_wire_timestamp_reads_large_values_as_exact_milliseconds(ms: int) -> None:
    assert from_wire_timestamp(ms) == EPOCH + timedelta(milliseconds=ms)


# --- split_time_range: properties ------------------------------------------------------


def _check_windows(
    start: datetime, end: datetime, span: timedelta, windows: list[tuple[datetime, datetime]]
) -> None:
    assert windows, "a non-empty range has at least one window"
    # Covers [start, end] exactly.
    assert utc(windows[0][0]) == utc(start)
    assert utc(windows[-1][1]) == utc(end)
    for (_, hi), (lo, _) in itertools.pairwise(windows):
        assert utc(hi) == utc(lo), "neighbours share their boundary instant"
        assert hi == lo
    for lo, hi in windows:
        # Non-empty, never longer than span in real time, and in start's zone.
        assert timedelta(0) < utc(hi) - utc(lo) <= span
        assert lo.tzinfo is start.tzinfo
        assert hi.tzinfo is start.tzinfo
    # Strictly increasing, so no two windows overlap beyond their shared boundary.
    instants = [utc(windows[0][0])] + [utc(hi) for _, hi in windows]
    assert instants == sorted(set(instants))
    # As few windows as possible: every window but the last is a full span.
    total = utc(end) - utc(start)
    assert len(windows) == -(-total // span)
    assert all(utc(hi) - utc(lo) == span for lo, hi in windows[:-1])


@given(time_ranges(max_span=timedelta(days=40)))
def test_windows_cover_the_range_exactly_with_the_default_span(
    bounds: tuple[datetime, datetime],
) -> None:
    start, end = bounds
    _check_windows(start, end, MAX_WINDOW, split_time_range(start, end))


@given(st.data())
def test_windows_cover_the_range_exactly_for_any_span(data: st.DataObject) -> None:
    span = data.draw(
        st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=3)),
        label="span",
    )
    start, end = data.draw(time_ranges(max_span=span * 50), label="range")
    _check_windows(start, end, span, split_time_range(start, end, span))


@given(
    start=aware_datetimes(tz=zones()),
    days=st.integers(min_value=1, max_value=400),
)
def test_whole_days_in_dst_zones_are_24_real_hours_each(start: datetime, days: int) -> None:
    end = utc(start) + timedelta(days=days)
    windows = split_time_range(start, end)
    assert len(windows) == days
    _check_windows(start, end, MAX_WINDOW, windows)


@given(time_ranges(max_span=timedelta(days=5), min_span=timedelta(seconds=1)))
def test_iso_string_bounds_split_like_datetimes(bounds: tuple[datetime, datetime]) -> None:
    start, end = (floor_second(value) for value in bounds)
    from_strings = split_time_range(start.isoformat(), end.isoformat())
    from_values = split_time_range(start, end)
    assert [(utc(a), utc(b)) for a, b in from_strings] == [(utc(a), utc(b)) for a, b in from_values]


# --- split_time_range: examples across DST ---------------------------------------------


def test_spring_forward_in_berlin_keeps_real_24_hour_windows() -> None:
    start = datetime(2024, 3, 30, 12, tzinfo=BERLIN)  # CET; clocks jump on the 31st
    end = datetime(2024, 4, 1, 13, tzinfo=BERLIN)  # CEST; 48 real hours later
    windows = split_time_range(start, end)
    assert windows == [
        (start, datetime(2024, 3, 31, 13, tzinfo=BERLIN)),
        (datetime(2024, 3, 31, 13, tzinfo=BERLIN), end),
    ]
    assert [w[1].utcoffset() for w in windows] == [timedelta(hours=2)] * 2


def test_fall_back_in_new_york_never_makes_a_25_hour_window() -> None:
    start = datetime(2024, 11, 2, 12, tzinfo=NEW_YORK)  # EDT; clocks fall back on the 3rd
    end = datetime(2024, 11, 5, 12, tzinfo=NEW_YORK)  # EST; 73 real hours later
    windows = split_time_range(start, end)
    assert len(windows) == 4
    assert [utc(hi) - utc(lo) for lo, hi in windows] == [timedelta(hours=24)] * 3 + [
        timedelta(hours=1)
    ]
    assert windows[0][1] == datetime(2024, 11, 3, 11, tzinfo=NEW_YORK)


def test_windows_take_the_zone_of_start() -> None:
    start = datetime(2022, 12, 11, tzinfo=JST)
    end = datetime(2022, 12, 12, 15, tzinfo=UTC)  # 2022-12-13T00:00+09:00
    assert split_time_range(start, end) == [
        (start, datetime(2022, 12, 12, tzinfo=JST)),
        (datetime(2022, 12, 12, tzinfo=JST), datetime(2022, 12, 13, tzinfo=JST)),
    ]


def test_a_range_shorter_than_the_span_is_one_window() -> None:
    start = datetime(2022, 12, 11, tzinfo=JST)
    end = start + timedelta(microseconds=1)
    assert split_time_range(start, end) == [(start, end)]


# --- split_time_range: errors ----------------------------------------------------------


@pytest.mark.parametrize("delta", [timedelta(0), timedelta(seconds=-1), timedelta(days=-3)])
def test_end_not_after_start_is_refused(delta: timedelta) -> None:
    start = datetime(2022, 12, 11, tzinfo=JST)
    with pytest.raises(ValidationError, match="must be after") as info:
        split_time_range(start, start + delta)
    assert info.value.field == "time_to"


def test_same_instant_in_other_zones_is_an_empty_range() -> None:
    start = datetime(2022, 12, 11, 9, tzinfo=JST)
    with pytest.raises(ValidationError, match="must be after"):
        split_time_range(start, datetime(2022, 12, 11, 0, tzinfo=UTC))


@pytest.mark.parametrize("span", [timedelta(0), timedelta(hours=-1), 3600, None])
def test_bad_span_is_refused(span: object) -> None:
    start = datetime(2022, 12, 11, tzinfo=JST)
    with pytest.raises(ValidationError, match="span") as info:
        split_time_range(start, start + timedelta(days=1), span)  # type: ignore[arg-type]
    assert info.value.field == "span"


def test_naive_bounds_are_refused_with_their_field() -> None:
    aware = datetime(2022, 12, 11, tzinfo=JST)
    with pytest.raises(ValidationError) as info:
        split_time_range(datetime(2022, 12, 10), aware)
    assert info.value.field == "time_from"
    with pytest.raises(ValidationError) as info:
        split_time_range(aware, "2022-12-12T00:00:00")
    assert info.value.field == "time_to"


@pytest.mark.parametrize(
    ("seconds", "label"),
    [
        (32400, "GMT+9:00"),
        (0, "GMT+0:00"),
        (-12600, "GMT-3:30"),
        (20700, "GMT+5:45"),
        (-1, "GMT+0:00"),
    ],
)
def test_offset_label(seconds: int, label: str) -> None:
    from senselink_plus._timeutil import offset_label

    assert offset_label(seconds) == label
    assert offset_label(seconds) == label  # the cached answer is the same


def test_offset_label_caches_a_bounded_number_of_offsets() -> None:
    from senselink_plus import _timeutil

    for minutes in range(-2000, 2000):
        assert _timeutil.offset_label(minutes * 60).startswith("GMT")
    assert len(_timeutil._LABELS) <= 256


@given(st.lists(st.integers(0, 10**11 - 1) | st.integers(10**11, 2 * 10**13)))
def test_wire_seconds_reads_each_value_as_wire_second_does(values: list[int]) -> None:
    assert wire_seconds(values) == [wire_second(value) for value in values]
