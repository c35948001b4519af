"""The emulator's parameter checks, as the cloud applies them; pure functions, no I/O."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import orjson

from ._emulator_store import JPEG_MAGIC, PNG_MAGIC

__all__ = ["CreateParams", "ListParams", "ParamError", "parse_create", "parse_list"]

PARAM_INVALID = 30001
NO_FACE = 30003

MAX_IMAGE_BYTES = 1_048_576
MAX_EXTEND_BYTES = 1024
MAX_WINDOW = timedelta(hours=24)
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
DEFAULT_THRESHOLD = 0.9
_INT64 = (-(2**63), 2**63 - 1)
_INT32_MAX = 2**31 - 1
# Base64 of MAX_IMAGE_BYTES is at most this long; anything longer is rejected undecoded.
_MAX_BASE64_CHARS = 4 * -(-MAX_IMAGE_BYTES // 3)

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:(Z)|([+-])(\d{2}):(\d{2}))?",
    re.ASCII,
)
_INT = re.compile(r"[+-]?\d{1,20}", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class ParamError(Exception):
    """A request the cloud would refuse: ``code`` for the envelope, ``desc`` says why."""

    def __init__(self, desc: str, code: int = PARAM_INVALID) -> None:
        super().__init__(desc)
        self.code = code
        self.desc = desc


@attrs.frozen
class CreateParams:
    """A create request's body after validation; ``image`` is the decoded bytes."""

    sn: str
    timestamp: int
    timezone: str | None
    threshold: float
    image: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    extend: str | None


@attrs.frozen
class ListParams:
    """A list request's query after validation; times in Unix milliseconds."""

    from_ms: int
    to_ms: int
    sn: str | None
    descending: bool
    page: int
    size: int


def _is_int(value: object) -> bool:
    # JSON true/false decode to bool, which Python counts as int; the cloud does not.
    return type(value) is int


def _optional(body: Mapping[str, Any], name: str) -> Any:
    # An explicit null is treated like an absent optional field.
    return body.get(name)


def parse_create(body: object) -> CreateParams:
    """Check a create body (already JSON-decoded) field by field, in the spec's order."""
    if not isinstance(body, dict):
        raise ParamError("the request body must be a JSON object")
    sn = _parse_sn(body.get("sn"))
    stamp = _parse_timestamp(body.get("timestamp"))
    zone = _parse_timezone(_optional(body, "timezone"))
    threshold = _parse_threshold(_optional(body, "threshold"))
    image = _parse_image(body.get("image"))
    _check_process_mode(_optional(body, "process_mode"))
    extend = _optional(body, "extend")
    if extend is not None:
        extend = _parse_extend(extend)
    return CreateParams(sn, stamp, zone, threshold, image, extend)


def _parse_sn(sn: object) -> str:
    if not isinstance(sn, str) or not sn:
        raise ParamError(f"sn is required and must be a non-empty string; got {sn!r}")
    return sn


def _parse_timestamp(stamp: object) -> int:
    if not _is_int(stamp):
        raise ParamError(f"timestamp is required and must be an integer; got {stamp!r}")
    assert isinstance(stamp, int)
    if not _INT64[0] <= stamp <= _INT64[1]:
        raise ParamError(f"timestamp is {stamp}; it must fit in a signed 64-bit integer")
    return stamp


def _parse_timezone(zone: object) -> str | None:
    if zone is not None and not isinstance(zone, str):
        raise ParamError(f"timezone must be a string like 'GMT+9:00'; got {zone!r}")
    return zone


def _parse_threshold(threshold: object) -> float:
    if threshold is None:
        return DEFAULT_THRESHOLD
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        raise ParamError(f"threshold must be a number in [0, 1]; got {threshold!r}")
    if not 0 <= threshold <= 1:
        raise ParamError(f"threshold is {threshold}; it must be in [0, 1]")
    return float(threshold)


def _check_process_mode(mode: object) -> None:
    if mode is not None and (not _is_int(mode) or mode != 0):
        raise ParamError(f"process_mode is {mode!r}; only 0 is supported")


def _parse_image(image: object) -> bytes:
    if not isinstance(image, dict):
        raise ParamError("image is required and must be an object with a 'data' field")
    data = image.get("data")
    if not isinstance(data, str) or not data:
        raise ParamError("image.data is required and must be a non-empty base64 string")
    if len(data) > _MAX_BASE64_CHARS:
        raise ParamError(
            f"image.data is over {MAX_IMAGE_BYTES} bytes once decoded; "
            f"the limit is {MAX_IMAGE_BYTES}"
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ParamError("image.data is not valid base64") from None
    if len(raw) > MAX_IMAGE_BYTES:
        raise ParamError(f"image is {len(raw)} bytes; the limit is {MAX_IMAGE_BYTES}")
    if not raw.startswith((JPEG_MAGIC, PNG_MAGIC)):
        raise ParamError("image is neither JPEG nor PNG (checked by its magic bytes)")
    rectangle = image.get("rectangle")
    if rectangle is not None:
        _check_rectangle(rectangle)
    return raw


def _check_rectangle(rectangle: object) -> None:
    if not isinstance(rectangle, dict):
        raise ParamError("image.rectangle must be an object with top, left, width, height")
    for name, least in (("top", 0), ("left", 0), ("width", 1), ("height", 1)):
        value = rectangle.get(name)
        if not _is_int(value):
            raise ParamError(f"image.rectangle.{name} must be an integer; got {value!r}")
        assert isinstance(value, int)
        if value < least:
            raise ParamError(f"image.rectangle.{name} is {value}; it must be >= {least}")


def _parse_extend(extend: object) -> str:
    if not isinstance(extend, str):
        raise ParamError(
            f"extend must be a JSON string (an object serialised to text); "
            f"got a {type(extend).__name__}"
        )
    size = len(extend.encode())
    if size > MAX_EXTEND_BYTES:
        raise ParamError(f"extend is {size} bytes; the limit is {MAX_EXTEND_BYTES}")
    try:
        orjson.loads(extend)
    except orjson.JSONDecodeError:
        raise ParamError("extend is not valid JSON") from None
    return extend


def parse_list(query: Mapping[str, str]) -> ListParams:
    """Check a list query: an aware window of at most 24 h, order, page and size."""
    start = _parse_time(query, "time_from")
    end = _parse_time(query, "time_to")
    if end < start:
        raise ParamError(f"time_to ({query['time_to']}) is before time_from ({query['time_from']})")
    if end - start > MAX_WINDOW:
        raise ParamError(f"time_to - time_from is {end - start}; the limit is 24 hours")
    order = _parse_int(query, "order", 0, 0, 1)
    page = _parse_int(query, "page", 1, 1, _INT32_MAX)
    size = _parse_int(query, "size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    sn = query.get("sn") or None
    return ListParams(_to_ms(start), _to_ms(end), sn, order == 0, page, size)


def _parse_time(query: Mapping[str, str], name: str) -> datetime:
    text = query.get(name)
    if not text:
        raise ParamError(
            f"{name} is required (ISO-8601 with offset, e.g. 2022-12-11T00:00:00+09:00)"
        )
    # A hand-written pattern, so the accepted forms do not vary with the Python version.
    match = _ISO.fullmatch(text)
    if match is None:
        raise ParamError(f"{name} is {text!r}; expected ISO-8601 like 2022-12-11T00:00:00+09:00")
    year, month, day, hour, minute, second, fraction, zulu, sign, oh, om = match.groups()
    if zulu is None and sign is None:
        raise ParamError(f"{name} is {text!r}; it needs a UTC offset such as +09:00")
    offset = timedelta()
    if sign is not None:
        offset = timedelta(hours=int(oh), minutes=int(om))
        if offset >= timedelta(hours=24):
            raise ParamError(f"{name} is {text!r}; the offset is out of range")
        offset = -offset if sign == "-" else offset
    micros = int((fraction or "0").ljust(9, "0")[:6])
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            micros,
            tzinfo=timezone(offset),
        )
    except ValueError as error:
        raise ParamError(f"{name} is {text!r}; {error}") from None


def _parse_int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    if _INT.fullmatch(text) is None:
        raise ParamError(f"{name} is {text!r}; it must be an integer")
    value = int(text)
    if not low <= value <= high:
        raise ParamError(f"{name} is {value}; it must be in [{low}, {high}]")
    return value


def _to_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)
