"""Event hooks: request, response and retry events; hooks that fail or hang; logging_hook."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from senselink_plus import (
    ConnectError,
    Event,
    HttpRequest,
    HttpResponse,
    RetryPolicy,
    ValidationError,
    logging_hook,
)
from tests.conftest import APP_KEY, APP_SECRET, JPEG, FakeTime, MakeClient, error, ok, transport_of

T0 = datetime(2024, 3, 1, tzinfo=timezone(timedelta(hours=9)))
T1 = T0 + timedelta(hours=1)
RECORD_PATH = "/api/v1/plus/record"
EMPTY_PAGE = {"page_num": 1, "page_size": 100, "total": 0, "list": []}


def all_hooks(events: list[Event]) -> dict[str, list[Callable[[Event], Any]]]:
    return {kind: [events.append] for kind in ("request", "response", "retry")}


def others() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


def script(
    fake_time: FakeTime, *answers: HttpResponse | Exception, took: float = 0.25
) -> Callable[[HttpRequest], HttpResponse]:
    """A handler giving ``answers`` in turn, each taking ``took`` seconds of fake time."""
    queue = list(answers)

    def handler(request: HttpRequest) -> HttpResponse:
        fake_time.now += took
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler


# --- what the events say ------------------------------------------------------------------


async def test_request_response_and_retry_events_carry_the_call_facts(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    events: list[Event] = []
    handler = script(fake_time, error(503, "Service Unavailable", status=503), ok(EMPTY_PAGE))
    client = make_client(handler, event_hooks=all_hooks(events))
    page = await client.list_records(T0, T1, sn="GATE-1", size=50)
    assert page.total == 0

    assert [(e.kind, e.attempt) for e in events] == [
        ("request", 1),
        ("response", 1),
        ("retry", 1),
        ("request", 2),
        ("response", 2),
    ]
    assert {(e.method, e.path) for e in events} == {("GET", RECORD_PATH)}
    params = dict(events[0].params)
    assert params["sn"] == "GATE-1"
    assert params["size"] == "50"
    assert params["time_from"] == "2024-03-01T00:00:00+09:00"
    assert all(e.params == events[0].params for e in events)
    assert not {"app_key", "timestamp", "sign"} & set(params)

    first, second = events[1], events[4]
    assert (first.status, first.elapsed) == (503, 0.25)
    assert (second.status, second.elapsed) == (200, 0.25)
    retry = events[2]
    assert retry.status == 503
    assert retry.delay == fake_time.sleeps[0]
    assert 0.25 <= retry.delay <= 0.5  # RetryPolicy's first back-off
    assert retry.error is not None
    assert retry.error.startswith("ServerError: ")
    assert retry.elapsed is None
    for event in (events[0], events[3]):  # a request event is only "sent"
        assert (event.status, event.elapsed, event.delay, event.error) == (None,) * 4


async def test_a_transport_failure_gives_a_retry_but_no_response_event(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    events: list[Event] = []
    handler = script(fake_time, ConnectError("connection refused"), ok(EMPTY_PAGE))
    client = make_client(handler, event_hooks=all_hooks(events))
    await client.list_records(T0, T1)
    assert [e.kind for e in events] == ["request", "retry", "request", "response"]
    retry = events[1]
    assert retry.status is None
    assert retry.error == "ConnectError: connection refused"


async def test_the_last_failed_attempt_is_not_followed_by_a_retry_event(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    events: list[Event] = []
    handler = script(fake_time, *[error(503, status=503)] * 2)
    client = make_client(handler, event_hooks=all_hooks(events), retry=RetryPolicy(max_attempts=2))
    with pytest.raises(Exception, match="503"):
        await client.list_records(T0, T1)
    assert [e.kind for e in events] == ["request", "response", "retry", "request", "response"]


async def test_only_the_kinds_asked_for_are_emitted(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    events: list[Event] = []
    handler = script(fake_time, error(503, status=503), ok(EMPTY_PAGE))
    client = make_client(handler, event_hooks={"retry": [events.append]})
    await client.list_records(T0, T1)
    assert [e.kind for e in events] == ["retry"]


async def test_events_are_frozen(make_client: MakeClient, fake_time: FakeTime) -> None:
    events: list[Event] = []
    client = make_client(script(fake_time, ok(EMPTY_PAGE)), event_hooks=all_hooks(events))
    await client.list_records(T0, T1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        events[0].status = 500  # type: ignore[misc]


async def test_no_event_holds_a_secret_a_sign_or_image_bytes(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    events: list[Event] = []
    created = {"record_id": 7, "image_id": "0" * 24}
    handler = script(
        fake_time,
        ConnectError("refused"),
        error(429, "Too Many Requests", status=429),
        ok(created),
        error(503, status=503),
        HttpResponse(200, {"content-type": "image/jpeg"}, JPEG),
    )
    client = make_client(handler, event_hooks=all_hooks(events), retry=RetryPolicy(max_attempts=3))
    await client.create_record("GATE-1", JPEG, extend={"gate": "north"})
    assert await client.get_image("0" * 24) == JPEG
    assert {e.method for e in events} == {"POST", "GET"}
    assert sum(e.kind == "retry" for e in events) == 3

    signs = [dict(r.params)["sign"] for r in transport_of(client).requests]
    assert len(signs) == 5
    text = "".join(repr(e) + str(attrs.asdict(e)) for e in events)
    for secret in (APP_SECRET, *signs, base64.b64encode(JPEG).decode(), repr(JPEG)):
        assert secret not in text
    assert all(name not in text for name in ("'sign'", "'timestamp'"))
    assert APP_KEY not in text


# --- hooks that misbehave --------------------------------------------------------------------


async def test_a_failing_sync_hook_is_logged_and_does_not_break_the_call(
    make_client: MakeClient, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("metrics backend down")

    handler = script(fake_time, error(503, status=503), ok(EMPTY_PAGE))
    client = make_client(
        handler,
        event_hooks={
            "request": [broken, lambda e: seen.append(e.kind)],
            "response": [broken],
            "retry": [broken, lambda e: seen.append(e.kind)],
        },
    )
    with caplog.at_level(logging.ERROR, logger="senselink_plus"):
        page = await client.list_records(T0, T1)
    assert page.total == 0
    assert seen == ["request", "retry", "request"]  # the next hook still runs
    failures = [r for r in caplog.records if "event hook" in r.getMessage()]
    assert len(failures) == 5
    assert all(r.levelno == logging.ERROR and r.exc_info for r in failures)
    assert "metrics backend down" in caplog.text


async def test_a_failing_async_hook_is_logged(
    make_client: MakeClient, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(event: Event) -> None:
        raise RuntimeError("tracer down")

    client = make_client(script(fake_time, ok(EMPTY_PAGE)), event_hooks={"response": [broken]})
    with caplog.at_level(logging.ERROR, logger="senselink_plus"):
        assert (await client.list_records(T0, T1)).total == 0
        for _ in range(3):
            await asyncio.sleep(0)
    assert any("async event hook failed" in r.getMessage() and r.exc_info for r in caplog.records)
    assert "tracer down" in caplog.text
    assert others() == set()


async def test_a_slow_async_hook_does_not_delay_the_call_and_aclose_cancels_it(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    started: list[str] = []
    cancelled: list[str] = []
    never = asyncio.Event()

    async def slow(event: Event) -> None:
        started.append(event.kind)
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(event.kind)
            raise

    client = make_client(
        script(fake_time, ok(EMPTY_PAGE)), event_hooks={"request": [slow], "response": [slow]}
    )
    page = await asyncio.wait_for(client.list_records(T0, T1), 5)  # 5 s: only if it hangs
    assert page.total == 0
    await asyncio.sleep(0)
    assert started == ["request", "response"]  # running, and still pending
    assert len(others()) == 2
    await client.aclose()
    assert sorted(cancelled) == ["request", "response"]
    assert others() == set()


async def test_a_sync_hook_runs_in_the_callers_task_before_the_call_returns(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    seen: list[tuple[str, asyncio.Task[Any] | None, float]] = []

    def hook(event: Event) -> None:
        seen.append((event.kind, asyncio.current_task(), fake_time.now))

    client = make_client(
        script(fake_time, ok(EMPTY_PAGE)), event_hooks={"request": [hook], "response": [hook]}
    )
    call = asyncio.ensure_future(client.list_records(T0, T1))
    await call
    start = fake_time.now - 0.25  # the answer took 0.25 s of fake time
    assert seen == [("request", call, start), ("response", call, start + 0.25)]


async def test_a_sync_hook_that_returns_a_coroutine_has_it_run_as_a_task(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    ran: list[str] = []

    async def later(event: Event) -> None:
        ran.append(event.kind)

    client = make_client(
        script(fake_time, ok(EMPTY_PAGE)), event_hooks={"response": [lambda event: later(event)]}
    )
    await client.list_records(T0, T1)
    assert ran == []  # not inside the call
    await asyncio.sleep(0)
    assert ran == ["response"]
    assert others() == set()


async def test_an_async_hook_for_a_call_that_ends_after_aclose_is_not_started(
    make_client: MakeClient,
) -> None:
    # A call in flight when the client closes still gets its answer from a transport the
    # user owns; a hook it triggers then must not outlive the client as a stray task.
    release = asyncio.Event()
    entered = asyncio.Event()
    ran: list[str] = []

    async def handler(request: HttpRequest) -> HttpResponse:
        entered.set()
        await release.wait()
        return ok(EMPTY_PAGE)

    async def hook(event: Event) -> None:
        ran.append(event.kind)
        await asyncio.Event().wait()

    client = make_client(handler, event_hooks={"response": [hook]})
    call = asyncio.ensure_future(client.list_records(T0, T1))
    await entered.wait()
    await client.aclose()
    release.set()
    await asyncio.gather(call, return_exceptions=True)
    for _ in range(3):
        await asyncio.sleep(0)
    assert ran == []
    assert others() == set()


# --- configuration ---------------------------------------------------------------------------


def hook(event: Event) -> None:
    pass


@pytest.mark.parametrize(
    "hooks",
    [
        {"sent": [hook]},
        {"Request": [hook]},
        {1: [hook]},
        {"request": hook},  # one callable, not a list of them
        {"request": [hook, "not callable"]},
        {"request": "hook"},
        {"request": None},
        {"request": 5},
        [hook],
        "request",
    ],
)
def test_bad_event_hooks_are_refused(make_client: MakeClient, hooks: Any) -> None:
    with pytest.raises(ValidationError, match="event_hooks"):
        make_client(script(FakeTime()), event_hooks=hooks)


async def test_hooks_may_be_any_iterable_of_callables(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    events: list[Event] = []
    client = make_client(
        script(fake_time, ok(EMPTY_PAGE)),
        event_hooks={"request": (h for h in [events.append]), "response": ()},
    )
    await client.list_records(T0, T1)
    assert [e.kind for e in events] == ["request"]


# --- the logging hook ----------------------------------------------------------------------------


async def test_logging_hook_adds_one_line_per_event_beside_the_sdks_own_logging(
    make_client: MakeClient, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    hooks: dict[str, list[Callable[[Event], Any]]] = {
        kind: [logging_hook] for kind in ("request", "response", "retry", "end")
    }
    handler = script(fake_time, error(429, "Too Many Requests", status=429), ok(EMPTY_PAGE))
    client = make_client(handler, event_hooks=hooks)

    with caplog.at_level(logging.DEBUG, logger="senselink_plus"):
        await client.list_records(T0, T1)
        await asyncio.sleep(0)
    lines = [r.getMessage() for r in caplog.records if r.name == "senselink_plus"]
    # The SDK logs the retry (INFO) and each response (DEBUG) itself; the hook adds the
    # attempts sent and the call's end. No event is logged twice.
    retries = [line for line in lines if "retry" in line]
    assert len(retries) == 1
    assert [line for line in lines if line.endswith("sent")] == [
        f"GET {RECORD_PATH} attempt=1 sent",
        f"GET {RECORD_PATH} attempt=2 sent",
    ]
    assert len([line for line in lines if "status=" in line or "->" in line]) == 2
    assert len([line for line in lines if " done attempts=2 " in line]) == 1
    from_hook = [r for r in caplog.records if r.funcName == "logging_hook"]
    assert {r.levelno for r in from_hook} == {logging.DEBUG}
    assert len(from_hook) == 3
