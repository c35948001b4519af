"""Timeouts and the retry policy: which failures are retried, and how long to wait."""

from __future__ import annotations

import random
from typing import NamedTuple

import attrs

from ._checks import finite as _finite
from ._checks import shown
from ._exceptions import (
    APIError,
    ConnectError,
    RateLimitError,
    RedirectError,
    ResponseError,
    SenseLinkError,
    ServerError,
    TransportError,
    ValidationError,
)

__all__ = [
    "RetryPolicy",
    "Timeout",
    "TimeoutInput",
    "Verdict",
    "backoff_delay",
    "classify",
    "to_timeout",
]


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not _finite(value) or not value > 0:
        raise ValidationError(
            f"{attribute.name} must be > 0 seconds (finite), not {shown(value)}",
            field=attribute.name,
        )


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not _finite(value) or not value >= 0:
        raise ValidationError(
            f"{attribute.name} must be >= 0 seconds (finite), not {shown(value)}",
            field=attribute.name,
        )


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """The wait before attempt ``attempt + 1``: ``initial`` doubled each attempt, capped
    at ``maximum``, half fixed and half jitter (the one back-off formula of the SDK)."""
    ceiling: float = min(maximum, initial * 2.0 ** min(attempt - 1, 64))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


@attrs.frozen
class Timeout:
    """Per-attempt time limits in seconds: ``connect`` to open a connection, ``total`` for
    the whole exchange.

    ``Timeout(connect=10.0, total=60.0)``: both positive numbers of seconds. Wherever a
    ``timeout`` is taken, a plain number ``n`` means ``Timeout(connect=min(10, n),
    total=n)``. A bound on a whole call, retries included, is `RetryPolicy`'s
    ``deadline``.

    >>> Timeout(connect=5.0, total=30.0)
    Timeout(connect=5.0, total=30.0)
    """

    connect: float = attrs.field(default=10.0, validator=_positive)
    total: float = attrs.field(default=60.0, validator=_positive)


#: What a ``timeout=`` argument takes: a `Timeout`, or a number of seconds (the total).
TimeoutInput = Timeout | float


def to_timeout(value: object, field: str = "timeout") -> Timeout:
    """``value`` as a `Timeout`: a number is the total in seconds (connect up to 10 s).

    >>> to_timeout(5)
    Timeout(connect=5.0, total=5.0)
    """
    if isinstance(value, Timeout):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(
            f"{field} must be a Timeout or a number of seconds, not {shown(value)}", field=field
        )
    if not _finite(value) or not value > 0:
        raise ValidationError(
            f"{field} must be > 0 seconds (finite), not {shown(value)}", field=field
        )
    total = float(value)
    return Timeout(connect=min(10.0, total), total=total)


_RETRYABLE_STATUS = frozenset({408, 429})


class Verdict(NamedTuple):
    """What a failed attempt means: may it be sent again, and may it have been acted
    on (a create that may have stored its record)."""

    retry: bool
    may_have_landed: bool


def classify(error: SenseLinkError, *, idempotent: bool) -> Verdict:
    """Whether a failed attempt may be sent again, and whether it may have landed.

    A GET is retried on anything transient. ``create_record`` is not idempotent: it is
    retried only when the server provably did not take the request (no connection was
    made, or it refused with a rate limit); after anything else the record may exist.
    A redirect is never retried: the same request would be redirected again.

    >>> classify(ConnectError("refused"), idempotent=False)
    Verdict(retry=True, may_have_landed=False)
    """
    if isinstance(error, (ConnectError, RateLimitError)):
        return Verdict(retry=True, may_have_landed=False)
    transient = isinstance(error, (TransportError, ResponseError, ServerError)) or (
        isinstance(error, APIError) and error.status >= 500
    )
    if not idempotent:
        return Verdict(retry=False, may_have_landed=transient)
    if isinstance(error, RedirectError):
        return Verdict(retry=False, may_have_landed=transient)
    retry = transient or (isinstance(error, APIError) and error.status in _RETRYABLE_STATUS)
    return Verdict(retry=retry, may_have_landed=transient)


@attrs.frozen
class RetryPolicy:
    """How failed attempts are retried: capped exponential backoff with jitter.

    ``RetryPolicy(max_attempts=3, initial_delay=0.5, max_delay=8.0,
    max_retry_after=60.0, deadline=None)``, all in seconds but the count:

    - ``max_attempts`` counts the first try (1: never retry, as `none` gives).
    - ``initial_delay`` is the first back-off ceiling, doubled each attempt up to
      ``max_delay``; each wait is between half that ceiling and all of it (jitter).
    - A ``Retry-After`` up to ``max_retry_after`` seconds is honoured; a longer one
      raises `RateLimitError` at once.
    - ``deadline`` (None: none) bounds a whole call, retries and waits included.

    Which failures are retried is not configurable: it is what is safe (GET calls on
    transport errors, unreadable answers, 408, 429, 5xx and rate-limit or server-error
    envelopes; uploads only when the request provably did not reach the server).

    >>> RetryPolicy(max_attempts=5, deadline=30.0).max_attempts
    5
    >>> RetryPolicy.none().max_attempts
    1
    """

    max_attempts: int = attrs.field(default=3)
    initial_delay: float = attrs.field(default=0.5, validator=_non_negative)
    max_delay: float = attrs.field(default=8.0, validator=_non_negative)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)
    deadline: float | None = attrs.field(default=None)

    @max_attempts.validator
    def _check_attempts(self, _: object, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(
                f"max_attempts must be an int >= 1, not {shown(value)}", field="max_attempts"
            )

    @deadline.validator
    def _check_deadline(self, _: object, value: float | None) -> None:
        if value is not None and (not _finite(value) or not value > 0):
            raise ValidationError(
                f"deadline must be > 0 seconds or None, not {shown(value)}", field="deadline"
            )

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The wait before attempt ``attempt + 1``: half fixed, half jitter, capped."""
        return backoff_delay(attempt, self.initial_delay, self.max_delay, rng)

    def delay(self, error: SenseLinkError, attempt: int, rng: random.Random) -> float | None:
        """Seconds to wait before the next attempt, or None when the server asked for a
        longer wait than ``max_retry_after``."""
        retry_after = error.retry_after if isinstance(error, APIError) else None
        if retry_after is None:
            return self.backoff(attempt, rng)
        if retry_after > self.max_retry_after:
            return None
        return float(retry_after)
