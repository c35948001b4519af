"""A door bot: when an unknown face is seen, fetch its snapshot and alert a webhook.

    WEBHOOK_URL=https://hooks.example/alerts python examples/door_bot.py
    DOOR_BOT_STATE=door.json python examples/door_bot.py   # survives restarts

Without WEBHOOK_URL the alert is printed instead of posted.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
from datetime import datetime, timedelta, timezone

import aiohttp
import orjson

import senselink_plus as slp
from senselink_plus.testing import sample_image

from _setup import example_client


async def alert(
    session: aiohttp.ClientSession | None, url: str | None, payload: dict[str, object]
) -> None:
    if session is None or url is None:
        print("ALERT", orjson.dumps({k: v for k, v in payload.items() if k != "snapshot"}).decode())
        return
    async with session.post(
        url, data=orjson.dumps(payload), headers={"content-type": "application/json"}
    ) as response:
        response.raise_for_status()


async def main(
    client: slp.Client,
    *,
    webhook_url: str | None = None,
    since: datetime | None = None,
    max_alerts: int | None = None,
    poll_interval: float = 5.0,
    checkpoint: str | None = None,
) -> int:
    """Watch for unmatched records and alert on each; returns the number of alerts.
    With ``checkpoint`` (a path) a restart alerts on nothing twice and misses nothing."""
    alerts = 0
    async with (
        aiohttp.ClientSession() as session,
        client.watch(since=since, poll_interval=poll_interval, checkpoint=checkpoint) as watch,
    ):
        # SIGTERM (systemd, Docker, Kubernetes) or Ctrl-C: finish the record in hand,
        # save, exit 0. Leaving the block normally (break too) acknowledges it.
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, watch.stop)
        async for record in watch:
            if record.matched:
                continue
            snapshot = await client.get_image(record.image_id)
            await alert(
                session if webhook_url else None,
                webhook_url,
                {
                    "text": f"Unknown face at {record.sn} ({record.created_at:%H:%M:%S} UTC)",
                    "record_id": record.record_id,
                    "sn": record.sn,
                    "image_id": record.image_id,
                    "snapshot": base64.b64encode(snapshot).decode(),
                },
            )
            alerts += 1
            if max_alerts is not None and alerts >= max_alerts:
                break
    return alerts


async def run() -> None:
    async def visitors(client: slp.Client) -> None:
        for name in ("alice", "visitor", "bob", "visitor"):
            await client.create_record("DOOR-01", sample_image(name))

    since = datetime.now(timezone.utc) - timedelta(minutes=1)

    def enroll(emu: object) -> None:
        from senselink_plus.testing import Emulator

        assert isinstance(emu, Emulator)
        emu.enroll(1, sample_image("alice"))
        emu.enroll(2, sample_image("bob"))

    async with example_client(enroll) as client:
        if not os.environ.get("SENSELINK_APP_KEY"):
            await visitors(client)
        count = await main(
            client,
            webhook_url=os.environ.get("WEBHOOK_URL"),
            since=since,
            max_alerts=2,
            poll_interval=1.0,
            checkpoint=os.environ.get("DOOR_BOT_STATE"),
        )
    print(f"sent {count} alerts")


if __name__ == "__main__":
    asyncio.run(run())
