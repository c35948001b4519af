"""What the emulator tests share: plain aiohttp requests signed by hand, and the fixtures
(`session`, `api`, `make`: emulators on the fake clock)."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import attrs
import orjson
import pytest

from senselink_plus._auth import compute_sign
from senselink_plus.testing import Emulator
from tests.conftest import WIRE_RECORD
from tests.fake_clock import FakeClock

B64 = base64.b64encode
JST = timezone(timedelta(hours=9))
UTC = timezone.utc
RECORD = "/api/v1/plus/record"
JPEG = b"\xff\xd8\xff\xe0" + b"face of alice"
JPEG_B = b"\xff\xd8\xff\xe0" + b"face of bob"
PNG = b"\x89PNG\r\n\x1a\n" + b"a png snapshot"
#: A listed record's keys, in the order the service sends them.
RECORD_KEYS = list(WIRE_RECORD)


@attrs.frozen
class Reply:
    status: int
    content_type: str
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def code(self) -> int:
        return int(self.json["code"])

    @property
    def data(self) -> Any:
        assert self.json["code"] == 200, self.json
        return self.json["data"]


class Api:
    """Signs requests as the cloud expects (query app_key/timestamp/sign) and sends them."""

    def __init__(self, session: aiohttp.ClientSession, emu: Emulator) -> None:
        self.session = session
        self.emu = emu

    def auth(
        self,
        *,
        key: str | None = None,
        secret: str | None = None,
        timestamp: int | str | None = None,
    ) -> dict[str, str]:
        stamp = str(round(self.emu.clock() * 1000) if timestamp is None else timestamp)
        return {
            "app_key": key or self.emu.app_key,
            "timestamp": stamp,
            "sign": compute_sign(stamp, secret or self.emu.app_secret),
        }

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        auth: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Reply:
        query = {
            **(self.auth() if auth is None else auth),
            **{k: str(v) for k, v in (params or {}).items()},
        }
        if "json" in kwargs:
            # A stream, because aiohttp warns (an error under -W error) on big raw bodies.
            kwargs["data"] = io.BytesIO(orjson.dumps(kwargs.pop("json")))
            kwargs["headers"] = {"Content-Type": "application/json"}
        async with self.session.request(
            method, self.emu.base_url + path, params=query, **kwargs
        ) as response:
            return Reply(
                response.status, response.content_type, response.headers, await response.read()
            )

    async def create(self, image: bytes = JPEG, **fields: Any) -> Reply:
        body = {
            "sn": "SN1",
            "timestamp": 1658136457,
            "image": {"data": base64.b64encode(image).decode()},
            **fields,
        }
        return await self.send("POST", RECORD, json=body)

    async def list(self, time_from: datetime, time_to: datetime, **params: Any) -> Reply:
        return await self.send(
            "GET",
            RECORD,
            params={"time_from": time_from.isoformat(), "time_to": time_to.isoformat(), **params},
        )

    async def image(self, image_id: str) -> Reply:
        return await self.send("GET", f"/api/v1/plus/image/{image_id}")


def at(seconds: float, tz: timezone = JST) -> datetime:
    return datetime.fromtimestamp(seconds, tz)


Factory = Callable[..., Awaitable[tuple[Emulator, Api]]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def api(senselink_emulator: Emulator, session: aiohttp.ClientSession) -> Api:
    return Api(session, senselink_emulator)


@pytest.fixture
async def make(session: aiohttp.ClientSession) -> AsyncIterator[Factory]:
    """Start emulators with custom settings (a fake clock by default)."""
    async with AsyncExitStack() as stack:

        async def factory(**options: Any) -> tuple[Emulator, Api]:
            options.setdefault("clock", FakeClock())
            emu = await stack.enter_async_context(Emulator(**options))
            return emu, Api(session, emu)

        yield factory


# -- lifecycle and plugin -------------------------------------------------------------
