"""The CLI under hang-ups and kills: SIGHUP and SIGQUIT stop ``records -o`` cleanly (the
file as it was, no ``.part`` left), and every output line is written in one call, so a
kill between calls never leaves a torn line."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from senselink_plus._cli import main as cli_main
from tests.test_cli import EmulatorThread, seed, window

OLD_EXPORT = '{"record_id": 1}\n' * 100


@pytest.fixture
def cli_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorThread]:
    with EmulatorThread() as running:
        monkeypatch.setenv("SENSELINK_BASE_URL", running.emu.base_url)
        monkeypatch.setenv("SENSELINK_APP_KEY", running.emu.app_key)
        monkeypatch.setenv("SENSELINK_APP_SECRET", running.emu.app_secret)
        yield running


def _parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("signame", "code"), [("SIGHUP", 129), ("SIGQUIT", 131)])
def test_records_stopped_by_a_hangup_or_quit_leaves_the_file_and_no_part_file(
    cli_emulator: EmulatorThread, tmp_path: Path, signame: str, code: int
) -> None:
    seed(cli_emulator, 300)
    cli_emulator.call(cli_emulator.emu.delay, "list", 30.0, times=100)  # cut short below
    target = tmp_path / "export.jsonl"
    target.write_text(OLD_EXPORT)
    process = subprocess.Popen(
        [sys.executable, "-m", "senselink_plus", "records", *window(), "-o", str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        for _ in range(500):  # until the first page is asked for (at most 10 s)
            if cli_emulator.call(lambda: len(cli_emulator.emu.requests)):
                break
            time.sleep(0.02)  # polling another process, not pacing the code under test
        else:
            pytest.fail("the CLI never asked for a page")
        assert _parts(tmp_path)  # the output is being written beside the file
        process.send_signal(getattr(signal, signame))
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == code
    assert target.read_text() == OLD_EXPORT
    assert _parts(tmp_path) == []
    assert f"stopped by {signame}" in err
    assert "Traceback" not in err


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
