"""A pytest plugin with a ``senselink_emulator`` fixture: a running `Emulator` per test.

Installed packages register it through the ``pytest11`` entry point, so a test suite
only has to ask for the fixture::

    async def test_gate_uploads(senselink_emulator):
        async with senselink_emulator.client() as client:
            ...
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._emulator import Emulator

__all__ = ["senselink_emulator"]

# The emulator (and aiohttp) load only when a test asks for the fixture, so the plugin
# costs nothing in suites that never use it.
if importlib.util.find_spec("pytest_asyncio") is not None:
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def senselink_emulator() -> AsyncIterator[Emulator]:
        """A started `Emulator` with default settings, stopped after the test.

        >>> async def test_list(senselink_emulator):  # doctest: +SKIP
        ...     senselink_emulator.seed(10, start=t0, span=timedelta(hours=1))
        """
        from ._emulator import Emulator

        async with Emulator() as emulator:
            yield emulator

else:

    @pytest.fixture
    def senselink_emulator() -> Emulator:
        """Skips: the async fixture needs pytest-asyncio."""
        pytest.skip(
            "the senselink_emulator fixture needs pytest-asyncio: "
            "pip install 'senselink-plus[test]' (or pytest-asyncio)"
        )
