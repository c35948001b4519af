"""Response builders for `MockTransport` handlers: the service's three wire formats.

Every JSON answer is an envelope ``{"code", "message", "data"}`` (``code`` 200 is
success); a snapshot is raw image bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import orjson

from .._http import HttpResponse
from .._models import Record

__all__ = [
    "created_record_response",
    "error_response",
    "image_response",
    "record_page_response",
    "wire_record",
]

_JSON = "application/json"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: A tiny stand-in snapshot (a PNG signature and padding), enough for the client.
SAMPLE_IMAGE = _PNG_MAGIC + bytes(24)

_MESSAGES = {
    200: "OK",
    30001: "Param Invalid",
    30003: "No Face Detected In The Image",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _json(status: int, body: Any, headers: Mapping[str, str] | None) -> HttpResponse:
    return HttpResponse(status, {"content-type": _JSON, **(headers or {})}, orjson.dumps(body))


def wire_record(
    record_id: int,
    *,
    sn: str = "JKQ00009234",
    image_id: str | None = None,
    create_at: int = 1_700_000_000_000,
    user_id: int | None = None,
    verify_score: float | None = None,
    device_timestamp: int | None = None,
    timezone: str | None = "GMT+9:00",
    extend: str | None = None,
) -> dict[str, Any]:
    """One record as the listing sends it (``create_at`` in Unix milliseconds, as the
    emulator sends it; the service does not document the unit).

    >>> wire_record(1, user_id=42)["user_id"]
    42
    """
    return {
        "record_id": record_id,
        "sn": sn,
        "image_id": image_id if image_id is not None else f"img{record_id:021d}",
        "create_at": create_at,
        "user_id": user_id,
        "verify_score": verify_score,
        "device_timestamp": device_timestamp,
        "timezone": timezone,
        "extend": extend,
    }


def record_page_response(
    records: Iterable[Record | Mapping[str, Any]] = (),
    *,
    page_num: int = 1,
    page_size: int = 100,
    total: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """A page of ``GET /api/v1/plus/record``: ``data = {page_num, page_size, total, list}``.

    ``records`` are `Record`s or wire dicts (see `wire_record`); ``total`` defaults to
    the number given.

    >>> mock = MockTransport(lambda request: record_page_response([wire_record(1)]))
    """
    items = [
        attrs.asdict(record) if isinstance(record, Record) else dict(record) for record in records
    ]
    data = {
        "page_num": page_num,
        "page_size": page_size,
        "total": len(items) if total is None else total,
        "list": items,
    }
    return _json(200, {"code": 200, "message": "OK", "data": data}, headers)


def created_record_response(
    record_id: int = 1_000_001,
    image_id: str = "5fceef6e1ddb2800010d1409",
    *,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """The answer to ``POST /api/v1/plus/record``: ``data = {record_id, image_id}``.

    >>> mock = MockTransport(lambda request: created_record_response(7, "img7"))
    """
    data = {"record_id": record_id, "image_id": image_id}
    return _json(200, {"code": 200, "message": "OK", "data": data}, headers)


def error_response(
    code: int,
    message: str | None = None,
    *,
    status: int = 200,
    desc: str | None = None,
    retry_after: float | str | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """An error envelope ``{code, message, data: null[, desc]}`` with HTTP ``status``.

    The service sends business errors (30001, 30003) as HTTP 200 or 400 with the code
    in the envelope; ``retry_after`` adds a ``Retry-After`` header.

    >>> mock = MockTransport(lambda request: error_response(30003))
    >>> mock = MockTransport(lambda request: error_response(429, status=429, retry_after=2))
    """
    body: dict[str, Any] = {
        "code": code,
        "message": message if message is not None else _MESSAGES.get(code, "Error"),
        "data": None,
    }
    if desc is not None:
        body["desc"] = desc
    extra = dict(headers or {})
    if retry_after is not None:
        extra["retry-after"] = str(retry_after)
    return _json(status, body, extra)


def image_response(
    content: bytes = SAMPLE_IMAGE,
    *,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """The answer to ``GET /api/v1/plus/image/{image_id}``: the raw JPEG or PNG bytes.

    ``content_type`` defaults to ``image/png`` or ``image/jpeg`` by the bytes.

    >>> mock = MockTransport(lambda request: image_response(sample_image("alice")))
    """
    if content_type is None:
        content_type = "image/png" if content.startswith(_PNG_MAGIC) else "image/jpeg"
    return HttpResponse(200, {"content-type": content_type, **(headers or {})}, content)
