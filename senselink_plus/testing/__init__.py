"""Test helpers: a mock transport and a local emulator of the SenseLink Plus cloud."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._demo import sample_image
from ._mock import MockTransport

if TYPE_CHECKING:
    from ._emulator import Emulator

__all__ = ["Emulator", "MockTransport", "sample_image"]


def __getattr__(name: str) -> Any:
    # The emulator pulls in aiohttp.web; load it only for those who use it.
    if name == "Emulator":
        from ._emulator import Emulator

        return Emulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
