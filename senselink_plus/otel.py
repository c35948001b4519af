"""OpenTelemetry tracing for senselink-plus (``pip install 'senselink-plus[otel]'``).

A span per call and one per attempt, following OpenTelemetry's HTTP client semantic
conventions, and a W3C ``traceparent`` header on every request, all through the
client's public event hooks::

    from senselink_plus.otel import OpenTelemetry

    client = slp.Client(event_hooks=OpenTelemetry().event_hooks())

- The call span (kind INTERNAL, named after the call: ``senselink create_record``,
  ``senselink list_records``, ``senselink get_image``) is a child of whatever span is
  current in the calling task. It starts when the first attempt is about to be sent
  (after any wait for a concurrency slot or the rate limit) and carries
  ``senselink.retry_count`` (attempts - 1).
- Each attempt is a CLIENT span under it, named ``{method} {url.template}``, with
  ``http.request.method``, ``url.full`` (never the query, which holds the sign),
  ``url.template``, ``server.address``, ``server.port``, ``http.request.resend_count``
  (from the second attempt), ``http.response.status_code`` and, on failure,
  ``error.type`` (the status code for HTTP 4xx/5xx, else the error's class name).
- The ``traceparent`` sent is the attempt span's, so the service's spans (if it
  traces) hang under the attempt that reached it.

How it runs: inline, in the call's task, as the client runs every sync hook. Spans are
started, and ``traceparent`` made, by a ``"headers"`` hook before each attempt; status,
errors and span ends come from the ``response``/``retry``/``end`` hooks, so the spans
end with the call.

Only ``opentelemetry-api`` is needed; without an SDK configured the spans are no-ops.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from . import Event, __version__

EventHook = Callable[[Event], Any]

__all__ = ["OpenTelemetry"]

_TRACER_NAME = "senselink_plus"
# The API's two paths (FACTS); spans are named after them, never after an image id.
RECORD_PATH = "/api/v1/plus/record"
IMAGE_PATH = "/api/v1/plus/image/"


class _Call:
    """The spans of one call. Made by the headers hook at the first attempt and found by
    the other hooks through `_current`: all of them run in the call's task and context."""

    __slots__ = ("attempts", "call", "ended")

    def __init__(self, call: Span) -> None:
        self.call = call
        self.attempts: dict[int, Span] = {}  # attempt number -> its span, until ended
        self.ended = False


#: The call running in this task (set by the inline headers hook at its first attempt).
_current: contextvars.ContextVar[_Call | None] = contextvars.ContextVar(
    "senselink_plus_otel_call", default=None
)


def _operation(method: str, path: str) -> tuple[str, str]:
    """The call's name and the attempt's URL template, from the request's path."""
    if path.endswith(RECORD_PATH):
        return ("create_record" if method == "POST" else "list_records"), RECORD_PATH
    if IMAGE_PATH in path:
        return "get_image", IMAGE_PATH + "{image_id}"
    return "request", path


def _server(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"server.address": parts.hostname or "", "server.port": port}


class OpenTelemetry:
    """Event hooks that trace each call and attempt with OpenTelemetry.

    ``tracer_provider`` defaults to the global one; ``propagate`` (default True) adds
    the W3C ``traceparent`` (and any other configured propagator's headers) to each
    request.

    >>> from senselink_plus.otel import OpenTelemetry
    >>> client = slp.Client(event_hooks=OpenTelemetry().event_hooks())  # doctest: +SKIP
    """

    def __init__(
        self, tracer_provider: trace.TracerProvider | None = None, *, propagate: bool = True
    ) -> None:
        self._tracer = trace.get_tracer(
            _TRACER_NAME, __version__, tracer_provider=tracer_provider
        )
        self._propagate = propagate

    def event_hooks(self) -> dict[str, list[EventHook]]:
        """The hooks to pass as ``Client(event_hooks=...)`` (merge them with your own
        lists if you have some).

        >>> hooks = OpenTelemetry().event_hooks()
        >>> sorted(hooks)
        ['end', 'headers', 'response', 'retry']
        """
        handlers: dict[str, Callable[[Event], Any]] = {
            "headers": self._headers,
            "response": self._response,
            "retry": self._retry,
            "end": self._end,
        }
        return {kind: [handler] for kind, handler in handlers.items()}

    # --- inline, in the call's task, before each attempt is sent ------------------------

    def _headers(self, event: Event) -> Mapping[str, str] | None:
        state = _current.get()
        if event.attempt == 1 or state is None or state.ended:
            state = _Call(self._start_call(event))
            _current.set(state)  # in the call's task: its later events carry it
        _, template = _operation(event.method, event.path)
        attributes: dict[str, Any] = {
            "http.request.method": event.method,
            "url.template": template,
        }
        if event.url is not None:
            attributes["url.full"] = event.url
            attributes.update(_server(event.url))
        if event.attempt > 1:
            attributes["http.request.resend_count"] = event.attempt - 1
        span = self._tracer.start_span(
            f"{event.method} {template}",
            context=trace.set_span_in_context(state.call),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        state.attempts[event.attempt] = span
        if not self._propagate:
            return None
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        return carrier

    def _start_call(self, event: Event) -> Span:
        name, _ = _operation(event.method, event.path)
        attributes: dict[str, Any] = {"http.request.method": event.method}
        if event.url is not None:
            attributes["url.full"] = event.url
            attributes.update(_server(event.url))
        # A child of the caller's current span: this runs in the caller's context.
        return self._tracer.start_span(
            f"senselink {name}", kind=SpanKind.INTERNAL, attributes=attributes
        )

    # --- inline too, in the call's task, after each answer and at the end ----------------

    def _response(self, event: Event) -> None:
        state = _current.get()
        span = None if state is None else state.attempts.get(event.attempt)
        if span is None or event.status is None:
            return
        span.set_attribute("http.response.status_code", event.status)
        if event.status >= 400:
            _fail(span, str(event.status))

    def _retry(self, event: Event) -> None:
        state = _current.get()
        if state is None:
            return
        span = state.attempts.pop(event.attempt, None)
        if span is not None:
            _fail(span, event.error_type or "error")
            span.end()

    def _end(self, event: Event) -> None:
        state = _current.get()
        if state is None or state.ended:  # no attempt was sent (or not traced)
            return
        state.ended = True
        attempts = sorted(state.attempts.items())
        state.attempts.clear()
        for _, span in attempts:
            if event.error_type is not None:
                _fail(span, event.error_type)
            span.end()
        call = state.call
        call.set_attribute("senselink.retry_count", max(event.attempt - 1, 0))
        if event.status is not None:
            call.set_attribute("http.response.status_code", event.status)
        if event.error_type is not None:
            _fail(call, event.error_type)
        call.end()


def _fail(span: Span, error_type: str) -> None:
    """Mark ``span`` failed, keeping the first ``error.type`` (an HTTP status beats the
    error class that the status then turned into)."""
    attributes = getattr(span, "attributes", None) or {}
    if "error.type" not in attributes:
        span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR))
