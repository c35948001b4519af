"""The request loop: sign each attempt, send it, retry by policy, parse, and let
`aclose` interrupt calls in flight."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import weakref
from collections.abc import Awaitable, Callable, Mapping
from datetime import timezone
from types import MappingProxyType
from typing import Any, TypeVar

import attrs

from . import _endpoints as ep
from ._auth import Credentials, sign_request
from ._events import Event, HookRunner
from ._exceptions import (
    APIError,
    ClientClosedError,
    ConnectError,
    EventLoopError,
    RateLimitError,
    RequestTimeout,
    ResponseError,
    SenseLinkError,
    ServerError,
    TransportError,
)
from ._headers import find_request_id, seen_headers
from ._http import HttpRequest, HttpResponse
from ._limits import RateLimiter
from ._models import RecordPage
from ._retry import RetryPolicy, Timeout, is_retryable
from ._transport import Transport
from ._wire import ErrorCodes

__all__ = ["Requester"]

T = TypeVar("T")

logger = logging.getLogger("senselink_plus")


class Requester:
    """What `Client` builds on: its state is set up by `Client.__init__`."""

    base_url: str
    retry: RetryPolicy
    _credentials: Credentials
    _codes: ErrorCodes
    _semaphore: asyncio.Semaphore | None
    _clock: Callable[[], float]
    _timer: Callable[[], float]
    _sleep: Callable[[float], Awaitable[object]]
    _rng: random.Random
    _limiter: RateLimiter | None
    _hooks: HookRunner
    _inflight: set[asyncio.Task[Any]]
    _cancelled_by_close: weakref.WeakSet[asyncio.Task[Any]]
    _transport: Transport
    _closed: bool
    #: The client whose event loop this one shares (itself, or what with_options copied).
    _loop_owner: Requester
    _loop: asyncio.AbstractEventLoop | None
    #: Headers every request carries (User-Agent, default_headers, with_options headers).
    _headers: Mapping[str, str] = MappingProxyType({})
    #: A timeout set by with_options or per call: sent with each request and enforced.
    _request_timeout: Timeout | None = None
    #: The last ``Date`` header parsed: (raw value, server epoch, local timer, local clock).
    _server_date: tuple[str, float, float, float] | None = None

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("the client is closed")

    def _check_loop(self) -> None:
        """Bind the client to the running loop on first use; refuse any other loop after.

        Its connections, locks and tasks belong to that loop: from another one they fail
        in ways that look like network errors (and would be retried).
        """
        owner = self._loop_owner  # with_options copies share their original's loop
        loop = asyncio.get_running_loop()
        if owner._loop is None:
            owner._loop = loop
        elif loop is not owner._loop:
            raise EventLoopError(
                "this client belongs to the event loop it was first used in, and this is "
                "another one: use and aclose() it in that loop, or make one client per "
                "loop (e.g. per asyncio.run)"
            )

    async def _fetch_page(self, request: HttpRequest) -> RecordPage:
        return await self._call(request, ep.parse_record_page, idempotent=True)

    def _server_time(self) -> tuple[float, float] | None:
        """The server's time now (its last ``Date`` header moved on by the local timer)
        and how far the local clock is off it (server minus local), in seconds; None
        until a response carried a usable ``Date``."""
        seen = self._server_date
        if seen is None:
            return None
        _, server, timer, clock = seen
        return server + (self._timer() - timer), server - clock

    def _note_date(self, response: HttpResponse) -> None:
        raw = response.headers.get("date")
        seen = self._server_date
        # The header changes once a second at most: parse it only when it changed, and
        # keep the first reading of each value (the closest to the second it names).
        if raw is None or (seen is not None and seen[0] == raw):
            return
        try:
            when = email.utils.parsedate_to_datetime(raw)
            if when.tzinfo is None:  # "-0000": UTC, as HTTP dates always are
                when = when.replace(tzinfo=timezone.utc)
            server = when.timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        self._server_date = (raw, server, self._timer(), self._clock())

    def _parse(self, parser: Callable[..., T], response: HttpResponse, request: HttpRequest) -> T:
        return parser(response, request, codes=self._codes, now=self._clock())

    def _prepared(self, request: HttpRequest) -> HttpRequest:
        """``request`` with the client's headers (its own win) and per-call timeout."""
        timeout = self._request_timeout if self._request_timeout is not None else request.timeout
        return HttpRequest._normalised(
            request.method,
            request.url,
            request.params,
            {**self._headers, **request.headers} if self._headers else request.headers,
            request.content,
            timeout,
        )

    async def _call(self, request: HttpRequest, parser: Callable[..., T], *, idempotent: bool) -> T:
        self._check_loop()
        request = self._prepared(request)
        hooks = self._hooks
        if not (hooks.wants("start") or hooks.wants("end")):
            return await self._attempts(request, parser, idempotent, None)
        state = _CallState()
        started = self._timer()
        if hooks.wants("start"):
            params = request.info().params
            hooks.emit(Event("start", request.method, request.path, 0, params, url=request.url))
        try:
            result = await self._attempts(request, parser, idempotent, state)
        except BaseException as exc:
            if hooks.wants("end"):
                error = exc if isinstance(exc, SenseLinkError) else None
                hooks.emit(
                    Event(
                        "end",
                        request.method,
                        request.path,
                        state.attempt,
                        request.info().params,
                        status=getattr(exc, "status", None) or state.status,
                        elapsed=self._timer() - started,
                        error=f"{type(exc).__name__}: {error.message if error else exc}",
                        url=request.url,
                        headers=error.headers if error is not None else None,
                        error_type=type(exc).__name__,
                    )
                )
            raise
        if hooks.wants("end"):
            hooks.emit(
                Event(
                    "end",
                    request.method,
                    request.path,
                    state.attempt,
                    request.info().params,
                    status=state.status,
                    elapsed=self._timer() - started,
                    url=request.url,
                )
            )
        return result

    async def _attempts(
        self,
        request: HttpRequest,
        parser: Callable[..., T],
        idempotent: bool,
        state: _CallState | None,
    ) -> T:
        started = self._timer()
        attempt = 0
        while True:
            attempt += 1
            response: HttpResponse | None = None
            if state is not None:
                state.attempt = attempt
            try:
                response = await self._attempt(request, attempt, started)
                if state is not None:
                    state.status = response.status
                return self._parse(parser, response, request)
            except SenseLinkError as error:
                if response is not None and error.headers is None:
                    _from_response(error, response)
                if self._closed:
                    raise ClientClosedError(
                        "the client was closed during the call",
                        request=request.info(),
                        # A create already handed to the transport may have landed.
                        record_may_exist=not idempotent
                        and (error.record_may_exist or _may_have_landed(error)),
                    ) from None
                if error.request is None:
                    error.request = request.info()
                if not idempotent and _may_have_landed(error):
                    error.record_may_exist = True
                delay = self._next_delay(error, attempt, started, idempotent)
                if delay is None:
                    raise
                logger.info(
                    "%s %s retry attempt=%d in %.3fs after %s",
                    request.method,
                    request.path,
                    attempt + 1,
                    delay,
                    type(error).__name__,
                )
                if self._hooks.wants("retry"):
                    self._hooks.emit(
                        Event(
                            "retry",
                            request.method,
                            request.path,
                            attempt,
                            request.info().params,
                            status=getattr(error, "status", None),
                            delay=delay,
                            error=f"{type(error).__name__}: {error.message}",
                            url=request.url,
                            headers=error.headers,
                            error_type=type(error).__name__,
                        )
                    )
                await self._until_closed(self._sleep(delay), request)
                self._check_open()

    def _next_delay(
        self, error: SenseLinkError, attempt: int, started: float, idempotent: bool
    ) -> float | None:
        policy = self.retry
        if attempt >= policy.max_attempts or not is_retryable(error, idempotent=idempotent):
            return None
        delay = policy.delay(error, attempt, self._rng)
        if delay is None:
            return None
        if policy.deadline is not None and self._timer() - started + delay > policy.deadline:
            return None
        return delay

    async def _attempt(self, request: HttpRequest, attempt: int, started: float) -> HttpResponse:
        if self._limiter is not None:
            await self._limiter.acquire()
        self._check_open()
        if self._semaphore is None:
            return await self._send_signed(request, attempt, started)
        async with self._semaphore:
            self._check_open()
            return await self._send_signed(request, attempt, started)

    async def _until_closed(
        self, awaitable: Awaitable[T], request: HttpRequest | None = None, *, sending: bool = False
    ) -> T:
        """Await ``awaitable`` in the caller's task, which `aclose` may cancel: the call
        then fails with ClientClosedError (and a cancel of the caller's own still wins)."""
        # No task of its own per request (an extra loop turn each): aclose cancels the
        # caller's task, and uncancel() tells that apart from anyone else's cancel.
        task = asyncio.current_task()
        if task is None or task in self._inflight:
            return await awaitable
        self._inflight.add(task)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if task in self._cancelled_by_close:
                self._cancelled_by_close.discard(task)
                if _uncancel(task) == 0:
                    raise ClientClosedError(
                        "the client was closed during the call",
                        request=None if request is None else request.info(),
                        record_may_exist=sending,  # the caller keeps it for creates only
                    ) from None
            raise
        finally:
            self._inflight.discard(task)

    async def _send_signed(
        self, request: HttpRequest, attempt: int, started: float
    ) -> HttpResponse:
        # A fresh timestamp and sign for every attempt: the server refuses stale ones.
        signed = sign_request(request, self._credentials, int(self._clock() * 1000))
        hooks = self._hooks
        if hooks.adds_headers or hooks.wants("request"):
            params = request.info().params
            event = Event("request", request.method, request.path, attempt, params, url=request.url)
            # "headers" hooks run here, inline (a tracing hook's traceparent, say); every
            # other hook sees the event later, off the call path.
            added = hooks.headers_for(event) if hooks.adds_headers else None
            if hooks.wants("request"):
                hooks.emit(event)
            if added:  # the request's own headers win
                signed = HttpRequest._normalised(
                    signed.method,
                    signed.url,
                    signed.params,
                    {**added, **signed.headers},
                    signed.content,
                    signed.timeout,
                )
        sent = self._timer()
        deadline = self.retry.deadline
        # A per-call timeout bounds the attempt whatever the transport does with it.
        limit = None if request.timeout is None else request.timeout.total
        by_deadline = False
        try:
            if deadline is not None:
                remaining = deadline - (sent - started)
                if remaining <= 0:  # spent waiting for a turn: nothing was sent
                    raise ConnectError(
                        f"the call's deadline of {deadline}s passed before it was sent",
                        request=request.info(),
                    )
                if limit is None or remaining < limit:
                    limit, by_deadline = remaining, True
            if limit is None:
                response = await self._until_closed(
                    self._transport.send(signed), request, sending=True
                )
            else:
                response = await asyncio.wait_for(
                    self._until_closed(self._transport.send(signed), request, sending=True),
                    limit,
                )
        except asyncio.TimeoutError:
            if by_deadline:
                reason = f"deadline of {deadline}s passed"
            elif request.timeout is not None:
                reason = f"no answer within the timeout of {request.timeout.total}s"
            else:
                reason = "no answer in time"
            raise RequestTimeout(reason, request=request.info()) from None
        except OSError as exc:  # a custom transport that lets a socket error through
            raise TransportError(f"transport failure: {type(exc).__name__}: {exc}") from None
        elapsed = self._timer() - sent
        self._note_date(response)
        logger.debug(
            "%s %s status=%d attempt=%d elapsed_ms=%.1f bytes=%d",
            request.method,
            request.path,
            response.status,
            attempt,
            elapsed * 1000,
            len(response.content),
        )
        if self._hooks.wants("response"):
            self._hooks.emit(
                Event(
                    "response",
                    request.method,
                    request.path,
                    attempt,
                    request.info().params,
                    status=response.status,
                    elapsed=elapsed,
                    url=request.url,
                    headers=seen_headers(response.headers),
                )
            )
        return response


@attrs.define
class _CallState:
    """What the ``end`` event reports: attempts made and the last response's status."""

    attempt: int = 0
    status: int | None = None


def _from_response(error: SenseLinkError, response: HttpResponse) -> None:
    """Give an error made from ``response`` its headers, request id and status."""
    error.headers = seen_headers(response.headers)
    error.request_id = find_request_id(response.headers)
    if isinstance(error, ResponseError) and error.status is None:
        error.status = response.status


def _uncancel(task: asyncio.Task[Any]) -> int:
    """Withdraw one cancel request; how many remain (Task.uncancel is Python 3.11+: on
    3.10 a close and a caller's cancel that arrive together read as the close)."""
    uncancel = getattr(task, "uncancel", None)
    return int(uncancel()) if uncancel is not None else 0


def _may_have_landed(error: SenseLinkError) -> bool:
    """Whether a failed create may still have stored its record."""
    if isinstance(error, (ConnectError, RateLimitError)):
        return False
    if isinstance(error, (TransportError, ResponseError, ServerError)):
        return True
    return isinstance(error, APIError) and error.status >= 500
