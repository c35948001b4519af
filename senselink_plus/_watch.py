"""`Client.watch`: the async driver that follows new records. It does the I/O (polls,
sleeps, checkpoint calls); every decision is `_follow`'s, and the checkpoint protocol
is `_checkpoint`'s."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Mapping
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any

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
from ._follow import MAX_SKEW, PollFailures, Position, Query, Verdict, believed_now
from ._http import HttpRequest
from ._models import Order, Record, RecordPage
from ._pagination import RecordPager
from ._session import Session
from ._timeutil import MAX_WINDOW, to_aware

__all__ = ["Watch", "watch_records"]

logger = logging.getLogger("senselink_plus")

#: Errors no later poll would do better on: they end the watch instead of a retry.
_ENDS_WATCH = (ValidationError, ClientClosedError, EventLoopError, RedirectError)

#: Saves are coalesced: after each page's records are handled, or this often (seconds).
SAVE_EVERY = 1.0
#: Local and server clocks further apart than this (seconds) are worth a warning.
SKEW_WARNING = 60.0
#: The start probe looks this far either side of the local clock.
_PROBE_SPAN = timedelta(minutes=30)


class Watch:
    """What `Client.watch` returns: an async iterator of new records that also tells the
    position to save after the record just yielded.

    ``async for`` it, `aclose` it (or use ``async with``); `state` is the checkpoint
    state to save once the record last yielded is handled, for saving the position in
    the same transaction as your own writes.

    >>> watch = client.watch(checkpoint="state.json")  # doctest: +SKIP
    >>> async with watch:  # doctest: +SKIP
    ...     async for record in watch:
    ...         await store(record, position=watch.state)
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

    async def aclose(self) -> None:
        """Stop: the position (without the record in hand) is saved, the lock released."""
        await self._run.aclose()

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def state(self) -> Mapping[str, Any] | None:
        """The checkpoint state to save once the record last yielded is handled (None
        before the watch knows where it starts). A small JSON-able mapping."""
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
) -> Watch:
    """Check the arguments now, then return the `Watch` (which starts when iterated);
    its calls go through ``session`` to ``base_url``."""
    store = as_checkpoint(checkpoint)
    interval = check_seconds(poll_interval, "poll_interval")
    if not isinstance(overlap, timedelta) or not timedelta(0) <= overlap <= MAX_WINDOW:
        raise ValidationError(
            f"overlap must be a timedelta from 0 to {MAX_WINDOW}", field="overlap"
        )
    start = None if since is None else to_aware(since, "since").astimezone(timezone.utc)
    query = Query.of(app_key, sn=None if sn is None else ep.check_sn(sn))
    return Watch(_Follower(session, base_url, query, start, interval, store, overlap))


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
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.query = query
        self.since = since
        self.interval = interval
        self.store = store
        self.overlap = overlap
        self.position: Position | None = None
        self.in_hand: Record | None = None
        self.dirty = False
        self.last_save = 0.0
        # One save at a time runs beside the delivery; a request made meanwhile waits.
        self.saving: asyncio.Future[None] | None = None
        self.pending = False
        self.warned_skew = False

    def state(self) -> dict[str, Any] | None:
        position = self.position
        return None if position is None else position.state(also=self.in_hand)

    # --- server time -----------------------------------------------------------------

    def _server_now(self) -> datetime:
        """The server's now: its last ``Date`` moved on by the local timer (the local
        clock only when no response carried a ``Date``)."""
        local = self.session.clock()
        reading = self.session.server_time()
        if reading is None:
            return believed_now(None, local)
        now, skew = reading
        if abs(skew) > SKEW_WARNING and not self.warned_skew:
            self.warned_skew = True
            logger.warning(
                "watch: the local clock is %+.0f s off the server's (from its Date header); %s",
                -skew,
                "the watch follows the server's time"
                if abs(skew) <= MAX_SKEW
                else f"over {MAX_SKEW:.0f} s is not the server's clock, so the local one is used",
            )
        return believed_now(now, local)

    async def _probe(self) -> datetime:
        """Where a watch without ``since`` or a saved position starts: the server's now,
        read from one small listing (its newest record when it sends no ``Date``)."""
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
        if session.server_time() is None and page.records:
            return max(local, page.records[0].created_at)
        return self._server_now()

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

    # --- checkpoint ------------------------------------------------------------------

    async def _save(self) -> None:
        """Save the position now (after any save in flight)."""
        await self._settle()
        if self.store is None or not self.dirty or self.position is None:
            return
        self.dirty = self.pending = False
        self.last_save = self.session.timer()
        await checkpoint_call(self.store.save(self.position.state()))

    def _save_soon(self) -> None:
        """Start saving the position beside the delivery (a page's records are handled,
        or a second has passed); if a save is in flight, once it is done."""
        if self.store is None or not self.dirty or self.position is None:
            return
        saving = self.saving
        if saving is not None:
            if not saving.done():
                self.pending = True
                return
            self.saving = None
            saving.result()  # a failed save fails the watch here
        self.dirty = self.pending = False
        self.last_save = self.session.timer()
        self.saving = asyncio.ensure_future(checkpoint_call(self.store.save(self.position.state())))

    def _taken(self) -> None:
        """A record was handled: start a save when one is due."""
        self.dirty = True
        if self.pending:
            saving = self.saving
            if saving is None or saving.done():
                self._save_soon()
        elif self.session.timer() - self.last_save >= SAVE_EVERY:
            self._save_soon()

    async def _settle(self) -> None:
        """Wait for the save in flight; its error is raised here."""
        saving, self.saving = self.saving, None
        if saving is not None:
            await saving

    async def _save_if_due(self) -> None:
        await self._settle()
        if self.pending or self.session.timer() - self.last_save >= SAVE_EVERY:
            await self._save()

    async def _finish(self, acquired: bool, ending: BaseException | None) -> None:
        try:
            await self._save()
        except Exception as exc:
            if ending is None or isinstance(ending, GeneratorExit):
                raise
            # The watch is already ending with an error: that one is the news.
            logger.warning(
                "watch: the position could not be saved on the way out (%s: %s)",
                type(exc).__name__,
                exc,
            )
        finally:
            release = getattr(self.store, "release", None)
            if acquired and release is not None:
                await checkpoint_call(release())

    # --- the loop --------------------------------------------------------------------

    async def run(self) -> AsyncGenerator[Record, None]:
        session, store = self.session, self.store
        acquired = False
        ending: BaseException | None = None
        self.last_save = session.timer()
        try:
            state = None
            if store is not None:
                acquire = getattr(store, "acquire", None)
                if acquire is not None:
                    await checkpoint_call(acquire())
                    acquired = True
                state = await checkpoint_call(store.load())
            if state is not None:
                self.position = Position.from_state(state, self.query, self.overlap, repr(store))
            elif self.since is not None:
                self.position = Position.fresh(self.query, self.since, self.overlap)
                self.dirty = True
                # Saved at once, so a restart before the first record resumes from here.
                await self._save()
            failures = PollFailures(self.interval, session.rng)
            while True:
                failed: SenseLinkError | None = None
                if self.position is None:
                    try:
                        start = await self._probe()
                    except _ENDS_WATCH:
                        raise
                    except SenseLinkError as exc:
                        failed = exc
                    else:
                        self.position = Position.fresh(self.query, start, self.overlap)
                        self.dirty = True
                        # Saved at once, so a restart before the first record resumes
                        # from here rather than from its own "now".
                        await self._save()
                position = self.position
                if position is not None and failed is None:
                    lo, hi = position.window(self._server_now())
                    pager = self._pager(lo, hi)
                    async with contextlib.aclosing(pager.pages()) as pages:  # type: ignore[type-var]
                        while True:
                            # Only the poll is guarded: what the consumer throws in at
                            # the yield below is theirs, never taken for a failed poll.
                            try:
                                page = await anext(pages)
                            except StopAsyncIteration:
                                break
                            except _ENDS_WATCH:
                                raise
                            except SenseLinkError as exc:
                                failed = exc
                                break
                            for record in page.records:
                                verdict = position.verdict(record, lo, hi)
                                if verdict is Verdict.OUTSIDE:
                                    logger.warning(
                                        "watch: skipped record %d stored at %s, outside the "
                                        "polled window %s .. %s",
                                        record.record_id,
                                        record.created_at.isoformat(),
                                        lo.isoformat(),
                                        hi.isoformat(),
                                    )
                                    continue
                                if verdict is Verdict.REPEAT:
                                    continue
                                self.in_hand = record
                                yield record
                                # The consumer asked for the next one: done with this one.
                                self.in_hand = None
                                position.take(record)
                                self._taken()
                            self._save_soon()  # the page's records are handled
                    if failed is None:
                        failures.succeeded()
                        # Complete up to hi, or up to the server's now if that is earlier
                        # (hi came from the local clock when no Date had been seen yet).
                        if position.polled(min(hi, self._server_now())):
                            self.dirty = True
                        await self._save_if_due()
                        await session.wait(self.interval)
                        continue
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
                await session.wait(delay)
        except BaseException as exc:
            ending = exc
            raise
        finally:
            await self._finish(acquired, ending)
