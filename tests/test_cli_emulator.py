"""``senselink-plus emulator --enroll NAME=IMAGE --db FILE``, as a child process."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import senselink_plus as slp
from senselink_plus._cli import main
from senselink_plus._cli_emulator import read_enrollments
from senselink_plus.testing import sample_image

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture
def faces(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name in ("alice", "bob", "visitor"):
        paths[name] = tmp_path / f"{name}.png"
        paths[name].write_bytes(sample_image(name))
    return paths


class Served:
    def __init__(self, base_url: str, lines: list[str]) -> None:
        self.base_url = base_url
        self.lines = lines

    def client(self) -> slp.Client:
        return slp.Client(
            "emulator-app-key", "emulator-app-secret", base_url=self.base_url, retry=None
        )


@contextmanager
def emulator(*args: str) -> Iterator[Served]:
    """``senselink-plus emulator --port 0 ARGS`` until the block ends, then SIGINT."""
    process = subprocess.Popen(
        [sys.executable, "-m", "senselink_plus", "emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline()]
        assert " at " in lines[0], lines[0] + process.stdout.read()
        while "Ctrl-C stops it" not in lines[-1]:
            lines.append(process.stdout.readline())
            assert lines[-1], lines
        yield Served(lines[0].split(" at ")[1].strip(), lines)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, out
    assert "emulator stopped" in out
    assert "Traceback" not in out


def last_hour() -> tuple[datetime, datetime]:
    now = datetime.now(timezone.utc)
    return now - timedelta(hours=1), now + timedelta(minutes=1)


@posix_only
async def test_records_outlive_a_restart_with_db(tmp_path: Path, faces: dict[str, Path]) -> None:
    db = tmp_path / "emu.sqlite"
    with emulator("--db", str(db), "--seed", "20") as served:
        assert f"0 records kept in {db}, 20 seeded" in served.lines[-1]
        async with served.client() as client:
            created = [await client.create_record("GATE-1", faces[n]) for n in ("alice", "bob")]
            first = [r async for r in client.records(*last_hour())]

    with emulator("--db", str(db), "--seed", "20") as served:
        # The same command line again: the file's records are kept, no second seed.
        assert f"22 records kept in {db}; --seed 20 skipped" in served.lines[-1]
        async with served.client() as client:
            again = [r async for r in client.records(*last_hour())]
            assert again == first
            assert [r.record_id for r in again[-2:]] == [c.record_id for c in created]
            assert await client.get_image(created[0].image_id) == sample_image("alice")
            newest = await client.create_record("GATE-1", faces["visitor"])
    assert newest.record_id == created[-1].record_id + 1


@posix_only
async def test_an_enrolled_face_comes_back_matched(faces: dict[str, Path]) -> None:
    with emulator(
        "--enroll", f"alice={faces['alice']}", "--enroll", f"42={faces['bob']}"
    ) as served:
        assert f"  enrolled alice as user_id 1: {faces['alice']}\n" in served.lines
        assert f"  enrolled 42 as user_id 42: {faces['bob']}\n" in served.lines
        async with served.client() as client:
            for name in ("alice", "bob", "visitor"):
                await client.create_record("GATE-1", faces[name])
            # The rule: exact bytes, score 0.97, matched when the threshold allows it.
            await client.create_record("GATE-1", faces["alice"], threshold=0.99)
            records = [r async for r in client.records(*last_hour())]
    assert [(r.user_id, r.matched) for r in records] == [
        (1, True),
        (42, True),
        (None, False),
        (None, False),
    ]
    assert [r.verify_score for r in records] == [0.97, 0.97, 0.31, 0.97]


def test_user_ids_for_names_and_numbers(faces: dict[str, Path]) -> None:
    enrolled = read_enrollments(
        [f"bob={faces['bob']}", f"1={faces['alice']}", f"eve={faces['visitor']}"]
    )
    assert [(e.name, e.user_id) for e in enrolled] == [("bob", 2), ("1", 1), ("eve", 3)]
    assert enrolled[0].data == sample_image("bob")


def test_one_person_may_have_several_photos(faces: dict[str, Path]) -> None:
    enrolled = read_enrollments([f"alice={faces['alice']}", f"alice={faces['bob']}"])
    assert [e.user_id for e in enrolled] == [1, 1]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("alice", "--enroll 'alice' is not NAME=IMAGE"),
        ("=x.png", "--enroll '=x.png' is not NAME=IMAGE"),
        ("alice=", "--enroll 'alice=' is not NAME=IMAGE"),
        ("alice=missing.png", "--enroll alice=missing.png: cannot read image 'missing.png'"),
        ("99999999999999999999=a.png", "--enroll user id 99999999999999999999 is over"),
    ],
)
def test_bad_enrollments_are_usage_errors(
    spec: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["emulator", "--port", "0", "--enroll", spec]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"senselink-plus: error: {message}")
    assert "Traceback" not in err


def test_an_enrolled_file_must_be_an_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a face")
    assert main(["emulator", "--enroll", f"alice={notes}"]) == 2
    assert "not a JPEG or PNG" in capsys.readouterr().err


def test_one_image_for_two_people_is_refused(
    faces: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["emulator", "--enroll", f"alice={faces['alice']}", "--enroll", f"bob={faces['alice']}"]
    assert main(args) == 2
    assert "the same image is already enrolled as alice" in capsys.readouterr().err


def test_a_db_that_is_not_one_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "emu.sqlite"
    db.write_text("not sqlite " * 100)
    assert main(["emulator", "--port", "0", "--db", str(db)]) == 2
    assert capsys.readouterr().err == f"senselink-plus: error: --db {db}: file is not a database\n"
