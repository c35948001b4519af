"""`_retry`: which errors are retried, the back-off policy and timeouts."""

from __future__ import annotations

import math
import random
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from senselink_plus import (
    APIError,
    AuthenticationError,
    CheckpointInUseError,
    ClientClosedError,
    ConnectError,
    EventLoopError,
    InvalidParameterError,
    NoFaceDetectedError,
    NotFoundError,
    RateLimitError,
    RedirectError,
    RequestTimeout,
    ResponseError,
    RetryPolicy,
    SenseLinkError,
    ServerError,
    Timeout,
    TransportError,
    ValidationError,
)
from senselink_plus._retry import Verdict, classify

# --- classify --------------------------------------------------------------------------


class Judged(NamedTuple):
    """How `classify` must judge ``error``: retried in a GET, retried in a create_record,
    and whether a create that failed so may have landed."""

    error: SenseLinkError
    for_get: bool
    for_create: bool
    landed: bool


CASES = [
    Judged(ConnectError("refused"), True, True, False),
    Judged(RateLimitError("slow down", code=429, status=429), True, True, False),
    Judged(RateLimitError("slow down", code=40029, status=200, retry_after=2.0), True, True, False),
    Judged(TransportError("connection dropped"), True, False, True),
    Judged(RequestTimeout("no answer"), True, False, True),
    Judged(ResponseError("bad json", status=200), True, False, True),
    Judged(ServerError("boom", code=500, status=500), True, False, True),
    Judged(ServerError("boom", code=50000, status=200), True, False, True),
    Judged(APIError("timeout", code=408, status=408), True, False, False),
    Judged(APIError("too many", code=429, status=429), True, False, False),
    Judged(APIError("bad gateway", code=502, status=502), True, False, True),
    Judged(APIError("unavailable", code=503, status=503), True, False, True),
    Judged(APIError("unknown code", code=40404, status=200), False, False, False),
    Judged(APIError("bad request", code=400, status=400), False, False, False),
    Judged(AuthenticationError("bad sign", code=401, status=401), False, False, False),
    Judged(InvalidParameterError("Param Invalid", code=30001, status=200), False, False, False),
    Judged(NoFaceDetectedError("No Face", code=30003, status=200), False, False, False),
    Judged(NotFoundError("no image", code=404, status=404), False, False, False),
    Judged(ValidationError("bad input"), False, False, False),
    Judged(ClientClosedError("closed"), False, False, False),
    Judged(RedirectError("moved", status=307), False, False, True),
    Judged(EventLoopError("another loop"), False, False, False),
    Judged(CheckpointInUseError("locked"), False, False, False),
    Judged(SenseLinkError("generic"), False, False, False),
]


@pytest.mark.parametrize(
    Judged._fields,
    CASES,
    ids=[f"{type(case.error).__name__}-{getattr(case.error, 'status', '')}" for case in CASES],
)
def test_classify(error: SenseLinkError, for_get: bool, for_create: bool, landed: bool) -> None:
    assert classify(error, idempotent=True) == Verdict(retry=for_get, may_have_landed=landed)
    assert classify(error, idempotent=False) == Verdict(retry=for_create, may_have_landed=landed)


@pytest.mark.parametrize("error", [case.error for case in CASES], ids=lambda e: type(e).__name__)
def test_a_create_is_retried_only_when_it_cannot_have_landed(error: SenseLinkError) -> None:
    verdict = classify(error, idempotent=False)
    assert not (verdict.retry and verdict.may_have_landed)


def test_every_error_class_is_covered() -> None:
    import senselink_plus

    classes = {
        value
        for value in vars(senselink_plus).values()
        if isinstance(value, type) and issubclass(value, SenseLinkError)
    }
    assert classes == {type(case.error) for case in CASES}


def test_create_is_retried_only_when_the_server_provably_did_not_take_it() -> None:
    retried = {type(case.error) for case in CASES if case.for_create}
    assert retried == {ConnectError, RateLimitError}


# --- RetryPolicy: validation -----------------------------------------------------------


def test_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.initial_delay, policy.max_delay) == (3, 0.5, 8.0)
    assert (policy.max_retry_after, policy.deadline) == (60.0, None)


def test_none_never_retries() -> None:
    policy = RetryPolicy.none()
    assert policy.max_attempts == 1
    assert policy == RetryPolicy(max_attempts=1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": -1}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"max_attempts": 2.0}, "max_attempts"),
        ({"max_attempts": "3"}, "max_attempts"),
        ({"initial_delay": -0.1}, "initial_delay"),
        ({"initial_delay": math.nan}, "initial_delay"),
        ({"initial_delay": "1"}, "initial_delay"),
        ({"max_delay": -1}, "max_delay"),
        ({"max_delay": True}, "max_delay"),
        ({"max_retry_after": -1.0}, "max_retry_after"),
        ({"max_retry_after": None}, "max_retry_after"),
        ({"deadline": 0}, "deadline"),
        ({"deadline": -5.0}, "deadline"),
        ({"deadline": math.nan}, "deadline"),
        ({"deadline": False}, "deadline"),
        ({"deadline": "30"}, "deadline"),
    ],
)
def test_policy_refuses_bad_values(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        RetryPolicy(**kwargs)
    assert info.value.field == field
    assert field in str(info.value)
    assert isinstance(info.value, ValueError)


def test_policy_accepts_zero_delays_and_a_deadline() -> None:
    policy = RetryPolicy(
        max_attempts=1, initial_delay=0, max_delay=0, max_retry_after=0, deadline=0.5
    )
    assert policy.deadline == 0.5
    assert policy.backoff(3, random.Random(0)) == 0


# --- RetryPolicy: backoff and Retry-After ----------------------------------------------


def test_backoff_doubles_then_caps() -> None:
    policy = RetryPolicy(max_attempts=10, initial_delay=0.5, max_delay=8.0)
    rng = random.Random(1234)
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    for attempt, ceiling in enumerate(ceilings, start=1):
        wait = policy.backoff(attempt, rng)
        assert ceiling / 2 <= wait <= ceiling, (attempt, wait)


@given(
    seed=st.integers(min_value=0, max_value=2**32),
    attempt=st.integers(min_value=1, max_value=60),
    initial=st.floats(min_value=0.001, max_value=5.0),
    cap=st.floats(min_value=0.001, max_value=120.0),
)
def test_backoff_stays_within_half_the_ceiling_and_the_ceiling(
    seed: int, attempt: int, initial: float, cap: float
) -> None:
    policy = RetryPolicy(initial_delay=initial, max_delay=cap)
    ceiling = min(cap, initial * 2 ** (attempt - 1))
    wait = policy.backoff(attempt, random.Random(seed))
    assert ceiling / 2 <= wait <= ceiling
    assert wait <= cap
    # Same seed, same wait: jitter comes only from the rng passed in.
    assert policy.backoff(attempt, random.Random(seed)) == wait


def test_backoff_jitters() -> None:
    policy = RetryPolicy(max_delay=8.0)
    rng = random.Random(7)
    waits = {policy.backoff(5, rng) for _ in range(20)}
    assert len(waits) > 1
    assert all(4.0 <= wait <= 8.0 for wait in waits)


def test_backoff_for_a_very_late_attempt_is_the_cap() -> None:
    policy = RetryPolicy(max_attempts=5000, initial_delay=0.5, max_delay=8.0)
    wait = policy.backoff(1100, random.Random(0))
    assert 4.0 <= wait <= 8.0


def test_delay_without_retry_after_is_the_backoff() -> None:
    policy = RetryPolicy()
    for error in (
        ConnectError("refused"),
        ServerError("boom", code=500, status=500),
        RateLimitError("slow", code=429, status=429, retry_after=None),
    ):
        expected = policy.backoff(2, random.Random(99))
        assert policy.delay(error, 2, random.Random(99)) == expected


@pytest.mark.parametrize("retry_after", [0, 0.25, 5, 59.5, 60.0])
def test_retry_after_is_honoured_up_to_the_cap(retry_after: float) -> None:
    policy = RetryPolicy(max_retry_after=60.0)
    error = RateLimitError("slow", code=429, status=429, retry_after=retry_after)
    delay = policy.delay(error, 1, random.Random(0))
    assert delay == retry_after
    assert isinstance(delay, float)


def test_retry_after_on_a_server_error_is_honoured() -> None:
    error = ServerError("busy", code=503, status=503, retry_after=3)
    assert RetryPolicy().delay(error, 1, random.Random(0)) == 3.0


@pytest.mark.parametrize("retry_after", [60.001, 61, 3600])
def test_retry_after_beyond_the_cap_means_do_not_wait(retry_after: float) -> None:
    policy = RetryPolicy(max_retry_after=60.0)
    error = RateLimitError("slow", code=429, status=429, retry_after=retry_after)
    assert policy.delay(error, 1, random.Random(0)) is None


# --- Timeout ---------------------------------------------------------------------------


def test_timeout_defaults() -> None:
    assert Timeout() == Timeout(connect=10.0, total=60.0)
    assert Timeout(connect=1, total=2.5).total == 2.5


@pytest.mark.parametrize("field", ["connect", "total"])
@pytest.mark.parametrize("bad", [0, -1.0, math.nan, True, "10", None])
def test_timeout_refuses_non_positive_or_non_numbers(field: str, bad: Any) -> None:
    with pytest.raises(ValidationError, match="must be > 0 seconds") as info:
        Timeout(**{field: bad})
    assert info.value.field == field
