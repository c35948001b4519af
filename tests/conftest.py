"""Shared fixtures: a client on a MockTransport with the fake clock, and envelope helpers."""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import orjson
import pytest

from senselink_plus import Client, HttpRequest, HttpResponse
from senselink_plus.testing._mock import MockTransport
from tests.fake_clock import FakeClock

#: The emulator tests' fixtures (session, api, make) and the CLI tests' (cli_emulator).
pytest_plugins = ["tests.emulator_helpers", "tests.cli_helpers", "tests.watch_helpers"]

APP_KEY = "test-app-key"
APP_SECRET = "s3cr3t-app-secret-value"
BASE_URL = "https://api.test"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + bytes(32)
#: One record as the service lists it (the spec's example values; ``create_at`` in ms).
WIRE_RECORD: dict[str, Any] = {
    "record_id": 1392523,
    "sn": "SN1234012345123",
    "image_id": "5fceef6e1ddb2800010d1409",
    "user_id": 123,
    "verify_score": 0.959,
    "device_timestamp": 130000000,
    "timezone": "GMT+9:00",
    "create_at": 1700000000123,
    "extend": '{"device_name":"x"}',
}
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


#: The name test modules of the session, events and watch used before the one fake clock.
FakeTime = FakeClock


@pytest.fixture
def fake_time() -> FakeClock:
    return FakeClock()


MakeClient = Callable[..., Client]


@pytest.fixture
async def make_client(fake_time: FakeClock) -> AsyncIterator[MakeClient]:
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
    transport = client._session.transport
    assert isinstance(transport, MockTransport)
    return transport


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG, logger="senselink_plus"):
        yield caplog


# --- secrets: every log record of every test is scanned --------------------------------

KNOWN_SECRETS = (APP_SECRET, "emulator-app-secret")
_SIGN_PATTERN = re.compile(r"sign[=:'\" ]+[0-9a-f]{32}", re.IGNORECASE)
_IMAGE_MARKERS = ("/9j/", "iVBORw0KGgo")  # base64 openings of JPEG and PNG data


class _SecretScanner(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        problems = [s for s in KNOWN_SECRETS if s in text]
        if _SIGN_PATTERN.search(text):
            problems.append("a sign")
        problems += [m for m in _IMAGE_MARKERS if m in text]
        if problems:
            self.leaks.append(f"{record.name}: {problems}: {text[:200]}")


@pytest.fixture(autouse=True)
def no_option_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own SENSELINK_TIMEOUT / SENSELINK_MAX_RETRIES never reach a test."""
    monkeypatch.delenv("SENSELINK_TIMEOUT", raising=False)
    monkeypatch.delenv("SENSELINK_MAX_RETRIES", raising=False)


@pytest.fixture(autouse=True)
def no_secrets_in_logs() -> Iterator[None]:
    """At DEBUG level, no log line of any test may hold a secret, a sign or image data."""
    scanner = _SecretScanner()
    root = logging.getLogger()
    sdk = logging.getLogger("senselink_plus")
    old_root, old_sdk = root.level, sdk.level
    root.addHandler(scanner)
    root.setLevel(logging.DEBUG)
    sdk.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(scanner)
        root.setLevel(old_root)
        sdk.setLevel(old_sdk)
    assert not scanner.leaks, "\n".join(scanner.leaks)
