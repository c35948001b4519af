"""Records into a Parquet file, with pyarrow (imported only when asked for).

pyarrow is not a dependency: ``records --format parquet`` checks for it before any
request and names the install command when it is missing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import IO, Any

from ._exceptions import ValidationError
from ._models import Record
from ._output import EXPORT_FIELDS

__all__ = [
    "INSTALL_HINT",
    "ROWS_PER_GROUP",
    "ParquetRecordWriter",
    "parquet_schema",
    "require_pyarrow",
]

INSTALL_HINT = "pip install pyarrow"
#: Records held before they are written as one row group: memory stays bounded.
ROWS_PER_GROUP = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)

#: Each column's type, made from the pyarrow module; the columns are `EXPORT_FIELDS`.
_TYPES: dict[str, Callable[[Any], Any]] = {
    "record_id": lambda pa: pa.int64(),
    "sn": lambda pa: pa.string(),
    "image_id": lambda pa: pa.string(),
    "create_at": lambda pa: pa.int64(),
    "created_at": lambda pa: pa.timestamp("ms", tz="UTC"),
    "user_id": lambda pa: pa.int64(),
    "verify_score": lambda pa: pa.float64(),
    "device_timestamp": lambda pa: pa.int64(),
    "timezone": lambda pa: pa.string(),
    "extend": lambda pa: pa.string(),
    "matched": lambda pa: pa.bool_(),
}


def require_pyarrow() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or a `ValidationError` naming the install command."""
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise ValidationError(
            f"--format parquet needs pyarrow, which is not installed; install it with: "
            f"{INSTALL_HINT}",
            field="--format",
        ) from None


def parquet_schema(pa: Any) -> Any:
    """The file's schema: the columns of `Record.to_dict`, ``created_at`` a UTC
    timestamp (milliseconds), ``user_id``, ``verify_score`` and the others nullable."""
    return pa.schema([(name, _TYPES[name](pa)) for name in EXPORT_FIELDS])


class ParquetRecordWriter:
    """Stream records into a Parquet file on ``out`` (binary), a row group at a time.

    >>> with open("week.parquet", "wb") as out:  # doctest: +SKIP
    ...     writer = ParquetRecordWriter(out)
    ...     writer.header()
    ...     for record in records:
    ...         writer.write(record)
    ...     writer.close()
    """

    def __init__(self, out: IO[bytes], rows_per_group: int = ROWS_PER_GROUP) -> None:
        self._pa, self._pq = require_pyarrow()
        self._schema = parquet_schema(self._pa)
        self._out = out
        self._rows_per_group = rows_per_group
        self._columns: dict[str, list[Any]] = {name: [] for name in EXPORT_FIELDS}
        self._file: Any = None
        self.count = 0

    def header(self) -> None:
        """Open the file (an empty range still gives a file with every column)."""
        self._file = self._pq.ParquetWriter(self._out, self._schema)

    def write(self, record: Record) -> None:
        """Add one record; a full row group goes to the file."""
        self.count += 1
        row = record.to_dict()
        row["created_at"] = (record.created_at - _EPOCH) // _MS
        for name, column in self._columns.items():
            column.append(row[name])
        if len(self._columns["record_id"]) >= self._rows_per_group:
            self._flush()

    def close(self) -> None:
        """Write what is held and the file's footer (``out`` stays open)."""
        if self._file is None:
            return
        self._flush()
        self._file.close()
        self._file = None

    def _flush(self) -> None:
        if not self._columns["record_id"]:
            return
        table = self._pa.Table.from_pydict(self._columns, schema=self._schema)
        self._file.write_table(table)
        for column in self._columns.values():
            column.clear()
