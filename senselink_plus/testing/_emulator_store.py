"""The emulator's record store: columnar, sorted by record_id, listable in O(log n + page)."""

from __future__ import annotations

import os
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

__all__ = ["SEED_IMAGE", "ImagesView", "Journal", "RecordStore", "Row", "image_content_type"]

#: An 8x8 mid-grey baseline JPEG (159 bytes) that every seeded record shares.
SEED_IMAGE = b"".join(
    (
        b"\xff\xd8",
        b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
        b"\xff\xdb\x00\x43\x00" + b"\x01" * 64,
        b"\xff\xc0\x00\x0b\x08\x00\x08\x00\x08\x01\x01\x11\x00",
        b"\xff\xc4\x00\x14\x00\x01" + b"\x00" * 16,
        b"\xff\xc4\x00\x14\x10\x01" + b"\x00" * 16,
        b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00",
        b"\x3f",
        b"\xff\xd9",
    )
)

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

MATCHED_SCORE = 0.97
UNMATCHED_SCORE = 0.31

# user_id is a column of int64; this value stands for "nobody matched" (JSON null).
_NO_USER = -(2**63)
# The image id carries the record id in its last 10 hex digits (40 bits).
_ID_BITS = 40
MAX_RECORD_ID = 2**_ID_BITS - 1
# Compacting shifts every column, so it waits until enough records have expired.
_COMPACT_MIN = 1024


#: One stored record as a journal gets it and `RecordStore.restore` takes it back:
#: ``(record_id, create_at, device_timestamp, user_id, verify_score, sn, timezone,
#: extend, image)``; ``image`` is None for a seeded record (it shares `SEED_IMAGE`).
Row = tuple[int, int, int, int | None, float, str, str | None, str | None, bytes | None]
#: Told of every record stored (by `RecordStore.append` and `seed`), in id order.
Journal = Callable[[Iterable[Row]], None]


def image_content_type(data: bytes) -> str:
    """The media type of stored image bytes, read from their magic number."""
    return "image/png" if data.startswith(PNG_MAGIC) else "image/jpeg"


class _Interned:
    """Strings stored once and referred to by a small int code (code 0 is None)."""

    def __init__(self) -> None:
        self.values: list[str | None] = [None]
        self._codes: dict[str | None, int] = {None: 0}

    def code(self, value: str | None) -> int:
        found = self._codes.get(value)
        if found is None:
            found = self._codes[value] = len(self.values)
            self.values.append(value)
        return found

    def find(self, value: str) -> int | None:
        return self._codes.get(value)


def _seeded_matches(n: int, every: int, users: Sequence[int]) -> tuple[array[int], array[float]]:
    """The user and score columns of ``n`` seeded records: every ``every``-th one matched
    (the ``users`` taking turns), the others nobody (``every`` 0: none matched)."""
    if not every:
        return array("q", [_NO_USER]) * n, array("d", [UNMATCHED_SCORE]) * n
    count = len(users)
    return (
        array("q", [users[(i // every) % count] if i % every == 0 else _NO_USER for i in range(n)]),
        array("d", [MATCHED_SCORE if i % every == 0 else UNMATCHED_SCORE for i in range(n)]),
    )


class RecordStore:
    """Records as parallel columns; position ``i`` of every column is one record.

    Record ids increase with position and ``create_at`` never decreases with it, so a
    time window is a slice found by bisection. Expired records form a prefix.

    >>> store = RecordStore(lambda: 1_700_000_000_000, retention_ms=86_400_000)
    >>> store.append(sn="SN1", device_timestamp=1, timezone=None, extend=None,
    ...              user_id=None, score=0.31, image=SEED_IMAGE)[0]
    1000000
    """

    def __init__(
        self,
        now_ms: Callable[[], int],
        *,
        retention_ms: int,
        first_record_id: int = 1_000_000,
        tag: str | None = None,
        journal: Journal | None = None,
    ) -> None:
        if not 0 <= first_record_id <= MAX_RECORD_ID:
            raise ValueError(
                f"first_record_id is {first_record_id}; it must be in [0, {MAX_RECORD_ID}]"
            )
        self._now_ms = now_ms
        self.retention_ms = retention_ms
        self._next_id = first_record_id
        # An image id looks like a MongoDB ObjectId: time, a per-emulator tag, then a
        # counter; here the counter is the record id, so lookup needs no second index.
        # A store restored from a file keeps the tag its image ids were given.
        self._tag = os.urandom(3).hex() if tag is None else tag
        self._journal = journal
        # Positions in the per-sn indexes are absolute: position - _base is the column
        # index, so dropping an expired prefix does not rewrite them.
        self._base = 0
        self._ids = array("q")
        self._created = array("q")
        self._device_ts = array("q")
        self._users = array("q")
        self._scores = array("d")
        self._sn = array("i")
        self._tz = array("i")
        self._extend: list[str | None] = []
        self._images: list[bytes | None] = []
        self._sns = _Interned()
        self._tzs = _Interned()
        self._by_sn: dict[int, array[int]] = {}
        self._image_floor = 0  # expired posted images below this index are already freed

    # -- writing ---------------------------------------------------------------------

    def append(
        self,
        *,
        sn: str,
        device_timestamp: int,
        timezone: str | None,
        extend: str | None,
        user_id: int | None,
        score: float,
        image: bytes,
    ) -> tuple[int, str]:
        """Store one record now; return its ``(record_id, image_id)``."""
        # The cloud stamps create_at on arrival; a clock that steps back must not break
        # the sorted order that listing relies on, so it is clamped.
        now = self._now_ms()
        created = max(now, self._created[-1]) if self._created else now
        record_id = self._next_id
        self._next_id += 1
        row = (record_id, created, device_timestamp, user_id, score, sn, timezone, extend, image)
        self._put(row)
        if self._journal is not None:
            self._journal((row,))
        return record_id, self._image_id(record_id, created)

    def restore(self, rows: Iterable[Row]) -> None:
        """Load the rows a journal was given (ascending ``record_id``) into an empty store;
        new records continue after the last one."""
        if self._ids:
            raise ValueError("restore needs an empty store")
        for row in rows:
            self._put(row)
        if self._ids:
            self._next_id = max(self._next_id, self._ids[-1] + 1)

    def _put(self, row: Row) -> None:
        record_id, created, device_timestamp, user_id, score, sn, timezone, extend, image = row
        self._ids.append(record_id)
        self._created.append(created)
        self._device_ts.append(device_timestamp)
        self._users.append(_NO_USER if user_id is None else user_id)
        self._scores.append(score)
        code = self._sns.code(sn)
        self._sn.append(code)
        self._tz.append(self._tzs.code(timezone))
        self._extend.append(extend)
        self._images.append(image)
        self._by_sn.setdefault(code, array("q")).append(self._base + len(self._ids) - 1)

    def seed(
        self,
        n: int,
        *,
        start_ms: int,
        span_ms: int,
        sns: Sequence[str],
        timezone: str | None,
        matched_every: int,
        users: Sequence[int],
    ) -> range:
        """Append ``n`` records spread evenly over ``[start_ms, start_ms + span_ms]``."""
        self._check_seed(n, start_ms, span_ms, matched_every, sns, users)
        first = self._next_id
        if n == 0:
            return range(first, first)
        last = max(n - 1, 1)
        created = array("q", [start_ms + span_ms * i // last for i in range(n)])
        user_col, score_col = _seeded_matches(n, matched_every, users)
        self._seed_devices(n, [self._sns.code(s) for s in sns])
        self._ids.extend(range(first, first + n))
        self._created.extend(created)
        self._device_ts.extend(array("q", [c // 1000 for c in created]))
        self._users.extend(user_col)
        self._scores.extend(score_col)
        self._tz.extend(array("i", [self._tzs.code(timezone)]) * n)
        self._extend.extend([None] * n)
        self._images.extend([None] * n)  # None: the shared SEED_IMAGE
        self._next_id += n
        if self._journal is not None:
            self._journal(self._rows(len(self._ids) - n, len(self._ids)))
        return range(first, first + n)

    def _check_seed(
        self,
        n: int,
        start_ms: int,
        span_ms: int,
        matched_every: int,
        sns: Sequence[str],
        users: Sequence[int],
    ) -> None:
        if n < 0 or span_ms < 0 or matched_every < 0 or not sns or not users:
            raise ValueError("seed needs n >= 0, span >= 0, matched_every >= 0 and an sn")
        if self._created and start_ms < self._created[-1]:
            raise ValueError(
                f"seed start ({start_ms} ms) is before the newest record's create_at "
                f"({self._created[-1]} ms); records are stored in time order"
            )
        if self._next_id + n - 1 > MAX_RECORD_ID:
            raise ValueError(f"seeding {n} records would pass record id {MAX_RECORD_ID}")

    def _seed_devices(self, n: int, codes: list[int]) -> None:
        """The sn column of ``n`` new records, the devices taking turns, and their
        positions in the per-sn indexes."""
        start_abs = self._base + len(self._ids)
        if len(codes) == 1:
            self._sn.extend(array("i", codes) * n)
        else:
            self._sn.extend(array("i", [codes[i % len(codes)] for i in range(n)]))
        strides: dict[int, list[range]] = {}
        for j, code in enumerate(codes):
            strides.setdefault(code, []).append(range(start_abs + j, start_abs + n, len(codes)))
        for code, ranges in strides.items():
            column = self._by_sn.setdefault(code, array("q"))
            # sns may name one device twice; its positions must still come out sorted.
            column.extend(ranges[0] if len(ranges) == 1 else sorted(chain.from_iterable(ranges)))

    # -- reading ---------------------------------------------------------------------

    def query(
        self,
        from_ms: int,
        to_ms: int,
        *,
        sn: str | None,
        descending: bool,
        page: int,
        size: int,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Records with ``from_ms <= create_at <= to_ms``: the total and one page."""
        first = self._expire()
        lo = max(first, bisect_left(self._created, from_ms))
        hi = max(lo, bisect_right(self._created, to_ms))
        skip = (page - 1) * size
        if sn is None:
            total = hi - lo
            if descending:
                stop = max(hi - skip, lo)
                positions: Sequence[int] = range(stop - 1, max(stop - size, lo) - 1, -1)
            else:
                start = min(lo + skip, hi)
                positions = range(start, min(start + size, hi))
            return total, [self._record(i) for i in positions]
        code = self._sns.find(sn)
        column = self._by_sn.get(code) if code is not None else None
        if column is None:
            return 0, []
        a = bisect_left(column, self._base + lo)
        b = bisect_left(column, self._base + hi)
        total = b - a
        if descending:
            stop = max(b - skip, a)
            chosen = column[max(stop - size, a) : stop][::-1]
        else:
            start = min(a + skip, b)
            chosen = column[start : min(start + size, b)]
        return total, [self._record(p - self._base) for p in chosen]

    def records(self) -> list[dict[str, Any]]:
        """Every visible record in wire shape, oldest first."""
        first = self._expire()
        return [self._record(i) for i in range(first, len(self._ids))]

    def image(self, image_id: str) -> bytes | None:
        """The bytes behind ``image_id``, or None when unknown or expired."""
        index = self._find_image(image_id)
        if index is None:
            return None
        stored = self._images[index]
        return SEED_IMAGE if stored is None else stored

    def image_ids(self) -> Iterator[str]:
        first = self._expire()
        for i in range(first, len(self._ids)):
            yield self._image_id(self._ids[i], self._created[i])

    def visible_count(self) -> int:
        return len(self._ids) - self._expire()

    # -- internals -------------------------------------------------------------------

    def _image_id(self, record_id: int, created_ms: int) -> str:
        return f"{(created_ms // 1000) & 0xFFFFFFFF:08x}{self._tag}{record_id:010x}"

    def _find_image(self, image_id: str) -> int | None:
        if len(image_id) != 24 or image_id[8:14] != self._tag:
            return None
        try:
            record_id = int(image_id[14:], 16)
        except ValueError:
            return None
        first = self._expire()  # before the bisection: expiring may compact the columns
        index = bisect_left(self._ids, record_id)
        if index < first or index >= len(self._ids) or self._ids[index] != record_id:
            return None
        if self._image_id(record_id, self._created[index]) != image_id:
            return None
        return index

    def _rows(self, start: int, stop: int) -> Iterator[Row]:
        for i in range(start, stop):
            user = self._users[i]
            yield (
                self._ids[i],
                self._created[i],
                self._device_ts[i],
                None if user == _NO_USER else user,
                self._scores[i],
                self._sns.values[self._sn[i]] or "",
                self._tzs.values[self._tz[i]],
                self._extend[i],
                self._images[i],
            )

    def _record(self, i: int) -> dict[str, Any]:
        user = self._users[i]
        record_id = self._ids[i]
        created = self._created[i]
        return {
            "record_id": record_id,
            "sn": self._sns.values[self._sn[i]],
            "image_id": self._image_id(record_id, created),
            "user_id": None if user == _NO_USER else user,
            "verify_score": self._scores[i],
            "device_timestamp": self._device_ts[i],
            "timezone": self._tzs.values[self._tz[i]],
            "create_at": created,
            "extend": self._extend[i],
        }

    def _expire(self) -> int:
        """Apply retention; return the index of the oldest visible record."""
        cutoff = bisect_left(self._created, self._now_ms() - self.retention_ms)
        if cutoff == 0:
            return 0
        # Expired snapshots go at once (they can be large); the columns are compacted
        # only in batches, because compacting moves every later record.
        for i in range(self._image_floor, cutoff):
            self._images[i] = None
        self._image_floor = max(self._image_floor, cutoff)
        if cutoff < _COMPACT_MIN and cutoff * 8 < len(self._ids):
            return cutoff
        for column in (
            self._ids,
            self._created,
            self._device_ts,
            self._users,
            self._scores,
            self._sn,
            self._tz,
        ):
            del column[:cutoff]
        del self._extend[:cutoff]
        del self._images[:cutoff]
        self._base += cutoff
        self._image_floor = 0
        for code, positions in list(self._by_sn.items()):
            del positions[: bisect_left(positions, self._base)]
            if not positions:
                del self._by_sn[code]
        return 0


class ImagesView(Mapping[str, bytes]):
    """A read-only ``image_id -> bytes`` view of the visible records' snapshots."""

    def __init__(self, store: RecordStore) -> None:
        self._store = store

    def __getitem__(self, image_id: str) -> bytes:
        data = self._store.image(image_id)
        if data is None:
            raise KeyError(image_id)
        return data

    def __iter__(self) -> Iterator[str]:
        return self._store.image_ids()

    def __len__(self) -> int:
        return self._store.visible_count()

    def __contains__(self, image_id: object) -> bool:
        return isinstance(image_id, str) and self._store.image(image_id) is not None
