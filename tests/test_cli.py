"""The senselink-plus command through its entry point, against an emulator in a thread."""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from senselink_plus._cli import main
from senselink_plus.testing import sample_image
from tests.cli_helpers import NOW, EmulatorThread, seed, window
from tests.conftest import WIRE_RECORD


def test_records_jsonl_over_several_days(
    cli_emulator: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cli_emulator, 700, days=3)
    assert main(["records", *window(3)]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 700
    ids = [row["record_id"] for row in rows]
    assert ids == sorted(set(ids))
    assert set(rows[0]) == {*WIRE_RECORD, "created_at", "matched"}
    for row in rows[:5]:  # ISO-8601 in UTC beside the raw value
        created = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00"))
        assert row["created_at"].endswith("Z")
        assert created.timestamp() == pytest.approx(row["create_at"] / 1000)
    assert "700 records" in err
    assert "\r" not in err  # no progress bar when stderr is not a terminal


def test_records_csv_to_a_file_descending_for_one_device(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cli_emulator, 100)
    target = tmp_path / "out.csv"
    code = main(
        ["records", *window(), "--sn", "B", "--order", "desc", "--format", "csv", "-o", str(target)]
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 50
    assert {row["sn"] for row in rows} == {"B"}
    ids = [int(row["record_id"]) for row in rows]
    assert ids == sorted(ids, reverse=True)


def test_records_table_and_max_items(
    cli_emulator: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cli_emulator, 30)
    assert main(["records", *window(), "--format", "table", "--max-items", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("record_id")
    assert len(lines) == 2 + 5


def test_records_bad_time_is_a_usage_error(
    cli_emulator: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["records", "--from", "yesterday", "--to", NOW.isoformat()]) == 2
    err = capsys.readouterr().err
    assert err.startswith("senselink-plus: error: --from 'yesterday' is not a time such as")
    assert "Traceback" not in err


def test_upload_reports_each_image(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "alice.png"
    good.write_bytes(sample_image("alice"))
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    code = main(["upload", "--sn", "GATE-1", "--extend", '{"gate": "n"}', str(good), str(bad)])
    assert code == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    ok_line = next(line for line in out if line.startswith(str(good)))
    assert "\trecord " in ok_line
    bad_line = next(line for line in out if line.startswith(str(bad)))
    assert "ValidationError" in bad_line
    records = cli_emulator.call(lambda: cli_emulator.emu.records)
    assert [(r["sn"], r["extend"]) for r in records] == [("GATE-1", '{"gate": "n"}')]


def test_upload_with_bad_extend_sends_nothing(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "alice.png"
    good.write_bytes(sample_image("alice"))
    assert main(["upload", "--sn", "GATE-1", "--extend", "{oops", str(good)]) == 2
    assert "extend" in capsys.readouterr().err
    assert cli_emulator.call(lambda: len(cli_emulator.emu.requests)) == 0


def test_image_to_file_and_unknown_id(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "alice.png"
    good.write_bytes(sample_image("alice"))
    assert main(["upload", "--sn", "GATE-1", str(good)]) == 0
    image_id = capsys.readouterr().out.split("image ")[1].strip()
    target = tmp_path / "snap.png"
    assert main(["image", image_id, "-o", str(target)]) == 0
    assert target.read_bytes() == sample_image("alice")
    assert main(["image", "0" * 24]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("senselink-plus: NotFoundError:")
    assert "Traceback" not in err


def test_missing_credentials_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SENSELINK_APP_KEY", raising=False)
    monkeypatch.delenv("SENSELINK_APP_SECRET", raising=False)
    assert main(["image", "abc"]) == 2
    assert "SENSELINK_APP_KEY" in capsys.readouterr().err


def test_wrong_secret_is_a_failed_call(
    cli_emulator: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["image", "abc", "--app-secret", "wrong"]) == 1
    assert "AuthenticationError" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["demo", "emulator", "records", "upload", "image", "watch"])
def test_every_subcommand_has_help_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: senselink-plus" in out
    if command != "demo":
        assert "example" in out


def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "6 records: 4 matched an enrolled user, 2 unknown faces" in out
    assert "requests sent for it: 0" in out
    assert "NoFaceDetectedError" in out
    assert [p.suffix for p in tmp_path.iterdir()] == [".png"]


def test_watch_with_a_checkpoint_resumes(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cli_emulator, 10)
    since = (NOW - timedelta(days=1, minutes=10)).isoformat()
    state = tmp_path / "state.json"
    args = ["watch", "--since", since, "--checkpoint", str(state), "--interval", "0.01"]
    assert main([*args, "--max-items", "4"]) == 0
    first = [json.loads(line)["record_id"] for line in capsys.readouterr().out.splitlines()]
    assert main([*args, "--max-items", "6"]) == 0
    second = [json.loads(line)["record_id"] for line in capsys.readouterr().out.splitlines()]
    assert len(first) == 4
    # The 4th record was written before the first run stopped: it is not written again,
    # and nothing is skipped.
    assert first + second == list(range(first[0], first[0] + 10))
    assert json.loads(state.read_text())["version"] == 2


def test_upload_fit_reencodes_what_the_service_would_refuse(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image_module = pytest.importorskip("PIL.Image")
    bmp = tmp_path / "face.bmp"
    image_module.new("RGB", (64, 64), (200, 150, 120)).save(bmp)
    assert main(["upload", "--sn", "GATE-1", str(bmp)]) == 1
    assert "not a JPEG or PNG" in capsys.readouterr().out
    assert main(["upload", "--sn", "GATE-1", "--fit", str(bmp)]) == 0
    assert "\trecord " in capsys.readouterr().out
    stored = cli_emulator.call(lambda: list(cli_emulator.emu.images.values()))
    assert len(stored) == 1
    assert stored[0].startswith(b"\xff\xd8\xff")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_records_shows_progress_on_a_terminal(
    cli_emulator: EmulatorThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(cli_emulator, 300, days=2)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["records", *window(2)]) == 0
    shown = terminal.getvalue()
    assert "\r" in shown
    assert "100.0%" in shown.splitlines()[-2]
    assert "300 records" in shown
    assert len(capsys.readouterr().out.splitlines()) == 300


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_emulator_command_serves_and_stops_cleanly_on_a_signal() -> None:
    import signal
    import subprocess
    import urllib.request

    process = subprocess.Popen(
        [sys.executable, "-m", "senselink_plus", "emulator", "--port", "0", "--seed", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().split(" at ")[1].strip()
        for _ in range(4):
            process.stdout.readline()  # the export lines and the seed count
        with urllib.request.urlopen(f"{base_url}/api/v1/plus/record", timeout=5) as reply:
            assert json.loads(reply.read())["code"] == 401  # unsigned: refused, but served
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "emulator stopped" in out
    assert "Traceback" not in out


def test_bad_upload_and_watch_options_are_usage_errors(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "alice.png"
    good.write_bytes(sample_image("alice"))
    assert main(["upload", "--sn", "GATE-1", "--threshold", "2", str(good), str(good)]) == 2
    assert "threshold" in capsys.readouterr().err
    assert main(["watch", "--max-items", "0"]) == 2
    assert "--max-items" in capsys.readouterr().err
    assert cli_emulator.call(lambda: len(cli_emulator.emu.requests)) == 0


def test_watch_ends_with_exit_1_and_one_line_when_the_secret_is_refused(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cli_emulator, 3)
    state = tmp_path / "state.json"
    args = ["watch", "--app-secret", "rotated-away", "--interval", "0.01"]
    assert main([*args, "--checkpoint", str(state)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("senselink-plus: AuthenticationError: ")
    assert "rotated-away" not in captured.err
    refused = cli_emulator.call(lambda: [r for r in cli_emulator.emu.requests if not r.auth_ok])
    assert len(refused) == 3  # three polls, then the end
    # The lock was released on the way out: another watcher may take the checkpoint.
    assert (
        main(
            [
                "watch",
                "--checkpoint",
                str(state),
                "--interval",
                "0.01",
                "--max-items",
                "1",
                "--since",
                (NOW - timedelta(days=2)).isoformat(),
            ]
        )
        == 0
    )


def test_the_app_secret_can_come_from_a_file_or_stdin_and_argv_warns(
    cli_emulator: EmulatorThread,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed(cli_emulator, 5)
    secret = cli_emulator.emu.app_secret
    monkeypatch.delenv("SENSELINK_APP_SECRET")
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret + "\n")
    with caplog.at_level(logging.WARNING, logger="senselink_plus"):
        assert main(["records", *window(), "--app-secret-file", str(secret_file)]) == 0
        monkeypatch.setattr(sys, "stdin", io.StringIO(secret + "\n"))
        assert main(["records", *window(), "--app-secret-file", "-"]) == 0
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert main(["records", *window(), "--app-secret", secret]) == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "visible to every user" in warnings[0].getMessage()
    both = ["records", *window(), "--app-secret", secret, "--app-secret-file", str(secret_file)]
    assert main(both) == 2
    assert main(["records", *window(), "--app-secret-file", str(tmp_path / "none")]) == 2
