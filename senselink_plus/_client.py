"""`Client`: the public calls, their arguments and options (the request loop they share
is in `_session`)."""

from __future__ import annotations

import asyncio
import copy
import functools
import io
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import IO, Any, Literal

from . import _endpoints as ep
from ._auth import Credentials
from ._checkpoint import Checkpoint
from ._checks import (
    check_base_url,
    check_bool,
    check_int,
)
from ._envopts import resolve_retry, resolve_timeout
from ._events import EventHook
from ._exceptions import (
    APIError,
    ValidationError,
)
from ._files import check_target_path, output_target, write_file
from ._headers import USER_AGENT, check_headers
from ._http import HttpRequest
from ._models import CreatedRecord, FaceImage, Order, RecordPage, Rectangle
from ._pagination import RecordPager
from ._retry import RetryPolicy, Timeout, TimeoutInput, to_timeout
from ._session import Session
from ._transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    MAX_RESPONSE_LIMIT,
    AiohttpTransport,
    Transport,
)
from ._watch import Watch, watch_records

__all__ = ["DEFAULT_BASE_URL", "Client"]

DEFAULT_BASE_URL = "https://link.japancv.co.jp"
ENV_BASE_URL = "SENSELINK_BASE_URL"
DEFAULT_MAX_CONCURRENCY = 16


def _resolve_base_url(base_url: str | None, allow_insecure_http: bool) -> str:
    url = base_url if base_url is not None else os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    return check_base_url(
        url, allow_insecure_http=check_bool(allow_insecure_http, "allow_insecure_http")
    )


def _check_retry(retry: object) -> None:
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ValidationError("retry must be a RetryPolicy", field="retry")


def _check_transport(transport: object) -> None:
    if transport is not None and not (
        callable(getattr(transport, "send", None)) and callable(getattr(transport, "aclose", None))
    ):
        raise ValidationError(
            "transport must have async send(request) and aclose() (see Transport)",
            field="transport",
        )


class Client:
    """An asyncio client for the SenseLink Cloud Authentication Record Plus API.

    Credentials fall back to ``SENSELINK_APP_KEY`` / ``SENSELINK_APP_SECRET``, the
    base URL to ``SENSELINK_BASE_URL`` (default ``https://link.japancv.co.jp``), the
    timeout to ``SENSELINK_TIMEOUT`` (seconds, as ``timeout=n``) and the retry policy to
    ``SENSELINK_MAX_RETRIES`` (retries after the first attempt: ``n`` is
    ``RetryPolicy(max_attempts=n + 1)``). An argument wins over its variable; a bad value
    in a variable it reads is a `ValidationError` naming the variable.

    >>> async with Client() as client:  # doctest: +SKIP
    ...     created = await client.create_record("JKQ00009234", "face.jpg")
    ...     async for record in client.records(t0, t0 + timedelta(days=7)):
    ...         print(record.record_id, record.user_id)

    ``Client(app_key=None, app_secret=None, *, ...)`` takes, all optional:

    - ``app_key``, ``app_secret``: what every request is signed with (else the
      environment variables above; a missing one is a `ValidationError`).
    - ``base_url``: the service's URL; plain ``http://`` is refused unless it points at
      loopback or ``allow_insecure_http=True``.
    - ``transport``: a `Transport` to send through. Default: an `AiohttpTransport` that
      the client owns and closes; a transport passed in is never closed by the client.
    - ``timeout``: a `Timeout` or a number of seconds (the total), per attempt (else
      ``$SENSELINK_TIMEOUT``, else ``Timeout(connect=10.0, total=60.0)``).
    - ``retry``: a `RetryPolicy` (else ``$SENSELINK_MAX_RETRIES``, else
      ``RetryPolicy()``; ``RetryPolicy.none()`` never retries).
    - ``max_concurrency``: requests in flight across the client (default 16, None for
      no cap); ``rate_limit``: request starts per second (default None, no cap).
    - ``error_codes``: more envelope codes to map to error classes, e.g.
      ``{40001: AuthenticationError}``.
    - ``event_hooks``: hooks per event kind (``"start"``, ``"request"``,
      ``"response"``, ``"retry"``, ``"end"``, ``"headers"``), see `Event`.
    - ``max_response_bytes``: the largest response body the default transport accepts
      (default 16 MiB).
    - ``default_headers``: headers for every request. Every request also carries
      ``User-Agent: senselink-plus/<version> python/<x.y> aiohttp/<version>``.
    - ``clock`` (wall time, for signing), ``timer`` (monotonic, for deadlines),
      ``sleep`` and ``rng``: injectable so tests run without real waits.
    """

    def __init__(
        self,
        app_key: str | None = None,
        app_secret: str | None = None,
        *,
        base_url: str | None = None,
        transport: Transport | None = None,
        timeout: TimeoutInput | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int | None = DEFAULT_MAX_CONCURRENCY,
        rate_limit: float | None = None,
        error_codes: Mapping[int, type[APIError]] | None = None,
        event_hooks: Mapping[str, Sequence[EventHook]] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_insecure_http: bool = False,
        default_headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        credentials = Credentials.resolve(app_key, app_secret)
        self._base_url = _resolve_base_url(base_url, allow_insecure_http)
        chosen_timeout = resolve_timeout(timeout)
        self._timeout = chosen_timeout if chosen_timeout is not None else Timeout()
        retry = resolve_retry(retry)
        check_int(max_response_bytes, "max_response_bytes", maximum=MAX_RESPONSE_LIMIT)
        _check_transport(transport)
        extra = {} if default_headers is None else check_headers(default_headers, "default_headers")
        owns_transport = transport is None
        if transport is None:
            transport = AiohttpTransport(
                timeout=self._timeout, max_response_bytes=max_response_bytes
            )
        self._session = Session(
            credentials,
            transport,
            owns_transport=owns_transport,
            retry=retry,
            error_codes=error_codes,
            max_concurrency=max_concurrency,
            rate_limit=rate_limit,
            event_hooks=event_hooks,
            headers={"user-agent": USER_AGENT, **extra},
            # A transport passed in knows nothing of this client's timeout: each request
            # then carries it (and the attempt is bounded by it).
            timeout=chosen_timeout if not owns_transport else None,
            clock=clock,
            timer=timer,
            sleep=sleep,
            rng=rng,
        )
        self._app_key = credentials.app_key

    def with_options(
        self,
        *,
        timeout: TimeoutInput | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Client:
        """A copy of this client with other options, sharing everything else.

        The copy shares the transport (its connections), the concurrency and rate
        limits, the credentials and the event hooks, so it costs a few microseconds.
        ``timeout`` (a `Timeout` or seconds) applies to each of its requests, ``retry``
        replaces the policy, ``headers`` are added to every request (over the
        ``default_headers``). Ownership: the original owns the transport and hooks;
        closing a copy ends only the copy's calls, and closing the original closes every
        copy too.

        >>> slow = client.with_options(timeout=120, retry=slp.RetryPolicy(max_attempts=5))
        >>> jpeg = await slow.get_image(image_id)  # doctest: +SKIP
        """
        self._session.check_open()
        new_timeout = None if timeout is None else to_timeout(timeout)
        _check_retry(retry)
        extra = None if headers is None else check_headers(headers, "headers")
        clone = copy.copy(self)
        clone._session = self._session.derive(retry=retry, headers=extra, timeout=new_timeout)
        if new_timeout is not None:
            clone._timeout = new_timeout
        return clone

    def _for_call(self, timeout: TimeoutInput | None) -> Client:
        return self if timeout is None else self.with_options(timeout=timeout)

    def __repr__(self) -> str:
        return f"Client(app_key={self._app_key!r}, base_url={self._base_url!r})"

    @property
    def app_key(self) -> str:
        """The app key requests are signed with (not a secret)."""
        return self._app_key

    @property
    def base_url(self) -> str:
        """The service's base URL (read-only: make another client for another one)."""
        return self._base_url

    @property
    def timeout(self) -> Timeout:
        """The per-attempt time limits (read-only: see `with_options`)."""
        return self._timeout

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy (read-only: see `with_options`)."""
        return self._session.retry

    @property
    def closed(self) -> bool:
        """True once `aclose` has been called."""
        return self._session.closed

    async def __aenter__(self) -> Client:
        self._session.check_open()
        self._session.check_loop()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client and its `with_options` copies (and its own transport; a
        transport passed in stays open). Closing a copy leaves the shared transport open.

        Raises `EventLoopError` from a loop other than the one the client was used in.
        """
        await self._session.aclose()

    # --- the three endpoints ------------------------------------------------------------

    async def create_record(
        self,
        sn: str,
        image: bytes | str | os.PathLike[str] | FaceImage,
        *,
        timestamp: datetime | int | None = None,
        timezone: str | None = None,
        threshold: float | None = None,
        rectangle: Rectangle | Mapping[str, int] | None = None,
        extend: Mapping[str, Any] | str | None = None,
        process_mode: int | None = None,
        timeout: TimeoutInput | None = None,
    ) -> CreatedRecord:
        """Upload a face snapshot; the cloud searches it 1:N and stores a record.

        ``timestamp``: an aware datetime (sent as unix seconds, and the source of
        ``timezone`` when none is given) or an int sent as is; None means now.
        Retried only when the request provably did not reach the server; any other
        failure raises at once with ``record_may_exist`` set when it might have landed.
        ``timeout`` (a `Timeout` or seconds) overrides the client's for each attempt.

        >>> created = await client.create_record("JKQ00009234", "face.jpg",
        ...                                      extend={"gate": "north"})  # doctest: +SKIP
        """
        self._session.check_open()
        client = self._for_call(timeout)  # a bad timeout fails before the image is read
        # The client's "now" as whole unix seconds (in the local zone): what is sent,
        # without a datetime made per upload.
        now = int(self._session.clock()) if timestamp is None else None
        build = functools.partial(
            ep.build_create_record,
            self.base_url,
            sn,
            image,
            now=now,
            timestamp=timestamp,
            timezone=timezone,
            threshold=threshold,
            rectangle=rectangle,
            extend=extend,
            process_mode=process_mode,
        )
        # A path is read in a worker thread: file I/O (a slow disk, a network share) must
        # not stall the event loop. Bytes and FaceImage are built inline.
        is_path = isinstance(image, (str, os.PathLike))
        request = await asyncio.to_thread(build) if is_path else build()
        return await client._session.fetch(request, ep.parse_created_record)

    async def list_records(
        self,
        time_from: datetime | str,
        time_to: datetime | str,
        *,
        sn: str | None = None,
        order: Order | int = Order.ASCENDING,
        page: int = 1,
        size: int = ep.MAX_PAGE_SIZE,
        timeout: TimeoutInput | None = None,
    ) -> RecordPage:
        """Fetch one page of records stored in ``[time_from, time_to]`` (at most 24 h).

        Exactly one API call (plus retries). For longer ranges or every page, use
        `records`.

        >>> page = await client.list_records(t0, t0 + timedelta(hours=1), size=50)  # doctest: +SKIP
        """
        self._session.check_open()
        request = ep.build_list_records(
            self.base_url, time_from, time_to, sn=sn, order=order, page=page, size=size
        )
        client = self._for_call(timeout)
        return await client._session.fetch(request, ep.parse_record_page)

    def records(
        self,
        time_from: datetime | str,
        time_to: datetime | str,
        *,
        sn: str | None = None,
        order: Order | int = Order.ASCENDING,
        page_size: int = ep.MAX_PAGE_SIZE,
        concurrency: int = 4,
        max_items: int | None = None,
        timeout: TimeoutInput | None = None,
    ) -> RecordPager:
        """Every record in ``[time_from, time_to]``, any length, lazily.

        >>> async for record in client.records(t0, t0 + timedelta(days=90)):  # doctest: +SKIP
        ...     ...
        >>> async for page in client.records(t0, t1).pages():  # doctest: +SKIP
        ...     ...
        """
        self._session.check_open()
        caller = self._for_call(timeout)
        return RecordPager(
            caller._fetch_page,
            caller.base_url,
            time_from,
            time_to,
            sn=sn,
            order=order,
            page_size=page_size,
            concurrency=concurrency,
            max_items=max_items,
            pause=caller._session.pause,
        )

    def _fetch_page(self, request: HttpRequest) -> Awaitable[RecordPage]:
        return self._session.fetch(request, ep.parse_record_page)

    def watch(
        self,
        *,
        sn: str | None = None,
        since: datetime | str | None = None,
        poll_interval: float = 10.0,
        checkpoint: str | os.PathLike[str] | Checkpoint | None = None,
        overlap: timedelta = timedelta(minutes=2),
        timeout: TimeoutInput | None = None,
        acks: Literal["auto", "explicit"] = "auto",
        durable_acks: bool = True,
    ) -> Watch:
        """New records as they are stored, oldest first, each exactly once, forever.

        The position is in the server's time (``create_at`` and its ``Date`` header);
        the local clock only paces the polls, every ``poll_interval`` seconds, from the
        newest delivered record's time minus ``overlap`` (so a record committed a little
        late is not missed), skipping ids it has delivered. After downtime it catches up
        in 24 h windows. A failed poll is retried with back-off (honouring
        ``Retry-After``); three consecutive `AuthenticationError`s end the watch with
        that error, and `ValidationError`, `ClientClosedError`, `EventLoopError` and
        `RedirectError` end it at once. ``timeout`` applies to each request the watch
        sends. With ``checkpoint`` (a path, or an object with async
        ``load()``/``save(state)``, see `Checkpoint`), the position is saved after each
        page, each second while records flow, and at the end; a restart skips nothing,
        and repeats no acknowledged record even after a process kill (``kill -9``):
        each acknowledgement survives one before the next record is handed out (see
        `Watch`; ``durable_acks=False`` saves acknowledgements with the other saves
        instead, and a restart may repeat those since the last save). A checkpoint
        belongs to one query and one watcher at a time. Without ``since`` or a saved
        position it starts right after the newest record stored (or, with none in
        the 30 minutes either side of now, where that look began).

        A record is acknowledged (a restart does not repeat it) when you ask for the
        next one, when you leave ``async with client.watch(...) as watch:`` normally
        (``break`` included; an exception does not acknowledge it), or by
        ``watch.ack(record)``; with ``acks="explicit"`` only by ``watch.ack``, in
        delivery order. A saved position never moves backwards. ``watch.stop()``
        (safe from a signal handler) ends the iteration cleanly after saving;
        ``watch.state`` is the position to save with your own writes (see `Watch`).

        >>> async with client.watch(checkpoint="state.json") as watch:  # doctest: +SKIP
        ...     asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, watch.stop)
        ...     async for record in watch:
        ...         await handle(record)
        """
        self._session.check_open()
        caller = self._for_call(timeout)
        return watch_records(
            caller._session,
            caller.base_url,
            caller.app_key,
            sn=sn,
            since=since,
            poll_interval=poll_interval,
            checkpoint=checkpoint,
            overlap=overlap,
            acks=acks,
            durable_acks=durable_acks,
        )

    async def get_image(self, image_id: str, *, timeout: TimeoutInput | None = None) -> bytes:
        """Download a record's snapshot (JPEG or PNG bytes).

        >>> jpeg = await client.get_image(record.image_id)  # doctest: +SKIP
        """
        self._session.check_open()
        request = ep.build_get_image(self.base_url, image_id)
        return await self._for_call(timeout)._session.fetch(request, ep.parse_image)

    async def download_image(
        self,
        image_id: str,
        destination: str | os.PathLike[str] | IO[bytes],
        *,
        timeout: TimeoutInput | None = None,
    ) -> int:
        """Write a snapshot to a path (atomically) or a binary file; return its size.

        >>> await client.download_image(record.image_id, "snap.jpg")  # doctest: +SKIP
        """
        # Checked before the download, so a bad destination costs no request.
        target = _check_destination(destination)
        data = await self.get_image(image_id, timeout=timeout)
        if isinstance(target, str):
            write_file(target, data, "destination")
        else:
            target.write(data)
        return len(data)


def _check_destination(destination: object) -> str | IO[bytes]:
    """A writable path (its folder exists, it is not a folder) or a binary file object."""
    if isinstance(destination, (str, os.PathLike)):
        path = check_target_path(destination, "destination")
        output_target(path, "destination")  # a socket or block device: refused now
        return path
    if not callable(getattr(destination, "write", None)) or isinstance(destination, io.TextIOBase):
        raise ValidationError(
            "destination must be a path or a binary file object (opened with 'wb')",
            field="destination",
        )
    return destination  # type: ignore[return-value]
