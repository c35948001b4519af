"""Hostile responses: whatever the server sends, only `SenseLinkError` escapes.

Hypothesis plays the server through a `MockTransport`: random bytes, truncated JSON,
wrong types, missing fields, numbers beyond 64 bits and beyond a double (``1e400``),
JSON nested past every parser limit, the wrong Content-Type for images (an envelope
labelled ``image/jpeg``, an image labelled JSON, HTML error pages), any HTTP status from
100 to 599, and random headers with garbage ``Retry-After`` values (negative, huge, NaN,
dates past and future, non-ASCII). Each call goes through the whole client (signing,
retries with a fake sleep, parsing, the pager) and must end in its model or in a
`SenseLinkError` that says what was asked and holds no secret or sign; never a
KeyError, TypeError, ValueError, OverflowError or cattrs error.

(A body over ``max_response_bytes`` is tested against a real server in test_transport.)
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from senselink_plus import (
    Client,
    ConnectError,
    CreatedRecord,
    HttpRequest,
    HttpResponse,
    RateLimitError,
    Record,
    RecordPage,
    RedirectError,
    ResponseError,
    RetryPolicy,
    SenseLinkError,
    ServerError,
    ValidationError,
)
from senselink_plus import _endpoints as ep
from senselink_plus.testing import MockTransport
from tests.conftest import APP_KEY, APP_SECRET, BASE_URL, JPEG, PNG
from tests.conftest import WIRE_RECORD as SPEC_RECORD
from tests.fake_clock import FakeClock
from tests.strategies import image_ids, wire_records

UTC = timezone.utc
T0 = datetime(2023, 11, 14, tzinfo=UTC)  # the fake clock's day
T0_MS = int(T0.timestamp()) * 1000
SETTINGS = settings(
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- what a hostile server sends -----------------------------------------------------------

#: Number tokens no 64-bit int or double holds (orjson reads big ints as floats and
#: refuses 1e400), or that are merely odd.
RAW_NUMBERS = [
    "1e400",
    "-1e400",
    "1e-400",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "1" + "0" * 400,
    "9007199254740993",
    "-0",
    "0.0",
    "1.5",
    "1e3",
    "253402300800000",  # 10000-01-01 in ms
    "-62135596800",  # year 1 in seconds
]
raw_number = st.sampled_from(RAW_NUMBERS) | st.integers().map(str)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=6)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)

WIRE_RECORD = {**SPEC_RECORD, "create_at": T0_MS}
hostile_field = json_values | st.sampled_from(
    [2**62, -(2**62), 2**64 - 1, -1, 0, 10**11, 253402300799999, 1e308, -1e308, "", [], {}]
)
record_like = st.fixed_dictionaries(
    {},
    optional={key: st.just(value) | hostile_field for key, value in WIRE_RECORD.items()},
) | st.builds(
    lambda record_id, create_at: {**WIRE_RECORD, "record_id": record_id, "create_at": create_at},
    st.integers(1, 10**6),
    st.integers(T0_MS, T0_MS + 86_400_000) | hostile_field,
)
page_like = st.fixed_dictionaries(
    {},
    optional={
        "page_num": st.integers(-1, 3) | hostile_field,
        "page_size": st.integers(-1, 101) | hostile_field,
        "total": st.integers(-1, 10) | st.sampled_from([2**63, 2**64 - 1]) | hostile_field,
        "list": st.lists(record_like, max_size=4) | hostile_field,
    },
)
created_like = st.fixed_dictionaries(
    {},
    optional={
        "record_id": st.integers(1, 10**6) | hostile_field,
        "image_id": st.just("a" * 24) | hostile_field,
    },
)
codes = st.sampled_from([200, 200, 200, 30001, 30003, 401, 403, 404, 429, 500, 503]) | (
    st.integers(-(2**63), 2**64 - 1) | json_values
)
envelopes = st.builds(
    lambda code, message, data, extra: orjson.dumps(
        {"code": code, "message": message, "data": data, **extra}
    ),
    codes,
    st.just("OK") | json_values,
    page_like | created_like | json_values,
    st.fixed_dictionaries({}, optional={"desc": json_values, "msg": json_values}),
)
#: Valid JSON text with number tokens no decoder can hold, put where numbers go.
spliced = st.builds(
    lambda total, record_id, create_at, score, code: (
        f'{{"code":{code},"message":"OK","data":{{"page_num":1,"page_size":100,'
        f'"total":{total},"list":[{{"record_id":{record_id},"sn":"S","image_id":"i",'
        f'"create_at":{create_at},"verify_score":{score}}}]}}}}'
    ).encode(),
    raw_number | st.just("1"),
    raw_number | st.just("1"),
    raw_number | st.just(str(T0_MS)),
    raw_number | st.just("0.5"),
    raw_number | st.just("200"),
)


def _nest(depth: int, brackets: tuple[str, str]) -> bytes:
    opener, closer = brackets
    return f'{{"code":200,"message":"OK","data":{opener * depth}1{closer * depth}}}'.encode()


#: Nesting around every limit: orjson refuses over 1024 levels, cattrs recurses.
deep = st.builds(
    _nest,
    st.sampled_from([64, 254, 255, 256, 1023, 1024, 1025, 5000, 100_000]),
    st.sampled_from([("[", "]"), ('{"list":', "}"), ('{"list":[', "]}")]),
)
HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
fixed_bodies = st.sampled_from(
    [
        b"",
        b"null",
        b"[]",
        b"{}",
        b'{"code":200}',
        b'{"code":"200","data":{}}',
        b'{"code":200.0,"data":{}}',
        b'{"code":true}',
        b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
        HTML,
        JPEG,
        PNG,
        JPEG + b'{"code":200}',
        b"\xff\xd8",
        b"x" * 70_000,
        '{"code":200,"message":"\ud800"}'.encode("utf-8", "surrogatepass"),
    ]
)
well_formed = envelopes | spliced
bodies = st.one_of(
    st.binary(max_size=64),
    well_formed,
    well_formed.flatmap(lambda b: st.integers(0, max(0, len(b) - 1)).map(lambda i: b[:i])),
    deep,
    fixed_bodies,
)

CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "image/jpeg",
    "image/png",
    "IMAGE/JPEG",
    "image/",
    "text/html",
    "text/plain",
    "application/octet-stream",
    "",
    ";",
    "application/problem+json",
    "multipart/form-data; boundary=x",
]
content_types = st.sampled_from(CONTENT_TYPES) | st.text(max_size=12)
retry_afters = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats().map(repr),
    st.sampled_from(
        [
            "-1",
            "0",
            "1e400",
            "-1e400",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "1e308",
            "99999999999999999999999999",
            " 2 ",
            "",
            "soon",
            "\u0663",  # Arabic-Indic three: float() reads it
            "\u00b2",
            "1_000",
            "0x10",
            "\u00a0",
            "\u216b",
            "Mon, 01 Jan 0001 00:00:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Thu, 01 Jan 1970 00:00:00 +2359",
            "Wed, 32 Foo 2023 99:99:99 GMT",
            "Tue, 14 Nov 2023 22:13:30 GMT",
        ]
    ),
    # HTTP dates from 1653 to 5138, so both long past and far future.
    st.integers(-(10**10), 10**11).map(lambda t: email.utils.formatdate(t, usegmt=True)),
    st.text(st.characters(exclude_categories=()), max_size=12),
)
headers = st.builds(
    lambda base, extra: {**extra, **base},
    st.fixed_dictionaries(
        {}, optional={"content-type": content_types, "retry-after": retry_afters}
    ),
    st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=12), max_size=3),
)
statuses = st.sampled_from([200, 200, 200, 429, 500, 503]) | st.integers(100, 599)


@st.composite
def near_records(draw: st.DrawFn) -> dict[str, Any]:
    """A record as the spec has it, with up to two fields dropped or made hostile."""
    record = draw(wire_records())
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(sorted(WIRE_RECORD)))
        if draw(st.booleans()):
            record.pop(key, None)
        else:
            record[key] = draw(hostile_field)
    return record


@st.composite
def near_data(draw: st.DrawFn) -> dict[str, Any]:
    """A page or a created record, mostly right: this is what reaches the deep parsing."""
    if draw(st.booleans()):
        data: dict[str, Any] = {
            "page_num": draw(st.integers(1, 3)),
            "page_size": draw(st.sampled_from([1, 5, 10, 100])),
            "total": draw(st.integers(0, 12)),
            "list": draw(st.lists(near_records(), max_size=5)),
        }
    else:
        data = {"record_id": draw(st.integers(1, 2**53)), "image_id": draw(image_ids())}
    if draw(st.integers(0, 3)) == 0:
        key = draw(st.sampled_from(sorted(data)))
        if draw(st.booleans()):
            del data[key]
        else:
            data[key] = draw(hostile_field)
    return data


@st.composite
def responses(draw: st.DrawFn) -> HttpResponse:
    """Half the time a 200 JSON envelope that is nearly right, else anything at all."""
    if draw(st.booleans()):
        body = orjson.dumps({"code": 200, "message": "OK", "data": draw(near_data())})
        kind = draw(st.sampled_from(["application/json", "application/json; charset=utf-8", ""]))
        return HttpResponse(200, {"content-type": kind}, body)
    return HttpResponse(draw(statuses), draw(headers), draw(bodies))


@st.composite
def image_responses(draw: st.DrawFn) -> HttpResponse:
    """Mostly the image endpoint's own confusions: what is labelled is not what is sent."""
    body = draw(
        bodies
        | st.sampled_from([JPEG, PNG, HTML, JPEG + bytes(100), PNG + b"{}"])
        | st.builds(lambda code: orjson.dumps({"code": code, "message": "m", "data": None}), codes)
    )
    labelled = draw(
        st.sampled_from(["image/jpeg", "image/png", "image/jpeg", "application/json", "text/html"])
    )
    extra = draw(headers)
    status = draw(st.just(200) | statuses)
    return HttpResponse(status, {**extra, "content-type": labelled}, body)


policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(1, 4),
    initial_delay=st.sampled_from([0.0, 0.5]),
    max_delay=st.sampled_from([0.0, 8.0]),
    max_retry_after=st.sampled_from([0.0, 1.0, 60.0, 1e6]),
    deadline=st.none() | st.sampled_from([0.5, 30.0]),
)

# --- the client under test -------------------------------------------------------------------


class Exhausted(ConnectError):
    """The scripted server has nothing more to say (a SenseLinkError, never sent twice)."""


class Script:
    """Hands out the drawn responses in order, then fails to connect."""

    def __init__(self, script: list[HttpResponse]) -> None:
        self.script = list(script)
        self.used: list[HttpResponse] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not self.script:
            raise Exhausted("the script is over")
        response = self.script.pop(0)
        self.used.append(response)
        return response


def client_for(
    handler: Callable[[HttpRequest], HttpResponse], policy: RetryPolicy, time: FakeClock
) -> Client:
    return Client(
        APP_KEY,
        APP_SECRET,
        base_url=BASE_URL,
        transport=MockTransport(handler),
        retry=policy,
        clock=time.clock,
        timer=time.timer,
        sleep=time.sleep,
        rng=random.Random(0),
    )


def check_error(exc: SenseLinkError, client: Client) -> None:
    """What every error must be: it says what was asked and leaks nothing."""
    assert not isinstance(exc, ValidationError), f"a response is not bad input: {exc!r}"
    assert exc.request is not None, f"{exc!r} does not say what was asked"
    text = f"{exc} {exc!r}"
    assert APP_SECRET not in text
    requests = client._session.transport.requests  # type: ignore[attr-defined]
    for request in requests:
        sign = dict(request.params)["sign"]
        assert sign not in text


def check_waits(time: FakeClock, policy: RetryPolicy) -> None:
    ceiling = max(policy.max_delay, policy.max_retry_after)
    for wait in time.sleeps:
        assert math.isfinite(wait)
        assert 0 <= wait <= ceiling


def check_record(record: Record) -> None:
    assert type(record.record_id) is int
    assert isinstance(record.sn, str)
    assert isinstance(record.image_id, str)
    created = record.created_at  # never raises for a record from the wire
    assert datetime(1970, 1, 1, tzinfo=UTC) <= created < datetime(9999, 1, 1, tzinfo=UTC)
    assert record.verify_score is None or math.isfinite(record.verify_score)
    assert record.extend is None or isinstance(record.extend, str)


def outcome_event(result: object) -> None:
    """Count outcomes by type, for ``--hypothesis-show-statistics``."""
    event(f"outcome: {type(result).__name__}")


async def run(
    script: Script, policy: RetryPolicy, call: Callable[[Client], Any]
) -> tuple[Client, FakeClock, Any]:
    time = FakeClock()
    async with client_for(script, policy, time) as client:
        try:
            result = await call(client)
        except SenseLinkError as exc:
            check_error(exc, client)
            result = exc
    check_waits(time, policy)
    return client, time, result


# --- the calls ----------------------------------------------------------------------------------


@SETTINGS
@given(script=st.lists(responses(), min_size=1, max_size=4), policy=policies)
async def test_create_record(script: list[HttpResponse], policy: RetryPolicy) -> None:
    server = Script(script)
    client, _, result = await run(server, policy, lambda c: c.create_record("SN1", JPEG))
    outcome_event(result)
    requests = client._session.transport.requests  # type: ignore[attr-defined]
    assert len(requests) <= policy.max_attempts
    # Not idempotent: sent again only after an answer that provably stored nothing.
    info = requests[0].info() if requests else None
    for earlier in server.used[: len(requests) - 1]:
        with pytest.raises(RateLimitError):
            ep.parse_created_record(earlier, requests[0])
    if isinstance(result, CreatedRecord):
        assert type(result.record_id) is int
        assert isinstance(result.image_id, str)
    else:
        assert result.request == info
        if isinstance(result, (ResponseError, ServerError)):
            assert result.record_may_exist, "an unreadable or failed answer may have stored it"
        if isinstance(result, (ConnectError, RateLimitError)):
            assert not result.record_may_exist


@SETTINGS
@given(script=st.lists(responses(), min_size=1, max_size=4), policy=policies)
async def test_list_records(script: list[HttpResponse], policy: RetryPolicy) -> None:
    server = Script(script)
    client, _, result = await run(
        server, policy, lambda c: c.list_records(T0, T0 + timedelta(hours=1), size=10)
    )
    outcome_event(result)
    assert len(client._session.transport.requests) <= policy.max_attempts  # type: ignore[attr-defined]
    if isinstance(result, RecordPage):
        assert all(type(n) is int for n in (result.page_num, result.page_size, result.total))
        assert result.total >= 0
        for record in result.records:
            check_record(record)
        # Success is exactly what the last answer said.
        sent = client._session.transport.requests  # type: ignore[attr-defined]
        assert result == ep.parse_record_page(server.used[-1], sent[-1])


@SETTINGS
@given(
    script=st.lists(responses(), min_size=1, max_size=6),
    policy=policies,
    span=st.sampled_from([timedelta(hours=1), timedelta(hours=1), timedelta(days=2, hours=1)]),
    concurrency=st.integers(1, 3),
    page_size=st.integers(1, 5),
)
async def test_records_iterating_pages(
    script: list[HttpResponse],
    policy: RetryPolicy,
    span: timedelta,
    concurrency: int,
    page_size: int,
) -> None:
    server = Script(script)
    seen: list[int] = []

    async def walk(client: Client) -> list[RecordPage]:
        pages = []
        async for page in client.records(
            T0, T0 + span, page_size=page_size, concurrency=concurrency
        ).pages():
            pages.append(page)
            for record in page.records:
                check_record(record)
            # An id repeated inside one server page is yielded as often as it comes: a
            # known fault, pinned by test_an_id_repeated_within_a_page_is_yielded_once.
            seen.extend({record.record_id for record in page.records})
        return pages

    client, _, result = await run(server, policy, walk)
    outcome_event(result)
    twice = {record_id for record_id in seen if seen.count(record_id) > 1}
    # A record the server put outside the window asked for, and again in another
    # window, is yielded twice: a known fault, pinned by
    # test_a_record_sent_outside_its_window_is_yielded_once.
    assert twice <= stray_ids(server, client), "a record_id was yielded in two pages"


def stray_ids(server: Script, client: Client) -> set[int]:
    """Ids the server sent in a page for a window that does not hold their time."""
    strays: set[int] = set()
    requests = client._session.transport.requests  # type: ignore[attr-defined]
    for request, response in zip(requests, server.used, strict=False):
        try:
            page = ep.parse_record_page(response, request)
        except SenseLinkError:
            continue
        params = dict(request.params)
        lo = datetime.fromisoformat(params["time_from"])
        hi = datetime.fromisoformat(params["time_to"]) + timedelta(seconds=1)
        strays.update(r.record_id for r in page.records if not lo <= r.created_at <= hi)
    return strays


async def test_an_id_repeated_within_a_page_is_a_response_error() -> None:
    record = {**WIRE_RECORD, "record_id": 5}
    page = {"page_num": 1, "page_size": 10, "total": 2, "list": [record, record]}
    script = Script([HttpResponse(200, {}, orjson.dumps({"code": 200, "data": page}))])
    _, _, got = await run(
        script,
        RetryPolicy.none(),
        lambda c: _collect(c.records(T0, T0 + timedelta(hours=1), page_size=10)),
    )
    assert isinstance(got, ResponseError)
    assert "repeats a record" in str(got)


async def test_a_record_sent_outside_its_window_is_yielded_once() -> None:
    stray = {**WIRE_RECORD, "record_id": 9, "create_at": T0_MS + 30 * 3_600_000}
    page = {"page_num": 1, "page_size": 10, "total": 1, "list": [stray]}
    answer = HttpResponse(200, {}, orjson.dumps({"code": 200, "data": page}))
    _, _, got = await run(
        Script([answer, answer]),
        RetryPolicy.none(),
        lambda c: _collect(c.records(T0, T0 + timedelta(days=2), page_size=10)),
    )
    assert [r.record_id for r in got] == [9]


async def _collect(pager: Any) -> list[Record]:
    return [record async for record in pager]


@SETTINGS
@given(script=st.lists(image_responses() | responses(), min_size=1, max_size=4), policy=policies)
async def test_get_image(script: list[HttpResponse], policy: RetryPolicy) -> None:
    server = Script(script)
    client, _, result = await run(server, policy, lambda c: c.get_image("abc"))
    outcome_event(result)
    assert len(client._session.transport.requests) <= policy.max_attempts  # type: ignore[attr-defined]
    if isinstance(result, bytes):
        last = server.used[-1]
        assert result == last.content
        assert result
        assert 200 <= last.status <= 299
        assert not ep._is_envelope(result), "an error envelope was taken for an image"


@SETTINGS
@given(script=st.lists(responses(), min_size=1, max_size=6), policy=policies)
async def test_watch_survives_any_answer(script: list[HttpResponse], policy: RetryPolicy) -> None:
    """A failed poll is retried, never fatal: after the hostile answers, a good one is
    delivered, and nothing escapes on the way. The one exception is a redirect (3xx),
    never followed: it ends the watch with a RedirectError."""
    since = T0 - timedelta(hours=1)
    sentinel = 10**9

    def handler(request: HttpRequest) -> HttpResponse:
        if server.script:
            return server(request)
        end = datetime.fromisoformat(dict(request.params)["time_to"])
        record = {**WIRE_RECORD, "record_id": sentinel, "create_at": int(end.timestamp()) * 1000}
        body = {"page_num": 1, "page_size": 100, "total": 1, "list": [record]}
        return HttpResponse(200, {}, orjson.dumps({"code": 200, "message": "OK", "data": body}))

    server = Script(script)
    time = FakeClock()
    got: list[Record] = []
    async with client_for(handler, policy, time) as client:
        watch = client.watch(since=since, poll_interval=5)
        try:
            async for record in watch:
                check_record(record)
                got.append(record)
                if record.record_id == sentinel or len(got) > 50:
                    break
        except RedirectError:
            assert 300 <= server.used[-1].status <= 399
            assert all(not 300 <= r.status <= 399 for r in server.used[:-1])
            return
        finally:
            await watch.aclose()
    assert all(not 300 <= r.status <= 399 for r in server.used)
    assert got[-1].record_id == sentinel
    ids = [record.record_id for record in got]
    assert len(ids) == len(set(ids))
    assert all(record.created_at >= since for record in got)
    assert all(math.isfinite(wait) and wait >= 0 for wait in time.sleeps)


# --- pinned cases -------------------------------------------------------------------------------


async def one_call(response: HttpResponse, call: Callable[[Client], Any]) -> Any:
    _, _, result = await run(Script([response]), RetryPolicy.none(), call)
    return result


@pytest.mark.parametrize(
    "content_type", ["image/jpeg", "image/png", "IMAGE/JPEG; q=1", "application/octet-stream"]
)
@pytest.mark.parametrize(
    ("code", "cls"),
    [(30001, "InvalidParameterError"), (404, "NotFoundError"), (500, "ServerError")],
)
async def test_an_error_envelope_labelled_as_an_image_is_an_error(
    content_type: str, code: int, cls: str
) -> None:
    body = orjson.dumps({"code": code, "message": "no such image", "data": None})
    result = await one_call(
        HttpResponse(200, {"content-type": content_type}, body), lambda c: c.get_image("abc")
    )
    assert type(result).__name__ == cls
    assert result.message == "no such image"


async def test_a_success_envelope_labelled_as_an_image_is_a_response_error() -> None:
    body = b'  {"code":200,"message":"OK","data":{"url":"x"}}'
    result = await one_call(
        HttpResponse(200, {"content-type": "image/jpeg"}, body), lambda c: c.get_image("abc")
    )
    assert isinstance(result, ResponseError)
    assert "expected image bytes" in str(result)


@pytest.mark.parametrize("image", [JPEG, PNG, b"RIFF....WEBPVP8 "], ids=["jpeg", "png", "webp"])
async def test_image_bytes_labelled_as_images_are_returned(image: bytes) -> None:
    result = await one_call(
        HttpResponse(200, {"content-type": "image/jpeg"}, image), lambda c: c.get_image("abc")
    )
    assert result == image


@pytest.mark.parametrize("status", [200, 404, 502])
async def test_image_bytes_labelled_json_or_an_html_page_are_errors(status: int) -> None:
    for body, kind in ((JPEG, "application/json"), (HTML, "text/html")):
        result = await one_call(
            HttpResponse(status, {"content-type": kind}, body), lambda c: c.get_image("abc")
        )
        assert isinstance(result, SenseLinkError)
        assert result.request is not None
        assert result.request.path == "/api/v1/plus/image/abc"


def page_at(create_at: int) -> HttpResponse:
    """A listing's answer: one page holding one record stamped ``create_at``."""
    page = {
        "page_num": 1,
        "page_size": 10,
        "total": 1,
        "list": [{**WIRE_RECORD, "create_at": create_at}],
    }
    return HttpResponse(200, {}, orjson.dumps({"code": 200, "data": page}))


@pytest.mark.parametrize(
    "create_at",
    [2**62, 2**64 - 1, -1, -(2**62), 253402300799999, 253370764800000],
    ids=["2^62", "u64-max", "negative", "-2^62", "9999-12-31", "9999-01-01"],
)
async def test_a_record_time_no_datetime_holds_is_a_response_error(create_at: int) -> None:
    """The page is refused, never read into a Record whose created_at (which watch reads)
    would raise ValueError or OverflowError."""
    result = await one_call(
        page_at(create_at), lambda c: c.list_records(T0, T0 + timedelta(hours=1))
    )
    assert isinstance(result, ResponseError)
    assert "create_at" in str(result)


@pytest.mark.parametrize("create_at", [0, 10**11 - 1, 10**11, 253370678400000])
async def test_record_times_at_the_edges_of_the_range_are_read(create_at: int) -> None:
    result = await one_call(
        page_at(create_at), lambda c: c.list_records(T0, T0 + timedelta(hours=1))
    )
    assert isinstance(result, RecordPage)
    check_record(result.records[0])


@pytest.mark.parametrize(
    "stray", [946_684_800_000, 253_370_678_400_000], ids=["year-2000", "year-9998"]
)
async def test_watch_skips_records_outside_the_polled_window(stray: int) -> None:
    """A poll answered with a record from outside the window asked for (as the fuzzing
    above can): once a record has moved the watch past its start, an older stray would be
    older than ``since``, and a far-future one would move the cursor there and skip every
    later record. A stray is skipped, and the cursor holds."""
    since = T0 - timedelta(hours=1)
    polls: list[dict[str, str]] = []

    def handler(request: HttpRequest) -> HttpResponse:
        params = dict(request.params)
        polls.append(params)
        start = datetime.fromisoformat(params["time_from"])
        if len(polls) == 1:
            # The first record is past the overlap, so the start no longer guards.
            at = int((since + timedelta(minutes=2, seconds=1)).timestamp()) * 1000
            rows = [
                {**WIRE_RECORD, "record_id": 1, "create_at": at},
                {**WIRE_RECORD, "record_id": 2, "create_at": stray},
            ]
        else:
            at = int(start.timestamp()) * 1000 + 1000
            rows = [{**WIRE_RECORD, "record_id": 3, "create_at": at}]
        body = {"page_num": 1, "page_size": 100, "total": len(rows), "list": rows}
        return HttpResponse(200, {}, orjson.dumps({"code": 200, "message": "OK", "data": body}))

    async with client_for(handler, RetryPolicy.none(), FakeClock()) as client:
        watch = client.watch(since=since, poll_interval=5)
        got = [await anext(watch), await anext(watch)]
        await watch.aclose()
    assert [record.record_id for record in got] == [1, 3]
    assert all(record.created_at >= since for record in got)
    assert datetime.fromisoformat(polls[1]["time_from"]).year == 2023  # the cursor held


@pytest.mark.parametrize(
    "retry_after",
    [
        "1e400",
        "nan",
        "-inf",
        "-5",
        "\u0663",
        "Mon, 01 Jan 0001 00:00:00 GMT",
        "1e308",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ],
)
async def test_garbage_retry_after_never_makes_a_bad_wait(retry_after: str) -> None:
    policy = RetryPolicy(max_attempts=3, max_retry_after=60.0)
    limited = HttpResponse(429, {"retry-after": retry_after}, b"")
    ok_page = HttpResponse(
        200, {}, orjson.dumps({"code": 200, "data": {"page_num": 1, "page_size": 1, "total": 0}})
    )
    _, time, result = await run(
        Script([limited, ok_page]),
        policy,
        lambda c: c.list_records(T0, T0 + timedelta(hours=1)),
    )
    # Either waited a sane time and got the page, or refused to wait that long at once.
    if isinstance(result, RateLimitError):
        assert result.retry_after is not None
        assert result.retry_after > policy.max_retry_after
        assert time.sleeps == []
    else:
        assert result == RecordPage(1, 1, 0, ())
        assert len(time.sleeps) == 1
        assert 0 <= time.sleeps[0] <= 60.0
