"""A PostgreSQL session of `senselink_plus.postgres.PostgresCheckpoint`: every wait
bounded, and the one place where a database failure becomes the SDK's error.

Bounds: connecting gets ``connect_timeout`` seconds; every step of the checkpoint's
own on a session (a statement, and BEGIN, COMMIT and ROLLBACK) gets ``dead_after``.
Past its bound a session's fate is unknown, so it is ended (the server then frees its
locks) and counts as lost. Nothing waits on a silent server for longer.

What a failure becomes (`connect`, `Session.lost` and the steps of `Session`):

- connecting failed: `CheckpointUnavailableError` (a DSN asyncpg cannot parse:
  `ValidationError`, without asyncpg's message, which may quote the password);
- the session is gone (closed, ended by the server, broken, or silent past its bound):
  it is ended, then `CheckpointLostError` for the lease's session, `SessionLost` for a
  session taking the lease (a standby reconnects);
- the server refused a statement of the checkpoint's own: `CheckpointUnavailableError`;
- your code in a `Session.transaction` failed: your error, untouched, unless the
  session is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import attrs

from ._dsn import HiddenDsn
from ._exceptions import SenseLinkError, ValidationError

__all__ = [
    "CheckpointLostError",
    "CheckpointUnavailableError",
    "Session",
    "SessionLost",
    "connect",
]

# asyncpg raises `InternalClientError` (not an `InterfaceError`) for the next statement
# when the server's FATAL "terminating connection" reached an idle session before its
# socket closed: the session is gone, the connection not yet marked closed.
_BROKEN = asyncpg.exceptions.InternalClientError
#: What a database call can fail with.
_FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, _BROKEN, OSError, asyncio.TimeoutError)
#: What says the session is gone, whoever's statement met it.
_GONE = (
    _BROKEN,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)


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


class SessionLost(CheckpointUnavailableError):
    """The session was lost before the lease was taken (a standby reconnects)."""


def _gone(conn: asyncpg.Connection, exc: BaseException, *, ours: bool) -> bool:
    """Whether ``exc`` means the session is gone or cannot be trusted. A step of the
    checkpoint's own (``ours``): anything but the server's refusal. Your code: only a
    closed connection or the server's word, never a timeout or an OSError of yours."""
    if conn.is_closed() or isinstance(exc, _GONE):
        return True
    return ours and isinstance(exc, _FAILURES) and not isinstance(exc, asyncpg.PostgresError)


def _reason(exc: BaseException, seconds: float) -> str:
    """What went wrong, in words that never quote the DSN."""
    if isinstance(exc, asyncio.TimeoutError):
        return f"no answer within {seconds:g} s"
    if isinstance(exc, asyncpg.PostgresError):
        return f"{type(exc).__name__} ({exc.sqlstate})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


async def connect(
    dsn: HiddenDsn, name: str, *, dead_after: int, timeout: float
) -> asyncpg.Connection:
    """A new connection for checkpoint ``name``, within ``timeout`` seconds, or the typed
    error. The server is asked to drop it after about ``dead_after`` seconds of silence
    from this machine (TCP keepalives), which frees a dead holder's lease."""
    idle = max(1, dead_after // 2)
    settings = {
        "application_name": f"senselink-plus checkpoint {name}"[:63],
        "tcp_keepalives_idle": str(idle),
        "tcp_keepalives_interval": str(max(1, (dead_after - idle) // 5)),
        "tcp_keepalives_count": "5",
    }
    try:
        return await asyncpg.connect(dsn.value, timeout=timeout, server_settings=settings)
    except (*_FAILURES, ValueError) as exc:
        if isinstance(exc, ValueError) and not isinstance(exc, _FAILURES):
            raise ValidationError(
                f"dsn {dsn.redacted} is not a valid PostgreSQL connection string", field="dsn"
            ) from None
        raise CheckpointUnavailableError(
            f"cannot reach the checkpoint database {dsn.redacted} "
            f"(checkpoint {name!r}): {_reason(exc, timeout)}"
        ) from None


@attrs.define(eq=False)
class Session:
    """One connection of a checkpoint (``where``: its table, row and database, for
    messages); ``leased`` once it holds the lease."""

    conn: asyncpg.Connection
    where: str
    table: str
    dead_after: int
    leased: bool = False

    async def run(self, method: str, sql: str, *args: Any) -> Any:
        """Statement ``sql`` (its ``{table}`` filled in) by asyncpg's ``method``."""
        return await self._bounded(getattr(self.conn, method), sql.format(table=self.table), *args)

    async def _bounded(
        self, step: Callable[..., Awaitable[Any]], *args: Any, refusal: bool = True
    ) -> Any:
        """``step(*args)``, given ``dead_after`` seconds; its failure typed (asyncpg's
        transaction methods raise before they return an awaitable: that counts too).
        ``refusal=False`` (the BEGIN, COMMIT and ROLLBACK around your rows): the
        server's refusal stays yours, untouched."""
        try:
            return await asyncio.wait_for(step(*args), self.dead_after)
        except _FAILURES as exc:
            if not refusal and not _gone(self.conn, exc, ours=True):
                raise
            raise self._failed(exc) from None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """asyncpg's transaction (a ``conn.transaction()`` inside is a savepoint), its
        BEGIN, COMMIT and ROLLBACK bounded like every step."""
        tx = self.conn.transaction()
        await self._bounded(tx.start, refusal=False)
        try:
            yield
        except BaseException as exc:
            await self._roll_back(tx, exc)
            raise
        await self._bounded(tx.commit, refusal=False)

    async def _roll_back(self, tx: Any, failure: BaseException) -> None:
        """Undo the transaction ``failure`` ended; raise `lost` when it means the session
        is gone. A cancellation stays a cancellation, whatever the rollback meets."""
        try:
            await self._bounded(tx.rollback, refusal=False)
        except (SenseLinkError, asyncpg.PostgresError):
            if isinstance(failure, Exception):
                raise
            self.conn.terminate()  # the server rolls back as the session ends
            return
        if not isinstance(failure, SenseLinkError) and _gone(self.conn, failure, ours=False):
            raise self.lost(_reason(failure, self.dead_after)) from None

    async def close(self, sql: str, *args: Any) -> None:
        """A last statement, then close; bounded, never raises (the session is ended
        when either fails)."""
        try:
            statement = self.conn.execute(sql.format(table=self.table), *args)
            await asyncio.wait_for(statement, self.dead_after)
            await asyncio.wait_for(self.conn.close(), self.dead_after)
        except _FAILURES:
            self.conn.terminate()

    def _failed(self, exc: BaseException) -> SenseLinkError:
        """A step of the checkpoint's own failed: the session is gone (`lost`), or the
        server refused the statement (`CheckpointUnavailableError`)."""
        if _gone(self.conn, exc, ours=True):
            return self.lost(_reason(exc, self.dead_after))
        detail = exc if isinstance(exc, asyncpg.PostgresError) else ""
        return CheckpointUnavailableError(
            f"checkpoint {self.where}: the database refused the checkpoint's statement "
            f"({type(exc).__name__}: {detail})"
        )

    def lost(self, reason: str) -> SenseLinkError:
        """The session is gone: ended here (so the server frees its locks for sure)."""
        self.conn.terminate()
        if not self.leased:
            return SessionLost(
                f"checkpoint {self.where}: the database connection was lost while taking "
                f"the lease ({reason}); no lease is held"
            )
        return CheckpointLostError(
            f"checkpoint {self.where}: the database connection was lost ({reason}); the "
            "lease went with it (another watcher may hold it now), so this one saves nothing"
        )
