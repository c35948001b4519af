"""Plain values that cross the transport boundary: one request in, one response out."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs

from ._exceptions import Params, RequestInfo

if TYPE_CHECKING:
    from ._retry import Timeout

__all__ = [
    "AUTH_PARAMS",
    "HttpRequest",
    "HttpResponse",
    "Params",
    "RequestInfo",
    "make_request",
    "make_response",
]

_SECRET_PARAMS = frozenset({"sign"})

#: Query parameters added by signing; never part of an error's request context.
AUTH_PARAMS = frozenset({"app_key", "timestamp", "sign"})


_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


def _to_params(value: Iterable[tuple[str, str]] | Mapping[str, str]) -> Params:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple((str(k), str(v)) for k, v in items)


def _to_headers(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> Mapping[str, str]:
    items = value.items() if isinstance(value, Mapping) else value
    return {str(k).lower(): str(v) for k, v in items}


def _redacted_params(params: Params) -> str:
    shown = tuple((k, "***" if k in _SECRET_PARAMS else v) for k, v in params)
    return repr(shown)


_SIGN = re.compile(r"(sign=)[^&\s'\"]*", re.IGNORECASE)


def _headers_repr(headers: Mapping[str, str]) -> str:
    # A redirect's Location (or any header a server fills in) may echo the signed query.
    try:
        items = dict(headers.items())
    except Exception:
        return "<headers>"
    return _SIGN.sub(r"\1***", repr(items))


def _content_repr(content: bytes | None) -> str:
    return "None" if content is None else f"<{len(content)} bytes>"


@attrs.frozen
class HttpRequest:
    """One HTTP request as the client hands it to a transport.

    ``params`` is the query string as ordered pairs; ``content`` the raw body. The repr
    hides the ``sign`` parameter and shows the body as a length only. ``timeout``, when
    set (a per-call or `Client.with_options` timeout), is the limit for this request;
    `AiohttpTransport` applies it, and the client bounds the attempt's total by it for
    any transport.

    >>> HttpRequest("GET", "https://example.test/api", params={"page": "1"})
    HttpRequest(method='GET', url='https://example.test/api', params=(('page', '1'),), ...)
    """

    method: str
    url: str
    params: Params = attrs.field(default=(), converter=_to_params, repr=_redacted_params)
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_to_headers)
    content: bytes | None = attrs.field(default=None, repr=_content_repr)
    timeout: Timeout | None = attrs.field(default=None, repr=False)

    @property
    def path(self) -> str:
        """The URL's path, e.g. ``/api/v1/plus/record``."""
        return urlsplit(self.url).path

    def info(self) -> RequestInfo:
        """What this request asked, without auth parameters or body."""
        kept = tuple(p for p in self.params if p[0] not in AUTH_PARAMS)
        return RequestInfo(self.method, self.path, kept)


@attrs.frozen
class HttpResponse:
    """One HTTP response as a transport returns it; ``headers`` answer lower-case names
    (names given here are lower-cased; `AiohttpTransport` hands over aiohttp's
    case-insensitive headers as they are).

    >>> HttpResponse(200, {"Content-Type": "image/jpeg"}, b"...").content_type
    'image/jpeg'
    """

    status: int
    headers: Mapping[str, str] = attrs.field(
        factory=dict, converter=_to_headers, repr=_headers_repr
    )
    content: bytes = attrs.field(default=b"", repr=_content_repr)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased ('' when absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def make_request(
    method: str,
    url: str,
    params: Params = (),
    headers: Mapping[str, str] = _NO_HEADERS,
    content: bytes | None = None,
    timeout: Timeout | None = None,
) -> HttpRequest:
    """An `HttpRequest` from values already in normal form (str pairs, lower-case header
    names), skipping the converters: every request the client sends is built here, so
    this is on the hot path."""
    request = object.__new__(HttpRequest)
    set_field = object.__setattr__
    set_field(request, "method", method)
    set_field(request, "url", url)
    set_field(request, "params", params)
    set_field(request, "headers", headers)
    set_field(request, "content", content)
    set_field(request, "timeout", timeout)
    return request


def make_response(status: int, headers: Mapping[str, str], content: bytes) -> HttpResponse:
    """An `HttpResponse` whose ``headers`` already look up case-insensitively
    (aiohttp's CIMultiDictProxy), skipping the converter on the hot path."""
    response = object.__new__(HttpResponse)
    set_field = object.__setattr__
    set_field(response, "status", status)
    set_field(response, "headers", headers)
    set_field(response, "content", content)
    return response
