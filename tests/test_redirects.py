"""Redirects are never followed: a 3xx answer is a `RedirectError` (the target's origin
only, never the signed query), never retried; a transport of the user's that follows
redirects keeps that choice."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from senselink_plus import (
    AiohttpTransport,
    HttpRequest,
    HttpResponse,
    RedirectError,
    ResponseError,
)
from tests.conftest import JPEG
from tests.loopback import FIXED_SIGN, HOUR, LoopbackServer, make_call, steady_client


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("call", ["create", "list", "image"])
async def test_a_redirect_to_another_host_is_not_followed_nor_retried(
    status: int, call: str
) -> None:
    async with LoopbackServer() as api, LoopbackServer() as elsewhere:

        async def redirect(request: web.Request) -> web.StreamResponse:
            # Echoes the signed query, as an http -> https redirect would.
            target = f"{elsewhere.base_url}{request.path_qs}"
            return web.Response(status=status, headers={"Location": target})

        api.answer = redirect
        async with steady_client(api.base_url) as client:
            with pytest.raises(RedirectError) as caught:
                await make_call(client, call)
        assert elsewhere.seen == []
        assert len(api.seen) == 1  # never retried, GET or POST
        error = caught.value
        assert error.status == status
        assert error.location == elsewhere.base_url
        assert isinstance(error, ResponseError)
        assert f"HTTP {status} redirect to '{elsewhere.base_url}'" in str(error)
        assert FIXED_SIGN not in str(error)
        assert "sign=" not in str(error)


async def test_a_relative_redirect_is_refused_too() -> None:
    async with LoopbackServer() as api:

        async def redirect(request: web.Request) -> web.StreamResponse:
            return web.Response(status=307, headers={"Location": "/v2" + request.path_qs})

        api.answer = redirect
        async with steady_client(api.base_url) as client:
            with pytest.raises(RedirectError, match="to a path on the same host") as caught:
                await client.list_records(*HOUR)
        assert caught.value.location is None
        assert len(api.seen) == 1


async def test_a_user_transport_that_follows_redirects_keeps_its_choice() -> None:
    async with LoopbackServer() as api, LoopbackServer() as moved:

        async def redirect(request: web.Request) -> web.StreamResponse:
            raise web.HTTPPermanentRedirect(f"{moved.base_url}{request.path_qs}")

        api.answer = redirect

        class Following(AiohttpTransport):
            async def send(self, request: HttpRequest) -> HttpResponse:
                async with (
                    aiohttp.ClientSession() as session,
                    session.request(
                        request.method, request.url, params=request.params, data=request.content
                    ) as reply,
                ):  # aiohttp's default: follow
                    return HttpResponse(reply.status, dict(reply.headers), await reply.read())

        async with steady_client(api.base_url, transport=Following()) as client:
            created = await client.create_record("GATE-1", JPEG)
        assert created.record_id == 7
        assert moved.seen == [("POST", "/api/v1/plus/record")]
