"""`Session`: the request loop every call goes through. It signs each attempt, waits
for the rate limit and a concurrency slot, sends through the transport, retries by
policy (`_retry.classify`), emits the event hooks, parses, and lets `aclose` interrupt
calls in flight.

It knows nothing of the endpoints: a call is ``await session.fetch(request, parser)``.
"""

from __future__ import annotations

import asyncio
import copy
import email.utils
import logging
import random
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timezone
from typing import Any, Protocol, TypeVar

import attrs

from ._auth import Credentials, sign_request
from ._checks import check_callable, check_error_codes
from ._events import Event, EventHook, HookRunner
from ._exceptions import (
    ClientClosedError,
    ConnectError,
    EventLoopError,
    RequestTimeout,
    ResponseError,
    SenseLinkError,
    TransportError,
    ValidationError,
)
from ._headers import find_request_id, seen_headers, without_sign
from ._http import HttpRequest, HttpResponse, make_request
from ._limits import RateLimiter, make_semaphore
from ._retry import RetryPolicy, Timeout, classify
from ._transport import Transport
from ._wire import DEFAULT_ERROR_CODES, ErrorCodes

__all__ = ["Parser", "Session"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

logger = logging.getLogger("senselink_plus")


class Parser(Protocol[T_co]):
    """Turns one response to a request into a value or a typed error (`_protocol`'s
    ``parse_*`` functions)."""

    def __call__(
        self, response: HttpResponse, request: HttpRequest, *, codes: ErrorCodes, now: float
    ) -> T_co: ...


class Session:
    """The request loop: ``await session.fetch(request, parser)`` signs, limits, sends,
    retries and parses one call.

    A GET is retried on anything transient; any other method only when the request
    provably did not reach the server (see `classify`). ``headers`` go on every
    request (the request's own win); ``timeout``, when set, goes on every request and
    bounds each attempt whatever the transport does. `derive` makes a copy with other
    options that shares the transport, the limits, the hooks and the event loop.
    ``clock`` (wall time, for signing), ``timer`` (monotonic), ``sleep`` and ``rng``
    come in so tests run without real waits.

    >>> session = Session(Credentials("key", "secret"), MockTransport(handler))  # doctest: +SKIP
    >>> page = await session.fetch(build_list_records(...), parse_record_page)  # doctest: +SKIP
    """

    def __init__(
        self,
        credentials: Credentials,
        transport: Transport,
        *,
        owns_transport: bool = False,
        retry: RetryPolicy | None = None,
        error_codes: Mapping[int, type[Any]] | None = None,
        max_concurrency: int | None = None,
        rate_limit: float | None = None,
        event_hooks: Mapping[str, Sequence[EventHook]] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | None = None,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        retry = retry if retry is not None else RetryPolicy()
        if not isinstance(retry, RetryPolicy):
            raise ValidationError("retry must be a RetryPolicy", field="retry")
        self._retry = retry
        self._codes: ErrorCodes = {**DEFAULT_ERROR_CODES, **check_error_codes(error_codes)}
        self._semaphore = make_semaphore(max_concurrency)
        self.clock = check_callable(clock, "clock")
        self.timer = check_callable(timer, "timer")
        self._sleep = check_callable(sleep, "sleep")
        if rng is not None and not isinstance(rng, random.Random):
            raise ValidationError("rng must be a random.Random", field="rng")
        self.rng = rng if rng is not None else random.Random()
        self._limiter = (
            None if rate_limit is None else RateLimiter(rate_limit, timer=timer, sleep=sleep)
        )
        self._hooks = HookRunner(event_hooks)
        self._credentials = credentials
        self._transport = transport
        self._owns_transport = owns_transport
        self._owns_hooks = True
        self._headers: Mapping[str, str] = dict(headers) if headers else {}
        self._timeout = timeout
        self._inflight: set[asyncio.Task[Any]] = set()
        self._cancelled_by_close: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._copies: weakref.WeakSet[Session] = weakref.WeakSet()
        self._closed = False
        # The session whose event loop this one shares (itself, or what derive copied).
        self._loop_owner = self
        self._loop: asyncio.AbstractEventLoop | None = None  # bound on first use
        #: The last ``Date`` header parsed: (raw value, server epoch, local timer, clock).
        self._server_date: tuple[str, float, float, float] | None = None
        self._lean = self._is_lean()

    def derive(
        self,
        *,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | None = None,
    ) -> Session:
        """A copy with another policy, more headers or a timeout, sharing the
        transport, limits, hooks, server clock reading and event loop. The original
        owns what they share; closing it closes every copy."""
        self.check_open()
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValidationError("retry must be a RetryPolicy", field="retry")
        clone = copy.copy(self)
        clone._owns_transport = False
        clone._owns_hooks = False
        clone._inflight = set()
        clone._cancelled_by_close = weakref.WeakSet()
        clone._copies = weakref.WeakSet()
        if retry is not None:
            clone._retry = retry
        if headers:
            clone._headers = {**self._headers, **headers}
        if timeout is not None:
            clone._timeout = timeout
        clone._lean = clone._is_lean()
        self._copies.add(clone)
        return clone

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of every call."""
        return self._retry

    @property
    def timeout(self) -> Timeout | None:
        """The timeout put on every request (None: the transport's own)."""
        return self._timeout

    @property
    def transport(self) -> Transport:
        """Where requests are sent."""
        return self._transport

    @property
    def closed(self) -> bool:
        """True once `aclose` has been called (on this session or its original)."""
        return self._closed

    async def aclose(self) -> None:
        """Close this session and its copies: calls in flight (or waiting to retry) fail
        with `ClientClosedError`; the hooks and a transport it owns are closed.

        Raises `EventLoopError` from a loop other than the one the session was used in.
        """
        if self._closed:
            return
        if self._loop_owner._loop is not None:
            self.check_loop()
        self._closed = True
        for clone in list(self._copies):
            await clone.aclose()
        for task in list(self._inflight):
            if task is not asyncio.current_task():
                self._cancelled_by_close.add(task)
                task.cancel()
        if self._owns_hooks:
            await self._hooks.aclose()
        if self._owns_transport:
            await self._transport.aclose()

    def check_open(self) -> None:
        """Raise `ClientClosedError` once the session is closed."""
        if self._closed:
            raise ClientClosedError("the client is closed")

    def check_loop(self) -> None:
        """Bind the session to the running loop on first use; refuse any other loop after.

        Its connections, locks and tasks belong to that loop: from another one they fail
        in ways that look like network errors (and would be retried).
        """
        owner = self._loop_owner  # derived copies share their original's loop
        loop = asyncio.get_running_loop()
        if owner._loop is None:
            owner._loop = loop
        elif loop is not owner._loop:
            raise EventLoopError(
                "this client belongs to the event loop it was first used in, and this is "
                "another one: use and aclose() it in that loop, or make one client per "
                "loop (e.g. per asyncio.run)"
            )

    def server_time(self) -> tuple[float, float] | None:
        """The server's time now (its last ``Date`` header moved on by the local timer)
        and how far the local clock is off it (server minus local), in seconds; None
        until a response carried a usable ``Date``."""
        seen = self._loop_owner._server_date
        if seen is None:
            return None
        _, server, timer, clock = seen
        return server + (self.timer() - timer), server - clock

    async def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (the injected sleep); `aclose` ends the wait with
        `ClientClosedError`."""
        await self._until_closed(self._sleep(seconds))

    async def pause(self, attempt: int) -> None:
        """Wait the retry policy's back-off before attempt ``attempt + 1``."""
        await self.wait(self._retry.backoff(attempt, self.rng))

    def _note_date(self, response: HttpResponse) -> None:
        raw = response.headers.get("date")
        owner = self._loop_owner
        seen = owner._server_date
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
        owner._server_date = (raw, server, self.timer(), self.clock())

    def _parse(self, parser: Parser[T], response: HttpResponse, request: HttpRequest) -> T:
        return parser(response, request, codes=self._codes, now=self.clock())

    def _prepared(self, request: HttpRequest) -> HttpRequest:
        """``request`` with the session's headers (its own win) and timeout."""
        timeout = self._timeout if self._timeout is not None else request.timeout
        return make_request(
            request.method,
            request.url,
            request.params,
            {**self._headers, **request.headers} if self._headers else request.headers,
            request.content,
            timeout,
        )

    async def fetch(self, request: HttpRequest, parser: Parser[T]) -> T:
        """Send ``request`` (retrying by policy) and parse its response with ``parser``.

        A GET is idempotent and retried on anything transient; any other method is
        retried only when it provably did not reach the server, and its errors say
        when it may have landed (``record_may_exist``).
        """
        if self._lean and request.timeout is None:
            return await self._lean_call(request, parser)
        return await self._call(request, parser, idempotent=request.method == "GET")

    def _is_lean(self) -> bool:
        """No hooks, rate limit, deadline or session timeout: nothing to do around an
        attempt but sign, send and parse, so `_lean_call` does it in one coroutine."""
        hooks = self._hooks
        return (
            self._limiter is None
            and self._timeout is None
            and self._retry.deadline is None
            and not hooks.adds_headers
            and not hooks.wants_any
        )

    async def _lean_call(self, request: HttpRequest, parser: Parser[T]) -> T:
        """`_call` without the layers that would do nothing: the same steps and the same
        errors (the retry decision is `_after_error`, shared), one coroutine a call."""
        self.check_loop()
        idempotent = request.method == "GET"
        started = self.timer()
        semaphore = self._semaphore
        attempt = 0
        while True:
            attempt += 1
            response: HttpResponse | None = None
            try:
                if self._closed:
                    raise ClientClosedError("the client is closed")
                if semaphore is None:
                    response = await self._send_lean(request, attempt)
                else:
                    async with semaphore:
                        if self._closed:
                            raise ClientClosedError("the client is closed")
                        response = await self._send_lean(request, attempt)
                return parser(response, request, codes=self._codes, now=self.clock())
            except SenseLinkError as error:
                delay = self._after_error(error, response, request, attempt, started, idempotent)
            await self._until_closed(self._sleep(delay), request)
            self.check_open()

    async def _send_lean(self, request: HttpRequest, attempt: int) -> HttpResponse:
        # Sign and add the session's headers in one step (one new request, not two).
        now_ms = int(self.clock() * 1000)
        headers = self._headers
        signed = sign_request(
            request,
            self._credentials,
            now_ms,
            headers={**headers, **request.headers} if headers else request.headers,
        )
        debug = logger.isEnabledFor(logging.DEBUG)
        sent = self.timer() if debug else 0.0
        # Inline `_until_closed`: aclose cancels the caller's task, told apart from any
        # other cancel by _cancelled_by_close.
        task = asyncio.current_task()
        inflight = self._inflight
        if task is not None and task in inflight:
            task = None  # registered further up (it is waiting inside a wrapped call)
        if task is not None:
            inflight.add(task)
        try:
            response = await self._transport.send(signed)
        except asyncio.CancelledError:
            if task is not None and task in self._cancelled_by_close:
                self._cancelled_by_close.discard(task)
                if _uncancel(task) == 0:
                    raise ClientClosedError(
                        "the client was closed during the call",
                        request=request.info(),
                        record_may_exist=True,  # the caller keeps it for creates only
                    ) from None
            raise
        except OSError as exc:  # a custom transport that lets a socket error through
            raise TransportError(f"transport failure: {type(exc).__name__}: {exc}") from None
        finally:
            if task is not None:
                inflight.discard(task)
        response = without_sign(response, _sign_of(signed))
        seen = self._loop_owner._server_date
        raw = response.headers.get("date")
        if raw is not None and (seen is None or seen[0] != raw):
            self._note_date(response)
        if debug:
            logger.debug(
                "%s %s status=%d attempt=%d elapsed_ms=%.1f bytes=%d",
                request.method,
                request.path,
                response.status,
                attempt,
                (self.timer() - sent) * 1000,
                len(response.content),
            )
        return response

    async def _call(self, request: HttpRequest, parser: Parser[T], *, idempotent: bool) -> T:
        self.check_loop()
        request = self._prepared(request)
        hooks = self._hooks
        if not (hooks.wants("start") or hooks.wants("end")):
            return await self._attempts(request, parser, idempotent, None)
        state = _CallState()
        started = self.timer()
        if hooks.wants("start"):
            params = request.info().params
            hooks.emit(Event("start", request.method, request.path, 0, params, url=request.url))
        failure: BaseException | None = None
        try:
            return await self._attempts(request, parser, idempotent, state)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if hooks.wants("end"):
                hooks.emit(_end_event(request, state, self.timer() - started, failure))

    async def _attempts(
        self,
        request: HttpRequest,
        parser: Parser[T],
        idempotent: bool,
        state: _CallState | None,
    ) -> T:
        started = self.timer()
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
                delay = self._after_error(error, response, request, attempt, started, idempotent)
            await self._until_closed(self._sleep(delay), request)
            self.check_open()

    def _after_error(
        self,
        error: SenseLinkError,
        response: HttpResponse | None,
        request: HttpRequest,
        attempt: int,
        started: float,
        idempotent: bool,
    ) -> float:
        """The one retry decision: give ``error`` its context, then return the delay
        before the next attempt, or raise (it, or `ClientClosedError` once closed)."""
        if response is not None and error.headers is None:
            _from_response(error, response)
        verdict = classify(error, idempotent=idempotent)
        if self._closed:
            raise ClientClosedError(
                "the client was closed during the call",
                request=request.info(),
                # A create already handed to the transport may have landed.
                record_may_exist=not idempotent
                and (error.record_may_exist or verdict.may_have_landed),
            ) from None
        if error.request is None:
            error.request = request.info()
        if not idempotent and verdict.may_have_landed:
            error.record_may_exist = True
        delay = self._next_delay(error, attempt, started, verdict.retry)
        if delay is None:
            raise error
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
        return delay

    def _next_delay(
        self, error: SenseLinkError, attempt: int, started: float, retry: bool
    ) -> float | None:
        policy = self._retry
        if attempt >= policy.max_attempts or not retry:
            return None
        delay = policy.delay(error, attempt, self.rng)
        if delay is None:
            return None
        if policy.deadline is not None and self.timer() - started + delay > policy.deadline:
            return None
        return delay

    async def _attempt(self, request: HttpRequest, attempt: int, started: float) -> HttpResponse:
        if self._limiter is not None:
            await self._limiter.acquire()
        self.check_open()
        if self._semaphore is None:
            return await self._send_signed(request, attempt, started)
        async with self._semaphore:
            self.check_open()
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
        signed = sign_request(request, self._credentials, int(self.clock() * 1000))
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
                signed = make_request(
                    signed.method,
                    signed.url,
                    signed.params,
                    {**added, **signed.headers},
                    signed.content,
                    signed.timeout,
                )
        sent = self.timer()
        deadline = self._retry.deadline
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
        elapsed = self.timer() - sent
        response = without_sign(response, _sign_of(signed))
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


def _sign_of(signed: HttpRequest) -> str:
    """The sign `sign_request` put on ``signed`` (its last query parameter)."""
    return signed.params[-1][1]


def _uncancel(task: asyncio.Task[Any]) -> int:
    """Withdraw one cancel request; how many remain (Task.uncancel is Python 3.11+: on
    3.10 a close and a caller's cancel that arrive together read as the close)."""
    uncancel = getattr(task, "uncancel", None)
    return int(uncancel()) if uncancel is not None else 0


def _end_event(
    request: HttpRequest, state: _CallState, elapsed: float, failure: BaseException | None
) -> Event:
    """The ``end`` event of a call: how it ended, after how many attempts."""
    if failure is None:
        return Event(
            "end",
            request.method,
            request.path,
            state.attempt,
            request.info().params,
            status=state.status,
            elapsed=elapsed,
            url=request.url,
        )
    error = failure if isinstance(failure, SenseLinkError) else None
    return Event(
        "end",
        request.method,
        request.path,
        state.attempt,
        request.info().params,
        status=getattr(failure, "status", None) or state.status,
        elapsed=elapsed,
        error=f"{type(failure).__name__}: {error.message if error else failure}",
        url=request.url,
        headers=error.headers if error is not None else None,
        error_type=type(failure).__name__,
    )
