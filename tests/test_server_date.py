"""`_server_date.ServerDate`: the server's time from ``Date`` headers, on a fake clock."""

from __future__ import annotations

import email.utils

import pytest

from senselink_plus._server_date import ServerDate, parse_http_date
from tests.conftest import FakeTime


def date(epoch: float) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


def test_now_is_the_last_date_moved_on_by_the_local_timer(fake_time: FakeTime) -> None:
    server = ServerDate(fake_time.clock, fake_time.timer)
    assert server.now() is None
    server.note(date(fake_time.now + 90))
    fake_time.now += 5
    assert server.now() == (pytest.approx(fake_time.now + 90), pytest.approx(90.0))


def test_a_value_is_read_once_and_its_first_reading_kept(fake_time: FakeTime) -> None:
    server = ServerDate(fake_time.clock, fake_time.timer)
    stamp = date(fake_time.now)
    server.note(stamp)
    fake_time.now += 0.7  # the same header a moment later: still the same second
    server.note(stamp)
    assert server.raw == stamp
    now, skew = server.now()  # type: ignore[misc]
    assert skew == pytest.approx(0.0)  # from the first reading, not the later one
    assert now == pytest.approx(fake_time.now)


@pytest.mark.parametrize("raw", [None, "", "yesterday-ish", "Sun, 99 Nov 1994 08:49:37 GMT"])
def test_a_missing_or_unreadable_date_is_ignored(raw: str | None, fake_time: FakeTime) -> None:
    server = ServerDate(fake_time.clock, fake_time.timer)
    server.note(date(fake_time.now))
    before = (server.raw, server.now())
    server.note(raw)
    assert (server.raw, server.now()) == before


@pytest.mark.parametrize(
    ("raw", "epoch"),
    [
        ("Sun, 06 Nov 1994 08:49:37 GMT", 784111777.0),
        ("Sun, 06 Nov 1994 08:49:37 -0000", 784111777.0),  # no zone: UTC
        ("Sun, 06 Nov 1994 17:49:37 +0900", 784111777.0),
        ("not a date", None),
        ("Sun, 06 Nov 99999999999 08:49:37 GMT", None),
    ],
)
def test_parse_http_date(raw: str, epoch: float | None) -> None:
    assert parse_http_date(raw) == epoch
