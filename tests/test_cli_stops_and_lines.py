"""``records -o FILE`` replaces FILE whole, keeping its mode, only on success: an error,
Ctrl-C, SIGHUP or SIGQUIT leave it as it was and no ``.part`` beside it. Every output
line is written in one call, so a kill between calls never leaves a torn line."""

from __future__ import annotations

import io
import json
import signal
import sys
from pathlib import Path

import pytest

from senselink_plus._cli import main as cli_main
from tests.cli_helpers import (
    CTRL_C,
    OLD_EXPORT,
    SIGHUP,
    SIGQUIT,
    EmulatorThread,
    Stop,
    part_files,
    seed,
    spawn,
    wait_for_a_request,
    window,
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(Stop._fields, [CTRL_C, SIGHUP, SIGQUIT])
def test_records_stopped_by_a_signal_leaves_the_file_and_no_part_file(
    cli_emulator: EmulatorThread, tmp_path: Path, signame: str, code: int, why: str
) -> None:
    seed(cli_emulator, 300)
    cli_emulator.call(cli_emulator.emu.delay, "list", 30.0, times=100)  # cut short below
    target = tmp_path / "export.jsonl"
    target.write_text(OLD_EXPORT)
    process = spawn(cli_emulator, "records", *window(), "-o", str(target))
    try:
        wait_for_a_request(cli_emulator)
        assert part_files(tmp_path)  # the output is being written beside the file
        process.send_signal(getattr(signal, signame))
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == code
    assert target.read_text() == OLD_EXPORT
    assert part_files(tmp_path) == []
    text = err.decode()
    assert f"stopped by {why}" in text
    assert f"{target} left as it was" in text
    assert "Traceback" not in text


class WriteCalls(io.StringIO):
    """A stdout that records each write call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "table"])
def test_each_output_line_is_one_write_call(
    cli_emulator: EmulatorThread, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    seed(cli_emulator, 30)
    out = WriteCalls()
    monkeypatch.setattr(sys, "stdout", out)
    assert cli_main(["records", *window(), "--format", fmt]) == 0
    lines = [call for call in out.calls if call]
    assert len(lines) >= 30
    assert all(call.endswith("\n") and call.count("\n") == 1 for call in lines)


def test_records_to_a_file_that_fails_leaves_the_file_as_it_was(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cli_emulator, 50)
    target = tmp_path / "export.jsonl"
    target.write_text(OLD_EXPORT)
    assert cli_main(["records", *window(), "-o", str(target), "--app-secret", "wrong"]) == 1
    assert "AuthenticationError" in capsys.readouterr().err
    assert target.read_text() == OLD_EXPORT
    assert part_files(tmp_path) == []


def test_records_to_a_file_replaces_it_whole_and_keeps_its_mode(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cli_emulator, 50)
    target = tmp_path / "export.jsonl"
    target.write_text(OLD_EXPORT)
    target.chmod(0o600)
    assert cli_main(["records", *window(), "-o", str(target)]) == 0
    lines = target.read_text().splitlines()
    assert len(lines) == 50
    assert all(json.loads(line)["record_id"] for line in lines)
    assert target.stat().st_mode & 0o777 == 0o600
    assert part_files(tmp_path) == []
