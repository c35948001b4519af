"""A client, and an `AiohttpTransport`, belong to the event loop they were first used in:
used from another (``aclose()`` included) they raise `EventLoopError`, which is never
retried and sends nothing, and they still close in their own loop."""

from __future__ import annotations

import asyncio

import pytest

from senselink_plus import AiohttpTransport, EventLoopError, HttpRequest, TransportError
from senselink_plus._retry import classify
from tests.loopback import LoopbackServer, make_call, steady_client


def test_a_client_used_from_another_event_loop_raises_event_loop_error() -> None:
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    api = LoopbackServer()
    try:
        first.run_until_complete(api.__aenter__())
        client = steady_client(api.base_url)
        first.run_until_complete(make_call(client, "create"))
        for call in ("create", "list", "image"):
            with pytest.raises(EventLoopError, match="belongs to the event loop it was first"):
                second.run_until_complete(make_call(client, call))
        with pytest.raises(EventLoopError) as caught:
            second.run_until_complete(client.aclose())
        assert not isinstance(caught.value, TransportError)
        assert not classify(caught.value, idempotent=True).retry
        assert api.seen == [("POST", "/api/v1/plus/record")]  # nothing sent, nothing retried
        assert not client.closed
        first.run_until_complete(client.aclose())  # in its own loop it closes as usual
        assert client.closed
    finally:
        first.run_until_complete(api.__aexit__())
        first.close()
        second.close()


def test_an_aiohttp_transport_used_from_another_event_loop_raises_event_loop_error() -> None:
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    api = LoopbackServer()
    transport = AiohttpTransport()
    try:
        first.run_until_complete(api.__aenter__())
        request = HttpRequest("GET", api.base_url + "/x")
        assert first.run_until_complete(transport.send(request)).status == 200
        with pytest.raises(EventLoopError):
            second.run_until_complete(transport.send(request))
        assert len(api.seen) == 1
    finally:
        first.run_until_complete(transport.aclose())
        first.run_until_complete(api.__aexit__())
        first.close()
        second.close()
