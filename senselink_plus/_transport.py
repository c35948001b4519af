"""Transports send one request and return one response; `AiohttpTransport` is the default."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import aiohttp

from ._checks import check_int
from ._exceptions import ConnectError, EventLoopError, RequestTimeout, TransportError
from ._http import HttpRequest, HttpResponse, make_response
from ._retry import Timeout, TimeoutInput, to_timeout

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "AiohttpTransport", "Transport"]

#: The largest response body read (a snapshot is at most 1 MiB, a page of 100 records
#: about 40 KB); a bigger one is refused so a misbehaving server cannot exhaust memory.
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
MAX_RESPONSE_LIMIT = 2**40


class _TooLarge(aiohttp.ClientPayloadError):
    """A response body over the configured limit."""


@runtime_checkable
class Transport(Protocol):
    """Send one request and return its response, or raise a `TransportError`.

    A transport never retries, signs or parses: the client does. Any object with these
    two methods works (``senselink_plus.testing.MockTransport`` is one): a
    `typing.Protocol`, nothing to construct or inherit. Pass it as
    ``Client(transport=...)``; the client never closes a transport passed in.
    """

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` once; return the response or raise a `TransportError`."""
        ...

    async def aclose(self) -> None:
        """Release what the transport holds (connections, sessions it made)."""
        ...


class AiohttpTransport:
    """The default transport, on an `aiohttp.ClientSession`.

    ``AiohttpTransport(session=None, *, timeout=None, ssl_context=None,
    max_response_bytes=16 MiB)``:

    - ``session``: an `aiohttp.ClientSession` of yours. Without one it makes its own
      inside the running event loop on first use and closes it in `aclose`. A session
      passed in is the caller's: it is never closed here.
    - ``timeout`` (a `Timeout` or seconds; default ``Timeout()``) applies to every
      request, unless the request carries its own (``HttpRequest.timeout``).
    - ``ssl_context``: the `ssl.SSLContext` for the session it makes (default: aiohttp's
      verified default). A session passed in keeps its own TLS settings.
    - ``max_response_bytes``: bodies over it fail as a `TransportError`.

    Redirects are never followed (a 3xx is handed to the client, which raises
    `RedirectError`).

    >>> async with aiohttp.ClientSession() as session:  # doctest: +SKIP
    ...     client = Client(transport=AiohttpTransport(session))
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        timeout: TimeoutInput | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._max_response_bytes = check_int(
            max_response_bytes, "max_response_bytes", maximum=MAX_RESPONSE_LIMIT
        )
        self._session = session
        self._owns_session = session is None
        self._ssl = ssl_context
        timeout = Timeout() if timeout is None else to_timeout(timeout)
        self._timeout = aiohttp.ClientTimeout(total=timeout.total, sock_connect=timeout.connect)
        self._per_request: dict[str, Any] = {} if session is None else {"timeout": self._timeout}
        self._closed = False
        #: The loop our own session was made in; a caller's session is theirs to mind.
        self._loop: asyncio.AbstractEventLoop | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ConnectError("the transport is closed: nothing was sent")
        loop = asyncio.get_running_loop()
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True)
            # The session decodes no JSON and keeps no cookies: the client parses bodies
            # itself and the API is stateless.
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), timeout=self._timeout
            )
            self._loop = loop
        elif self._loop is not None and loop is not self._loop:
            raise EventLoopError(
                "this transport's aiohttp session belongs to the event loop it was first "
                "used in, not this one: make one transport (and client) per event loop"
            )
        if self._session.closed:  # a caller's session, closed under us
            raise ConnectError("the aiohttp session is closed: nothing was sent")
        return self._session

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` with aiohttp; map aiohttp's failures to `TransportError`s.

        Redirects are not followed: a 3xx comes back as it is (the client raises
        `RedirectError` for it), so the signed request and the image go nowhere else.
        """
        session = self._get_session()
        try:
            status, headers, content = await self._exchange(session, request)
            return make_response(status, headers, content)
        except aiohttp.ConnectionTimeoutError as exc:
            error: TransportError = ConnectError(f"timed out connecting: {_describe(exc)}")
        except aiohttp.ClientConnectorError as exc:
            error = ConnectError(f"cannot connect: {_describe(exc)}")
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            error = RequestTimeout(f"no answer in time: {_describe(exc)}")
        except aiohttp.ServerDisconnectedError as exc:
            error = TransportError(f"the server closed the connection: {_describe(exc)}")
        except (aiohttp.ClientError, OSError) as exc:
            error = TransportError(f"transport failure: {_describe(exc)}")
        # Raised outside the except blocks so the aiohttp exception, whose request_info
        # holds the signed URL, is neither the cause nor the context of ours; and no
        # frame on our traceback holds the aiohttp response (its repr has the signed URL).
        try:
            raise error
        finally:
            # Python 3.10 steps a task from inside the except block that caught its
            # future's exception (aiohttp's, here): the raise above takes that as context.
            error.__context__ = None

    async def _exchange(
        self, session: aiohttp.ClientSession, request: HttpRequest
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One exchange as plain values; the aiohttp response never leaves this frame."""
        # Our own session carries the timeout (a per-request one costs ~10 µs); a
        # caller's session gets ours on each request.
        extra = self._per_request
        if request.timeout is not None:  # a per-call or with_options timeout
            limits = request.timeout
            extra = {
                **extra,
                "timeout": aiohttp.ClientTimeout(total=limits.total, sock_connect=limits.connect),
            }
        async with session.request(
            request.method,
            request.url,
            params=request.params,
            headers=request.headers,
            data=request.content,
            allow_redirects=False,
            **extra,
        ) as response:
            return response.status, response.headers, await self._read(response)

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self._max_response_bytes
        declared = response.content_length
        if declared is not None and declared > limit:
            raise _TooLarge(f"the response declares {declared} bytes; the limit is {limit}")
        if declared is not None and "content-encoding" not in response.headers:
            # Not compressed, so the declared length (within the limit) is what is read.
            return await response.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(65536):
            size += len(chunk)
            if size > limit:
                raise _TooLarge(f"the response exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        """Close the session if this transport made it; a caller's session stays open."""
        self._closed = True
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()


_SIGN = re.compile(r"(sign=)[^&\s'\"]*", re.IGNORECASE)


def _describe(exc: BaseException) -> str:
    # aiohttp's messages can hold the full URL, whose query has the sign; the original
    # exception is not chained for the same reason.
    text = _SIGN.sub(r"\1***", str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
