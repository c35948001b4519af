"""Event hooks: what a service can feed into its metrics or tracing, one call at a time."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from ._exceptions import ValidationError
from ._http import Params

__all__ = ["EVENT_KINDS", "Event", "EventHook", "HookRunner", "logging_hook"]

logger = logging.getLogger("senselink_plus")

EventKind = Literal["start", "request", "response", "retry", "end"]
EVENT_KINDS: tuple[EventKind, ...] = ("start", "request", "response", "retry", "end")
EventHook = Callable[["Event"], Any]


@attrs.frozen
class Event:
    """One step of a call: ``start`` (the call begins, ``attempt`` 0), ``request`` (an
    attempt is sent), ``response`` (its response arrived), ``retry`` (it failed and
    another is scheduled) and ``end`` (the call is over, ``attempt`` attempts made).

    ``url`` is the endpoint without its query; ``params`` the non-secret query
    parameters; ``headers`` the response's headers (``response``, and ``retry``/``end``
    after an error from a response); ``elapsed`` the attempt's seconds (the whole call's
    for ``end``); ``error`` and ``error_type`` name the failure behind a ``retry`` or a
    failed ``end``. Never a secret, a sign or image bytes. Every call that emits
    ``start`` emits ``end`` once, however it ends (a cancelled call too).
    """

    kind: EventKind
    method: str
    path: str
    attempt: int
    params: Params = ()
    status: int | None = None
    elapsed: float | None = None
    delay: float | None = None
    error: str | None = None
    url: str | None = None
    headers: Mapping[str, str] | None = None
    error_type: str | None = None


def logging_hook(event: Event) -> None:
    """A ready hook: retries at INFO, the rest at DEBUG, on the ``senselink_plus`` logger.

    >>> client = Client(event_hooks={"retry": [logging_hook]})  # doctest: +SKIP
    """
    if event.kind == "retry":
        logger.info(
            "%s %s attempt %d failed (%s); retrying in %.2fs",
            event.method,
            event.path,
            event.attempt,
            event.error,
            event.delay or 0.0,
        )
    elif event.kind == "response":
        logger.debug(
            "%s %s -> %s attempt=%d elapsed_ms=%.1f",
            event.method,
            event.path,
            event.status,
            event.attempt,
            (event.elapsed or 0) * 1000,
        )
    elif event.kind == "request":
        logger.debug("%s %s attempt=%d sent", event.method, event.path, event.attempt)
    elif event.kind == "end":
        logger.debug(
            "%s %s done attempts=%d elapsed_ms=%.1f%s",
            event.method,
            event.path,
            event.attempt,
            (event.elapsed or 0) * 1000,
            f" error={event.error_type}" if event.error_type else "",
        )


def _hook_headers(value: Mapping[Any, Any], hook: EventHook) -> dict[str, str]:
    """The valid headers a request hook returned; an invalid one is logged and dropped."""
    from ._headers import check_headers  # a hook's headers are checked as defaults are

    try:
        return check_headers(value, "request hook headers")
    except ValidationError as exc:
        logger.error("event hook %r returned unusable headers: %s", hook, exc.message)
        return {}


def _callables(value: object) -> tuple[EventHook, ...] | None:
    """``value`` as a tuple of callables, or None when it is not an iterable of them."""
    if callable(value) or isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return None
    items: tuple[Any, ...] = tuple(value)
    return items if all(callable(item) for item in items) else None


class HookRunner:
    """Calls the hooks for each event; a failing or slow hook never breaks a call.

    Sync hooks run inline (exceptions are logged); async hooks run as background tasks
    that `aclose` cancels. A sync ``request`` hook may return a mapping of headers to
    add to that attempt (``traceparent``, say); the request's own headers win.
    """

    def __init__(self, hooks: Mapping[str, Sequence[EventHook]] | None) -> None:
        self._hooks: dict[str, tuple[EventHook, ...]] = {}
        if hooks is None:
            hooks = {}
        if not isinstance(hooks, Mapping):
            raise ValidationError(
                "event_hooks must be a mapping such as {'retry': [logging_hook]}, "
                f"not {type(hooks).__name__}",
                field="event_hooks",
            )
        for kind, callbacks in hooks.items():
            if kind not in EVENT_KINDS:
                raise ValidationError(
                    f"event_hooks key {kind!r} is not one of {', '.join(EVENT_KINDS)}",
                    field="event_hooks",
                )
            # Materialised first: an iterator would be used up by the check below.
            chosen = _callables(callbacks)
            if chosen is None:
                raise ValidationError(
                    f"event_hooks[{kind!r}] must be a list of callables", field="event_hooks"
                )
            if chosen:
                self._hooks[kind] = chosen
        self._tasks: set[asyncio.Task[Any]] = set()

    def wants(self, kind: EventKind) -> bool:
        return kind in self._hooks

    def emit(self, event: Event) -> dict[str, str] | None:
        """Call the hooks for ``event``; for a ``request`` event, return the headers its
        hooks asked to add (None when none did)."""
        added: dict[str, str] | None = None
        for hook in self._hooks.get(event.kind, ()):
            try:
                result = hook(event)
            except Exception:
                logger.exception("event hook %r failed on a %s event", hook, event.kind)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._done)
            elif isinstance(result, Mapping) and event.kind == "request":
                headers = _hook_headers(result, hook)
                if headers:
                    added = headers if added is None else {**added, **headers}
        return added

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("an async event hook failed", exc_info=task.exception())

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
