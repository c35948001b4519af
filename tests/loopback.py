"""A server on 127.0.0.1 that answers as a test says, a port nothing listens on, and a
client for them whose sign never changes and whose back-off never waits."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from senselink_plus import Client, RetryPolicy
from senselink_plus._auth import compute_sign
from tests.conftest import APP_KEY, APP_SECRET, JPEG
from tests.fake_clock import T0, FakeClock

#: The one sign every attempt of a `steady_client` carries.
FIXED_SIGN = compute_sign(int(T0 * 1000), APP_SECRET)
CREATED = {"record_id": 7, "image_id": "0" * 24}
HOUR = (
    datetime(2024, 3, 1, tzinfo=timezone(timedelta(hours=9))),
    datetime(2024, 3, 1, 1, tzinfo=timezone(timedelta(hours=9))),
)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens here any more


class LoopbackServer:
    """A loopback server whose every answer is ``self.answer(request)`` (by default the
    record created); ``seen`` holds each request's method and path."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.answer: Callable[[web.Request], Awaitable[web.StreamResponse]] = self.created
        self.server: TestServer | None = None

    async def created(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"code": 200, "message": "OK", "data": CREATED})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path))
        await request.read()
        return await self.answer(request)

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def __aenter__(self) -> LoopbackServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server(access_log=None)  # its lines would hold the sign
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.server.close()


def steady_client(base_url: str, **options: Any) -> Client:
    """A client signing by a clock that stands still (so `FIXED_SIGN` is every attempt's
    sign), its back-off sleeps passing at once on a clock of their own."""
    options.setdefault("retry", RetryPolicy(max_attempts=3))
    signing, waiting = FakeClock(T0), FakeClock(T0)
    return Client(
        APP_KEY, APP_SECRET, base_url=base_url, clock=signing.clock, sleep=waiting.sleep, **options
    )


async def make_call(client: Client, call: str) -> object:
    """One call by name: ``create``, ``list`` (an hour) or ``image``."""
    if call == "create":
        return await client.create_record("GATE-1", JPEG)
    if call == "list":
        return await client.list_records(*HOUR)
    return await client.get_image("0" * 24)
