"""PostgreSQL DSNs in messages: where a DSN points (host, port, database), never its
user info, password or query, and nothing at all of a DSN that does not parse cleanly.

>>> redact_dsn("postgresql://ingest:hunter2@db:5432/app?sslmode=require")
'postgresql://db:5432/app'
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ._exceptions import ValidationError

__all__ = ["UNPARSED_DSN", "HiddenDsn", "redact_dsn", "to_dsn"]

#: What a DSN the SDK cannot parse is shown as: none of it.
UNPARSED_DSN = "<a PostgreSQL DSN that could not be parsed (not shown)>"
_HOST = re.compile(r"(?:[A-Za-z0-9._~-]+|%2[Ff][A-Za-z0-9._~%/-]*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
_DB = re.compile(r"/[A-Za-z0-9._~$-]*")
_CONNINFO = re.compile(r"\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)+)")
_SAFE_VALUE = re.compile(r"[A-Za-z0-9._~/:\[\]$-]+")
_SHOWN_KEYS = ("host", "hostaddr", "port", "dbname")


def redact_dsn(dsn: str) -> str:
    """Where ``dsn`` points, for messages: host, port and database only, never the
    user info or the query (a password may hide in ``password=``, ``sslpassword=`` or
    ``options=``). A DSN that does not parse cleanly (an unescaped ``#``, ``/``, ``?``
    or ``@`` in its password, an unclosed quote) is not shown at all.

    >>> redact_dsn("postgresql://ingest:hunter2@db:5432/app?sslmode=require")
    'postgresql://db:5432/app'
    >>> redact_dsn("host=db user=ingest password='hunter 2' dbname=app")
    'host=db dbname=app'
    >>> redact_dsn("postgresql://ingest:hun#ter2@db/app")
    '<a PostgreSQL DSN that could not be parsed (not shown)>'
    """
    try:
        shown = _redact_url(dsn) if "://" in dsn else _redact_conninfo(dsn)
    except ValueError:
        shown = None
    return UNPARSED_DSN if shown is None else shown


def _redact_url(dsn: str) -> str | None:
    parts = urlsplit(dsn)
    if parts.scheme.lower() not in ("postgres", "postgresql") or parts.fragment:
        return None
    # An unescaped "/", "?" or "#" in the password ends the host part early: what
    # follows (path, query) then holds the "@" that should have ended the user info.
    if "@" in parts.path or "@" in parts.query:
        return None
    hosts = parts.netloc.rpartition("@")[2]
    if hosts and not all(_HOST.fullmatch(host) for host in hosts.split(",")):
        return None
    if parts.path and not _DB.fullmatch(parts.path):
        return None
    return f"{parts.scheme}://{hosts}{parts.path}"


def _redact_conninfo(dsn: str) -> str | None:
    values: dict[str, str] = {}
    position = 0
    while position < len(dsn.rstrip()):
        match = _CONNINFO.match(dsn, position)
        if match is None:
            return None
        values[match.group(1).lower()] = match.group(2)
        position = match.end()
    shown = [(key, values[key]) for key in _SHOWN_KEYS if key in values]
    if not shown or not all(_SAFE_VALUE.fullmatch(value) for _, value in shown):
        return None
    return " ".join(f"{key}={value}" for key, value in shown)


class HiddenDsn:
    """The DSN, kept out of reprs (and so of tracebacks' captured locals)."""

    __slots__ = ("redacted", "value")

    def __init__(self, value: str) -> None:
        self.value = value
        self.redacted = redact_dsn(value)

    def __repr__(self) -> str:
        return repr(self.redacted)


def to_dsn(value: str) -> HiddenDsn:
    """A DSN argument, checked (a non-blank string) and hidden."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("dsn must be a PostgreSQL connection string", field="dsn")
    return HiddenDsn(value)
