"""Where output files go: a symlink's target is replaced (the link stays a link), a FIFO
or a device is written through (never replaced by a regular file), a block device or a
folder is refused; for the CLI's ``-o`` and for `Client.download_image`."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from senselink_plus import Client, HttpResponse, ValidationError
from senselink_plus._cli import main as cli_main
from senselink_plus.testing import MockTransport
from tests.cli_helpers import EmulatorThread, seed, window
from tests.conftest import APP_KEY, APP_SECRET, JPEG, transport_of

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types")


@pytest.fixture
def cli_emulator(cli_emulator: EmulatorThread) -> EmulatorThread:
    """The shared one, holding 20 records."""
    seed(cli_emulator, 20)
    return cli_emulator


class FifoReader:
    """Reads a FIFO to its end in a thread (a writer's open blocks until a reader comes)."""

    def __init__(self, path: Path) -> None:
        self.data = b""
        self._thread = threading.Thread(target=self._read, args=(path,), daemon=True)
        self._thread.start()

    def _read(self, path: Path) -> None:
        with open(path, "rb") as handle:
            self.data = handle.read()

    def join(self) -> bytes:
        self._thread.join(10)
        assert not self._thread.is_alive()
        return self.data


def _char_device(path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    return path


def test_records_to_a_fifo_writes_through_it_and_leaves_it_a_fifo(
    cli_emulator: EmulatorThread, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    assert cli_main(["records", *window(), "-o", str(fifo)]) == 0
    assert len(reader.join().splitlines()) == 20
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_records_to_a_device_writes_through_it_and_leaves_the_node(
    cli_emulator: EmulatorThread, tmp_path: Path
) -> None:
    device = _char_device(tmp_path / "null")
    assert cli_main(["records", *window(), "-o", str(device)]) == 0
    assert stat.S_ISCHR(os.lstat(device).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_records_to_a_symlink_replaces_its_target_and_keeps_the_link(
    cli_emulator: EmulatorThread, tmp_path: Path
) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "export.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    assert cli_main(["records", *window(), "-o", str(link)]) == 0
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    assert len(target.read_text().splitlines()) == 20


def test_records_to_a_block_device_is_refused(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    node = tmp_path / "disk"
    os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(7, 200))
    assert cli_main(["records", *window(), "-o", str(node)]) == 2
    assert "block device" in capsys.readouterr().err
    assert stat.S_ISBLK(os.lstat(node).st_mode)


def _image_client() -> Client:
    def answer(request: object) -> HttpResponse:
        return HttpResponse(200, {"content-type": "image/jpeg"}, JPEG)

    return Client(APP_KEY, APP_SECRET, transport=MockTransport(answer))


async def test_download_image_writes_through_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    async with _image_client() as client:
        assert await client.download_image("i" * 24, fifo) == len(JPEG)
    assert reader.join() == JPEG
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


async def test_download_image_through_a_device_keeps_the_node(tmp_path: Path) -> None:
    device = _char_device(tmp_path / "null")
    async with _image_client() as client:
        await client.download_image("i" * 24, device)
    assert stat.S_ISCHR(os.lstat(device).st_mode)


async def test_download_image_to_a_symlink_writes_its_target(tmp_path: Path) -> None:
    target = tmp_path / "snap.jpg"
    target.write_bytes(b"old")
    link = tmp_path / "latest.jpg"
    link.symlink_to(target)
    async with _image_client() as client:
        await client.download_image("i" * 24, link)
    assert link.is_symlink()
    assert target.read_bytes() == JPEG


async def test_download_image_to_a_socket_is_refused_before_the_call(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        async with _image_client() as client:
            with pytest.raises(ValidationError, match="socket"):
                await client.download_image("i" * 24, path)
            assert transport_of(client).requests == []
