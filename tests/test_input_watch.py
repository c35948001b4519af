"""watch's arguments, hostile, and values that would hang or overflow a watch (the
rule: `tests/hostile.py`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from senselink_plus import (
    Record,
    ValidationError,
)
from senselink_plus._timeutil import shown
from tests.hostile import (
    EXTREME_TIMES,
    GIANT,
    SETTINGS,
    UTC,
    BadPath,
    Server,
    aware_near,
    draw_arguments,
    giants,
    hostile,
    iso,
    junk,
    naive_or_iso,
    new_client,
    odd_text,
    outcome,
)
from tests.strategies import aware_datetimes


class MemoryCheckpoint:
    def __init__(self) -> None:
        self.state: Mapping[str, Any] | None = None

    async def load(self) -> Mapping[str, Any] | None:
        return self.state

    async def save(self, state: Mapping[str, Any]) -> None:
        self.state = state


_FILE = object()  # stands for a checkpoint file in a temporary directory

valid_watch = {
    "sn": st.none() | st.text("ABC123", min_size=1, max_size=8),
    "since": st.none() | aware_datetimes() | aware_datetimes().map(lambda d: d.isoformat()),
    "poll_interval": st.floats(0.001, 3600) | st.integers(1, 3600),
    "checkpoint": st.sampled_from([None, _FILE]) | st.builds(MemoryCheckpoint),
    "overlap": st.timedeltas(timedelta(0), timedelta(hours=24)),
}
hostile_watch = {
    "sn": hostile(odd_text),
    "since": hostile(st.sampled_from(EXTREME_TIMES), aware_near, naive_or_iso),
    "poll_interval": hostile(
        st.sampled_from([0, -1, math.nan, math.inf, 10**400, True]), st.floats(), giants
    ),
    "checkpoint": hostile(
        st.sampled_from(["", "\x00", "state\x00.json", "\ud800.json", BadPath(), b"state.json"]),
        general=junk.filter(lambda v: not isinstance(v, str)),  # a str is a path: see above
    ),
    "overlap": hostile(
        st.sampled_from([timedelta.max, timedelta.min, timedelta(-1), timedelta(days=2)]),
        st.timedeltas(),
    ),
}


@SETTINGS
@given(data=st.data())
async def test_watch_any_arguments(data: st.DataObject, tmp_path_factory: Any) -> None:
    hostile, kwargs = draw_arguments(data, valid_watch, hostile_watch)
    if kwargs["checkpoint"] is _FILE:
        kwargs["checkpoint"] = tmp_path_factory.mktemp("watch") / "state 😀.json"

    async def first_record() -> Record:
        watch = client.watch(**kwargs)  # every argument is checked here, at the call
        try:
            async for record in watch:
                return record
        finally:
            await watch.aclose()
        raise AssertionError("watch ended")

    async with new_client(Server(records=True)) as client:
        result = await outcome(client, first_record, hostile)
    if not hostile:
        assert isinstance(result, Record)
    if isinstance(result, Record):
        since = kwargs["since"]
        if isinstance(since, str):
            since = iso(since)
        if since is not None:
            assert result.created_at.timestamp() >= since.timestamp()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"poll_interval": math.inf}, "poll_interval"),
        ({"poll_interval": 10**400}, "poll_interval"),
        ({"poll_interval": -GIANT}, "poll_interval"),
        ({"overlap": timedelta.max}, "overlap"),
        ({"overlap": timedelta(hours=24, microseconds=1)}, "overlap"),
        ({"since": datetime.min.replace(tzinfo=UTC)}, "since"),
        ({"checkpoint": ""}, "checkpoint"),
        ({"checkpoint": "a\x00b"}, "checkpoint"),
        ({"checkpoint": BadPath()}, "checkpoint"),
    ],
    ids=lambda value: ascii(shown(value, 40)),
)
async def test_watch_values_that_would_hang_or_overflow(kwargs: dict[str, Any], field: str) -> None:
    async with new_client() as client:
        with pytest.raises(ValidationError) as info:
            client.watch(**kwargs)
    assert info.value.field == field
