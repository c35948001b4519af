"""A local SenseLink Plus cloud: an aiohttp server that speaks the record API."""

from __future__ import annotations

import asyncio
import email.utils
import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from ._emulator_db import open_store
from ._emulator_faults import CHAOS_KINDS, Chaos, Fault, FaultPlan, ReceivedRequest, redact_body
from ._emulator_store import (
    MATCHED_SCORE,
    UNMATCHED_SCORE,
    ImagesView,
    RecordStore,
    image_content_type,
)
from ._emulator_validation import NO_FACE, ParamError, parse_create, parse_list
from ._emulator_wire import (
    check_auth,
    drop_connection,
    error_response,
    fault_response,
    gmt_offset,
    natural_status,
    ok_response,
)

if TYPE_CHECKING:
    from .._client import Client

__all__ = ["Emulator"]

RECORD_PATH = "/api/v1/plus/record"
IMAGE_PATH = "/api/v1/plus/image/{image_id}"
# Large enough for a 1 MB image in base64 plus the other fields; bigger bodies get 30001.
_MAX_BODY = 16 * 1024 * 1024
_NOT_JSON = object()


async def _read_body(request: web.Request) -> tuple[Any, bool]:
    """A POST's decoded JSON body (`_NOT_JSON` when it is not JSON; None for a GET) and
    whether it was over the size limit."""
    if request.method != "POST":
        return None, False
    too_large = False
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raw, too_large = b"", True
    try:
        return orjson.loads(raw), too_large
    except orjson.JSONDecodeError:
        return _NOT_JSON, too_large


class Emulator:
    """A faithful in-memory stand-in for the SenseLink Plus cloud, served on localhost.

    >>> async with Emulator() as emu:  # doctest: +SKIP
    ...     emu.enroll(42, face_jpeg)
    ...     async with emu.client() as client:
    ...         created = await client.create_record("SN1", face_jpeg)

    Every argument is keyword-only and optional:

    - ``host``, ``port``: where to listen (default ``127.0.0.1`` and a free port; see
      `base_url` once started).
    - ``app_key``, ``app_secret``: the credentials it accepts (`client` uses them).
    - ``clock``: the wall time in Unix seconds (default `time.time`), for tests that
      control time.
    - ``clock_offset`` (a timedelta or seconds, settable later) runs the server's clock
      ahead of ``clock`` (behind when negative), as a real server's may be: its ``Date``
      header, ``create_at`` stamps, the signature time check and retention follow it.
    - ``error_status``: the HTTP status of its error envelopes (default 200, as the
      business errors of the cloud may come); None gives each error its natural status
      (400 for 30001 and 30003; the code itself for 401, 404, 429, ...).
    - ``retention``: how long records are kept (default 90 days, as the cloud's three
      months).
    - ``max_skew``: how far a request's signed timestamp may be from the server's clock
      (default 30 minutes, as the cloud).
    - ``first_record_id``: the first ``record_id`` given (default 1,000,000).
    - ``request_log_size``: how many received requests `requests` keeps (default
      10,000).
    - ``db``: a SQLite file that keeps the records and their snapshots across restarts
      (default None: in memory only). An emulator on the same file lists what it
      holds, with the same ids; enrollments are not kept.

    >>> emu = Emulator(clock_offset=timedelta(minutes=-10))  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        app_key: str = "emulator-app-key",
        app_secret: str = "emulator-app-secret",
        clock: Callable[[], float] = time.time,
        clock_offset: timedelta | float = 0.0,
        error_status: int | None = 200,
        retention: timedelta = timedelta(days=90),
        max_skew: timedelta = timedelta(minutes=30),
        first_record_id: int = 1_000_000,
        request_log_size: int = 10_000,
        db: str | os.PathLike[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.app_key = app_key
        self.app_secret = app_secret
        self.clock = clock
        self.clock_offset = clock_offset
        self.error_status = error_status
        self.max_skew = max_skew
        kept_ms = retention // timedelta(milliseconds=1)
        self._store = (
            RecordStore(self._now_ms, retention_ms=kept_ms, first_record_id=first_record_id)
            if db is None
            else open_store(db, self._now_ms, retention_ms=kept_ms, first_record_id=first_record_id)
        )
        self._faults = FaultPlan()
        self._chaos: Chaos | None = None
        self._requests: deque[ReceivedRequest] = deque(maxlen=request_log_size)
        self._enrolled: dict[bytes, int] = {}
        self._no_face: set[bytes] = set()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    @property
    def clock_offset(self) -> float:
        """Seconds the server's clock runs ahead of ``clock`` (negative: behind)."""
        return self._clock_offset

    @clock_offset.setter
    def clock_offset(self, value: timedelta | float) -> None:
        seconds = value.total_seconds() if isinstance(value, timedelta) else value
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"clock_offset must be a timedelta or seconds, not {value!r}")
        self._clock_offset = float(seconds)

    def now(self) -> float:
        """The server's time (Unix seconds): ``clock()`` plus ``clock_offset``."""
        return self.clock() + self._clock_offset

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start serving on ``host:port`` (a free port when 0)."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_post(RECORD_PATH, self._on_create, name="create")
        app.router.add_get(RECORD_PATH, self._on_list, name="list")
        app.router.add_get(IMAGE_PATH, self._on_image, name="image")
        # handler_cancellation: a client that gives up mid-delay ends the handler too,
        # so stop() never waits on a sleep nobody is listening to.
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._stopping = asyncio.Event()
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop serving; calling it again does nothing."""
        runner, self._runner = self._runner, None
        if runner is not None:
            # Delayed requests are cut off (dropped) so stopping never waits on them.
            self._stopping.set()
            await runner.cleanup()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """Where the emulator listens, e.g. ``http://127.0.0.1:54321``."""
        if self._runner is None:
            raise RuntimeError("the emulator is not running: await start() or use async with")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def client(self, **options: Any) -> Client:
        """A `Client` pointed at this emulator with its credentials.

        >>> async with emu.client(retry=RetryPolicy.none()) as client:  # doctest: +SKIP
        ...     page = await client.list_records(t0, t1)
        """
        from .._client import Client

        # Any of these may be overridden, e.g. a wrong app_secret to test auth failures.
        options.setdefault("app_key", self.app_key)
        options.setdefault("app_secret", self.app_secret)
        options.setdefault("base_url", self.base_url)
        return Client(**options)

    # -- test helpers ----------------------------------------------------------------

    def enroll(self, user_id: int, image_bytes: bytes) -> None:
        """Register a person: a posted image with exactly these bytes matches ``user_id``.

        >>> emu.enroll(42, Path("alice.jpg").read_bytes())  # doctest: +SKIP
        """
        if type(user_id) is not int or user_id < 0:
            raise ValueError(f"user_id is {user_id!r}; it must be a non-negative int")
        self._enrolled[bytes(image_bytes)] = user_id

    def mark_no_face(self, image_bytes: bytes) -> None:
        """Make a posted image with exactly these bytes answer 30003 (no face detected).

        >>> emu.mark_no_face(Path("wall.jpg").read_bytes())  # doctest: +SKIP
        """
        self._no_face.add(bytes(image_bytes))

    def seed(
        self,
        n: int,
        *,
        start: datetime,
        span: timedelta,
        sn: str | Sequence[str] = "SEED0001",
        matched_every: int = 3,
    ) -> range:
        """Append ``n`` records spread evenly over ``[start, start + span]``; return their ids.

        Devices in ``sn`` take turns; every ``matched_every``-th record (0: none) is
        matched to an enrolled user (users 1-10 when nobody is enrolled). Seeded records
        share one small JPEG snapshot and take their ``timezone`` from ``start``.

        >>> emu.seed(1_000_000, start=datetime(2024, 1, 1, tzinfo=UTC),  # doctest: +SKIP
        ...          span=timedelta(days=30), sn=["GATE-A", "GATE-B"])
        range(1000000, 2000000)
        """
        if start.utcoffset() is None:
            raise ValueError("start is a naive datetime; give it a timezone")
        sns = [sn] if isinstance(sn, str) else list(sn)
        users = sorted(set(self._enrolled.values())) or list(range(1, 11))
        return self._store.seed(
            n,
            start_ms=(start - datetime(1970, 1, 1, tzinfo=timezone.utc))
            // timedelta(milliseconds=1),
            span_ms=span // timedelta(milliseconds=1),
            sns=sns,
            timezone=gmt_offset(start),
            matched_every=matched_every,
            users=users,
        )

    @property
    def records(self) -> list[dict[str, Any]]:
        """The visible records in wire shape, ascending ``record_id`` (built on each access)."""
        return self._store.records()

    @property
    def images(self) -> Mapping[str, bytes]:
        """A live read-only view ``image_id -> bytes`` of the visible records' snapshots."""
        return ImagesView(self._store)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """The requests received so far, oldest first (the newest 10,000 by default)."""
        return list(self._requests)

    def reset_requests(self) -> None:
        """Forget the requests received so far."""
        self._requests.clear()

    # -- fault injection -------------------------------------------------------------

    def fail(
        self,
        route: str,
        status: int = 503,
        times: int = 1,
        retry_after: float | str | None = None,
        code: int | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests to ``route`` with HTTP ``status`` and an envelope.

        >>> emu.fail("list", status=429, retry_after=1)  # doctest: +SKIP
        """
        if isinstance(retry_after, float) and retry_after.is_integer():
            retry_after = int(retry_after)
        self._faults.add(
            Fault(
                "fail",
                route,
                times,
                status=status,
                code=code,
                message=message,
                retry_after=None if retry_after is None else str(retry_after),
            )
        )

    def fail_envelope(
        self, route: str, code: int, message: str | None = None, times: int = 1
    ) -> None:
        """Answer the next ``times`` requests with HTTP 200 and an error envelope.

        >>> emu.fail_envelope("create", 503, "Service Unavailable")  # doctest: +SKIP
        """
        self._faults.add(Fault("envelope", route, times, code=code, message=message))

    def drop(self, route: str, times: int = 1, after_processing: bool = False) -> None:
        """Close the connection with no response; ``after_processing`` does the work first.

        >>> emu.drop("create", after_processing=True)  # doctest: +SKIP
        """
        self._faults.add(Fault("drop", route, times, after_processing=after_processing))

    def malformed(self, route: str, times: int = 1) -> None:
        """Answer with HTTP 200, ``application/json`` and a truncated body.

        >>> emu.malformed("list")  # doctest: +SKIP
        """
        self._faults.add(Fault("malformed", route, times))

    def delay(self, route: str, seconds: float, times: int = 1) -> None:
        """Wait ``seconds`` (real time) before answering, then answer as usual.

        >>> emu.delay("image", 0.5)  # doctest: +SKIP
        """
        self._faults.add(Fault("delay", route, times, seconds=seconds))

    def chaos(
        self,
        rate: float,
        *,
        seed: int | None = None,
        route: str = "*",
        delay: tuple[float, float] = (0.05, 0.5),
        retry_after: str = "1",
        kinds: tuple[str, ...] = CHAOS_KINDS,
    ) -> Chaos:
        """Fail a random share ``rate`` of requests with faults drawn from ``kinds``.

        Queued faults (`fail`, `drop`, ...) still come first. Returns the `Chaos` object,
        whose ``counts`` tally what was injected; ``emu.chaos(0)`` turns it off.

        >>> chaos = emu.chaos(0.2, seed=1)  # doctest: +SKIP
        >>> chaos.counts["drop-after-processing"]  # doctest: +SKIP
        """
        self._chaos = Chaos(
            rate, seed=seed, route=route, delay=delay, retry_after=retry_after, kinds=kinds
        )
        return self._chaos

    def clear_faults(self) -> None:
        """Forget every fault not yet consumed, and stop any chaos."""
        self._faults.clear()
        self._chaos = None

    # -- request handling ------------------------------------------------------------

    async def _stopped_during(self, seconds: float) -> bool:
        """Sleep ``seconds``; True when stop() began meanwhile (the sleep is cut short)."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            return False
        return True

    def _now_ms(self) -> int:
        return round(self.now() * 1000)

    async def _on_create(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "create")

    async def _on_list(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "list")

    async def _on_image(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "image")

    async def _serve(self, request: web.Request, route: str) -> web.StreamResponse:
        response = await self._respond(request, route)
        # The server's clock, not aiohttp's (the local one), as a skewed server would.
        response.headers["Date"] = email.utils.formatdate(self.now(), usegmt=True)
        return response

    async def _respond(self, request: web.Request, route: str) -> web.StreamResponse:
        query = {key: request.query.getone(key) for key in request.query}
        body, too_large = await _read_body(request)
        auth_error = check_auth(
            query,
            app_key=self.app_key,
            app_secret=self.app_secret,
            now_ms=self._now_ms(),
            max_skew_ms=self.max_skew // timedelta(milliseconds=1),
        )
        # Faults fire before auth and validation, like a proxy in front of the service
        # failing; the request is still logged with its auth verdict.
        delay, fault = self._take_faults(route)
        self._log(request, route, query, body, auth_ok=auth_error is None, met=fault or delay)
        if delay is not None and await self._stopped_during(delay.seconds):
            return drop_connection(request)
        if fault is not None and not (fault.kind == "drop" and fault.after_processing):
            return fault_response(request, fault)
        response = self._process(request, route, body, query, auth_error, too_large=too_large)
        if fault is not None:  # a drop after processing: the work is done, the reply lost
            return fault_response(request, fault)
        return response

    def _log(
        self,
        request: web.Request,
        route: str,
        query: dict[str, str],
        body: Any,
        *,
        auth_ok: bool,
        met: Fault | None,
    ) -> None:
        self._requests.append(
            ReceivedRequest(
                method=request.method,
                path=request.path,
                route=route,
                query=query,
                json=None if body is _NOT_JSON else redact_body(body),
                auth_ok=auth_ok,
                received_at=self.now(),
                fault=None if met is None else met.kind,
            )
        )

    def _take_faults(self, route: str) -> tuple[Fault | None, Fault | None]:
        """The delay and the fault this request meets: queued ones first, else chaos's."""
        delay = self._faults.take(route, delay=True)
        fault = self._faults.take(route, delay=False)
        if fault is None and delay is None and self._chaos is not None:
            drawn = self._chaos.draw(route)
            if drawn is not None and drawn.kind == "delay":
                delay = drawn
            else:
                fault = drawn
        return delay, fault

    def _process(
        self,
        request: web.Request,
        route: str,
        body: Any,
        query: Mapping[str, str],
        auth_error: str | None,
        *,
        too_large: bool,
    ) -> web.Response:
        """The answer the service gives once the request reaches it."""
        if auth_error is not None:
            return self._error(401, auth_error)
        if too_large:
            return self._error(30001, f"the request body is over {_MAX_BODY} bytes")
        try:
            return self._answer(request, route, body, query)
        except ParamError as error:
            return self._error(error.code, error.desc)

    def _answer(
        self, request: web.Request, route: str, body: Any, query: Mapping[str, str]
    ) -> web.Response:
        if route == "create":
            if body is _NOT_JSON:
                raise ParamError("the request body is not valid JSON")
            params = parse_create(body)
            if params.image in self._no_face:
                raise ParamError("no face was found in the image", code=NO_FACE)
            user_id = self._enrolled.get(params.image)
            score = MATCHED_SCORE if user_id is not None else UNMATCHED_SCORE
            if score < params.threshold:
                user_id = None
            record_id, image_id = self._store.append(
                sn=params.sn,
                device_timestamp=params.timestamp,
                timezone=params.timezone,
                extend=params.extend,
                user_id=user_id,
                score=score,
                image=params.image,
            )
            return ok_response({"record_id": record_id, "image_id": image_id})
        if route == "list":
            q = parse_list(query)
            total, page = self._store.query(
                q.from_ms, q.to_ms, sn=q.sn, descending=q.descending, page=q.page, size=q.size
            )
            return ok_response(
                {"page_num": q.page, "page_size": q.size, "total": total, "list": page}
            )
        image_id = request.match_info["image_id"]
        data = self._store.image(image_id)
        if data is None:
            return self._error(404, f"no image with id {image_id!r} (unknown or expired)")
        return web.Response(body=data, content_type=image_content_type(data))

    def _error(self, code: int, desc: str | None) -> web.Response:
        status = natural_status(code) if self.error_status is None else self.error_status
        return error_response(code, desc, status=status)
