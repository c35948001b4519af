"""`FileCheckpoint`'s lock follows the state file's identity, not its path's spelling:
a symlink or a hard link to the state, or a deleted ``.lock``, lets no second watcher
in; the ``.lock`` is never opened through a symlink; temp files a killed watcher left
are removed when the lock is next taken."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from senselink_plus import CheckpointInUseError, FileCheckpoint, ValidationError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX links and locks")

STATE = {"version": 2, "newest": None, "ids": [1, 2], "watermark": 2}


async def _refused(path: Path) -> None:
    other = FileCheckpoint(path)
    with pytest.raises(CheckpointInUseError):
        await other.acquire()


@pytest.mark.parametrize("saved_first", [False, True])
async def test_a_symlink_to_the_state_meets_the_same_lock(
    tmp_path: Path, saved_first: bool
) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(b"{}")
    link = tmp_path / "alias.json"
    link.symlink_to(state)
    holder = FileCheckpoint(state)
    await holder.acquire()
    try:
        if saved_first:
            await holder.save(STATE)
        await _refused(link)
    finally:
        await holder.release()


async def test_saving_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    link = tmp_path / "alias.json"
    link.symlink_to(state)
    checkpoint = FileCheckpoint(link)
    await checkpoint.acquire()
    await checkpoint.save(STATE)
    await checkpoint.release()
    assert link.is_symlink()
    assert await FileCheckpoint(state).load() == STATE


@pytest.mark.parametrize("saved_first", [False, True])
async def test_a_hard_link_to_the_state_meets_the_same_lock(
    tmp_path: Path, saved_first: bool
) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(b"{}")
    hard = tmp_path / "hard.json"
    os.link(state, hard)
    holder = FileCheckpoint(state)
    await holder.acquire()
    try:
        await _refused(hard)
        if saved_first:
            await holder.save(STATE)
            await _refused(state)
    finally:
        await holder.release()


@pytest.mark.parametrize("saves", [1, 3])
async def test_a_deleted_lock_file_lets_no_second_watcher_in(tmp_path: Path, saves: int) -> None:
    state = tmp_path / "state.json"
    holder = FileCheckpoint(state)
    await holder.acquire()
    try:
        for n in range(saves):
            await holder.save({**STATE, "watermark": n})
        os.unlink(holder.lock_path)
        await _refused(state)
    finally:
        await holder.release()
    again = FileCheckpoint(state)
    await again.acquire()  # free once the holder is gone
    assert await again.load() == {**STATE, "watermark": saves - 1}
    await again.release()


async def test_the_lock_file_is_never_opened_through_a_symlink(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    victim = tmp_path / "victim"
    Path(f"{state}.lock").symlink_to(victim)
    with pytest.raises(ValidationError, match="symlink"):
        await FileCheckpoint(state).acquire()
    assert not victim.exists()


KILLED_MID_SAVE = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from senselink_plus import FileCheckpoint

    async def main():
        checkpoint = FileCheckpoint(sys.argv[1])
        await checkpoint.acquire()
        await checkpoint.save({"watermark": 1})
        # The next save is killed (kill -9) after its temp file is written.
        os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
        await checkpoint.save({"watermark": 2})

    asyncio.run(main())
    """
)


def _parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_temp_files_of_a_watcher_killed_mid_save_are_removed_at_the_next_lock(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", KILLED_MID_SAVE, str(state)], capture_output=True, timeout=60
        )
        assert done.returncode == -signal.SIGKILL
        # Each run removed the one before's leftover when it took the lock.
        assert len(_parts(tmp_path)) == 1
    asyncio.run(_next_watcher_cleans_up(tmp_path, state))


async def _next_watcher_cleans_up(tmp_path: Path, state: Path) -> None:
    # Another checkpoint's temp file and a records export's in the same folder stay.
    other = FileCheckpoint(tmp_path / "other.json")
    await other.acquire()
    await other.save(STATE)
    foreign = tmp_path / ".senselink-0123456789abcdef.part"
    foreign.write_bytes(b"partial export")
    checkpoint = FileCheckpoint(state)
    await checkpoint.acquire()
    try:
        assert _parts(tmp_path) == [foreign.name]
        assert await checkpoint.load() == {"watermark": 1}
    finally:
        await checkpoint.release()
        await other.release()
