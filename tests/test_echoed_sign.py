"""A sign echoed back by the server or a proxy (in the envelope's ``message`` or
``desc``, in a header as ``sign%3D...`` or ``sign: ...``, in any case) is masked in
everything made from the response: the error's str, repr, message, desc and headers,
the hook events, tracebacks' frame locals, and the CLI's error line."""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from senselink_plus import APIError, Client, Event, RetryPolicy, ServerError
from tests.conftest import APP_KEY, APP_SECRET
from tests.fake_clock import FakeClock


def _echo(request: web.Request) -> web.StreamResponse:
    sign = parse_qs(request.query_string)["sign"][0]
    body = {
        "code": 500,
        "message": f"bad request sign={sign}",
        "desc": f"proxy saw {sign.upper()} in {request.path_qs}",
    }
    headers = {
        "X-Echo": f"/api?sign%3D{sign}",
        "X-Debug": f"sign: {sign}",
        "X-Request-Id": f"req-{sign}",
    }
    return web.json_response(body, status=503, headers=headers)


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[str, list[str]]]:
    signs: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        signs.append(parse_qs(request.query_string)["sign"][0])
        await request.read()
        return _echo(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)  # its lines would hold the sign
    try:
        yield str(server.make_url("")).rstrip("/"), signs
    finally:
        await server.close()


def _everything(error: BaseException) -> str:
    parts = [str(error), repr(error)]
    if isinstance(error, APIError):
        parts += [error.message, error.desc or "", str(error.request_id)]
    parts += [f"{k}: {v}" for k, v in (getattr(error, "headers", None) or {}).items()]
    # The SDK's frames only: this test's own locals hold the signs it collected.
    for frame in traceback.TracebackException(
        type(error), error, error.__traceback__, capture_locals=True
    ).stack:
        if frame.filename != __file__:
            parts += [f"{name}={value}" for name, value in (frame.locals or {}).items()]
    return "".join(parts)


@pytest.mark.parametrize("hooked", [False, True], ids=["lean", "with-hooks"])
async def test_an_echoed_sign_is_masked_in_the_error_and_the_events(
    echo_server: tuple[str, list[str]], hooked: bool
) -> None:
    base_url, signs = echo_server
    events: list[Event] = []
    hooks: dict[str, Any] = (
        {"response": [events.append], "retry": [events.append], "end": [events.append]}
        if hooked
        else {}
    )

    client = Client(
        APP_KEY,
        APP_SECRET,
        base_url=base_url,
        retry=RetryPolicy(max_attempts=2),
        sleep=FakeClock().sleep,
        event_hooks=hooks,
    )
    async with client:
        with pytest.raises(ServerError) as caught:
            await client.get_image("0" * 24)
    assert len(signs) == 2
    text = _everything(caught.value)
    text += "".join(repr(event) for event in events)
    for sign in signs:
        assert sign not in text.lower()
    assert "***" in caught.value.message
    assert caught.value.desc is not None
    assert "***" in caught.value.desc
    assert caught.value.headers is not None
    assert caught.value.headers["x-debug"] == "sign: ***"
    if hooked:
        assert {e.kind for e in events} >= {"response", "retry", "end"}


async def test_the_cli_error_line_never_shows_an_echoed_sign(
    echo_server: tuple[str, list[str]],
) -> None:
    base_url, signs = echo_server
    env = {
        **os.environ,
        "SENSELINK_BASE_URL": base_url,
        "SENSELINK_APP_KEY": APP_KEY,
        "SENSELINK_APP_SECRET": APP_SECRET,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "senselink_plus",
        "image",
        "0" * 24,
        "-vv",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert signs
    text = (out + err).decode().lower()
    assert "servererror" in text
    for sign in signs:
        assert sign not in text
