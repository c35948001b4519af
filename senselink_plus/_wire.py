"""The wire format: the record parsers (and the one cattrs converter, made on first use),
the response envelope, and error mapping.

Pure functions only; `parse_envelope` turns an `HttpResponse` into the envelope's
``data`` or raises the typed error the response stands for.
"""

from __future__ import annotations

import email.utils
import math
import operator
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import attrs
import orjson

from ._checks import shown
from ._exceptions import (
    APIError,
    AuthenticationError,
    InvalidParameterError,
    NoFaceDetectedError,
    NotFoundError,
    RateLimitError,
    RedirectError,
    ResponseError,
    ServerError,
)
from ._http import HttpRequest, HttpResponse, RequestInfo
from ._models import RECORD_FIELDS, CreatedRecord, Record, RecordPage
from ._timeutil import LATEST

__all__ = [
    "DEFAULT_ERROR_CODES",
    "ErrorCodes",
    "error_class",
    "get_converter",
    "parse_envelope",
    "parse_retry_after",
    "structure",
]

T = TypeVar("T")
ErrorCodes = Mapping[int, type[APIError]]

#: Envelope codes with a documented meaning. Pass ``error_codes=`` to `Client` to add
#: codes learnt from the real service; undocumented codes in 400..599 are read as
#: HTTP statuses, and anything else becomes a plain `APIError`.
DEFAULT_ERROR_CODES: ErrorCodes = {
    30001: InvalidParameterError,
    30003: NoFaceDetectedError,
}

_OK = 200

#: The latest ``create_at`` taken (in ms): a day before the last time the client accepts
#: as input (`LATEST`), so `watch` can always poll from a record's time.
MAX_CREATE_AT = int((LATEST - timedelta(days=1)).timestamp()) * 1000


class WireShapeError(ValueError):
    """A decoded body does not have the shape the spec gives; the text says where."""


# --- the converter -------------------------------------------------------------------

if TYPE_CHECKING:
    from cattrs.preconf.orjson import OrjsonConverter

_converter: OrjsonConverter | None = None


def get_converter() -> OrjsonConverter:
    """The one cattrs converter (orjson preconf) with this module's hooks, made on first
    use: the three endpoints' classes are structured by those hooks directly, so an
    import that never needs another class never pays for importing cattrs (~10 ms)."""
    global _converter
    if _converter is None:
        from cattrs.preconf.orjson import make_converter

        made = make_converter()
        made.register_structure_hook(Record, _structure_record)
        made.register_structure_hook(RecordPage, _structure_page)
        made.register_structure_hook(CreatedRecord, _structure_created)
        _converter = made
    return _converter


def __getattr__(name: str) -> Any:
    if name == "converter":  # the module attribute it used to be
        return get_converter()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_NAMES = {int: "an integer", str: "a string"}


def _field(obj: Mapping[str, Any], key: str, where: str, kind: type, *, optional: bool) -> Any:
    """``obj[key]`` when it is exactly of ``kind`` (or null when ``optional``)."""
    value = obj.get(key)
    if type(value) is kind or (optional and value is None):
        return value
    wanted = _NAMES[kind] + (" or null" if optional else "")
    raise WireShapeError(f"{where}.{key} must be {wanted}, got {_kind(value)}")


def _int(obj: Mapping[str, Any], key: str, where: str) -> int:
    return int(_field(obj, key, where, int, optional=False))


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    return str(_field(obj, key, where, str, optional=False))


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _checked_values(obj: Any) -> tuple[Any, ...]:
    """A record's nine fields in `RECORD_FIELDS` order, converted where the spec's shape
    allows it (an int score, an ``extend`` some server decoded for us); otherwise a
    `WireShapeError` that names the record and the field."""
    if type(obj) is not dict:
        raise WireShapeError(f"a record must be an object, got {_kind(obj)}")
    record_id = obj.get("record_id")
    if type(record_id) is not int:
        raise WireShapeError(f"record.record_id must be an integer, got {_kind(record_id)}")
    where = f"record {record_id}"
    score = _score(obj.get("verify_score"), where)
    extend = _extend(obj.get("extend"), where)
    create_at = _int(obj, "create_at", where)
    if not 0 <= create_at <= MAX_CREATE_AT:
        # Record.created_at must be able to read it (the pager and watch rely on it).
        raise WireShapeError(f"{where}.create_at {create_at} is not a time from 1970 to 9998")
    return (
        record_id,
        _str(obj, "sn", where),
        _str(obj, "image_id", where),
        create_at,
        _field(obj, "user_id", where, int, optional=True),
        score,
        _field(obj, "device_timestamp", where, int, optional=True),
        _field(obj, "timezone", where, str, optional=True),
        extend,
    )


def _score(score: Any, where: str) -> float | None:
    if score is None or (type(score) is float and math.isfinite(score)):
        return score
    if type(score) is int:
        return float(score)
    raise WireShapeError(f"{where}.verify_score must be a number, got {score!r:.40}")


def _extend(extend: Any, where: str) -> str | None:
    if extend is None or type(extend) is str:
        return extend
    if isinstance(extend, (dict, list)):
        # Some servers decode the JSON string for us; keep the spec's shape.
        return orjson.dumps(extend).decode()
    raise WireShapeError(f"{where}.extend must be a JSON string, got {_kind(extend)}")


def _structure_record(obj: Any, _: type[Record]) -> Record:
    return Record(*_checked_values(obj))


def _decoded_keys(names: tuple[str, ...]) -> tuple[str, ...]:
    # orjson caches the keys it decodes and hands out the same str objects each time;
    # looking fields up with those very objects matches by identity, not by comparing
    # strings (about 10 % of a page's parsing). Correct either way if the cache moves on.
    return tuple(orjson.loads(orjson.dumps(dict.fromkeys(names, 0))))


_KEYS = _decoded_keys(RECORD_FIELDS)
_fields = operator.itemgetter(*_KEYS)


class _RecordBuilder:
    """Stands in for `Record` while the page parser fills one in: same slots, plain
    assignments.

    A frozen attrs ``__init__`` sets each field through ``object.__setattr__`` (about
    0.6 µs a record); the parser makes this class's instance with ``object.__new__``,
    assigns its slots directly and then turns it into a ``Record`` by ``__class__``
    assignment, which CPython allows between classes of identical slot layout. The
    result is an ordinary, frozen ``Record``: equal, hashed, pickled and evolved as one
    made by its ``__init__`` (tests/test_wire.py). That holds only while ``Record``'s
    ``__init__`` does nothing but store its arguments: `check_plain_record` refuses,
    at import, anything else.
    """

    __slots__ = RECORD_FIELDS

    record_id: int
    sn: str
    image_id: str
    create_at: int
    user_id: int | None
    verify_score: float | None
    device_timestamp: int | None
    timezone: str | None
    extend: str | None


def check_plain_record(cls: type) -> None:
    """Raise RuntimeError unless ``cls``'s ``__init__`` only stores its arguments, in
    `_RecordBuilder`'s slots: no validator, converter, on_setattr hook, factory, pre- or
    post-init step, and the same slots in the same order.

    Run at import on `Record` (and in the tests on variants of it), so a check or a
    conversion added to ``Record`` later cannot be silently skipped by the builder.
    """
    problems = []
    if tuple(getattr(cls, "__slots__", ())) != RECORD_FIELDS:
        problems.append(f"its slots are not {RECORD_FIELDS}")
    for field in attrs.fields(cls):
        for what in ("validator", "converter", "on_setattr"):
            if getattr(field, what, None) not in (None, attrs.setters.NO_OP):
                problems.append(f"field {field.name} has a {what}")
        if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            problems.append(f"field {field.name} has a default factory")
    for hook in ("__attrs_pre_init__", "__attrs_post_init__", "__attrs_init__"):
        if hasattr(cls, hook):
            problems.append(f"it defines {hook}")
    if problems:
        raise RuntimeError(
            f"{cls.__name__} is built field by field by _wire._records, which skips "
            f"its __init__; it cannot be while " + "; ".join(problems)
        )


check_plain_record(Record)


def _records(items: list[Any]) -> tuple[Record, ...]:
    """Every record of a page, checked (and converted where the spec allows)."""
    # The hot path of every listing (100 records a page), so it is written out flat, with
    # two speed tricks kept because each is worth far more than 3 % of `list_records`
    # through MockTransport (bench.py case 3's measure, medians of interleaved runs):
    # without the one expression that passes the usual shape, every record through
    # _checked_values, +67..72 %; Record's frozen __init__ instead of the _RecordBuilder
    # swap, +43..47 %. That expression is the record validator: split into calls it would
    # read no better and cost them on every record, so this function stays at rank C.
    built: list[Record] = []
    append = built.append
    new = object.__new__
    builder = _RecordBuilder
    record_type = Record
    fields = _fields
    latest = MAX_CREATE_AT
    for obj in items:
        try:
            values = fields(obj) if type(obj) is dict else _checked_values(obj)
        except KeyError:  # an optional field left out (user_id when nobody matched)
            values = tuple(map(obj.get, _KEYS))
        record_id, sn, image_id, create_at, user_id, score, device_ts, zone, extend = values
        if not (
            type(record_id) is int
            and type(sn) is str
            and type(image_id) is str
            and type(create_at) is int
            and 0 <= create_at <= latest
            and (user_id is None or type(user_id) is int)
            and (score is None or type(score) is float)  # orjson never makes inf/nan
            and (device_ts is None or type(device_ts) is int)
            and (zone is None or type(zone) is str)
            and (extend is None or type(extend) is str)
        ):
            values = _checked_values(obj)
            record_id, sn, image_id, create_at, user_id, score, device_ts, zone, extend = values
        record = new(builder)
        record.record_id = record_id
        record.sn = sn
        record.image_id = image_id
        record.create_at = create_at
        record.user_id = user_id
        record.verify_score = score
        record.device_timestamp = device_ts
        record.timezone = zone
        record.extend = extend
        record.__class__ = record_type  # type: ignore[assignment]
        append(record)  # type: ignore[arg-type]
    return tuple(built)


def _structure_page(obj: Any, _: type[RecordPage]) -> RecordPage:
    if type(obj) is not dict:
        raise WireShapeError(f"data must be an object, got {_kind(obj)}")
    items = obj.get("list")
    if items is None:
        items = []
    elif type(items) is not list:
        raise WireShapeError(f"data.list must be an array, got {_kind(items)}")
    total = _int(obj, "total", "data")
    if total < 0:
        raise WireShapeError(f"data.total is negative ({total})")
    return RecordPage(
        _int(obj, "page_num", "data"),
        _int(obj, "page_size", "data"),
        total,
        _records(items),
    )


def _structure_created(obj: Any, _: type[CreatedRecord]) -> CreatedRecord:
    if type(obj) is not dict:
        raise WireShapeError(f"data must be an object, got {_kind(obj)}")
    return CreatedRecord(_int(obj, "record_id", "data"), _str(obj, "image_id", "data"))


Asked = HttpRequest | RequestInfo


def _info(asked: Asked) -> RequestInfo:
    # Worked out only when an error needs it: a successful parse never pays for it.
    return asked if isinstance(asked, RequestInfo) else asked.info()


#: The hooks above, called directly for their classes (no converter dispatch per call).
_DIRECT: dict[type, Callable[[Any, Any], Any]] = {
    Record: _structure_record,
    RecordPage: _structure_page,
    CreatedRecord: _structure_created,
}


def structure(data: Any, cls: type[T], asked: Asked, status: int) -> T:
    """Structure envelope data into ``cls``; any shape problem is a `ResponseError`."""
    try:
        direct = _DIRECT.get(cls)
        if direct is not None:
            result: T = direct(data, cls)
            return result
        return _by_converter(data, cls)
    except (WireShapeError, KeyError, TypeError, ValueError) as exc:
        raise ResponseError(
            f"unexpected response shape: {exc}", request=_info(asked), status=status
        ) from None


def _by_converter(data: Any, cls: type[T]) -> T:
    import cattrs

    try:
        return get_converter().structure(data, cls)
    except cattrs.BaseValidationError as exc:
        raise WireShapeError(str(exc)) from None


# --- the envelope and error mapping ----------------------------------------------------

_BY_STATUS: dict[int, type[APIError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    429: RateLimitError,
}


def _status_class(value: int) -> type[APIError] | None:
    if value in _BY_STATUS:
        return _BY_STATUS[value]
    if 500 <= value <= 599:
        return ServerError
    return None


def error_class(code: int, status: int, codes: ErrorCodes = DEFAULT_ERROR_CODES) -> type[APIError]:
    """The error type for an envelope ``code`` that came with HTTP ``status``."""
    if code in codes:
        return codes[code]
    return _status_class(code) or _status_class(status) or APIError


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.fromtimestamp(now, timezone.utc)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _origin(location: str) -> str | None:
    """``scheme://host[:port]`` of an absolute URL; None for a relative one."""
    try:
        parts = urlsplit(location.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def _redirect(response: HttpResponse, asked: Asked) -> RedirectError:
    # Only the origin is named: the Location's query may echo the signed query string.
    location = response.headers.get("location")
    origin = None if location is None else _origin(location)
    if origin is not None:
        target = f"to {shown(origin, 100)}"
    elif location:
        target = "to a path on the same host"
    else:
        target = "without a Location"
    return RedirectError(
        f"HTTP {response.status} redirect {target} not followed: a redirect would resend "
        "the signed request (and any image) elsewhere; point base_url at the API itself",
        request=_info(asked),
        status=response.status,
        location=origin,
    )


def parse_envelope(
    response: HttpResponse,
    asked: Asked,
    *,
    codes: ErrorCodes = DEFAULT_ERROR_CODES,
    now: float = 0.0,
) -> Any:
    """Return the envelope's ``data`` or raise the error the response stands for.

    Handles both shapes the service may use: HTTP 200 with ``code != 200``, and a
    non-2xx status with or without an envelope.
    """
    if 300 <= response.status <= 399:
        raise _redirect(response, asked)
    body = _envelope(response, asked)
    code = body.get("code", response.status)
    if code == _OK:
        if 200 <= response.status <= 299:
            return body.get("data")
        code = response.status  # an error status around a success envelope
    raise _api_error(body, code, response, asked, codes, now)


def _envelope(response: HttpResponse, asked: Asked) -> dict[str, Any]:
    """The decoded envelope; ``{}`` for an error status that came without one."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if type(body) is dict and type(body.get("code")) is int:
        return body
    if 200 <= response.status <= 299:
        raise ResponseError(
            f"HTTP {response.status} without a JSON envelope "
            f"({response.content_type or 'no content type'}, {len(response.content)} bytes)",
            request=_info(asked),
            status=response.status,
        )
    return {}


def _api_error(
    body: dict[str, Any],
    code: int,
    response: HttpResponse,
    asked: Asked,
    codes: ErrorCodes,
    now: float,
) -> APIError:
    cls = error_class(code, response.status, codes)
    message = _text(body.get("message")) or _text(body.get("msg")) or "no message"
    return cls(
        message,
        code=code,
        status=response.status,
        desc=_text(body.get("desc")),
        retry_after=parse_retry_after(response.headers.get("retry-after"), now),
        request=_info(asked),
    )
