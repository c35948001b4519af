"""Issue 11, the second red-team pass: a hostile network and a careless caller.

Redirects, the loopback check, frame locals, image paths that are not files, a client
used from another event loop, the umask, event hooks, CLI outputs and secrets, and
numbers JSON cannot carry.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import socket
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from senselink_plus import (
    AiohttpTransport,
    AuthenticationError,
    Client,
    ConnectError,
    Event,
    EventLoopError,
    FaceImage,
    FileCheckpoint,
    HttpRequest,
    HttpResponse,
    RedirectError,
    RequestTimeout,
    ResponseError,
    RetryPolicy,
    ServerError,
    Timeout,
    TransportError,
    ValidationError,
)
from senselink_plus import _events as events_module
from senselink_plus._auth import compute_sign
from senselink_plus._cli import main as cli_main
from senselink_plus._files import write_atomically
from senselink_plus._models import MAX_IMAGE_BYTES
from senselink_plus._retry import classify
from senselink_plus.testing import MockTransport
from tests.cli_helpers import EmulatorThread, part_files, seed, window
from tests.conftest import APP_KEY, APP_SECRET, JPEG, MakeClient, ok, transport_of

T0 = datetime(2024, 3, 1, tzinfo=timezone(timedelta(hours=9)))


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens here any more


# --- 2. loopback is parsed, not matched by prefix -----------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1.evil.com:8080",
        "http://127.attacker.example",
        "http://127.0.0.1.nip.io",
        "http://localhost.evil.com",
        "http://localhost.",
        "http://evil-localhost",
        "http://[::ffff:8.8.8.8]",
        "http://128.0.0.1",
        "http://0.0.0.0:8080",
    ],
)
def test_plain_http_to_a_name_that_only_looks_like_loopback_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="plain http") as caught:
        Client(APP_KEY, APP_SECRET, base_url=url)
    assert caught.value.field == "base_url"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.0.0.2",
        "http://127.255.255.254:1",
        "http://[::1]:8080",
        "http://localhost:8080",
        "http://LOCALHOST",
    ],
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert Client(APP_KEY, APP_SECRET, base_url=url).base_url == url


# --- 9. numbers JSON cannot carry ------------------------------------------------------------


@pytest.mark.parametrize(
    ("extend", "where"),
    [
        ({"temp": float("nan")}, "extend['temp']"),
        ({"temp": float("inf")}, "extend['temp']"),
        ({"a": {"b": [1.0, float("-inf")]}}, "extend['a']['b'][1]"),
        ({"a": ({"t": float("nan")},)}, "extend['a'][0]['t']"),
    ],
)
async def test_nan_and_infinities_in_extend_are_refused_naming_the_key(
    make_client: MakeClient, extend: dict[str, Any], where: str
) -> None:
    client = make_client(lambda request: pytest.fail("nothing may be sent"))
    with pytest.raises(ValidationError) as caught:
        await client.create_record("GATE-1", JPEG, extend=extend)
    assert caught.value.field == "extend"
    assert where in str(caught.value)
    assert transport_of(client).requests == []


# --- 6. the process umask is never changed ---------------------------------------------------


def test_atomic_writes_never_touch_the_process_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Setting the umask, even for a moment, makes another thread's new files take the
    # wrong mode: no write may call os.umask at all.
    mask = os.umask(0o027)
    try:
        calls: list[tuple[Any, ...]] = []
        monkeypatch.setattr(os, "umask", lambda *args: calls.append(args) or 0)
        target = tmp_path / "state.json"
        write_atomically(str(target), b"{}", durable=True)
        write_atomically(str(target), b"{}")
        asyncio.run(FileCheckpoint(tmp_path / "cp.json").save({}))  # no lock file: not acquired
        assert calls == []
        monkeypatch.undo()
        assert target.stat().st_mode & 0o777 == 0o640  # 0o666 less the umask, as usual
        assert (tmp_path / "cp.json").stat().st_mode & 0o777 == 0o640
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cp.json", "state.json"]
    finally:
        os.umask(mask)


# --- a loopback server that misbehaves on demand -----------------------------------------------

FIXED_NOW = 1_700_000_000.0
FIXED_SIGN = compute_sign(int(FIXED_NOW * 1000), APP_SECRET)
CREATED = {"record_id": 7, "image_id": "0" * 24}


def no_sleep_client(base_url: str, **options: Any) -> Client:
    async def no_sleep(seconds: float) -> None:
        pass

    options.setdefault("retry", RetryPolicy(max_attempts=3))
    return Client(
        APP_KEY, APP_SECRET, base_url=base_url, clock=lambda: FIXED_NOW, sleep=no_sleep, **options
    )


async def make_call(client: Client, call: str) -> object:
    if call == "create":
        return await client.create_record("GATE-1", JPEG)
    if call == "list":
        return await client.list_records(T0, T0 + timedelta(hours=1))
    return await client.get_image("0" * 24)


class Misbehaving:
    """A loopback server whose every answer is ``self.answer(request)``; counts requests."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.answer: Callable[[web.Request], Awaitable[web.StreamResponse]] = self.ok
        self.server: TestServer | None = None

    async def ok(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"code": 200, "message": "OK", "data": CREATED})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path))
        await request.read()
        return await self.answer(request)

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def __aenter__(self) -> Misbehaving:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server(access_log=None)  # its lines would hold the sign
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.server.close()


# --- 1. redirects are never followed ---------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("call", ["create", "list", "image"])
async def test_a_redirect_to_another_host_is_not_followed_nor_retried(
    status: int, call: str
) -> None:
    async with Misbehaving() as api, Misbehaving() as elsewhere:

        async def redirect(request: web.Request) -> web.StreamResponse:
            # Echoes the signed query, as an http -> https redirect would.
            target = f"{elsewhere.base_url}{request.path_qs}"
            return web.Response(status=status, headers={"Location": target})

        api.answer = redirect
        async with no_sleep_client(api.base_url) as client:
            with pytest.raises(RedirectError) as caught:
                await make_call(client, call)
        assert elsewhere.seen == []
        assert len(api.seen) == 1  # never retried, GET or POST
        error = caught.value
        assert error.status == status
        assert error.location == elsewhere.base_url
        assert isinstance(error, ResponseError)
        assert f"HTTP {status} redirect to '{elsewhere.base_url}'" in str(error)
        assert FIXED_SIGN not in str(error)
        assert "sign=" not in str(error)


async def test_a_relative_redirect_is_refused_too() -> None:
    async with Misbehaving() as api:

        async def redirect(request: web.Request) -> web.StreamResponse:
            return web.Response(status=307, headers={"Location": "/v2" + request.path_qs})

        api.answer = redirect
        async with no_sleep_client(api.base_url) as client:
            with pytest.raises(RedirectError, match="to a path on the same host") as caught:
                await client.list_records(T0, T0 + timedelta(hours=1))
        assert caught.value.location is None
        assert len(api.seen) == 1


async def test_a_user_transport_that_follows_redirects_keeps_its_choice() -> None:
    async with Misbehaving() as api, Misbehaving() as moved:

        async def redirect(request: web.Request) -> web.StreamResponse:
            raise web.HTTPPermanentRedirect(f"{moved.base_url}{request.path_qs}")

        api.answer = redirect

        class Following(AiohttpTransport):
            async def send(self, request: HttpRequest) -> HttpResponse:
                async with (
                    aiohttp.ClientSession() as session,
                    session.request(
                        request.method, request.url, params=request.params, data=request.content
                    ) as reply,
                ):  # aiohttp's default: follow
                    return HttpResponse(reply.status, dict(reply.headers), await reply.read())

        async with no_sleep_client(api.base_url, transport=Following()) as client:
            created = await client.create_record("GATE-1", JPEG)
        assert created.record_id == 7
        assert moved.seen == [("POST", "/api/v1/plus/record")]


# --- 3. no frame on an error's traceback holds the sign -------------------------------------------


async def _stall(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = 1000
    await response.prepare(request)
    await response.write(b'{"code"')
    await asyncio.Event().wait()  # cancelled when the client gives up and the server closes
    return response


async def _truncate(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = 1000
    await response.prepare(request)
    await response.write(b'{"code": 200, "data": ')
    assert request.transport is not None
    request.transport.close()
    return response


async def _too_big_declared(request: web.Request) -> web.StreamResponse:
    return web.Response(body=b"x" * 5000, content_type="application/json")


async def _too_big_streamed(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(10):
        await response.write(b"x" * 1000)
    await response.write_eof()
    return response


async def _drop(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.close()
    raise ConnectionResetError("dropped on purpose")


def _status(status: int, body: bytes = b"", **headers: str) -> Any:
    async def answer(request: web.Request) -> web.StreamResponse:
        location = {k: v.format(qs=request.query_string) for k, v in headers.items()}
        return web.Response(status=status, body=body, headers=location)

    return answer


LEAKY_PATHS: dict[str, tuple[Any, dict[str, Any], type[BaseException]]] = {
    "over-cap-declared": (_too_big_declared, {"max_response_bytes": 1000}, TransportError),
    "over-cap-streamed": (_too_big_streamed, {"max_response_bytes": 1000}, TransportError),
    "body-timeout": (_stall, {"timeout": Timeout(connect=2.0, total=0.1)}, RequestTimeout),
    "deadline": (_stall, {"retry": RetryPolicy(deadline=0.1)}, RequestTimeout),
    "truncated-body": (_truncate, {}, TransportError),
    "dropped": (_drop, {}, TransportError),
    "connect-refused": (None, {}, ConnectError),
    "server-error": (_status(503, b'{"code": 503, "message": "busy"}'), {}, ServerError),
    "auth": (_status(401, b'{"code": 401, "message": "bad sign"}'), {}, AuthenticationError),
    "not-json": (_status(200, b"<html>"), {}, ResponseError),
    "redirect-echoing-sign": (
        _status(307, Location="https://127.0.0.1:9/x?{qs}", X_Echo="sign={qs}"),
        {},
        RedirectError,
    ),
}


@pytest.mark.parametrize("path", LEAKY_PATHS)
@pytest.mark.parametrize("call", ["create", "list"])
async def test_no_frame_on_any_error_traceback_holds_the_sign_or_secret(
    path: str, call: str
) -> None:
    answer, options, expected = LEAKY_PATHS[path]
    async with Misbehaving() as api:
        if answer is not None:
            api.answer = answer
        base_url = api.base_url if answer is not None else f"http://127.0.0.1:{closed_port()}"
        async with no_sleep_client(base_url, **options) as client:
            with pytest.raises(expected) as caught:
                await make_call(client, call)
    error = caught.value
    text = "".join(
        traceback.TracebackException(
            type(error), error, error.__traceback__, capture_locals=True
        ).format(chain=True)
    )
    assert "response = " in text or "error = " in text  # the locals really were captured
    assert FIXED_SIGN not in text
    assert APP_SECRET not in text
    assert "/9j/" not in text  # nor the image, base64


# --- 5. a client belongs to the event loop it was first used in ----------------------------------


def test_a_client_used_from_another_event_loop_raises_event_loop_error() -> None:
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    api = Misbehaving()
    try:
        first.run_until_complete(api.__aenter__())
        client = no_sleep_client(api.base_url)
        first.run_until_complete(make_call(client, "create"))
        for call in ("create", "list", "image"):
            with pytest.raises(EventLoopError, match="belongs to the event loop it was first"):
                second.run_until_complete(make_call(client, call))
        with pytest.raises(EventLoopError) as caught:
            second.run_until_complete(client.aclose())
        assert not isinstance(caught.value, TransportError)
        assert not classify(caught.value, idempotent=True).retry
        assert api.seen == [("POST", "/api/v1/plus/record")]  # nothing sent, nothing retried
        assert not client.closed
        first.run_until_complete(client.aclose())  # in its own loop it closes as usual
        assert client.closed
    finally:
        first.run_until_complete(api.__aexit__())
        first.close()
        second.close()


def test_an_aiohttp_transport_used_from_another_event_loop_raises_event_loop_error() -> None:
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    api = Misbehaving()
    transport = AiohttpTransport()
    try:
        first.run_until_complete(api.__aenter__())
        request = HttpRequest("GET", api.base_url + "/x")
        assert first.run_until_complete(transport.send(request)).status == 200
        with pytest.raises(EventLoopError):
            second.run_until_complete(transport.send(request))
        assert len(api.seen) == 1
    finally:
        first.run_until_complete(transport.aclose())
        first.run_until_complete(api.__aexit__())
        first.close()
        second.close()


# --- 4. image paths that are not regular files --------------------------------------------------


@contextlib.contextmanager
def fifo_guard(path: Path) -> Iterator[list[bool]]:
    """If a reader blocks on the FIFO ``path`` (the bug), unblock it after 5 s by opening
    the write end, and say so; the fixed code never waits for it."""
    unblocked: list[bool] = []

    def unblock() -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader: nothing blocked
            return
        unblocked.append(True)
        os.close(fd)

    timer = threading.Timer(5, unblock)
    timer.start()
    try:
        yield unblocked
    finally:
        timer.cancel()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_from_path_refuses_a_fifo_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "face.jpg"
    os.mkfifo(fifo)
    with fifo_guard(fifo) as unblocked, pytest.raises(ValidationError, match="a FIFO"):
        FaceImage.from_path(fifo)
    assert unblocked == []


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_from_path_refuses_dev_zero_before_reading_it() -> None:
    with pytest.raises(ValidationError, match="character device, not a regular file") as caught:
        FaceImage.from_path("/dev/zero")
    assert caught.value.field == "image"


def test_from_path_refuses_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is a folder, not a regular file"):
        FaceImage.from_path(tmp_path)


def test_from_path_reads_at_most_the_limit_plus_one_byte_whatever_the_size_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(JPEG + bytes(3 * MAX_IMAGE_BYTES))
    real_stat, real_fstat, real_read = os.stat, os.fstat, os.read

    def small(result: os.stat_result) -> os.stat_result:
        fields = list(result)
        fields[6] = 100  # st_size: as a file still being written (or a /proc file) says
        return os.stat_result(fields)

    read: list[int] = []

    def counting_read(fd: int, n: int) -> bytes:
        data = real_read(fd, n)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "stat", lambda p, *a, **k: small(real_stat(p, *a, **k)))
    monkeypatch.setattr(os, "fstat", lambda fd: small(real_fstat(fd)))
    monkeypatch.setattr(os, "read", counting_read)
    with pytest.raises(ValidationError, match=f"'{big}' is over {MAX_IMAGE_BYTES} bytes"):
        FaceImage.from_path(big)
    assert sum(read) == MAX_IMAGE_BYTES + 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
async def test_create_record_with_a_fifo_path_never_blocks_the_loop(
    make_client: MakeClient, tmp_path: Path
) -> None:
    fifo = tmp_path / "face.jpg"
    os.mkfifo(fifo)
    client = make_client(lambda request: pytest.fail("nothing may be sent"))
    with fifo_guard(fifo) as unblocked, pytest.raises(ValidationError, match="a FIFO"):
        await client.create_record("GATE-1", fifo)
    assert unblocked == []


async def test_create_record_reads_a_path_off_the_event_loop(
    make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = tmp_path / "face.jpg"
    photo.write_bytes(JPEG)
    threads: list[str] = []
    real = FaceImage.from_path.__func__  # type: ignore[attr-defined]

    def spy(cls: type[FaceImage], *args: Any, **kwargs: Any) -> FaceImage:
        threads.append(threading.current_thread().name)
        return real(cls, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(FaceImage, "from_path", classmethod(spy))
    client = make_client(lambda request: ok(CREATED))
    assert (await client.create_record("GATE-1", photo)).record_id == 7
    assert threads
    assert threading.main_thread().name not in threads


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_cli_upload_refuses_a_fifo_and_a_folder_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "face.jpg"
    os.mkfifo(fifo)
    monkeypatch.setenv("SENSELINK_APP_KEY", APP_KEY)
    monkeypatch.setenv("SENSELINK_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("SENSELINK_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    with fifo_guard(fifo) as unblocked:
        code = cli_main(["upload", "--sn", "GATE-1", str(fifo), str(tmp_path)])
    assert unblocked == []
    assert code == 1
    out = capsys.readouterr().out
    assert f"{fifo}\terror ValidationError: image '{fifo}' is a FIFO" in out
    assert f"{tmp_path}\terror ValidationError: image '{tmp_path}' is a folder" in out


# --- 8. CLI outputs and secrets ---------------------------------------------------------------


OLD_EXPORT = '{"record_id": 1}\n' * 1000


def test_records_to_a_file_that_fails_leaves_the_file_as_it_was(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cli_emulator, 50)
    target = tmp_path / "export.jsonl"
    target.write_text(OLD_EXPORT)
    assert cli_main(["records", *window(), "-o", str(target), "--app-secret", "wrong"]) == 1
    assert "AuthenticationError" in capsys.readouterr().err
    assert target.read_text() == OLD_EXPORT
    assert part_files(tmp_path) == []


def test_records_to_a_file_replaces_it_whole_and_keeps_its_mode(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cli_emulator, 50)
    target = tmp_path / "export.jsonl"
    target.write_text(OLD_EXPORT)
    target.chmod(0o600)
    assert cli_main(["records", *window(), "-o", str(target)]) == 0
    lines = target.read_text().splitlines()
    assert len(lines) == 50
    assert all(json.loads(line)["record_id"] for line in lines)
    assert target.stat().st_mode & 0o777 == 0o600
    assert part_files(tmp_path) == []


def test_the_app_secret_can_come_from_a_file_or_stdin_and_argv_warns(
    cli_emulator: EmulatorThread,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed(cli_emulator, 5)
    secret = cli_emulator.emu.app_secret
    monkeypatch.delenv("SENSELINK_APP_SECRET")
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret + "\n")
    with caplog.at_level(logging.WARNING, logger="senselink_plus"):
        assert cli_main(["records", *window(), "--app-secret-file", str(secret_file)]) == 0
        monkeypatch.setattr(sys, "stdin", io.StringIO(secret + "\n"))
        assert cli_main(["records", *window(), "--app-secret-file", "-"]) == 0
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert cli_main(["records", *window(), "--app-secret", secret]) == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "visible to every user" in warnings[0].getMessage()
    both = ["records", *window(), "--app-secret", secret, "--app-secret-file", str(secret_file)]
    assert cli_main(both) == 2
    assert cli_main(["records", *window(), "--app-secret-file", str(tmp_path / "none")]) == 2


# --- 7. event hooks: never on the call path, bounded, and BaseException not lost ----------------

EMPTY_PAGE = {"page_num": 1, "page_size": 100, "total": 0, "list": []}


async def test_a_slow_sync_hook_does_not_delay_the_call(make_client: MakeClient) -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow(event: Event) -> None:
        started.set()
        release.wait(5)  # 5 s: only when the hook runs inline, the bug
        finished.set()

    client = make_client(lambda request: ok(EMPTY_PAGE), event_hooks={"request": [slow]})
    page = await client.list_records(T0, T0 + timedelta(hours=1))
    assert page.total == 0
    assert not finished.is_set()  # the call returned while the hook still ran
    release.set()
    assert started.wait(5)
    await client.aclose()
    assert finished.is_set()  # aclose let the queued hook finish


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
        await asyncio.wait_for(client.aclose(), 5)  # 5 s: only if aclose hangs, the bug
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
