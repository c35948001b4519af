"""The emulator's side of the wire: the auth check and the responses it builds."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

from ._emulator_faults import Fault

__all__ = [
    "MESSAGES",
    "check_auth",
    "drop_connection",
    "error_response",
    "expected_sign",
    "fault_response",
    "gmt_offset",
    "ok_response",
]

#: Envelope messages by code, as the cloud words them.
MESSAGES = {
    200: "OK",
    30001: "Param Invalid",
    30003: "No Face Detected In The Image",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
# The HTTP status of business codes when errors use their natural status.
_NATURAL_STATUS = {30001: 400, 30003: 400}
_DIGITS = re.compile(r"\d{1,19}", re.ASCII)
# What a truncated response looks like: valid start, cut off mid-key.
MALFORMED_BODY = b'{"code": 200, "message": "OK", "data": {"rec'


def message_for(code: int) -> str:
    """The cloud's message for ``code``, else the HTTP reason phrase."""
    if code in MESSAGES:
        return MESSAGES[code]
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error"


def natural_code(status: int) -> int:
    """The envelope code an injected HTTP error ``status`` carries when none is given."""
    return 30001 if status == 400 else status


def natural_status(code: int) -> int:
    """The HTTP status an error envelope with ``code`` carries when not forced to one."""
    return _NATURAL_STATUS.get(code, code if 400 <= code <= 599 else 400)


def gmt_offset(moment: datetime) -> str | None:
    """The cloud's timezone notation for an aware datetime: ``GMT+9:00``, ``GMT-3:30``."""
    offset = moment.utcoffset()
    if offset is None:
        return None
    minutes = offset // timedelta(minutes=1)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"GMT{sign}{hours}:{rest:02d}"


def check_auth(
    query: Mapping[str, str], *, app_key: str, app_secret: str, now_ms: int, max_skew_ms: int
) -> str | None:
    """Why the ``app_key`` / ``timestamp`` / ``sign`` parameters are refused, or None."""
    key, stamp, sign = query.get("app_key"), query.get("timestamp"), query.get("sign")
    missing = [
        name
        for name, value in (("app_key", key), ("timestamp", stamp), ("sign", sign))
        if not value
    ]
    if missing:
        return f"missing auth parameter(s): {', '.join(missing)}"
    assert stamp is not None
    assert sign is not None
    if key != app_key:
        return "unknown app_key"
    if _DIGITS.fullmatch(stamp) is None:
        return "timestamp must be Unix milliseconds (digits only)"
    skew = abs(int(stamp) - now_ms)
    if skew > max_skew_ms:
        return f"timestamp is {skew} ms away from the server clock; the limit is {max_skew_ms}"
    given = sign.encode("utf-8", "surrogatepass")
    if not hmac.compare_digest(given, expected_sign(stamp, app_secret).encode()):
        return "sign does not match"
    return None


def expected_sign(timestamp: str, app_secret: str) -> str:
    """The sign the cloud expects, computed here from the spec (not with the client's
    code, so a mistake there is caught): lowercase hex MD5 of ``timestamp#app_secret``.

    >>> expected_sign("1477881215000", "2323dsfadfewrasa3434")
    'e5ef72ef839bdf5397b4906b199b9fbf'
    """
    digest = hashlib.new("md5", usedforsecurity=False)
    digest.update(timestamp.encode("ascii"))
    digest.update(b"#")
    digest.update(app_secret.encode("utf-8"))
    return digest.hexdigest()


def ok_response(data: Any) -> web.Response:
    """A success envelope (code 200, message OK) around ``data``."""
    body = orjson.dumps({"code": 200, "message": "OK", "data": data})
    return web.Response(body=body, content_type="application/json")


def error_response(
    code: int,
    desc: str | None,
    *,
    status: int,
    message: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An error envelope ``{code, message, data: null, desc}`` with HTTP ``status``."""
    envelope: dict[str, Any] = {"code": code, "message": message or message_for(code), "data": None}
    if desc is not None:
        envelope["desc"] = desc
    return web.Response(
        status=status, body=orjson.dumps(envelope), content_type="application/json", headers=headers
    )


def drop_connection(request: web.Request) -> web.Response:
    """Close the socket with nothing written, as a crashed proxy would."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=204)  # aiohttp discards it: the socket is gone


def fault_response(request: web.Request, fault: Fault) -> web.Response:
    """What an injected fault sends back (for a drop: nothing, the socket is closed)."""
    if fault.kind == "drop":
        return drop_connection(request)
    if fault.kind == "malformed":
        return web.Response(body=MALFORMED_BODY, content_type="application/json")
    if fault.kind == "envelope":
        code = fault.code if fault.code is not None else 500
        return error_response(code, "injected fault", status=200, message=fault.message)
    # Without an explicit code, the envelope echoes the status (400 reads as 30001).
    code = fault.code if fault.code is not None else natural_code(fault.status)
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
    return error_response(
        code, "injected fault", status=fault.status, message=fault.message, headers=headers
    )
