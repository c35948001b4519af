"""Event hooks: what a service can feed into its metrics or tracing, one call at a time."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from ._exceptions import SenseLinkError, ValidationError
from ._http import HttpRequest, Params

__all__ = [
    "EVENT_KINDS",
    "HEADERS_HOOK",
    "HOOK_CLOSE_TIMEOUT",
    "MAX_HOOK_TASKS",
    "MAX_PENDING_EVENTS",
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
#: Events waiting for the sync-hook thread; beyond it events are dropped.
MAX_PENDING_EVENTS = 10_000
#: How long `aclose` waits for queued sync hooks and cancelled async ones.
HOOK_CLOSE_TIMEOUT = 5.0
#: The sync-hook thread ends after this long without events (a new one starts as needed).
_IDLE_SECONDS = 30.0

_STOP = object()


def _is_async(hook: EventHook) -> bool:
    return inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(
        getattr(hook, "__call__", None)  # noqa: B004 -- an object with an async __call__
    )


def _reraise(exc: BaseException) -> None:
    raise exc


class HookRunner:
    """Calls the hooks for each event, off the call path: a slow or failing hook never
    delays or breaks a call.

    Sync hooks run in one background thread per client, in event order, each in a copy
    of the caller's context (contextvars); async hooks run as tasks in the loop. Both are
    bounded (`MAX_PENDING_EVENTS`, `MAX_HOOK_TASKS`): past a bound events are dropped
    with one WARNING. An exception is logged; KeyboardInterrupt or SystemExit from a hook
    is re-raised in the event loop (it ends ``asyncio.run`` as Ctrl-C would), never
    inside the call. `aclose` waits up to `HOOK_CLOSE_TIMEOUT` for queued sync hooks,
    and cancels async ones.

    The one exception is the ``"headers"`` kind: those hooks run inline, in the call's
    task, just before each attempt is sent (see `headers_for`).
    """

    def __init__(self, hooks: Mapping[str, Sequence[EventHook]] | None) -> None:
        self._sync: dict[str, tuple[EventHook, ...]] = {}
        self._async: dict[str, tuple[EventHook, ...]] = {}
        if hooks is None:
            hooks = {}
        if not isinstance(hooks, Mapping):
            raise ValidationError(
                "event_hooks must be a mapping such as {'retry': [logging_hook]}, "
                f"not {type(hooks).__name__}",
                field="event_hooks",
            )
        self._headers_hooks: tuple[EventHook, ...] = ()
        for kind, callbacks in hooks.items():
            if kind not in EVENT_KINDS and kind != HEADERS_HOOK:
                raise ValidationError(
                    f"event_hooks key {kind!r} is not one of "
                    f"{', '.join((*EVENT_KINDS, HEADERS_HOOK))}",
                    field="event_hooks",
                )
            # Materialised first: an iterator would be used up by the check below.
            chosen = _callables(callbacks)
            if chosen is None:
                raise ValidationError(
                    f"event_hooks[{kind!r}] must be a list of callables", field="event_hooks"
                )
            if kind == HEADERS_HOOK:
                if any(_is_async(h) for h in chosen):
                    raise ValidationError(
                        f"event_hooks[{HEADERS_HOOK!r}] must be plain (not async) functions: "
                        "they run inline, before each attempt is sent",
                        field="event_hooks",
                    )
                self._headers_hooks = chosen
                continue
            sync = tuple(h for h in chosen if not _is_async(h))
            if sync:
                self._sync[kind] = sync
            if len(sync) < len(chosen):
                self._async[kind] = tuple(h for h in chosen if _is_async(h))
        self._kinds = frozenset(self._sync) | frozenset(self._async)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dropped = 0
        self._told_headers = False
        self._closed = False

    def wants(self, kind: EventKind) -> bool:
        return kind in self._kinds

    @property
    def wants_any(self) -> bool:
        """Whether any event hook was given (``"headers"`` hooks aside)."""
        return bool(self._kinds)

    @property
    def adds_headers(self) -> bool:
        """Whether any ``"headers"`` hook was given."""
        return bool(self._headers_hooks)

    def headers_for(self, event: Event) -> dict[str, str] | None:
        """Run the ``"headers"`` hooks for an attempt's ``request`` event, here and now,
        and return the headers they ask to add (None when none do).

        The one place a hook runs on the call path, in the call's task and context (so it
        sees the caller's current span, say): it must be quick. A hook returns a mapping
        of header names to values, or None; the result is checked as ``default_headers``
        are, and an unusable one, or an exception, is logged and adds nothing (the
        attempt goes ahead). KeyboardInterrupt or SystemExit is re-raised in the event
        loop, as from any other hook.
        """
        added: dict[str, str] | None = None
        for hook in self._headers_hooks:
            try:
                result = hook(event)
            except Exception:
                logger.exception("headers hook %r failed", hook)
                continue
            except BaseException as exc:  # KeyboardInterrupt, SystemExit: to the loop
                asyncio.get_running_loop().call_soon(_reraise, exc)
                continue
            if result is None:
                continue
            headers = _hook_headers(result, hook)
            if headers:
                added = headers if added is None else {**added, **headers}
        return added

    def emit(self, event: Event) -> None:
        """Hand ``event`` to its hooks without running any of them here."""
        if self._closed:
            return
        for hook in self._async.get(event.kind, ()):
            if len(self._tasks) >= MAX_HOOK_TASKS:
                self._drop(f"{MAX_HOOK_TASKS} async hook tasks are still running")
                continue
            try:
                self._spawn(hook(event))
            except Exception:
                logger.exception("event hook %r failed on a %s event", hook, event.kind)
        if event.kind in self._sync:
            if self._queue.qsize() >= MAX_PENDING_EVENTS:
                self._drop(f"{MAX_PENDING_EVENTS} events wait for the sync hooks")
                return
            self._loop = asyncio.get_running_loop()
            with self._lock:
                self._queue.put((contextvars.copy_context(), event))
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._work, name="senselink-event-hooks", daemon=True
                    )
                    self._thread.start()

    def _drop(self, why: str) -> None:
        self._dropped += 1
        if self._dropped == 1:
            logger.warning(
                "event hooks fall behind: %s, so events are being dropped (a hook is slow "
                "or never finishes)",
                why,
            )

    def _spawn(self, result: object) -> None:
        if not inspect.isawaitable(result):
            return
        if self._closed or len(self._tasks) >= MAX_HOOK_TASKS:
            if inspect.iscoroutine(result):
                result.close()  # never started: no "never awaited" warning
            if not self._closed:
                self._drop(f"{MAX_HOOK_TASKS} async hook tasks are still running")
            return
        task = asyncio.ensure_future(result)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("an async event hook failed", exc_info=task.exception())

    def _work(self) -> None:
        """The sync-hook thread: run queued events' hooks in order until told to stop or
        idle for a while."""
        while True:
            try:
                item = self._queue.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            try:
                if item is _STOP:
                    return
                context, event = item
                for hook in self._sync.get(event.kind, ()):
                    self._run_sync(context, hook, event)
            finally:
                self._queue.task_done()

    def _run_sync(self, context: contextvars.Context, hook: EventHook, event: Event) -> None:
        loop = self._loop
        try:
            result = context.run(hook, event)
        except Exception:
            logger.exception("event hook %r failed on a %s event", hook, event.kind)
            return
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: to the loop
            try:
                assert loop is not None
                loop.call_soon_threadsafe(_reraise, exc)
            except (AssertionError, RuntimeError):  # the loop is gone: say so here
                logger.critical(
                    "event hook %r raised %s after its event loop closed",
                    hook,
                    type(exc).__name__,
                )
            return
        if isinstance(result, Mapping) and event.kind == "request" and not self._told_headers:
            self._told_headers = True
            logger.warning(
                "event hook %r returned headers from a 'request' event; they are not sent: "
                "request hooks run off the call path. Return them from a %r hook instead",
                hook,
                HEADERS_HOOK,
            )
        if inspect.isawaitable(result) and loop is not None:
            # A sync function that returned a coroutine: it runs in the loop.
            with contextlib.suppress(RuntimeError):  # the loop is gone
                loop.call_soon_threadsafe(self._spawn, result)

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until the sync hooks have run for every event so far; False on timeout."""
        if self._thread is None or self._queue.unfinished_tasks == 0:
            return True
        try:
            await asyncio.wait_for(asyncio.to_thread(self._queue.join), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        self._closed = True
        if not await self.drain(HOOK_CLOSE_TIMEOUT):
            logger.warning(
                "event hooks still running %.1fs after aclose(): left behind", HOOK_CLOSE_TIMEOUT
            )
        with self._lock:
            if self._thread is not None:
                self._queue.put(_STOP)
                self._thread = None
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
