"""`Client.watch`: the async driver that follows new records. It does the I/O (polls,
sleeps, checkpoint calls); every decision is `_follow`'s, the server's clock is
`_serverclock`'s, saving is `_saving`'s, a stop request is `_stopping`'s, and the
checkpoint protocol is `_checkpoint`'s."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Literal

from . import _endpoints as ep
from ._checkpoint import Checkpoint, as_checkpoint, checkpoint_call
from ._checks import check_seconds
from ._exceptions import (
    ClientClosedError,
    EventLoopError,
    RedirectError,
    SenseLinkError,
    ValidationError,
)
from ._follow import PollFailures, Position, Query, Verdict
from ._http import HttpRequest
from ._models import Order, Record, RecordPage
from ._pagination import RecordPager
from ._saving import Saved, Saves
from ._serverclock import ServerClock
from ._session import Session
from ._stopping import Stopped, StopRequest
from ._timeutil import MAX_WINDOW, to_aware

__all__ = ["Watch", "watch_records"]

logger = logging.getLogger("senselink_plus")

#: Errors no later poll would do better on: they end the watch instead of a retry.
_ENDS_WATCH = (ValidationError, ClientClosedError, EventLoopError, RedirectError)

#: The start probe looks this far either side of the local clock.
_PROBE_SPAN = timedelta(minutes=30)


class Watch:
    """What `Client.watch` returns: an async iterator of new records, with explicit
    acknowledgement, a clean stop, and the position to save with your own writes.

    Made by `Client.watch` (its arguments: ``sn``, ``since``, ``checkpoint``,
    ``poll_interval``, ``overlap``, ``timeout``, ``acks``, ``durable_acks``); its own
    constructor is internal.

    When a record counts as handled (acknowledged), so a restart does not repeat it:

    - asking for the next record acknowledges the one before;
    - leaving ``async with client.watch(...) as watch:`` normally (``break``
      included, or after `stop`) acknowledges the record in hand; leaving it by an
      exception does not (at least once: it comes again);
    - `ack` acknowledges explicitly; with ``acks="explicit"`` only `ack` does (for
      records handed to other tasks), in delivery order;
    - a saved position never moves backwards, whoever saved it.

    An acknowledged record does not come again after the process is killed (``kill
    -9``, an OOM kill): the acknowledgement survives a process kill before the watch
    hands out the next record, and before ``await watch.ack(record)`` returns
    (`FileCheckpoint`: an entry in its journal, already when ``ack`` returns;
    `PostgresCheckpoint`: one fenced UPDATE; your own checkpoint: its ``save``).
    Against a power loss or an OS crash a `FileCheckpoint` holds what its last fsync'd
    save holds: records acknowledged since may come again (at least once).
    ``durable_acks=False`` saves acknowledgements with the coalesced saves instead
    (after each page, each second): faster with a database or a slow ``save``, and a
    restart may repeat the records acknowledged since the last save.

    `stop` (safe from a signal handler or another task) ends the iteration at the next
    record boundary, after saving. `state` is the checkpoint state to save once every
    record yielded so far is handled, for saving the position in the same transaction
    as your own writes.

    >>> async with client.watch(checkpoint="state.json") as watch:  # doctest: +SKIP
    ...     loop = asyncio.get_running_loop()
    ...     for signum in (signal.SIGINT, signal.SIGTERM):
    ...         loop.add_signal_handler(signum, watch.stop)
    ...     async for record in watch:
    ...         await handle(record)
    """

    def __init__(self, follower: _Follower) -> None:
        self._follower = follower
        self._run = follower.run()

    def __repr__(self) -> str:
        return f"<Watch {self._follower.query.describe()}>"

    def __aiter__(self) -> Watch:
        return self

    def __anext__(self) -> Awaitable[Record]:
        return self._run.__anext__()

    def asend(self, value: None) -> Awaitable[Record]:
        """As an async generator's ``asend``."""
        return self._run.asend(value)

    def athrow(self, error: BaseException) -> Awaitable[Record]:
        """Raise ``error`` inside the watch, at the point it yielded (as a generator's)."""
        return self._run.athrow(error)

    def ack(self, record: Record) -> Awaitable[None]:
        """Acknowledge ``record``: handled, so a restart does not deliver it again. The
        oldest record delivered and not yet acknowledged is the only one that may be
        acknowledged; any other (twice, out of order, never delivered, or after the
        watch ended) is a `ValidationError` and changes nothing.

        Awaiting the result waits until the acknowledgement survives a process kill
        (with a `FileCheckpoint` it already does when ``ack`` returns; with another
        checkpoint, once its save holds it). Not awaiting it is fine: the save runs
        beside, and its failure ends the watch. With a `PostgresCheckpoint`, await it
        after a ``checkpoint.transaction()`` block, not inside: the save waits for
        the transaction to end.

        >>> async for record in watch:  # doctest: +SKIP
        ...     await handle(record)
        ...     await watch.ack(record)  # saved, even before the next record arrives
        """
        return self._follower.ack(record)

    def stop(self) -> None:
        """End the iteration cleanly: at the next record boundary (at once while the
        watch waits for a poll, a back-off or its checkpoint's lock), after saving.
        Safe to call from a signal handler, another task or another thread; calling it
        again does nothing.

        >>> loop = asyncio.get_running_loop()  # doctest: +SKIP
        >>> loop.add_signal_handler(signal.SIGTERM, watch.stop)  # doctest: +SKIP
        """
        self._follower.stop.request()

    async def aclose(self) -> None:
        """Close: the acknowledged position is saved, the lock released."""
        await self._run.aclose()

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._follower.ack_in_hand()
        await self.aclose()

    @property
    def state(self) -> Mapping[str, Any] | None:
        """The checkpoint state to save once every record yielded so far is handled
        (None before the watch knows where it starts). A small JSON-able mapping."""
        return self._follower.state()


def watch_records(
    session: Session,
    base_url: str,
    app_key: str,
    *,
    sn: str | None,
    since: datetime | str | None,
    poll_interval: float,
    checkpoint: str | os.PathLike[str] | Checkpoint | None,
    overlap: timedelta,
    acks: Literal["auto", "explicit"] = "auto",
    durable_acks: bool = True,
) -> Watch:
    """Check the arguments now, then return the `Watch` (which starts when iterated);
    its calls go through ``session`` to ``base_url``."""
    if acks not in ("auto", "explicit"):
        raise ValidationError(f"acks must be 'auto' or 'explicit', not {acks!r}", field="acks")
    if not isinstance(durable_acks, bool):
        raise ValidationError(
            f"durable_acks must be True or False, not {type(durable_acks).__name__}",
            field="durable_acks",
        )
    store = as_checkpoint(checkpoint)
    interval = check_seconds(poll_interval, "poll_interval")
    if not isinstance(overlap, timedelta) or not timedelta(0) <= overlap <= MAX_WINDOW:
        raise ValidationError(
            f"overlap must be a timedelta from 0 to {MAX_WINDOW}", field="overlap"
        )
    start = None if since is None else to_aware(since, "since").astimezone(timezone.utc)
    query = Query.of(app_key, sn=None if sn is None else ep.check_sn(sn))
    follower = _Follower(
        session,
        base_url,
        query,
        start,
        interval,
        store,
        overlap,
        explicit=acks == "explicit",
        durable_acks=durable_acks,
    )
    return Watch(follower)


async def _next_page(pages: AsyncIterator[RecordPage]) -> RecordPage | None:
    try:
        return await anext(pages)
    except StopAsyncIteration:
        return None


class _Follower:
    """One watch's I/O: polls, sleeps and checkpoint calls around a `Position`."""

    def __init__(
        self,
        session: Session,
        base_url: str,
        query: Query,
        since: datetime | None,
        interval: float,
        store: Checkpoint | None,
        overlap: timedelta,
        *,
        explicit: bool,
        durable_acks: bool,
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.query = query
        self.since = since
        self.interval = interval
        self.overlap = overlap
        self.explicit = explicit
        self.position: Position | None = None
        self.saves = Saves(store, session.timer, self._acknowledged, durable_acks=durable_acks)
        self.clock = ServerClock(session.clock, session.server_time)
        self.stop = StopRequest()
        self.failed: SenseLinkError | None = None
        self.ended = False

    # --- what the consumer calls ------------------------------------------------------

    def state(self) -> dict[str, Any] | None:
        position = self.position
        return None if position is None else position.state(delivered=True)

    def _acknowledged(self) -> dict[str, Any] | None:
        position = self.position
        return None if position is None else position.state()

    def ack(self, record: object) -> Saved:
        if not isinstance(record, Record):
            raise ValidationError(
                f"ack() takes a Record the watch yielded, not {type(record).__name__}",
                field="record",
            )
        position = self.position
        if self.ended or position is None:
            why = "the watch has ended" if self.ended else "the watch has delivered nothing"
            raise ValidationError(
                f"record {record.record_id} cannot be acknowledged: {why}", field="record"
            )
        position.ack(record)
        return self.saves.acked(beside=True)

    def ack_in_hand(self) -> None:
        """Leaving ``async with`` normally: the record in hand is handled (and saved as
        the watch closes)."""
        if self.explicit or self.ended or self.position is None:
            return
        if self.position.unacknowledged:
            self.position.ack_all()
            self.saves.acked()

    # --- where it starts, what a poll reads -------------------------------------------

    async def _probe(self) -> Position:
        """Where a watch without ``since`` or a saved position starts: right after the
        newest record stored, read from one small listing of the half hour either side
        of now (the cloud refuses clocks further off). When that listing is empty the
        watch starts where it begins: nothing was stored from there on, so whatever
        appears there later is new, whichever clock stamped it (a ``Date`` that runs
        ahead of ``create_at`` hides nothing)."""
        session = self.session
        local = datetime.fromtimestamp(session.clock(), timezone.utc)
        session.check_open()
        request = ep.build_list_records(
            self.base_url,
            local - _PROBE_SPAN,
            local + _PROBE_SPAN,
            sn=self.query.sn,
            order=Order.DESCENDING,
            size=1,
        )
        page = await session.fetch(request, ep.parse_record_page)
        if not page.records:
            return Position.fresh(self.query, local - _PROBE_SPAN, self.overlap)
        newest = page.records[0]
        self.clock.listed(newest.created_at)
        return Position.after(self.query, newest, self.overlap)

    def _pager(self, lo: datetime, hi: datetime) -> RecordPager:
        """One poll: the records of ``[lo, hi]``, oldest first, one call at a time."""
        self.session.check_open()
        return RecordPager(
            self._fetch_page,
            self.base_url,
            lo,
            hi,
            sn=self.query.sn,
            order=Order.ASCENDING,
            page_size=ep.MAX_PAGE_SIZE,
            concurrency=1,
            max_items=None,
            pause=self.session.pause,
        )

    def _fetch_page(self, request: HttpRequest) -> Awaitable[RecordPage]:
        return self.session.fetch(request, ep.parse_record_page)

    # --- the loop: begin, poll, after a poll, after a failure, finish -------------------

    async def run(self) -> AsyncGenerator[Record, None]:
        self.stop.bind()
        ending: BaseException | None = None
        try:
            await self._begin()
            failures = PollFailures(self.interval, self.session.rng)
            while True:
                window = await self._window()
                if window is not None:
                    async with contextlib.aclosing(self._listed(*window)) as listed:
                        async for record in listed:
                            yield record
                            # The consumer asked for the next one: done with this one.
                            if await self._moved_on():
                                return
                if self.failed is None and window is not None:
                    failures.succeeded()
                    await self._after_poll(window[1])
                else:
                    await self._after_failure(failures)
        except Stopped:
            return
        except BaseException as exc:
            ending = exc
            raise
        finally:
            await self._finish(ending)

    async def _begin(self) -> None:
        """Take the checkpoint's lock, read the saved position (or start at ``since``)."""
        store = self.saves.store
        state = None
        if store is not None:
            acquire = getattr(store, "acquire", None)
            if acquire is not None:
                await self.stop.unless_stopped(checkpoint_call(acquire()))
                self.saves.acquired = True
            state = await checkpoint_call(store.load())
            self.saves.known(state)
        if state is not None:
            self.position = Position.from_state(state, self.query, self.overlap, repr(store))
        elif self.since is not None:
            self.position = Position.fresh(self.query, self.since, self.overlap)
            # Saved at once, so a restart before the first record resumes from here.
            await self.saves.now(changed=True)

    async def _window(self) -> tuple[datetime, datetime] | None:
        """The next poll's range (probing where to start first, if need be); None when
        the probe failed (`failed` says why)."""
        self.failed = None
        if self.position is None:
            try:
                self.position = await self.stop.unless_stopped(self._probe())
            except _ENDS_WATCH:
                raise
            except SenseLinkError as exc:
                self.failed = exc
                return None
            # Saved at once, so a restart before the first record resumes from here
            # rather than from its own "now".
            await self.saves.now(changed=True)
        return self.position.window(self.clock.now())

    async def _listed(self, lo: datetime, hi: datetime) -> AsyncGenerator[Record, None]:
        """The new records of one poll of ``(lo, hi)``, each delivered as it is yielded.
        Only the poll is guarded: what the consumer throws in is theirs, never taken
        for a failed poll."""
        position = self.position
        assert position is not None
        async with contextlib.aclosing(self._pager(lo, hi).pages()) as pages:  # type: ignore[type-var]
            while True:
                try:
                    page = await self.stop.unless_stopped(_next_page(pages))
                except _ENDS_WATCH:
                    raise
                except SenseLinkError as exc:
                    self.failed = exc
                    return
                if page is None:
                    return
                if page.records:
                    self.clock.listed(max(r.created_at for r in page.records))
                for record in page.records:
                    if self._is_new(position, record, lo, hi):
                        position.deliver(record)
                        yield record
                self.saves.soon()  # the page's records are handled

    def _is_new(self, position: Position, record: Record, lo: datetime, hi: datetime) -> bool:
        verdict = position.verdict(record, lo, hi)
        if verdict is Verdict.OUTSIDE:
            logger.warning(
                "watch: skipped record %d stored at %s, outside the polled window %s .. %s",
                record.record_id,
                record.created_at.isoformat(),
                lo.isoformat(),
                hi.isoformat(),
            )
        elif verdict is Verdict.NEW:
            self.clock.check_late(position, record)
        return verdict is Verdict.NEW

    async def _moved_on(self) -> bool:
        """The consumer asked for the next record: the one in hand is acknowledged, and
        survives a process kill before the next is handed out. True when the watch
        should stop."""
        position = self.position
        if not self.explicit and position is not None and position.unacknowledged:
            position.ack_all()
            self.saves.acked()
            await self.saves.flush()
        return self.stop.requested

    async def _after_poll(self, hi: datetime) -> None:
        """A poll read all of ``(lo, hi)``: move an idle position (in ``create_at``'s
        clock: the ``Date`` less how far it may run ahead), save when due, sleep."""
        position = self.position
        assert position is not None
        if position.polled(self.clock.read_complete(hi)):
            self.saves.mark()
        await self.saves.if_due()
        await self.stop.unless_stopped(self.session.wait(self.interval))

    async def _after_failure(self, failures: PollFailures) -> None:
        """A poll failed: back off, or end the watch when failures say so."""
        failed = self.failed
        assert failed is not None
        delay = failures.failed(failed)
        if delay is None:
            logger.warning(
                "watch ends: %d consecutive polls refused (%s: %s)",
                failures.auth,
                type(failed).__name__,
                failed,
            )
            raise failed
        logger.warning(
            "watch poll failed (attempt %d: %s: %s); retrying in %.1fs",
            failures.count,
            type(failed).__name__,
            failed,
            delay,
        )
        await self.stop.unless_stopped(self.session.wait(delay))

    async def _finish(self, ending: BaseException | None) -> None:
        self.ended = True
        try:
            await self.saves.final(ending)
        finally:
            await self.saves.release()
