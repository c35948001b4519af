"""Request signing: every SenseLink Cloud call carries app_key, timestamp and sign."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

import attrs

from ._checks import check_text
from ._exceptions import ValidationError
from ._http import AUTH_PARAMS, HttpRequest, make_request

__all__ = ["Credentials", "compute_sign", "sign_request"]

ENV_APP_KEY = "SENSELINK_APP_KEY"
ENV_APP_SECRET = "SENSELINK_APP_SECRET"


def compute_sign(timestamp_ms: int | str, app_secret: str) -> str:
    """Return the lowercase hex MD5 of ``f"{timestamp}#{app_secret}"``.

    >>> compute_sign(1477881215000, "2323dsfadfewrasa3434")
    'e5ef72ef839bdf5397b4906b199b9fbf'
    """
    payload = f"{timestamp_ms}#{app_secret}".encode()
    return hashlib.md5(payload, usedforsecurity=False).hexdigest()


def _hidden(_: str) -> str:
    return "'***'"


@attrs.frozen(repr=True)
class Credentials:
    """An app key and its secret; the secret never shows in a repr.

    >>> Credentials("key", "secret")
    Credentials(app_key='key', app_secret='***')
    """

    app_key: str
    app_secret: str = attrs.field(repr=_hidden)

    @classmethod
    def resolve(cls, app_key: str | None, app_secret: str | None) -> Credentials:
        """Take explicit values, else the SENSELINK_APP_KEY / SENSELINK_APP_SECRET env vars."""
        key = app_key if app_key is not None else os.environ.get(ENV_APP_KEY)
        secret = app_secret if app_secret is not None else os.environ.get(ENV_APP_SECRET)
        missing = [
            f"{name} (or ${env})"
            for name, env, value in (
                ("app_key", ENV_APP_KEY, key),
                ("app_secret", ENV_APP_SECRET, secret),
            )
            if not value
        ]
        if missing:
            raise ValidationError(
                f"missing credentials: pass {' and '.join(missing)}",
                field="app_key" if not key else "app_secret",
            )
        # The secret's value never goes into the message, only what is wrong with it.
        return cls(check_text(key, "app_key"), check_text(secret, "app_secret"))


def sign_request(
    request: HttpRequest,
    credentials: Credentials,
    now_ms: int,
    *,
    headers: Mapping[str, str] | None = None,
) -> HttpRequest:
    """Return ``request`` with fresh ``app_key``, ``timestamp`` and ``sign`` query
    parameters (and ``headers`` in place of its own, when given)."""
    timestamp = str(now_ms)
    auth = (
        ("app_key", credentials.app_key),
        ("timestamp", timestamp),
        ("sign", compute_sign(timestamp, credentials.app_secret)),
    )
    params = request.params
    for name, _ in params:
        if name in AUTH_PARAMS:  # signed before: drop the stale auth
            params = tuple([p for p in params if p[0] not in AUTH_PARAMS])
            break
    return make_request(
        request.method,
        request.url,
        params + auth,
        request.headers if headers is None else headers,
        request.content,
        request.timeout,
    )
