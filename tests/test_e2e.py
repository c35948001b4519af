"""The client end to end against the emulator: every endpoint, both error shapes, auth,
retries, and a multi-day walk."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from senselink_plus import (
    AuthenticationError,
    Client,
    CreatedRecord,
    InvalidParameterError,
    NoFaceDetectedError,
    NotFoundError,
    Order,
    RateLimitError,
    Rectangle,
    RetryPolicy,
    ServerError,
    ValidationError,
)
from senselink_plus.testing import Emulator, sample_image
from tests.fake_clock import FakeClock

ALICE = sample_image("alice")
VISITOR = sample_image("visitor")


async def no_wait(seconds: float) -> None:
    """Retries in these tests do not wait for real."""


def fast(emu: Emulator, **options: Any) -> Client:
    options.setdefault("sleep", no_wait)
    return emu.client(**options)


async def test_every_endpoint_round_trips() -> None:
    async with Emulator() as emu, fast(emu) as client:
        emu.enroll(42, ALICE)
        before = datetime.now(timezone.utc) - timedelta(seconds=5)
        shot_at = datetime(2024, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=9)))
        matched = await client.create_record(
            "GATE-1",
            ALICE,
            timestamp=shot_at,
            threshold=0.9,
            rectangle=Rectangle(1, 2, 30, 40),
            extend={"gate": "north"},
        )
        unknown = await client.create_record("GATE-2", VISITOR)
        assert isinstance(matched, CreatedRecord)
        after = datetime.now(timezone.utc) + timedelta(seconds=5)

        page = await client.list_records(before, after)
        assert page.total == 2
        first, second = page.records
        assert (first.record_id, first.sn, first.user_id, first.matched) == (
            matched.record_id,
            "GATE-1",
            42,
            True,
        )
        assert (first.device_timestamp, first.timezone) == (int(shot_at.timestamp()), "GMT+9:00")
        assert first.extend_data == {"gate": "north"}
        assert before <= first.created_at <= after
        assert (second.record_id, second.user_id, second.matched) == (
            unknown.record_id,
            None,
            False,
        )

        only_gate_2 = await client.list_records(before, after, sn="GATE-2", order=Order.DESCENDING)
        assert [r.record_id for r in only_gate_2.records] == [unknown.record_id]

        assert await client.get_image(matched.image_id) == ALICE
        assert await client.get_image(unknown.image_id) == VISITOR
        sent = emu.requests[0].json
        assert sent["image"]["rectangle"] == {"top": 1, "left": 2, "width": 30, "height": 40}
        assert sent["extend"] == '{"gate":"north"}'


@pytest.mark.parametrize("error_status", [200, None])
async def test_both_error_shapes_give_the_same_types(error_status: int | None) -> None:
    async with Emulator(error_status=error_status) as emu, fast(emu) as client:
        with pytest.raises(NotFoundError) as missing:
            await client.get_image("0" * 24)
        assert missing.value.status == (200 if error_status == 200 else 404)
        emu.mark_no_face(VISITOR)
        with pytest.raises(NoFaceDetectedError) as no_face:
            await client.create_record("GATE-1", VISITOR)
        assert no_face.value.code == 30003
        assert not no_face.value.record_may_exist
        emu.fail_envelope("list", 30001, "Param Invalid")
        now = datetime.now(timezone.utc)
        with pytest.raises(InvalidParameterError):
            await client.list_records(now - timedelta(hours=1), now)


async def test_auth_failures() -> None:
    async with Emulator() as emu:
        async with fast(emu, app_secret="not-the-secret") as wrong:
            with pytest.raises(AuthenticationError):
                await wrong.get_image("0" * 24)
        skewed = Client(
            emu.app_key,
            emu.app_secret,
            base_url=emu.base_url,
            clock=FakeClock(datetime.now(timezone.utc).timestamp() - 31 * 60).clock,
        )
        async with skewed:
            with pytest.raises(AuthenticationError):
                await skewed.get_image("0" * 24)
        assert [r.auth_ok for r in emu.requests] == [False, False]  # refusals: not retried


async def test_bad_input_never_reaches_the_emulator() -> None:
    now = datetime.now(timezone.utc)
    async with Emulator() as emu, fast(emu) as client:
        calls = [
            lambda: client.create_record("", ALICE),
            lambda: client.create_record("GATE-1", b"GIF89a"),
            lambda: client.create_record("GATE-1", ALICE + bytes(1_048_577)),
            lambda: client.create_record("GATE-1", ALICE, threshold=1.5),
            lambda: client.create_record("GATE-1", ALICE, extend="{broken"),
            lambda: client.create_record("GATE-1", ALICE, extend={"x": "y" * 1100}),
            lambda: client.create_record("GATE-1", ALICE, timestamp=datetime(2024, 1, 1)),
            lambda: client.list_records(now - timedelta(hours=25), now),
            lambda: client.list_records(now, now - timedelta(hours=1)),
            lambda: client.list_records(now - timedelta(hours=1), now, size=101),
            lambda: client.list_records(now - timedelta(hours=1), now, page=0),
            lambda: client.get_image(""),
        ]
        for call in calls:
            with pytest.raises(ValidationError):
                await call()
        assert emu.requests == []


@pytest.mark.parametrize(
    "inject",
    [
        lambda emu: emu.fail("list", status=503),
        lambda emu: emu.fail("list", status=429, retry_after=1),
        lambda emu: emu.drop("list", times=2),
        lambda emu: emu.malformed("list"),
        lambda emu: emu.fail_envelope("list", 503, "Service Unavailable"),
    ],
    ids=["503", "429", "drop", "bad-json", "envelope-503"],
)
async def test_retries_recover(inject: Any) -> None:
    async with Emulator() as emu, fast(emu, retry=RetryPolicy(max_attempts=4)) as client:
        now = datetime.now(timezone.utc)
        emu.seed(5, start=now - timedelta(minutes=30), span=timedelta(minutes=10))
        inject(emu)
        page = await client.list_records(now - timedelta(hours=1), now)
        assert page.total == 5
        assert len(emu.requests) >= 2


async def test_retries_that_run_out_raise_the_last_error() -> None:
    async with Emulator() as emu, fast(emu, retry=RetryPolicy(max_attempts=2)) as client:
        emu.fail("image", status=503, times=2)
        with pytest.raises(ServerError):
            await client.get_image("0" * 24)
        emu.fail("image", status=429, times=1, retry_after=3600)
        with pytest.raises(RateLimitError) as limited:
            await client.get_image("0" * 24)
        assert limited.value.retry_after == 3600


async def test_records_over_three_days_each_once_in_order() -> None:
    end = datetime.now(timezone.utc).replace(microsecond=0)
    start = end - timedelta(days=3)
    async with Emulator() as emu, fast(emu) as client:
        ids = emu.seed(10_000, start=start, span=timedelta(days=3), sn=["A", "B", "C"])
        got = [r.record_id async for r in client.records(start, end)]
        assert got == list(ids)
        backwards = [r.record_id async for r in client.records(start, end, order=Order.DESCENDING)]
        assert backwards == list(reversed(ids))
        windows = {(r.query["time_from"], r.query["time_to"]) for r in emu.requests}
        spans = [datetime.fromisoformat(b) - datetime.fromisoformat(a) for a, b in windows]
        assert all(timedelta(0) < span <= timedelta(hours=24) for span in spans)
        assert len(emu.requests) <= 2 * (10_000 // 100 + 3) * 1.1
