"""The constructors' arguments, hostile: Client's options, FaceImage, Rectangle,
RetryPolicy, Timeout and split_time_range (the rule: `tests/hostile.py`)."""

from __future__ import annotations

import itertools
import math
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from senselink_plus import (
    Client,
    FaceImage,
    Rectangle,
    RetryPolicy,
    Timeout,
    ValidationError,
    split_time_range,
)
from senselink_plus.testing import MockTransport
from tests.conftest import APP_KEY, APP_SECRET, BASE_URL, JPEG
from tests.fake_clock import FakeClock
from tests.hostile import (
    EXTREME_TIMES,
    GIANT,
    SETTINGS,
    Opaque,
    Server,
    aware_near,
    iso,
    junk,
    naive_or_iso,
    new_client,
)

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
    first = start if isinstance(start, datetime) else iso(start)
    last = end if isinstance(end, datetime) else iso(end)
    assert windows[0][0] == first
    assert windows[-1][1] == last
    for (_, hi), (nxt, _) in itertools.pairwise(windows):
        assert hi == nxt
    assert all(timedelta(0) < hi - lo <= span for lo, hi in windows)
