"""`_checks`: the small argument checks every module shares; each names the field, the
value's problem and the limit."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from senselink_plus import APIError, NotFoundError, ValidationError
from senselink_plus._checks import (
    MAX_INT,
    check_base_url,
    check_bool,
    check_callable,
    check_error_codes,
    check_int,
    check_path,
    check_seconds,
    check_text,
    finite,
    is_loopback_host,
    shown,
)


def test_shown_is_a_short_repr_that_never_raises() -> None:
    assert shown("abc") == "'abc'"
    long = shown("x" * 500)
    assert len(long) == 60
    assert long.endswith("...")

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert shown(Broken()) == "<Broken>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, True),
        (0.5, True),
        (math.inf, False),
        (math.nan, False),
        (True, False),
        ("1", False),
        (10**400, False),
    ],
)
def test_finite_is_a_real_number_that_is_not_inf_or_nan(value: object, expected: bool) -> None:
    assert finite(value) is expected


def test_check_int_returns_the_value_in_range() -> None:
    assert check_int(5, "size") == 5
    assert check_int(0, "page", minimum=0) == 0
    assert check_int(MAX_INT, "size") == MAX_INT


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "size must be an int, not bool"),
        (1.0, "size must be an int, not float"),
        ("3", "size must be an int, not str"),
        (0, "size is 0; it must be 1..100"),
        (101, "size is 101; it must be 1..100"),
    ],
)
def test_check_int_names_the_field_the_problem_and_the_limit(value: object, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_int(value, "size", maximum=100)
    assert str(caught.value) == message
    assert caught.value.field == "size"


def test_check_seconds() -> None:
    assert check_seconds(2, "poll_interval") == 2.0
    for bad in (0, -1, math.inf, math.nan, "1", None):
        with pytest.raises(ValidationError, match="poll_interval must be a finite number > 0"):
            check_seconds(bad, "poll_interval")


def test_check_text() -> None:
    assert check_text("GMT+9:00", "timezone") == "GMT+9:00"
    assert check_text("", "sn", empty_ok=True) == ""
    with pytest.raises(ValidationError, match="sn is empty"):
        check_text("  ", "sn")
    with pytest.raises(ValidationError, match="sn must be a string, not int"):
        check_text(5, "sn")
    with pytest.raises(ValidationError, match="lone surrogate"):
        check_text("a\udc80", "sn")


def test_check_bool_refuses_truthy_values() -> None:
    assert check_bool(False, "flag") is False
    with pytest.raises(ValidationError, match="flag"):
        check_bool(1, "flag")


def test_check_callable() -> None:
    assert check_callable(len, "clock") is len
    with pytest.raises(ValidationError, match="clock must be callable, not 5"):
        check_callable(5, "clock")


def test_check_path(tmp_path: Path) -> None:
    assert check_path(tmp_path / "a.jpg", "image") == str(tmp_path / "a.jpg")
    with pytest.raises(ValidationError, match="image must be a path, not int"):
        check_path(3, "image")
    with pytest.raises(ValidationError, match="image must be a str path, not bytes"):
        check_path(b"/tmp/a", "image")
    with pytest.raises(ValidationError, match="NUL"):
        check_path("a\x00b", "image")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://link.japancv.co.jp/", "https://link.japancv.co.jp"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:80/base", "http://[::1]:80/base"),
        ("http://localhost", "http://localhost"),
    ],
)
def test_check_base_url_accepts_https_and_loopback_http(url: str, expected: str) -> None:
    assert check_base_url(url, allow_insecure_http=False) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com", "must be an http\\(s\\) URL"),
        ("https://", "must be an http\\(s\\) URL"),
        ("https://example.com?x=1", "plain base"),
        ("https://user:pw@example.com", "plain base"),
        ("https://example.com:99999", "is not a URL"),
        ("http://example.com", "plain http"),
        ("http://127.0.0.1.evil.com", "plain http"),
    ],
)
def test_check_base_url_refuses(url: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason) as caught:
        check_base_url(url, allow_insecure_http=False)
    assert caught.value.field == "base_url"


def test_plain_http_elsewhere_needs_consent() -> None:
    url = "http://example.com"
    assert check_base_url(url, allow_insecure_http=True) == url


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("localhost.", False),
        ("127.attacker.example", False),
        ("10.0.0.1", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_check_error_codes() -> None:
    assert check_error_codes(None) == {}
    assert check_error_codes({40404: NotFoundError}) == {40404: NotFoundError}
    with pytest.raises(ValidationError, match="mapping"):
        check_error_codes([(1, APIError)])
    with pytest.raises(ValidationError, match="key True is not an int"):
        check_error_codes({True: APIError})
    with pytest.raises(ValidationError, match=r"error_codes\[7\] must be an APIError subclass"):
        check_error_codes({7: ValueError})
