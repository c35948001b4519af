"""Shared fixtures: a client on a MockTransport with fake time, and envelope helpers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import orjson
import pytest

from senselink_plus import Client, HttpRequest, HttpResponse
from senselink_plus.testing._mock import MockTransport

APP_KEY = "test-app-key"
APP_SECRET = "s3cr3t-app-secret-value"
BASE_URL = "https://api.test"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + bytes(32)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)


def envelope(data: Any = None, *, code: int = 200, message: str = "OK", **extra: Any) -> bytes:
    return orjson.dumps({"code": code, "message": message, "data": data, **extra})


def ok(
    data: Any = None, *, status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    return HttpResponse(
        status, {"content-type": "application/json", **(headers or {})}, envelope(data)
    )


def error(
    code: int,
    message: str = "err",
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    desc: str | None = None,
) -> HttpResponse:
    extra = {} if desc is None else {"desc": desc}
    return HttpResponse(
        status,
        {"content-type": "application/json", **(headers or {})},
        envelope(None, code=code, message=message, **extra),
    )


class FakeTime:
    """A clock, a monotonic timer and a sleep that advance together without waiting."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def timer(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


MakeClient = Callable[..., Client]


@pytest.fixture
async def make_client(fake_time: FakeTime) -> AsyncIterator[MakeClient]:
    clients: list[Client] = []

    def make(handler: Callable[[HttpRequest], Any], **options: Any) -> Client:
        options.setdefault("base_url", BASE_URL)
        options.setdefault("clock", fake_time.clock)
        options.setdefault("timer", fake_time.timer)
        options.setdefault("sleep", fake_time.sleep)
        client = Client(APP_KEY, APP_SECRET, transport=MockTransport(handler), **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def transport_of(client: Client) -> MockTransport:
    transport = client._transport
    assert isinstance(transport, MockTransport)
    return transport


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG, logger="senselink_plus"):
        yield caplog
