"""`senselink-plus demo`: the SDK's whole flow against an in-process emulator."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ._exceptions import NoFaceDetectedError, ValidationError
from ._models import MAX_IMAGE_BYTES, Record
from ._output import RecordWriter
from .testing import sample_image

if TYPE_CHECKING:
    from ._client import Client
    from .testing import Emulator

Say = Callable[[str], None]

__all__ = ["run_demo"]

PEOPLE = {1001: "alice", 1002: "bob"}
UPLOADS = (
    ("GATE-NORTH-01", "alice", "north door"),
    ("GATE-NORTH-01", "visitor", "north door"),
    ("GATE-SOUTH-02", "bob", "south door"),
    ("GATE-SOUTH-02", "alice", "south door"),
    ("GATE-SOUTH-02", "visitor", "south door"),
    ("GATE-NORTH-01", "bob", "north door"),
)


async def run_demo(out: IO[str] | None = None, workdir: Path | None = None) -> Path:
    """Run the demo (printing to ``out``, default stdout); return the snapshot's path.

    Without ``workdir`` the snapshot goes to a temporary folder removed at the end.
    """
    from .testing import Emulator

    stream = out if out is not None else sys.stdout
    if workdir is not None:
        return await _run(stream, Emulator, workdir, keep=True)
    with tempfile.TemporaryDirectory(prefix="senselink-demo-") as folder:
        return await _run(stream, Emulator, Path(folder), keep=False)


async def _run(stream: IO[str], emulator: type[Emulator], workdir: Path, *, keep: bool) -> Path:
    def say(text: str = "") -> None:
        stream.write(text + "\n")

    async with emulator() as emu:
        say(f"Emulator running at {emu.base_url} (app_key={emu.app_key})")
        for user_id, name in PEOPLE.items():
            emu.enroll(user_id, sample_image(name))
            say(f"  enrolled {name} as user {user_id}")
        async with emu.client() as client:
            started = await _upload(client, say)
            last = await _list_today(client, stream, started, say)
            target = await _download(client, last, workdir, keep, say)
            await _typed_errors(emu, client, say)
    say("\nDone.")
    return target


async def _upload(client: Client, say: Say) -> datetime:
    say("\n1. Devices upload snapshots (create_record):")
    started = datetime.now().astimezone()
    for sn, name, gate in UPLOADS:
        created = await client.create_record(
            sn, sample_image(name), threshold=0.9, extend={"gate": gate}
        )
        say(f"  {sn}  {name:<8} -> record {created.record_id}, image {created.image_id}")
    return started


async def _list_today(client: Client, stream: IO[str], started: datetime, say: Say) -> Record:
    """List the day so far; return the last unknown face."""
    say("\n2. Today's records (records() over the day, oldest first):")
    day_start = started.replace(hour=0, minute=0, second=0, microsecond=0)
    writer = RecordWriter(stream, "table")
    writer.header()
    last = None
    async for record in client.records(day_start, started + timedelta(minutes=5)):
        writer.write(record)
        last = record if not record.matched else last
    matched = sum(1 for _, name, _ in UPLOADS if name in PEOPLE.values())
    say(
        f"  {writer.count} records: {matched} matched an enrolled user, "
        f"{writer.count - matched} unknown faces"
    )
    assert last is not None
    return last


async def _download(client: Client, last: Record, workdir: Path, keep: bool, say: Say) -> Path:
    say("\n3. Download the snapshot of the last unknown face (download_image):")
    target = workdir / f"{last.image_id}.png"
    size = await client.download_image(last.image_id, target)
    kept = "" if keep else " (a temporary folder, removed at the end; --out-dir keeps it)"
    say(f"  wrote {size} bytes to {target}{kept}")
    return target


async def _typed_errors(emu: Emulator, client: Client, say: Say) -> None:
    say("\n4. Errors are typed, and bad input never leaves the machine:")
    sent_before = len(emu.requests)
    oversized = sample_image("alice") + bytes(MAX_IMAGE_BYTES)
    try:
        await client.create_record("GATE-NORTH-01", oversized)
    except ValidationError as exc:
        say(f"  ValidationError ({exc.field}): {exc}")
    say(f"  requests sent for it: {len(emu.requests) - sent_before}")
    blank = sample_image("visitor")[:-12] + b"blank-wall!!"
    emu.mark_no_face(blank)
    try:
        await client.create_record("GATE-NORTH-01", blank)
    except NoFaceDetectedError as exc:
        say(f"  NoFaceDetectedError from the service: code {exc.code}, {exc.message!r}")
