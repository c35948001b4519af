"""`_session.Session`: the request loop built on its own, with a fake transport and
fake time (no `Client`)."""

from __future__ import annotations

import asyncio
import email.utils
import random
from typing import Any

import pytest

from senselink_plus import (
    ClientClosedError,
    ConnectError,
    Event,
    EventLoopError,
    HttpRequest,
    HttpResponse,
    RequestTimeout,
    RetryPolicy,
    ServerError,
    Timeout,
    TransportError,
    ValidationError,
)
from senselink_plus._auth import Credentials, compute_sign
from senselink_plus._endpoints import parse_record_page
from senselink_plus._events import EVENT_KINDS
from senselink_plus._exceptions import APIError
from senselink_plus._session import Session
from senselink_plus._wire import ErrorCodes
from tests.conftest import APP_KEY, APP_SECRET, FakeTime, error, ok

URL = "https://api.test/api/v1/plus/record"
GET = HttpRequest("GET", URL, params={"page": "1"})
POST = HttpRequest("POST", URL, content=b"{}")


class FakeTransport:
    """Answers from a script of responses or exceptions; remembers what it was sent."""

    def __init__(self, *answers: HttpResponse | Exception) -> None:
        self.answers = list(answers)
        self.sent: list[HttpRequest] = []
        self.closed = False

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.sent.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def aclose(self) -> None:
        self.closed = True


def content(response: HttpResponse, request: HttpRequest, *, codes: ErrorCodes, now: float) -> Any:
    """A parser: the envelope's data (errors as the real parsers raise them)."""
    if response.status >= 500:
        raise ServerError("boom", code=response.status, status=response.status)
    return response.content


def make(transport: FakeTransport, time: FakeTime, **options: Any) -> Session:
    return Session(
        Credentials(APP_KEY, APP_SECRET),
        transport,
        clock=time.clock,
        timer=time.timer,
        sleep=time.sleep,
        rng=random.Random(0),
        **options,
    )


# --- fetch -----------------------------------------------------------------------------


async def test_fetch_signs_sends_and_parses(fake_time: FakeTime) -> None:
    transport = FakeTransport(ok({"list": [], "page_num": 1, "page_size": 100, "total": 0}))
    session = make(transport, fake_time, headers={"user-agent": "test/1"})
    page = await session.fetch(GET, parse_record_page)
    assert (page.total, page.records) == (0, ())
    (sent,) = transport.sent
    params = dict(sent.params)
    assert params["app_key"] == APP_KEY
    assert params["timestamp"] == str(int(fake_time.now * 1000))
    assert params["sign"] == compute_sign(params["timestamp"], APP_SECRET)
    assert params["page"] == "1"
    assert sent.headers["user-agent"] == "test/1"


async def test_a_get_is_retried_with_a_fresh_sign_and_the_policy_back_off(
    fake_time: FakeTime,
) -> None:
    transport = FakeTransport(
        ConnectError("refused"), HttpResponse(503), HttpResponse(200, content=b"fine")
    )
    session = make(transport, fake_time, retry=RetryPolicy(max_attempts=3, initial_delay=1.0))
    assert await session.fetch(GET, content) == b"fine"
    assert len(transport.sent) == 3
    stamps = [dict(r.params)["timestamp"] for r in transport.sent]
    assert len(set(stamps)) == 3  # fake time moved with each back-off sleep
    rng = random.Random(0)
    assert fake_time.sleeps == [
        RetryPolicy(initial_delay=1.0).backoff(1, rng),
        RetryPolicy(initial_delay=1.0).backoff(2, rng),
    ]


async def test_a_post_is_not_retried_once_it_may_have_landed(fake_time: FakeTime) -> None:
    transport = FakeTransport(TransportError("dropped"), HttpResponse(200, content=b"x"))
    session = make(transport, fake_time)
    with pytest.raises(TransportError) as caught:
        await session.fetch(POST, content)
    assert caught.value.record_may_exist is True
    assert caught.value.request is not None
    assert caught.value.request.method == "POST"
    assert len(transport.sent) == 1


async def test_a_post_is_retried_when_it_provably_was_not_sent(fake_time: FakeTime) -> None:
    transport = FakeTransport(ConnectError("refused"), HttpResponse(200, content=b"made"))
    session = make(transport, fake_time)
    assert await session.fetch(POST, content) == b"made"
    assert len(transport.sent) == 2


async def test_when_retries_run_out_the_last_error_is_raised(fake_time: FakeTime) -> None:
    transport = FakeTransport(ConnectError("refused"))
    session = make(transport, fake_time, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(ConnectError) as caught:
        await session.fetch(POST, content)
    assert caught.value.record_may_exist is False
    assert len(transport.sent) == 2


async def test_an_api_error_from_the_parser_gets_the_response_headers(
    fake_time: FakeTime,
) -> None:
    transport = FakeTransport(error(401, "Unauthorized", headers={"x-request-id": "r-1"}))
    session = make(transport, fake_time)
    with pytest.raises(APIError) as caught:
        await session.fetch(GET, parse_record_page)
    assert caught.value.request_id == "r-1"
    assert len(transport.sent) == 1  # authentication failures are not retried


async def test_a_timeout_bounds_each_attempt_whatever_the_transport_does() -> None:
    class Slow(FakeTransport):
        async def send(self, request: HttpRequest) -> HttpResponse:
            self.sent.append(request)
            await asyncio.Event().wait()  # never answers
            raise AssertionError

    transport = Slow()
    session = Session(
        Credentials(APP_KEY, APP_SECRET),
        transport,
        timeout=Timeout(connect=0.01, total=0.01),
        retry=RetryPolicy.none(),
    )
    with pytest.raises(RequestTimeout, match=r"within the timeout of 0\.01s"):
        await session.fetch(GET, content)
    assert transport.sent[0].timeout == Timeout(connect=0.01, total=0.01)


async def test_a_socket_error_from_a_transport_becomes_a_transport_error(
    fake_time: FakeTime,
) -> None:
    transport = FakeTransport(OSError(104, "reset"))
    session = make(transport, fake_time, retry=RetryPolicy.none())
    with pytest.raises(
        TransportError, match=r"transport failure: ConnectionResetError: \[Errno 104\] reset"
    ):
        await session.fetch(GET, content)


async def test_a_concurrency_slot_is_given_back_however_an_attempt_ends(
    fake_time: FakeTime,
) -> None:
    started = asyncio.Event()

    class Mixed(FakeTransport):
        async def send(self, request: HttpRequest) -> HttpResponse:
            if len(self.sent) == 1:  # the second attempt hangs until cancelled
                self.sent.append(request)
                started.set()
                await asyncio.Event().wait()
            return await super().send(request)

    transport = Mixed(OSError("reset"), HttpResponse(200, content=b"fine"))
    session = make(transport, fake_time, max_concurrency=1, retry=RetryPolicy.none())
    with pytest.raises(TransportError):
        await session.fetch(GET, content)
    hanging = asyncio.ensure_future(session.fetch(GET, content))
    await asyncio.wait_for(started.wait(), 5)  # 5 s: a slot leaked by the failure
    hanging.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hanging
    assert await asyncio.wait_for(session.fetch(GET, content), 5) == b"fine"  # 5 s: a leak
    assert session._shared.semaphore is not None
    assert not session._shared.semaphore.locked()


# --- hooks -----------------------------------------------------------------------------


async def test_headers_hooks_run_inline_and_other_hooks_see_each_step(
    fake_time: FakeTime,
) -> None:
    seen: list[Event] = []
    transport = FakeTransport(HttpResponse(503), HttpResponse(200, content=b"ok"))
    session = make(
        transport,
        fake_time,
        event_hooks={
            "headers": [lambda event: {"traceparent": f"attempt-{event.attempt}"}],
            "start": [seen.append],
            "request": [seen.append],
            "response": [seen.append],
            "retry": [seen.append],
            "end": [seen.append],
        },
    )
    assert await session.fetch(GET, content) == b"ok"
    assert [r.headers["traceparent"] for r in transport.sent] == ["attempt-1", "attempt-2"]
    kinds = [event.kind for event in seen]
    assert kinds == ["start", "request", "response", "retry", "request", "response", "end"]
    assert all("sign" not in dict(event.params) for event in seen)
    await session.aclose()


# --- derive, close, loop ---------------------------------------------------------------


async def test_derive_shares_transport_limits_and_loop_but_not_options(
    fake_time: FakeTime,
) -> None:
    transport = FakeTransport(HttpResponse(200, content=b"ok"))
    session = make(transport, fake_time, max_concurrency=2, headers={"a": "1"})
    policy = RetryPolicy(max_attempts=5)
    copy = session.derive(retry=policy, headers={"b": "2"}, timeout=Timeout(total=5.0))
    assert copy.transport is session.transport
    assert copy._shared is session._shared
    assert (copy.retry, session.retry) == (policy, RetryPolicy())
    assert (copy.timeout, session.timeout) == (Timeout(total=5.0), None)
    await copy.fetch(GET, content)
    assert dict(transport.sent[0].headers) == {"a": "1", "b": "2"}
    assert transport.sent[0].timeout == Timeout(total=5.0)
    with pytest.raises(ValidationError, match="retry must be a RetryPolicy"):
        session.derive(retry=3)  # type: ignore[arg-type]


async def test_closing_the_original_closes_copies_and_an_owned_transport(
    fake_time: FakeTime,
) -> None:
    transport = FakeTransport(HttpResponse(200))
    session = make(transport, fake_time, owns_transport=True)
    copy = session.derive()
    await copy.aclose()
    assert not transport.closed  # a copy owns nothing
    await session.aclose()
    assert session.closed
    assert transport.closed
    with pytest.raises(ClientClosedError):
        await session.fetch(GET, content)
    with pytest.raises(ClientClosedError):
        session.derive()


async def test_a_transport_passed_in_stays_open(fake_time: FakeTime) -> None:
    transport = FakeTransport(HttpResponse(200))
    session = make(transport, fake_time)
    await session.aclose()
    assert not transport.closed


async def test_close_interrupts_a_call_in_flight() -> None:
    started = asyncio.Event()

    class Hanging(FakeTransport):
        async def send(self, request: HttpRequest) -> HttpResponse:
            started.set()
            await asyncio.Event().wait()
            raise AssertionError

    session = Session(Credentials(APP_KEY, APP_SECRET), Hanging())
    call = asyncio.ensure_future(session.fetch(POST, content))
    await started.wait()
    await session.aclose()
    with pytest.raises(ClientClosedError) as caught:
        await call
    assert caught.value.record_may_exist is True  # the POST had been handed over


async def test_close_interrupts_a_wait() -> None:
    session = Session(Credentials(APP_KEY, APP_SECRET), FakeTransport(HttpResponse(200)))
    waiting = asyncio.ensure_future(session.wait(3600))
    await asyncio.sleep(0)
    await session.aclose()
    with pytest.raises(ClientClosedError):
        await waiting


def test_a_session_belongs_to_the_loop_it_was_first_used_in() -> None:
    session = Session(Credentials(APP_KEY, APP_SECRET), FakeTransport(HttpResponse(200)))
    copy = session.derive()
    assert asyncio.run(session.fetch(GET, content)) == b""
    with pytest.raises(EventLoopError):
        asyncio.run(copy.fetch(GET, content))


# --- the server's clock ----------------------------------------------------------------


async def test_server_time_follows_the_date_header_by_the_local_timer(
    fake_time: FakeTime,
) -> None:
    server = fake_time.now + 90.0
    date = email.utils.formatdate(server, usegmt=True)
    transport = FakeTransport(HttpResponse(200, {"date": date}))
    session = make(transport, fake_time)
    assert session.server_time() is None
    await session.derive().fetch(GET, content)  # a copy's reading is the session's too
    fake_time.now += 5
    now, skew = session.server_time()  # type: ignore[misc]
    assert now == pytest.approx(server + 5)
    assert skew == pytest.approx(90.0)


async def test_an_unreadable_date_is_ignored(fake_time: FakeTime) -> None:
    session = make(FakeTransport(HttpResponse(200, {"date": "yesterday-ish"})), fake_time)
    await session.fetch(GET, content)
    assert session.server_time() is None


# --- construction ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"retry": 3}, "retry"),
        ({"clock": 5}, "clock"),
        ({"sleep": None}, "sleep"),
        ({"rng": 1}, "rng"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"rate_limit": -1}, "rate_limit"),
        ({"error_codes": {1: int}}, "error_codes"),
        ({"event_hooks": {"nope": []}}, None),
    ],
)
def test_bad_options_are_refused_at_construction(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Session(Credentials(APP_KEY, APP_SECRET), FakeTransport(HttpResponse(200)), **options)
    if field is not None:
        assert caught.value.field == field


async def test_pause_waits_the_policy_back_off(fake_time: FakeTime) -> None:
    session = make(FakeTransport(HttpResponse(200)), fake_time)
    await session.pause(3)
    assert fake_time.sleeps == [RetryPolicy().backoff(3, random.Random(0))]


# --- one request path, observed or not ---------------------------------------------------

SCRIPTS: list[tuple[HttpRequest, list[HttpResponse | Exception]]] = [
    (GET, [HttpResponse(200, content=b"ok")]),
    (GET, [ConnectError("refused"), HttpResponse(503), HttpResponse(200, content=b"third")]),
    (GET, [HttpResponse(503)]),
    (POST, [TransportError("dropped"), HttpResponse(200, content=b"x")]),
    (POST, [ConnectError("refused"), HttpResponse(200, content=b"made")]),
    (GET, [ConnectionResetError("reset"), HttpResponse(200, content=b"after")]),
    (POST, [ConnectionResetError("reset"), HttpResponse(200, content=b"x")]),
    (GET, [asyncio.TimeoutError("transport's own"), HttpResponse(200, content=b"late")]),
]


@pytest.mark.parametrize(("request_", "answers"), SCRIPTS)
async def test_hooks_observe_a_call_without_changing_its_outcome(
    request_: HttpRequest, answers: list[HttpResponse | Exception], fake_time: FakeTime
) -> None:
    outcomes = []
    every_kind = {kind: [lambda event: None] for kind in EVENT_KINDS}
    for hooks in (None, every_kind):
        transport = FakeTransport(*answers)
        start = fake_time.now
        session = make(transport, fake_time, event_hooks=hooks, headers={"user-agent": "t/1"})
        try:
            result: Any = await session.fetch(request_, content)
        except Exception as exc:  # the outcome compared below
            assert isinstance(exc, TransportError | ServerError)
            result = (type(exc), exc.record_may_exist, exc.request, getattr(exc, "status", None))
        sent = [
            (r.method, [p for p in r.params if p[0] not in ("timestamp", "sign")], r.headers)
            for r in transport.sent
        ]
        outcomes.append((result, sent, fake_time.now - start))
        await session.aclose()
    assert outcomes[0] == outcomes[1]


async def test_a_timeout_error_from_the_transport_is_a_request_timeout(
    fake_time: FakeTime,
) -> None:
    # asyncio's: the built-in TimeoutError from 3.11 on, its own class on 3.10
    session = make(FakeTransport(asyncio.TimeoutError("slow")), fake_time, retry=RetryPolicy.none())
    with pytest.raises(RequestTimeout, match="no answer in time"):
        await session.fetch(GET, content)


async def test_each_attempt_is_logged_at_debug(
    fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    session = make(FakeTransport(HttpResponse(200, content=b"abc")), fake_time)
    with caplog.at_level("DEBUG", logger="senselink_plus"):
        assert await session.fetch(GET, content) == b"abc"
    assert "GET /api/v1/plus/record status=200 attempt=1" in caplog.text
    assert "bytes=3" in caplog.text


# --- what a copy shares ----------------------------------------------------------------

#: Immutable values a copy may hold as the very same object as its original.
IMMUTABLE = (bool, int, float, str, type(None), RetryPolicy, Timeout)


async def test_a_copy_shares_only_the_shared_part_and_nothing_else_mutable(
    fake_time: FakeTime,
) -> None:
    session = make(
        FakeTransport(HttpResponse(200)),
        fake_time,
        headers={"a": "1"},
        max_concurrency=2,
        rate_limit=5.0,
        event_hooks={"end": [lambda event: None]},
    )
    copy = session.derive()
    assert copy._shared is session._shared  # on purpose: transport, caps, hooks, clocks, loop
    for name in Session.__slots__:
        if name in ("_shared", "__weakref__"):
            continue
        mine, theirs = getattr(copy, name), getattr(session, name)
        assert mine is not theirs or isinstance(mine, IMMUTABLE), name
    assert copy._headers == session._headers
    # Each has its own close: closing the copy leaves the original working.
    await copy.aclose()
    assert (copy.closed, session.closed) == (True, False)
    assert await session.fetch(GET, content) == b""
