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

import attrs
import orjson

from ._checkpoint import CheckpointInUseError
from ._checks import shown
from ._dsn import UNPARSED_DSN as UNPARSED_DSN
from ._dsn import HiddenDsn, to_dsn
from ._dsn import redact_dsn as redact_dsn
from ._exceptions import ValidationError
from ._follow import state_covers
from ._pgsession import CheckpointLostError as CheckpointLostError
from ._pgsession import CheckpointUnavailableError as CheckpointUnavailableError
from ._pgsession import Session, SessionLost, connect
from ._public import rehome

__all__ = ["CheckpointLostError", "CheckpointUnavailableError", "PostgresCheckpoint"]

logger = logging.getLogger("senselink_plus")

DEFAULT_TABLE = "senselink_checkpoints"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_MAX_NAME = 200
#: A standby's first wait; it doubles up to ``standby_poll``.
_FIRST_POLL = 0.05

# --- every statement the checkpoint sends ------------------------------------------------
# ``{table}`` is the table's name (an SQL identifier, checked at construction); every
# value is a parameter.

#: Serialises creating the table: workers starting together must not race.
_CREATE_LOCK = "SELECT pg_advisory_xact_lock($1)"
_CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS {table} (name text PRIMARY KEY, state jsonb, "
    "fence bigint NOT NULL DEFAULT 0, saved_at timestamptz)"
)
#: The lease is keyed on the table itself (its oid), whatever its spelling.
_TABLE_OID = "SELECT to_regclass($1)::oid"
#: The lease lives as long as its session: an idle_session_timeout (PostgreSQL 14+)
#: set for the role or database must not end it.
_KEEP_IDLE_SESSION = (
    "SELECT set_config(name, '0', false) FROM pg_settings WHERE name = 'idle_session_timeout'"
)
_TRY_LOCK = "SELECT pg_try_advisory_lock($1)"
_UNLOCK = "SELECT pg_advisory_unlock($1)"
#: +1 at every lease taken: a stale holder's save matches no row.
_TAKE_FENCE = (
    "INSERT INTO {table} AS c (name, fence) VALUES ($1, 1) "
    "ON CONFLICT (name) DO UPDATE SET fence = c.fence + 1 RETURNING c.fence"
)
_LOAD = "SELECT state FROM {table} WHERE name = $1"
#: In a save's transaction: this session holds the lock ($2, $3: the key's halves), and
#: the row's fence, locked FOR UPDATE so that no takeover commits in between.
_CHECK_LEASE = (
    "SELECT c.fence, EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' "
    "AND l.pid = pg_backend_pid() AND l.granted AND l.classid = $2 AND l.objid = $3 "
    "AND l.objsubid = 1) AS held FROM {table} c WHERE c.name = $1 FOR UPDATE OF c"
)
_WRITE = "UPDATE {table} SET state = $2::jsonb, saved_at = now() WHERE name = $1 AND fence = $3"
#: A save on its own, in one round trip: fenced as a transaction's save is (the row's
#: fence is ours, and this session holds the lock: $4, $5), or it matches no row.
_SAVE = (
    "UPDATE {table} SET state = $2::jsonb, saved_at = now() WHERE name = $1 AND fence = $3 "
    "AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' "
    "AND l.pid = pg_backend_pid() AND l.granted AND l.classid = $4 AND l.objid = $5 "
    "AND l.objsubid = 1)"
)


def _lock_key(table: str, name: str) -> int:
    digest = hashlib.sha256(f"senselink-plus checkpoint {table} {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


#: Serialises creating the table, whatever its name or spelling.
_CREATE_KEY = _lock_key("", "create table")

#: Whether a state counts as acknowledged every record another does (one rule for
#: every checkpoint: `senselink_plus._follow.state_covers`).
covers = state_covers


# --- what the constructor accepts -----------------------------------------------------------


def _must(ok: Callable[[Any], bool], rule: str) -> Callable[[Any, Any, Any], None]:
    """An attrs validator: the value passes ``ok``, or a `ValidationError` names the
    field, the ``rule`` and the value."""

    def check(_: object, field: attrs.Attribute[Any], value: object) -> None:
        if not ok(value):
            message = f"{field.name} must be {rule}, not {shown(value)}"
            raise ValidationError(message, field=field.name)

    return check


def _is_name(name: object) -> bool:
    # A NUL would end the connection's application_name in the startup packet and
    # inject settings of its own (search_path, say).
    if not isinstance(name, str):
        return False
    return bool(name.strip()) and len(name) <= _MAX_NAME and name.isprintable()


def _is_table(table: object) -> bool:
    return isinstance(table, str) and all(_IDENT.fullmatch(p) for p in table.split(".", 1))


def _is_seconds(low: float, high: float) -> Callable[[object], bool]:
    return lambda value: (
        isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
    )


def _is_whole(low: int, high: int) -> Callable[[object], bool]:
    return lambda value: type(value) is int and low <= value <= high


def _or_asyncio_sleep(
    sleep: Callable[[float], Awaitable[None]] | None,
) -> Callable[[float], Awaitable[None]]:
    return asyncio.sleep if sleep is None else sleep


@attrs.define(eq=False, repr=False)
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
    machine went silent (TCP keepalives), freeing the lease; it also bounds each
    statement of the checkpoint's own (BEGIN and COMMIT included). ``connect_timeout``:
    seconds to reach the database. ``sleep``: how a standby waits (for tests).
    """

    _dsn: HiddenDsn = attrs.field(converter=to_dsn)
    name: str = attrs.field(
        validator=_must(
            _is_name,
            f"a non-empty printable string of at most {_MAX_NAME} characters "
            "(no NUL, line breaks or control characters)",
        )
    )
    table: str = attrs.field(
        default=DEFAULT_TABLE,
        kw_only=True,
        validator=_must(_is_table, "an SQL identifier (optionally schema.table)"),
    )
    wait: bool = attrs.field(default=True, kw_only=True, converter=bool)
    standby_poll: float = attrs.field(
        default=0.5, kw_only=True, validator=_must(_is_seconds(0.01, 60), "seconds from 0.01 to 60")
    )
    dead_after: int = attrs.field(
        default=10,
        kw_only=True,
        validator=_must(_is_whole(2, 3600), "whole seconds from 2 to 3600"),
    )
    connect_timeout: float = attrs.field(
        default=10.0,
        kw_only=True,
        validator=_must(_is_seconds(0.1, 600), "seconds from 0.1 to 600"),
    )
    _sleep: Callable[[float], Awaitable[None]] = attrs.field(
        default=None, kw_only=True, converter=_or_asyncio_sleep
    )
    #: Seconds the last `acquire` waited as a standby.
    waited: float = attrs.field(default=0.0, init=False)
    # The lease: its lock's key (from the table's oid: every spelling of the table takes
    # the same lock), its session, and its fence.
    _key: int = attrs.field(default=0, init=False)
    _session: Session | None = attrs.field(default=None, init=False)
    _fence: int = attrs.field(default=0, init=False)
    # One statement stream per connection: saves and transactions take turns.
    _turn: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)
    _open_tx: asyncpg.Connection | None = attrs.field(default=None, init=False)
    _pending: Mapping[str, Any] | None = attrs.field(default=None, init=False)
    #: The last state committed by `save_in`; a plain `save` never goes behind it.
    _committed: Mapping[str, Any] | None = attrs.field(default=None, init=False)

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
        session = self._session
        return None if session is None or session.conn.is_closed() else self._fence

    @property
    def backend_pid(self) -> int | None:
        """The server process of the lease's session (None when no lease is held)."""
        session = self._session
        return None if session is None else session.conn.get_server_pid()

    # --- the lease -----------------------------------------------------------------

    async def acquire(self) -> None:
        """Take the lease, waiting as a standby while another watcher holds it (or raise
        `CheckpointInUseError` at once when ``wait=False``).

        A standby whose session is lost (ended, dropped, or silent past ``dead_after``)
        reconnects and keeps waiting; only a first connection that fails, or a
        statement the database refuses, ends it.
        """
        if self._session is not None:
            raise CheckpointInUseError(
                f"checkpoint {self.where} is already in use by a watch of this object"
            )
        started = time.monotonic()
        session = await self._set_up(await self._connect())
        try:
            while (fence := await self._standby(session)) is None:
                session = await self._reconnect(session)
        except BaseException:
            session.conn.terminate()
            raise
        self.waited = time.monotonic() - started
        session.leased = True
        self._session, self._fence, self._committed = session, fence, None
        logger.info(
            "checkpoint %s: lease taken (fence %s; waited %.3f s as a standby)",
            self.where,
            fence,
            self.waited,
        )

    async def _standby(self, session: Session) -> int | None:
        """Try for the lock until this session holds it, then take the fence; None when
        the session is lost meanwhile (reconnect). Raises `CheckpointInUseError` when
        ``wait=False`` and another holds it."""
        delay = _FIRST_POLL
        try:
            while not await session.run("fetchval", _TRY_LOCK, self._key):
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
            return int(await session.run("fetchval", _TAKE_FENCE, self.name))
        except SessionLost:
            if self.wait:
                return None
            raise

    async def _reconnect(self, lost: Session) -> Session:
        """A new session for a standby whose session was lost: tried again and again
        (backing off to ``max(standby_poll, 2)`` seconds), for a standby waits. Each try
        is bounded: ``connect_timeout`` to connect, ``dead_after`` per statement."""
        lost.conn.terminate()
        delay = _FIRST_POLL
        while True:
            logger.warning(
                "checkpoint %s: the standby's database session was lost; reconnecting",
                self.where,
            )
            await self._sleep(min(delay, max(self.standby_poll, 2.0)))
            delay *= 2
            try:
                session = await self._connect()
            except CheckpointUnavailableError:
                continue  # still out of reach
            with contextlib.suppress(SessionLost):
                return await self._set_up(session)

    async def release(self) -> None:
        """Drop the lease and close the connection (never raises: a lost connection has
        dropped the lease already)."""
        session, self._session = self._session, None
        if session is not None:
            await session.close(_UNLOCK, self._key)

    async def _connect(self) -> Session:
        conn = await connect(
            self._dsn, self.name, dead_after=self.dead_after, timeout=self.connect_timeout
        )
        return Session(conn, self.where, self.table, self.dead_after)

    async def _set_up(self, session: Session) -> Session:
        """Create the table if it is missing and key the lease on it (the session is
        ended when this fails)."""
        try:
            async with session.transaction():
                await session.run("execute", _CREATE_LOCK, _CREATE_KEY)
                await session.run("execute", _CREATE_TABLE)
                oid = await session.run("fetchval", _TABLE_OID, self.table)
                await session.run("execute", _KEEP_IDLE_SESSION)
        except BaseException:
            session.conn.terminate()
            raise
        self._key = _lock_key(f"oid {oid}", self.name)
        return session

    # --- the protocol --------------------------------------------------------------

    async def load(self) -> Mapping[str, Any] | None:
        """The state last saved under this name, or None (needs the lease)."""
        async with self._turn:
            raw = await self._holding().run("fetchval", _LOAD, self.name)
        if raw is None:
            return None
        state = orjson.loads(raw)
        if not isinstance(state, dict):
            raise ValidationError(
                f"checkpoint {self.where} does not hold a JSON object", field="checkpoint"
            )
        return state

    async def save(self, state: Mapping[str, Any]) -> None:
        """Keep ``state``, fenced: one UPDATE (one round trip, committed on its own) that
        matches the row only while this session holds the lease's lock and fence. A
        state behind the one last written (by `save_in` or here) is not written: a
        saved position never moves backwards; nor is the one just written again."""
        payload = orjson.dumps(state).decode()
        async with self._turn:
            session = self._holding()
            committed = self._committed
            if committed is not None and (state == committed or not covers(state, committed)):
                return
            status = await session.run(
                "execute", _SAVE, self.name, payload, self._fence, *self._key_halves
            )
            if status != "UPDATE 1":
                async with self._fenced(session):  # says which: the lock, or the fence
                    pass
                raise CheckpointLostError(
                    f"checkpoint {self.where}: the lease's row is gone; nothing is saved"
                )
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
            session = self._holding()
            self._pending = None
            async with self._fenced(session):
                self._open_tx = session.conn
                try:
                    yield session.conn
                finally:
                    self._open_tx = None
            if self._pending is not None:
                self._committed = self._pending

    async def save_in(self, conn: asyncpg.Connection, state: Mapping[str, Any] | None) -> None:
        """Save ``state`` inside the open `transaction` whose connection is ``conn``
        (pass ``watch.state``): it commits with the rows written there.

        >>> await checkpoint.save_in(conn, watch.state)  # doctest: +SKIP
        """
        session = self._session
        if session is None or conn is not self._open_tx:
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
        await self._write(session, orjson.dumps(state).decode())
        self._pending = state

    def _holding(self) -> Session:
        session = self._session
        if session is None:
            raise ValidationError(
                f"checkpoint {self.where} holds no lease: call acquire() first "
                "(watch() does), and use it only while the watch runs",
                field="checkpoint",
            )
        if session.conn.is_closed():
            raise session.lost("closed")
        return session

    @property
    def _key_halves(self) -> tuple[int, int]:
        """The lock's key as `pg_locks` shows it (classid, objid)."""
        unsigned = self._key & 0xFFFF_FFFF_FFFF_FFFF
        return unsigned >> 32, unsigned & 0xFFFF_FFFF

    @contextlib.asynccontextmanager
    async def _fenced(self, session: Session) -> AsyncIterator[None]:
        """A transaction that first checks the lease: this session still holds the lock,
        and the row's fence is ours (locked until the commit)."""
        async with session.transaction():
            row = await session.run("fetchrow", _CHECK_LEASE, self.name, *self._key_halves)
            if row is None or not row["held"]:
                raise CheckpointLostError(
                    f"checkpoint {self.where}: this session no longer holds the lease's "
                    "lock; nothing is saved"
                )
            if row["fence"] != self._fence:
                raise CheckpointLostError(
                    f"checkpoint {self.where}: another watcher took the lease over "
                    f"(fence {row['fence']}, ours {self._fence}); nothing is saved"
                )
            yield

    async def _write(self, session: Session, payload: str) -> None:
        status = await session.run("execute", _WRITE, self.name, payload, self._fence)
        if status != "UPDATE 1":
            raise CheckpointLostError(
                f"checkpoint {self.where}: another watcher took the lease over; nothing is saved"
            )


rehome(globals(), __all__, __name__)
