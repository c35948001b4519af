"""``Emulator(db=...)``: records and snapshots kept in a SQLite file across restarts."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import senselink_plus as slp
from senselink_plus.testing import Emulator, sample_image
from senselink_plus.testing._emulator_db import RecordFile

T0 = datetime(2026, 11, 29, tzinfo=timezone.utc)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now


async def test_records_and_snapshots_outlive_the_emulator(tmp_path: Path) -> None:
    db = tmp_path / "emu.sqlite"
    async with Emulator(db=db) as emu:
        emu.enroll(42, sample_image("alice"))
        async with emu.client() as client:
            alice = await client.create_record("GATE-1", sample_image("alice"), extend={"a": 1})
            bob = await client.create_record("GATE-2", sample_image("bob"))
        before = emu.records

    async with Emulator(db=db) as again:
        assert again.records == before
        assert [r["user_id"] for r in before] == [42, None]
        async with again.client() as client:
            assert await client.get_image(alice.image_id) == sample_image("alice")
            assert await client.get_image(bob.image_id) == sample_image("bob")
            again_alice = await client.create_record("GATE-1", sample_image("alice"))
        assert again_alice.record_id == bob.record_id + 1  # ids continue after the file's last
        # Enrollments are not kept: the same face is unknown to a new emulator.
        assert again.records[-1]["user_id"] is None


async def test_the_listing_of_a_restored_emulator_is_the_same(tmp_path: Path) -> None:
    db = tmp_path / "emu.sqlite"
    clock = Clock(T0)
    first = Emulator(db=db, clock=clock)
    first.seed(500, start=T0 - timedelta(days=2), span=timedelta(days=1), sn=["A", "B"])
    async with first, first.client(clock=clock) as client:
        created = await client.create_record("C", sample_image("alice"))
        want = [r async for r in client.records(T0 - timedelta(days=3), T0)]
        by_sn = [r async for r in client.records(T0 - timedelta(days=3), T0, sn="B")]

    async with Emulator(db=db, clock=clock) as again, again.client(clock=clock) as client:
        assert [r async for r in client.records(T0 - timedelta(days=3), T0)] == want
        assert [r async for r in client.records(T0 - timedelta(days=3), T0, sn="B")] == by_sn
        assert len(want) == 501
        assert len(by_sn) == 250
        seeded = want[0]
        assert len(await client.get_image(seeded.image_id)) > 0
        assert await client.get_image(created.image_id) == sample_image("alice")


def test_a_record_past_retention_is_dropped_from_the_file(tmp_path: Path) -> None:
    db = tmp_path / "emu.sqlite"
    clock = Clock(T0)
    emu = Emulator(db=db, clock=clock, retention=timedelta(days=1))
    emu.seed(2, start=T0 - timedelta(hours=30), span=timedelta(hours=28))
    # The oldest is 30 hours old, past retention; the newest 2 hours.
    again = Emulator(db=db, clock=clock, retention=timedelta(days=1))
    assert len(again.records) == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM records").fetchone() == (1,)
    conn.close()


def test_without_db_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    emu = Emulator()
    emu.seed(3, start=T0, span=timedelta(hours=1))
    assert list(tmp_path.iterdir()) == []


def test_a_file_of_another_layout_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "emu.sqlite"
    RecordFile(db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'version'")
    conn.close()
    with pytest.raises(ValueError, match="layout 0; this emulator reads layout 1"):
        Emulator(db=db)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "emu.sqlite"
    db.write_text("not sqlite " * 100)
    with pytest.raises(sqlite3.DatabaseError):
        Emulator(db=db)


def test_the_tag_of_image_ids_is_kept(tmp_path: Path) -> None:
    db = tmp_path / "emu.sqlite"
    assert RecordFile(db).tag == RecordFile(db).tag
    assert RecordFile(db).tag != RecordFile(tmp_path / "other.sqlite").tag


async def test_a_failed_write_leaves_no_half_seed(tmp_path: Path) -> None:
    db = tmp_path / "emu.sqlite"
    emu = Emulator(db=db)
    emu.seed(10, start=T0, span=timedelta(hours=1))
    file = RecordFile(db)

    def rows_then_fail() -> object:
        yield (1, 0, 0, None, 0.3, "X", None, None, None)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        file.write(rows_then_fail())  # type: ignore[arg-type]
    assert len(Emulator(db=db).records) == 10


async def test_a_client_sees_the_same_ids_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "emu.sqlite"
    async with Emulator(db=db) as emu, emu.client(retry=slp.RetryPolicy.none()) as client:
        created = await client.create_record("SN1", sample_image("alice"))
    async with Emulator(db=db) as emu, emu.client() as client:
        page = await client.list_records(
            datetime.now(timezone.utc) - timedelta(hours=1), datetime.now(timezone.utc)
        )
    assert [(r.record_id, r.image_id) for r in page.records] == [
        (created.record_id, created.image_id)
    ]
