"""A `Client.watch` checkpoint in PostgreSQL: one active watcher per name across
machines (a lease), and a way to write records and the position in one transaction.

Needs the ``postgres`` extra: ``pip install "senselink-plus[postgres]"`` (asyncpg).

>>> checkpoint = PostgresCheckpoint("postgresql://ingest@db/app", name="gate-a")  # doctest: +SKIP
>>> async with client.watch(sn="GATE-A", checkpoint=checkpoint) as watch:  # doctest: +SKIP
...     async for record in watch:
...         async with checkpoint.transaction() as conn:
...             await conn.execute("INSERT INTO seen VALUES ($1)", record.record_id)
...             await checkpoint.save_in(conn, watch.state)

The table (created when missing)::

    CREATE TABLE senselink_checkpoints (
        name     text PRIMARY KEY,           -- the watcher's name
        state    jsonb,                      -- the watch state (as FileCheckpoint's file)
        fence    bigint NOT NULL DEFAULT 0,  -- +1 at every lease taken: a stale
                                             -- holder's save matches no row
        saved_at timestamptz
    )

The lease is a session advisory lock held by the checkpoint's own connection for as
long as the watch runs. The server frees it the moment that session ends: at once when
the holder closes or its process dies (the kernel closes the socket), and within
``dead_after`` seconds (TCP keepalives the checkpoint asks the server for) when the
holder's machine or network vanishes. A standby polls for the lock every
``standby_poll`` seconds, so it takes over within that after the lock is freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

try:
    import asyncpg
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        'senselink_plus.postgres needs asyncpg: pip install "senselink-plus[postgres]"'
    ) from exc

import orjson

from ._checkpoint import CheckpointInUseError
from ._dsn import UNPARSED_DSN as UNPARSED_DSN
from ._dsn import HiddenDsn
from ._dsn import redact_dsn as redact_dsn
from ._exceptions import SenseLinkError, ValidationError
from ._follow import state_covers

__all__ = [
    "CheckpointLostError",
    "CheckpointUnavailableError",
    "PostgresCheckpoint",
]

logger = logging.getLogger("senselink_plus")

DEFAULT_TABLE = "senselink_checkpoints"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_MAX_NAME = 200
#: A standby's first wait; it doubles up to ``standby_poll``.
_FIRST_POLL = 0.05
_TRY_LOCK = "SELECT pg_try_advisory_lock($1)"
#: asyncpg raises this (not an `InterfaceError`) for the next statement when the
#: server's FATAL "terminating connection" reached an idle session before the socket
#: closed: the session is gone, its connection not yet marked closed.
_BROKEN = asyncpg.exceptions.InternalClientError
_FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, _BROKEN, OSError, asyncio.TimeoutError)


class CheckpointUnavailableError(SenseLinkError):
    """The checkpoint database could not be reached (or refused the connection); no
    lease was taken and nothing was read. The message names the server, never the
    password.

    >>> try:  # doctest: +SKIP
    ...     async for record in client.watch(checkpoint=PostgresCheckpoint(dsn, name="a")): ...
    ... except CheckpointUnavailableError as exc:
    ...     print(exc)  # cannot reach the checkpoint database postgresql://db/app: ...
    """


class CheckpointLostError(SenseLinkError):
    """The lease was lost while the watch ran: the checkpoint's connection dropped, or
    another watcher took the lease over. Nothing was saved by the failing call (its
    transaction rolled back); the new holder resumes from the last committed position.

    >>> try:  # doctest: +SKIP
    ...     async for record in watch: ...
    ... except CheckpointLostError as exc:
    ...     print(exc)  # says which: the connection, or another holder
    """


class _SessionLost(CheckpointUnavailableError):
    """The session was lost before the lease was taken (a standby reconnects)."""


def _lock_key(table: str, name: str) -> int:
    digest = hashlib.sha256(f"senselink-plus checkpoint {table} {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


#: Serialises creating the table, whatever its name or spelling.
_CREATE_KEY = _lock_key("", "create table")

#: Whether a state counts as acknowledged every record another does (one rule for
#: every checkpoint: `senselink_plus._follow.state_covers`).
covers = state_covers


def _check_name(name: object) -> None:
    """A watcher's name: printable, not blank, at most `_MAX_NAME` characters. A NUL
    would end the connection's application_name in the startup packet and inject
    settings of its own (search_path, say)."""
    if (
        not isinstance(name, str)
        or not name.strip()
        or len(name) > _MAX_NAME
        or not name.isprintable()
    ):
        raise ValidationError(
            f"name must be a non-empty printable string of at most {_MAX_NAME} "
            "characters (no NUL, line breaks or control characters)",
            field="name",
        )


class PostgresCheckpoint:
    """A watch checkpoint in a PostgreSQL table, row ``name``, with an exclusive lease:
    one watcher per name at a time, across processes and machines.

    `acquire` (the watch calls it) takes the lease; while another watcher holds it, it
    waits as a standby (``wait=True``, the default) or raises `CheckpointInUseError`.
    Every save first checks, in its transaction, that this session still holds the lock
    and the fence it took (a stale holder saves nothing: `CheckpointLostError`).
    For exactly once into the same database, write your rows and ``watch.state`` in
    one `transaction` (see `save_in`).

    >>> checkpoint = PostgresCheckpoint(dsn, name="gate-a")  # doctest: +SKIP
    >>> async for record in client.watch(checkpoint=checkpoint): ...  # doctest: +SKIP

    ``standby_poll``: seconds between a standby's tries (the failover time once the
    lock is free). ``dead_after``: seconds after which the server drops a holder whose
    machine went silent (TCP keepalives), freeing the lease. ``connect_timeout``:
    seconds to reach the database. ``sleep``: how a standby waits (for tests).
    """

    def __init__(
        self,
        dsn: str,
        name: str,
        *,
        table: str = DEFAULT_TABLE,
        wait: bool = True,
        standby_poll: float = 0.5,
        dead_after: int = 10,
        connect_timeout: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if not isinstance(dsn, str) or not dsn.strip():
            raise ValidationError("dsn must be a PostgreSQL connection string", field="dsn")
        _check_name(name)
        if not isinstance(table, str) or not all(
            _IDENT.fullmatch(part) for part in table.split(".", 1)
        ):
            raise ValidationError(
                f"table must be an SQL identifier (optionally schema.table), not {table!r}",
                field="table",
            )
        for field, value, low, high in (
            ("standby_poll", standby_poll, 0.01, 60.0),
            ("connect_timeout", connect_timeout, 0.1, 600.0),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                low <= value <= high
            ):
                raise ValidationError(f"{field} must be seconds from {low} to {high}", field=field)
        if type(dead_after) is not int or not 2 <= dead_after <= 3600:
            raise ValidationError(
                "dead_after must be whole seconds from 2 to 3600", field="dead_after"
            )
        self.name = name
        self.table = table
        self.wait = bool(wait)
        self.standby_poll = float(standby_poll)
        self.dead_after = dead_after
        self.connect_timeout = float(connect_timeout)
        self._sleep = asyncio.sleep if sleep is None else sleep
        self._dsn = HiddenDsn(dsn)
        # The lease's lock key: set by `acquire` from the table's oid, so every spelling
        # of the table (``public.x``, ``X``, ``x``) takes the same lock.
        self._key = 0
        self._key_parts = (0, 0)
        self._conn: asyncpg.Connection | None = None
        self._fence: int | None = None
        # One statement stream per connection: saves and transactions take turns.
        self._turn = asyncio.Lock()
        self._open_tx: asyncpg.Connection | None = None
        self._pending: Mapping[str, Any] | None = None
        #: The last state committed by `save_in`; a plain `save` never goes behind it.
        self._committed: Mapping[str, Any] | None = None
        #: Seconds the last `acquire` waited as a standby.
        self.waited: float = 0.0

    def __repr__(self) -> str:
        return (
            f"PostgresCheckpoint(name={self.name!r}, table={self.table!r}, "
            f"database={self._dsn.redacted!r})"
        )

    @property
    def where(self) -> str:
        """The database and row, for messages (no password)."""
        return f"{self.table}[{self.name!r}] in {self._dsn.redacted}"

    @property
    def fence(self) -> int | None:
        """The fencing token of the lease held (None when none is)."""
        return self._fence if self._conn is not None else None

    @property
    def backend_pid(self) -> int | None:
        """The server process of the lease's session (None when no lease is held)."""
        conn = self._conn
        return None if conn is None else conn.get_server_pid()

    # --- the lease -----------------------------------------------------------------

    async def acquire(self) -> None:
        """Take the lease, waiting as a standby while another watcher holds it (or raise
        `CheckpointInUseError` at once when ``wait=False``).

        A standby whose connection drops or stalls (past ``dead_after``) reconnects and
        keeps waiting; only a first connection that fails, or a statement the database
        refuses, ends it.
        """
        if self._conn is not None:
            raise CheckpointInUseError(
                f"checkpoint {self.where} is already in use by a watch of this object"
            )
        started = time.monotonic()
        conn = await self._connect()
        try:
            await self._setup(conn)
            while not await self._standby(conn):
                conn = await self._reconnect(conn)
            self._fence = await self._query(
                conn,
                "fetchval",
                f"INSERT INTO {self.table} AS c (name, fence) VALUES ($1, 1) "
                "ON CONFLICT (name) DO UPDATE SET fence = c.fence + 1 RETURNING c.fence",
                self.name,
            )
        except BaseException:
            conn.terminate()
            raise
        self.waited = time.monotonic() - started
        self._conn = conn
        self._committed = None
        logger.info(
            "checkpoint %s: lease taken (fence %s; waited %.3f s as a standby)",
            self.where,
            self._fence,
            self.waited,
        )

    async def _standby(self, conn: asyncpg.Connection) -> bool:
        """Try for the lock until this session holds it (True), or until the session is
        lost while waiting (False: reconnect). Raises `CheckpointInUseError` when
        ``wait=False`` and another holds it."""
        delay = _FIRST_POLL
        while True:
            try:
                if await self._query(conn, "fetchval", _TRY_LOCK, self._key):
                    return True
            except _SessionLost:
                if self.wait:
                    return False
                raise
            if not self.wait:
                raise CheckpointInUseError(
                    f"checkpoint {self.where} is in use: another watcher holds its lease"
                )
            if delay == _FIRST_POLL:
                logger.info(
                    "checkpoint %s: another watcher holds the lease; waiting as a standby",
                    self.where,
                )
            await self._sleep(min(delay, self.standby_poll))
            delay *= 2

    async def _reconnect(self, lost: asyncpg.Connection) -> asyncpg.Connection:
        """A new session for a standby whose session was lost: tried again and again
        (backing off to ``max(standby_poll, 2)`` seconds), for a standby waits."""
        lost.terminate()
        delay = _FIRST_POLL
        while True:
            logger.warning(
                "checkpoint %s: the standby's database session was lost; reconnecting",
                self.where,
            )
            await self._sleep(min(delay, max(self.standby_poll, 2.0)))
            delay *= 2
            try:
                conn = await self._connect()
            except CheckpointUnavailableError:
                continue
            try:
                await self._setup(conn)
            except _SessionLost:
                conn.terminate()
                continue
            except BaseException:
                conn.terminate()
                raise
            return conn

    async def release(self) -> None:
        """Drop the lease and close the connection (never raises: a lost connection has
        dropped the lease already)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await asyncio.wait_for(
                conn.execute("SELECT pg_advisory_unlock($1)", self._key), self.dead_after
            )
            await asyncio.wait_for(conn.close(), self.dead_after)
        except _FAILURES:
            conn.terminate()

    # --- the protocol --------------------------------------------------------------

    async def load(self) -> Mapping[str, Any] | None:
        """The state last saved under this name, or None (needs the lease)."""
        async with self._turn:
            conn = self._holding()
            raw = await self._query(
                conn, "fetchval", f"SELECT state FROM {self.table} WHERE name = $1", self.name
            )
        if raw is None:
            return None
        state = orjson.loads(raw)
        if not isinstance(state, dict):
            raise ValidationError(
                f"checkpoint {self.where} does not hold a JSON object", field="checkpoint"
            )
        return state

    async def save(self, state: Mapping[str, Any]) -> None:
        """Keep ``state``, fenced: in a transaction that first checks the lease. A state
        behind the one last written (by `save_in` or here) is not written: a saved
        position never moves backwards."""
        payload = orjson.dumps(state).decode()
        async with self._turn:
            conn = self._holding()
            committed = self._committed
            if committed is not None and not covers(state, committed):
                return
            try:
                async with conn.transaction():
                    await self._check_lease(conn)
                    await self._write(conn, payload)
            except SenseLinkError:
                raise
            except BaseException as exc:
                self._raise_if_lost(conn, exc)
                raise
            self._committed = state  # later saves never go behind it either

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A fenced transaction on the lease's connection: write your rows with the
        connection it yields and save ``watch.state`` with `save_in`; both commit
        together or not at all. Raises `CheckpointLostError` (nothing committed) when
        the lease is gone. Commit each record before asking the watch for the next:
        from then on the watch counts it handled and may save past it.

        >>> async with checkpoint.transaction() as conn:  # doctest: +SKIP
        ...     await conn.execute("INSERT INTO seen VALUES ($1)", record.record_id)
        ...     await checkpoint.save_in(conn, watch.state)
        """
        async with self._turn:
            conn = self._holding()
            self._pending = None
            try:
                async with conn.transaction():
                    await self._check_lease(conn)
                    self._open_tx = conn
                    try:
                        yield conn
                    finally:
                        self._open_tx = None
            except SenseLinkError:
                raise
            except BaseException as exc:
                self._raise_if_lost(conn, exc)
                raise
            if self._pending is not None:
                self._committed = self._pending

    async def save_in(self, conn: asyncpg.Connection, state: Mapping[str, Any] | None) -> None:
        """Save ``state`` inside the open `transaction` whose connection is ``conn``
        (pass ``watch.state``): it commits with the rows written there.

        >>> await checkpoint.save_in(conn, watch.state)  # doctest: +SKIP
        """
        if conn is not self._open_tx:
            raise ValidationError(
                "save_in needs the connection of an open checkpoint.transaction()",
                field="conn",
            )
        if not isinstance(state, Mapping):
            raise ValidationError(
                "state must be the watch's state mapping (watch.state), not "
                f"{type(state).__name__}",
                field="state",
            )
        await self._write(conn, orjson.dumps(state).decode())
        self._pending = state

    # --- inside ----------------------------------------------------------------------

    async def _connect(self) -> asyncpg.Connection:
        idle = max(1, self.dead_after // 2)
        interval = max(1, (self.dead_after - idle) // 5)
        settings = {
            "application_name": f"senselink-plus checkpoint {self.name}"[:63],
            # The server drops a silent holder (machine or network gone) after about
            # dead_after seconds, which frees the lease for a standby.
            "tcp_keepalives_idle": str(idle),
            "tcp_keepalives_interval": str(interval),
            "tcp_keepalives_count": "5",
        }
        try:
            return await asyncpg.connect(
                self._dsn.value, timeout=self.connect_timeout, server_settings=settings
            )
        except _FAILURES as exc:
            reason = type(exc).__name__
            if isinstance(exc, OSError) and exc.strerror:
                reason = exc.strerror
            if isinstance(exc, asyncio.TimeoutError):
                reason = f"no answer within {self.connect_timeout:g} s"
            elif isinstance(exc, asyncpg.PostgresError):
                reason = f"{type(exc).__name__} ({exc.sqlstate})"
            raise CheckpointUnavailableError(
                f"cannot reach the checkpoint database {self._dsn.redacted} "
                f"(checkpoint {self.name!r}): {reason}"
            ) from None
        except ValueError:
            # asyncpg's parse errors may quote the DSN, password included.
            raise ValidationError(
                f"dsn {self._dsn.redacted} is not a valid PostgreSQL connection string",
                field="dsn",
            ) from None

    async def _setup(self, conn: asyncpg.Connection) -> None:
        try:
            async with conn.transaction():
                # Workers starting together must not race to create the table.
                await self._query(conn, "execute", "SELECT pg_advisory_xact_lock($1)", _CREATE_KEY)
                await self._query(
                    conn,
                    "execute",
                    f"CREATE TABLE IF NOT EXISTS {self.table} ("
                    "name text PRIMARY KEY, state jsonb, fence bigint NOT NULL DEFAULT 0, "
                    "saved_at timestamptz)",
                )
                # The lease is keyed on the table itself (its oid), not on its spelling.
                oid = await self._query(
                    conn, "fetchval", "SELECT to_regclass($1)::oid", self.table
                )
                # The lease lives as long as this session: an idle_session_timeout
                # (PostgreSQL 14+) set for the role or database must not end it.
                await self._query(
                    conn,
                    "execute",
                    "SELECT set_config(name, '0', false) FROM pg_settings "
                    "WHERE name = 'idle_session_timeout'",
                )
        except SenseLinkError:
            raise
        except _FAILURES as exc:
            # The rollback after one of the errors above failed too.
            self._raise_if_lost(conn, exc)
            raise
        self._key = _lock_key(f"oid {oid}", self.name)
        unsigned = self._key & 0xFFFF_FFFF_FFFF_FFFF
        self._key_parts = (unsigned >> 32, unsigned & 0xFFFF_FFFF)

    async def _query(self, conn: asyncpg.Connection, method: str, sql: str, *args: Any) -> Any:
        """One of the checkpoint's own statements, bounded by ``dead_after``: a dropped
        connection is a `CheckpointLostError` (`CheckpointUnavailableError` while
        taking the lease), a refusal (no privilege, say) a `CheckpointUnavailableError`."""
        try:
            return await asyncio.wait_for(getattr(conn, method)(sql, *args), self.dead_after)
        except _FAILURES as exc:
            if isinstance(exc, (asyncio.TimeoutError, _BROKEN)):
                # The session's fate is unknown: end it so the server frees the lease.
                conn.terminate()
            self._raise_if_lost(conn, exc, ours=True)
            message = str(exc) if isinstance(exc, asyncpg.PostgresError) else ""
            raise CheckpointUnavailableError(
                f"checkpoint {self.where}: the database refused the checkpoint's statement "
                f"({type(exc).__name__}: {message})"
            ) from None

    def _holding(self) -> asyncpg.Connection:
        conn = self._conn
        if conn is None:
            raise ValidationError(
                f"checkpoint {self.where} holds no lease: call acquire() first "
                "(watch() does), and use it only while the watch runs",
                field="checkpoint",
            )
        if conn.is_closed():
            raise self._lost("closed")
        return conn

    def _raise_if_lost(
        self, conn: asyncpg.Connection, exc: BaseException, *, ours: bool = False
    ) -> None:
        """Raise the typed error when ``exc`` means the connection is gone. An error
        from your own code in a `transaction` counts only if the connection closed or
        the server said so, never a timeout or an OSError of yours."""
        lost = conn.is_closed() or isinstance(
            exc,
            (
                _BROKEN,
                asyncpg.exceptions.ConnectionDoesNotExistError,
                asyncpg.exceptions.PostgresConnectionError,
                asyncpg.exceptions.OperatorInterventionError,
            ),
        )
        if ours and isinstance(exc, (OSError, asyncio.TimeoutError)):
            lost = True
        if not lost:
            return
        timed_out = isinstance(exc, asyncio.TimeoutError)
        reason = "no answer in time" if timed_out else type(exc).__name__
        if conn is not self._conn:
            raise _SessionLost(
                f"checkpoint {self.where}: the database connection was lost while taking "
                f"the lease ({reason}); no lease is held"
            ) from None
        raise self._lost(reason) from None

    def _lost(self, reason: str) -> CheckpointLostError:
        self._fence = None
        return CheckpointLostError(
            f"checkpoint {self.where}: the database connection was lost ({reason}); the "
            "lease went with it (another watcher may hold it now), so this one saves nothing"
        )

    async def _check_lease(self, conn: asyncpg.Connection) -> None:
        """Inside a transaction: this session still holds the lock, and the row's fence
        is ours (locked FOR UPDATE, so no takeover can commit in between)."""
        hi, lo = self._key_parts
        row = await self._query(
            conn,
            "fetchrow",
            f"SELECT c.fence, EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' "
            "AND l.pid = pg_backend_pid() AND l.granted AND l.classid = $2 AND l.objid = $3 "
            f"AND l.objsubid = 1) AS held FROM {self.table} c WHERE c.name = $1 FOR UPDATE OF c",
            self.name,
            hi,
            lo,
        )
        if row is None or not row["held"]:
            raise CheckpointLostError(
                f"checkpoint {self.where}: this session no longer holds the lease's lock; "
                "nothing is saved"
            )
        if row["fence"] != self._fence:
            raise CheckpointLostError(
                f"checkpoint {self.where}: another watcher took the lease over "
                f"(fence {row['fence']}, ours {self._fence}); nothing is saved"
            )

    async def _write(self, conn: asyncpg.Connection, payload: str) -> None:
        status = await self._query(
            conn,
            "execute",
            f"UPDATE {self.table} SET state = $2::jsonb, saved_at = now() "
            "WHERE name = $1 AND fence = $3",
            self.name,
            payload,
            self._fence,
        )
        if status != "UPDATE 1":
            raise CheckpointLostError(
                f"checkpoint {self.where}: another watcher took the lease over; nothing is saved"
            )
