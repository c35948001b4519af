"""What the command-line tests share: an emulator serving from a thread of its own (the
CLI runs its own event loop), the `cli_emulator` fixture that points the ``SENSELINK_*``
variables at it, records seeded over the last days, and the CLI run as a child process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from senselink_plus.testing import Emulator

NOW = datetime.now(timezone.utc)
#: What an output file holds before a command replaces it (or, failing, leaves it).
OLD_EXPORT = '{"record_id": 1}\n' * 1000


class EmulatorThread:
    """An emulator serving from its own event loop, so the CLI's asyncio.run works."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.emu = Emulator()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.emu.start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.emu.stop())
        self.loop.close()

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a plain emulator helper on the emulator's loop thread."""
        done: dict[str, Any] = {}
        event = threading.Event()

        def work() -> None:
            done["result"] = fn(*args, **kwargs)
            event.set()

        self.loop.call_soon_threadsafe(work)
        assert event.wait(5)
        return done["result"]

    def __enter__(self) -> EmulatorThread:
        self.thread.start()
        assert self.ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def cli_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorThread]:
    """An emulator in a thread, with ``SENSELINK_*`` pointing the CLI at it."""
    with EmulatorThread() as running:
        monkeypatch.setenv("SENSELINK_BASE_URL", running.emu.base_url)
        monkeypatch.setenv("SENSELINK_APP_KEY", running.emu.app_key)
        monkeypatch.setenv("SENSELINK_APP_SECRET", running.emu.app_secret)
        yield running


class Stop(NamedTuple):
    """A signal (by name: not every platform has each), the exit code it ends the CLI
    with, and how the CLI's last line names it."""

    signame: str
    code: int
    why: str


CTRL_C = Stop(signame="SIGINT", code=130, why="Ctrl-C")
SIGTERM = Stop(signame="SIGTERM", code=143, why="SIGTERM")
SIGHUP = Stop(signame="SIGHUP", code=129, why="SIGHUP")
SIGQUIT = Stop(signame="SIGQUIT", code=131, why="SIGQUIT")


def seed(emulator: EmulatorThread, n: int, days: int = 1) -> None:
    start = NOW - timedelta(days=days, minutes=5)
    emulator.call(emulator.emu.seed, n, start=start, span=timedelta(days=days), sn=["A", "B"])


def window(days: int = 1) -> list[str]:
    """``--from``/``--to`` arguments covering what `seed` stored over ``days``."""
    start = NOW - timedelta(days=days, minutes=10)
    return ["--from", start.isoformat(), "--to", NOW.isoformat()]


def part_files(folder: Path) -> list[str]:
    """The temporary files an output being written leaves beside its target."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def spawn(emulator: EmulatorThread, *args: str) -> subprocess.Popen[bytes]:
    """``python -m senselink_plus ARGS`` against ``emulator``, its output piped."""
    env = {
        **os.environ,
        "SENSELINK_BASE_URL": emulator.emu.base_url,
        "SENSELINK_APP_KEY": emulator.emu.app_key,
        "SENSELINK_APP_SECRET": emulator.emu.app_secret,
    }
    env.pop("SENSELINK_LOG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "senselink_plus", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def wait_for_a_request(emulator: EmulatorThread, timeout: float = 10.0) -> None:
    """Until the emulator has seen a request (a child process has reached its first call)."""
    deadline = time.monotonic() + timeout
    while not emulator.call(lambda: len(emulator.emu.requests)):
        if time.monotonic() > deadline:
            pytest.fail(f"no request reached the emulator in {timeout:.0f} s")
        time.sleep(0.02)  # polling another process, not pacing the code under test
