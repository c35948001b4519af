"""``senselink-plus watch`` stops through the public ``watch.stop()``: on SIGTERM,
Ctrl-C, SIGHUP or SIGQUIT it finishes the record in hand, saves, and says which signal."""

from __future__ import annotations

import json
import signal
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.cli_helpers import (
    NOW,
    SIGHUP,
    SIGQUIT,
    SIGTERM,
    EmulatorThread,
    Stop,
    seed,
    spawn,
    wait_for_a_request,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def watch_args(state: Path, *more: str) -> list[str]:
    since = (NOW - timedelta(days=1, minutes=10)).isoformat()
    return ["watch", "--since", since, "--checkpoint", str(state), "--interval", "0.05", *more]


def watch_until(
    emulator: EmulatorThread, state: Path, lines: int, stop: Stop
) -> tuple[list[int], int, str]:
    """Run a watch, read ``lines`` records, send ``stop``'s signal: the ids read, the
    exit code and stderr."""
    process = spawn(emulator, *watch_args(state))
    try:
        assert process.stdout is not None
        read = [json.loads(process.stdout.readline())["record_id"] for _ in range(lines)]
        process.send_signal(getattr(signal, stop.signame))
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return read, process.returncode, err.decode()


@pytest.mark.parametrize(Stop._fields, [SIGHUP, SIGQUIT])
def test_sighup_and_sigquit_stop_the_watch_cleanly(
    signame: str, code: int, why: str, cli_emulator: EmulatorThread, tmp_path: Path
) -> None:
    seed(cli_emulator, 4)
    state = tmp_path / "state.json"
    ids, returncode, err = watch_until(
        cli_emulator, state, 4, Stop(signame=signame, code=code, why=why)
    )
    assert returncode == code
    assert err.splitlines() == [f"senselink-plus: stopped by {why}; position saved in {state}"]
    assert ids == list(range(ids[0], ids[0] + 4))
    assert json.loads(state.read_text())


@pytest.mark.parametrize(Stop._fields, [SIGTERM, SIGHUP])
def test_a_restart_after_a_stop_neither_repeats_nor_skips(
    signame: str, code: int, why: str, cli_emulator: EmulatorThread, tmp_path: Path
) -> None:
    seed(cli_emulator, 5)
    state = tmp_path / "state.json"
    stop = Stop(signame=signame, code=code, why=why)
    first, returncode, _ = watch_until(cli_emulator, state, 5, stop)
    assert returncode == code
    now = datetime.now(timezone.utc)
    cli_emulator.call(cli_emulator.emu.seed, 3, start=now, span=timedelta(seconds=1))
    again = spawn(cli_emulator, *watch_args(state, "--max-items", "3"))
    out, err = again.communicate(timeout=30)
    assert again.returncode == 0, err.decode()
    second = [json.loads(line)["record_id"] for line in out.decode().splitlines()]
    # The last record written before SIGTERM was acknowledged: it does not come again.
    assert first + second == list(range(first[0], first[0] + 8))


def test_sigterm_while_waiting_for_a_poll_stops_at_once(
    cli_emulator: EmulatorThread, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    process = spawn(cli_emulator, "watch", "--checkpoint", str(state), "--interval", "3600")
    try:
        wait_for_a_request(cli_emulator)  # started; next, an hour's wait for the next poll
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 143
    assert err.decode().splitlines() == [
        f"senselink-plus: stopped by SIGTERM; position saved in {state}"
    ]
