"""Test helpers: a mock transport, response builders, and a local emulator of the cloud.

>>> from senselink_plus.testing import MockTransport, record_page_response, wire_record
>>> mock = MockTransport(lambda request: record_page_response([wire_record(1)]))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._public import rehome
from ._mock import MockTransport
from ._responses import (
    created_record_response,
    error_response,
    image_response,
    record_page_response,
    wire_record,
)
from ._samples import sample_image

if TYPE_CHECKING:
    from ._emulator import Emulator

__all__ = [
    "Emulator",
    "MockTransport",
    "created_record_response",
    "error_response",
    "image_response",
    "record_page_response",
    "sample_image",
    "wire_record",
]


rehome(globals(), [name for name in __all__ if name != "Emulator"], __name__)


def __getattr__(name: str) -> Any:
    # The emulator pulls in aiohttp.web; load it only for those who use it.
    if name == "Emulator":
        from ._emulator import Emulator

        rehome({"Emulator": Emulator}, ["Emulator"], __name__)
        return Emulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
