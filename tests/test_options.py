"""Options users reach for: with_options, per-call timeouts, headers, request ids, logging."""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import senselink_plus as slp
from senselink_plus import _logging
from senselink_plus._retry import to_timeout
from senselink_plus.testing import (
    MockTransport,
    created_record_response,
    error_response,
    image_response,
    record_page_response,
    sample_image,
)
from tests.conftest import APP_SECRET

T0 = datetime(2026, 11, 29, tzinfo=timezone.utc)
UA_PREFIX = f"senselink-plus/{slp.__version__} python/{sys.version_info[0]}.{sys.version_info[1]} "


def mock_client(mock: MockTransport, **options: Any) -> slp.Client:
    options.setdefault("retry", slp.RetryPolicy.none())
    return slp.Client("key", APP_SECRET, transport=mock, **options)


# --- Timeout as a number ------------------------------------------------------------------


def test_a_number_is_the_total() -> None:
    assert to_timeout(5) == slp.Timeout(connect=5.0, total=5.0)
    assert to_timeout(90.5) == slp.Timeout(connect=10.0, total=90.5)
    assert slp.Client("k", "s", timeout=30).timeout == slp.Timeout(connect=10.0, total=30.0)
    assert slp.AiohttpTransport(timeout=2.5)._timeout.total == 2.5


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "5", None])
def test_bad_timeouts_are_refused(bad: Any) -> None:
    with pytest.raises(slp.ValidationError) as caught:
        to_timeout(bad)
    assert caught.value.field == "timeout"


# --- User-Agent and headers -----------------------------------------------------------------


async def test_user_agent_and_default_headers_on_every_request() -> None:
    def answer(request: slp.HttpRequest) -> slp.HttpResponse:
        return image_response() if request.method == "GET" else created_record_response()

    mock = MockTransport(answer)
    async with mock_client(mock, default_headers={"X-Tenant": "acme"}) as client:
        await client.get_image("img1")
        await client.create_record("SN1", sample_image("alice"))
    for request in mock.requests:
        assert request.headers["user-agent"].startswith(UA_PREFIX)
        assert f"aiohttp/{aiohttp.__version__}" in request.headers["user-agent"]
        assert request.headers["x-tenant"] == "acme"
    # The request's own headers win over defaults.
    assert mock.requests[1].headers["content-type"] == "application/json"


async def test_user_agent_reaches_the_server() -> None:
    seen: list[str] = []

    async def snapshot(request: web.Request) -> web.Response:
        seen.append(request.headers["User-Agent"])
        return web.Response(body=sample_image("alice"), content_type="image/png")

    app = web.Application()
    app.router.add_get("/api/v1/plus/image/{image_id}", snapshot)
    runner = web.AppRunner(app, access_log=None)  # its log line would hold the sign
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        async with slp.Client("k", "s", base_url=f"http://{host}:{port}") as client:
            await client.get_image("img1")
    finally:
        await runner.cleanup()
    assert seen[0].startswith(UA_PREFIX)


@pytest.mark.parametrize(
    "headers",
    [{"X-Bad": "a\r\nb"}, {"bad name": "x"}, {"Content-Length": "3"}, {"X-N": 1}, ["x"]],
)
def test_bad_headers_are_refused(headers: Any) -> None:
    with pytest.raises(slp.ValidationError) as caught:
        slp.Client("k", "s", default_headers=headers)
    assert caught.value.field == "default_headers"


# --- with_options ------------------------------------------------------------------------


async def test_with_options_shares_the_transport_and_limits() -> None:
    mock = MockTransport(lambda request: image_response())
    async with mock_client(mock, max_concurrency=3, default_headers={"x-a": "1"}) as client:
        copy = client.with_options(
            timeout=7, retry=slp.RetryPolicy(max_attempts=5), headers={"X-B": "2"}
        )
        assert copy is not client
        assert copy._session.transport is client._session.transport
        assert copy._session._shared.semaphore is client._session._shared.semaphore
        assert copy.retry.max_attempts == 5
        assert client.retry.max_attempts == 1
        assert copy.timeout == slp.Timeout(connect=7.0, total=7.0)
        await copy.get_image("img1")
        await client.get_image("img2")
        await copy.aclose()  # closing a copy leaves the original and the transport open
        assert copy.closed
        assert not client.closed
        assert not mock.closed
        await client.get_image("img3")
        with pytest.raises(slp.ClientClosedError):
            await copy.get_image("img4")
    first, second, third = mock.requests
    assert (first.headers["x-a"], first.headers["x-b"]) == ("1", "2")
    assert first.timeout == slp.Timeout(connect=7.0, total=7.0)
    assert "x-b" not in second.headers
    assert second.timeout is None
    assert third.url.endswith("/img3")
    assert mock.closed is False  # a transport passed in is never closed


async def test_closing_the_original_closes_its_copies_and_own_transport() -> None:
    client = slp.Client("k", "s")
    copy = client.with_options(timeout=3)
    transport = client._session.transport
    await copy.aclose()
    assert not transport._closed  # type: ignore[attr-defined]
    other = client.with_options(retry=slp.RetryPolicy.none())
    await client.aclose()
    assert other.closed
    assert transport._closed


async def test_closing_the_original_fails_a_copys_call_in_flight() -> None:
    started = asyncio.Event()

    async def slow(request: slp.HttpRequest) -> slp.HttpResponse:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    client = mock_client(MockTransport(slow))
    copy = client.with_options(timeout=60)
    call = asyncio.ensure_future(copy.get_image("img1"))
    await started.wait()
    await client.aclose()
    with pytest.raises(slp.ClientClosedError):
        await call


async def test_with_options_checks_its_arguments() -> None:
    async with slp.Client("k", "s") as client:
        with pytest.raises(slp.ValidationError):
            client.with_options(retry=3)  # type: ignore[arg-type]
        with pytest.raises(slp.ValidationError):
            client.with_options(timeout=-1)
        with pytest.raises(slp.ValidationError):
            client.with_options(headers={"X": "a\nb"})
    with pytest.raises(slp.ClientClosedError):
        client.with_options(timeout=1)


# --- per-call timeouts -----------------------------------------------------------------------


async def test_per_call_timeout_is_sent_and_enforced_for_any_transport() -> None:
    async def hang(request: slp.HttpRequest) -> slp.HttpResponse:
        if request.timeout is not None:
            await asyncio.Event().wait()  # a transport that ignores the timeout
        return image_response()

    mock = MockTransport(hang)
    async with mock_client(mock) as client:
        with pytest.raises(slp.RequestTimeout, match=r"timeout of 0\.01s"):
            await client.get_image("img1", timeout=0.01)
        assert await client.get_image("img2") == image_response().content
    assert mock.requests[0].timeout == slp.Timeout(connect=0.01, total=0.01)
    assert mock.requests[1].timeout is None


@pytest.mark.parametrize("call", ["create", "list", "image", "download", "records"])
async def test_each_public_call_takes_a_timeout(call: str, tmp_path: Any) -> None:
    def answer(request: slp.HttpRequest) -> slp.HttpResponse:
        if request.method == "POST":
            return created_record_response()
        if "/image/" in request.url:
            return image_response()
        return record_page_response()

    mock = MockTransport(answer)
    async with mock_client(mock) as client:
        limit = slp.Timeout(connect=1.0, total=4.0)
        if call == "create":
            await client.create_record("SN1", sample_image("bob"), timeout=limit)
        elif call == "list":
            await client.list_records(T0, T0 + timedelta(hours=1), timeout=limit)
        elif call == "image":
            await client.get_image("img1", timeout=limit)
        elif call == "download":
            await client.download_image("img1", tmp_path / "x.png", timeout=limit)
        else:
            pager = client.records(T0, T0 + timedelta(days=2), timeout=limit)
            assert [record async for record in pager] == []
    assert mock.requests
    assert all(request.timeout == limit for request in mock.requests)


class _SleepReached(Exception):
    """Raised by the injected sleep: the watch finished a poll and would wait."""


@pytest.mark.parametrize("since", [None, T0 - timedelta(minutes=5)])
async def test_watch_timeout_reaches_each_of_its_requests(since: datetime | None) -> None:
    async def stop(seconds: float) -> None:
        raise _SleepReached

    mock = MockTransport(lambda request: record_page_response())
    limit = slp.Timeout(connect=1.0, total=4.0)
    async with mock_client(mock, sleep=stop, clock=lambda: T0.timestamp()) as client:
        watch = client.watch(since=since, timeout=limit)
        with pytest.raises(_SleepReached):
            await anext(watch)  # an empty listing: no record, the poll ends in the sleep
    # Without since, the start probe is a request of its own, before the first poll.
    assert len(mock.requests) == (2 if since is None else 1)
    assert all(request.timeout == limit for request in mock.requests)


async def test_a_client_timeout_applies_to_a_transport_passed_in() -> None:
    mock = MockTransport(lambda request: image_response())
    async with mock_client(mock, timeout=12) as client:
        await client.get_image("img1")
    assert mock.requests[0].timeout == slp.Timeout(connect=10.0, total=12.0)


# --- errors and events carry the response's headers and request id ------------------------------


@pytest.mark.parametrize(
    "header", ["X-Request-Id", "x-amzn-requestid", "X-Amz-Request-Id", "Request-Id", "X-Trace-Id"]
)
async def test_errors_carry_status_headers_and_request_id(header: str) -> None:
    response = error_response(503, status=503, headers={header: "req-42", "X-Other": "y"})
    async with mock_client(MockTransport(lambda request: response)) as client:
        with pytest.raises(slp.ServerError) as caught:
            await client.get_image("img1")
    error = caught.value
    assert error.status == 503
    assert error.request_id == "req-42"
    assert error.headers is not None
    assert error.headers["x-other"] == "y"
    assert error.headers["X-OTHER"] == "y"  # case-insensitive
    assert "request id req-42" in str(error)


async def test_a_shape_error_carries_status_and_headers() -> None:
    response = slp.HttpResponse(200, {"x-request-id": "r1", "content-type": "text/html"}, b"<html>")
    async with mock_client(MockTransport(lambda request: response)) as client:
        with pytest.raises(slp.ResponseError) as caught:
            await client.list_records(T0, T0 + timedelta(hours=1))
    assert (caught.value.status, caught.value.request_id) == (200, "r1")


async def test_without_a_request_id_header_there_is_none() -> None:
    async with mock_client(MockTransport(lambda request: error_response(30003))) as client:
        with pytest.raises(slp.NoFaceDetectedError) as caught:
            await client.get_image("img1")
    assert caught.value.request_id is None
    assert caught.value.headers is not None
    assert "request id" not in str(caught.value)


async def test_transport_errors_have_no_headers() -> None:
    def fail(request: slp.HttpRequest) -> slp.HttpResponse:
        raise slp.ConnectError("refused")

    async with mock_client(MockTransport(fail)) as client:
        with pytest.raises(slp.ConnectError) as caught:
            await client.get_image("img1")
    assert caught.value.headers is None
    assert caught.value.request_id is None


async def test_events_carry_headers_and_url_never_the_sign() -> None:
    events: list[slp.Event] = []
    calls = iter([error_response(503, status=503, headers={"x-request-id": "a"}), image_response(
        headers={"location": "https://api.test/x?sign=abcdef&app_key=k", "x-request-id": "b"}
    )])
    mock = MockTransport(lambda request: next(calls))
    hooks = {kind: [events.append] for kind in slp._events.EVENT_KINDS}
    async with mock_client(
        mock, retry=slp.RetryPolicy(initial_delay=0.0, max_delay=0.0), event_hooks=hooks
    ) as client:
        await client.get_image("img1")
    kinds = [event.kind for event in events]
    assert kinds == ["start", "request", "response", "retry", "request", "response", "end"]
    retry = events[3]
    assert retry.error_type == "ServerError"
    assert retry.headers is not None
    assert retry.headers["x-request-id"] == "a"
    last = events[5]
    assert last.headers is not None
    assert last.headers["x-request-id"] == "b"
    assert "abcdef" not in repr(events)
    assert last.headers["location"] == "https://api.test/x?sign=***&app_key=k"
    assert {event.url for event in events} == {"https://link.japancv.co.jp/api/v1/plus/image/img1"}
    end = events[-1]
    assert (end.attempt, end.status, end.error_type) == (2, 200, None)


async def test_end_event_on_failure_and_cancellation() -> None:
    events: list[slp.Event] = []
    hooks: dict[str, Any] = {"start": [events.append], "end": [events.append]}
    async with mock_client(
        MockTransport(lambda request: error_response(404, status=404)), event_hooks=hooks
    ) as client:
        with pytest.raises(slp.NotFoundError):
            await client.get_image("img1")
    assert [e.kind for e in events] == ["start", "end"]
    assert (events[1].error_type, events[1].status, events[1].attempt) == ("NotFoundError", 404, 1)

    events.clear()
    started = asyncio.Event()

    async def hang(request: slp.HttpRequest) -> slp.HttpResponse:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with mock_client(MockTransport(hang), event_hooks=hooks) as client:
        call = asyncio.ensure_future(client.get_image("img1"))
        await started.wait()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    assert [e.kind for e in events] == ["start", "end"]
    assert events[1].error_type == "CancelledError"


async def test_no_secret_in_an_error_with_headers() -> None:
    response = error_response(401, status=401, headers={"x-request-id": "r"})
    async with mock_client(MockTransport(lambda request: response)) as client:
        with pytest.raises(slp.AuthenticationError) as caught:
            await client.get_image("img1")
    text = "".join(
        traceback.TracebackException.from_exception(caught.value, capture_locals=True).format()
    )
    assert APP_SECRET not in text
    assert "sign=" not in text.replace("sign=***", "")


# --- SENSELINK_LOG -------------------------------------------------------------------------


@pytest.fixture
def clean_logger() -> Any:
    logger = logging.getLogger("senselink_plus")
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.mark.parametrize(("value", "level"), [("debug", 10), ("INFO", 20), (" warning ", 30)])
def test_senselink_log_configures_the_logger(value: str, level: int, clean_logger: Any) -> None:
    assert _logging.configure_from_env({"SENSELINK_LOG": value}) == level
    assert _logging.configure_from_env({"SENSELINK_LOG": value}) == level  # idempotent
    ours = [h for h in clean_logger.handlers if isinstance(h, logging.StreamHandler)]
    assert len(ours) == 1
    assert ours[0].stream is sys.stderr
    assert clean_logger.level == level


def test_senselink_log_unset_or_bad(clean_logger: Any) -> None:
    before = list(clean_logger.handlers)
    assert _logging.configure_from_env({}) is None
    with pytest.warns(RuntimeWarning, match="SENSELINK_LOG='loud' is ignored"):
        assert _logging.configure_from_env({"SENSELINK_LOG": "loud"}) is None
    assert clean_logger.handlers == before


def test_senselink_log_at_import(tmp_path: Any) -> None:
    import subprocess

    code = (
        "import asyncio, senselink_plus as slp\n"
        "from senselink_plus.testing import MockTransport, error_response\n"
        "async def main():\n"
        "    mock = MockTransport(lambda r: error_response(503, status=503))\n"
        "    policy = slp.RetryPolicy(max_attempts=2, initial_delay=0, max_delay=0)\n"
        "    async with slp.Client('k', 's', transport=mock, retry=policy) as c:\n"
        "        try:\n"
        "            await c.get_image('x')\n"
        "        except slp.ServerError:\n"
        "            pass\n"
        "asyncio.run(main())\n"
    )
    env = {"SENSELINK_LOG": "info", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "INFO senselink_plus: GET /api/v1/plus/image/x retry attempt=2" in done.stderr
    assert "DEBUG" not in done.stderr
    assert done.stdout == ""


async def test_a_headers_hook_adds_headers_to_each_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def tag(event: slp.Event) -> dict[str, str]:
        return {"x-attempt": str(event.attempt), "content-type": "text/plain"}

    def broken(event: slp.Event) -> dict[str, str]:
        return {"x-bad": "a\r\nb"}

    def failing(event: slp.Event) -> dict[str, str]:
        raise RuntimeError("hook bug")

    answers = iter([error_response(503, status=503), image_response(), created_record_response()])
    mock = MockTransport(lambda request: next(answers))
    hooks: dict[str, Any] = {"headers": [tag, broken, failing, lambda event: None]}
    policy = slp.RetryPolicy(initial_delay=0.0, max_delay=0.0)
    async with mock_client(mock, event_hooks=hooks, retry=policy) as client:
        with caplog.at_level(logging.ERROR, logger="senselink_plus"):
            await client.get_image("img1")
        await client.create_record("SN1", sample_image("alice"))
    assert [r.headers["x-attempt"] for r in mock.requests] == ["1", "2", "1"]
    assert all("x-bad" not in r.headers for r in mock.requests)
    assert "returned unusable headers" in caplog.text
    assert "hook bug" in caplog.text  # logged; the attempt went ahead
    # A hook's header is added where the request has none, never over the request's own.
    assert mock.requests[0].headers["content-type"] == "text/plain"
    assert mock.requests[2].headers["content-type"] == "application/json"


async def test_a_headers_hook_runs_inline_in_the_callers_context() -> None:
    """A headers hook sees the caller's contextvars at each attempt; so does a sync
    request hook on the same client (both run inline, in the call's task)."""
    import contextvars

    tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="none")
    tasks: list[asyncio.Task[Any] | None] = []
    seen: list[str] = []

    def headers(event: slp.Event) -> dict[str, str]:
        tasks.append(asyncio.current_task())
        return {"x-tenant": tenant.get()}

    def request_hook(event: slp.Event) -> None:
        tasks.append(asyncio.current_task())
        seen.append(tenant.get())

    mock = MockTransport(lambda request: image_response())
    hooks: dict[str, Any] = {"headers": [headers], "request": [request_hook]}
    async with mock_client(mock, event_hooks=hooks) as client:
        for name in ("acme", "globex"):
            tenant.set(name)
            await client.get_image("img1")
    assert [r.headers["x-tenant"] for r in mock.requests] == ["acme", "globex"]
    assert seen == ["acme", "globex"]
    assert tasks == [asyncio.current_task()] * 4


async def test_headers_returned_by_a_request_hook_are_not_sent_and_said_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def old_style(event: slp.Event) -> dict[str, str]:
        return {"x-old": "1"}

    mock = MockTransport(lambda request: image_response())
    with caplog.at_level(logging.WARNING, logger="senselink_plus"):
        async with mock_client(mock, event_hooks={"request": [old_style]}) as client:
            await client.get_image("img1")
            await client.get_image("img2")
    assert all("x-old" not in r.headers for r in mock.requests)
    told = [r for r in caplog.records if "'headers' hook" in r.getMessage()]
    assert len(told) == 1


def test_an_async_headers_hook_is_refused() -> None:
    async def late(event: slp.Event) -> dict[str, str]:
        return {}

    with pytest.raises(slp.ValidationError, match="inline") as caught:
        slp.Client("k", "s", event_hooks={"headers": [late]})
    assert caught.value.field == "event_hooks"
    with pytest.raises(slp.ValidationError, match="headers"):
        slp.Client("k", "s", event_hooks={"header": [lambda event: None]})


def test_with_options_copies_share_the_originals_event_loop() -> None:
    mock = MockTransport(lambda request: image_response())
    client = mock_client(mock)
    copy = client.with_options(timeout=5)

    async def use(target: slp.Client) -> None:
        await target.get_image("img1")

    asyncio.run(use(copy))  # binds the original (and so every copy) to this loop
    with pytest.raises(slp.EventLoopError):
        asyncio.run(use(client))
    with pytest.raises(slp.EventLoopError):
        asyncio.run(use(client.with_options(retry=slp.RetryPolicy.none())))
    with pytest.raises(slp.EventLoopError):  # a per-call timeout makes a copy too
        asyncio.run(client.get_image("img1", timeout=3))
