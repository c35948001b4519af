"""`Session`: the request loop every call goes through. Each attempt is signed, limited
and sent by the `Sender` a session shares with its copies; the session retries by policy
(`_retry.classify`), emits the call's events, parses, and lets `aclose` interrupt calls
in flight (its `CloseGuard`).

It knows nothing of the endpoints: a call is ``await session.fetch(request, parser)``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from ._auth import Credentials
from ._checks import check_callable, check_error_codes
from ._close_guard import CloseGuard
from ._events import CallEvents, EventHook, HookRunner, call_event
from ._exceptions import (
    ClientClosedError,
    EventLoopError,
    ResponseError,
    SenseLinkError,
    ValidationError,
)
from ._headers import find_request_id, seen_headers
from ._http import HttpRequest, HttpResponse, make_request
from ._limits import RateLimiter, make_semaphore
from ._retry import RetryPolicy, Timeout, classify
from ._sender import Sender
from ._server_date import ServerDate
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

    # Slots: a copy is built attribute by attribute (`_set_up`), never copied wholesale.
    __slots__ = (
        "__weakref__",
        "_copies",
        "_guard",
        "_headers",
        "_owns_hooks",
        "_owns_transport",
        "_retry",
        "_shared",
        "_timeout",
    )

    def __init__(
        self,
        credentials: Credentials,
        transport: Transport,
        *,
        owns_transport: bool = False,
        retry: RetryPolicy | None = None,
        error_codes: Mapping[int, type[object]] | None = None,
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
        retry = RetryPolicy() if retry is None else _checked_retry(retry)
        codes: ErrorCodes = {**DEFAULT_ERROR_CODES, **check_error_codes(error_codes)}
        semaphore = make_semaphore(max_concurrency)
        clock, timer = check_callable(clock, "clock"), check_callable(timer, "timer")
        sleep = check_callable(sleep, "sleep")
        if rng is not None and not isinstance(rng, random.Random):
            raise ValidationError("rng must be a random.Random", field="rng")
        limiter = None if rate_limit is None else RateLimiter(rate_limit, timer=timer, sleep=sleep)
        shared = Sender(
            credentials,
            transport,
            codes,
            semaphore,
            limiter,
            HookRunner(event_hooks),
            clock,
            timer,
            sleep,
            rng if rng is not None else random.Random(),
            ServerDate(clock, timer),
        )
        self._set_up(shared, retry, dict(headers or {}), timeout, owner=True)
        self._owns_transport = owns_transport

    def _set_up(
        self,
        shared: Sender,
        retry: RetryPolicy,
        headers: dict[str, str],
        timeout: Timeout | None,
        *,
        owner: bool,
    ) -> None:
        """Give this session every attribute: ``shared`` with its original and copies,
        the rest its own (``owner``: the original, which owns what they share)."""
        self._shared = shared
        self._retry = retry
        self._headers = headers
        self._timeout = timeout
        self._guard = CloseGuard()
        self._copies: weakref.WeakSet[Session] = weakref.WeakSet()
        self._owns_hooks = owner
        self._owns_transport = False

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
        retry = self._retry if retry is None else _checked_retry(retry)
        clone = object.__new__(Session)
        merged = {**self._headers, **(headers or {})}
        timeout = self._timeout if timeout is None else timeout
        clone._set_up(self._shared, retry, merged, timeout, owner=False)
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
        return self._shared.transport

    @property
    def clock(self) -> Callable[[], float]:
        """Wall time (epoch seconds), as signing reads it."""
        return self._shared.clock

    @property
    def timer(self) -> Callable[[], float]:
        """Monotonic time, for durations."""
        return self._shared.timer

    @property
    def rng(self) -> random.Random:
        """The randomness of back-off jitter."""
        return self._shared.rng

    @property
    def closed(self) -> bool:
        """True once `aclose` has been called (on this session or its original)."""
        return self._guard.closed

    async def aclose(self) -> None:
        """Close this session and its copies: calls in flight (or waiting to retry) fail
        with `ClientClosedError`; the hooks and a transport it owns are closed.

        Raises `EventLoopError` from a loop other than the one the session was used in.
        """
        if self._guard.closed:
            return
        if self._shared.loop is not None:
            self.check_loop()
        self._guard.close()
        for clone in list(self._copies):
            await clone.aclose()
        if self._owns_hooks:
            await self._shared.hooks.aclose()
        if self._owns_transport:
            await self._shared.transport.aclose()

    def check_open(self) -> None:
        """Raise `ClientClosedError` once the session is closed."""
        self._guard.check()

    def check_loop(self) -> None:
        """Bind the session to the running loop on first use; refuse any other loop after.

        Its connections, locks and tasks belong to that loop: from another one they fail
        in ways that look like network errors (and would be retried).
        """
        shared = self._shared  # copies share their original's loop
        loop = asyncio.get_running_loop()
        if shared.loop is None:
            shared.loop = loop
        elif loop is not shared.loop:
            raise EventLoopError(
                "this client belongs to the event loop it was first used in, and this is "
                "another one: use and aclose() it in that loop, or make one client per "
                "loop (e.g. per asyncio.run)"
            )

    def server_time(self) -> tuple[float, float] | None:
        """The server's time now (its last ``Date`` header moved on by the local timer)
        and how far the local clock is off it (server minus local), in seconds; None
        until a response carried a usable ``Date``."""
        return self._shared.server_date.now()

    async def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (the injected sleep); `aclose` ends the wait with
        `ClientClosedError`."""
        await self._guard.run(self._shared.sleep(seconds))

    async def pause(self, attempt: int) -> None:
        """Wait the retry policy's back-off before attempt ``attempt + 1``."""
        await self.wait(self._retry.backoff(attempt, self._shared.rng))

    # --- one call: fetch -> _attempts -> Sender.send ---------------------------------------

    async def fetch(self, request: HttpRequest, parser: Parser[T]) -> T:
        """Send ``request`` (retrying by policy) and parse its response with ``parser``.

        A GET is idempotent and retried on anything transient; any other method is
        retried only when it provably did not reach the server, and its errors say
        when it may have landed (``record_may_exist``).
        """
        self.check_loop()
        if self._timeout is not None:  # the session's timeout wins over the request's
            request = _with_timeout(request, self._timeout)
        hooks = self._shared.hooks
        if hooks.around_call:  # else nobody listens: no wrapper
            with CallEvents(hooks, request, self._shared.timer) as call:
                return await self._attempts(request, parser, call)
        return await self._attempts(request, parser, None)

    async def _attempts(
        self, request: HttpRequest, parser: Parser[T], call: CallEvents | None
    ) -> T:
        """Attempts until one parses, the policy gives up, or the session closes."""
        shared = self._shared
        idempotent = request.method == "GET"
        started = shared.timer()
        attempt = 0
        while True:
            attempt += 1
            response: HttpResponse | None = None
            if call is not None:
                call.attempt = attempt
            try:
                response = await shared.send(
                    request, attempt, self._headers, self._guard, self._retry.deadline, started
                )
                if call is not None:
                    call.status = response.status
                return parser(response, request, codes=shared.codes, now=shared.clock())
            except SenseLinkError as error:
                delay = self._after_error(error, response, request, attempt, started, idempotent)
            await self._guard.run(shared.sleep(delay), request)
            self._guard.check()

    # --- after a failed attempt ------------------------------------------------------------

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
        # A create already handed to the transport may have landed.
        landed = not idempotent and (error.record_may_exist or verdict.may_have_landed)
        if self._guard.closed:
            raise ClientClosedError(
                "the client was closed during the call",
                request=request.info(),
                record_may_exist=landed,
            ) from None
        if error.request is None:
            error.request = request.info()
        if not idempotent and verdict.may_have_landed:
            error.record_may_exist = True
        delay = self._next_delay(error, attempt, started, verdict.retry)
        if delay is None:
            raise error
        self._retrying(error, request, attempt, delay)
        return delay

    def _next_delay(
        self, error: SenseLinkError, attempt: int, started: float, retry: bool
    ) -> float | None:
        policy = self._retry
        if attempt >= policy.max_attempts or not retry:
            return None
        delay = policy.delay(error, attempt, self._shared.rng)
        if delay is None:
            return None
        if policy.deadline is not None and self._shared.timer() - started + delay > policy.deadline:
            return None
        return delay

    def _retrying(
        self, error: SenseLinkError, request: HttpRequest, attempt: int, delay: float
    ) -> None:
        """Log the retry at INFO and emit its ``retry`` event."""
        logger.info(
            "%s %s retry attempt=%d in %.3fs after %s",
            request.method,
            request.path,
            attempt + 1,
            delay,
            type(error).__name__,
        )
        hooks = self._shared.hooks
        if hooks.wants("retry"):
            name = type(error).__name__
            hooks.emit(
                call_event(
                    "retry",
                    request,
                    attempt,
                    status=getattr(error, "status", None),
                    delay=delay,
                    error=f"{name}: {error.message}",
                    headers=error.headers,
                    error_type=name,
                )
            )


def _from_response(error: SenseLinkError, response: HttpResponse) -> None:
    """Give an error made from ``response`` its headers, request id and status."""
    error.headers = seen_headers(response.headers)
    error.request_id = find_request_id(response.headers)
    if isinstance(error, ResponseError) and error.status is None:
        error.status = response.status


def _checked_retry(retry: RetryPolicy) -> RetryPolicy:
    if not isinstance(retry, RetryPolicy):
        raise ValidationError("retry must be a RetryPolicy", field="retry")
    return retry


def _with_timeout(request: HttpRequest, timeout: Timeout) -> HttpRequest:
    return make_request(
        request.method, request.url, request.params, request.headers, request.content, timeout
    )
