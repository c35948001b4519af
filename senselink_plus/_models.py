"""The values the API speaks in: records, pages, face images and their checks."""

from __future__ import annotations

import enum
import os
from datetime import datetime, timezone
from typing import Any

import attrs
import orjson

from ._checks import shown
from ._exceptions import ValidationError
from ._files import read_regular_file
from ._image import MAX_IMAGE_BYTES, MAX_PIXELS, Rectangle, image_type
from ._timeutil import from_wire_timestamp

__all__ = [
    "MAX_EXTEND_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_PIXELS",
    "RECORD_FIELDS",
    "CreatedRecord",
    "FaceImage",
    "Order",
    "Record",
    "RecordPage",
    "Rectangle",
    "image_type",
]

#: The largest ``extend`` JSON string (UTF-8 bytes).
MAX_EXTEND_BYTES = 1024


class Order(enum.IntEnum):
    """Sort order of a record listing, by ``record_id``: ``Order.DESCENDING`` (0, the
    server's default) or ``Order.ASCENDING`` (1, the SDK's default, stable while records
    arrive). Calls also accept the plain ints; ``Order(1)`` is ``Order.ASCENDING``.
    """

    DESCENDING = 0
    ASCENDING = 1


def _bytes_repr(data: bytes) -> str:
    return f"<{len(data)} bytes>"


@attrs.frozen
class FaceImage:
    """A JPEG or PNG face photo of at most 1 MiB, checked when it is made.

    ``FaceImage(data, rectangle=None)``: ``data`` is the image's bytes (at most
    1,048,576, JPEG or PNG by its first bytes, else a `ValidationError`); ``rectangle``
    an optional `Rectangle`, the region to search for the face. `from_path` reads a
    file; `fit` re-encodes a photo that is too large or in another format.

    >>> FaceImage(b"\\xff\\xd8\\xff\\xe0" + bytes(16)).content_type
    'image/jpeg'
    >>> FaceImage.from_path("face.jpg", rectangle=Rectangle(0, 0, 64, 64))  # doctest: +SKIP
    """

    data: bytes = attrs.field(repr=_bytes_repr)
    rectangle: Rectangle | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.data, (bytes, bytearray, memoryview)):
            raise ValidationError(
                f"image data must be bytes, not {type(self.data).__name__}", field="image"
            )
        if isinstance(self.data, (bytearray, memoryview)):
            object.__setattr__(self, "data", bytes(self.data))
        size = len(self.data)
        if size == 0:
            raise ValidationError("image is empty", field="image")
        if size > MAX_IMAGE_BYTES:
            raise ValidationError(
                f"image is {size} bytes; the limit is {MAX_IMAGE_BYTES}", field="image"
            )
        if image_type(self.data) is None:
            raise ValidationError(
                "image is not a JPEG or PNG (checked by its first bytes)", field="image"
            )
        if self.rectangle is not None and not isinstance(self.rectangle, Rectangle):
            raise ValidationError(
                f"rectangle must be a Rectangle, not {type(self.rectangle).__name__}",
                field="rectangle",
            )

    @property
    def content_type(self) -> str:
        """'image/jpeg' or 'image/png', by the image's first bytes."""
        kind = image_type(self.data)
        assert kind is not None
        return kind

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        rectangle: Rectangle | None = None,
        fit: bool = False,
    ) -> FaceImage:
        """Read a photo from disk: a regular file within the limit, read at most limit + 1
        bytes (a FIFO, a device or a folder is refused before it is opened).

        Blocking file I/O: from async code, `Client.create_record` with a path reads it in
        a worker thread; call this through ``asyncio.to_thread`` likewise.

        With ``fit=True`` (the ``images`` extra) a photo over the limit or in another
        format is re-encoded as `FaceImage.fit` does, instead of refused.

        >>> FaceImage.from_path("IMG_0042.webp", fit=True)  # doctest: +SKIP
        """
        limit = MAX_IMAGE_BYTES
        if fit:
            from . import _imagefit

            _imagefit.require_pillow()
            limit = _imagefit.MAX_SOURCE_BYTES
        try:
            data = read_regular_file(os.fspath(path), limit, "image")
        except ValidationError:
            raise
        except OSError as exc:
            raise ValidationError(
                f"cannot read image {os.fspath(path)!r}: {exc.strerror}", field="image"
            ) from None
        except (TypeError, ValueError) as exc:  # a NUL or a lone surrogate in the path
            raise ValidationError(
                f"cannot read image {shown(path)}: {exc}", field="image"
            ) from None
        if fit:
            return cls(*_imagefit.fit_image(data, rectangle, what=f"image {os.fspath(path)!r}"))
        return cls(data, rectangle)

    @classmethod
    def fit(cls, data: bytes, rectangle: Rectangle | None = None) -> FaceImage:
        """A face image from any photo Pillow reads (needs the ``images`` extra).

        A JPEG or PNG within the limit is kept byte for byte. Anything else is turned
        upright by its EXIF orientation and re-encoded as a JPEG under the limit (lower
        quality first, then smaller); ``rectangle``, given in the photo's stored pixels,
        follows the turn and the scale and is clipped to the picture.

        >>> FaceImage.fit(webp_bytes, Rectangle(top=40, left=60, width=200, height=200))
        ... # doctest: +SKIP
        """
        from ._imagefit import fit_image

        return cls(*fit_image(data, rectangle))


@attrs.frozen
class CreatedRecord:
    """What `Client.create_record` returns: the new record's id and its snapshot's id.

    ``CreatedRecord(record_id, image_id)``: ``record_id`` (int) as in `Record`, and
    ``image_id`` (str) for `Client.get_image`.
    """

    record_id: int
    image_id: str


@attrs.frozen(weakref_slot=False)
class Record:
    """One authentication record as the service lists it.

    The wire fields are kept as sent; ``created_at``, ``device_time``, ``extend_data``
    and ``matched`` are typed views of them. The SDK makes records from listings; to
    build one yourself (in tests), ``Record(record_id, sn, image_id, create_at,
    user_id=None, verify_score=None, device_timestamp=None, timezone=None,
    extend=None)`` takes the wire fields:

    - ``record_id`` (int): the record's id; listings are ordered by it.
    - ``sn`` (str): the device's serial number.
    - ``image_id`` (str): the snapshot's id, for `Client.get_image`.
    - ``create_at`` (int): when the service stored it (Unix time; the unit is not
      documented, see ``created_at``).
    - ``user_id`` (int or None): the matched user; None when nobody matched.
    - ``verify_score`` (float or None): the similarity of the match.
    - ``device_timestamp`` (int or None), ``timezone`` (str or None, ``"GMT+9:00"``):
      the device's own time of the snapshot.
    - ``extend`` (str or None): the JSON string stored with the record.
    """

    record_id: int
    sn: str
    image_id: str
    create_at: int
    user_id: int | None = None
    verify_score: float | None = None
    device_timestamp: int | None = None
    timezone: str | None = None
    extend: str | None = None

    @property
    def created_at(self) -> datetime:
        """When the service stored the record, as aware UTC.

        ``create_at`` has no documented unit: values >= 10**11 are read as
        milliseconds, smaller ones as seconds.
        """
        return from_wire_timestamp(self.create_at)

    @property
    def device_time(self) -> datetime | None:
        """The device's ``device_timestamp`` as aware UTC (same unit rule as ``created_at``).

        The device sets it, so it is not checked on the wire: a value no datetime can hold
        raises ValueError here.
        """
        if self.device_timestamp is None:
            return None
        return from_wire_timestamp(self.device_timestamp)

    @property
    def matched(self) -> bool:
        """True when the face search found a user."""
        return self.user_id is not None

    @property
    def extend_data(self) -> Any:
        """``extend`` parsed from its JSON string; None when absent or empty.

        Raises ValueError when the device stored something that is not JSON.
        """
        if not self.extend:
            return None
        try:
            return orjson.loads(self.extend)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"record {self.record_id}: extend is not JSON: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values: every wire field as sent, ``created_at``
        beside ``create_at`` as ISO-8601 UTC to the millisecond, and ``matched``.

        ``created_at`` has one format for every record (``2024-05-01T00:00:00.000Z``, a
        whole second too), so a CSV column of it parses whole (``pandas.to_datetime``).

        >>> record.to_dict()["created_at"]  # doctest: +SKIP
        '2024-05-01T00:00:00.000Z'
        """
        out: dict[str, Any] = {}
        for name in RECORD_FIELDS:
            out[name] = getattr(self, name)
            if name == "create_at":
                out["created_at"] = utc_text(self.created_at)
        out["matched"] = self.matched
        return out


def utc_text(moment: datetime) -> str:
    """``moment`` as ISO-8601 in UTC, always to the millisecond, with a ``Z``."""
    text = moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


#: The wire fields of a record, in `Record`'s order (its slots).
RECORD_FIELDS: tuple[str, ...] = tuple(field.name for field in attrs.fields(Record))


@attrs.frozen
class RecordPage:
    """One page of a listing: ``records`` in the order the server sent them.

    ``RecordPage(page_num, page_size, total, records=())``: the page number and size
    the server answered with, its ``total`` count for the listing asked (servers count,
    then select, so it may be stale), and a tuple of `Record`. ``len(page)`` is the
    number of records.
    """

    page_num: int
    page_size: int
    total: int
    records: tuple[Record, ...] = ()

    def __len__(self) -> int:
        return len(self.records)
