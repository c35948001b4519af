"""The emulator as a whole: lifecycle, the pytest plugin, a round trip, the request log."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import aiohttp
import attrs
import pytest

from senselink_plus.testing import Emulator
from senselink_plus.testing._emulator_store import SEED_IMAGE
from tests.emulator_helpers import B64, JPEG, PNG, RECORD, RECORD_KEYS, Api, Factory, at
from tests.fake_clock import T0, FakeClock

pytest_plugins = ["pytester"]


async def test_plugin_fixture_serves(senselink_emulator: Emulator, api: Api) -> None:
    assert senselink_emulator.base_url.startswith("http://127.0.0.1:")
    assert (await api.list(at(time.time() - 60), at(time.time()))).data["total"] == 0


def test_plugin_in_a_users_suite(pytester: pytest.Pytester) -> None:
    """The entry point gives a user's strict-mode suite the fixture with no setup."""
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile("""
        import pytest

        @pytest.mark.asyncio
        async def test_uses_it(senselink_emulator):
            assert senselink_emulator.base_url.startswith("http://127.0.0.1:")
            assert senselink_emulator.records == []
    """)
    pytester.runpytest("-W", "error").assert_outcomes(passed=1)


async def test_lifecycle() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.base_url
    await emu.start()
    with pytest.raises(RuntimeError, match="already running"):
        await emu.start()
    assert emu.port != 0
    await emu.stop()
    await emu.stop()  # idempotent


async def test_round_trip(make: Factory) -> None:
    emu, api = await make(first_record_id=930490000)
    created = (
        await api.create(JPEG, sn="GATE-1", timezone="GMT+9:00", extend='{"gate":"north"}')
    ).data
    assert created["record_id"] == 930490000
    assert len(created["image_id"]) == 24
    assert created["image_id"] == created["image_id"].lower()
    int(created["image_id"], 16)
    emu.clock.advance(1.5)  # type: ignore[attr-defined]
    second = (await api.create(PNG, sn="GATE-2", timestamp=1)).data
    assert second["record_id"] == 930490001
    assert second["image_id"] != created["image_id"]

    page = (await api.list(at(T0 - 10), at(T0 + 10), order=1)).data
    assert (page["page_num"], page["page_size"], page["total"]) == (1, 20, 2)
    first = page["list"][0]
    assert list(first) == RECORD_KEYS
    assert first == {
        "record_id": 930490000,
        "sn": "GATE-1",
        "image_id": created["image_id"],
        "user_id": None,
        "verify_score": 0.31,
        "device_timestamp": 1658136457,
        "timezone": "GMT+9:00",
        "create_at": round(T0 * 1000),
        "extend": '{"gate":"north"}',
    }
    assert page["list"][1]["create_at"] == round(T0 * 1000) + 1500
    assert page["list"][1]["timezone"] is None
    assert (await api.list(at(T0 - 10), at(T0 + 10))).data["list"][0]["record_id"] == 930490001

    jpeg = await api.image(created["image_id"])
    assert (jpeg.status, jpeg.content_type, jpeg.body) == (200, "image/jpeg", JPEG)
    png = await api.image(second["image_id"])
    assert (png.status, png.content_type, png.body) == (200, "image/png", PNG)
    assert dict(emu.images) == {created["image_id"]: JPEG, second["image_id"]: PNG}


async def test_requests_log_redacts_image_and_sign(api: Api) -> None:
    await api.create(JPEG, extend="{}")
    await api.send("GET", RECORD, params={"sn": "X"}, auth=api.auth(secret="bad"))
    create, listing = api.emu.requests
    assert (create.method, create.path, create.route, create.auth_ok) == (
        "POST",
        RECORD,
        "create",
        True,
    )
    assert create.json["image"]["data"] == f"<{len(B64(JPEG))} base64 chars>"
    assert create.json["extend"] == "{}"
    assert B64(JPEG).decode() not in repr(create)
    assert listing.query["sn"] == "X"
    assert (listing.route, listing.json, listing.auth_ok) == ("list", None, False)
    assert listing.query["sign"] not in repr(listing)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        listing.auth_ok = True  # type: ignore[misc]
    api.emu.reset_requests()
    assert api.emu.requests == []


async def test_stop_during_delay_does_not_hang() -> None:
    emu = Emulator()
    await emu.start()
    emu.delay("list", 30)
    async with aiohttp.ClientSession() as http:
        task = asyncio.create_task(Api(http, emu).send("GET", RECORD))
        for _ in range(2000):  # until the request is in (and sleeping)
            if emu.requests:
                break
            await asyncio.sleep(0.001)
        began = time.perf_counter()
        await emu.stop()
        assert time.perf_counter() - began < 2
        with pytest.raises(aiohttp.ClientError):
            await task


@pytest.mark.parametrize("offset", [timedelta(minutes=-10), 600.0])
async def test_clock_offset_moves_the_servers_date_stamps_and_auth_window(
    offset: timedelta | float,
) -> None:
    import email.utils

    from senselink_plus import AuthenticationError

    clock = FakeClock()
    local = clock.now
    seconds = offset.total_seconds() if isinstance(offset, timedelta) else offset
    async with Emulator(clock=clock, clock_offset=offset) as emu:
        assert emu.now() == local + seconds
        async with emu.client(clock=clock.clock) as client:  # signs with the local clock
            created = await client.create_record("SN1", SEED_IMAGE)
            stored = emu.records[-1]
            assert stored["record_id"] == created.record_id
            assert stored["create_at"] == round((local + seconds) * 1000)
            raw_date = client._session._shared.server_date.raw
            assert raw_date is not None
            assert email.utils.parsedate_to_datetime(raw_date).timestamp() == local + seconds
            server_now, skew = client._session.server_time()  # type: ignore[misc]
            assert skew == seconds
            assert server_now == pytest.approx(local + seconds, abs=1)
        emu.clock_offset = timedelta(minutes=31)  # settable: now beyond what auth accepts
        async with emu.client(clock=clock.clock) as client:
            with pytest.raises(AuthenticationError, match="away from the server clock"):
                await client.create_record("SN1", SEED_IMAGE)
    with pytest.raises(TypeError):
        Emulator(clock_offset="10")  # type: ignore[arg-type]
