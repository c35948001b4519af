"""A pytest plugin with a ``senselink_emulator`` fixture: a running `Emulator` per test.

Installed packages register it through the ``pytest11`` entry point, so a test suite
only has to ask for the fixture. It works under pytest-asyncio (strict mode with
``@pytest.mark.asyncio``, or auto mode) and under anyio's plugin (``@pytest.mark.anyio``
on the asyncio backend)::

    @pytest.mark.asyncio
    async def test_gate_uploads(senselink_emulator):
        async with senselink_emulator.client() as client:
            ...

Without an async plugin the test fails with a message saying what to install; it is
never skipped.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._emulator import Emulator

__all__ = ["senselink_emulator"]

NO_ASYNC_PLUGIN = (
    "the senselink_emulator fixture needs an async test: install pytest-asyncio "
    "(pip install 'senselink-plus[test]' or pytest-asyncio) and mark the test "
    "@pytest.mark.asyncio or set asyncio_mode = \"auto\"; or use anyio's plugin "
    "(pip install anyio) and mark the test @pytest.mark.anyio"
)


async def _started() -> AsyncIterator[Emulator]:
    # The emulator (and aiohttp.web) load only when a test asks for the fixture, so the
    # plugin costs nothing in suites that never use it.
    from ._emulator import Emulator

    async with Emulator() as emulator:
        yield emulator


@pytest.fixture
async def _senselink_emulator_anyio() -> AsyncIterator[Emulator]:
    """The emulator on anyio's runner (its plugin runs async fixtures of anyio tests)."""
    async for emulator in _started():
        yield emulator


if importlib.util.find_spec("pytest_asyncio") is not None:
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def _senselink_emulator_asyncio() -> AsyncIterator[Emulator]:
        """The emulator on pytest-asyncio's loop (strict and auto mode alike)."""
        async for emulator in _started():
            yield emulator


def _anyio_backend_name(request: pytest.FixtureRequest) -> str:
    backend: Any = request.getfixturevalue("anyio_backend")
    name = backend[0] if isinstance(backend, tuple) else backend
    return str(name)


@pytest.fixture
def senselink_emulator(request: pytest.FixtureRequest) -> Emulator:
    """A started `Emulator` with default settings, stopped after the test.

    Runs on whichever async plugin runs the test: pytest-asyncio or anyio (asyncio
    backend). Without one, the test fails and says what to install.

    >>> @pytest.mark.asyncio  # doctest: +SKIP
    ... async def test_list(senselink_emulator):
    ...     senselink_emulator.seed(10, start=t0, span=timedelta(hours=1))
    """
    if "anyio_backend" in request.fixturenames:
        name = _anyio_backend_name(request)
        if name != "asyncio":
            pytest.fail(
                f"the senselink_emulator fixture runs on asyncio (aiohttp), not the anyio "
                f"backend {name!r}: parametrize anyio_backend with 'asyncio'",
                pytrace=False,
            )
        emulator: Emulator = request.getfixturevalue("_senselink_emulator_anyio")
        return emulator
    if (
        request.config.pluginmanager.hasplugin("asyncio")
        and request.node.get_closest_marker("asyncio") is not None
    ):
        emulator = request.getfixturevalue("_senselink_emulator_asyncio")
        return emulator
    pytest.fail(NO_ASYNC_PLUGIN, pytrace=False)
