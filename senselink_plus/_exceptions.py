"""The errors senselink-plus raises.

```
SenseLinkError
├── ValidationError (also ValueError)   bad input; nothing was sent
├── ClientClosedError                   the client was closed
├── EventLoopError                      used from an event loop other than its own
├── TransportError                      the request may or may not have reached the server
│   ├── ConnectError                    it did not: any call is safe to retry
│   └── RequestTimeout                  no answer in time
├── ResponseError                       the response could not be understood
│   └── RedirectError                   a 3xx answer: redirects are never followed
└── APIError                            the service refused (code, message, desc, status)
    ├── AuthenticationError             bad key, bad sign, stale timestamp, API not allowed
    ├── InvalidParameterError           30001 "Param Invalid"
    ├── NoFaceDetectedError             30003 "No Face Detected In The Image"
    ├── NotFoundError                   unknown image id or path
    ├── RateLimitError                  too many requests (retry_after, when the server says)
    └── ServerError                     the service failed (5xx or a server-error envelope)
```

Every error raised for a request carries ``request`` (a `RequestInfo`: method, path
and the non-secret query parameters) and says it in its message. An error made from a
response also carries its ``headers`` and, when the service sent one (``X-Request-Id``
and the like), its ``request_id``. No error ever holds
the app secret, a sign, or image bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

import attrs

__all__ = [
    "APIError",
    "AuthenticationError",
    "ClientClosedError",
    "ConnectError",
    "EventLoopError",
    "InvalidParameterError",
    "NoFaceDetectedError",
    "NotFoundError",
    "RateLimitError",
    "RedirectError",
    "RequestInfo",
    "RequestTimeout",
    "ResponseError",
    "SenseLinkError",
    "ServerError",
    "TransportError",
    "ValidationError",
]

#: A query string as ordered pairs.
Params = tuple[tuple[str, str], ...]


@attrs.frozen
class RequestInfo:
    """The non-secret description of a request that every error carries."""

    method: str
    path: str
    params: Params = ()

    def __str__(self) -> str:
        query = f"?{urlencode(self.params)}" if self.params else ""
        return f"{self.method} {self.path}{query}"


_MAY_EXIST = (
    "the record may have been created: create_record is not retried once a request "
    "may have reached the server; list records to check before uploading again"
)


class SenseLinkError(Exception):
    """Base class of every error senselink-plus raises.

    ``request`` says what was asked; ``record_may_exist`` is True only for a failed
    `create_record` whose request may have reached the server. For an error made from a
    response, ``headers`` are that response's headers (case-insensitive) and
    ``request_id`` the service's id for the request, when it sent one (else None).

    Constructed as ``SenseLinkError(message, *, request=None, record_may_exist=False)``
    (every subclass too, unless its own docstring says otherwise), e.g. to raise one from
    a test double.
    """

    headers: Mapping[str, str] | None = None
    request_id: str | None = None

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo | None = None,
        record_may_exist: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.record_may_exist = record_may_exist

    def __str__(self) -> str:
        text = self.message
        if self.request is not None:
            text = f"{text} [{self.request}]"
        if self.request_id is not None:
            text = f"{text} [request id {self.request_id}]"
        if self.record_may_exist:
            text = f"{text}; {_MAY_EXIST}"
        return text


class ValidationError(SenseLinkError, ValueError):
    """An argument is invalid; nothing was sent. ``field`` names the argument.

    Constructed as ``ValidationError(message, *, field=None)``.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ClientClosedError(SenseLinkError):
    """The client was closed before or during the call."""


class EventLoopError(SenseLinkError):
    """The client was used from an event loop other than the one it was first used in.

    A client (its connections, its locks) belongs to one loop: make one per loop, e.g.
    one per `asyncio.run`. A programming error, never retried.
    """


class TransportError(SenseLinkError):
    """The exchange failed on the wire; the request may or may not have been processed."""


class ConnectError(TransportError):
    """No connection was made, so the server never saw the request: safe to retry."""


class RequestTimeout(TransportError):
    """No complete answer arrived in time."""


class ResponseError(SenseLinkError):
    """The response could not be understood (bad JSON, wrong shape, unexpected type).

    Constructed as ``ResponseError(message, *, request=None, status=None,
    record_may_exist=False)``.
    """

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo | None = None,
        status: int | None = None,
        record_may_exist: bool = False,
    ) -> None:
        super().__init__(message, request=request, record_may_exist=record_may_exist)
        self.status = status


class RedirectError(ResponseError):
    """The server answered with a redirect (HTTP 3xx), which is never followed.

    Following it would send the signed request (and a face image) wherever the
    ``Location`` points, perhaps over plain http. ``location`` is the target's origin
    (``scheme://host:port``, never its path or query), or None when the answer named a
    path on the same host or no target at all. Never retried.

    Constructed as ``RedirectError(message, *, request=None, status=None,
    location=None, record_may_exist=False)``.
    """

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo | None = None,
        status: int | None = None,
        location: str | None = None,
        record_may_exist: bool = False,
    ) -> None:
        super().__init__(message, request=request, status=status, record_may_exist=record_may_exist)
        self.location = location


class APIError(SenseLinkError):
    """The service refused the request.

    ``code``, ``message`` and ``desc`` come from the response envelope (``code`` is the
    HTTP status when there was none); ``status`` is the HTTP status.

    Constructed as ``APIError(message, *, code, status, desc=None, retry_after=None,
    request=None, record_may_exist=False)``, its subclasses too.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int,
        status: int,
        desc: str | None = None,
        retry_after: float | None = None,
        request: RequestInfo | None = None,
        record_may_exist: bool = False,
    ) -> None:
        super().__init__(message, request=request, record_may_exist=record_may_exist)
        self.code = code
        self.status = status
        self.desc = desc
        self.retry_after = retry_after

    def __str__(self) -> str:
        head = f"{self.code} {self.message!r}"
        if self.desc:
            head = f"{head} ({self.desc})"
        text = f"{head} [HTTP {self.status}]"
        if self.request is not None:
            text = f"{text} [{self.request}]"
        if self.request_id is not None:
            text = f"{text} [request id {self.request_id}]"
        if self.record_may_exist:
            text = f"{text}; {_MAY_EXIST}"
        return text


class AuthenticationError(APIError):
    """The credentials were refused (or the key may not call this API)."""


class InvalidParameterError(APIError):
    """30001: a parameter (or the photo's type) was refused."""


class NoFaceDetectedError(APIError):
    """30003: the service found no face in the image."""


class NotFoundError(APIError):
    """The image id (or path) does not exist."""


class RateLimitError(APIError):
    """Too many requests; ``retry_after`` is the wait in seconds the server asked for."""


class ServerError(APIError):
    """The service failed; GET calls retry it."""
