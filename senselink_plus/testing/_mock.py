"""A transport that answers from a function: the client's tests need no network."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from .._http import HttpRequest, HttpResponse

__all__ = ["MockTransport"]

Handler = Callable[[HttpRequest], "HttpResponse | Awaitable[HttpResponse]"]


class MockTransport:
    """Send each request to ``handler`` (sync or async) and remember it.

    ``MockTransport(handler)``: ``handler`` takes an `HttpRequest` and returns an
    `HttpResponse` (or an awaitable of one); the response builders of
    ``senselink_plus.testing`` make the service's answers. The handler may raise a
    `TransportError` to simulate a failure on the wire. ``requests`` lists the requests
    seen, oldest first; ``closed`` is True after `aclose`.

    >>> mock = MockTransport(lambda request: HttpResponse(200, content=b'{"code":200}'))
    >>> client = Client("key", "secret", transport=mock)  # doctest: +SKIP
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[HttpRequest] = []
        self.closed = False

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Record ``request`` and answer it with the handler."""
        self.requests.append(request)
        result = self.handler(request)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def aclose(self) -> None:
        """Mark the transport closed (``closed`` becomes True)."""
        self.closed = True
