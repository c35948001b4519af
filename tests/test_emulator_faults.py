"""`testing._emulator_faults`: injected failures, delays and drops."""

from __future__ import annotations

import time

import aiohttp
import orjson
import pytest

from tests.emulator_helpers import RECORD, Api


async def test_fail_with_retry_after(api: Api) -> None:
    api.emu.fail("create", status=503, times=2, retry_after=1.0)
    for _ in range(2):
        reply = await api.create()
        assert (reply.status, reply.code, reply.json["message"]) == (
            503,
            503,
            "Service Unavailable",
        )
        assert reply.headers["Retry-After"] == "1"
    assert (await api.create()).code == 200
    assert [r.fault for r in api.emu.requests] == ["fail", "fail", None]
    assert len(api.emu.records) == 1


async def test_fail_custom_code_and_routes(api: Api) -> None:
    api.emu.fail("image", status=429, code=40029, message="Slow Down", retry_after="Wed")
    api.emu.fail("*", status=500)
    listing = await api.send("GET", RECORD)  # "*" takes it; the image fault waits
    assert (listing.status, listing.code, listing.json["message"]) == (
        500,
        500,
        "Internal Server Error",
    )
    image = await api.image("0" * 24)
    assert (image.status, image.code, image.json["message"]) == (429, 40029, "Slow Down")
    assert image.headers["Retry-After"] == "Wed"
    api.emu.fail("list", status=429)
    assert (await api.send("GET", RECORD)).json["message"] == "Too Many Requests"


async def test_fault_fires_before_auth(api: Api) -> None:
    api.emu.fail("list", status=503)
    reply = await api.send("GET", RECORD, auth=api.auth(secret="bad"))
    assert reply.status == 503
    (seen,) = api.emu.requests
    assert (seen.auth_ok, seen.fault) == (False, "fail")


async def test_fail_envelope(api: Api) -> None:
    api.emu.fail_envelope("list", 429, "Too Many Requests", times=1)
    api.emu.fail_envelope("list", 31234)
    first = await api.send("GET", RECORD)
    second = await api.send("GET", RECORD)
    assert (first.status, first.code, first.json["message"]) == (200, 429, "Too Many Requests")
    assert (second.status, second.code) == (200, 31234)


async def test_drop(api: Api) -> None:
    api.emu.drop("create")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.create()
    assert api.emu.records == []
    assert (await api.create()).code == 200  # the next connection works


async def test_drop_after_processing_stores_the_record(api: Api) -> None:
    api.emu.drop("create", after_processing=True)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.create(sn="LOST-REPLY")
    assert [r["sn"] for r in api.emu.records] == ["LOST-REPLY"]
    assert api.emu.requests[-1].fault == "drop"


async def test_malformed(api: Api) -> None:
    api.emu.malformed("list", times=2)
    for _ in range(2):
        reply = await api.send("GET", RECORD)
        assert (reply.status, reply.content_type) == (200, "application/json")
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(reply.body)
    assert (await api.send("GET", RECORD)).code == 30001


async def test_delay(api: Api) -> None:
    api.emu.delay("image", 0.05)
    began = time.perf_counter()
    reply = await api.image("0" * 24)
    assert time.perf_counter() - began >= 0.05
    assert reply.code == 404  # answered normally after the delay
    began = time.perf_counter()
    await api.image("0" * 24)
    assert time.perf_counter() - began < 0.05


async def test_fault_arguments_checked(api: Api) -> None:
    with pytest.raises(ValueError, match="route"):
        api.emu.fail("records")
    with pytest.raises(ValueError, match="times"):
        api.emu.drop("create", times=0)
    with pytest.raises(ValueError, match="seconds"):
        api.emu.delay("list", -1)
    api.emu.fail("list")
    api.emu.clear_faults()
    assert (await api.send("GET", RECORD)).code == 30001
