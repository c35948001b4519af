"""Event hooks: what a service can feed into its metrics or tracing, one call at a time."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from ._exceptions import SenseLinkError, ValidationError
from ._http import HttpRequest, Params

__all__ = [
    "EVENT_KINDS",
    "HEADERS_HOOK",
    "HOOK_CLOSE_TIMEOUT",
    "MAX_HOOK_TASKS",
    "CallEvents",
    "Event",
    "EventHook",
    "HookRunner",
    "call_event",
    "logging_hook",
]

logger = logging.getLogger("senselink_plus")

EventKind = Literal["start", "request", "response", "retry", "end"]
EVENT_KINDS: tuple[EventKind, ...] = ("start", "request", "response", "retry", "end")
EventHook = Callable[["Event"], Any]
#: The ``event_hooks`` key for hooks that return headers to add to an attempt. Not an
#: event kind: such a hook gets the attempt's ``request`` event, inline, before it is sent.
HEADERS_HOOK = "headers"


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


def call_event(kind: EventKind, request: HttpRequest, attempt: int, **facts: Any) -> Event:
    """The ``kind`` event of attempt ``attempt`` of ``request`` (0 for the call's start):
    its method, path, non-secret parameters and URL, with ``facts`` (status, elapsed...)."""
    params = request.info().params
    return Event(kind, request.method, request.path, attempt, params, url=request.url, **facts)


class CallEvents:
    """The ``start`` and ``end`` events of one call, as a ``with`` block around it: the
    ``end`` event says how the block ended (a cancel too), after `attempt` attempts, the
    last answered with `status`.

    >>> with CallEvents(hooks, request, time.monotonic) as call:  # doctest: +SKIP
    ...     call.attempt, call.status = 1, 200
    """

    def __init__(self, hooks: HookRunner, request: HttpRequest, timer: Callable[[], float]) -> None:
        self._hooks, self._request, self._timer = hooks, request, timer
        self.attempt = 0
        self.status: int | None = None
        self._started = 0.0

    def __enter__(self) -> CallEvents:
        self._started = self._timer()
        if self._hooks.wants("start"):
            self._hooks.emit(call_event("start", self._request, 0))
        return self

    def __exit__(self, kind: object, failure: BaseException | None, traceback: object) -> None:
        if self._hooks.wants("end"):
            self._hooks.emit(self._end(failure, self._timer() - self._started))

    def _end(self, failure: BaseException | None, elapsed: float) -> Event:
        request, attempt = self._request, self.attempt
        if failure is None:
            return call_event("end", request, attempt, status=self.status, elapsed=elapsed)
        error = failure if isinstance(failure, SenseLinkError) else None
        name = type(failure).__name__
        return call_event(
            "end",
            request,
            attempt,
            status=getattr(failure, "status", None) or self.status,
            elapsed=elapsed,
            error=f"{name}: {failure if error is None else error.message}",
            headers=None if error is None else error.headers,
            error_type=name,
        )


def logging_hook(event: Event) -> None:
    """A ready hook that logs, at DEBUG on the ``senselink_plus`` logger, what the SDK
    does not log itself: each attempt as it is sent, and each call's end.

    The SDK already logs every retry (INFO) and every response (DEBUG), so this hook
    adds no line for ``retry`` or ``response`` events: one line per event, whichever
    hooks are set.

    >>> hooks = {"request": [logging_hook], "end": [logging_hook]}
    >>> client = Client(event_hooks=hooks)  # doctest: +SKIP
    """
    if event.kind == "request":
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


def _hook_headers(value: object, hook: EventHook) -> dict[str, str]:
    """The valid headers a headers hook returned; unusable ones are logged and dropped."""
    from ._headers import check_headers  # a hook's headers are checked as defaults are

    try:
        return check_headers(value, "headers hook result")
    except ValidationError as exc:
        logger.error("headers hook %r returned unusable headers: %s", hook, exc.message)
        return {}


def _callables(value: object) -> tuple[EventHook, ...] | None:
    """``value`` as a tuple of callables, or None when it is not an iterable of them."""
    if callable(value) or isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return None
    items: tuple[Any, ...] = tuple(value)
    return items if all(callable(item) for item in items) else None


#: Async hook tasks running at once per client; beyond it events are dropped (a hook that
#: never finishes must not hold a task per call forever).
MAX_HOOK_TASKS = 1024
#: How long `aclose` waits for cancelled async hooks.
HOOK_CLOSE_TIMEOUT = 5.0

Hooks = tuple[EventHook, ...]


def _is_async(hook: EventHook) -> bool:
    return inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(
        getattr(hook, "__call__", None)  # noqa: B004 -- an object with an async __call__
    )


def _reraise(exc: BaseException) -> None:
    raise exc


def _checked_hooks(kind: object, callbacks: object) -> Hooks:
    """``callbacks`` for the ``event_hooks`` key ``kind``, checked."""
    if kind not in EVENT_KINDS and kind != HEADERS_HOOK:
        raise ValidationError(
            f"event_hooks key {kind!r} is not one of {', '.join((*EVENT_KINDS, HEADERS_HOOK))}",
            field="event_hooks",
        )
    # Materialised first: an iterator would be used up by the check.
    chosen = _callables(callbacks)
    if chosen is None:
        raise ValidationError(
            f"event_hooks[{kind!r}] must be a list of callables", field="event_hooks"
        )
    if kind == HEADERS_HOOK and any(_is_async(h) for h in chosen):
        raise ValidationError(
            f"event_hooks[{HEADERS_HOOK!r}] must be plain (not async) functions: "
            "they run inline, before each attempt is sent",
            field="event_hooks",
        )
    return chosen


def _sorted_hooks(
    hooks: Mapping[str, Sequence[EventHook]] | None,
) -> tuple[Hooks, dict[str, Hooks]]:
    """The ``"headers"`` hooks, and the others by event kind."""
    if hooks is None:
        hooks = {}
    if not isinstance(hooks, Mapping):
        raise ValidationError(
            "event_hooks must be a mapping such as {'retry': [logging_hook]}, "
            f"not {type(hooks).__name__}",
            field="event_hooks",
        )
    checked = {kind: _checked_hooks(kind, callbacks) for kind, callbacks in hooks.items()}
    headers = checked.pop(HEADERS_HOOK, ())
    return headers, {kind: chosen for kind, chosen in checked.items() if chosen}


class HookRunner:
    """Calls the hooks for each event: a failing hook is logged and never breaks a call.

    Sync hooks run inline, in the call's task and context, as the event happens, so a
    slow one delays its call (and the event loop) by the time it takes: they must be
    quick. Async hooks run as tasks in the loop, off the call path, at most
    `MAX_HOOK_TASKS` at once (past it events are dropped, with one WARNING); `aclose`
    cancels them. KeyboardInterrupt or SystemExit from a hook is re-raised in the event
    loop, never inside the call. ``"headers"`` hooks return headers to add to an attempt
    (see `headers_for`).
    """

    def __init__(self, hooks: Mapping[str, Sequence[EventHook]] | None) -> None:
        self._headers_hooks, self._hooks = _sorted_hooks(hooks)
        self._tasks: set[asyncio.Task[Any]] = set()  # the async hooks running: aclose ends them
        self._dropped = 0  # events past MAX_HOOK_TASKS: one WARNING, and a count at aclose
        self._told_headers = False  # the WARNING about a request hook's headers: once
        self._closed = False  # no hook starts after aclose
        # What the request path asks on every call, worked out once:
        self.around_call = self.wants("start") or self.wants("end")
        self.before_attempt = self.adds_headers or self.wants("request")
        self.after_attempt = self.wants("response")

    def wants(self, kind: EventKind) -> bool:
        return kind in self._hooks

    @property
    def adds_headers(self) -> bool:
        """Whether any ``"headers"`` hook was given."""
        return bool(self._headers_hooks)

    def headers_for(self, event: Event) -> dict[str, str] | None:
        """Run the ``"headers"`` hooks for an attempt's ``request`` event and return the
        headers they ask to add (None when none do).

        A hook returns a mapping of header names to values, or None; the result is
        checked as ``default_headers`` are, and an unusable one, or an exception, is
        logged and adds nothing (the attempt goes ahead).
        """
        added: dict[str, str] | None = None
        for hook in self._headers_hooks:
            result = self._call(hook, event, "headers")
            headers = None if result is None else _hook_headers(result, hook)
            if headers:
                added = headers if added is None else {**added, **headers}
        return added

    def emit(self, event: Event) -> None:
        """Run ``event``'s hooks: a sync one now, an async one as a task."""
        if self._closed:
            return
        for hook in self._hooks.get(event.kind, ()):
            result = self._call(hook, event, "event")
            if inspect.isawaitable(result):  # an async hook (or a sync one returning one)
                self._spawn(result)
            elif isinstance(result, Mapping) and event.kind == "request":
                self._tell_headers(hook)

    def _call(self, hook: EventHook, event: Event, role: str) -> object:
        """``hook(event)``; None when it raised (logged, or re-raised in the loop)."""
        try:
            return hook(event)
        except Exception:
            logger.exception("%s hook %r failed on a %s event", role, hook, event.kind)
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: to the loop
            asyncio.get_running_loop().call_soon(_reraise, exc)
        return None

    def _tell_headers(self, hook: EventHook) -> None:
        if not self._told_headers:
            self._told_headers = True
            logger.warning(
                "event hook %r returned headers from a 'request' event; they are not sent. "
                "Return them from a %r hook instead",
                hook,
                HEADERS_HOOK,
            )

    def _drop(self) -> None:
        self._dropped += 1
        if self._dropped == 1:
            logger.warning(
                "event hooks fall behind: %d async hook tasks are still running, so events "
                "are being dropped (a hook is slow or never finishes)",
                MAX_HOOK_TASKS,
            )

    def _spawn(self, result: Awaitable[Any]) -> None:
        if len(self._tasks) >= MAX_HOOK_TASKS:
            if inspect.iscoroutine(result):
                result.close()  # never started: no "never awaited" warning
            self._drop()
            return
        task = asyncio.ensure_future(result)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("an async event hook failed", exc_info=task.exception())

    async def aclose(self) -> None:
        """Start no hook from now on; cancel the async hooks still running (waiting up
        to `HOOK_CLOSE_TIMEOUT` for them)."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=HOOK_CLOSE_TIMEOUT)
            if pending:
                logger.warning(
                    "%d async event hooks ignored cancellation for %.1fs after aclose(): "
                    "left behind",
                    len(pending),
                    HOOK_CLOSE_TIMEOUT,
                )
        if self._dropped:
            logger.warning("event hooks fell behind: %d events were dropped", self._dropped)
