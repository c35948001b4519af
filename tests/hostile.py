"""Hostile input: what every test of a public call's arguments shares.

The rule, for each call: either the input is valid and a well-formed request goes out,
or `ValidationError` (with ``field`` naming the argument) is raised and the transport
received nothing. No other exception type may escape: no TypeError, AttributeError,
OverflowError, UnicodeEncodeError or orjson error.

Here: the fake cloud (`Server`) that answers every call and checks each request is
well-formed, `outcome` (the rule, applied to one call), `create` (one create_record call
with valid defaults), and the hostile value pools. Hypothesis draws each call's
arguments from a valid pool and, for one or two of them, a hostile pool (wrong types,
huge and non-finite numbers, naive or out-of-range times, odd Unicode): `hostile`,
`count_hostile`. The pools are kept here, beside the rule, rather than in
`tests/strategies.py`, whose strategies make valid data for the whole suite.
"""

from __future__ import annotations

import base64
import math
import re
import types
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from fractions import Fraction
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import orjson
import yarl
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from senselink_plus import (
    Client,
    HttpRequest,
    HttpResponse,
    RetryPolicy,
    TransportError,
    ValidationError,
)
from senselink_plus._endpoints import IMAGE_PATH, RECORD_PATH
from senselink_plus._models import MAX_EXTEND_BYTES, MAX_IMAGE_BYTES
from senselink_plus.testing import MockTransport
from tests.conftest import APP_KEY, APP_SECRET, BASE_URL, JPEG, ok
from tests.fake_clock import FakeClock

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


def iso(text: str) -> datetime:
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

    def __repr__(self) -> str:  # a stable test id
        return "BadPath()"


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
BIG_INTS = [2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**400, -(10**400)]
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


def draw_arguments(
    data: st.DataObject, valid: Mapping[str, Any], hostile_pool: Mapping[str, Any]
) -> tuple[set[str], dict[str, Any]]:
    """Which arguments are hostile (`count_hostile`), and a value for each argument: from
    ``hostile_pool`` for those, from ``valid`` for the rest (one ``valid`` lacks is left
    out, to its default)."""
    names = sorted(hostile_pool)
    chosen = data.draw(count_hostile(names), label="hostile")
    kwargs: dict[str, Any] = {}
    for name in names:
        pool = hostile_pool if name in chosen else valid
        if name in pool:
            kwargs[name] = data.draw(pool[name], label=name)
    return chosen, kwargs


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
