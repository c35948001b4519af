"""The CLI's time options: ISO-8601, ``now``, and a time ago (``7d``, ``1h``, ``30m``)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone

import pytest

from senselink_plus._cli import main
from senselink_plus._cli_args import read_times
from tests.cli_helpers import EmulatorThread, spawn

AT = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def read(text: str, now: datetime = AT) -> datetime:
    args = argparse.Namespace(time_from=text)
    read_times(args, now)
    value = args.time_from
    assert isinstance(value, datetime)
    return value


@pytest.mark.parametrize(
    ("text", "ago"),
    [
        ("now", timedelta(0)),
        ("NOW", timedelta(0)),
        (" now ", timedelta(0)),
        ("45s", timedelta(seconds=45)),
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("0s", timedelta(0)),
    ],
)
def test_a_time_ago_counts_back_from_now(text: str, ago: timedelta) -> None:
    assert read(text) == AT - ago


def test_iso_times_are_read_as_before() -> None:
    assert read("2026-11-29T09:00:00+09:00") == datetime(2026, 11, 29, tzinfo=timezone.utc)
    assert read("2026-11-29T00:00:00Z") == datetime(2026, 11, 29, tzinfo=timezone.utc)


def test_every_option_counts_from_one_now() -> None:
    args = argparse.Namespace(time_from="1h", time_to="now", since="30m")
    read_times(args, AT)
    assert (args.time_from, args.time_to, args.since) == (
        AT - timedelta(hours=1),
        AT,
        AT - timedelta(minutes=30),
    )


def test_without_a_given_now_it_is_the_current_time_in_utc() -> None:
    before = datetime.now(timezone.utc)
    args = argparse.Namespace(time_from="1h", time_to="now")
    read_times(args)
    after = datetime.now(timezone.utc)
    assert args.time_to.tzinfo is timezone.utc
    assert before <= args.time_to <= after
    assert args.time_to - args.time_from == timedelta(hours=1)


@pytest.mark.parametrize("text", ["7M", "2y", "3 days", "-7d", "+7d", "1.5h", "7D", "7dd"])
def test_a_bad_time_ago_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a time ago: .* s, m, h, d or w") as caught:
        read(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize("text", ["yesterday", "", "h", "d7", "now-1h"])
def test_a_bad_time_lists_every_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a time such as .*Z, now, 7d, 12h or 30m"):
        read(text)


@pytest.mark.parametrize("text", ["999999999w", "30000d"])
def test_a_time_ago_before_1970_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=rf"--from {text} reaches back too far"):
        read(text)


# --- through the command ---------------------------------------------------------------------


def seed_at(emulator: EmulatorThread, *ago: timedelta) -> None:
    """One record at each time ``ago`` before now (oldest first)."""
    now = datetime.now(timezone.utc)
    for each in ago:
        emulator.call(emulator.emu.seed, 1, start=now - each, span=timedelta(0))


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (["--from", "1h", "--to", "now"], 1),
        (["--from", "1d", "--to", "now"], 2),
        (["--from", "1w", "--to", "1h"], 2),
        (["--from", "4d", "--to", "1d"], 1),
    ],
)
def test_records_over_a_time_ago(
    cli_emulator: EmulatorThread,
    capsys: pytest.CaptureFixture[str],
    window: list[str],
    expected: int,
) -> None:
    seed_at(cli_emulator, timedelta(days=3), timedelta(hours=2), timedelta(minutes=10))
    assert main(["records", *window]) == 0
    assert len(capsys.readouterr().out.splitlines()) == expected


def test_a_bad_time_ago_is_a_usage_error(
    cli_emulator: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["records", "--from", "7M", "--to", "now"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("senselink-plus: error: --from '7M' is not a time ago")
    assert "Traceback" not in err
    assert cli_emulator.call(lambda: len(cli_emulator.emu.requests)) == 0


def test_records_from_a_time_ago_in_a_child_process(cli_emulator: EmulatorThread) -> None:
    seed_at(cli_emulator, timedelta(days=3), timedelta(minutes=10))
    child = spawn(cli_emulator, "records", "--from", "1h", "--to", "now")
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err.decode()
    rows = [json.loads(line) for line in out.decode().splitlines()]
    assert len(rows) == 1
    newest = cli_emulator.call(lambda: cli_emulator.emu.records[-1])
    assert rows[0]["record_id"] == newest["record_id"]


def test_help_names_the_forms(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["records", "--help"])
    out = capsys.readouterr().out
    assert "'now'" in out
    assert "7d" in out
