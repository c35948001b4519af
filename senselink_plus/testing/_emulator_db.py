"""The emulator's records and snapshots kept in a SQLite file across restarts.

The in-memory `RecordStore` still answers every request (listing stays O(log n +
page)); this file is its journal: each record stored is written through, and a new
emulator on the same file restores them, with the image ids it gave (the file keeps
the store's tag) and record ids that continue after the last one. Records past
retention are dropped from the file when it is opened. One emulator per file at a
time; enrollments are not kept (they come from code or ``--enroll`` at each start).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing

from ._emulator_store import RecordStore, Row

__all__ = ["RecordFile", "open_store"]

#: Bumped when the layout changes; a file of another version is refused, not guessed at.
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    record_id INTEGER PRIMARY KEY,
    create_at INTEGER NOT NULL,
    device_timestamp INTEGER NOT NULL,
    user_id INTEGER,
    verify_score REAL NOT NULL,
    sn TEXT NOT NULL,
    timezone TEXT,
    extend TEXT,
    image BLOB
);
"""
_INSERT = "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_BATCH = 10_000


class RecordFile:
    """One SQLite file of records. Each write opens, commits and closes a connection,
    so nothing stays open between requests (or after the emulator is gone).

    >>> store = open_store("emu.sqlite", now_ms, retention_ms=90 * 86_400_000)
    ... # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        with self._connect() as conn:
            conn.executescript(_SCHEMA)
            version = self._meta(conn, "version", SCHEMA_VERSION)
            if version != SCHEMA_VERSION:
                raise ValueError(
                    f"{self.path} holds emulator records of layout {version}; this "
                    f"emulator reads layout {SCHEMA_VERSION}: use a new file"
                )
            self.tag = self._meta(conn, "tag", os.urandom(3).hex())

    def _connect(self) -> closing[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()  # e.g. a file that is not a database: never left open
            raise
        return closing(conn)

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str, default: str) -> str:
        """The value under ``key``, first set to ``default`` when there is none."""
        conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, default))
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0])

    def write(self, rows: Iterable[Row]) -> None:
        """Append ``rows`` (the store's journal), in one transaction."""
        with self._connect() as conn:
            conn.execute("BEGIN")
            try:
                batch: list[Row] = []
                for row in rows:
                    batch.append(row)
                    if len(batch) >= _BATCH:
                        conn.executemany(_INSERT, batch)
                        batch.clear()
                conn.executemany(_INSERT, batch)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def rows(self, since_ms: int) -> Iterator[Row]:
        """The records stored at ``since_ms`` or later, ascending ``record_id``; older
        ones (past retention) are deleted first."""
        with self._connect() as conn:
            conn.execute("DELETE FROM records WHERE create_at < ?", (since_ms,))
            yield from conn.execute("SELECT * FROM records ORDER BY record_id")


def open_store(
    path: str | os.PathLike[str],
    now_ms: Callable[[], int],
    *,
    retention_ms: int,
    first_record_id: int = 1_000_000,
) -> RecordStore:
    """A `RecordStore` holding what ``path`` kept, writing each new record to it."""
    file = RecordFile(path)
    store = RecordStore(
        now_ms,
        retention_ms=retention_ms,
        first_record_id=first_record_id,
        tag=file.tag,
        journal=file.write,
    )
    store.restore(file.rows(now_ms() - retention_ms))
    return store
