"""Each example runs against the emulator and does what its docstring says."""

from __future__ import annotations

import contextlib
import importlib
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from senselink_plus import RetryPolicy
from senselink_plus.testing import Emulator, sample_image

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delenv("SENSELINK_APP_KEY", raising=False)
    loaded: list[str] = []

    def load(name: str) -> ModuleType:
        loaded.append(name)
        return importlib.import_module(name)

    yield load
    for name in [*loaded, "_setup"]:
        sys.modules.pop(name, None)


async def test_quickstart(example: Any, capsys: pytest.CaptureFixture[str]) -> None:
    quickstart = example("quickstart")
    async with Emulator() as emu:
        emu.enroll(7, sample_image("alice"))
        async with emu.client() as client:
            records = await quickstart.main(client, sn="SN-Q")
    assert [(r.sn, r.user_id) for r in records] == [("SN-Q", 7)]
    assert "snapshot: 521 bytes" in capsys.readouterr().out


async def test_quickstart_run_uses_the_emulator_without_credentials(
    example: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    await example("quickstart").run()
    out = capsys.readouterr().out
    assert "using a local emulator" in out
    assert "user 1001" in out


async def test_ingest_to_sqlite_resumes_without_loss(example: Any, tmp_path: Path) -> None:
    ingest = example("ingest_to_sqlite")
    db, state = str(tmp_path / "r.db"), str(tmp_path / "state.json")
    now = datetime.now(timezone.utc)
    async with Emulator() as emu:
        ids = emu.seed(300, start=now - timedelta(hours=2), span=timedelta(hours=1))
        async with emu.client() as client:
            since = now - timedelta(hours=3)
            first = await ingest.main(client, db, state, since=since, max_items=120)
            second = await ingest.main(client, db, state, since=since, max_items=180)
    assert (first, second) == (120, 180)  # break acknowledged the 120th: no repeat
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT record_id FROM records ORDER BY 1").fetchall()
    assert [row[0] for row in rows] == list(ids)


async def test_door_bot_posts_one_alert_per_unknown_face(example: Any) -> None:
    door_bot = example("door_bot")
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(orjson.loads(await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/alerts", hook)
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    async with TestServer(app, host="127.0.0.1") as webhook, Emulator() as emu:
        emu.enroll(1, sample_image("alice"))
        async with emu.client(retry=RetryPolicy.none()) as client:
            for name in ("alice", "visitor", "alice", "visitor"):
                await client.create_record("DOOR-1", sample_image(name))
            count = await door_bot.main(
                client, webhook_url=str(webhook.make_url("/alerts")), since=since, max_alerts=2
            )
    assert count == 2
    assert [alert["record_id"] for alert in received] == [1_000_001, 1_000_003]
    assert all(alert["sn"] == "DOOR-1" for alert in received)
    assert all("Unknown face at DOOR-1" in alert["text"] for alert in received)


async def test_backfill_counts_every_device(example: Any) -> None:
    backfill = example("backfill")
    end = datetime.now(timezone.utc)
    start = end - timedelta(days=90)
    devices = ["D1", "D2", "D3"]
    async with Emulator() as emu:
        emu.seed(3000, start=start + timedelta(hours=1), span=timedelta(days=89), sn=devices)
        async with emu.client(max_concurrency=4) as client:
            counts = await backfill.main(client, devices, start, end, devices_at_once=2)
    assert counts == {"D1": 1000, "D2": 1000, "D3": 1000}


async def test_to_pandas_builds_a_typed_frame_and_a_parquet_file(
    example: Any, tmp_path: Path
) -> None:
    pd = pytest.importorskip("pandas", reason="the pandas example needs pandas")
    pytest.importorskip("pyarrow", reason="writing Parquet needs pyarrow")
    to_pandas = example("to_pandas")
    end = datetime.now(timezone.utc).replace(microsecond=0)
    start = end - timedelta(days=7)
    async with Emulator() as emu:
        ids = emu.seed(300, start=start, span=timedelta(days=7), sn=["A", "B"])
        async with emu.client() as client:
            df = await to_pandas.frame(client, start, end)
    assert list(df["record_id"]) == list(ids)
    assert str(df["created_at"].dtype).startswith("datetime64")
    assert str(df["created_at"].dt.tz) == "UTC"
    assert df["matched"].dtype == bool
    df.to_parquet(tmp_path / "records.parquet", index=False)
    back = pd.read_parquet(tmp_path / "records.parquet")
    assert list(back["record_id"]) == list(ids)
    assert (back["created_at"] == df["created_at"]).all()


async def test_ingest_to_sqlite_run_twice_finishes_and_leaves_nothing(
    example: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest = example("ingest_to_sqlite")
    cwd, scratch = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    scratch.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    # What is tested is the checkpoint and the files; an in-memory database spares the
    # fsync of a commit per record.
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda path: connect(":memory:"))
    db, state = str(tmp_path / "r.db"), str(tmp_path / "state.json")
    # The second run's fresh emulator holds data from before the first run's position:
    # it must still end (on idleness) rather than wait forever.
    assert await ingest.run(db, state, poll_interval=0.01, idle_stop=0.2) == 250
    assert await ingest.run(db, state, poll_interval=0.01, idle_stop=0.2) < 250
    assert await ingest.run(poll_interval=0.01, idle_stop=0.2) == 250  # throwaway files
    assert list(cwd.iterdir()) == []
    assert list(scratch.iterdir()) == []


async def test_quickstart_leaves_no_files(
    example: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    await example("quickstart").run()
    assert list(tmp_path.iterdir()) == []
