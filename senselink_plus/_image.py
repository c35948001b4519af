"""What the service accepts as a face image: the size limit, the two formats, and the
rectangle to search (values and checks, no I/O, no Pillow)."""

from __future__ import annotations

import attrs

from ._checks import check_int

__all__ = ["MAX_IMAGE_BYTES", "MAX_PIXELS", "Rectangle", "image_type"]

#: The largest image the service accepts (raw bytes, before base64).
MAX_IMAGE_BYTES = 1_048_576

#: The largest rectangle coordinate or size (a signed 32-bit pixel count).
MAX_PIXELS = 2**31 - 1

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def image_type(data: bytes) -> str | None:
    """'image/jpeg' or 'image/png' by magic bytes; None for anything else.

    >>> image_type(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(8))
    'image/png'
    """
    if data.startswith(_JPEG_MAGIC):
        return "image/jpeg"
    if data.startswith(_PNG_MAGIC):
        return "image/png"
    return None


@attrs.frozen
class Rectangle:
    """The region of the image to search for a face (the largest face in it is used).

    >>> Rectangle(top=12, left=32, width=84, height=23)
    Rectangle(top=12, left=32, width=84, height=23)
    """

    top: int
    left: int
    width: int
    height: int

    def __attrs_post_init__(self) -> None:
        check_int(self.top, "rectangle.top", minimum=0, maximum=MAX_PIXELS)
        check_int(self.left, "rectangle.left", minimum=0, maximum=MAX_PIXELS)
        check_int(self.width, "rectangle.width", minimum=1, maximum=MAX_PIXELS)
        check_int(self.height, "rectangle.height", minimum=1, maximum=MAX_PIXELS)
