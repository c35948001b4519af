"""senselink_plus.otel: spans per call and attempt, HTTP semantic conventions, traceparent."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import senselink_plus as slp
from senselink_plus.otel import OpenTelemetry
from senselink_plus.testing import (
    Emulator,
    MockTransport,
    created_record_response,
    error_response,
    image_response,
    record_page_response,
    sample_image,
)

NO_WAIT = slp.RetryPolicy(max_attempts=3, initial_delay=0.0, max_delay=0.0)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def otel(exporter: InMemorySpanExporter) -> OpenTelemetry:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OpenTelemetry(tracer_provider=provider)


def client_with(otel: OpenTelemetry, mock: MockTransport, **options: Any) -> slp.Client:
    options.setdefault("retry", NO_WAIT)
    return slp.Client(
        "key", "secret", transport=mock, event_hooks=otel.event_hooks(), **options
    )


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        found.setdefault(span.name, []).append(span)
    return found


def traceparent(span: ReadableSpan) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


async def test_a_retried_call_has_one_span_per_attempt_under_the_call_span(
    otel: OpenTelemetry, exporter: InMemorySpanExporter
) -> None:
    answers = iter([error_response(503, status=503), image_response()])
    mock = MockTransport(lambda request: next(answers))
    async with client_with(otel, mock) as client:
        await client.get_image("img1")
    spans = by_name(exporter.get_finished_spans())
    (call,) = spans["senselink get_image"]
    first, second = spans["GET /api/v1/plus/image/{image_id}"]
    assert call.kind is SpanKind.INTERNAL
    assert {first.kind, second.kind} == {SpanKind.CLIENT}
    assert first.parent is not None
    assert second.parent is not None
    assert first.parent.span_id == call.context.span_id
    assert second.parent.span_id == call.context.span_id
    assert call.attributes is not None
    assert call.attributes["senselink.retry_count"] == 1
    assert call.status.status_code is StatusCode.UNSET

    assert dict(first.attributes or {}) == {
        "http.request.method": "GET",
        "url.full": "https://link.japancv.co.jp/api/v1/plus/image/img1",
        "url.template": "/api/v1/plus/image/{image_id}",
        "server.address": "link.japancv.co.jp",
        "server.port": 443,
        "http.response.status_code": 503,
        "error.type": "503",
    }
    assert first.status.status_code is StatusCode.ERROR
    second_attributes = dict(second.attributes or {})
    assert second_attributes["http.request.resend_count"] == 1
    assert second_attributes["http.response.status_code"] == 200
    assert "error.type" not in second_attributes
    # Each request carried its own attempt's traceparent.
    assert [r.headers["traceparent"] for r in mock.requests] == [
        traceparent(first),
        traceparent(second),
    ]


async def test_no_query_and_no_sign_in_any_span(
    otel: OpenTelemetry, exporter: InMemorySpanExporter
) -> None:
    mock = MockTransport(lambda request: record_page_response())
    async with client_with(otel, mock) as client:
        await client.list_records(
            datetime(2026, 11, 29, tzinfo=timezone.utc),
            datetime(2026, 11, 29, 1, tzinfo=timezone.utc),
        )
    text = repr([dict(span.attributes or {}) for span in exporter.get_finished_spans()])
    assert "sign" not in text
    assert "?" not in text
    assert "app_key" not in text


async def test_a_failed_call_records_the_error_type(
    otel: OpenTelemetry, exporter: InMemorySpanExporter
) -> None:
    def refuse(request: slp.HttpRequest) -> slp.HttpResponse:
        raise slp.ConnectError("refused")

    async with client_with(otel, MockTransport(refuse), retry=slp.RetryPolicy.none()) as client:
        with pytest.raises(slp.ConnectError):
            await client.get_image("img1")
    spans = by_name(exporter.get_finished_spans())
    (attempt,) = spans["GET /api/v1/plus/image/{image_id}"]
    (call,) = spans["senselink get_image"]
    assert (attempt.attributes or {})["error.type"] == "ConnectError"
    assert "http.response.status_code" not in (attempt.attributes or {})
    assert (call.attributes or {})["error.type"] == "ConnectError"
    assert call.status.status_code is StatusCode.ERROR


async def test_an_error_envelope_with_http_200(
    otel: OpenTelemetry, exporter: InMemorySpanExporter
) -> None:
    mock = MockTransport(lambda request: error_response(30003))
    async with client_with(otel, mock) as client:
        with pytest.raises(slp.NoFaceDetectedError):
            await client.create_record("SN1", sample_image("alice"))
    spans = by_name(exporter.get_finished_spans())
    (attempt,) = spans["POST /api/v1/plus/record"]
    (call,) = spans["senselink create_record"]
    assert (attempt.attributes or {})["http.response.status_code"] == 200
    assert (attempt.attributes or {})["error.type"] == "NoFaceDetectedError"
    assert (call.attributes or {})["error.type"] == "NoFaceDetectedError"


async def test_call_span_is_a_child_of_the_current_span(
    otel: OpenTelemetry, exporter: InMemorySpanExporter
) -> None:
    tracer = otel._tracer
    mock = MockTransport(lambda request: created_record_response())
    async with client_with(otel, mock) as client:
        with tracer.start_as_current_span("handle door event") as outer:
            await client.create_record("SN1", sample_image("bob"))
    spans = by_name(exporter.get_finished_spans())
    (call,) = spans["senselink create_record"]
    assert call.parent is not None
    assert call.parent.span_id == outer.get_span_context().span_id
    assert call.context.trace_id == outer.get_span_context().trace_id


async def test_concurrent_calls_keep_their_spans_apart(
    otel: OpenTelemetry, exporter: InMemorySpanExporter
) -> None:
    async def slow(request: slp.HttpRequest) -> slp.HttpResponse:
        await asyncio.sleep(0)
        return image_response()

    async with client_with(otel, MockTransport(slow)) as client:
        await asyncio.gather(*(client.get_image(f"img{n}") for n in range(5)))
    spans = by_name(exporter.get_finished_spans())
    calls = {span.context.span_id: span for span in spans["senselink get_image"]}
    attempts = spans["GET /api/v1/plus/image/{image_id}"]
    assert len(calls) == len(attempts) == 5
    for attempt in attempts:
        assert attempt.parent is not None
        parent = calls[attempt.parent.span_id]
        assert (parent.attributes or {})["url.full"] == (attempt.attributes or {})["url.full"]


async def test_against_the_emulator_on_a_real_socket(
    otel: OpenTelemetry, exporter: InMemorySpanExporter
) -> None:
    async with Emulator() as emu, emu.client(event_hooks=otel.event_hooks()) as client:
        now = datetime.now(timezone.utc)
        await client.list_records(now - timedelta(hours=1), now)
        port = int(emu.base_url.rsplit(":", 1)[1])
    (attempt,) = by_name(exporter.get_finished_spans())["GET /api/v1/plus/record"]
    attributes = attempt.attributes or {}
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == port
    assert attributes["http.response.status_code"] == 200


def test_propagation_can_be_turned_off(exporter: InMemorySpanExporter) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel = OpenTelemetry(tracer_provider=provider, propagate=False)
    mock = MockTransport(lambda request: image_response())

    async def run() -> None:
        async with client_with(otel, mock) as client:
            await client.get_image("img1")

    asyncio.run(run())
    assert "traceparent" not in mock.requests[0].headers
    assert len(exporter.get_finished_spans()) == 2


async def test_calls_one_after_another_in_one_task_get_their_own_spans(
    otel: OpenTelemetry, exporter: InMemorySpanExporter
) -> None:
    answers = iter([image_response(), error_response(503, status=503), image_response()])
    mock = MockTransport(lambda request: next(answers))
    async with client_with(otel, mock) as client:
        await client.get_image("img1")
        await client.get_image("img2")
    spans = by_name(exporter.get_finished_spans())
    first_call, second_call = sorted(spans["senselink get_image"], key=lambda s: s.start_time or 0)
    attempts = spans["GET /api/v1/plus/image/{image_id}"]
    assert len(attempts) == 3
    parents = [a.parent.span_id for a in attempts if a.parent is not None]
    assert sorted(parents) == sorted(
        [first_call.context.span_id, second_call.context.span_id, second_call.context.span_id]
    )
    assert (first_call.attributes or {})["senselink.retry_count"] == 0
    assert (second_call.attributes or {})["senselink.retry_count"] == 1
    sent = {r.headers["traceparent"] for r in mock.requests}
    assert sent == {traceparent(a) for a in attempts}


async def test_spans_are_finished_when_the_call_returns(
    otel: OpenTelemetry, exporter: InMemorySpanExporter
) -> None:
    ran: list[str] = []
    hooks = otel.event_hooks()
    hooks["response"] = [*hooks["response"], lambda event: ran.append(event.kind)]
    mock = MockTransport(lambda request: image_response())
    client = slp.Client("key", "secret", transport=mock, event_hooks=hooks, retry=NO_WAIT)
    await client.get_image("img1")
    assert "traceparent" in mock.requests[0].headers
    # Hooks run inline, the user's beside the integration's: the call and attempt spans
    # end before the call returns, not whenever a hook thread gets to them.
    assert ran == ["response"]
    assert len(exporter.get_finished_spans()) == 2
    await client.aclose()
