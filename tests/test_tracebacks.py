"""No frame on an error's traceback holds the sign, the app secret or the image: for
every way a call can fail (too big, too slow, cut short, refused, not JSON, a redirect
echoing the sign), the traceback is rendered with its frame locals and searched."""

from __future__ import annotations

import asyncio
import traceback
from typing import Any, NamedTuple

import pytest
from aiohttp import web

from senselink_plus import (
    AuthenticationError,
    ConnectError,
    RedirectError,
    RequestTimeout,
    ResponseError,
    RetryPolicy,
    ServerError,
    Timeout,
    TransportError,
)
from tests.conftest import APP_SECRET
from tests.loopback import FIXED_SIGN, LoopbackServer, closed_port, make_call, steady_client


async def _stall(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = 1000
    await response.prepare(request)
    await response.write(b'{"code"')
    await asyncio.Event().wait()  # cancelled when the client gives up and the server closes
    return response


async def _truncate(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = 1000
    await response.prepare(request)
    await response.write(b'{"code": 200, "data": ')
    assert request.transport is not None
    request.transport.close()
    return response


async def _too_big_declared(request: web.Request) -> web.StreamResponse:
    return web.Response(body=b"x" * 5000, content_type="application/json")


async def _too_big_streamed(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(10):
        await response.write(b"x" * 1000)
    await response.write_eof()
    return response


async def _drop(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.close()
    raise ConnectionResetError("dropped on purpose")


def _status(status: int, body: bytes = b"", **headers: str) -> Any:
    async def answer(request: web.Request) -> web.StreamResponse:
        location = {k: v.format(qs=request.query_string) for k, v in headers.items()}
        return web.Response(status=status, body=body, headers=location)

    return answer


class Failure(NamedTuple):
    """How the server fails a call (None: nothing listens), the client's options, and
    the error the call raises."""

    answer: Any
    options: dict[str, Any]
    expected: type[BaseException]


FAILURES = {
    "over-cap-declared": Failure(_too_big_declared, {"max_response_bytes": 1000}, TransportError),
    "over-cap-streamed": Failure(_too_big_streamed, {"max_response_bytes": 1000}, TransportError),
    "body-timeout": Failure(_stall, {"timeout": Timeout(connect=2.0, total=0.1)}, RequestTimeout),
    "deadline": Failure(_stall, {"retry": RetryPolicy(deadline=0.1)}, RequestTimeout),
    "truncated-body": Failure(_truncate, {}, TransportError),
    "dropped": Failure(_drop, {}, TransportError),
    "connect-refused": Failure(None, {}, ConnectError),
    "server-error": Failure(_status(503, b'{"code": 503, "message": "busy"}'), {}, ServerError),
    "auth": Failure(_status(401, b'{"code": 401, "message": "bad sign"}'), {}, AuthenticationError),
    "not-json": Failure(_status(200, b"<html>"), {}, ResponseError),
    "redirect-echoing-sign": Failure(
        _status(307, Location="https://127.0.0.1:9/x?{qs}", X_Echo="sign={qs}"),
        {},
        RedirectError,
    ),
}


@pytest.mark.parametrize("path", FAILURES)
@pytest.mark.parametrize("call", ["create", "list"])
async def test_no_frame_on_any_error_traceback_holds_the_sign_or_secret(
    path: str, call: str
) -> None:
    failure = FAILURES[path]
    async with LoopbackServer() as api:
        if failure.answer is not None:
            api.answer = failure.answer
            base_url = api.base_url
        else:
            base_url = f"http://127.0.0.1:{closed_port()}"
        async with steady_client(base_url, **failure.options) as client:
            with pytest.raises(failure.expected) as caught:
                await make_call(client, call)
    error = caught.value
    text = "".join(
        traceback.TracebackException(
            type(error), error, error.__traceback__, capture_locals=True
        ).format(chain=True)
    )
    assert "response = " in text or "error = " in text  # the locals really were captured
    assert FIXED_SIGN not in text
    assert APP_SECRET not in text
    assert "/9j/" not in text  # nor the image, base64
