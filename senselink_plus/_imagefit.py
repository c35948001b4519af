"""Re-encode any photo Pillow reads into a JPEG the service accepts, keeping the face box.

Pillow is the optional ``images`` extra: it is imported inside the functions that need
it, so ``import senselink_plus`` never loads it.

>>> data, rect = fit_image(webp_bytes, Rectangle(top=40, left=60, width=200, height=200))
... # doctest: +SKIP
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

from ._exceptions import ValidationError
from ._image import MAX_IMAGE_BYTES, Rectangle, image_type

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["INSTALL_HINT", "MAX_SOURCE_BYTES", "fit_image", "require_pillow"]

logger = logging.getLogger("senselink_plus")

INSTALL_HINT = "pip install 'senselink-plus[images]'"
#: The largest file ``FaceImage.from_path(..., fit=True)`` reads; refused before reading.
MAX_SOURCE_BYTES = 256 * 2**20

#: Tried in order at each size; the first encoding under the limit wins.
QUALITIES = (90, 85, 75, 65)
#: Each downscale multiplies both sides by at most this much.
SCALE_STEP = 0.75

# Pillow formats a face photo comes in. Anything else (EPS above all: it runs
# Ghostscript) is not even tried. HEIF and AVIF count when a plugin registers them.
_PHOTO_FORMATS = (
    *("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "DIB", "TIFF"),
    *("HEIF", "AVIF", "JPEG2000", "PPM", "TGA"),
)
# ISO base media brands (bytes 8-12 after "ftyp") of HEIC/HEIF and AVIF files.
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_ORIENTATION_TAG = 0x0112
# An ICC profile is kept only when small: it is copied into every attempt.
_MAX_ICC_BYTES = 64 * 1024


def require_pillow() -> None:
    """Raise `ValidationError` with the install command when Pillow is missing."""
    try:
        from PIL import Image, ImageOps  # noqa: F401
    except ImportError:
        raise ValidationError(
            f"fitting an image needs Pillow, which is not installed; install it with: "
            f"{INSTALL_HINT}",
            field="image",
        ) from None


def fit_image(
    data: bytes, rectangle: Rectangle | None = None, *, what: str = "image"
) -> tuple[bytes, Rectangle | None]:
    """Return ``data`` unchanged when it is a JPEG or PNG within the limit, else a JPEG under it.

    Re-encoding applies the EXIF orientation, flattens transparency on white, lowers the
    JPEG quality through `QUALITIES` and then shrinks the picture until it fits. EXIF
    and other metadata are dropped (an RGB ICC profile is kept). ``rectangle`` is read
    in the file's stored pixel grid (before orientation, as for an unchanged upload)
    and comes back rotated, scaled and clipped to the new picture, rounded outwards so
    the face stays inside. ``what`` names the image in error messages.
    """
    require_pillow()
    data = _checked_input(data, rectangle, what)
    if image_type(data) is not None and len(data) <= MAX_IMAGE_BYTES:
        return data, rectangle

    picture, orientation, source_format = _decode(data, what)
    if rectangle is not None:
        # Checked before the slow part: a box outside the picture is a caller's mistake.
        _place(rectangle, orientation, picture.size, picture.size)
    icc = _rgb_profile(picture)
    rgb = _to_rgb(picture)
    encoded, scaled = _shrink(rgb, icc, what)
    logger.debug(
        "fitted %s: %d bytes %s %dx%d -> %d bytes JPEG %dx%d",
        what,
        len(data),
        source_format,
        rgb.width,
        rgb.height,
        len(encoded),
        *scaled,
    )
    placed = None if rectangle is None else _place(rectangle, orientation, rgb.size, scaled)
    return encoded, placed


def _checked_input(data: object, rectangle: object, what: str) -> bytes:
    """``data`` as bytes, once it and ``rectangle`` have the types asked for."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValidationError(
            f"{what} data must be bytes, not {type(data).__name__}", field="image"
        )
    if rectangle is not None and not isinstance(rectangle, Rectangle):
        raise ValidationError(
            f"rectangle must be a Rectangle, not {type(rectangle).__name__}", field="rectangle"
        )
    if not data:
        raise ValidationError(f"{what} is empty", field="image")
    return bytes(data)


def _rgb_profile(picture: Image.Image) -> bytes | None:
    """The picture's ICC profile when it is a small RGB one, else None."""
    icc = picture.info.get("icc_profile")
    if isinstance(icc, bytes) and icc[16:20] == b"RGB " and len(icc) <= _MAX_ICC_BYTES:
        return icc
    return None  # a CMYK or grey profile would misdescribe the RGB pixels written


def _decode(data: bytes, what: str) -> tuple[Image.Image, int, str]:
    """Decode and turn upright; return the picture, the EXIF orientation and the format."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.init()  # registers every plugin, so the allow-list below can be checked
    formats = [name for name in _PHOTO_FORMATS if name in Image.OPEN]
    try:
        picture = Image.open(io.BytesIO(data), formats=formats)
        source_format = picture.format or "unknown"
        # Read before load(): the TIFF loader applies the orientation itself and drops
        # the tag, and the rectangle must follow whichever did the turning.
        orientation = picture.getexif().get(_ORIENTATION_TAG, 1)
        picture.load()
        upright = ImageOps.exif_transpose(picture)
    except UnidentifiedImageError:
        raise ValidationError(_unidentified(data, what), field="image") from None
    except MemoryError:
        raise
    # Pillow's decoders raise many types on corrupt input (OSError, SyntaxError,
    # struct.error, DecompressionBombError...); all of them mean the same to a caller.
    except Exception as exc:
        raise ValidationError(
            f"{what} could not be decoded: {type(exc).__name__}: {exc}", field="image"
        ) from None
    if orientation not in (2, 3, 4, 5, 6, 7, 8):
        orientation = 1  # exif_transpose ignores any other value, and so must we
    return upright, orientation, source_format


def _unidentified(data: bytes, what: str) -> str:
    brand = data[8:12] if data[4:8] == b"ftyp" else b""
    if brand in _HEIF_BRANDS or brand in _AVIF_BRANDS:
        kind = "HEIC/HEIF" if brand in _HEIF_BRANDS else "AVIF"
        return (
            f"{what} is {kind}, which this Pillow cannot read without a plugin: install "
            f"pillow-heif and call pillow_heif.register_heif_opener(), or convert it to JPEG"
        )
    return f"{what} is not a picture Pillow can read (tried {', '.join(_PHOTO_FORMATS)})"


def _to_rgb(picture: Image.Image) -> Image.Image:
    """An RGB copy: 16-bit scaled to 8, transparency flattened on white."""
    from PIL import Image

    if picture.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N"):
        picture = picture.convert("I")
        extrema = picture.getextrema()
        if isinstance(extrema[1], (int, float)) and extrema[1] > 255:
            picture = picture.point(lambda value: value / 256)  # 16-bit samples to 8
        picture = picture.convert("L")
    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return picture.convert("RGB")


def _shrink(picture: Image.Image, icc: bytes | None, what: str) -> tuple[bytes, tuple[int, int]]:
    """Encode at falling quality, then at falling size, until under the limit."""
    from PIL import Image

    width, height = picture.size
    scale = 1.0
    current = picture
    while True:
        for quality in QUALITIES:
            encoded = _encode(current, quality, icc)
            if len(encoded) <= MAX_IMAGE_BYTES:
                return encoded, current.size
            if len(encoded) > 3 * MAX_IMAGE_BYTES:
                break  # lower qualities save about half at most: only shrinking can help
        # Bytes grow about with the pixel count, so when far over, jump further.
        scale *= min(SCALE_STEP, 0.95 * (MAX_IMAGE_BYTES / len(encoded)) ** 0.5)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if size == current.size:
            raise ValidationError(
                f"{what} cannot be made smaller than {MAX_IMAGE_BYTES} bytes", field="image"
            )
        # Always from the full picture, so each step blurs only once.
        current = picture.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode(picture: Image.Image, quality: int, icc: bytes | None) -> bytes:
    buffer = io.BytesIO()
    if icc is None:
        picture.save(buffer, "JPEG", quality=quality, optimize=True)
    else:
        picture.save(buffer, "JPEG", quality=quality, optimize=True, icc_profile=icc)
    return buffer.getvalue()


def orient_box(
    box: tuple[int, int, int, int], orientation: int, size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Map ``(left, top, right, bottom)`` in a stored ``size`` picture to the upright one.

    ``orientation`` is the EXIF value; each case is the Pillow transpose that
    ``ImageOps.exif_transpose`` applies for it.

    >>> orient_box((10, 20, 30, 60), 6, (100, 80))  # 90 degrees clockwise
    (20, 10, 60, 30)
    """
    left, top, right, bottom = box
    width, height = size
    if orientation == 2:  # FLIP_LEFT_RIGHT
        return width - right, top, width - left, bottom
    if orientation == 3:  # ROTATE_180
        return width - right, height - bottom, width - left, height - top
    if orientation == 4:  # FLIP_TOP_BOTTOM
        return left, height - bottom, right, height - top
    if orientation == 5:  # TRANSPOSE: (x, y) -> (y, x)
        return top, left, bottom, right
    if orientation == 6:  # ROTATE_270: (x, y) -> (H - y, x)
        return height - bottom, left, height - top, right
    if orientation == 7:  # TRANSVERSE: (x, y) -> (H - y, W - x)
        return height - bottom, width - right, height - top, width - left
    if orientation == 8:  # ROTATE_90: (x, y) -> (y, W - x)
        return top, width - right, bottom, width - left
    return box


def _place(
    rectangle: Rectangle,
    orientation: int,
    upright: tuple[int, int],
    scaled: tuple[int, int],
) -> Rectangle:
    """Clip to the stored picture, turn upright, scale to ``scaled``; round outwards."""
    stored = (upright[1], upright[0]) if orientation in (5, 6, 7, 8) else upright
    left, top = rectangle.left, rectangle.top
    right = min(rectangle.left + rectangle.width, stored[0])
    bottom = min(rectangle.top + rectangle.height, stored[1])
    if left >= right or top >= bottom:
        raise ValidationError(
            f"rectangle {rectangle} lies outside the {stored[0]}x{stored[1]} image",
            field="rectangle",
        )
    left, top, right, bottom = orient_box((left, top, right, bottom), orientation, stored)
    # Integer arithmetic: a float 0.75 * 400 may land a hair above 300 and ceil to 301.
    (up_w, up_h), (new_w, new_h) = upright, scaled
    left, top = left * new_w // up_w, top * new_h // up_h
    right = min(new_w, -(-right * new_w // up_w))
    bottom = min(new_h, -(-bottom * new_h // up_h))
    return Rectangle(top=top, left=left, width=right - left, height=bottom - top)
