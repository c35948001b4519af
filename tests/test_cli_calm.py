"""A calmer command line: pipes, signals, exports, options, and argument order."""

from __future__ import annotations

import csv
import io
import json
import logging
import signal
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from senselink_plus import ValidationError
from senselink_plus._cli import _client, main
from senselink_plus._cli_args import build_parser
from senselink_plus.testing import sample_image
from tests.cli_helpers import CTRL_C, NOW, SIGTERM, EmulatorThread, Stop, seed, spawn, window


def test_records_into_a_closed_pipe_exits_quietly(cli_emulator: EmulatorThread) -> None:
    seed(cli_emulator, 3000)  # far more than a pipe buffers
    process = spawn(cli_emulator, "records", *window(), "--concurrency", "1")
    assert process.stdout is not None
    assert process.stdout.readline().startswith(b'{"record_id"')
    process.stdout.close()  # what `| head -1` does
    _, err = process.communicate(timeout=60)
    assert process.returncode == 141
    assert b"Broken pipe" not in err
    assert b"Traceback" not in err
    assert b"Exception ignored" not in err


@pytest.mark.parametrize(Stop._fields, [SIGTERM, CTRL_C])
def test_watch_stops_cleanly_on_a_signal_and_keeps_its_checkpoint(
    signame: str, code: int, why: str, cli_emulator: EmulatorThread, tmp_path: Path
) -> None:
    seed(cli_emulator, 5)
    state = tmp_path / "state.json"
    since = (NOW - timedelta(days=1, minutes=10)).isoformat()
    process = spawn(
        cli_emulator, "watch", "--since", since, "--checkpoint", str(state), "--interval", "0.05"
    )
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(5)]
    process.send_signal(getattr(signal, signame))
    _, err = process.communicate(timeout=30)
    assert process.returncode == code
    assert err.decode().splitlines() == [
        f"senselink-plus: stopped by {why}; position saved in {state}"
    ]
    ids = [json.loads(line)["record_id"] for line in lines]
    assert ids == list(range(ids[0], ids[0] + 5))
    assert json.loads(state.read_text())  # the position survived


def test_records_stops_cleanly_on_sigterm(cli_emulator: EmulatorThread) -> None:
    seed(cli_emulator, 3000)
    process = spawn(cli_emulator, "records", *window(), "--concurrency", "1")
    assert process.stdout is not None
    process.stdout.readline()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)  # reading on lets it reach its next await
    assert process.returncode == 143
    assert err.decode().splitlines() == ["senselink-plus: stopped by SIGTERM"]
    assert len(out.splitlines()) < 2999


def test_csv_export_has_created_at_beside_create_at(
    cli_emulator: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cli_emulator, 4)
    assert main(["records", *window(), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 4
    header = list(rows[0])
    assert header[header.index("create_at") + 1] == "created_at"
    assert all(row["created_at"].endswith("Z") for row in rows)


def test_allow_insecure_http() -> None:
    base = ["records", "--from", "x", "--to", "y", "--app-key", "k", "--app-secret", "s"]
    plain = build_parser().parse_args([*base, "--base-url", "http://10.1.2.3:8080"])
    with pytest.raises(ValidationError, match="http"):
        _client(plain)
    allowed = build_parser().parse_args(
        [*base, "--base-url", "http://10.1.2.3:8080", "--allow-insecure-http"]
    )
    assert _client(allowed).base_url == "http://10.1.2.3:8080"


def test_a_time_without_offset_says_what_to_add(
    cli_emulator: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["records", "--from", "2026-11-29T00:00:00", "--to", NOW.isoformat()]) == 2
    err = capsys.readouterr().err
    assert err == (
        "senselink-plus: error: --from 2026-11-29T00:00:00 has no UTC offset: add +09:00 or Z "
        "(e.g. 2026-11-29T00:00:00+09:00 or 2026-11-29T00:00:00Z)\n"
    )
    assert main(["watch", "--since", "2026-11-29T00:00"]) == 2
    assert "--since 2026-11-29T00:00 has no UTC offset: add +09:00 or Z" in capsys.readouterr().err


def test_z_is_accepted(cli_emulator: EmulatorThread, capsys: pytest.CaptureFixture[str]) -> None:
    seed(cli_emulator, 3)
    start = (NOW - timedelta(days=1, minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (NOW + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert main(["records", "--from", start, "--to", end]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_upload_prints_in_argument_order(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = []
    for index, name in enumerate(["alice", "bob", "visitor", "alice"]):
        path = tmp_path / f"{index}-{name}.png"
        path.write_bytes(sample_image(name))
        paths.append(str(path))
    cli_emulator.call(cli_emulator.emu.delay, "create", 0.2)  # the first upload finishes last
    assert main(["upload", "--sn", "SN1", *paths]) == 0
    printed = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert printed == paths


@pytest.fixture
def restore_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("senselink_plus")
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.mark.parametrize(("flags", "level"), [(["-v"], logging.INFO), (["-vv"], logging.DEBUG)])
def test_verbose_logs_to_stderr(
    flags: list[str],
    level: int,
    cli_emulator: EmulatorThread,
    restore_logger: logging.Logger,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(cli_emulator, 2)
    assert main([*flags, "records", *window()]) == 0
    assert restore_logger.level == level
    err = capsys.readouterr().err
    assert ("DEBUG senselink_plus: GET /api/v1/plus/record status=200" in err) == (
        level == logging.DEBUG
    )
    assert "sign=" not in err
    # Also after the subcommand, as users type it.
    assert main(["records", *window(), "-vv"]) == 0
    assert restore_logger.level == logging.DEBUG


def test_demo_leaves_no_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scratch, cwd = tmp_path / "tmp", tmp_path / "cwd"
    scratch.mkdir()
    cwd.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(cwd)
    assert main(["demo"]) == 0
    assert "removed at the end" in capsys.readouterr().out
    assert list(scratch.iterdir()) == []
    assert list(cwd.iterdir()) == []
