"""Writing records for people and programs: JSON lines, CSV, or an aligned table."""

from __future__ import annotations

import csv
from typing import IO, Any

import orjson

from ._models import RECORD_FIELDS, Record

__all__ = ["EXPORT_FIELDS", "FORMATS", "RecordWriter"]

FORMATS = ("jsonl", "csv", "table")
_AFTER = RECORD_FIELDS.index("create_at") + 1
#: What jsonl and csv exports carry, as `Record.to_dict` gives them: the wire fields,
#: ``created_at`` (ISO-8601 UTC to the millisecond) beside the raw ``create_at``, and
#: ``matched``.
EXPORT_FIELDS = (*RECORD_FIELDS[:_AFTER], "created_at", *RECORD_FIELDS[_AFTER:], "matched")


_TABLE_COLUMNS: tuple[tuple[str, int], ...] = (
    ("record_id", 10),
    ("stored (UTC)", 19),
    ("sn", 16),
    ("user_id", 8),
    ("score", 5),
    ("image_id", 24),
    ("extend", 24),
)


def _table_cells(record: Record) -> tuple[str, ...]:
    return (
        str(record.record_id),
        record.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        record.sn,
        "-" if record.user_id is None else str(record.user_id),
        "" if record.verify_score is None else f"{record.verify_score:.2f}",
        record.image_id,
        record.extend or "",
    )


class RecordWriter:
    """Stream records to ``out`` in one of `FORMATS`, one at a time (nothing is held).

    >>> writer = RecordWriter(sys.stdout, "table")  # doctest: +SKIP
    >>> writer.header()  # doctest: +SKIP
    >>> for record in records:  # doctest: +SKIP
    ...     writer.write(record)
    """

    def __init__(self, out: IO[str], fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        self._out = out
        self._fmt = fmt
        self._csv: Any = None
        self.count = 0

    def header(self) -> None:
        """Write what comes before the records (CSV's header row, the table's heads)."""
        if self._fmt == "csv":
            self._csv = csv.writer(self._out, lineterminator="\n")
            self._csv.writerow(EXPORT_FIELDS)
        elif self._fmt == "table":
            self._row(tuple(name for name, _ in _TABLE_COLUMNS))
            self._row(tuple("-" * width for _, width in _TABLE_COLUMNS))

    def write(self, record: Record) -> None:
        """Write one record."""
        self.count += 1
        if self._fmt == "jsonl":
            # One write a line: unbuffered (PYTHONUNBUFFERED=1), each write is a write()
            # call, and a kill between two would leave a torn line.
            line = orjson.dumps(record.to_dict(), option=orjson.OPT_APPEND_NEWLINE)
            self._out.write(line.decode())
        elif self._fmt == "csv":
            self._csv.writerow(["" if v is None else v for v in record.to_dict().values()])
        else:
            self._row(_table_cells(record))

    def _row(self, cells: tuple[str, ...]) -> None:
        parts = [
            cell.ljust(width) if len(cell) <= width else cell[: width - 1] + "…"
            for cell, (_, width) in zip(cells, _TABLE_COLUMNS, strict=True)
        ]
        self._out.write("  ".join(parts).rstrip() + "\n")
