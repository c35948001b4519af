"""FaceImage.fit / from_path(fit=True): re-encoding photos with Pillow (the images extra).

Every picture is drawn here with Pillow; there are no binary fixtures.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import random
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from senselink_plus import FaceImage, Rectangle, ValidationError, _imagefit
from senselink_plus._models import MAX_IMAGE_BYTES

with contextlib.suppress(ImportError):  # without the extra, the tests that need it skip
    from PIL import Image, ImageStat

INSTALL_HINT = "pip install 'senselink-plus[images]'"
RED = (255, 0, 0)
BACKGROUND = (40, 160, 220)
ORIENTATION = 0x0112


# --- without Pillow ------------------------------------------------------------------


@pytest.fixture
def no_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import PIL`` fail, as when the images extra is not installed."""
    monkeypatch.setitem(sys.modules, "PIL", None)


def test_importing_the_sdk_does_not_import_pillow() -> None:
    code = "import sys, senselink_plus; print('PIL' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.usefixtures("no_pillow")
def test_fit_without_pillow_says_how_to_install_it() -> None:
    with pytest.raises(ValidationError) as info:
        FaceImage.fit(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    assert INSTALL_HINT in str(info.value)
    assert info.value.field == "image"
    assert info.value.__cause__ is None


@pytest.mark.usefixtures("no_pillow")
def test_from_path_fit_without_pillow_says_how_to_install_it(tmp_path: Path) -> None:
    path = tmp_path / "face.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(32))
    with pytest.raises(ValidationError, match=r"needs Pillow.*senselink-plus\[images\]"):
        FaceImage.from_path(path, fit=True)


@pytest.mark.usefixtures("no_pillow")
def test_fit_false_needs_no_pillow(tmp_path: Path) -> None:
    path = tmp_path / "face.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(32))
    assert FaceImage.from_path(path).data == path.read_bytes()
    path.write_bytes(b"GIF89a" + bytes(16))
    with pytest.raises(ValidationError, match="not a JPEG or PNG"):
        FaceImage.from_path(path)


def test_fit_false_still_refuses_an_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(MAX_IMAGE_BYTES))
    with pytest.raises(ValidationError, match=f"is {MAX_IMAGE_BYTES + 8} bytes; the limit is"):
        FaceImage.from_path(path)


# --- helpers (Pillow) ----------------------------------------------------------------


@pytest.fixture
def _pillow() -> None:
    pytest.importorskip("PIL")


pillow = pytest.mark.usefixtures("_pillow")


def encode(picture: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **params)
    return buffer.getvalue()


def noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """Random pixels: they compress badly, so a modest size is over the limit."""
    rng = random.Random(seed)
    return Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))


def with_square(picture: Image.Image, rect: Rectangle) -> Image.Image:
    right, bottom = rect.left + rect.width, rect.top + rect.height
    picture.paste(RED, (rect.left, rect.top, right, bottom))
    return picture


def exif(orientation: int) -> Image.Exif:
    tags = Image.Exif()
    tags[ORIENTATION] = orientation
    return tags


def decoded(image: FaceImage) -> Image.Image:
    picture = Image.open(io.BytesIO(image.data))
    picture.load()
    return picture


def is_red(colour: list[float]) -> bool:
    return colour[0] > 190 and colour[1] < 70 and colour[2] < 70


def assert_square_at(picture: Image.Image, rect: Rectangle, margin: int = 2) -> None:
    """The pixels inside ``rect`` are red; those just outside each edge are not."""
    left, top = rect.left, rect.top
    right, bottom = left + rect.width, top + rect.height
    inner = (left + margin, top + margin, right - margin, bottom - margin)
    assert is_red(ImageStat.Stat(picture.crop(inner)).mean), f"{rect} is not on the square"
    w = 3
    outside = [
        (left - margin - w, top, left - margin, bottom),
        (right + margin, top, right + margin + w, bottom),
        (left, top - margin - w, right, top - margin),
        (left, bottom + margin, right, bottom + margin + w),
    ]
    for box in outside:
        if box[0] >= 0 and box[1] >= 0 and box[2] <= picture.width and box[3] <= picture.height:
            mean = ImageStat.Stat(picture.crop(box)).mean
            assert not is_red(mean), f"the square reaches past {rect} into {box}"


def scaled(box: tuple[int, int, int, int], old: tuple[int, int], new: tuple[int, int]) -> Rectangle:
    """What the fit promises: scaled by the picture's factor, rounded outwards."""
    left, top, right, bottom = box
    sx, sy = Fraction(new[0], old[0]), Fraction(new[1], old[1])
    left, top = math.floor(left * sx), math.floor(top * sy)
    right, bottom = math.ceil(right * sx), math.ceil(bottom * sy)
    return Rectangle(top=top, left=left, width=right - left, height=bottom - top)


# --- unchanged when already acceptable -------------------------------------------------


@pillow
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_small_jpeg_or_png_is_kept_byte_for_byte(tmp_path: Path, fmt: str) -> None:
    # Even with an EXIF orientation: an acceptable file is never touched.
    data = encode(with_square(noise((120, 90)), Rectangle(10, 10, 20, 20)), fmt, exif=exif(6))
    path = tmp_path / f"face.{fmt.lower()}"
    path.write_bytes(data)
    rect = Rectangle(top=10, left=10, width=500, height=500)
    for image in (FaceImage.from_path(path, rectangle=rect, fit=True), FaceImage.fit(data, rect)):
        assert image.data == data
        assert image.rectangle == rect


# --- oversized -> smaller JPEG -----------------------------------------------------------


@pillow
def test_a_large_noisy_png_becomes_a_smaller_jpeg_with_its_rectangle_scaled(
    tmp_path: Path,
) -> None:
    size = (1800, 1400)
    rect = Rectangle(top=400, left=600, width=400, height=300)
    data = encode(with_square(noise(size), rect), "PNG", compress_level=0)
    assert len(data) > MAX_IMAGE_BYTES
    path = tmp_path / "face.png"
    path.write_bytes(data)

    image = FaceImage.from_path(path, rectangle=rect, fit=True)

    assert image.content_type == "image/jpeg"
    assert len(image.data) <= MAX_IMAGE_BYTES
    picture = decoded(image)
    # Random pixels do not fit even at the lowest quality: it had to shrink, both sides alike.
    assert picture.width < size[0]
    assert picture.width / size[0] == pytest.approx(picture.height / size[1], abs=1e-3)
    assert image.rectangle == scaled((600, 400, 1000, 700), size, picture.size)
    assert_square_at(picture, image.rectangle)


@pillow
def test_scaled_rectangle_numbers_at_three_quarters() -> None:
    # 0.75 exactly: the numbers are exact too.
    rect = Rectangle(top=400, left=600, width=400, height=300)
    assert _imagefit._place(rect, 1, (1800, 1400), (1350, 1050)) == Rectangle(
        top=300, left=450, width=300, height=225
    )
    # Otherwise rounded outwards, so the face stays inside.
    assert _imagefit._place(Rectangle(1, 1, 3, 3), 1, (10, 10), (5, 5)) == Rectangle(
        top=0, left=0, width=2, height=2
    )


# --- other formats -> JPEG -------------------------------------------------------------


@pillow
@pytest.mark.parametrize(
    ("fmt", "params"),
    [("WEBP", {"quality": 95}), ("BMP", {}), ("GIF", {}), ("TIFF", {})],
)
def test_other_formats_become_jpeg(
    fmt: str, params: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    rect = Rectangle(top=20, left=30, width=40, height=30)
    picture = with_square(Image.new("RGB", (160, 120), BACKGROUND), rect)
    data = encode(picture, fmt, **params)
    with caplog.at_level(logging.DEBUG, logger="senselink_plus"):
        image = FaceImage.fit(data, rect)
    assert image.content_type == "image/jpeg"
    assert image.rectangle == rect
    out = decoded(image)
    assert out.size == (160, 120)
    assert_square_at(out, rect)
    assert f"{len(data)} bytes {fmt}" in caplog.text
    assert "-> " in caplog.text


@pillow
@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_flattened_on_white(mode: str) -> None:
    if mode == "P":  # a GIF whose palette entry 0 is transparent
        source = Image.new("P", (64, 64), 0)
        source.putpalette([0, 0, 0, 255, 0, 0])
        source.paste(1, (16, 16, 48, 48))
        data = encode(source, "GIF", transparency=0)
    else:
        source = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
        source.paste((255, 0, 0, 255), (16, 16, 48, 48))
        data = encode(source.convert(mode), "WEBP", lossless=True)
    out = decoded(FaceImage.fit(data))
    assert out.mode == "RGB"
    corner = ImageStat.Stat(out.crop((0, 0, 8, 8))).mean
    assert min(corner) > 245, f"the transparent area is {corner}, not white"
    centre = ImageStat.Stat(out.crop((24, 24, 40, 40))).mean
    opaque = (76, 76, 76) if mode == "LA" else RED  # red in grey is 76
    assert centre == pytest.approx(opaque, abs=8)


@pillow
def test_sixteen_bit_and_cmyk_pictures_are_converted() -> None:
    grey = Image.new("I;16", (32, 32), 40000)  # 40000 / 256 = 156
    out = decoded(FaceImage.fit(encode(grey, "TIFF")))
    assert ImageStat.Stat(out).mean == pytest.approx([156, 156, 156], abs=2)
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # red
    assert is_red(ImageStat.Stat(decoded(FaceImage.fit(encode(cmyk, "TIFF")))).mean)


# --- EXIF orientation ------------------------------------------------------------------

# A 1200 x 900 stored picture with the face box at left 100, top 150, 300 x 200 ...
STORED = (1200, 900)
STORED_RECT = Rectangle(top=150, left=100, width=300, height=200)
# ... lands here once upright (left, top, right, bottom; worked out by hand).
UPRIGHT = {
    3: ((1200, 900), (800, 550, 1100, 750)),  # turned half round
    6: ((900, 1200), (550, 100, 750, 400)),  # turned a quarter clockwise
    8: ((900, 1200), (150, 800, 350, 1100)),  # a quarter anticlockwise
}


@pillow
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_an_exif_rotated_jpeg_is_turned_upright_with_its_rectangle(orientation: int) -> None:
    stored = with_square(noise(STORED, seed=orientation), STORED_RECT)
    data = encode(stored, "JPEG", quality=95, exif=exif(orientation))
    assert len(data) > MAX_IMAGE_BYTES

    image = FaceImage.fit(data, STORED_RECT)

    assert len(image.data) <= MAX_IMAGE_BYTES
    out = decoded(image)
    upright_size, box = UPRIGHT[orientation]
    assert out.width / out.height == pytest.approx(upright_size[0] / upright_size[1], abs=1e-2)
    assert ORIENTATION not in out.getexif(), "the orientation was applied; the tag must go"
    assert image.rectangle == scaled(box, upright_size, out.size)
    assert_square_at(out, image.rectangle)


@pillow
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_moves_the_rectangle_with_the_pixels(orientation: int) -> None:
    rect = Rectangle(top=8, left=12, width=20, height=10)
    stored = with_square(Image.new("RGB", (90, 60), BACKGROUND), rect)
    data = encode(stored, "WEBP", lossless=True, exif=exif(orientation))
    image = FaceImage.fit(data, rect)
    out = decoded(image)
    assert out.size == ((60, 90) if orientation >= 5 else (90, 60))
    assert image.rectangle is not None
    assert_square_at(out, image.rectangle, margin=1)


@pillow
def test_a_tiff_whose_loader_applies_the_orientation_still_gets_it_once() -> None:
    rect = Rectangle(top=8, left=12, width=20, height=10)
    stored = with_square(Image.new("RGB", (90, 60), BACKGROUND), rect)
    image = FaceImage.fit(encode(stored, "TIFF", exif=exif(6)), rect)
    out = decoded(image)
    assert out.size == (60, 90)
    assert image.rectangle == Rectangle(top=12, left=42, width=10, height=20)
    assert_square_at(out, image.rectangle, margin=1)


# --- rectangle bounds ------------------------------------------------------------------


@pillow
def test_a_rectangle_past_the_edge_is_clipped() -> None:
    data = encode(Image.new("RGB", (100, 80), BACKGROUND), "BMP")
    image = FaceImage.fit(data, Rectangle(top=50, left=70, width=100, height=100))
    assert image.rectangle == Rectangle(top=50, left=70, width=30, height=30)


@pillow
def test_a_rectangle_outside_the_picture_is_refused() -> None:
    data = encode(Image.new("RGB", (100, 80), BACKGROUND), "BMP")
    with pytest.raises(ValidationError, match="outside the 100x80 image") as info:
        FaceImage.fit(data, Rectangle(top=80, left=0, width=10, height=10))
    assert info.value.field == "rectangle"


# --- what cannot be read ---------------------------------------------------------------


@pillow
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"this is not a picture at all", "not a picture Pillow can read"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not a picture Pillow"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC/HEIF"),
        (b"", "empty"),
    ],
)
def test_an_unreadable_picture_is_a_validation_error(data: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        FaceImage.fit(data)
    assert info.value.field == "image"
    assert info.value.__cause__ is None


@pillow
def test_a_truncated_picture_is_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.webp"
    path.write_bytes(encode(noise((64, 64)), "WEBP")[:300])
    with pytest.raises(ValidationError, match=r"'.*cut\.webp' could not be decoded"):
        FaceImage.from_path(path, fit=True)


@pillow
def test_from_path_fit_refuses_a_huge_file_before_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.tif"
    with path.open("wb") as handle:
        handle.truncate(_imagefit.MAX_SOURCE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(ValidationError, match=f"the limit is {_imagefit.MAX_SOURCE_BYTES}"):
        FaceImage.from_path(path, fit=True)


@pillow
def test_from_path_fit_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read image"):
        FaceImage.from_path(tmp_path / "missing.webp", fit=True)


@pillow
def test_fit_type_checks_like_the_constructor() -> None:
    with pytest.raises(ValidationError, match="must be bytes"):
        FaceImage.fit("face.jpg")  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as info:
        FaceImage.fit(b"GIF89a", (1, 2, 3, 4))  # type: ignore[arg-type]
    assert info.value.field == "rectangle"


@pillow
def test_an_rgb_icc_profile_is_kept_and_other_metadata_dropped() -> None:
    image_cms = pytest.importorskip("PIL.ImageCms")
    srgb = image_cms.ImageCmsProfile(image_cms.createProfile("sRGB")).tobytes()
    tags = exif(1)
    tags[0x010F] = "CameraMaker"  # Make
    data = encode(Image.new("RGB", (32, 32), BACKGROUND), "WEBP", icc_profile=srgb, exif=tags)
    out = decoded(FaceImage.fit(data))
    assert out.info.get("icc_profile") == srgb
    assert not out.getexif()
