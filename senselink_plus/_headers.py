"""Headers: the User-Agent, checks on headers users add, and what is read from responses."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from ._checks import shown
from ._exceptions import ValidationError
from ._http import HttpResponse, make_response
from ._version import __version__

__all__ = [
    "REQUEST_ID_HEADERS",
    "USER_AGENT",
    "check_headers",
    "find_request_id",
    "seen_headers",
    "without_sign",
]

USER_AGENT = (
    f"senselink-plus/{__version__} python/{sys.version_info[0]}.{sys.version_info[1]} "
    f"aiohttp/{aiohttp.__version__}"
)

#: Response headers that name the request on the service's side, in order of preference.
REQUEST_ID_HEADERS = (
    "x-request-id",
    "x-amzn-requestid",
    "x-amz-request-id",
    "request-id",
    "x-trace-id",
    "x-correlation-id",
    "x-amzn-trace-id",
)

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Anything but visible ASCII, space and tab (RFC 9110 field-value, without obs-text):
#: aiohttp refuses other control characters only at send time, with a bare ValueError.
_BAD_VALUE = re.compile(r"[^\t\x20-\x7e]")
_SIGN = re.compile(r"(sign=)[^&\s'\"]*", re.IGNORECASE)
#: Headers the client sets from the request itself; a default would corrupt the request.
_RESERVED = frozenset({"content-length", "host", "transfer-encoding"})


def check_headers(value: object, field: str) -> dict[str, str]:
    """``value`` as headers to send (lower-case names): a mapping of str to str, with
    valid names, values of visible ASCII, spaces and tabs only (no control characters,
    no line breaks), and none the client sets itself."""
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"{field} must be a mapping of header names to values, not {shown(value)}",
            field=field,
        )
    headers: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
            raise ValidationError(f"{field}: {shown(name)} is not a header name", field=field)
        if not isinstance(text, str) or _BAD_VALUE.search(text) is not None:
            raise ValidationError(
                f"{field}[{name!r}] must be a str of visible ASCII characters, spaces and "
                "tabs (RFC 9110 field-value): no control characters or line breaks",
                field=field,
            )
        lower = name.lower()
        if lower in _RESERVED:
            raise ValidationError(f"{field}: {name} is set by the client", field=field)
        headers[lower] = text
    return headers


def seen_headers(headers: Mapping[str, str]) -> CIMultiDictProxy[str]:
    """A response's headers to hand to users (errors, events): a case-insensitive copy in
    which any ``sign=`` value is masked (a Location may echo the signed URL)."""
    copy: CIMultiDict[str] = CIMultiDict()
    for name, text in headers.items():
        copy.add(name, _SIGN.sub(r"\1***", text) if "sign=" in text.lower() else text)
    return CIMultiDictProxy(copy)


def without_sign(response: HttpResponse, sign: str) -> HttpResponse:
    """``response`` with the value of ``sign`` (the request's own, in any case) masked as
    ``***`` wherever it appears: body and header values.

    A server or proxy may echo the signed query anywhere (an envelope's message, a
    header as ``sign%3D...`` or ``sign: ...``); whatever is made from the response
    (errors, events, the CLI's error line) then never holds a valid sign. The sign is
    32 hex digits, so a match by chance is out of reach.
    """
    needle = sign.lower()
    raw = needle.encode("ascii")
    content = response.content
    dirty_body = raw in content.lower()
    dirty_headers = [name for name, text in response.headers.items() if needle in text.lower()]
    if not dirty_body and not dirty_headers:
        return response
    pattern = re.compile(re.escape(needle), re.IGNORECASE)
    if dirty_body:
        content = re.compile(re.escape(raw), re.IGNORECASE).sub(b"***", content)
    copy: CIMultiDict[str] = CIMultiDict()
    for name, text in response.headers.items():
        copy.add(name, pattern.sub("***", text) if dirty_headers else text)
    return make_response(response.status, CIMultiDictProxy(copy), content)


def find_request_id(headers: Mapping[str, str]) -> str | None:
    """The service's id for the request, from the usual headers (case-insensitive)."""
    lowered = {name.lower(): text for name, text in headers.items()}
    for name in REQUEST_ID_HEADERS:
        text = lowered.get(name)
        if text:
            return text.strip()[:200]
    return None
