"""create_record's arguments, hostile and at their limits: image sizes and forms, the
``extend`` limit in UTF-8 bytes, thresholds, odd Unicode, numbers JSON cannot carry, and
paths that cannot be read (the rule: `tests/hostile.py`)."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from senselink_plus import (
    CreatedRecord,
    FaceImage,
    Rectangle,
    ValidationError,
)
from senselink_plus._models import MAX_EXTEND_BYTES, MAX_IMAGE_BYTES
from senselink_plus._timeutil import shown
from tests.conftest import JPEG, PNG, MakeClient, transport_of
from tests.hostile import (
    BIG_INTS,
    EXTREME_TIMES,
    GIANT,
    ODD_STRINGS,
    SETTINGS,
    T0,
    BadPath,
    aware_anywhere,
    create,
    draw_arguments,
    giants,
    hostile,
    hostile_extend,
    junk,
    new_client,
    odd_text,
    outcome,
    sent,
)
from tests.strategies import aware_datetimes, extend_strings, gmt_labels

_PATH = object()  # stands for a real file on disk, filled in at run time

valid_create = {
    "sn": st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=1, max_size=16),
    "image": st.sampled_from(
        [
            JPEG,
            PNG,
            bytearray(JPEG),
            memoryview(PNG),
            FaceImage(JPEG),
            FaceImage(PNG, Rectangle(1, 2, 3, 4)),
            _PATH,
        ]
    ),
    "timestamp": st.none() | aware_datetimes() | st.integers(0, 2**41),
    "timezone": st.none() | gmt_labels(),
    "threshold": st.none() | st.floats(0, 1) | st.sampled_from([0, 1]),
    "rectangle": st.none()
    | st.builds(
        Rectangle,
        st.integers(0, 5000),
        st.integers(0, 5000),
        st.integers(1, 5000),
        st.integers(1, 5000),
    )
    | st.fixed_dictionaries({k: st.integers(1, 5000) for k in ("top", "left", "width", "height")}),
    "extend": st.none()
    | extend_strings()
    | st.dictionaries(st.text(max_size=5), st.integers(-(2**53), 2**53), max_size=3),
    "process_mode": st.none() | st.just(0),
}
RECT_KEYS = ("top", "left", "width", "height")
rect_keys = st.sampled_from([*RECT_KEYS, "x", ""])
hostile_create = {
    "sn": hostile(odd_text),
    "image": hostile(
        st.binary(max_size=24),
        odd_text,
        st.sampled_from([b"", JPEG[:2], b"GIF89a" + bytes(8), BadPath(), bytearray(b"\xff\xd8")]),
    ),
    "timestamp": hostile(
        st.sampled_from([*EXTREME_TIMES, *BIG_INTS, -1]), aware_anywhere, st.integers(), giants
    ),
    "timezone": hostile(odd_text),
    "threshold": hostile(
        st.sampled_from([0, 1, -0.0001, 1.0001, math.nan, math.inf, -math.inf, True, *BIG_INTS]),
        st.floats(),
        st.integers(),
        giants,
    ),
    "rectangle": hostile(
        st.fixed_dictionaries(
            {k: st.integers(0, 9) | st.sampled_from(BIG_INTS) | giants for k in RECT_KEYS}
        ),
        st.fixed_dictionaries({k: st.integers() for k in RECT_KEYS}),
        st.fixed_dictionaries({k: junk for k in RECT_KEYS}),
        st.dictionaries(rect_keys, st.integers(0, 9), max_size=5),
    ),
    "extend": hostile_extend,
    "process_mode": hostile(st.sampled_from([1, -1, 0.0, "0", False, math.nan, *BIG_INTS])),
}


@pytest.fixture(scope="module")
def face_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faces") / "face 😀\u200f.jpg"
    path.write_bytes(JPEG)
    return path


@SETTINGS
@given(data=st.data())
async def test_create_record_any_arguments(data: st.DataObject, face_path: Path) -> None:
    hostile, kwargs = draw_arguments(data, valid_create, hostile_create)
    if kwargs["image"] is _PATH:
        kwargs["image"] = face_path
    sn, image = kwargs.pop("sn"), kwargs.pop("image")
    async with new_client() as client:
        result = await outcome(client, lambda: client.create_record(sn, image, **kwargs), hostile)
    if not hostile:
        assert result == CreatedRecord(7, "a" * 24)
    if not isinstance(result, ValidationError):
        body = orjson.loads(sent(client)[0].content or b"")
        assert body["sn"] == sn


def jpeg_of(size: int) -> bytes:
    return JPEG + bytes(size - len(JPEG))


@pytest.mark.parametrize("size", [MAX_IMAGE_BYTES - 1, MAX_IMAGE_BYTES])
@pytest.mark.parametrize("form", ["bytes", "bytearray", "memoryview", "face", "path"])
async def test_image_up_to_the_limit_is_sent_whole(size: int, form: str, tmp_path: Path) -> None:
    data = jpeg_of(size)
    wrapped: dict[str, Callable[[], Any]] = {
        "bytes": lambda: data,
        "bytearray": lambda: bytearray(data),
        "memoryview": lambda: memoryview(data),
        "face": lambda: FaceImage(data),
        "path": lambda: _write(tmp_path / "face.jpg", data),
    }
    _, body = await create(image=wrapped[form]())
    assert base64.b64decode(body["image"]["data"]) == data


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("size", [MAX_IMAGE_BYTES + 1, MAX_IMAGE_BYTES * 4])
@pytest.mark.parametrize("form", ["bytes", "bytearray", "memoryview", "path"])
async def test_image_over_the_limit_is_refused(size: int, form: str, tmp_path: Path) -> None:
    data = jpeg_of(size)
    image: Any = {
        "bytes": data,
        "bytearray": bytearray(data),
        "memoryview": memoryview(data),
        "path": tmp_path / "big.jpg",
    }[form]
    if form == "path":
        image.write_bytes(data)
    _, error = await create(image=image)
    assert isinstance(error, ValidationError)
    assert error.field == "image"
    assert str(size) in str(error)
    with pytest.raises(ValidationError):
        FaceImage(data)


def _extend_of(nbytes: int, filler: str) -> str:
    """A JSON string document of exactly ``nbytes`` UTF-8 bytes made of ``filler``."""
    unit = len(filler.encode())
    count, rest = divmod(nbytes - 2, unit)
    return '"' + filler * count + "x" * rest + '"'


@pytest.mark.parametrize("filler", ["x", "é", "€", "😀", "e\u0301", "\u200f"])
@pytest.mark.parametrize(("nbytes", "accepted"), [(1024, True), (1025, False)])
async def test_extend_limit_in_utf8_bytes(filler: str, nbytes: int, accepted: bool) -> None:
    text = _extend_of(nbytes, filler)
    assert len(text.encode()) == nbytes
    for value in (text, _dict_of(nbytes, filler)):
        _, result = await create(extend=value)
        if accepted:
            assert not isinstance(result, ValidationError), result
            assert len(result["extend"].encode()) == nbytes
            assert orjson.loads(result["extend"]) == (
                orjson.loads(value) if isinstance(value, str) else value
            )
        else:
            assert isinstance(result, ValidationError)
            assert result.field == "extend"
            assert f"{nbytes} bytes" in str(result)


def _dict_of(nbytes: int, filler: str) -> dict[str, str]:
    """``{"k": "..."}`` that orjson writes in exactly ``nbytes`` bytes (raw UTF-8)."""
    inner = _extend_of(nbytes - len('{"k":}'), filler)[1:-1]
    value = {"k": inner}
    assert len(orjson.dumps(value)) == nbytes
    return value


@pytest.mark.parametrize(
    ("threshold", "sent_as"),
    [
        (0, 0.0),
        (1, 1.0),
        (0.0, 0.0),
        (1.0, 1.0),
        (-0.0, -0.0),
        (5e-324, 5e-324),
        (0.9, 0.9),
        (-0.0001, None),
        (1.0001, None),
        (math.nan, None),
        (math.inf, None),
        (-math.inf, None),
        (True, None),
        (False, None),
        (10**400, None),
        (-(10**400), None),
        (GIANT, None),
        (Decimal("0.5"), None),
        (Fraction(1, 2), None),
        ("0.5", None),
    ],
    ids=lambda value: shown(value, 24),
)
async def test_threshold_bounds(threshold: Any, sent_as: float | None) -> None:
    _, result = await create(threshold=threshold)
    if sent_as is None:
        assert isinstance(result, ValidationError)
        assert result.field == "threshold"
    else:
        assert result["threshold"] == sent_as
        assert type(result["threshold"]) is float


@pytest.mark.parametrize("text", ODD_STRINGS, ids=ascii)
async def test_odd_unicode_in_sn_and_extend(text: str) -> None:
    encodable = _encodable(text)
    _, result = await create(sn=text)
    if not text.strip() or not encodable:
        assert isinstance(result, ValidationError)
        assert result.field == "sn"
        assert "surrogate" in str(result) or not text.strip()
    else:
        assert result["sn"] == text  # sent verbatim, JSON-escaped as needed
    _, result = await create(extend={text: text})
    if encodable and len(orjson.dumps({text: text})) <= MAX_EXTEND_BYTES:
        assert orjson.loads(result["extend"]) == {text: text}
    else:
        assert isinstance(result, ValidationError)
        assert result.field == "extend"
    async with new_client() as client:
        try:
            await client.list_records(T0, T0 + timedelta(hours=1), sn=text)
        except ValidationError as exc:
            assert exc.field == "sn"
            assert not text.strip() or not encodable
            assert sent(client) == []
        else:
            assert dict(sent(client)[0].params)["sn"] == text


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.parametrize("value", ["\ud800", "GMT+9:00\udfff"], ids=ascii)
async def test_lone_surrogates_elsewhere_are_validation_errors(value: str) -> None:
    _, result = await create(timezone=value)
    assert isinstance(result, ValidationError)
    assert result.field == "timezone"
    _, result = await create(extend={"k": value})
    assert isinstance(result, ValidationError)
    assert result.field == "extend"
    _, result = await create(extend=f'"{value}"')
    assert isinstance(result, ValidationError)
    assert result.field == "extend"
    async with new_client() as client:
        with pytest.raises(ValidationError) as info:
            await client.get_image(value)
        assert info.value.field == "image_id"
        with pytest.raises(ValidationError) as info:
            client.watch(sn=value)
        assert info.value.field == "sn"
        with pytest.raises(ValidationError) as info:
            client.watch(checkpoint=value)
        assert info.value.field == "checkpoint"
    assert sent(client) == []


@pytest.mark.parametrize(
    ("timestamp", "accepted"),
    [(0, True), (2**63 - 1, True), (2**63, False), (2**64, False), (-1, False), (GIANT, False)],
    ids=["zero", "int64-max", "int64-over", "uint64-over", "negative", "giant"],
)
async def test_int_timestamps_stay_json_encodable(timestamp: int, accepted: bool) -> None:
    _, result = await create(timestamp=timestamp)
    if accepted:
        assert result["timestamp"] == timestamp
        assert "timezone" not in result
    else:
        assert isinstance(result, ValidationError)
        assert result.field == "timestamp"


@pytest.mark.parametrize("field", ["top", "left", "width", "height"])
@pytest.mark.parametrize(
    ("value", "accepted"),
    [(2**31 - 1, True), (2**31, False), (2**64, False), (GIANT, False)],
    ids=["int32-max", "int32-over", "uint64-over", "giant"],
)
async def test_rectangle_values_stay_json_encodable(field: str, value: int, accepted: bool) -> None:
    rect = {"top": 0, "left": 0, "width": 1, "height": 1, field: value}
    _, result = await create(rectangle=rect)
    if accepted:
        assert result["image"]["rectangle"] == rect
    else:
        assert isinstance(result, ValidationError)
        assert result.field == f"rectangle.{field}"


@pytest.mark.parametrize(
    "path", ["face\x00.jpg", "\ud800.jpg", "", "/", "x" * 5000, BadPath()], ids=ascii
)
async def test_unreadable_image_paths_are_validation_errors(path: Any) -> None:
    _, result = await create(image=path)
    assert isinstance(result, ValidationError)
    assert result.field == "image"
    text = str(result)
    assert "cannot read image" in text or "not a JPEG" in text or "not a regular file" in text


@pytest.mark.parametrize(
    ("extend", "where"),
    [
        ({"temp": float("nan")}, "extend['temp']"),
        ({"temp": float("inf")}, "extend['temp']"),
        ({"a": {"b": [1.0, float("-inf")]}}, "extend['a']['b'][1]"),
        ({"a": ({"t": float("nan")},)}, "extend['a'][0]['t']"),
    ],
)
async def test_nan_and_infinities_in_extend_are_refused_naming_the_key(
    make_client: MakeClient, extend: dict[str, Any], where: str
) -> None:
    client = make_client(lambda request: pytest.fail("nothing may be sent"))
    with pytest.raises(ValidationError) as caught:
        await client.create_record("GATE-1", JPEG, extend=extend)
    assert caught.value.field == "extend"
    assert where in str(caught.value)
    assert transport_of(client).requests == []
