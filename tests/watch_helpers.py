"""Shared by the watch tests: one fake clock for the emulator and the client, the
emulator on it, client factories, and small helpers to store and take records.

The test modules override ``fake_time`` with `Clock`, so ``make_client`` shares it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from senselink_plus import (
    Client,
    HttpRequest,
    HttpResponse,
    Record,
)
from senselink_plus.testing import Emulator
from tests.conftest import FakeTime, ok
from tests.fake_listing import list_data

T0 = 1_700_000_000.0  # the fake clock's start: 2023-11-14T22:13:20Z
OVERLAP = timedelta(minutes=2)


def at(seconds: float) -> datetime:
    """The aware UTC instant ``seconds`` after T0 (negative: before)."""
    return datetime.fromtimestamp(T0 + seconds, timezone.utc)


class Clock(FakeTime):
    """One fake clock for the emulator and the client; sleeping advances it at once.

    ``on_sleep(before, after)`` runs after each sleep, so a test can store records
    "while" the watch waits; ``limit`` turns a watch that would spin forever into a
    failure (a RuntimeError is not a SenseLinkError, so the watch lets it through).
    """

    def __init__(self, start: float = T0) -> None:
        super().__init__(start)
        self.on_sleep: Callable[[float, float], Awaitable[None]] | None = None
        self.limit = 2_000

    async def sleep(self, seconds: float) -> None:
        before = self.now
        await super().sleep(seconds)
        if len(self.sleeps) > self.limit:
            raise RuntimeError(f"the watch slept {len(self.sleeps)} times")
        if self.on_sleep is not None:
            await self.on_sleep(before, self.now)


class WatchStopped(Exception):
    """Raised from a test's fake sleep to end a watch that yields nothing."""


@pytest.fixture
async def emu(fake_time: Clock) -> AsyncIterator[Emulator]:
    async with Emulator(clock=fake_time.clock) as emulator:
        yield emulator


ClientFactory = Callable[..., Client]


@pytest.fixture
async def watch_client(emu: Emulator, fake_time: Clock) -> AsyncIterator[ClientFactory]:
    """Clients on the emulator, on the shared fake clock, closed after the test."""
    clients: list[Client] = []

    def factory(**options: Any) -> Client:
        options.setdefault("clock", fake_time.clock)
        options.setdefault("timer", fake_time.timer)
        options.setdefault("sleep", fake_time.sleep)
        options.setdefault("rng", random.Random(1234))
        client = emu.client(**options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


def store(emu: Emulator, when: float, n: int = 1, span: float = 0.0) -> list[int]:
    """Store ``n`` records spread over ``[T0 + when, T0 + when + span]``; return their ids."""
    return list(emu.seed(n, start=at(when), span=timedelta(seconds=span), sn="GATE-1"))


def store_between(emu: Emulator, before: float, after: float, n: int) -> list[int]:
    """Store ``n`` records strictly inside the fake interval ``(before, after)``."""
    step = (after - before) / (n + 1)
    ids: list[int] = []
    for i in range(1, n + 1):
        ids += store(emu, before - T0 + i * step)
    return ids


async def take(watch: AsyncIterator[Record], n: int) -> list[Record]:
    """The next ``n`` records of a watch, closing it afterwards."""
    got: list[Record] = []
    if n == 0:
        return got
    async with contextlib.aclosing(watch):  # type: ignore[type-var]
        async for record in watch:
            got.append(record)
            if len(got) == n:
                break
    return got


def ids(records: list[Record]) -> list[int]:
    return [r.record_id for r in records]


def list_windows(emu: Emulator) -> list[tuple[datetime, datetime]]:
    return [
        (datetime.fromisoformat(r.query["time_from"]), datetime.fromisoformat(r.query["time_to"]))
        for r in emu.requests
        if r.route == "list"
    ]


class MemoryCheckpoint:
    """A custom checkpoint: async load/save of a copy, counting saves."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None
        self.saves: list[dict[str, Any]] = []

    async def load(self) -> Mapping[str, Any] | None:
        await asyncio.sleep(0)
        return copy.deepcopy(self.state)

    async def save(self, state: Mapping[str, Any]) -> None:
        await asyncio.sleep(0)
        self.state = copy.deepcopy(dict(state))
        self.saves.append(self.state)


class ListServer:
    """A list endpoint over a table the test edits, so commit order can be chosen.

    The emulator stamps ``create_at`` on arrival and never lets it go back; a real
    service may commit a record after a newer one, with an earlier ``create_at``.
    """

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.calls: list[dict[str, str]] = []
        self.fail_next = 0

    def add(self, record_id: int, seconds: float) -> int:
        ms = round((T0 + seconds) * 1000)
        self.rows.append(
            {
                "record_id": record_id,
                "sn": "GATE-1",
                "image_id": f"{record_id:024x}",
                "user_id": None,
                "verify_score": 0.3,
                "device_timestamp": ms // 1000,
                "timezone": "GMT+0:00",
                "create_at": ms,
                "extend": None,
            }
        )
        self.rows.sort(key=lambda row: row["record_id"])
        return record_id

    def __call__(self, request: HttpRequest) -> HttpResponse:
        q = dict(request.params)
        self.calls.append(q)
        if self.fail_next:
            self.fail_next -= 1
            return HttpResponse(503, {"content-type": "application/json"}, b"{}")
        return ok(list_data(self.rows, q))  # the one window rule of the fake listing
