"""The ``emulator`` command: serve a local cloud, with enrolled faces (``--enroll``) and
records kept in a file (``--db``) when asked."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, NamedTuple

from ._exceptions import ValidationError
from ._models import FaceImage

if TYPE_CHECKING:
    from .testing import Emulator

__all__ = ["Enrollment", "read_enrollments", "run_emulator"]

#: The largest user id ``--enroll`` takes (the store keeps ids as 64-bit ints).
MAX_USER_ID = 2**63 - 1


class Enrollment(NamedTuple):
    """One ``--enroll NAME=IMAGE``: the user id the name stands for and the image."""

    name: str
    user_id: int
    path: str
    data: bytes


def _split(spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    name = name.strip()
    if not sep or not name or not path:
        raise ValidationError(
            f"--enroll {spec!r} is not NAME=IMAGE (e.g. --enroll alice=alice.jpg, or a "
            "user id: --enroll 42=alice.jpg)",
            field="--enroll",
        )
    return name, path


def _number(name: str) -> int | None:
    """The user id a name of digits stands for (None for any other name)."""
    if not (name.isascii() and name.isdecimal()):
        return None
    if len(name) > 19 or int(name) > MAX_USER_ID:
        raise ValidationError(f"--enroll user id {name} is over {MAX_USER_ID}", field="--enroll")
    return int(name)


def _user_ids(names: Sequence[str]) -> dict[str, int]:
    """A whole number is its own user id; any other name takes the smallest id from 1
    that no number and no earlier name took, in the order given."""
    ids = {name: number for name in names if (number := _number(name)) is not None}
    taken = set(ids.values())
    free = 1
    for name in names:
        if name in ids:
            continue
        while free in taken:
            free += 1
        ids[name] = free
        taken.add(free)
    return ids


def _read_image(spec: str, path: str) -> bytes:
    try:
        return FaceImage.from_path(path).data
    except ValidationError as exc:
        raise ValidationError(f"--enroll {spec}: {exc}", field="--enroll") from None


def read_enrollments(specs: Sequence[str]) -> list[Enrollment]:
    """Each ``NAME=IMAGE`` read and checked, before the emulator starts: the image is a
    JPEG or PNG an upload could send, and one image stands for one user only.

    >>> [e.user_id for e in read_enrollments(["alice=a.jpg", "7=b.jpg", "bob=c.jpg"])]
    ... # doctest: +SKIP
    [1, 7, 2]
    """
    pairs = [_split(spec) for spec in specs]
    ids = _user_ids([name for name, _ in pairs])
    owners: dict[bytes, str] = {}
    enrollments = []
    for spec, (name, path) in zip(specs, pairs, strict=True):
        data = _read_image(spec, path)
        owner = owners.setdefault(data, name)
        if owner != name:
            raise ValidationError(
                f"--enroll {spec}: the same image is already enrolled as {owner}",
                field="--enroll",
            )
        enrollments.append(Enrollment(name, ids[name], path, data))
    return enrollments


def _open(args: argparse.Namespace) -> Emulator:
    from .testing import Emulator

    try:
        return Emulator(
            host=args.host,
            port=args.port,
            app_key=args.app_key,
            app_secret=args.app_secret,
            db=args.db,
        )
    except (sqlite3.Error, OSError, ValueError) as exc:
        raise ValidationError(f"--db {args.db}: {exc}", field="--db") from None


def _seed(emu: Emulator, args: argparse.Namespace) -> str:
    """Seed ``--seed`` records over the last 24 hours; the line that says what is held."""
    kept = len(emu.images)  # one snapshot a record: the records the file gave back
    if args.seed and kept and args.db is not None:
        return f"{kept} records kept in {args.db}; --seed {args.seed} skipped (not empty)"
    if args.seed:
        now = datetime.now(timezone.utc)
        emu.seed(args.seed, start=now - timedelta(hours=24), span=timedelta(hours=24))
    if args.db is None:
        return f"{args.seed} records seeded"
    return f"{kept} records kept in {args.db}, {args.seed} seeded"


def _announce(emu: Emulator, enrollments: Sequence[Enrollment], held: str) -> None:
    print(f"SenseLink Plus emulator at {emu.base_url}", flush=True)
    # A wildcard address serves every interface; clients here reach it on loopback.
    reachable = emu.base_url.replace("://0.0.0.0:", "://127.0.0.1:").replace(
        "://[::]:", "://[::1]:"
    )
    print(f"  export SENSELINK_BASE_URL={reachable}")
    print(f"  export SENSELINK_APP_KEY={emu.app_key}")
    print(f"  export SENSELINK_APP_SECRET={emu.app_secret}")
    for each in enrollments:
        print(f"  enrolled {each.name} as user_id {each.user_id}: {each.path}")
    print(f"  {held}; Ctrl-C stops it", flush=True)


async def run_emulator(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; 0 when stopped."""
    enrollments = read_enrollments(args.enroll)
    emu = _open(args)
    for each in enrollments:
        emu.enroll(each.user_id, each.data)
    held = _seed(emu, args)
    async with emu:
        _announce(emu, enrollments, held)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            # Not on Windows, where Ctrl-C arrives as KeyboardInterrupt instead.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    print("emulator stopped", flush=True)
    return 0
