"""How a watch saves its position: every acknowledgement made to survive a process
kill before the next record is handed out, other saves coalesced, one save at a time
beside the delivery, and never a state behind one already saved, by the watch or by
hand.

With durable acknowledgements (the default) each acknowledgement is, by checkpoint:

- `FileCheckpoint`: journaled at once (one write, no fsync); the fsync'd saves of
  the state file stay coalesced;
- any other (`PostgresCheckpoint`, a user's own): saved, and the watch waits for that
  save before it hands out the next record (`until`).

Without them (``durable_acks=False``), acknowledgements are saved with the coalesced
saves: after each page, and at least each `SAVE_EVERY` seconds while records flow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator, Mapping
from typing import Any

from ._checkpoint import Checkpoint, ack_journal, checkpoint_call
from ._watchstate import state_covers

__all__ = ["SAVE_EVERY", "Saved", "Saves"]

logger = logging.getLogger("senselink_plus")

#: Saves are coalesced: after each page's records are handled, or this often (seconds).
SAVE_EVERY = 1.0


class Saves:
    """The checkpoint side of one watch. ``state()`` gives the acknowledged state;
    `acked` takes an acknowledgement, `changed` says the position moved (a save starts
    when one is due), `until` waits for a save to hold a change, `now` saves at once,
    `final` saves on the way out. A state that does not cover the newest one known to
    be saved (`known`: loaded, saved here, or read back at the end) is not written."""

    def __init__(
        self,
        store: Checkpoint | None,
        timer: Callable[[], float],
        state: Callable[[], Mapping[str, Any] | None],
        *,
        durable_acks: bool = True,
    ) -> None:
        self.store = store
        self.timer = timer
        self.state = state
        self.journal = ack_journal(store) if durable_acks else None
        #: Each acknowledgement is saved, and waited for (no journal to write instead).
        self.each = durable_acks and store is not None and self.journal is None
        self.acquired = False
        self.dirty = False
        self.last = timer()
        # One save at a time runs beside the delivery; a request made meanwhile waits.
        self.saving: asyncio.Future[None] | None = None
        self.pending = False
        self.saved: Mapping[str, Any] | None = None
        # Changes so far (acknowledgements, moves), and how many of them are saved.
        self.changes = 0
        self.covered = 0
        # Whoever starts a save (in the background or inline), one runs at a time.
        self.turn = asyncio.Lock()
        self.failure: Exception | None = None

    def known(self, state: Mapping[str, Any] | None) -> None:
        """``state`` is saved (read from the checkpoint): never save behind it."""
        if isinstance(state, Mapping) and (self.saved is None or state_covers(state, self.saved)):
            self.saved = state

    async def _write(self, state: Mapping[str, Any], changes: int) -> None:
        """Save ``state``, which holds the first ``changes`` changes (after the save
        before it ends)."""
        assert self.store is not None
        async with self.turn:
            saved = self.saved
            if saved is None or state_covers(state, saved):
                try:
                    await checkpoint_call(self.store.save(state))
                except BaseException as exc:
                    self.dirty = True  # not saved: the next save is due to hold it
                    if isinstance(exc, Exception):
                        self.failure = exc
                    raise
                self.saved = state
            # else: behind what is saved, so a save would move the position backwards;
            # what is saved holds these changes already.
            self.covered = max(self.covered, changes)

    def _due(self) -> Mapping[str, Any] | None:
        if self.store is None or not self.dirty:
            return None
        return self.state()

    def mark(self) -> None:
        """The position moved: the next save is due to hold it."""
        self.dirty = True
        self.changes += 1

    def acked(self, *, beside: bool = False) -> Saved:
        """Records were acknowledged: journal the position at once (a `FileCheckpoint`),
        and save it when due; ``beside``: when each acknowledgement is saved, start
        its save now (else `flush` saves it). Awaiting the result waits until the
        acknowledgement survives a process kill."""
        if self.journal is not None:
            state = self.state()
            if state is not None:
                self.journal(state)
        self.changed()
        if beside and self.each:
            self.soon()
        return Saved(self, self.changes)

    def changed(self) -> None:
        """The acknowledged position moved: start a (coalesced) save when one is due."""
        self.mark()
        if self.each:
            return  # saved by `flush`, or beside the acknowledgement
        saving = self.saving
        idle = saving is None or saving.done()
        if (self.pending and idle) or self.timer() - self.last >= SAVE_EVERY:
            self.soon()

    async def flush(self) -> None:
        """When each acknowledgement is saved: save every change so far, in this task,
        before the watch goes on (after a save in flight ends)."""
        if not self.each or not self.dirty:
            return
        state = self.state()
        if state is None:
            return
        changes, self.dirty, self.pending, self.last = self.changes, False, False, self.timer()
        await self._write(state, changes)

    async def until(self, changes: int) -> None:
        """Wait until a save holds the first ``changes`` changes (at once unless each
        acknowledgement is saved); a failed save's error is raised here."""
        while self.each and self.covered < changes:
            if self.failure is not None:
                raise self.failure
            saving = self.saving
            if saving is not None and not saving.done():
                # Shielded: a waiter that is cancelled must not cancel the save.
                await asyncio.shield(saving)
            elif self.dirty:
                self.soon()  # raises a failed save's error
            else:
                covered = self.covered
                async with self.turn:  # a `flush` in another task holds them: wait for it
                    pass
                if self.covered == covered and not self.dirty and self.failure is None:
                    raise RuntimeError("watch: an acknowledgement's save was lost track of")

    def soon(self) -> None:
        """Start saving beside the delivery (a page's records are handled, or a second
        has passed); if a save is in flight, once it is done."""
        state = self._due()
        if state is None:
            return
        saving = self.saving
        if saving is not None:
            if not saving.done():
                self.pending = True
                return
            self.saving = None
            saving.result()  # a failed save fails the watch here
        self.dirty = self.pending = False
        self.last = self.timer()
        self.saving = asyncio.ensure_future(self._write(state, self.changes))
        if self.each:
            self.saving.add_done_callback(self._then)

    def _then(self, saving: asyncio.Future[None]) -> None:
        """A save ended: when each acknowledgement is saved, save those that came
        meanwhile at once (a failure is raised by the next `soon`, `until` or `settle`)."""
        chain = self.pending and self.saving is saving and not saving.cancelled()
        if chain and saving.exception() is None:
            self.soon()

    async def settle(self) -> None:
        """Wait for the save in flight; its error is raised here."""
        saving, self.saving = self.saving, None
        if saving is not None:
            await saving

    async def now(self, *, changed: bool = False) -> None:
        """Save the position now (after any save in flight)."""
        if changed:
            self.mark()
        await self.settle()
        state = self._due()
        if state is None:
            return
        self.dirty = self.pending = False
        self.last = self.timer()
        await self._write(state, self.changes)

    async def if_due(self) -> None:
        await self.settle()
        if self.pending or self.timer() - self.last >= SAVE_EVERY:
            await self.now()

    async def final(self, ending: BaseException | None) -> None:
        """The save on the way out. What the checkpoint holds is read back first, so a
        position saved by hand meanwhile (``watch.state``) is never overwritten by an
        older one."""
        try:
            await self.settle()
            if self._due() is not None:
                assert self.store is not None
                self.known(await checkpoint_call(self.store.load()))
                await self.now()
        except Exception as exc:
            if ending is None or isinstance(ending, GeneratorExit):
                raise
            # The watch is already ending with an error: that one is the news.
            logger.warning(
                "watch: the position could not be saved on the way out (%s: %s)",
                type(exc).__name__,
                exc,
            )

    async def release(self) -> None:
        release = getattr(self.store, "release", None)
        if self.acquired and release is not None:
            self.acquired = False
            await checkpoint_call(release())


class Saved:
    """What `Watch.ack` returns: awaiting it waits until the acknowledgement survives a
    process kill. With a `FileCheckpoint` (journaled) or no checkpoint it is done at
    once; with any other checkpoint, once its ``save`` holds it."""

    __slots__ = ("_changes", "_saves")

    def __init__(self, saves: Saves, changes: int) -> None:
        self._saves = saves
        self._changes = changes

    def __await__(self) -> Generator[Any, None, None]:
        return self._saves.until(self._changes).__await__()
