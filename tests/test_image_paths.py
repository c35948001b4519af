"""Image paths that are not regular files: `FaceImage.from_path`, ``create_record(sn,
path)`` and the CLI's ``upload`` refuse a FIFO, a device or a folder without opening or
blocking on it, read at most the limit + 1 bytes whatever the size says, and read off
the event loop."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from senselink_plus import FaceImage, ValidationError
from senselink_plus._cli import main as cli_main
from senselink_plus._models import MAX_IMAGE_BYTES
from tests.conftest import APP_KEY, APP_SECRET, JPEG, MakeClient, ok
from tests.loopback import CREATED, closed_port


@contextlib.contextmanager
def fifo_guard(path: Path) -> Iterator[list[bool]]:
    """If a reader blocks on the FIFO ``path``, unblock it after 5 s by opening the write
    end, and say so (in the list yielded); code that refuses a FIFO never opens it."""
    unblocked: list[bool] = []

    def unblock() -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader: nothing blocked
            return
        unblocked.append(True)
        os.close(fd)

    timer = threading.Timer(5, unblock)
    timer.start()
    try:
        yield unblocked
    finally:
        timer.cancel()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_from_path_refuses_a_fifo_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "face.jpg"
    os.mkfifo(fifo)
    with fifo_guard(fifo) as unblocked, pytest.raises(ValidationError, match="a FIFO"):
        FaceImage.from_path(fifo)
    assert unblocked == []


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_from_path_refuses_dev_zero_before_reading_it() -> None:
    with pytest.raises(ValidationError, match="character device, not a regular file") as caught:
        FaceImage.from_path("/dev/zero")
    assert caught.value.field == "image"


def test_from_path_refuses_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is a folder, not a regular file"):
        FaceImage.from_path(tmp_path)


def test_from_path_reads_at_most_the_limit_plus_one_byte_whatever_the_size_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(JPEG + bytes(3 * MAX_IMAGE_BYTES))
    real_stat, real_fstat, real_read = os.stat, os.fstat, os.read

    def small(result: os.stat_result) -> os.stat_result:
        fields = list(result)
        fields[6] = 100  # st_size: as a file still being written (or a /proc file) says
        return os.stat_result(fields)

    read: list[int] = []

    def counting_read(fd: int, n: int) -> bytes:
        data = real_read(fd, n)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "stat", lambda p, *a, **k: small(real_stat(p, *a, **k)))
    monkeypatch.setattr(os, "fstat", lambda fd: small(real_fstat(fd)))
    monkeypatch.setattr(os, "read", counting_read)
    with pytest.raises(ValidationError, match=f"'{big}' is over {MAX_IMAGE_BYTES} bytes"):
        FaceImage.from_path(big)
    assert sum(read) == MAX_IMAGE_BYTES + 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
async def test_create_record_with_a_fifo_path_never_blocks_the_loop(
    make_client: MakeClient, tmp_path: Path
) -> None:
    fifo = tmp_path / "face.jpg"
    os.mkfifo(fifo)
    client = make_client(lambda request: pytest.fail("nothing may be sent"))
    with fifo_guard(fifo) as unblocked, pytest.raises(ValidationError, match="a FIFO"):
        await client.create_record("GATE-1", fifo)
    assert unblocked == []


async def test_create_record_reads_a_path_off_the_event_loop(
    make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = tmp_path / "face.jpg"
    photo.write_bytes(JPEG)
    threads: list[str] = []
    real = FaceImage.from_path.__func__  # type: ignore[attr-defined]

    def spy(cls: type[FaceImage], *args: Any, **kwargs: Any) -> FaceImage:
        threads.append(threading.current_thread().name)
        return real(cls, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(FaceImage, "from_path", classmethod(spy))
    client = make_client(lambda request: ok(CREATED))
    assert (await client.create_record("GATE-1", photo)).record_id == 7
    assert threads
    assert threading.main_thread().name not in threads


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_cli_upload_refuses_a_fifo_and_a_folder_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "face.jpg"
    os.mkfifo(fifo)
    monkeypatch.setenv("SENSELINK_APP_KEY", APP_KEY)
    monkeypatch.setenv("SENSELINK_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("SENSELINK_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    with fifo_guard(fifo) as unblocked:
        code = cli_main(["upload", "--sn", "GATE-1", str(fifo), str(tmp_path)])
    assert unblocked == []
    assert code == 1
    out = capsys.readouterr().out
    assert f"{fifo}\terror ValidationError: image '{fifo}' is a FIFO" in out
    assert f"{tmp_path}\terror ValidationError: image '{tmp_path}' is a folder" in out
