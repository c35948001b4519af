"""Shared by the examples: the real cloud when credentials are set, else a local emulator."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import senselink_plus as slp
from senselink_plus.testing import Emulator


@asynccontextmanager
async def example_client(
    prepare: Callable[[Emulator], None] | None = None, **options: object
) -> AsyncIterator[slp.Client]:
    """``slp.Client()`` when SENSELINK_APP_KEY is set; otherwise an emulator's client.

    ``prepare`` fills the emulator with sample data (never called for the cloud).
    """
    if os.environ.get("SENSELINK_APP_KEY"):
        async with slp.Client(**options) as client:  # type: ignore[arg-type]
            yield client
        return
    async with Emulator() as emu:
        if prepare is not None:
            prepare(emu)
        print(f"(no SENSELINK_APP_KEY: using a local emulator at {emu.base_url})")
        async with emu.client(**options) as client:
            yield client
