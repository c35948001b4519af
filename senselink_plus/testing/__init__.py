"""Test helpers: a mock transport and a local emulator of the SenseLink Plus cloud."""

from ._emulator import Emulator
from ._mock import MockTransport

__all__ = ["Emulator", "MockTransport"]
