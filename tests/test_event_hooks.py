"""Event hooks never break a call: a sync hook runs inline, in the call's task (a
failing one is logged), async hooks that never finish are bounded and warned about
once, ``aclose()`` gives up on one that ignores cancellation, and a hook's
KeyboardInterrupt or SystemExit is re-raised in the event loop, not lost and not raised
in the call."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from senselink_plus import Client, Event
from senselink_plus import _events as events_module
from senselink_plus.testing import MockTransport
from tests.conftest import APP_KEY, APP_SECRET, MakeClient, ok

T0 = datetime(2024, 3, 1, tzinfo=timezone(timedelta(hours=9)))
EMPTY_PAGE = {"page_num": 1, "page_size": 100, "total": 0, "list": []}


async def test_a_sync_hook_runs_inline_before_its_call_returns(make_client: MakeClient) -> None:
    # The promise, stated precisely: a sync hook runs in the call's task, so the call
    # waits for it (a slow one delays the call by its own time); it never breaks it.
    ran: list[asyncio.Task[Any] | None] = []

    def hook(event: Event) -> None:
        ran.append(asyncio.current_task())
        raise RuntimeError("a broken metrics backend")

    client = make_client(lambda request: ok(EMPTY_PAGE), event_hooks={"request": [hook]})
    call = asyncio.ensure_future(client.list_records(T0, T0 + timedelta(hours=1)))
    page = await call
    assert page.total == 0
    assert ran == [call]  # ran before the call returned, in the call's own task
    await client.aclose()


async def test_async_hooks_that_never_finish_are_bounded_and_warned_about_once(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(events_module, "MAX_HOOK_TASKS", 10, raising=False)
    never = asyncio.Event()

    async def hang(event: Event) -> None:
        await never.wait()

    client = make_client(
        lambda request: ok(EMPTY_PAGE), event_hooks={"request": [hang], "response": [hang]}
    )
    with caplog.at_level(logging.WARNING, logger="senselink_plus"):
        for _ in range(30):
            await client.list_records(T0, T0 + timedelta(hours=1))
        await asyncio.sleep(0)
        hook_tasks = asyncio.all_tasks() - {asyncio.current_task()}
        assert len(hook_tasks) == 10
        falling = [r for r in caplog.records if "fall behind" in r.getMessage()]
        assert len(falling) == 1
        await client.aclose()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert "50 events were dropped" in caplog.text


async def test_aclose_gives_up_on_an_async_hook_that_ignores_cancellation(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(events_module, "HOOK_CLOSE_TIMEOUT", 0.05, raising=False)
    stop = asyncio.Event()

    async def stubborn(event: Event) -> None:
        try:
            await stop.wait()
        except asyncio.CancelledError:
            await stop.wait()  # ignores the first cancel

    client = make_client(lambda request: ok(EMPTY_PAGE), event_hooks={"response": [stubborn]})
    await client.list_records(T0, T0 + timedelta(hours=1))
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="senselink_plus"):
        await asyncio.wait_for(client.aclose(), 5)  # 5 s: reached only if aclose hangs
    assert "ignored cancellation" in caplog.text
    stop.set()
    await asyncio.sleep(0)


@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit])
def test_a_hook_raising_keyboard_interrupt_is_reraised_in_the_loop_not_in_the_call(
    kind: type[BaseException],
) -> None:
    answered: list[int] = []

    def hook(event: Event) -> None:
        raise kind()

    async def main() -> None:
        client = Client(
            APP_KEY,
            APP_SECRET,
            base_url="https://api.test",
            transport=MockTransport(lambda request: ok(EMPTY_PAGE)),
            event_hooks={"response": [hook]},
        )
        page = await client.list_records(T0, T0 + timedelta(hours=1))
        answered.append(page.total)  # the call itself succeeded
        await client.aclose()
        pytest.fail("the hook's exception vanished")

    with pytest.raises(kind):
        asyncio.run(main())
    assert answered == [0]
