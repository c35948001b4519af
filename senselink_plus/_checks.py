"""Argument checks shared by the public calls: each failure is a `ValidationError`
naming the field, what is wrong, and the limit."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

import yarl

from ._exceptions import APIError, ValidationError

__all__ = [
    "check_base_url",
    "check_bool",
    "check_callable",
    "check_error_codes",
    "check_int",
    "check_path",
    "check_seconds",
    "check_text",
    "finite",
    "is_loopback_host",
    "shown",
]

#: The largest count or size any argument may be (fits every int the wire carries).
MAX_INT = 2**31 - 1


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages; never raises.

    (The repr of an int of more than 4300 digits raises ValueError.)
    """
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def finite(value: object) -> bool:
    """A real number a float can hold: not a bool, NaN, infinity or a huge int."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def check_int(value: object, field: str, *, minimum: int = 1, maximum: int = MAX_INT) -> int:
    """An int (not a bool) in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field} must be an int, not {type(value).__name__}", field=field)
    if not minimum <= value <= maximum:
        raise ValidationError(
            f"{field} is {shown(value)}; it must be {minimum}..{maximum}", field=field
        )
    return value


def check_seconds(value: object, field: str) -> float:
    """A finite number > 0 (seconds, or a rate)."""
    if not finite(value) or not value > 0:  # type: ignore[operator]
        raise ValidationError(
            f"{field} must be a finite number > 0, not {shown(value)}", field=field
        )
    return float(value)  # type: ignore[arg-type]


def check_text(value: object, field: str, *, empty_ok: bool = False) -> str:
    """A str that encodes as UTF-8 (no lone surrogates), non-blank unless ``empty_ok``."""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string, not {type(value).__name__}", field=field)
    if not empty_ok and not value.strip():
        raise ValidationError(f"{field} is empty", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            f"{field} holds a lone surrogate and cannot be encoded as UTF-8", field=field
        ) from None
    return value


def check_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{field} must be True or False, not {shown(value)}", field=field)
    return value


def check_callable(value: Any, field: str) -> Callable[..., Any]:
    if not callable(value):
        raise ValidationError(f"{field} must be callable, not {shown(value)}", field=field)
    return value  # type: ignore[no-any-return]


def check_path(value: object, field: str) -> str:
    """A filesystem path as a str: no NUL, encodable, not empty."""
    try:
        path: str | bytes = os.fspath(value)  # type: ignore[call-overload]
    except TypeError:
        raise ValidationError(
            f"{field} must be a path, not {type(value).__name__}", field=field
        ) from None
    if isinstance(path, bytes):
        raise ValidationError(f"{field} must be a str path, not bytes", field=field)
    check_text(path, field)
    if "\x00" in path:
        raise ValidationError(f"{field} holds a NUL character", field=field)
    return path


def _url_shown(url: str) -> str:
    """``url`` for an error message: scheme, host, port and path only. User info, a
    query or a fragment may hold a password or a token, so they are never shown."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "<a URL that cannot be parsed>"
    return shown(f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else netloc)


def _host_problem(host: str) -> str | None:
    """Why ``host`` (as `urlsplit` gives it) cannot be connected to, or None.

    Checked here because the resolver finds out only at the first call, with a bare
    UnicodeError (``a..b.example``: an empty label).
    """
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if not name or any(not label for label in name.split(".")):
        return "has an empty label (two dots in a row, or a leading dot)"
    try:
        encoded = name.encode("idna")
        yarl.URL(f"https://{host}/").host  # noqa: B018 -- how aiohttp reads it; raises if bad
    except (UnicodeError, ValueError):
        return "is not a valid host name (a label over 63 characters, or bad IDNA)"
    if len(encoded) > 253:
        return "is over 253 characters"
    return None


def _shape_problem(url: str, parts: SplitResult, host: str | None) -> str | None:
    if parts.query or parts.fragment or parts.username or parts.password:
        return (
            "must be a plain base such as https://link.japancv.co.jp "
            "(no query, fragment or user info)"
        )
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in url):
        return "must be an http(s) URL such as https://link.japancv.co.jp"
    return None


def check_base_url(value: object, *, allow_insecure_http: bool) -> str:
    """An http(s) URL with a valid host; plain http only to loopback unless allowed.

    Error messages show the URL without user info, query or fragment.
    """
    url = check_text(value, "base_url")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- parsing the port is what raises for a bad one
    except ValueError as exc:
        raise ValidationError(
            f"base_url {_url_shown(url)} is not a URL: {exc}", field="base_url"
        ) from None
    problem = _shape_problem(url, parts, host)
    if problem is not None:
        raise ValidationError(f"base_url {_url_shown(url)} {problem}", field="base_url")
    assert host is not None  # checked by _shape_problem
    problem = _host_problem(host)
    if problem is not None:
        raise ValidationError(
            f"base_url {_url_shown(url)}: its host {problem}", field="base_url"
        )
    if parts.scheme == "http" and not is_loopback_host(host) and not allow_insecure_http:
        raise ValidationError(
            f"base_url {_url_shown(url)} is plain http: a sign is valid for 30 minutes and "
            "anyone on the path could replay it; use https, or pass allow_insecure_http=True",
            field="base_url",
        )
    return url.rstrip("/")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (as `urlsplit` gives it, without brackets) is this machine: an IP
    literal in 127.0.0.0/8 or ::1, or exactly the name ``localhost``.

    Parsed, not matched by prefix: ``127.0.0.1.evil.com`` and ``127.attacker.example``
    are names any DNS server may point elsewhere; ``localhost.`` (with the root dot) goes
    to DNS on some resolvers, so it is refused too.
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_error_codes(value: object) -> dict[int, type[APIError]]:
    """``error_codes``: a mapping of envelope codes to `APIError` subclasses."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"error_codes must be a mapping of int to APIError subclasses, not {shown(value)}",
            field="error_codes",
        )
    codes: dict[int, type[APIError]] = {}
    for code, cls in value.items():
        if isinstance(code, bool) or not isinstance(code, int):
            raise ValidationError(
                f"error_codes key {shown(code)} is not an int", field="error_codes"
            )
        if not (isinstance(cls, type) and issubclass(cls, APIError)):
            raise ValidationError(
                f"error_codes[{code}] must be an APIError subclass, not {shown(cls)}",
                field="error_codes",
            )
        codes[code] = cls
    return codes
