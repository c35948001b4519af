"""A watch's saved state: its format, the query it belongs to, and how two states
order. No I/O: checkpoints store the mapping, `_follow.Position` makes and reads it.

The state is a small JSON-able mapping (version `STATE_VERSION`)::

    {"version": 2, "query": {"sn": ..., "order": "ascending", "app": "<sha256[:16]>"},
     "cursor": ISO-8601, "floor": ISO-8601 | None,
     "newest": ISO-8601 | None, "ids": [record ids], "watermark": record id | None}

It counts as acknowledged every record with an id up to ``watermark`` stored before
``newest``'s second, plus the ``ids`` of that second; ``cursor`` is where the next
poll reads from (less the overlap) and ``floor`` where the watch began, when a poll
could still reach below it. So it is O(records sharing the newest second), whatever
the history.

>>> a = {"newest": "2024-05-01T00:00:01+00:00", "ids": [7], "watermark": 7}
>>> b = {"newest": "2024-05-01T00:00:01+00:00", "ids": [7, 8], "watermark": 8}
>>> state_covers(b, a), state_covers(a, b)
(True, False)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from ._exceptions import ValidationError
from ._timeutil import to_aware

__all__ = ["STATE_VERSION", "Query", "SavedState", "dump_state", "state_covers", "supersedes"]

STATE_VERSION = 2


@attrs.frozen
class Query:
    """What a watch follows; a saved position belongs to exactly one.

    ``app`` is a fingerprint of the app key (the key itself is not stored, and the
    secret never is).

    >>> Query.of("app-key", sn=None).describe()
    'all devices, ascending, app key sha256:2924a27d7fc71537'
    """

    sn: str | None
    app: str
    order: str = "ascending"

    @classmethod
    def of(cls, app_key: str, *, sn: str | None) -> Query:
        """The query of a watch over ``sn`` (None: every device) with ``app_key``."""
        return cls(sn, hashlib.sha256(app_key.encode()).hexdigest()[:16])

    def describe(self) -> str:
        """A one-line description for messages."""
        devices = "all devices" if self.sn is None else f"sn {self.sn!r}"
        return f"{devices}, {self.order}, app key sha256:{self.app}"

    def to_state(self) -> dict[str, Any]:
        return {"sn": self.sn, "order": self.order, "app": self.app}

    @classmethod
    def from_state(cls, value: object) -> Query:
        if not isinstance(value, Mapping):
            raise TypeError("no query")
        sn, app, order = value.get("sn"), value.get("app"), value.get("order")
        if not (sn is None or isinstance(sn, str)) or not isinstance(app, str):
            raise TypeError("query sn/app are not strings")
        if not isinstance(order, str):
            raise TypeError("query order is not a string")
        return cls(sn, app, order)


@attrs.frozen
class SavedState:
    """The fields of a saved state, checked (`read`) or about to be saved (`dump`).

    >>> query = Query.of("app-key", sn=None)
    >>> start = datetime(2024, 5, 1, tzinfo=timezone.utc)
    >>> SavedState.read(SavedState(query, start).dump(), query, "here").cursor == start
    True
    """

    query: Query
    cursor: datetime
    floor: datetime | None = None
    newest: datetime | None = None
    ids: tuple[int, ...] = ()
    watermark: int | None = None

    @classmethod
    def read(cls, state: object, query: Query, where: str) -> SavedState:
        """``state`` as a checkpoint returned it, for a watch of ``query``; a
        `ValidationError` naming ``where`` when it is unusable or another query's."""
        try:
            saved = cls._parse(state)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(
                f"checkpoint {where} holds no usable watch state: {exc}", field="checkpoint"
            ) from None
        if saved.query != query:
            raise ValidationError(
                f"checkpoint {where} belongs to another watch: it follows "
                f"{saved.query.describe()}, this watch follows {query.describe()}; give this "
                "watch its own checkpoint",
                field="checkpoint",
            )
        return saved

    @classmethod
    def _parse(cls, state: object) -> SavedState:
        if not isinstance(state, Mapping):
            raise TypeError(f"expected a mapping, not {type(state).__name__}")
        version = state.get("version")
        if version != STATE_VERSION:
            raise ValueError(
                f"unknown version {version!r} (this release reads {STATE_VERSION}; a "
                "state from an older release must be moved away, or pass since=)"
            )
        newest = _optional_utc(state.get("newest"), "newest")
        watermark = _optional_id(state.get("watermark"), "watermark")
        if (newest is None) != (watermark is None):
            raise ValueError("newest and watermark go together")
        return cls(
            Query.from_state(state.get("query")),
            _utc(state.get("cursor"), "cursor"),
            _optional_utc(state.get("floor"), "floor"),
            newest,
            _ids(state.get("ids")),
            watermark,
        )

    def dump(self) -> dict[str, Any]:
        """The JSON-able mapping to save."""
        return dump_state(
            self.query, self.cursor, self.floor, self.newest, self.ids, self.watermark
        )


def dump_state(
    query: Query,
    cursor: datetime,
    floor: datetime | None,
    newest: datetime | None,
    ids: Iterable[int],
    watermark: int | None,
) -> dict[str, Any]:
    """`SavedState.dump` of these fields, without building one (a watch makes a state
    at every acknowledgement)."""
    shown = _iso(newest)
    return {
        "version": STATE_VERSION,
        "query": query.to_state(),
        "cursor": shown if cursor == newest and shown is not None else cursor.isoformat(),
        "floor": _iso(floor),
        "newest": shown,
        "ids": list(ids),
        "watermark": watermark,
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _utc(value: object, name: str) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"{name} is not an ISO-8601 string")
    return to_aware(value, name).astimezone(timezone.utc)


def _optional_utc(value: object, name: str) -> datetime | None:
    return None if value is None else _utc(value, name)


def _optional_id(value: object, name: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise TypeError(f"{name} is not a record id")
    return value


def _ids(value: object) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(type(i) is int and i >= 0 for i in value):
        raise TypeError("ids is not a list of record ids")
    return tuple(value)


def _second(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    return math.floor(datetime.fromisoformat(value).timestamp())


def state_covers(state: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Whether ``state`` counts as acknowledged every record ``other`` does (by the
    state's rule, above). A save that does not would move a saved position
    backwards; every checkpoint kind orders states by this one rule."""
    theirs = _second(other.get("newest"))
    if theirs is None:
        return True
    ours = _second(state.get("newest"))
    mark, their_mark = state.get("watermark"), other.get("watermark")
    if ours is None or not isinstance(mark, int) or not isinstance(their_mark, int):
        return False
    if mark < their_mark or ours < theirs:
        return False
    if ours > theirs:
        return True
    return set(other.get("ids") or ()) <= set(state.get("ids") or ())


def supersedes(state: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Whether ``state`` is a later position of the same watch than ``other``: a state
    of this version and of the same query that counts as acknowledged every record
    ``other`` does, and more. Anything that does not parse is not.

    >>> query = Query.of("app-key", sn=None)
    >>> older = SavedState(query, datetime(2024, 5, 1, tzinfo=timezone.utc)).dump()
    >>> newer = {**older, "newest": "2024-05-01T00:00:01+00:00", "ids": [7], "watermark": 7}
    >>> supersedes(newer, older), supersedes(older, newer), supersedes(newer, newer)
    (True, False, False)
    """
    try:
        mine, theirs = SavedState._parse(state), SavedState._parse(other)
    except (KeyError, TypeError, ValueError):
        return False
    if mine.query != theirs.query:
        return False
    return state_covers(state, other) and not state_covers(other, state)
