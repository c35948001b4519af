"""Pure request builders and response parsers for the three Record Plus endpoints.

No I/O and no awaits: arguments go in, an `HttpRequest` comes out (or a
`ValidationError`, before anything is sent); an `HttpResponse` goes in, a model comes
out (or a typed error).
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Union
from urllib.parse import quote

import orjson

from ._checks import check_int, check_text, shown
from ._exceptions import ResponseError, ValidationError
from ._http import HttpRequest, HttpResponse, make_request
from ._models import (
    MAX_EXTEND_BYTES,
    CreatedRecord,
    FaceImage,
    Order,
    RecordPage,
    Rectangle,
    image_type,
)
from ._timeutil import (
    MAX_WINDOW,
    ceil_second,
    floor_second,
    gmt_label,
    local_label,
    real_span,
    to_aware,
    to_wire_time,
)
from ._wire import DEFAULT_ERROR_CODES, ErrorCodes, parse_envelope, structure

__all__ = [
    "IMAGE_PATH",
    "RECORD_PATH",
    "build_create_record",
    "build_get_image",
    "build_list_records",
    "parse_created_record",
    "parse_image",
    "parse_record_page",
    "window_bounds",
]

RECORD_PATH = "/api/v1/plus/record"
IMAGE_PATH = "/api/v1/plus/image/"
MAX_PAGE_SIZE = 100
#: The largest page number sent (a signed 32-bit integer).
MAX_PAGE = 2**31 - 1
#: The largest int the create call's ``timestamp`` may be (a signed 64-bit integer).
MAX_TIMESTAMP = 2**63 - 1

ImageInput = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", FaceImage]
TimeInput = datetime | str

_JSON_HEADERS: Mapping[str, str] = MappingProxyType({"content-type": "application/json"})


def _url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


# --- argument checks -----------------------------------------------------------------


def check_sn(sn: object, field: str = "sn") -> str:
    return check_text(sn, field)


def check_order(order: object) -> Order:
    if order is Order.ASCENDING or order is Order.DESCENDING:
        return order
    if isinstance(order, bool) or not isinstance(order, int):
        raise ValidationError(
            f"order must be Order.ASCENDING or Order.DESCENDING, not {shown(order)}",
            field="order",
        )
    try:
        return Order(order)
    except ValueError:
        raise ValidationError(
            f"order is {shown(order)}; it must be 0 (descending) or 1 (ascending)",
            field="order",
        ) from None


def check_page_size(size: object, field: str = "size") -> int:
    return check_int(size, field, maximum=MAX_PAGE_SIZE)


def _face_image(image: object, rectangle: Rectangle | Mapping[str, int] | None) -> FaceImage:
    rect = _rectangle(rectangle)
    if isinstance(image, FaceImage):
        return image if rect is None else FaceImage(image.data, rect)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return FaceImage(bytes(image), rect)
    if isinstance(image, (str, os.PathLike)):
        return FaceImage.from_path(image, rectangle=rect)
    raise ValidationError(
        f"image must be bytes, a path or a FaceImage, not {type(image).__name__}", field="image"
    )


def _rectangle(value: object) -> Rectangle | None:
    if value is None or isinstance(value, Rectangle):
        return value
    if isinstance(value, Mapping):
        try:
            return Rectangle(**value)
        except TypeError:
            raise ValidationError(
                "rectangle needs exactly top, left, width and height", field="rectangle"
            ) from None
    raise ValidationError(
        f"rectangle must be a Rectangle, not {type(value).__name__}", field="rectangle"
    )


def check_threshold(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(
            f"threshold must be a number in [0, 1], not {type(value).__name__}", field="threshold"
        )
    # Compared before any float conversion: an int too large for a float is just out of
    # range, and NaN fails every comparison.
    if not 0.0 <= value <= 1.0:
        raise ValidationError(
            f"threshold is {shown(value)}; it must be in [0, 1]", field="threshold"
        )
    return float(value)


#: How deep `_refuse_non_finite` looks; orjson itself refuses nesting past 255 levels.
_MAX_EXTEND_DEPTH = 256


def _refuse_non_finite(value: object, where: str, depth: int = 0) -> None:
    """Refuse NaN and infinities anywhere in ``value``: orjson would send them as null."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(
                f"{where} is {value!r}; JSON has no NaN or infinity (send a string or null)",
                field="extend",
            )
        return
    if depth >= _MAX_EXTEND_DEPTH or isinstance(value, (str, bytes)):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _refuse_non_finite(item, f"{where}[{shown(key, 40)}]", depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _refuse_non_finite(item, f"{where}[{index}]", depth + 1)


def encode_extend(value: object) -> str:
    """The ``extend`` JSON string: a mapping is serialised compactly; a string must be JSON."""
    if isinstance(value, str):
        try:
            orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValidationError(
                "extend is a string but not valid JSON; pass a dict or a JSON string",
                field="extend",
            ) from None
        text = value
    elif isinstance(value, Mapping):
        _refuse_non_finite(value, "extend")
        try:
            text = orjson.dumps(value if isinstance(value, dict) else dict(value)).decode()
        except TypeError as exc:
            raise ValidationError(f"extend cannot be serialised: {exc}", field="extend") from None
    else:
        raise ValidationError(
            f"extend must be a dict or a JSON string, not {type(value).__name__}", field="extend"
        )
    size = len(text.encode())
    if size > MAX_EXTEND_BYTES:
        raise ValidationError(
            f"extend is {size} bytes; the limit is {MAX_EXTEND_BYTES}", field="extend"
        )
    return text


def _device_time(
    timestamp: datetime | int | None, timezone: str | None, now: datetime | int | None
) -> tuple[int, str | None]:
    if timestamp is None:
        if type(now) is int and now >= 0:
            # The client's own "now": unix seconds in the local zone, no datetime made.
            return now, timezone if timezone is not None else local_label(now)
        if now is None:
            raise ValidationError(
                "timestamp is None and no current time was given", field="timestamp"
            )
        timestamp = now
    if isinstance(timestamp, datetime):
        aware = to_aware(timestamp, "timestamp")  # 1970 or later, so never negative
        return int(aware.timestamp()), timezone if timezone is not None else gmt_label(aware)
    return _unix_seconds(timestamp), timezone


def _unix_seconds(timestamp: object) -> int:
    """An int ``timestamp`` as it is sent, once it is in the range the service reads."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise ValidationError(
            f"timestamp must be an aware datetime or an int, not {type(timestamp).__name__}",
            field="timestamp",
        )
    if timestamp < 0:
        raise ValidationError(
            f"timestamp is {shown(timestamp)}; it must be >= 0", field="timestamp"
        )
    if timestamp > MAX_TIMESTAMP:
        raise ValidationError(
            f"timestamp is {shown(timestamp)}; it must be <= {MAX_TIMESTAMP}", field="timestamp"
        )
    return timestamp


# --- create a record -----------------------------------------------------------------


def build_create_record(
    base_url: str,
    sn: str,
    image: ImageInput,
    *,
    now: datetime | int | None,
    timestamp: datetime | int | None = None,
    timezone: str | None = None,
    threshold: float | None = None,
    rectangle: Rectangle | Mapping[str, int] | None = None,
    extend: Mapping[str, Any] | str | None = None,
    process_mode: int | None = None,
) -> HttpRequest:
    """Build ``POST /api/v1/plus/record``; every argument is checked first.

    ``timestamp``: an aware datetime is sent as unix seconds and gives ``timezone``
    (``GMT+9:00``) when none is passed; an int is sent as given; None means ``now``
    (an aware datetime, or unix seconds labelled with the local zone's offset).
    """
    head: dict[str, Any] = {"sn": check_sn(sn)}
    face = _face_image(image, rectangle)
    if timezone is not None:
        check_text(timezone, "timezone")  # as the device sends it, e.g. GMT+9:00
    head["timestamp"], zone = _device_time(timestamp, timezone, now)
    if zone is not None:
        head["timezone"] = zone
    if threshold is not None:
        head["threshold"] = check_threshold(threshold)
    tail: dict[str, Any] = {}
    if process_mode is not None:
        if isinstance(process_mode, bool) or process_mode != 0:
            raise ValidationError(
                f"process_mode is {shown(process_mode)}; the service supports only 0 "
                "(asynchronous)",
                field="process_mode",
            )
        tail["process_mode"] = 0
    if extend is not None:
        tail["extend"] = encode_extend(extend)
    return make_request(
        "POST", _url(base_url, RECORD_PATH), (), _JSON_HEADERS, _create_body(head, face, tail)
    )


def _create_body(head: dict[str, Any], face: FaceImage, tail: dict[str, Any]) -> bytes:
    """The JSON body: ``head``'s members, ``image``, then ``tail``'s, written in one pass.

    The base64 text goes in as the bytes it is (its alphabet needs no JSON escaping):
    decoding it to a str only for orjson to scan and copy it back would cost more than
    the rest of the body for any real photo.
    """
    parts = [orjson.dumps(head)[:-1], b',"image":{"data":"', base64.b64encode(face.data), b'"']
    r = face.rectangle
    if r is not None:
        parts.append(b',"rectangle":')
        parts.append(
            orjson.dumps({"top": r.top, "left": r.left, "width": r.width, "height": r.height})
        )
    parts.append(b"}")
    if tail:
        parts.append(b"," + orjson.dumps(tail)[1:])
    else:
        parts.append(b"}")
    return b"".join(parts)


def parse_created_record(
    response: HttpResponse,
    request: HttpRequest,
    *,
    codes: ErrorCodes = DEFAULT_ERROR_CODES,
    now: float = 0.0,
) -> CreatedRecord:
    data = parse_envelope(response, request, codes=codes, now=now)
    return structure(data, CreatedRecord, request, response.status)


# --- list records --------------------------------------------------------------------


def window_bounds(time_from: TimeInput, time_to: TimeInput) -> tuple[datetime, datetime]:
    """The window as sent: ``time_from`` rounded down and ``time_to`` up to whole seconds."""
    start, end, _ = _window(time_from, time_to)
    return start, end


def _window(time_from: TimeInput, time_to: TimeInput) -> tuple[datetime, datetime, timedelta]:
    """`window_bounds` and the window's real length."""
    start = to_aware(time_from, "time_from")
    if start.microsecond:
        start = floor_second(start)
    end = ceil_second(to_aware(time_to, "time_to"))
    span = real_span(start, end)
    if span <= _ZERO:
        raise ValidationError(
            f"time_to {to_wire_time(end)} must be after time_from {to_wire_time(start)}",
            field="time_to",
        )
    return start, end, span


_ZERO = timedelta(0)


def build_list_records(
    base_url: str,
    time_from: TimeInput,
    time_to: TimeInput,
    *,
    sn: str | None = None,
    order: Order | int = Order.ASCENDING,
    page: int = 1,
    size: int = MAX_PAGE_SIZE,
) -> HttpRequest:
    """Build ``GET /api/v1/plus/record`` for one window of at most 24 hours."""
    start, end, span = _window(time_from, time_to)
    if span > MAX_WINDOW:
        raise ValidationError(
            f"the window {to_wire_time(start)} .. {to_wire_time(end)} is {span}; "
            f"one call may span at most {MAX_WINDOW} (use client.records() for longer ranges)",
            field="time_to",
        )
    sn_text = None if sn is None else check_sn(sn)
    order = check_order(order)
    page_text = str(check_int(page, "page", maximum=MAX_PAGE))
    size_text = str(check_page_size(size))
    window = (
        ("time_from", start.isoformat(timespec="seconds")),
        ("time_to", end.isoformat(timespec="seconds")),
    )
    rest = (("order", ORDER_TEXT[order]), ("page", page_text), ("size", size_text))
    if sn_text is not None:
        return make_request("GET", _url(base_url, RECORD_PATH), (*window, ("sn", sn_text), *rest))
    return make_request("GET", _url(base_url, RECORD_PATH), window + rest)


ORDER_TEXT = {Order.DESCENDING: "0", Order.ASCENDING: "1"}


def parse_record_page(
    response: HttpResponse,
    request: HttpRequest,
    *,
    codes: ErrorCodes = DEFAULT_ERROR_CODES,
    now: float = 0.0,
) -> RecordPage:
    data = parse_envelope(response, request, codes=codes, now=now)
    return structure(data, RecordPage, request, response.status)


# --- get a snapshot --------------------------------------------------------------------


def build_get_image(base_url: str, image_id: str) -> HttpRequest:
    """Build ``GET /api/v1/plus/image/{image_id}``."""
    check_text(image_id, "image_id")
    if image_id.strip() in (".", ".."):
        # A dot segment is resolved away by URL normalisation: the request would go to
        # another path (some normalisers strip spaces and line breaks around it first).
        raise ValidationError(f"image_id {shown(image_id)} is not an image id", field="image_id")
    return make_request("GET", _url(base_url, IMAGE_PATH + quote(image_id, safe="")))


def _is_envelope(content: bytes) -> bool:
    """Whether a body is a JSON envelope (whatever its Content-Type claims)."""
    if not content[:64].lstrip().startswith(b"{"):  # no JPEG or PNG starts with "{"
        return False
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return False
    return type(body) is dict and type(body.get("code")) is int


def parse_image(
    response: HttpResponse,
    request: HttpRequest,
    *,
    codes: ErrorCodes = DEFAULT_ERROR_CODES,
    now: float = 0.0,
) -> bytes:
    """The snapshot's bytes; a JSON envelope in place of an image is an error.

    Decided by Content-Type first (``image/*`` is an image, JSON is an envelope), then by
    magic bytes; a JSON envelope is an envelope even when labelled ``image/*``.
    """
    content = response.content
    kind = response.content_type
    ok_status = 200 <= response.status <= 299
    looks_like_image = kind.startswith("image/") or (
        "json" not in kind and not kind.startswith("text/") and image_type(content) is not None
    )
    if ok_status and content and looks_like_image and not _is_envelope(content):
        return content
    info = request.info()
    # An envelope here is an error; parse_envelope raises for it, and a success
    # envelope without an image is a shape error.
    parse_envelope(response, info, codes=codes, now=now)
    raise ResponseError(
        f"expected image bytes, got {kind or 'no content type'} ({len(content)} bytes)",
        request=info,
        status=response.status,
    )
