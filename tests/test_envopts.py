"""SENSELINK_TIMEOUT and SENSELINK_MAX_RETRIES: argument > environment > default."""

from __future__ import annotations

from typing import Any

import pytest

import senselink_plus as slp
from senselink_plus._envopts import env_retry, env_timeout
from senselink_plus.testing import MockTransport, error_response, image_response
from tests.conftest import APP_SECRET


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    # conftest's autouse fixture has already removed both variables.
    return monkeypatch


def client(**options: Any) -> slp.Client:
    return slp.Client("key", APP_SECRET, **options)


# --- SENSELINK_TIMEOUT ----------------------------------------------------------------------


def test_timeout_default_without_the_variable(env: pytest.MonkeyPatch) -> None:
    assert client().timeout == slp.Timeout(connect=10.0, total=60.0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("30", slp.Timeout(connect=10.0, total=30.0)),
        (" 2.5 ", slp.Timeout(connect=2.5, total=2.5)),
        ("1e2", slp.Timeout(connect=10.0, total=100.0)),
    ],
)
def test_timeout_from_the_variable_is_as_timeout_n(
    env: pytest.MonkeyPatch, raw: str, expected: slp.Timeout
) -> None:
    env.setenv("SENSELINK_TIMEOUT", raw)
    assert client().timeout == expected
    # The same as passing the number: the total per attempt, connect up to 10 s.
    assert client().timeout == client(timeout=float(raw)).timeout


def test_the_timeout_argument_wins_over_the_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("SENSELINK_TIMEOUT", "30")
    assert client(timeout=5).timeout == slp.Timeout(connect=5.0, total=5.0)
    # An argument that wins means the variable is not read at all.
    env.setenv("SENSELINK_TIMEOUT", "soon")
    assert client(timeout=slp.Timeout(1.0, 2.0)).timeout == slp.Timeout(1.0, 2.0)


def test_an_empty_timeout_variable_is_unset(env: pytest.MonkeyPatch) -> None:
    env.setenv("SENSELINK_TIMEOUT", "  ")
    assert client().timeout == slp.Timeout()


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "30s", "soon", "1,5"])
def test_a_bad_timeout_variable_is_refused_by_name(env: pytest.MonkeyPatch, raw: str) -> None:
    env.setenv("SENSELINK_TIMEOUT", raw)
    with pytest.raises(slp.ValidationError, match=r"\$SENSELINK_TIMEOUT must be") as caught:
        client()
    assert caught.value.field == "SENSELINK_TIMEOUT"
    assert repr(raw) in str(caught.value)


async def test_the_variables_timeout_goes_on_requests_to_a_transport_passed_in(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("SENSELINK_TIMEOUT", "12")
    mock = MockTransport(lambda request: image_response())
    async with client(transport=mock) as c:
        await c.get_image("img1")
    assert mock.requests[0].timeout == slp.Timeout(connect=10.0, total=12.0)


async def test_without_the_variable_a_transport_passed_in_keeps_its_own(
    env: pytest.MonkeyPatch,
) -> None:
    mock = MockTransport(lambda request: image_response())
    async with client(transport=mock) as c:
        await c.get_image("img1")
    assert mock.requests[0].timeout is None


# --- SENSELINK_MAX_RETRIES ------------------------------------------------------------------


def test_retry_default_without_the_variable(env: pytest.MonkeyPatch) -> None:
    assert client().retry == slp.RetryPolicy()


@pytest.mark.parametrize(("raw", "attempts"), [("0", 1), ("1", 2), (" 5 ", 6), ("10", 11)])
def test_max_retries_counts_attempts_after_the_first(
    env: pytest.MonkeyPatch, raw: str, attempts: int
) -> None:
    env.setenv("SENSELINK_MAX_RETRIES", raw)
    assert client().retry == slp.RetryPolicy(max_attempts=attempts)


def test_the_retry_argument_wins_over_the_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("SENSELINK_MAX_RETRIES", "7")
    assert client(retry=slp.RetryPolicy.none()).retry == slp.RetryPolicy.none()
    env.setenv("SENSELINK_MAX_RETRIES", "many")
    assert client(retry=slp.RetryPolicy(max_attempts=2)).retry.max_attempts == 2


def test_an_empty_retries_variable_is_unset(env: pytest.MonkeyPatch) -> None:
    env.setenv("SENSELINK_MAX_RETRIES", "")
    assert client().retry == slp.RetryPolicy()


@pytest.mark.parametrize("raw", ["-1", "1.0", "3.5", "+3", "1_000", "many", "٣", "1234567"])
def test_a_bad_retries_variable_is_refused_by_name(env: pytest.MonkeyPatch, raw: str) -> None:
    env.setenv("SENSELINK_MAX_RETRIES", raw)
    with pytest.raises(slp.ValidationError, match=r"\$SENSELINK_MAX_RETRIES must be") as caught:
        client()
    assert caught.value.field == "SENSELINK_MAX_RETRIES"


async def test_the_variables_retries_are_the_attempts_made(env: pytest.MonkeyPatch) -> None:
    env.setenv("SENSELINK_MAX_RETRIES", "2")
    mock = MockTransport(lambda request: error_response(500, status=503))

    async def no_wait(seconds: float) -> None:
        return None

    async with client(transport=mock, sleep=no_wait) as c:
        with pytest.raises(slp.ServerError):
            await c.get_image("img1")
    assert len(mock.requests) == 3  # the first attempt and two retries


def test_the_readers_take_any_mapping() -> None:
    assert env_timeout({}) is None
    assert env_retry({}) is None
    assert env_timeout({"SENSELINK_TIMEOUT": "90"}) == slp.Timeout(connect=10.0, total=90.0)
    assert env_retry({"SENSELINK_MAX_RETRIES": "0"}) == slp.RetryPolicy.none()
