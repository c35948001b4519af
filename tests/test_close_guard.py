"""`_close_guard.CloseGuard`: closing interrupts what is awaited through it, and only that."""

from __future__ import annotations

import asyncio

import pytest

from senselink_plus import ClientClosedError, HttpRequest
from senselink_plus._close_guard import CloseGuard

POST = HttpRequest("POST", "https://api.test/api/v1/plus/record", params={"sn": "S1"})


async def waiting(guard: CloseGuard, **options: object) -> asyncio.Task[object]:
    task: asyncio.Task[object] = asyncio.ensure_future(
        guard.run(asyncio.Event().wait(), **options)  # type: ignore[arg-type]
    )
    await asyncio.sleep(0)
    assert not guard.idle
    return task


async def test_close_fails_a_waiting_call_with_client_closed() -> None:
    guard = CloseGuard()
    task = await waiting(guard, request=POST, sending=True)
    guard.close()
    with pytest.raises(ClientClosedError, match="closed during the call") as caught:
        await task
    assert caught.value.record_may_exist is True
    assert caught.value.request is not None
    assert caught.value.request.method == "POST"
    assert guard.idle
    with pytest.raises(ClientClosedError, match="the client is closed"):
        guard.check()


async def test_a_cancel_of_the_callers_own_stays_a_cancel() -> None:
    guard = CloseGuard()
    task = await waiting(guard)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert guard.idle
    guard.check()  # still open


async def test_close_from_the_waiting_task_itself_does_not_cancel_it() -> None:
    guard = CloseGuard()

    async def closes() -> str:
        guard.close()
        return "done"

    assert await guard.run(closes()) == "done"
    assert guard.closed


async def test_a_nested_run_is_interrupted_once() -> None:
    guard = CloseGuard()

    async def outer() -> object:
        return await guard.run(asyncio.Event().wait())

    task = asyncio.ensure_future(guard.run(outer()))
    await asyncio.sleep(0)
    guard.close()
    with pytest.raises(ClientClosedError):
        await task
    assert guard.idle
