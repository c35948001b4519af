"""Hostile input: every argument of every public call, with wrong types and edge values.

The rule, for each call: either the input is valid and a well-formed request goes out,
or `ValidationError` (with ``field`` naming the argument) is raised and the transport
received nothing. No other exception type may escape: no TypeError, AttributeError,
OverflowError, UnicodeEncodeError or orjson error.

Hypothesis draws each call's arguments from a valid pool and, for one or two of them, a
hostile pool (wrong types, huge and non-finite numbers, naive or out-of-range times, odd
Unicode). Boundary values (image and ``extend`` sizes, thresholds, DST edges) are pinned
by parametrized cases with exact expectations.
"""

from __future__ import annotations

import base64
import io
import itertools
import math
import random
import re
import types
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import orjson
import pytest
import yarl
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from senselink_plus import (
    Client,
    CreatedRecord,
    FaceImage,
    HttpRequest,
    HttpResponse,
    Order,
    Record,
    RecordPage,
    Rectangle,
    RetryPolicy,
    Timeout,
    TransportError,
    ValidationError,
    split_time_range,
)
from senselink_plus import _endpoints as ep
from senselink_plus._endpoints import IMAGE_PATH, RECORD_PATH
from senselink_plus._models import MAX_EXTEND_BYTES, MAX_IMAGE_BYTES
from senselink_plus._timeutil import real_span, shown
from senselink_plus.testing import MockTransport
from tests.conftest import APP_KEY, APP_SECRET, BASE_URL, JPEG, PNG, ok
from tests.fake_clock import FakeClock
from tests.strategies import aware_datetimes, extend_strings, gmt_labels, image_ids, time_ranges

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
GIANT = 10**5000  # its repr raises ValueError (over 4300 digits)
SETTINGS = settings(
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# --- the fake cloud and the well-formedness check ---------------------------------------


class StopWalk(TransportError):
    """Raised by the fake server to end a long walk early (it is a SenseLinkError)."""


class Server:
    """Answers every call successfully; lists put one record a second into each window
    (not at its end: a listing's last second may belong to the next slice of a walk)."""

    def __init__(self, *, records: bool = False, limit: int = 1_000) -> None:
        self.records = records
        self.limit = limit
        self.next_id = 1

    def __call__(self, request: HttpRequest) -> HttpResponse:
        assert_well_formed(request)
        if request.method == "POST":
            return ok({"record_id": 7, "image_id": "a" * 24})
        if request.path.startswith(IMAGE_PATH):
            return HttpResponse(200, {"content-type": "image/jpeg"}, JPEG)
        self.limit -= 1
        if self.limit < 0:
            raise StopWalk("enough")
        params = dict(request.params)
        rows = []
        if self.records:
            start = datetime.fromisoformat(params["time_from"])
            rows.append(
                {
                    "record_id": self.next_id,
                    "sn": "SN1",
                    "image_id": "b" * 24,
                    "create_at": (int(start.timestamp()) + 1) * 1000,
                }
            )
            self.next_id += 1
        return ok({"page_num": 1, "page_size": 100, "total": len(rows), "list": rows})


def _iso(text: str) -> datetime:
    # datetime.fromisoformat takes a "Z" suffix only from Python 3.11; the SDK takes it
    # on every version, so the test reads it the same way.
    stripped = text.strip()
    if stripped.endswith(("Z", "z")):
        stripped = stripped[:-1] + "+00:00"
    return datetime.fromisoformat(stripped)


def new_client(server: Server | None = None, **options: Any) -> Client:
    time = FakeClock()
    options.setdefault("retry", RetryPolicy.none())
    return Client(
        APP_KEY,
        APP_SECRET,
        base_url=BASE_URL,
        transport=MockTransport(server or Server()),
        clock=time.clock,
        timer=time.timer,
        sleep=time.sleep,
        **options,
    )


def sent(client: Client) -> list[HttpRequest]:
    transport = client._session.transport
    assert isinstance(transport, MockTransport)
    return transport.requests


_BODY_KEYS = {"sn", "timestamp", "timezone", "threshold", "image", "process_mode", "extend"}


def assert_well_formed(request: HttpRequest) -> None:
    """What a real transport (aiohttp, via yarl) would send is exactly what was built."""
    assert request.url.isascii(), request.url
    url = yarl.URL(request.url)
    # No dot segment or other part that URL normalisation would rewrite.
    assert url.path == unquote(urlsplit(request.url).path)
    # Every query value survives encoding (yarl silently empties a lone surrogate).
    full = url.extend_query(list(request.params))
    assert list(full.query.items()) == list(request.params)
    params = dict(request.params)
    assert params["app_key"] == APP_KEY
    assert re.fullmatch(r"\d{13}", params["timestamp"])
    assert re.fullmatch(r"[0-9a-f]{32}", params["sign"])
    str(request.info())  # renders: errors quote it
    if request.method == "POST":
        assert request.path == RECORD_PATH
        _check_create_body(request)
    elif request.path == RECORD_PATH:
        _check_list_params(params)
    else:
        assert request.method == "GET"
        assert request.path.startswith(IMAGE_PATH)
        rest = request.path[len(IMAGE_PATH) :]
        assert "/" not in rest
        assert unquote(rest).strip() not in ("", ".", "..")


def _check_create_body(request: HttpRequest) -> None:
    assert request.headers["content-type"] == "application/json"
    assert request.content is not None
    body = orjson.loads(request.content)
    assert set(body) <= _BODY_KEYS
    assert isinstance(body["sn"], str)
    assert body["sn"].strip()
    assert type(body["timestamp"]) is int
    assert 0 <= body["timestamp"] < 2**63
    if "timezone" in body:
        assert isinstance(body["timezone"], str)
        assert body["timezone"].strip()
    if "threshold" in body:
        assert type(body["threshold"]) is float
        assert 0.0 <= body["threshold"] <= 1.0
    image = base64.b64decode(body["image"]["data"], validate=True)
    assert 1 <= len(image) <= MAX_IMAGE_BYTES
    assert image.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"))
    if "rectangle" in body["image"]:
        rect = body["image"]["rectangle"]
        assert set(rect) == {"top", "left", "width", "height"}
        assert all(type(v) is int for v in rect.values())
        assert rect["top"] >= 0
        assert rect["left"] >= 0
        assert rect["width"] >= 1
        assert rect["height"] >= 1
    if "process_mode" in body:
        assert body["process_mode"] == 0
    if "extend" in body:
        assert isinstance(body["extend"], str)
        assert len(body["extend"].encode()) <= MAX_EXTEND_BYTES
        orjson.loads(body["extend"])


def _check_list_params(params: Mapping[str, str]) -> None:
    start = datetime.fromisoformat(params["time_from"])
    end = datetime.fromisoformat(params["time_to"])
    assert start.utcoffset() is not None
    assert end.utcoffset() is not None
    assert start.microsecond == end.microsecond == 0
    assert timedelta(0) < end - start <= timedelta(hours=24)
    assert params["order"] in ("0", "1")
    assert 1 <= int(params["page"]) < 2**31
    assert 1 <= int(params["size"]) <= 100
    if "sn" in params:
        assert params["sn"].strip()


async def outcome(
    client: Client,
    call: Callable[[], Awaitable[Any]],
    hostile: set[str],
    *,
    must_send: bool = True,
) -> ValidationError | Any:
    """Run ``call``: a refusal names a hostile argument and sent nothing; else it sent."""
    try:
        result = await call()
    except ValidationError as exc:
        assert exc.field, f"{exc!r} names no field"
        assert exc.field.split(".")[0] in hostile, (exc.field, hostile, str(exc))
        assert sent(client) == []
        assert str(exc)
        return exc
    if must_send:
        assert sent(client), "a call that raised nothing sent nothing"
    return result


# --- hostile values -------------------------------------------------------------------------


class Opaque:
    """An arbitrary object of a type no argument takes."""


class BadZone(tzinfo):
    """A tzinfo that breaks: utcoffset returns a string."""

    def utcoffset(self, dt: datetime | None) -> Any:
        return "+09:00"

    def dst(self, dt: datetime | None) -> Any:
        return None

    def tzname(self, dt: datetime | None) -> str:
        return "BAD"


class BadPath:
    """A PathLike whose __fspath__ returns an int."""

    def __fspath__(self) -> Any:
        return 42


ODD_STRINGS = [
    "\x00",
    "SN\x001",
    "\u200fSN1",  # RTL mark
    "\u202eSN1",  # RTL override
    "SN\u200e1",
    "😀",
    "SN😀1",
    "e\u0301",  # combining acute
    "\u0301",
    "\ud800",  # lone surrogates: orjson and UTF-8 refuse them
    "SN\udfff",
    "\ud83d",
    "\udc80",
    "\ufeff",
    "\U0010ffff",
    " ",
    "\t\n",
    "\u3000",
    "SN 1",
    "../x",
    "%00",
    "a/b?c#d",
    "\\",
    '"',
    "<script>",
    "x" * 5_000,
]


def either(specific: st.SearchStrategy[Any], general: st.SearchStrategy[Any]) -> Any:
    """Half the draws from each (``a | b`` flattens into one_of, whose many branches
    would dilute the few values that matter most)."""
    return st.booleans().flatmap(lambda pick: specific if pick else general)


odd_text = either(
    st.sampled_from(ODD_STRINGS),
    st.text(st.characters(exclude_categories=()), min_size=1, max_size=12),
)
ZONES: list[tzinfo] = [
    UTC,
    BERLIN,
    NEW_YORK,
    LORD_HOWE,
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-12)),
    timezone(timedelta(hours=23, minutes=59)),
    timezone(-timedelta(hours=23, minutes=59)),
    timezone(timedelta(hours=5, minutes=30, seconds=30)),
]
#: Aware datetimes over the whole datetime range (most far outside what the API takes).
aware_anywhere = st.datetimes(timezones=st.sampled_from(ZONES), allow_imaginary=True)
#: Aware datetimes around the supported range, for calls that walk the range.
aware_near = st.datetimes(
    min_value=datetime(1960, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from(ZONES),
    allow_imaginary=True,
)
EXTREME_TIMES = [
    datetime.min.replace(tzinfo=timezone(timedelta(hours=1))),
    datetime.min.replace(tzinfo=UTC),
    datetime.max.replace(tzinfo=UTC),
    datetime.max.replace(tzinfo=timezone(-timedelta(hours=23, minutes=59))),
    datetime(9999, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=timezone(timedelta(hours=1))),  # 1969 in UTC
    datetime(2024, 1, 1, tzinfo=BadZone()),
]
#: Ints of over 4300 digits, made lazily: hypothesis reprs its strategies now and then.
giants = st.sampled_from([1, -1]).map(lambda sign: sign * 10**5000)
junk_but_giants = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([-1, 0, 2**31, 2**63, 2**64, -(2**63) - 1, 10**400]),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324, 1e308]),
    st.text(max_size=8),
    odd_text,
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    st.datetimes(),  # naive
    st.timedeltas(),
    st.builds(Opaque),
    st.sampled_from([Decimal("0.5"), Fraction(1, 2), 1j, b"", bytearray(), (1, 2), {1, 2}]),
)
junk = junk_but_giants | giants


def hostile(*specific: st.SearchStrategy[Any], general: Any = None) -> Any:
    """Values made for one argument half the time, anything at all the other half."""
    return either(st.one_of(*specific), junk if general is None else general)


def count_hostile(args: list[str]) -> Any:
    """Which arguments get hostile values: mostly one, sometimes two, now and then none."""
    return st.sampled_from([0, 1, 1, 1, 2, 2]).flatmap(
        lambda n: st.lists(st.sampled_from(args), min_size=n, max_size=n, unique=True).map(set)
    )


naive_or_iso = st.one_of(
    st.datetimes(),
    aware_near.map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(
        ["2024-01-01T00:00:00Z", "2024-01-01", "yesterday", "", "2024-13-01T00:00:00+00:00"]
    ),
)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


hostile_extend = hostile(
    giants.map(lambda n: {"a": n}),
    st.dictionaries(odd_text, odd_text | st.floats() | st.integers(), max_size=3),
    st.dictionaries(st.integers() | st.booleans(), st.integers(), min_size=1, max_size=2),
    odd_text.map(lambda s: orjson.dumps(s.encode("utf-8", "replace").decode()).decode()),
    st.sampled_from(
        [
            {"a": 2**64},
            {"a": math.nan},
            {"a": Opaque()},
            {"a": datetime(2024, 1, 1)},
            _nested(100),
            _nested(300),
            types.MappingProxyType({"a": 1}),
            "NaN",
            '{"a": 1',
            '"\x00"',
            '"\\u0000"',
            '"\\ud800"',
            "[]",
            "null",
            "{}",
            "1e400",
        ]
    ),
)

# --- create_record ------------------------------------------------------------------------

_PATH = object()  # stands for a real file on disk, filled in at run time

valid_create = {
    "sn": st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=1, max_size=16),
    "image": st.sampled_from(
        [
            JPEG,
            PNG,
            bytearray(JPEG),
            memoryview(PNG),
            FaceImage(JPEG),
            FaceImage(PNG, Rectangle(1, 2, 3, 4)),
            _PATH,
        ]
    ),
    "timestamp": st.none() | aware_datetimes() | st.integers(0, 2**41),
    "timezone": st.none() | gmt_labels(),
    "threshold": st.none() | st.floats(0, 1) | st.sampled_from([0, 1]),
    "rectangle": st.none()
    | st.builds(
        Rectangle,
        st.integers(0, 5000),
        st.integers(0, 5000),
        st.integers(1, 5000),
        st.integers(1, 5000),
    )
    | st.fixed_dictionaries({k: st.integers(1, 5000) for k in ("top", "left", "width", "height")}),
    "extend": st.none()
    | extend_strings()
    | st.dictionaries(st.text(max_size=5), st.integers(-(2**53), 2**53), max_size=3),
    "process_mode": st.none() | st.just(0),
}
RECT_KEYS = ("top", "left", "width", "height")
rect_keys = st.sampled_from([*RECT_KEYS, "x", ""])
BIG_INTS = [2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**400, -(10**400)]
hostile_create = {
    "sn": hostile(odd_text),
    "image": hostile(
        st.binary(max_size=24),
        odd_text,
        st.sampled_from([b"", JPEG[:2], b"GIF89a" + bytes(8), BadPath(), bytearray(b"\xff\xd8")]),
    ),
    "timestamp": hostile(
        st.sampled_from([*EXTREME_TIMES, *BIG_INTS, -1]), aware_anywhere, st.integers(), giants
    ),
    "timezone": hostile(odd_text),
    "threshold": hostile(
        st.sampled_from([0, 1, -0.0001, 1.0001, math.nan, math.inf, -math.inf, True, *BIG_INTS]),
        st.floats(),
        st.integers(),
        giants,
    ),
    "rectangle": hostile(
        st.fixed_dictionaries(
            {k: st.integers(0, 9) | st.sampled_from(BIG_INTS) | giants for k in RECT_KEYS}
        ),
        st.fixed_dictionaries({k: st.integers() for k in RECT_KEYS}),
        st.fixed_dictionaries({k: junk for k in RECT_KEYS}),
        st.dictionaries(rect_keys, st.integers(0, 9), max_size=5),
    ),
    "extend": hostile_extend,
    "process_mode": hostile(st.sampled_from([1, -1, 0.0, "0", False, math.nan, *BIG_INTS])),
}
CREATE_ARGS = sorted(valid_create)


@pytest.fixture(scope="module")
def face_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faces") / "face 😀\u200f.jpg"
    path.write_bytes(JPEG)
    return path


@SETTINGS
@given(data=st.data())
async def test_create_record_any_arguments(data: st.DataObject, face_path: Path) -> None:
    hostile = data.draw(count_hostile(CREATE_ARGS), label="hostile")
    kwargs = {
        name: data.draw((hostile_create if name in hostile else valid_create)[name], label=name)
        for name in CREATE_ARGS
    }
    if kwargs["image"] is _PATH:
        kwargs["image"] = face_path
    sn, image = kwargs.pop("sn"), kwargs.pop("image")
    async with new_client() as client:
        result = await outcome(client, lambda: client.create_record(sn, image, **kwargs), hostile)
    if not hostile:
        assert result == CreatedRecord(7, "a" * 24)
    if not isinstance(result, ValidationError):
        body = orjson.loads(sent(client)[0].content or b"")
        assert body["sn"] == sn


# --- list_records and records -------------------------------------------------------------

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
LIST_ARGS = sorted(hostile_list)
TIME_ARGS = {"time_from", "time_to"}


def _list_kwargs(data: st.DataObject, hostile: set[str], times: Any) -> dict[str, Any]:
    start, end = data.draw(times, label="range")
    kwargs: dict[str, Any] = {"time_from": start, "time_to": end}
    for name in LIST_ARGS:
        if name in hostile:
            kwargs[name] = data.draw(hostile_list[name], label=name)
        elif name in valid_list:
            kwargs[name] = data.draw(valid_list[name], label=name)
    return kwargs


@SETTINGS
@given(data=st.data())
async def test_list_records_any_arguments(data: st.DataObject) -> None:
    hostile = data.draw(count_hostile(LIST_ARGS), label="hostile")
    # 23 h: rounding outwards to whole seconds must not push a valid window over 24 h.
    kwargs = _list_kwargs(data, hostile, time_ranges(max_span=timedelta(hours=23)))
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
RECORDS_ARGS = sorted(hostile_records)


@SETTINGS
@given(data=st.data())
async def test_records_any_arguments(data: st.DataObject) -> None:
    hostile = data.draw(count_hostile(RECORDS_ARGS), label="hostile")
    start, end = data.draw(time_ranges(max_span=timedelta(days=3)), label="range")
    kwargs: dict[str, Any] = {"time_from": start, "time_to": end}
    for name in RECORDS_ARGS:
        pool = hostile_records if name in hostile else valid_records
        if name in pool:
            kwargs[name] = data.draw(pool[name], label=name)
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


# --- get_image and download_image ----------------------------------------------------------


@SETTINGS
@given(
    image_id=hostile(
        st.sampled_from([".", "..", "a/..", "%2e%2e", "a/b", "?x=1", "#frag", " abc "]),
        odd_text,
        general=image_ids() | junk,
    )
)
async def test_get_image_any_id(image_id: Any) -> None:
    async with new_client() as client:
        result = await outcome(client, lambda: client.get_image(image_id), {"image_id"})
    if not isinstance(result, ValidationError):
        assert result == JPEG
        rest = sent(client)[0].path[len(IMAGE_PATH) :]
        assert unquote(rest) == image_id


@SETTINGS
@given(
    destination=junk.filter(lambda v: not isinstance(v, str))  # a str is a path: see below
    | st.sampled_from([b"snap.jpg", bytearray(b"x"), memoryview(b"x")])
)
async def test_download_image_refuses_what_is_neither_a_path_nor_a_file(destination: Any) -> None:
    async with new_client() as client:
        result = await outcome(
            client, lambda: client.download_image("abc", destination), {"destination"}
        )
    assert isinstance(result, ValidationError)


async def test_download_image_to_odd_but_valid_destinations(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    async with new_client() as client:
        assert await client.download_image("abc", buffer) == len(JPEG)
        target = tmp_path / "snap 😀 \u202e\u0301.jpg"
        assert await client.download_image("abc", target) == len(JPEG)
        assert await client.download_image("abc", str(target)) == len(JPEG)
    assert buffer.getvalue() == target.read_bytes() == JPEG


@pytest.mark.parametrize(
    "destination",
    ["snap\x00.jpg", "\ud800.jpg", "/nonexistent/dir/snap.jpg", "/", io.StringIO()],
    ids=["nul", "surrogate", "missing-dir", "directory", "text-file"],
)
async def test_download_image_bad_destinations_are_refused_before_sending(
    destination: Any,
) -> None:
    async with new_client() as client:
        with pytest.raises(ValidationError) as info:
            await client.download_image("abc", destination)
    assert info.value.field == "destination"
    assert sent(client) == []


# --- watch ----------------------------------------------------------------------------------


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
WATCH_ARGS = sorted(valid_watch)


@SETTINGS
@given(data=st.data())
async def test_watch_any_arguments(data: st.DataObject, tmp_path_factory: Any) -> None:
    hostile = data.draw(count_hostile(WATCH_ARGS), label="hostile")
    kwargs = {
        name: data.draw((hostile_watch if name in hostile else valid_watch)[name], label=name)
        for name in WATCH_ARGS
    }
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
            since = _iso(since)
        if since is not None:
            assert result.created_at.timestamp() >= since.timestamp()


# --- the constructors: Client, FaceImage, Rectangle, RetryPolicy, Timeout --------------------

client_options = {
    "timeout": junk | st.builds(Timeout),
    "retry": junk | st.builds(RetryPolicy),
    "max_concurrency": junk | st.integers(),
    "event_hooks": junk
    | st.dictionaries(
        st.sampled_from(["request", "retry", "x"]), junk | st.just([print]), max_size=2
    ),
    "max_response_bytes": junk | st.integers(),
}


@SETTINGS
@given(name=st.sampled_from(sorted(client_options)), data=st.data())
async def test_client_options(name: str, data: st.DataObject) -> None:
    value = data.draw(client_options[name], label=name)
    try:
        # No transport: the client makes its own (lazily, so nothing connects).
        client = Client(APP_KEY, APP_SECRET, base_url=BASE_URL, **{name: value})
    except ValidationError as exc:
        assert exc.field == name
        return
    async with client:
        assert not client.closed
    assert client.closed


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"app_key": b"key"}, id="key-bytes"),
        pytest.param({"app_key": 42}, id="key-int"),
        pytest.param({"app_secret": Opaque()}, id="secret-obj"),
        pytest.param({"app_secret": "s\ud800"}, id="secret-sur"),
        pytest.param({"app_key": "k\ud800"}, id="key-sur"),
        pytest.param({"base_url": 5}, id="url-int"),
        pytest.param({"base_url": ["https://x"]}, id="url-list"),
        pytest.param({"base_url": "http://[::1"}, id="url-v6"),
        pytest.param(
            {"base_url": "https://exa mple.com"},
            id="url-space",
        ),
        pytest.param(
            {"base_url": "https://\ud800.test"},
            id="url-sur",
        ),
        pytest.param(
            {"transport": Opaque()},
            id="transport-obj",
        ),
        pytest.param({"rate_limit": "10"}, id="rate-str"),
        pytest.param({"rate_limit": True}, id="rate-bool"),
        pytest.param({"rate_limit": 10**400}, id="rate-huge"),
        pytest.param({"rate_limit": -GIANT}, id="rate-giant"),
        pytest.param(
            {"max_concurrency": -GIANT},
            id="conc-giant",
        ),
        pytest.param(
            {"max_response_bytes": -GIANT},
            id="mrb-giant",
        ),
        pytest.param({"error_codes": 5}, id="codes-int"),
        pytest.param(
            {"error_codes": {30001: int}},
            id="codes-class",
        ),
        pytest.param(
            {"allow_insecure_http": "no", "base_url": "http://example.com"},
            id="insecure-str",
        ),
        pytest.param({"clock": 5}, id="clock"),
        pytest.param({"sleep": "x"}, id="sleep"),
        pytest.param({"rng": 7}, id="rng"),
    ],
)
async def test_client_refuses_bad_options_before_any_call(options: dict[str, Any]) -> None:
    """Either the constructor refuses, or a call fails only with ValidationError, sending
    nothing (a wrong key or secret would be sent, signed, with every request)."""
    key = options.pop("app_key", APP_KEY)
    secret = options.pop("app_secret", APP_SECRET)
    options.setdefault("base_url", BASE_URL)
    time = FakeClock()  # a rate limit or a retry must not really wait
    options.setdefault("clock", time.clock)
    options.setdefault("timer", time.timer)
    options.setdefault("sleep", time.sleep)
    # With no transport the client would make its own: only for options checked by it.
    own = "max_response_bytes" in options
    transport = None if own else options.pop("transport", None) or MockTransport(Server())

    async def use() -> None:
        async with Client(key, secret, transport=transport, **options) as client:
            await client.create_record("SN1", JPEG)
            await client.get_image("abc")

    with pytest.raises(ValidationError):
        await use()
    assert not getattr(transport, "requests", [])


async def test_max_response_bytes_is_checked_with_any_transport() -> None:
    with pytest.raises(ValidationError):
        new_client(max_response_bytes="lots")


@SETTINGS
@given(data=junk | st.binary(max_size=24), rectangle=st.none() | junk)
def test_face_image(data: Any, rectangle: Any) -> None:
    try:
        face = FaceImage(data, rectangle)
    except ValidationError as exc:
        assert exc.field in ("image", "rectangle")
        return
    assert isinstance(face.data, bytes)
    assert face.content_type in ("image/jpeg", "image/png")
    assert face.rectangle is None


@SETTINGS
@given(values=st.lists(junk | st.integers(), min_size=4, max_size=4))
def test_rectangle(values: list[Any]) -> None:
    try:
        rect = Rectangle(*values)
    except ValidationError as exc:
        assert exc.field in (
            "rectangle.top",
            "rectangle.left",
            "rectangle.width",
            "rectangle.height",
        )
        assert str(exc)
        return
    assert all(type(v) is int and 0 <= v < 2**31 for v in attrs_values(rect))
    assert rect.width >= 1
    assert rect.height >= 1


def attrs_values(rect: Rectangle) -> list[int]:
    return [rect.top, rect.left, rect.width, rect.height]


seconds = junk | st.floats() | st.integers()


@SETTINGS
@given(
    max_attempts=st.none() | junk | st.integers(),
    initial_delay=st.none() | seconds,
    max_delay=st.none() | seconds,
    max_retry_after=st.none() | seconds,
    deadline=st.none() | seconds,
)
def test_retry_policy(
    max_attempts: Any, initial_delay: Any, max_delay: Any, max_retry_after: Any, deadline: Any
) -> None:
    given_ = {
        "max_attempts": max_attempts,
        "initial_delay": initial_delay,
        "max_delay": max_delay,
        "max_retry_after": max_retry_after,
    }
    kwargs = {k: v for k, v in given_.items() if v is not None}
    kwargs["deadline"] = deadline
    try:
        policy = RetryPolicy(**kwargs)
    except ValidationError as exc:
        assert exc.field in kwargs
        assert str(exc)
        return
    rng = random.Random(0)
    for attempt in (1, 2, 3, 64, 65, 10_000):
        wait = policy.backoff(attempt, rng)
        assert math.isfinite(wait)
        assert 0 <= wait <= policy.max_delay


@SETTINGS
@given(connect=st.none() | seconds, total=st.none() | seconds)
def test_timeout(connect: Any, total: Any) -> None:
    kwargs = {k: v for k, v in {"connect": connect, "total": total}.items() if v is not None}
    try:
        timeout = Timeout(**kwargs)
    except ValidationError as exc:
        assert exc.field in kwargs
        return
    assert math.isfinite(timeout.connect)
    assert timeout.connect > 0
    assert math.isfinite(timeout.total)
    assert timeout.total > 0


@SETTINGS
@given(
    start=junk | aware_near | naive_or_iso | st.sampled_from(EXTREME_TIMES),
    length=st.timedeltas(timedelta(0), timedelta(days=40)),
    span=junk | st.timedeltas(timedelta(hours=1), timedelta(days=40)),
    flip=st.booleans(),
)
def test_split_time_range(start: Any, length: timedelta, span: Any, flip: bool) -> None:
    # A tiny span over a long range is a legitimately huge list: not what is tested here.
    assume(not (isinstance(span, timedelta) and timedelta(0) < span < timedelta(hours=1)))
    end = start + length if isinstance(start, datetime) and start.year < 9000 else start
    if flip:
        start, end = end, start
    try:
        windows = split_time_range(start, end, span)
    except ValidationError as exc:
        assert exc.field in ("time_from", "time_to", "span")
        return
    first = start if isinstance(start, datetime) else _iso(start)
    last = end if isinstance(end, datetime) else _iso(end)
    assert windows[0][0] == first
    assert windows[-1][1] == last
    for (_, hi), (nxt, _) in itertools.pairwise(windows):
        assert hi == nxt
    assert all(timedelta(0) < hi - lo <= span for lo, hi in windows)


# --- boundaries, pinned -----------------------------------------------------------------------


def jpeg_of(size: int) -> bytes:
    return JPEG + bytes(size - len(JPEG))


async def create(**kwargs: Any) -> tuple[Client, Any]:
    """Call create_record with valid defaults; return the client and the body or error."""
    sn = kwargs.pop("sn", "SN1")
    image = kwargs.pop("image", JPEG)
    async with new_client() as client:
        try:
            await client.create_record(sn, image, **kwargs)
        except ValidationError as exc:
            assert sent(client) == []
            return client, exc
    (request,) = sent(client)
    return client, orjson.loads(request.content or b"")


@pytest.mark.parametrize("size", [MAX_IMAGE_BYTES - 1, MAX_IMAGE_BYTES])
@pytest.mark.parametrize("form", ["bytes", "bytearray", "memoryview", "face", "path"])
async def test_image_up_to_the_limit_is_sent_whole(size: int, form: str, tmp_path: Path) -> None:
    data = jpeg_of(size)
    wrapped: dict[str, Callable[[], Any]] = {
        "bytes": lambda: data,
        "bytearray": lambda: bytearray(data),
        "memoryview": lambda: memoryview(data),
        "face": lambda: FaceImage(data),
        "path": lambda: _write(tmp_path / "face.jpg", data),
    }
    _, body = await create(image=wrapped[form]())
    assert base64.b64decode(body["image"]["data"]) == data


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("size", [MAX_IMAGE_BYTES + 1, MAX_IMAGE_BYTES * 4])
@pytest.mark.parametrize("form", ["bytes", "bytearray", "memoryview", "path"])
async def test_image_over_the_limit_is_refused(size: int, form: str, tmp_path: Path) -> None:
    data = jpeg_of(size)
    image: Any = {
        "bytes": data,
        "bytearray": bytearray(data),
        "memoryview": memoryview(data),
        "path": tmp_path / "big.jpg",
    }[form]
    if form == "path":
        image.write_bytes(data)
    _, error = await create(image=image)
    assert isinstance(error, ValidationError)
    assert error.field == "image"
    assert str(size) in str(error)
    with pytest.raises(ValidationError):
        FaceImage(data)


def _extend_of(nbytes: int, filler: str) -> str:
    """A JSON string document of exactly ``nbytes`` UTF-8 bytes made of ``filler``."""
    unit = len(filler.encode())
    count, rest = divmod(nbytes - 2, unit)
    return '"' + filler * count + "x" * rest + '"'


@pytest.mark.parametrize("filler", ["x", "é", "€", "😀", "e\u0301", "\u200f"])
@pytest.mark.parametrize(("nbytes", "accepted"), [(1024, True), (1025, False)])
async def test_extend_limit_in_utf8_bytes(filler: str, nbytes: int, accepted: bool) -> None:
    text = _extend_of(nbytes, filler)
    assert len(text.encode()) == nbytes
    for value in (text, _dict_of(nbytes, filler)):
        _, result = await create(extend=value)
        if accepted:
            assert not isinstance(result, ValidationError), result
            assert len(result["extend"].encode()) == nbytes
            assert orjson.loads(result["extend"]) == (
                orjson.loads(value) if isinstance(value, str) else value
            )
        else:
            assert isinstance(result, ValidationError)
            assert result.field == "extend"
            assert f"{nbytes} bytes" in str(result)


def _dict_of(nbytes: int, filler: str) -> dict[str, str]:
    """``{"k": "..."}`` that orjson writes in exactly ``nbytes`` bytes (raw UTF-8)."""
    inner = _extend_of(nbytes - len('{"k":}'), filler)[1:-1]
    value = {"k": inner}
    assert len(orjson.dumps(value)) == nbytes
    return value


@pytest.mark.parametrize(
    ("threshold", "sent_as"),
    [
        (0, 0.0),
        (1, 1.0),
        (0.0, 0.0),
        (1.0, 1.0),
        (-0.0, -0.0),
        (5e-324, 5e-324),
        (0.9, 0.9),
        (-0.0001, None),
        (1.0001, None),
        (math.nan, None),
        (math.inf, None),
        (-math.inf, None),
        (True, None),
        (False, None),
        (10**400, None),
        (-(10**400), None),
        (GIANT, None),
        (Decimal("0.5"), None),
        (Fraction(1, 2), None),
        ("0.5", None),
    ],
    ids=lambda value: shown(value, 24),
)
async def test_threshold_bounds(threshold: Any, sent_as: float | None) -> None:
    _, result = await create(threshold=threshold)
    if sent_as is None:
        assert isinstance(result, ValidationError)
        assert result.field == "threshold"
    else:
        assert result["threshold"] == sent_as
        assert type(result["threshold"]) is float


@pytest.mark.parametrize("text", ODD_STRINGS, ids=ascii)
async def test_odd_unicode_in_sn_and_extend(text: str) -> None:
    encodable = _encodable(text)
    _, result = await create(sn=text)
    if not text.strip() or not encodable:
        assert isinstance(result, ValidationError)
        assert result.field == "sn"
        assert "surrogate" in str(result) or not text.strip()
    else:
        assert result["sn"] == text  # sent verbatim, JSON-escaped as needed
    _, result = await create(extend={text: text})
    if encodable and len(orjson.dumps({text: text})) <= MAX_EXTEND_BYTES:
        assert orjson.loads(result["extend"]) == {text: text}
    else:
        assert isinstance(result, ValidationError)
        assert result.field == "extend"
    async with new_client() as client:
        try:
            await client.list_records(T0, T0 + timedelta(hours=1), sn=text)
        except ValidationError as exc:
            assert exc.field == "sn"
            assert not text.strip() or not encodable
            assert sent(client) == []
        else:
            assert dict(sent(client)[0].params)["sn"] == text


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.parametrize("value", ["\ud800", "GMT+9:00\udfff"], ids=ascii)
async def test_lone_surrogates_elsewhere_are_validation_errors(value: str) -> None:
    _, result = await create(timezone=value)
    assert isinstance(result, ValidationError)
    assert result.field == "timezone"
    _, result = await create(extend={"k": value})
    assert isinstance(result, ValidationError)
    assert result.field == "extend"
    _, result = await create(extend=f'"{value}"')
    assert isinstance(result, ValidationError)
    assert result.field == "extend"
    async with new_client() as client:
        with pytest.raises(ValidationError) as info:
            await client.get_image(value)
        assert info.value.field == "image_id"
        with pytest.raises(ValidationError) as info:
            client.watch(sn=value)
        assert info.value.field == "sn"
        with pytest.raises(ValidationError) as info:
            client.watch(checkpoint=value)
        assert info.value.field == "checkpoint"
    assert sent(client) == []


# --- DST edges ----------------------------------------------------------------------------------

SPRING_GAP = datetime(2024, 3, 31, 2, 30, tzinfo=BERLIN)  # does not exist: clocks jump 2 -> 3
FALL_FIRST = datetime(2024, 10, 27, 2, 30, tzinfo=BERLIN)  # 02:30 CEST (+2), fold=0
FALL_SECOND = datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=BERLIN)  # 02:30 CET (+1)


@pytest.mark.parametrize(
    ("when", "seconds", "label"),
    [
        (FALL_FIRST, int(datetime(2024, 10, 27, 0, 30, tzinfo=UTC).timestamp()), "GMT+2:00"),
        (FALL_SECOND, int(datetime(2024, 10, 27, 1, 30, tzinfo=UTC).timestamp()), "GMT+1:00"),
        # The gap's wall time reads with the offset before the jump (fold=0): 01:30 UTC.
        (SPRING_GAP, int(datetime(2024, 3, 31, 1, 30, tzinfo=UTC).timestamp()), "GMT+1:00"),
        (
            datetime(2024, 3, 31, 3, 0, tzinfo=BERLIN),
            int(datetime(2024, 3, 31, 1, 0, tzinfo=UTC).timestamp()),
            "GMT+2:00",
        ),
        (
            # Lord Howe falls back by 30 min, 02:00 -> 01:30: the second 01:45 is +10:30.
            datetime(2024, 4, 7, 1, 45, fold=1, tzinfo=LORD_HOWE),
            int(datetime(2024, 4, 6, 15, 15, tzinfo=UTC).timestamp()),
            "GMT+10:30",
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


@pytest.mark.parametrize(
    ("start", "end", "accepted"),
    [
        # 24 wall-clock hours over spring-forward are 23 real hours: allowed.
        (datetime(2024, 3, 30, 12, tzinfo=BERLIN), datetime(2024, 3, 31, 12, tzinfo=BERLIN), True),
        # ... over fall-back they are 25 real hours: refused, although the wall clock says 24.
        (
            datetime(2024, 10, 26, 12, tzinfo=BERLIN),
            datetime(2024, 10, 27, 12, tzinfo=BERLIN),
            False,
        ),
        (
            datetime(2024, 10, 26, 13, tzinfo=BERLIN),
            datetime(2024, 10, 27, 12, tzinfo=BERLIN),
            True,
        ),
        # The gap's 02:30 is 01:30 UTC, the same instant as 03:30 CEST: an empty window.
        (SPRING_GAP, datetime(2024, 3, 31, 3, 30, tzinfo=BERLIN), False),
        (FALL_FIRST, FALL_SECOND, True),
        (FALL_SECOND, FALL_FIRST, False),
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


@pytest.mark.parametrize(
    ("timestamp", "accepted"),
    [(0, True), (2**63 - 1, True), (2**63, False), (2**64, False), (-1, False), (GIANT, False)],
    ids=["zero", "int64-max", "int64-over", "uint64-over", "negative", "giant"],
)
async def test_int_timestamps_stay_json_encodable(timestamp: int, accepted: bool) -> None:
    _, result = await create(timestamp=timestamp)
    if accepted:
        assert result["timestamp"] == timestamp
        assert "timezone" not in result
    else:
        assert isinstance(result, ValidationError)
        assert result.field == "timestamp"


@pytest.mark.parametrize("field", ["top", "left", "width", "height"])
@pytest.mark.parametrize(
    ("value", "accepted"),
    [(2**31 - 1, True), (2**31, False), (2**64, False), (GIANT, False)],
    ids=["int32-max", "int32-over", "uint64-over", "giant"],
)
async def test_rectangle_values_stay_json_encodable(field: str, value: int, accepted: bool) -> None:
    rect = {"top": 0, "left": 0, "width": 1, "height": 1, field: value}
    _, result = await create(rectangle=rect)
    if accepted:
        assert result["image"]["rectangle"] == rect
    else:
        assert isinstance(result, ValidationError)
        assert result.field == f"rectangle.{field}"


@pytest.mark.parametrize(
    "path", ["face\x00.jpg", "\ud800.jpg", "", "/", "x" * 5000, BadPath()], ids=ascii
)
async def test_unreadable_image_paths_are_validation_errors(path: Any) -> None:
    _, result = await create(image=path)
    assert isinstance(result, ValidationError)
    assert result.field == "image"
    text = str(result)
    assert "cannot read image" in text or "not a JPEG" in text or "not a regular file" in text


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
