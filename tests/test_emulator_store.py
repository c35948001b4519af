"""`testing._emulator_store`: records, images, enrolled faces, listing order, retention, seeding."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from senselink_plus.testing import Emulator
from senselink_plus.testing._emulator_store import SEED_IMAGE
from tests.emulator_helpers import JPEG, JPEG_B, JST, PNG, Api, Factory, at
from tests.fake_clock import T0, FakeClock
from tests.fake_listing import in_window


@pytest.mark.parametrize("image_id", ["0" * 24, "nothex" * 4, "abc"])
async def test_image_unknown(api: Api, image_id: str) -> None:
    created = (await api.create()).data
    # Same tag and time, another record id: still unknown.
    forged = created["image_id"][:14] + f"{created['record_id'] + 1:010x}"
    for unknown in (image_id, forged):
        reply = await api.image(unknown)
        assert (reply.status, reply.content_type, reply.code) == (200, "application/json", 404)
        assert reply.json["message"] == "Not Found"


async def test_enroll_matches_identical_bytes(api: Api) -> None:
    api.emu.enroll(42, JPEG)
    await api.create(JPEG)
    await api.create(JPEG, threshold=0.98)  # the score is below this threshold
    await api.create(JPEG_B)
    assert [(r["user_id"], r["verify_score"]) for r in api.emu.records] == [
        (42, 0.97),
        (None, 0.97),
        (None, 0.31),
    ]


async def test_mark_no_face(api: Api) -> None:
    api.emu.mark_no_face(JPEG_B)
    reply = await api.create(JPEG_B)
    assert (reply.code, reply.json["message"]) == (30003, "No Face Detected In The Image")
    assert api.emu.records == []
    assert (await api.create(JPEG)).code == 200


def test_enroll_rejects_bad_user_id() -> None:
    with pytest.raises(ValueError, match="user_id"):
        Emulator().enroll(True, JPEG)  # type: ignore[arg-type]


steps = st.one_of(st.integers(-3, 3_000).map(lambda s: s * 1000), st.integers(-2_000, 4_000_000))


offsets = st.sampled_from([timedelta(0), timedelta(hours=9), timedelta(hours=-3, minutes=-30)])


@settings(max_examples=60, deadline=None)
@given(
    arrivals=st.lists(st.tuples(steps, st.sampled_from(["A", "B", "C"])), max_size=24),
    retention=st.sampled_from([timedelta(days=90), timedelta(hours=2)]),
    data=st.data(),
)
async def test_listing_matches_brute_force(
    arrivals: list[tuple[int, str]], retention: timedelta, data: st.DataObject
) -> None:
    clock = FakeClock()
    created: list[dict[str, Any]] = []
    async with Emulator(clock=clock, retention=retention) as emu, aiohttp.ClientSession() as http:
        api = Api(http, emu)
        for step, sn in arrivals:
            clock.advance(step / 1000)
            record_id = (await api.create(JPEG, sn=sn)).data["record_id"]
            create_at = max(round(clock.now * 1000), created[-1]["create_at"] if created else 0)
            created.append({"record_id": record_id, "sn": sn, "create_at": create_at})
        # With the short retention some records have expired (and been compacted away).
        oldest = round(clock.now * 1000) - retention // timedelta(milliseconds=1)
        expected = [r for r in created if r["create_at"] >= oldest]
        assert [(r["record_id"], r["sn"], r["create_at"]) for r in emu.records] == [
            (r["record_id"], r["sn"], r["create_at"]) for r in expected
        ]
        # Bounds on whole seconds, often exactly on a record's create_at (inclusive ends).
        moments = [r["create_at"] // 1000 for r in created] or [int(T0)]
        bound = st.one_of(st.sampled_from(moments), st.integers(int(T0) - 5, max(moments) + 5))
        for _ in range(3):
            low = data.draw(bound)
            high = min(data.draw(st.integers(low, max(low, max(moments) + 5))), low + 86_400)
            sn = data.draw(st.sampled_from([None, "A", "B", "Z"]))
            order = data.draw(st.sampled_from([0, 1]))
            size = data.draw(st.integers(1, 7))
            page = data.draw(st.integers(1, 5))
            zone = timezone(data.draw(offsets))
            params: dict[str, Any] = {"order": order, "page": page, "size": size}
            if sn is not None:
                params["sn"] = sn
            reply = (await api.list(at(low, zone), at(high, zone), **params)).data
            hits = [
                r["record_id"]
                for r in expected
                if in_window(r["create_at"], low, high) and sn in (None, r["sn"])
            ]
            if order == 0:
                hits.reverse()
            assert reply["total"] == len(hits)
            assert [r["record_id"] for r in reply["list"]] == hits[(page - 1) * size :][:size]
            assert (reply["page_num"], reply["page_size"]) == (page, size)


async def test_clock_going_back_keeps_create_at_ordered(make: Factory) -> None:
    emu, api = await make()
    await api.create()
    emu.clock.advance(-60)  # type: ignore[attr-defined]
    await api.create()
    first, second = emu.records
    assert second["create_at"] == first["create_at"] == round(T0 * 1000)


async def test_retention_hides_old_records_and_images(make: Factory) -> None:
    emu, api = await make(retention=timedelta(days=90))
    old = (await api.create(JPEG)).data
    emu.clock.advance(86_400)  # type: ignore[attr-defined]
    young = (await api.create(PNG)).data
    emu.clock.advance(89 * 86_400)  # type: ignore[attr-defined]
    # The old record is now exactly 90 days old: still kept.
    assert [r["record_id"] for r in emu.records] == [old["record_id"], young["record_id"]]
    emu.clock.advance(0.001)  # type: ignore[attr-defined]
    assert [r["record_id"] for r in emu.records] == [young["record_id"]]
    reply = await api.list(at(T0), at(T0 + 86_400))
    assert [r["record_id"] for r in reply.data["list"]] == [young["record_id"]]
    assert reply.data["total"] == 1
    assert (await api.image(old["image_id"])).code == 404
    assert (await api.image(young["image_id"])).body == PNG
    assert list(emu.images) == [young["image_id"]]
    assert old["image_id"] not in emu.images


async def test_retention_compacts_seeded_history(make: Factory) -> None:
    emu, api = await make(retention=timedelta(days=1))
    start = at(T0 - 2 * 86_400)
    emu.seed(3000, start=start, span=timedelta(hours=36), sn=["A", "B", "A"])
    emu.seed(10, start=at(T0 - 3600), span=timedelta(minutes=10), sn="B")
    kept = [r for r in emu.records]
    assert all(r["create_at"] >= (T0 - 86_400) * 1000 for r in kept)
    assert 1000 < len(kept) < 1510
    reply = (await api.list(at(T0 - 86_400), at(T0), sn="B", size=100, order=1)).data
    expected = [r["record_id"] for r in kept if r["sn"] == "B"]
    assert reply["total"] == len(expected)
    assert [r["record_id"] for r in reply["list"]] == expected[:100]
    assert (await api.image(kept[0]["image_id"])).body == SEED_IMAGE
    created = (await api.create()).data
    assert created["record_id"] == kept[-1]["record_id"] + 1


async def test_seed_200k_lists_correctly(make: Factory) -> None:
    emu, api = await make(clock=FakeClock(T0 + 11 * 86_400))
    start = at(T0, JST)
    began = time.perf_counter()
    ids = emu.seed(200_000, start=start, span=timedelta(days=10), sn=["GATE-A", "GATE-B"])
    assert time.perf_counter() - began < 5
    assert ids == range(1_000_000, 1_200_000)
    step_ms = 10 * 86_400_000 / 199_999
    window = (at(T0 + 3 * 86_400 + 0.5), at(T0 + 4 * 86_400 - 0.5))
    for sn in (None, "GATE-B"):
        for order in (0, 1):
            reply = (await api.list(*window, sn=sn or "", order=order, page=7, size=100)).data
            lo, hi = (round(w.timestamp() * 1000) for w in window)
            hits = [i for i in ids if lo <= T0 * 1000 + (i - ids[0]) * step_ms // 1 <= hi]
            assert abs(reply["total"] - (len(hits) if sn is None else len(hits) / 2)) <= 2
            got = [r["record_id"] for r in reply["list"]]
            assert len(got) == 100
            assert got == sorted(got, reverse=order == 0)
            assert all(r["sn"] == (sn or r["sn"]) for r in reply["list"])
    records = emu.records
    assert len(records) == 200_000
    assert records[0]["create_at"] == round(T0 * 1000)
    assert records[-1]["create_at"] == round(T0 * 1000) + 10 * 86_400_000
    assert [r["user_id"] is not None for r in records[:6]] == [True, False, False] * 2
    assert records[0]["timezone"] == "GMT+9:00"
    assert records[0]["device_timestamp"] == int(T0)
    # The exact listing, checked against the materialised records.
    lo, hi = (round(w.timestamp() * 1000) for w in window)
    brute = [r["record_id"] for r in records if lo <= r["create_at"] <= hi and r["sn"] == "GATE-A"]
    reply = (await api.list(*window, sn="GATE-A", order=1, page=3, size=50)).data
    assert reply["total"] == len(brute)
    assert [r["record_id"] for r in reply["list"]] == brute[100:150]
    image = await api.image(reply["list"][0]["image_id"])
    assert (image.content_type, image.body) == ("image/jpeg", SEED_IMAGE)


async def test_seed_uses_enrolled_users_and_checks_arguments(make: Factory) -> None:
    emu, _ = await make()
    emu.enroll(7, JPEG)
    emu.seed(
        4,
        start=at(T0 - 100, timezone(timedelta(hours=-3, minutes=-30))),
        span=timedelta(seconds=3),
        matched_every=2,
    )
    assert [r["user_id"] for r in emu.records] == [7, None, 7, None]
    assert emu.records[0]["timezone"] == "GMT-3:30"
    with pytest.raises(ValueError, match="naive"):
        emu.seed(1, start=datetime(2024, 1, 1), span=timedelta(0))
    with pytest.raises(ValueError, match="before the newest"):
        emu.seed(1, start=at(T0 - 1000), span=timedelta(0))
