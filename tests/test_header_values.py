"""Header values the client would send: only visible ASCII, spaces and tabs (RFC 9110
field-value) pass; anything else is a `ValidationError` before signing, and a
``"headers"`` hook's bad value is logged and dropped, never sent."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from senselink_plus import Client, Event, ValidationError
from tests.conftest import APP_KEY, APP_SECRET, JPEG, MakeClient, ok, transport_of

BAD_VALUES = ["a\x01b", "a\x7fb", "\x00", "a\rb", "a\nb", "caf\u00e9", "\x1b[31m"]
GOOD_VALUES = ["plain", "with space", "tab\there", "!#$%&'*+-.^_`|~()<>@,;:\\\"/[]?={}"]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_default_headers_with_a_control_or_non_ascii_character_are_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="visible ASCII") as caught:
        Client(APP_KEY, APP_SECRET, default_headers={"x-tag": value})
    assert caught.value.field == "default_headers"
    assert value not in str(caught.value)


@pytest.mark.parametrize("value", BAD_VALUES)
async def test_per_call_headers_with_a_control_character_are_refused_before_sending(
    make_client: MakeClient, value: str
) -> None:
    client = make_client(lambda request: ok({"record_id": 1, "image_id": "i"}))
    with pytest.raises(ValidationError, match="visible ASCII"):
        client.with_options(headers={"x-tag": value})
    assert transport_of(client).requests == []


@pytest.mark.parametrize("value", GOOD_VALUES)
async def test_visible_ascii_space_and_tab_are_sent_as_given(
    make_client: MakeClient, value: str
) -> None:
    client = make_client(lambda request: ok({"record_id": 1, "image_id": "i"}))
    await client.with_options(headers={"x-tag": value}).create_record("SN1", JPEG)
    assert transport_of(client).requests[0].headers["x-tag"] == value


@pytest.mark.parametrize("value", ["a\x01b", "a\x7fb"])
async def test_a_headers_hook_returning_a_control_character_is_logged_and_dropped(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Through aiohttp to a loopback server: the call goes ahead without the hook's headers
    (not a bare ValueError from aiohttp at send time)."""

    def tag(event: Event) -> dict[str, str]:
        return {"x-good": "1", "x-bad": value}

    seen: list[dict[str, str]] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        seen.append({k.lower(): v for k, v in request.headers.items()})
        await request.read()
        return web.json_response(
            {"code": 200, "message": "OK", "data": {"record_id": 7, "image_id": "i"}}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    hooks: dict[str, Any] = {"headers": [tag]}
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)  # its lines would hold the sign
    try:
        base_url = str(server.make_url("")).rstrip("/")
        async with Client(APP_KEY, APP_SECRET, base_url=base_url, event_hooks=hooks) as client:
            with caplog.at_level(logging.ERROR, logger="senselink_plus"):
                created = await client.create_record("SN1", JPEG)
    finally:
        await server.close()
    assert created.record_id == 7
    assert "returned unusable headers" in caplog.text
    assert "visible ASCII" in caplog.text
    # The hook's whole result is dropped, as for any unusable one.
    assert "x-bad" not in seen[0]
    assert "x-good" not in seen[0]
