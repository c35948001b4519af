"""How a watch saves its position: coalesced, beside the delivery, one save at a time,
and never a state behind one already saved, by the watch or by hand."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ._checkpoint import Checkpoint, checkpoint_call
from ._watchstate import state_covers

__all__ = ["SAVE_EVERY", "Saves"]

logger = logging.getLogger("senselink_plus")

#: Saves are coalesced: after each page's records are handled, or this often (seconds).
SAVE_EVERY = 1.0


class Saves:
    """The checkpoint side of one watch. ``state()`` gives the acknowledged state;
    `changed` says it moved (a save starts when one is due), `now` saves at once,
    `final` saves on the way out. A state that does not cover the newest one known to
    be saved (`known`: loaded, saved here, or read back at the end) is not written."""

    def __init__(
        self,
        store: Checkpoint | None,
        timer: Callable[[], float],
        state: Callable[[], Mapping[str, Any] | None],
    ) -> None:
        self.store = store
        self.timer = timer
        self.state = state
        self.acquired = False
        self.dirty = False
        self.last = timer()
        # One save at a time runs beside the delivery; a request made meanwhile waits.
        self.saving: asyncio.Future[None] | None = None
        self.pending = False
        self.saved: Mapping[str, Any] | None = None

    def known(self, state: Mapping[str, Any] | None) -> None:
        """``state`` is saved (read from the checkpoint): never save behind it."""
        if isinstance(state, Mapping) and (self.saved is None or state_covers(state, self.saved)):
            self.saved = state

    async def _write(self, state: Mapping[str, Any]) -> None:
        assert self.store is not None
        saved = self.saved
        if saved is not None and not state_covers(state, saved):
            return  # behind what is saved: a save would move the position backwards
        await checkpoint_call(self.store.save(state))
        self.saved = state

    def _due(self) -> Mapping[str, Any] | None:
        if self.store is None or not self.dirty:
            return None
        return self.state()

    def changed(self) -> None:
        """The acknowledged position moved: start a save when one is due."""
        self.dirty = True
        if self.pending:
            saving = self.saving
            if saving is None or saving.done():
                self.soon()
        elif self.timer() - self.last >= SAVE_EVERY:
            self.soon()

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
        self.saving = asyncio.ensure_future(self._write(state))

    async def settle(self) -> None:
        """Wait for the save in flight; its error is raised here."""
        saving, self.saving = self.saving, None
        if saving is not None:
            await saving

    async def now(self, *, changed: bool = False) -> None:
        """Save the position now (after any save in flight)."""
        self.dirty = self.dirty or changed
        await self.settle()
        state = self._due()
        if state is None:
            return
        self.dirty = self.pending = False
        self.last = self.timer()
        await self._write(state)

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
