"""Errors that end a watch at once instead of being retried as a failed poll: a client
used from another event loop, and a redirect (never followed)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

import senselink_plus as slp
from senselink_plus.testing import MockTransport, image_response

T0 = datetime(2026, 11, 29, tzinfo=timezone.utc)


class NoRetrySleep:
    """A sleep that fails the test as soon as the watch backs off to poll again."""

    def __init__(self) -> None:
        self.calls = 0

    async def sleep(self, seconds: float) -> None:
        self.calls += 1
        raise AssertionError(f"the watch backed off {seconds}s to retry a poll")


def client_with(transport: MockTransport, sleeper: NoRetrySleep) -> slp.Client:
    return slp.Client(
        "key",
        "secret",
        transport=transport,
        sleep=sleeper.sleep,
        clock=lambda: T0.timestamp(),
        retry=slp.RetryPolicy.none(),
    )


async def first(watch: object) -> slp.Record:
    async for record in watch:  # type: ignore[attr-defined]
        return record  # type: ignore[no-any-return]
    raise AssertionError("the watch ended without a record")


async def test_a_redirect_ends_the_watch() -> None:
    mock = MockTransport(
        lambda request: slp.HttpResponse(302, {"Location": "http://elsewhere.test/x"}, b"")
    )
    sleeper = NoRetrySleep()
    async with client_with(mock, sleeper) as client:
        with pytest.raises(slp.RedirectError):
            await first(client.watch(since=T0 - timedelta(minutes=5)))
    assert sleeper.calls == 0
    assert len(mock.requests) == 1


def test_a_watch_in_another_event_loop_ends_with_event_loop_error() -> None:
    sleeper = NoRetrySleep()
    mock = MockTransport(lambda request: image_response())
    client = client_with(mock, sleeper)
    asyncio.run(client.get_image("img1"))  # the client now belongs to that loop
    with pytest.raises(slp.EventLoopError):
        asyncio.run(first(client.watch(since=T0 - timedelta(minutes=5))))
    assert sleeper.calls == 0
    assert len(mock.requests) == 1
