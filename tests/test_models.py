"""Models: face image checks, rectangles, order, and the typed views on records."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import orjson
import pytest
from hypothesis import given

from senselink_plus import (
    FaceImage,
    Order,
    Record,
    RecordPage,
    Rectangle,
    ValidationError,
)
from senselink_plus._models import MAX_IMAGE_BYTES
from tests.strategies import wire_record_lists, wire_records

JPEG_HEAD = b"\xff\xd8\xff\xe0"
PNG_HEAD = b"\x89PNG\r\n\x1a\n"
UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def jpeg(size: int) -> bytes:
    return JPEG_HEAD + bytes(size - len(JPEG_HEAD))


# --- FaceImage: size -------------------------------------------------------------------


def test_the_limit_is_one_mebibyte() -> None:
    assert MAX_IMAGE_BYTES == 1_048_576


def test_an_image_of_exactly_the_limit_is_accepted() -> None:
    image = FaceImage(jpeg(1_048_576))
    assert len(image.data) == 1_048_576


def test_one_byte_over_the_limit_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        FaceImage(jpeg(1_048_577))
    assert info.value.field == "image"
    assert "1048577" in str(info.value)
    assert "1048576" in str(info.value)


def test_empty_image_is_refused() -> None:
    with pytest.raises(ValidationError, match="empty") as info:
        FaceImage(b"")
    assert info.value.field == "image"


@pytest.mark.parametrize("data", ["\xff\xd8\xff text", None, 42, [255, 216, 255]])
def test_non_bytes_are_refused(data: Any) -> None:
    with pytest.raises(ValidationError, match="must be bytes") as info:
        FaceImage(data)
    assert info.value.field == "image"
    assert type(data).__name__ in str(info.value)


@pytest.mark.parametrize("wrap", [bytearray, memoryview])
def test_bytearray_and_memoryview_become_bytes(wrap: Any) -> None:
    image = FaceImage(wrap(jpeg(64)))
    assert type(image.data) is bytes
    assert image.data == jpeg(64)


# --- FaceImage: type by magic bytes ----------------------------------------------------


def test_jpeg_and_png_are_recognised_by_magic_bytes() -> None:
    assert FaceImage(JPEG_HEAD + bytes(16)).content_type == "image/jpeg"
    assert FaceImage(b"\xff\xd8\xff\xdb" + bytes(16)).content_type == "image/jpeg"
    assert FaceImage(PNG_HEAD + bytes(16)).content_type == "image/png"


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a" + bytes(16),
        b"\xff\xd8",  # a truncated JPEG marker
        b"\x89PNG\r\n" + bytes(16),  # a truncated PNG signature
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        b'{"code": 200}',
    ],
)
def test_other_formats_are_refused(data: bytes) -> None:
    with pytest.raises(ValidationError, match="not a JPEG or PNG") as info:
        FaceImage(data)
    assert info.value.field == "image"


# --- FaceImage: repr, rectangle, frozen ------------------------------------------------


def test_repr_shows_the_length_only() -> None:
    data = JPEG_HEAD + b"SECRET-FACE-PIXELS" + bytes(10)
    text = repr(FaceImage(data))
    assert f"<{len(data)} bytes>" in text
    assert "SECRET-FACE-PIXELS" not in text
    assert "\\xff" not in text


def test_rectangle_is_kept_and_type_checked() -> None:
    rect = Rectangle(top=1, left=2, width=3, height=4)
    assert FaceImage(jpeg(32), rect).rectangle == rect
    with pytest.raises(ValidationError) as info:
        FaceImage(jpeg(32), (1, 2, 3, 4))  # type: ignore[arg-type]
    assert info.value.field == "rectangle"


def test_face_image_is_frozen() -> None:
    image = FaceImage(jpeg(32))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        image.data = b""  # type: ignore[misc]


# --- FaceImage.from_path ---------------------------------------------------------------


class _OpenSpy:
    """Records the files opened (from_path reads with os.open); opens small ones for
    real, never big ones."""

    def __init__(self, real: Any) -> None:
        self.opened: list[str] = []
        self.real = real

    def __call__(self, file: Any, *args: Any, **kwargs: Any) -> Any:
        self.opened.append(str(file))
        if os.path.getsize(file) > MAX_IMAGE_BYTES:
            raise AssertionError(f"{file} is over the limit and must not be opened")
        return self.real(file, *args, **kwargs)


@pytest.fixture
def open_spy(monkeypatch: pytest.MonkeyPatch) -> _OpenSpy:
    spy = _OpenSpy(os.open)
    monkeypatch.setattr(os, "open", spy)
    return spy


def test_from_path_reads_an_image_of_exactly_the_limit(tmp_path: Path, open_spy: _OpenSpy) -> None:
    path = tmp_path / "face.jpg"
    path.write_bytes(jpeg(1_048_576))
    rect = Rectangle(0, 0, 64, 64)
    image = FaceImage.from_path(path, rectangle=rect)
    assert image.data == jpeg(1_048_576)
    assert image.rectangle == rect
    assert open_spy.opened == [str(path)]


def test_from_path_refuses_an_oversized_file_before_reading_it(
    tmp_path: Path, open_spy: _OpenSpy
) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(jpeg(1_048_577))
    with pytest.raises(ValidationError) as info:
        FaceImage.from_path(path)
    assert open_spy.opened == [], "the file was opened although its size alone refuses it"
    assert info.value.field == "image"
    assert "1048577" in str(info.value)
    assert "big.jpg" in str(info.value)


def test_from_path_refuses_a_huge_sparse_file_without_reading_it(
    tmp_path: Path, open_spy: _OpenSpy
) -> None:
    path = tmp_path / "huge.jpg"
    with path.open("wb") as handle:
        handle.write(JPEG_HEAD)
        handle.truncate(10 * 2**30)  # sparse: no disk used, but 10 GiB if read
    with pytest.raises(ValidationError, match="the limit is 1048576"):
        FaceImage.from_path(str(path))
    assert open_spy.opened == []


def test_from_path_missing_file_is_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "missing.jpg"
    with pytest.raises(ValidationError, match="cannot read image") as info:
        FaceImage.from_path(path)
    assert info.value.field == "image"
    assert "missing.jpg" in str(info.value)
    assert info.value.__cause__ is None


def test_from_path_directory_is_a_validation_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is a folder, not a regular file"):
        FaceImage.from_path(tmp_path)


def test_from_path_checks_the_content_too(tmp_path: Path) -> None:
    path = tmp_path / "face.gif"
    path.write_bytes(b"GIF89a" + bytes(16))
    with pytest.raises(ValidationError, match="not a JPEG or PNG"):
        FaceImage.from_path(path)


# --- Rectangle -------------------------------------------------------------------------


def test_rectangle_accepts_a_zero_origin() -> None:
    rect = Rectangle(top=0, left=0, width=1, height=1)
    assert (rect.top, rect.left, rect.width, rect.height) == (0, 0, 1, 1)


class OutOfRange(NamedTuple):
    """A rectangle value to refuse, the field the error names, and the range it says."""

    kwargs: dict[str, int]
    field: str
    limit: str


@pytest.mark.parametrize(
    OutOfRange._fields,
    [
        OutOfRange(kwargs={"top": -1}, field="rectangle.top", limit="0..2147483647"),
        OutOfRange(kwargs={"left": -5}, field="rectangle.left", limit="0..2147483647"),
        OutOfRange(kwargs={"width": 0}, field="rectangle.width", limit="1..2147483647"),
        OutOfRange(kwargs={"height": 0}, field="rectangle.height", limit="1..2147483647"),
        OutOfRange(kwargs={"width": -3}, field="rectangle.width", limit="1..2147483647"),
        OutOfRange(kwargs={"height": -1}, field="rectangle.height", limit="1..2147483647"),
    ],
)
def test_rectangle_refuses_negative_or_zero_sizes(
    kwargs: dict[str, int], field: str, limit: str
) -> None:
    values = {"top": 0, "left": 0, "width": 10, "height": 10, **kwargs}
    with pytest.raises(ValidationError) as info:
        Rectangle(**values)
    assert info.value.field == field
    assert limit in str(info.value)
    assert field in str(info.value)


@pytest.mark.parametrize("bad", [True, False, 1.0, "10", None])
@pytest.mark.parametrize("name", ["top", "left", "width", "height"])
def test_rectangle_refuses_non_ints(name: str, bad: Any) -> None:
    values: dict[str, Any] = {"top": 1, "left": 1, "width": 10, "height": 10, name: bad}
    with pytest.raises(ValidationError, match="must be an int") as info:
        Rectangle(**values)
    assert info.value.field == f"rectangle.{name}"


# --- Order -----------------------------------------------------------------------------


def test_order_values_match_the_wire() -> None:
    assert Order.DESCENDING.value == 0
    assert Order.ASCENDING.value == 1
    assert isinstance(Order.ASCENDING, int)
    assert Order(0) is Order.DESCENDING
    assert Order(1) is Order.ASCENDING
    assert [member.name for member in Order] == ["DESCENDING", "ASCENDING"]
    assert str(int(Order.ASCENDING)) == "1"


# --- Record views ----------------------------------------------------------------------


def record(**fields: Any) -> Record:
    base: dict[str, Any] = {
        "record_id": 7,
        "sn": "JKQ00009234",
        "image_id": "5f0c1e2d3b4a596877665544",
        "create_at": 1659423903029,
    }
    return Record(**{**base, **fields})


def test_created_at_from_milliseconds() -> None:
    created = record(create_at=1659423903029).created_at
    assert created == datetime(2022, 8, 2, 7, 5, 3, 29000, tzinfo=UTC)
    assert created.utcoffset() == timedelta(0)


def test_created_at_from_seconds() -> None:
    assert record(create_at=1658136457).created_at == datetime(2022, 7, 18, 9, 27, 37, tzinfo=UTC)
    # The spec's example value, far below 10**11, reads as seconds.
    assert record(create_at=130000000).created_at.year == 1974


def test_device_time() -> None:
    assert record().device_time is None
    assert record(device_timestamp=1658136457).device_time == datetime(
        2022, 7, 18, 9, 27, 37, tzinfo=UTC
    )
    assert record(device_timestamp=1658136457000).device_time == datetime(
        2022, 7, 18, 9, 27, 37, tzinfo=UTC
    )


def test_matched_follows_user_id() -> None:
    assert record().matched is False
    assert record(user_id=None).matched is False
    assert record(user_id=42).matched is True


@pytest.mark.parametrize(
    ("extend", "expected"),
    [
        ('{"gate":"north","n":1}', {"gate": "north", "n": 1}),
        ("[1,2]", [1, 2]),
        (None, None),
        ("", None),
    ],
)
def test_extend_data_parses_the_json_string(extend: str | None, expected: Any) -> None:
    view = record(extend=extend)
    assert view.extend_data == expected
    assert view.extend == extend  # the raw string is kept


def test_extend_data_that_is_not_json_raises_value_error_naming_the_record() -> None:
    with pytest.raises(ValueError, match="record 7: extend is not JSON"):
        _ = record(extend="{gate: north").extend_data


@given(wire_records())
def test_views_hold_for_any_wire_record(wire: dict[str, Any]) -> None:
    view = Record(**wire)
    assert view.created_at.tzinfo is UTC
    assert view.created_at == EPOCH + timedelta(milliseconds=wire["create_at"])
    assert view.device_time is not None
    assert 2000 <= view.device_time.year <= 2100
    assert view.matched is (wire["user_id"] is not None)
    expected_extend = None if wire["extend"] is None else orjson.loads(wire["extend"])
    assert view.extend_data == expected_extend


# --- RecordPage ------------------------------------------------------------------------


def test_empty_page_has_length_zero() -> None:
    page = RecordPage(page_num=1, page_size=100, total=0)
    assert len(page) == 0
    assert page.records == ()


@given(wire_record_lists(max_size=10))
def test_page_length_is_its_record_count(wires: list[dict[str, Any]]) -> None:
    records = tuple(Record(**wire) for wire in wires)
    page = RecordPage(page_num=1, page_size=100, total=len(records) + 5, records=records)
    assert len(page) == len(wires)
    assert [r.record_id for r in page.records] == [w["record_id"] for w in wires]
