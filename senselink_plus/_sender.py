"""`Sender`: what a session shares with its copies, and the one step done with all of it:
send one attempt of a call."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping

import attrs

from ._auth import Credentials, sign_request
from ._close_guard import CloseGuard
from ._events import HookRunner, call_event
from ._exceptions import ConnectError, RequestTimeout, TransportError
from ._headers import seen_headers, without_sign
from ._http import HttpRequest, HttpResponse, make_request
from ._limits import RateLimiter
from ._server_date import ServerDate
from ._transport import Transport
from ._wire import ErrorCodes

__all__ = ["Sender"]

logger = logging.getLogger("senselink_plus")


@attrs.define(eq=False, repr=False)  # its repr would be every shared part
class Sender:
    """Sends one attempt: waits for the rate limit and a concurrency slot, signs it
    afresh, runs the ``"headers"`` hooks, sends it through the transport, notes the
    server's clock, logs it and emits its ``request`` and ``response`` events.

    A session and its copies share one, on purpose: the transport and credentials, the
    caps, the hooks, time and randomness, the server's clock and the event loop they
    belong to (``loop``, bound on first use). What differs per copy (headers, deadline,
    close guard) comes with each attempt.
    """

    credentials: Credentials
    transport: Transport
    codes: ErrorCodes
    semaphore: asyncio.Semaphore | None
    limiter: RateLimiter | None
    hooks: HookRunner
    clock: Callable[[], float]
    timer: Callable[[], float]
    sleep: Callable[[float], Awaitable[object]]
    rng: random.Random
    server_date: ServerDate
    loop: asyncio.AbstractEventLoop | None = None

    async def send(
        self,
        request: HttpRequest,
        attempt: int,
        headers: Mapping[str, str],
        guard: CloseGuard,
        deadline: float | None,
        started: float,
    ) -> HttpResponse:
        """Attempt ``attempt`` of ``request``, with ``headers`` under its own, once the
        rate limit and a concurrency slot allow it; bounded by its timeout and by
        ``deadline`` seconds from ``started`` (the call's start, on ``timer``);
        interrupted when ``guard`` closes."""
        if self.limiter is not None:
            await self.limiter.acquire()
        guard.check()
        semaphore = self.semaphore
        if semaphore is not None:  # as `async with`, without two more coroutines a call
            await semaphore.acquire()
        try:
            guard.check()
            signed = self._signed(request, attempt, headers)
            sent = self.timer()
            limit, on_timeout = _limit(request, deadline, sent - started)
            sending = guard.run(self.transport.send(signed), request, sending=True)
            try:
                response = await (sending if limit is None else asyncio.wait_for(sending, limit))
            except asyncio.TimeoutError:  # caught before OSError: on 3.11+ it is one
                raise RequestTimeout(on_timeout, request=request.info()) from None
            except OSError as exc:  # a custom transport that lets a socket error through
                raise TransportError(f"transport failure: {type(exc).__name__}: {exc}") from None
            response = without_sign(response, _sign_of(signed))
            self.server_date.note(response.headers.get("date"))
            self._received(request, response, attempt, self.timer() - sent)
            return response
        finally:
            if semaphore is not None:
                semaphore.release()

    def _signed(
        self, request: HttpRequest, attempt: int, headers: Mapping[str, str]
    ) -> HttpRequest:
        """``request`` with a fresh timestamp and sign (the server refuses stale ones)
        and ``headers`` under its own, in one new request; then the ``"headers"`` hooks
        run (inline, after signing: theirs go under both) and ``request`` is emitted."""
        signed = sign_request(
            request,
            self.credentials,
            int(self.clock() * 1000),
            headers={**headers, **request.headers} if headers else None,
        )
        hooks = self.hooks
        if not hooks.before_attempt:
            return signed
        event = call_event("request", request, attempt)
        added = hooks.headers_for(event)
        hooks.emit(event)
        if not added:
            return signed
        return make_request(
            signed.method,
            signed.url,
            signed.params,
            {**added, **signed.headers},
            signed.content,
            signed.timeout,
        )

    def _received(
        self, request: HttpRequest, response: HttpResponse, attempt: int, elapsed: float
    ) -> None:
        """Log an attempt's response at DEBUG and emit its ``response`` event."""
        if logger.isEnabledFor(logging.DEBUG):  # the arguments cost more than the check
            logger.debug(
                "%s %s status=%d attempt=%d elapsed_ms=%.1f bytes=%d",
                request.method,
                request.path,
                response.status,
                attempt,
                elapsed * 1000,
                len(response.content),
            )
        if self.hooks.after_attempt:
            headers = seen_headers(response.headers)
            self.hooks.emit(
                call_event(
                    "response",
                    request,
                    attempt,
                    status=response.status,
                    elapsed=elapsed,
                    headers=headers,
                )
            )


def _limit(request: HttpRequest, deadline: float | None, spent: float) -> tuple[float | None, str]:
    """The seconds an attempt may take (None: no bound but the transport's) after
    ``spent`` seconds of its call, and what a timeout then means."""
    timeout = request.timeout
    if timeout is None:
        limit, reason = None, "no answer in time"
    else:
        limit, reason = timeout.total, f"no answer within the timeout of {timeout.total}s"
    if deadline is None:
        return limit, reason
    remaining = deadline - spent
    if remaining <= 0:  # spent waiting for a turn: nothing was sent
        raise ConnectError(
            f"the call's deadline of {deadline}s passed before it was sent",
            request=request.info(),
        )
    if limit is None or remaining < limit:
        return remaining, f"deadline of {deadline}s passed"
    return limit, reason


def _sign_of(signed: HttpRequest) -> str:
    """The sign `sign_request` put on ``signed`` (its last query parameter)."""
    return signed.params[-1][1]
