"""list_records' and records' arguments, hostile: every argument drawn from a hostile
pool now and then, and numbers that cannot be sent (the rule: `tests/hostile.py`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from senselink_plus import (
    Order,
    Record,
    RecordPage,
    ValidationError,
)
from senselink_plus import _endpoints as ep
from senselink_plus._timeutil import real_span
from tests.hostile import (
    BIG_INTS,
    EXTREME_TIMES,
    GIANT,
    SETTINGS,
    T0,
    Server,
    StopWalk,
    aware_anywhere,
    aware_near,
    draw_arguments,
    giants,
    hostile,
    naive_or_iso,
    new_client,
    odd_text,
    outcome,
    sent,
)
from tests.strategies import time_ranges

valid_list = {
    "sn": st.none() | st.text("ABC123", min_size=1, max_size=8),
    "order": st.sampled_from([Order.ASCENDING, Order.DESCENDING, 0, 1]),
    "page": st.integers(1, 10**6),
    "size": st.integers(1, 100),
}
hostile_time = hostile(st.sampled_from(EXTREME_TIMES), aware_anywhere, naive_or_iso)
numbers = (st.sampled_from([0, -1, 2, 101, 2**31, *BIG_INTS]), st.integers(), giants)
hostile_list = {
    "time_from": hostile_time,
    "time_to": hostile_time,
    "sn": hostile(odd_text),
    "order": hostile(*numbers),
    "page": hostile(*numbers),
    "size": hostile(*numbers),
}
TIME_ARGS = {"time_from", "time_to"}


@SETTINGS
@given(data=st.data())
async def test_list_records_any_arguments(data: st.DataObject) -> None:
    hostile, drawn = draw_arguments(data, valid_list, hostile_list)
    # 23 h: rounding outwards to whole seconds must not push a valid window over 24 h.
    start, end = data.draw(time_ranges(max_span=timedelta(hours=23)), label="range")
    kwargs = {"time_from": start, "time_to": end, **drawn}
    if hostile & TIME_ARGS:
        hostile |= TIME_ARGS  # a bad end can make the window, named by time_to, bad
    async with new_client() as client:
        result = await outcome(client, lambda: client.list_records(**kwargs), hostile)
    if not hostile:
        assert result == RecordPage(1, 100, 0, ())
    if not isinstance(result, ValidationError):
        params = dict(sent(client)[0].params)
        assert params.get("sn") == kwargs["sn"]


hostile_records = {
    **hostile_list,
    # Walking a range makes one request per day: keep hostile times near the supported
    # range, plus the extremes (which are refused before anything is split).
    "time_from": hostile(st.sampled_from(EXTREME_TIMES), aware_near, naive_or_iso),
    "time_to": hostile(st.sampled_from(EXTREME_TIMES), aware_near, naive_or_iso),
    "page_size": hostile(*numbers),
    "concurrency": hostile(
        st.sampled_from([0, -1, 2**31, *BIG_INTS]),
        st.integers(),
    ),
    "max_items": hostile(
        st.sampled_from([0, -1, 2**31, *BIG_INTS]),
        st.integers(),
    ),
}
hostile_records.pop("page")
hostile_records.pop("size")
valid_records = {
    "sn": valid_list["sn"],
    "order": valid_list["order"],
    "page_size": st.integers(1, 100),
    "concurrency": st.integers(1, 8),
    "max_items": st.none() | st.integers(0, 10**6),
}


@SETTINGS
@given(data=st.data())
async def test_records_any_arguments(data: st.DataObject) -> None:
    hostile, drawn = draw_arguments(data, valid_records, hostile_records)
    start, end = data.draw(time_ranges(max_span=timedelta(days=3)), label="range")
    kwargs = {"time_from": start, "time_to": end, **drawn}
    if hostile & TIME_ARGS:
        hostile |= TIME_ARGS
    server = Server(limit=5)

    async def walk() -> list[Record]:
        pager = client.records(**kwargs)  # every argument is checked here, at the call
        got: list[Record] = []
        try:
            async for record in pager:
                got.append(record)
        except StopWalk:
            # stopped only a walk of more windows (a call each) than the budget
            lo, hi = ep.window_bounds(kwargs["time_from"], kwargs["time_to"])
            assert real_span(lo, hi) > timedelta(days=4)
        return got

    async with new_client(server) as client:
        # max_items=0 is a valid walk that needs no request.
        result = await outcome(client, walk, hostile, must_send=kwargs["max_items"] != 0)
    if not isinstance(result, ValidationError):
        assert result == []
        # Up to `concurrency` first pages of later windows are fetched ahead.
        assert len(sent(client)) <= 5 + kwargs.get("concurrency", 4)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"page": 2**31}, "page"),
        ({"page": GIANT}, "page"),
        ({"size": GIANT}, "size"),
        ({"order": GIANT}, "order"),
        ({"order": True}, "order"),
    ],
    ids=["page-int32", "page-giant", "size-giant", "order-giant", "order-bool"],
)
async def test_list_numbers_that_cannot_be_sent(kwargs: dict[str, Any], field: str) -> None:
    async with new_client() as client:
        with pytest.raises(ValidationError) as info:
            await client.list_records(T0, T0 + timedelta(hours=1), **kwargs)
    assert info.value.field == field
    assert sent(client) == []


@pytest.mark.parametrize("name", ["concurrency", "max_items"])
async def test_records_giant_negative_numbers(name: str) -> None:
    async with new_client() as client:
        with pytest.raises(ValidationError):
            client.records(T0, T0 + timedelta(hours=1), **{name: -GIANT})
