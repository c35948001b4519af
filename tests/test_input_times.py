"""Times as input to every call: DST edges (folds and gaps) in create_record, list
windows, records and watch; times outside 1970..9998; a tzinfo that breaks (the rule:
`tests/hostile.py`)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import NamedTuple

import pytest

from senselink_plus import (
    ValidationError,
    split_time_range,
)
from tests.conftest import JPEG
from tests.hostile import (
    BERLIN,
    EXTREME_TIMES,
    LORD_HOWE,
    T0,
    UTC,
    BadZone,
    Server,
    create,
    new_client,
    sent,
)

SPRING_GAP = datetime(2024, 3, 31, 2, 30, tzinfo=BERLIN)  # does not exist: clocks jump 2 -> 3
FALL_FIRST = datetime(2024, 10, 27, 2, 30, tzinfo=BERLIN)  # 02:30 CEST (+2), fold=0
FALL_SECOND = datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=BERLIN)  # 02:30 CET (+1)


class Stamp(NamedTuple):
    """A local time, and the unix seconds and zone label create_record sends for it."""

    when: datetime
    seconds: int
    label: str


def utc_seconds(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    Stamp._fields,
    [
        Stamp(when=FALL_FIRST, seconds=utc_seconds(2024, 10, 27, 0, 30), label="GMT+2:00"),
        Stamp(when=FALL_SECOND, seconds=utc_seconds(2024, 10, 27, 1, 30), label="GMT+1:00"),
        # The gap's wall time reads with the offset before the jump (fold=0): 01:30 UTC.
        Stamp(when=SPRING_GAP, seconds=utc_seconds(2024, 3, 31, 1, 30), label="GMT+1:00"),
        Stamp(
            when=datetime(2024, 3, 31, 3, 0, tzinfo=BERLIN),
            seconds=utc_seconds(2024, 3, 31, 1, 0),
            label="GMT+2:00",
        ),
        Stamp(
            # Lord Howe falls back by 30 min, 02:00 -> 01:30: the second 01:45 is +10:30.
            when=datetime(2024, 4, 7, 1, 45, fold=1, tzinfo=LORD_HOWE),
            seconds=utc_seconds(2024, 4, 6, 15, 15),
            label="GMT+10:30",
        ),
    ],
    ids=["fall-fold0", "fall-fold1", "spring-gap", "spring-after", "lord-howe"],
)
async def test_create_timestamp_at_dst_edges(when: datetime, seconds: int, label: str) -> None:
    _, body = await create(timestamp=when)
    assert (body["timestamp"], body["timezone"]) == (seconds, label)


async def test_list_window_across_the_fall_back_hour_keeps_both_offsets() -> None:
    async with new_client() as client:
        await client.list_records(
            datetime(2024, 10, 27, 2, 0, tzinfo=BERLIN),
            datetime(2024, 10, 27, 2, 0, fold=1, tzinfo=BERLIN),
        )
    params = dict(sent(client)[0].params)
    assert (params["time_from"], params["time_to"]) == (
        "2024-10-27T02:00:00+02:00",
        "2024-10-27T02:00:00+01:00",
    )


class Window(NamedTuple):
    """A list window, and whether list_records accepts it."""

    start: datetime
    end: datetime
    accepted: bool


def berlin(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


@pytest.mark.parametrize(
    Window._fields,
    [
        # 24 wall-clock hours over spring-forward are 23 real hours: allowed.
        Window(start=berlin(2024, 3, 30, 12), end=berlin(2024, 3, 31, 12), accepted=True),
        # ... over fall-back they are 25 real hours: refused, although the wall clock says 24.
        Window(start=berlin(2024, 10, 26, 12), end=berlin(2024, 10, 27, 12), accepted=False),
        Window(start=berlin(2024, 10, 26, 13), end=berlin(2024, 10, 27, 12), accepted=True),
        # The gap's 02:30 is 01:30 UTC, the same instant as 03:30 CEST: an empty window.
        Window(start=SPRING_GAP, end=berlin(2024, 3, 31, 3, 30), accepted=False),
        Window(start=FALL_FIRST, end=FALL_SECOND, accepted=True),
        Window(start=FALL_SECOND, end=FALL_FIRST, accepted=False),
    ],
    ids=["spring-23h", "fall-25h", "fall-24h", "gap-empty", "fold0-to-fold1", "fold1-to-fold0"],
)
async def test_list_window_length_is_real_time(
    start: datetime, end: datetime, accepted: bool
) -> None:
    async with new_client() as client:
        try:
            await client.list_records(start, end)
        except ValidationError as exc:
            assert not accepted
            assert exc.field == "time_to"
            assert sent(client) == []
        else:
            assert accepted
            assert len(sent(client)) == 1


async def test_records_over_fall_back_walks_24_real_hours_per_window() -> None:
    start = datetime(2024, 10, 26, 0, 0, tzinfo=BERLIN)
    async with new_client() as client:
        pager = client.records(start, datetime(2024, 10, 29, 0, 0, tzinfo=BERLIN))
        assert [r async for r in pager] == []
    windows = [
        (datetime.fromisoformat(p["time_from"]), datetime.fromisoformat(p["time_to"]))
        for p in (dict(r.params) for r in sent(client))
    ]
    # 3 wall-clock days plus the repeated hour: three 24 h windows and a 1 h one.
    hours = timedelta(hours=1)
    assert [hi - lo for lo, hi in windows] == [24 * hours, 24 * hours, 24 * hours, hours]
    assert windows[1][0].utcoffset() == 2 * hours  # the second window holds the change
    assert windows[1][1].utcoffset() == hours
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))


@pytest.mark.parametrize("since", [FALL_FIRST, FALL_SECOND, SPRING_GAP], ids=["f0", "f1", "gap"])
async def test_watch_since_a_dst_edge_starts_there(since: datetime) -> None:
    async with new_client(Server(records=True)) as client:
        watch = client.watch(since=since, poll_interval=1)
        record = await anext(watch)
        await watch.aclose()
    first = dict(sent(client)[0].params)
    # Compared as timestamps: == between zones is False for a time in a fold or gap.
    assert datetime.fromisoformat(first["time_from"]).timestamp() == since.timestamp()
    assert record.created_at.timestamp() >= since.timestamp()


@pytest.mark.parametrize("when", EXTREME_TIMES[:-1], ids=str)
async def test_times_outside_1970_to_9998_are_refused_everywhere(when: datetime) -> None:
    async with new_client() as client:
        for call in (
            lambda: client.create_record("SN1", JPEG, timestamp=when),
            lambda: client.list_records(when, T0),
            lambda: client.list_records(T0, when),
        ):
            with pytest.raises(ValidationError) as info:
                await call()
            assert info.value.field in ("timestamp", "time_from", "time_to")
        with pytest.raises(ValidationError):
            client.records(when, T0)
        with pytest.raises(ValidationError):
            client.watch(since=when)
        with pytest.raises(ValidationError):
            split_time_range(when, T0)
    assert sent(client) == []


async def test_a_tzinfo_that_breaks_is_a_validation_error() -> None:
    when = datetime(2024, 1, 1, tzinfo=BadZone())
    _, result = await create(timestamp=when)
    assert isinstance(result, ValidationError)
    assert result.field == "timestamp"
    assert "time zone" in str(result)
