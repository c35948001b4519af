"""Quickstart: upload a snapshot, list today's records, download a snapshot.

python examples/quickstart.py            # against a local emulator
SENSELINK_APP_KEY=... SENSELINK_APP_SECRET=... python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import senselink_plus as slp
from senselink_plus.testing import sample_image

from _setup import example_client


async def main(client: slp.Client, sn: str = "JKQ00009234") -> list[slp.Record]:
    started = datetime.now().astimezone()
    created = await client.create_record(sn, sample_image("alice"), extend={"gate": "north"})
    print(f"created record {created.record_id} (image {created.image_id})")

    records = [
        record
        async for record in client.records(
            started - timedelta(hours=1), started + timedelta(minutes=5), sn=sn
        )
    ]
    for record in records:
        who = f"user {record.user_id}" if record.matched else "unknown face"
        print(f"{record.record_id}  {record.created_at:%H:%M:%S}  {record.sn}  {who}")

    with tempfile.TemporaryDirectory() as folder:  # nothing left behind
        target = Path(folder) / f"{created.image_id}.img"
        size = await client.download_image(created.image_id, target)
        print(f"snapshot: {size} bytes -> {target}")
    return records


async def run() -> None:
    async with example_client(lambda emu: emu.enroll(1001, sample_image("alice"))) as client:
        await main(client)


if __name__ == "__main__":
    asyncio.run(run())
