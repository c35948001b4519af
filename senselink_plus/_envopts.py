"""Timeout and retries from the environment: ``SENSELINK_TIMEOUT`` and
``SENSELINK_MAX_RETRIES``, read by `Client` when the argument is not given.

The order is: the argument, else the variable, else the default. A variable that is set
but empty counts as unset (as ``SENSELINK_BASE_URL`` does); any other value that is not
a valid number is a `ValidationError` naming the variable, never ignored.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from ._checks import shown
from ._exceptions import ValidationError
from ._retry import RetryPolicy, Timeout, TimeoutInput, to_timeout

__all__ = ["ENV_MAX_RETRIES", "ENV_TIMEOUT", "resolve_retry", "resolve_timeout"]

ENV_TIMEOUT = "SENSELINK_TIMEOUT"
ENV_MAX_RETRIES = "SENSELINK_MAX_RETRIES"


def _read(name: str, environ: Mapping[str, str]) -> str | None:
    raw = environ.get(name)
    return raw.strip() if raw and raw.strip() else None


def env_timeout(environ: Mapping[str, str] = os.environ) -> Timeout | None:
    """``$SENSELINK_TIMEOUT`` as a `Timeout`, or None when unset: seconds (a float > 0),
    the same as ``timeout=n``: ``Timeout(connect=min(10, n), total=n)``, per attempt.

    >>> env_timeout({"SENSELINK_TIMEOUT": "30"})
    Timeout(connect=10.0, total=30.0)
    """
    raw = _read(ENV_TIMEOUT, environ)
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValidationError(
            f"${ENV_TIMEOUT} must be a number of seconds > 0, not {shown(raw)}",
            field=ENV_TIMEOUT,
        )
    return to_timeout(seconds)


def env_retry(environ: Mapping[str, str] = os.environ) -> RetryPolicy | None:
    """``$SENSELINK_MAX_RETRIES`` as a `RetryPolicy`, or None when unset: retries after
    the first attempt (an int >= 0), so ``n`` is ``RetryPolicy(max_attempts=n + 1)``.

    >>> env_retry({"SENSELINK_MAX_RETRIES": "0"}) == RetryPolicy.none()
    True
    """
    raw = _read(ENV_MAX_RETRIES, environ)
    if raw is None:
        return None
    # isdecimal, not int(): int() takes "+3", "1_000" and digits of other scripts.
    if not (raw.isascii() and raw.isdecimal()) or len(raw) > 6:
        raise ValidationError(
            f"${ENV_MAX_RETRIES} must be a whole number of retries from 0 to 999999, "
            f"not {shown(raw)}",
            field=ENV_MAX_RETRIES,
        )
    return RetryPolicy(max_attempts=int(raw) + 1)


def resolve_timeout(
    timeout: TimeoutInput | None, environ: Mapping[str, str] = os.environ
) -> Timeout | None:
    """The argument as a `Timeout`, else ``$SENSELINK_TIMEOUT``, else None (the default)."""
    return to_timeout(timeout) if timeout is not None else env_timeout(environ)


def resolve_retry(
    retry: RetryPolicy | None, environ: Mapping[str, str] = os.environ
) -> RetryPolicy | None:
    """The argument, else ``$SENSELINK_MAX_RETRIES``, else None (the default policy)."""
    if retry is not None:
        if not isinstance(retry, RetryPolicy):
            raise ValidationError("retry must be a RetryPolicy", field="retry")
        return retry
    return env_retry(environ)
