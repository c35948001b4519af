"""The command line's options: the parser, and the times and the app secret read from them."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ._exceptions import ValidationError
from ._output import FORMATS
from ._timeutil import EARLIEST, to_aware
from ._version import __version__

__all__ = ["EPILOG", "TIME_OPTIONS", "app_secret", "build_parser", "read_times"]

logger = logging.getLogger("senselink_plus")

EPILOG = """\
credentials: --app-key and --app-secret-file (or $SENSELINK_APP_KEY/$SENSELINK_APP_SECRET);
  --app-secret works too, but any user can read it in the process list.
base URL: --base-url or $SENSELINK_BASE_URL (default https://link.japancv.co.jp).

examples:
  senselink-plus demo
  senselink-plus emulator --port 8080 --seed 10000
  senselink-plus records --from 2024-05-01T00:00:00+09:00 --to 2024-05-08T00:00:00+09:00 \\
      --format csv --output week.csv
  senselink-plus records --from 7d --to now --format parquet -o week.parquet
  senselink-plus upload --sn JKQ00009234 --extend '{"gate":"north"}' face1.jpg face2.png
  senselink-plus image 5fceef6e1ddb2800010d1409 -o snap.jpg
  senselink-plus watch --checkpoint state.json
"""


#: The time options, by their attribute: read here so errors speak of the option.
TIME_OPTIONS = {"time_from": "--from", "time_to": "--to", "since": "--since"}


#: What a time option takes besides ISO-8601, for help texts and errors.
TIME_HELP = "ISO-8601 with offset or Z, 'now', or a time ago: 7d, 12h, 30m, 1h30m (s m h d w)"
_EXAMPLES = "2026-11-29T00:00:00+09:00, 2026-11-29T00:00:00Z, now, 7d, 12h or 30m"
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AGO = re.compile(r"(?:\d{1,9}[smhdw])+")
_AGO_PART = re.compile(r"(\d{1,9})([smhdw])")
#: Looks like a time ago but is not one (``7M``, ``2y``, ``3 days``, ``-7d``).
_AGO_LIKE = re.compile(r"[+-]?\d[\d.]*\s*[A-Za-z]+")


def _ago(text: str, option: str, now: datetime) -> datetime | None:
    """``now`` for ``now``; ``now`` less the span for ``7d``, ``1h30m``; else None."""
    if text.lower() == "now":
        return now
    if not _AGO.fullmatch(text):
        if _AGO_LIKE.fullmatch(text):
            raise ValidationError(
                f"{option} {text!r} is not a time ago: write whole numbers, each with a unit "
                "of s, m, h, d or w (seconds to weeks), such as 7d, 12h, 30m or 1h30m",
                field=option,
            )
        return None
    seconds = sum(int(count) * _UNIT_SECONDS[unit] for count, unit in _AGO_PART.findall(text))
    try:
        return to_aware(now - timedelta(seconds=seconds), option)
    except (OverflowError, ValidationError):
        raise ValidationError(
            f"{option} {text} reaches back too far (before {EARLIEST.date()})", field=option
        ) from None


def _time_arg(text: str, option: str, now: datetime) -> datetime:
    """``text`` given to ``option``: an ISO-8601 time with a UTC offset (or Z), ``now``,
    or a time ago (``7d``) before ``now``."""
    stripped = text.strip()
    relative = _ago(stripped, option, now)
    if relative is not None:
        return relative
    try:
        return to_aware(text, option)
    except ValidationError as exc:
        try:
            naive = datetime.fromisoformat(stripped).utcoffset() is None
        except ValueError:
            naive = False
        if naive:
            raise ValidationError(
                f"{option} {stripped} has no UTC offset: add +09:00 or Z "
                f"(e.g. {stripped}+09:00 or {stripped}Z)",
                field=option,
            ) from None
        if "ISO-8601" in exc.message:
            raise ValidationError(
                f"{option} {text!r} is not a time such as {_EXAMPLES}", field=option
            ) from None
        raise


def read_times(args: argparse.Namespace, now: datetime | None = None) -> None:
    """Turn the time options' text into aware datetimes; ``now`` (default: the current
    time, in UTC) is the one instant that ``now`` and every time ago count from."""
    now = datetime.now(timezone.utc) if now is None else now
    for name, option in TIME_OPTIONS.items():
        value = getattr(args, name, None)
        if isinstance(value, str):
            setattr(args, name, _time_arg(value, option, now))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="senselink-plus",
        description="SenseLink Cloud Authentication Record Plus, from the command line.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log requests (-vv: debug) to stderr"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        dest="sub_verbose",
        action="count",
        default=0,
        help="log retries (-vv: every request) to stderr",
    )
    common.add_argument("--app-key", help="app key (default: $SENSELINK_APP_KEY)")
    common.add_argument(
        "--app-secret",
        help="app secret (default: $SENSELINK_APP_SECRET); visible to every user in the "
        "process list, so prefer --app-secret-file",
    )
    common.add_argument(
        "--app-secret-file",
        metavar="PATH",
        help="read the app secret from the first line of PATH ('-': standard input)",
    )
    common.add_argument("--base-url", help="API base URL (default: $SENSELINK_BASE_URL)")
    common.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow a plain http:// base URL to a host other than this machine",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run the whole flow against a built-in emulator (no credentials)",
        description="Start an emulator in-process, upload sample faces from two devices, "
        "list them, download a snapshot and show error handling.",
    )
    demo.add_argument("--out-dir", type=Path, help="where to save the snapshot (default: temp)")

    emu = sub.add_parser(
        "emulator",
        help="serve a local emulator of the API",
        description="Serve the emulator until Ctrl-C.",
        epilog="examples:\n  senselink-plus emulator --port 8080 --seed 100000\n"
        "  senselink-plus emulator --db emu.sqlite --enroll alice=alice.jpg "
        "--enroll bob=bob.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    emu.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="pre-load N records spread over the last 24 hours",
    )
    emu.add_argument("--app-key", default="emulator-app-key")
    emu.add_argument("--app-secret", default="emulator-app-secret")
    emu.add_argument(
        "--enroll",
        action="append",
        default=[],
        metavar="NAME=IMAGE",
        help="enroll a face (repeatable): an upload of exactly IMAGE's bytes is matched to "
        "NAME's user_id (NAME a whole number: that id; else 1, 2, ... in order)",
    )
    emu.add_argument(
        "--db",
        type=Path,
        metavar="FILE",
        help="keep records and snapshots in this SQLite file across restarts "
        "(default: in memory)",
    )

    records = sub.add_parser(
        "records",
        parents=[common],
        help="list records of any time range",
        description="Stream every record stored in [--from, --to] (any length).",
        epilog="examples:\n  senselink-plus records --from 2024-05-01T00:00:00+09:00 "
        "--to 2024-05-02T00:00:00+09:00 --format table\n"
        "  senselink-plus records --from 7d --to now -o week.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    records.add_argument("--from", dest="time_from", required=True, help=TIME_HELP)
    records.add_argument("--to", dest="time_to", required=True, help=TIME_HELP)
    records.add_argument("--sn", help="only this device")
    records.add_argument("--order", choices=("asc", "desc"), default="asc")
    records.add_argument(
        "--format",
        choices=(*FORMATS, "parquet"),
        default="jsonl",
        help="jsonl (default), csv, table, or parquet (a file: needs -o and pyarrow)",
    )
    records.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    records.add_argument("--max-items", type=int)
    records.add_argument("--concurrency", type=int, default=4, help="pages in flight")

    watch = sub.add_parser(
        "watch",
        parents=[common],
        help="follow new records as they are stored",
        description="Print new records as they are stored, oldest first, until Ctrl-C. "
        "With --checkpoint, a restart resumes where it stopped.",
        epilog="example:\n  senselink-plus watch --sn JKQ00009234 --checkpoint state.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    watch.add_argument("--sn", help="only this device")
    watch.add_argument("--checkpoint", type=Path, help="JSON file keeping the position")
    watch.add_argument("--interval", type=float, default=10.0, help="seconds between polls")
    watch.add_argument("--since", help=f"start here instead of now: {TIME_HELP}")
    watch.add_argument("--format", choices=FORMATS, default="jsonl")
    watch.add_argument("--max-items", type=int, help="stop after this many records")

    upload = sub.add_parser(
        "upload",
        parents=[common],
        help="upload face images as records",
        description="Upload each IMAGE as a record; prints one line per image.",
        epilog="example:\n  senselink-plus upload --sn JKQ00009234 --threshold 0.92 a.jpg b.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    upload.add_argument("--sn", required=True, help="device serial number")
    upload.add_argument("--threshold", type=float)
    upload.add_argument("--extend", help="JSON object stored with each record")
    upload.add_argument("--concurrency", type=int, default=4)
    upload.add_argument(
        "--fit",
        action="store_true",
        help="re-encode photos over 1 MiB or not JPEG/PNG (needs senselink-plus[images])",
    )
    upload.add_argument("images", nargs="+", type=Path, metavar="IMAGE")

    image = sub.add_parser(
        "image",
        parents=[common],
        help="download a record's snapshot",
        description="Download the snapshot IMAGE_ID to a file (or stdout).",
        epilog="example:\n  senselink-plus image 5fceef6e1ddb2800010d1409 -o snap.jpg",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    image.add_argument("image_id")
    image.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    return parser


#: The longest secret line read from --app-secret-file.
_MAX_SECRET_LINE = 4096


def app_secret(args: argparse.Namespace) -> str | None:
    """The secret from --app-secret-file, or --app-secret (with a warning), or None."""
    path = getattr(args, "app_secret_file", None)
    if path is None:
        if args.app_secret is not None:
            logger.warning(
                "--app-secret on the command line is visible to every user of this machine "
                "(ps, /proc); use --app-secret-file or $SENSELINK_APP_SECRET"
            )
        return args.app_secret  # type: ignore[no-any-return]
    if args.app_secret is not None:
        raise ValidationError(
            "give --app-secret or --app-secret-file, not both", field="--app-secret-file"
        )
    try:
        if path == "-":
            line = sys.stdin.readline(_MAX_SECRET_LINE)
        else:
            # Read before any request; a FIFO (e.g. <(pass show ...)) is fine here.
            with open(path, encoding="utf-8") as handle:
                line = handle.readline(_MAX_SECRET_LINE)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ValidationError(
            f"cannot read --app-secret-file {path!r}: {reason}", field="--app-secret-file"
        ) from None
    secret = line.rstrip("\r\n")
    if not secret.strip():
        raise ValidationError(
            f"--app-secret-file {path!r} has an empty first line", field="--app-secret-file"
        )
    return secret
