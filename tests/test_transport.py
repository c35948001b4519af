"""AiohttpTransport against a real local server, and the Transport protocol."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestServer

from senselink_plus import (
    AiohttpTransport,
    ConnectError,
    HttpRequest,
    HttpResponse,
    RequestTimeout,
    Timeout,
    Transport,
    TransportError,
)
from tests.loopback import closed_port

SIGN = "deadbeefcafebabe0123456789abcdef"


class Recorder:
    """What the server saw, and a gate that holds the slow handler."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.release = asyncio.Event()

    async def echo(self, request: web.Request) -> web.Response:
        self.seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": list(request.query.items()),
                "headers": request.headers.copy(),  # case-insensitive
                "body": await request.read(),
            }
        )
        return web.Response(
            status=int(request.query.get("status", "200")),
            body=b'{"code":200,"message":"OK"}',
            headers={"Content-Type": "application/json; charset=utf-8", "X-Reply": "Yes"},
        )

    async def slow(self, request: web.Request) -> web.Response:
        # Held until the test has seen its timeout; never a long real sleep.
        await asyncio.wait_for(self.release.wait(), timeout=5)
        return web.Response(text="late")

    async def drop(self, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()  # hang up without a status line
        raise ConnectionResetError("dropped on purpose")

    async def big(self, request: web.Request) -> web.StreamResponse:
        size = int(request.query["size"])
        if request.query.get("chunked"):
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            for _ in range(size // 1000):
                await response.write(b"x" * 1000)
            await response.write_eof()
            return response
        return web.Response(body=b"x" * size)

    async def loop(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.rel_url)  # redirects to itself, sign and all


@pytest.fixture
async def server() -> AsyncIterator[tuple[BaseTestServer, Recorder]]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_route("*", "/echo", recorder.echo)
    app.router.add_get("/slow", recorder.slow)
    app.router.add_get("/drop", recorder.drop)
    app.router.add_get("/loop", recorder.loop)
    app.router.add_get("/big", recorder.big)
    test_server = TestServer(app, host="127.0.0.1")
    # No access log: its lines would carry the test's fake sign in the query.
    await test_server.start_server(access_log=None)
    async with test_server:
        yield test_server, recorder
        recorder.release.set()


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    transport = AiohttpTransport(timeout=Timeout(connect=2.0, total=5.0))
    yield transport
    await transport.aclose()


def url(server: tuple[BaseTestServer, Recorder], path: str) -> str:
    return str(server[0].make_url(path))


def assert_no_sign(error: BaseException) -> None:
    assert SIGN not in str(error)
    assert SIGN not in repr(error)
    assert SIGN not in "".join(traceback.format_exception(error))


# --- round trips -----------------------------------------------------------------------


async def test_get_sends_params_and_headers(
    server: tuple[BaseTestServer, Recorder], transport: AiohttpTransport
) -> None:
    request = HttpRequest(
        "GET",
        url(server, "/echo"),
        params=[
            ("time_from", "2022-12-11T00:00:00+09:00"),
            ("sn", "JKQ 0001&x=y"),
            ("tag", "a"),
            ("tag", "b"),
        ],
        headers={"X-Custom": "v1"},
    )
    response = await transport.send(request)

    assert response.status == 200
    assert response.content == b'{"code":200,"message":"OK"}'
    assert response.content_type == "application/json"
    assert response.headers["x-reply"] == "Yes"  # names lower-cased, values kept
    [seen] = server[1].seen
    assert seen["method"] == "GET"
    assert seen["path"] == "/echo"
    # The '+' of the offset survives (not read as a space), as do '&', '=' and repeats.
    assert seen["query"] == [
        ("time_from", "2022-12-11T00:00:00+09:00"),
        ("sn", "JKQ 0001&x=y"),
        ("tag", "a"),
        ("tag", "b"),
    ]
    assert seen["headers"]["X-Custom"] == "v1"
    assert seen["body"] == b""


async def test_post_sends_the_body_as_is(
    server: tuple[BaseTestServer, Recorder], transport: AiohttpTransport
) -> None:
    body = b'{"sn":"JKQ00009234","timestamp":1658136457,"image":{"data":"/9j/4A=="}}'
    request = HttpRequest(
        "POST",
        url(server, "/echo"),
        params={"app_key": "k", "timestamp": "1700000000000", "sign": SIGN},
        headers={"Content-Type": "application/json"},
        content=body,
    )
    response = await transport.send(request)

    assert response.status == 200
    [seen] = server[1].seen
    assert seen["method"] == "POST"
    assert seen["body"] == body
    assert seen["headers"]["Content-Type"] == "application/json"
    assert seen["headers"]["Content-Length"] == str(len(body))
    assert seen["query"] == [("app_key", "k"), ("timestamp", "1700000000000"), ("sign", SIGN)]


async def test_an_error_status_is_returned_not_raised(
    server: tuple[BaseTestServer, Recorder], transport: AiohttpTransport
) -> None:
    response = await transport.send(HttpRequest("GET", url(server, "/echo"), {"status": "503"}))
    assert response.status == 503
    assert response.content == b'{"code":200,"message":"OK"}'


# --- session ownership -----------------------------------------------------------------


def test_no_session_is_made_before_first_use() -> None:
    # Outside any event loop: making a ClientSession here would fail or warn.
    transport = AiohttpTransport()
    assert transport._session is None


async def test_own_session_is_made_lazily_and_closed_by_aclose(
    server: tuple[BaseTestServer, Recorder],
) -> None:
    transport = AiohttpTransport()
    assert transport._session is None
    await transport.send(HttpRequest("GET", url(server, "/echo")))
    session = transport._session
    assert isinstance(session, aiohttp.ClientSession)
    await transport.send(HttpRequest("GET", url(server, "/echo")))
    assert transport._session is session, "one session serves every request"
    assert not session.closed

    await transport.aclose()
    assert session.closed
    await transport.aclose()  # closing twice is harmless
    assert len(server[1].seen) == 2


async def test_a_user_session_is_never_closed(server: tuple[BaseTestServer, Recorder]) -> None:
    async with aiohttp.ClientSession() as session:
        transport = AiohttpTransport(session)
        response = await transport.send(HttpRequest("GET", url(server, "/echo")))
        assert response.status == 200
        await transport.aclose()
        assert not session.closed
        # The caller can go on using it.
        async with session.get(url(server, "/echo")) as direct:
            assert direct.status == 200
        # But the transport itself is done.
        with pytest.raises(TransportError, match="closed"):
            await transport.send(HttpRequest("GET", url(server, "/echo")))
    assert len(server[1].seen) == 2


async def test_use_after_aclose_is_a_connect_error(
    server: tuple[BaseTestServer, Recorder],
) -> None:
    transport = AiohttpTransport()
    await transport.send(HttpRequest("GET", url(server, "/echo")))
    await transport.aclose()
    with pytest.raises(TransportError, match="closed") as info:
        await transport.send(HttpRequest("GET", url(server, "/echo")))
    assert isinstance(info.value, ConnectError)  # nothing was sent: safe to retry
    assert transport._session is None, "a closed transport must not make a new session"
    assert len(server[1].seen) == 1


async def test_aclose_before_any_use_then_send_is_refused() -> None:
    transport = AiohttpTransport()
    await transport.aclose()
    with pytest.raises(TransportError, match="closed"):
        await transport.send(HttpRequest("GET", "http://127.0.0.1:9/"))
    assert transport._session is None


# --- failures --------------------------------------------------------------------------


async def test_connection_refused_is_a_connect_error(transport: AiohttpTransport) -> None:
    port = closed_port()
    request = HttpRequest("GET", f"http://127.0.0.1:{port}/echo", params={"sign": SIGN})
    with pytest.raises(ConnectError, match="cannot connect") as info:
        await transport.send(request)
    assert_no_sign(info.value)
    assert info.value.__cause__ is None


async def test_no_answer_in_time_is_a_request_timeout(
    server: tuple[BaseTestServer, Recorder],
) -> None:
    transport = AiohttpTransport(timeout=Timeout(connect=2.0, total=0.2))
    request = HttpRequest("GET", url(server, "/slow"), params={"sign": SIGN})
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        with pytest.raises(RequestTimeout) as info:
            await transport.send(request)
    finally:
        server[1].release.set()
        await transport.aclose()
    assert 0.15 <= loop.time() - began < 2.0
    assert not isinstance(info.value, ConnectError)
    assert_no_sign(info.value)


async def test_a_dropped_connection_is_a_transport_error_not_a_connect_error(
    server: tuple[BaseTestServer, Recorder], transport: AiohttpTransport
) -> None:
    request = HttpRequest("GET", url(server, "/drop"), params={"sign": SIGN})
    with pytest.raises(TransportError) as info:
        await transport.send(request)
    assert type(info.value) is TransportError, "the request reached the server"
    assert "closed the connection" in str(info.value)
    assert_no_sign(info.value)


async def test_a_redirect_comes_back_as_it_is_never_followed(
    server: tuple[BaseTestServer, Recorder], transport: AiohttpTransport
) -> None:
    request = HttpRequest("GET", url(server, "/loop"), params={"sn": "JKQ1", "sign": SIGN})
    response = await transport.send(request)
    assert response.status == 302
    assert "/loop?" in response.headers["location"]
    assert SIGN not in repr(response)  # the Location echoes the signed query


def test_error_text_never_shows_the_sign_even_when_aiohttp_puts_the_url_in_it() -> None:
    from senselink_plus._transport import _describe

    # Some aiohttp errors (TooManyRedirects, ClientResponseError) quote the whole URL.
    exc = aiohttp.ClientError(f"GET http://h/x?sn=JKQ1&sign={SIGN}&page=2 failed")
    text = _describe(exc)
    assert text == "ClientError: GET http://h/x?sn=JKQ1&sign=***&page=2 failed"


async def test_no_exception_in_the_chain_holds_the_sign(
    server: tuple[BaseTestServer, Recorder], transport: AiohttpTransport
) -> None:
    request = HttpRequest("GET", url(server, "/drop"), params={"sign": SIGN})
    with pytest.raises(TransportError) as info:
        await transport.send(request)
    chained: BaseException | None = info.value
    while chained is not None:
        assert SIGN not in repr(chained)
        assert SIGN not in repr(getattr(chained, "request_info", ""))
        chained = chained.__cause__ or chained.__context__


# --- the Transport protocol ------------------------------------------------------------


async def test_aiohttp_transport_satisfies_the_protocol() -> None:
    transport = AiohttpTransport()
    assert isinstance(transport, Transport)
    await transport.aclose()


def test_mock_transport_satisfies_the_protocol() -> None:
    from senselink_plus.testing._mock import MockTransport

    mock = MockTransport(lambda request: HttpResponse(200))
    assert isinstance(mock, Transport)


def test_an_object_without_aclose_is_not_a_transport() -> None:
    class SendOnly:
        async def send(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse(200)

    assert not isinstance(SendOnly(), Transport)


@pytest.mark.parametrize("chunked", ["", "1"])
async def test_a_body_over_the_limit_is_refused(
    server: tuple[BaseTestServer, Recorder], chunked: str
) -> None:
    test_server, _ = server
    transport = AiohttpTransport(max_response_bytes=5000)
    try:
        url = str(test_server.make_url("/big"))
        ok = await transport.send(
            HttpRequest("GET", url, params={"size": "5000", "chunked": chunked})
        )
        assert len(ok.content) == 5000
        with pytest.raises(TransportError, match="limit"):
            await transport.send(
                HttpRequest("GET", url, params={"size": "6000", "chunked": chunked})
            )
    finally:
        await transport.aclose()


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_the_body_limit_must_be_a_positive_int(limit: Any) -> None:
    from senselink_plus import ValidationError

    with pytest.raises(ValidationError):
        AiohttpTransport(max_response_bytes=limit)


async def test_a_compressed_body_is_capped_by_its_decompressed_size() -> None:
    import gzip

    async def bomb(request: web.Request) -> web.Response:
        body = gzip.compress(b"x" * 200_000)
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    app = web.Application()
    app.router.add_get("/bomb", bomb)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server(access_log=None)
    async with test_server:
        transport = AiohttpTransport(max_response_bytes=50_000)
        try:
            with pytest.raises(TransportError, match="limit"):
                await transport.send(HttpRequest("GET", str(test_server.make_url("/bomb"))))
        finally:
            await transport.aclose()


async def test_a_closed_caller_session_is_a_connect_error(
    server: tuple[BaseTestServer, Recorder],
) -> None:
    session = aiohttp.ClientSession()
    await session.close()
    transport = AiohttpTransport(session)
    with pytest.raises(ConnectError):
        await transport.send(HttpRequest("GET", url(server, "/echo")))
