"""`_files`: reading a regular file within a limit, checking a write target, replacing
a file atomically."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from senselink_plus import FileCheckpoint, SenseLinkError, ValidationError
from senselink_plus._files import (
    TEMP_PREFIX,
    TEMP_SUFFIX,
    check_target_path,
    create_temp_beside,
    read_regular_file,
    write_atomically,
)


def test_read_regular_file_reads_up_to_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "face.jpg"
    path.write_bytes(b"x" * 10)
    assert read_regular_file(str(path), 10, "image") == b"x" * 10


def test_read_regular_file_refuses_a_file_over_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "face.jpg"
    path.write_bytes(b"x" * 11)
    with pytest.raises(ValidationError, match="is 11 bytes; the limit is 10") as caught:
        read_regular_file(str(path), 10, "image")
    assert caught.value.field == "image"


def test_read_regular_file_refuses_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is a folder, not a regular file"):
        read_regular_file(str(tmp_path), 10, "image")


@pytest.mark.skipif(sys.platform == "win32", reason="no FIFOs")
def test_read_regular_file_refuses_a_fifo_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValidationError, match="is a FIFO"):
        read_regular_file(str(fifo), 10, "image")  # would block forever if opened


def test_read_regular_file_lets_a_missing_file_raise_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_regular_file(str(tmp_path / "none"), 10, "image")


def test_check_target_path(tmp_path: Path) -> None:
    target = tmp_path / "snap.jpg"
    assert check_target_path(target, "destination") == str(target)
    with pytest.raises(ValidationError, match="is a folder"):
        check_target_path(tmp_path, "destination")
    with pytest.raises(ValidationError, match="folder that does not exist"):
        check_target_path(tmp_path / "nope" / "snap.jpg", "destination")


def test_create_temp_beside_makes_a_new_file_in_the_same_folder(tmp_path: Path) -> None:
    fd, name = create_temp_beside(str(tmp_path / "state.json"))
    os.close(fd)
    assert os.path.dirname(name) == str(tmp_path)
    base = os.path.basename(name)
    assert base.startswith(TEMP_PREFIX)
    assert base.endswith(TEMP_SUFFIX)
    assert os.path.getsize(name) == 0


@pytest.mark.parametrize("durable", [False, True])
def test_write_atomically_replaces_and_leaves_no_temp(tmp_path: Path, durable: bool) -> None:
    target = tmp_path / "snap.jpg"
    target.write_bytes(b"old")
    write_atomically(str(target), b"new", durable=durable)
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["snap.jpg"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_write_atomically_gives_the_usual_permissions(tmp_path: Path) -> None:
    target = tmp_path / "snap.jpg"
    write_atomically(str(target), b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_write_atomically_reports_a_failure_as_a_senselink_error(tmp_path: Path) -> None:
    with pytest.raises(SenseLinkError, match="cannot write"):
        write_atomically(str(tmp_path / "nope" / "snap.jpg"), b"x")


def test_write_atomically_cleans_up_when_the_rename_fails(tmp_path: Path) -> None:
    target = tmp_path / "folder"
    target.mkdir()
    (target / "inside").write_bytes(b"keep")  # a non-empty folder cannot be replaced
    with pytest.raises(SenseLinkError, match="cannot write"):
        write_atomically(str(target), b"x")
    assert sorted(os.listdir(tmp_path)) == ["folder"]


def test_atomic_writes_never_touch_the_process_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Setting the umask, even for a moment, makes another thread's new files take the
    # wrong mode: no write may call os.umask at all.
    mask = os.umask(0o027)
    try:
        calls: list[tuple[Any, ...]] = []
        monkeypatch.setattr(os, "umask", lambda *args: calls.append(args) or 0)
        target = tmp_path / "state.json"
        write_atomically(str(target), b"{}", durable=True)
        write_atomically(str(target), b"{}")
        asyncio.run(FileCheckpoint(tmp_path / "cp.json").save({}))  # no lock file: not acquired
        assert calls == []
        monkeypatch.undo()
        assert target.stat().st_mode & 0o777 == 0o640  # 0o666 less the umask, as usual
        assert (tmp_path / "cp.json").stat().st_mode & 0o777 == 0o640
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cp.json", "state.json"]
    finally:
        os.umask(mask)
