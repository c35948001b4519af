"""The request loop: sign each attempt, send it, retry by policy, parse, and let
`aclose` interrupt calls in flight."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import weakref
from collections.abc import Awaitable, Callable
from datetime import timezone
from typing import Any, TypeVar

from . import _endpoints as ep
from ._auth import Credentials, sign_request
from ._events import Event, HookRunner
from ._exceptions import (
    APIError,
    ClientClosedError,
    ConnectError,
    RateLimitError,
    RequestTimeout,
    ResponseError,
    SenseLinkError,
    ServerError,
    TransportError,
)
from ._http import HttpRequest, HttpResponse
from ._limits import RateLimiter
from ._models import RecordPage
from ._retry import RetryPolicy, is_retryable
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
    #: The last ``Date`` header parsed: (raw value, server epoch, local timer, local clock).
    _server_date: tuple[str, float, float, float] | None = None

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("the client is closed")

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

    async def _call(self, request: HttpRequest, parser: Callable[..., T], *, idempotent: bool) -> T:
        started = self._timer()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._attempt(request, attempt, started)
                return self._parse(parser, response, request)
            except SenseLinkError as error:
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
                logger.debug(
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
        if self._hooks.wants("request"):
            self._hooks.emit(
                Event("request", request.method, request.path, attempt, request.info().params)
            )
        sent = self._timer()
        deadline = self.retry.deadline
        try:
            if deadline is None:
                response = await self._until_closed(
                    self._transport.send(signed), request, sending=True
                )
            else:
                remaining = deadline - (sent - started)
                if remaining <= 0:  # spent waiting for a turn: nothing was sent
                    raise ConnectError(
                        f"the call's deadline of {deadline}s passed before it was sent",
                        request=request.info(),
                    )
                response = await asyncio.wait_for(
                    self._until_closed(self._transport.send(signed), request, sending=True),
                    remaining,
                )
        except asyncio.TimeoutError:
            reason = "no answer in time" if deadline is None else f"deadline of {deadline}s passed"
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
                )
            )
        return response


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
