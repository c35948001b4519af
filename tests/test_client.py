"""The client end to end through a MockTransport: signing, retries, errors, secrets."""

from __future__ import annotations

import asyncio
import base64
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from senselink_plus import (
    APIError,
    AuthenticationError,
    Client,
    ClientClosedError,
    ConnectError,
    CreatedRecord,
    HttpRequest,
    HttpResponse,
    InvalidParameterError,
    RateLimitError,
    RequestTimeout,
    ResponseError,
    RetryPolicy,
    ServerError,
    TransportError,
    ValidationError,
)
from senselink_plus._auth import compute_sign
from senselink_plus.testing import MockTransport
from tests.conftest import (
    APP_KEY,
    APP_SECRET,
    JPEG,
    MakeClient,
    error,
    ok,
    transport_of,
)
from tests.fake_clock import FakeClock

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
CREATED = {"record_id": 930490000, "image_id": "5fceef6e1ddb2800010d1409"}
EMPTY_PAGE = {"page_num": 1, "page_size": 100, "total": 0, "list": []}


def scripted(*steps: HttpResponse | Exception) -> Any:
    """A handler that answers with each step in turn (raising the exceptions)."""
    queue = list(steps)

    def handler(request: HttpRequest) -> HttpResponse:
        step = queue.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    return handler


def params(request: HttpRequest) -> dict[str, str]:
    return dict(request.params)


class TestSigning:
    async def test_every_attempt_is_signed_afresh(
        self, make_client: MakeClient, fake_time: FakeClock
    ) -> None:
        client = make_client(scripted(error(503, status=503), ok(EMPTY_PAGE)))
        await client.list_records(T0, T0 + timedelta(hours=1))
        first, second = (params(r) for r in transport_of(client).requests)
        assert first["app_key"] == APP_KEY
        assert len(first["timestamp"]) == 13
        assert first["timestamp"] != second["timestamp"]
        for sent in (first, second):
            assert sent["sign"] == compute_sign(sent["timestamp"], APP_SECRET)
        assert int(second["timestamp"]) == int(fake_time.now * 1000)

    async def test_post_is_signed_in_the_query_too(self, make_client: MakeClient) -> None:
        client = make_client(scripted(ok(CREATED)))
        created = await client.create_record("SN1", JPEG)
        assert created == CreatedRecord(**CREATED)
        sent = transport_of(client).requests[0]
        assert {"app_key", "timestamp", "sign"} <= params(sent).keys()
        assert b"sign" not in (sent.content or b"")


class TestRetries:
    async def test_get_recovers_from_transient_failures(
        self, make_client: MakeClient, fake_time: FakeClock
    ) -> None:
        client = make_client(
            scripted(
                TransportError("dropped"),
                HttpResponse(200, {}, b'{"code": 200, "da'),
                ok(EMPTY_PAGE),
            ),
            retry=RetryPolicy(max_attempts=3, initial_delay=1.0, max_delay=8.0),
        )
        page = await client.list_records(T0, T0 + timedelta(hours=1))
        assert page.total == 0
        assert len(transport_of(client).requests) == 3
        assert 0.5 <= fake_time.sleeps[0] <= 1.0
        assert 1.0 <= fake_time.sleeps[1] <= 2.0

    @pytest.mark.parametrize(
        "failure",
        [
            error(503, status=503),
            error(500),  # a server-error envelope with HTTP 200
            error(429, status=429),
            HttpResponse(408, {}, b""),
            HttpResponse(502, {}, b"<html>bad gateway</html>"),
            RequestTimeout("slow"),
            ConnectError("refused"),
        ],
    )
    async def test_get_retries_each_transient_kind(
        self, make_client: MakeClient, failure: HttpResponse | Exception
    ) -> None:
        client = make_client(scripted(failure, ok(EMPTY_PAGE)))
        await client.list_records(T0, T0 + timedelta(hours=1))
        assert len(transport_of(client).requests) == 2

    async def test_get_gives_up_after_max_attempts(self, make_client: MakeClient) -> None:
        client = make_client(
            scripted(*[error(503, "busy", status=503)] * 4), retry=RetryPolicy(max_attempts=4)
        )
        with pytest.raises(ServerError, match="busy") as info:
            await client.list_records(T0, T0 + timedelta(hours=1))
        assert len(transport_of(client).requests) == 4
        assert info.value.request is not None
        assert info.value.request.path == "/api/v1/plus/record"
        assert ("order", "1") in info.value.request.params
        assert not info.value.record_may_exist

    @pytest.mark.parametrize(
        "refusal", [error(30001, "Param Invalid"), error(401, status=401), error(99999)]
    )
    async def test_refusals_are_not_retried(
        self, make_client: MakeClient, refusal: HttpResponse
    ) -> None:
        client = make_client(scripted(refusal))
        with pytest.raises(APIError) as info:
            await client.list_records(T0, T0 + timedelta(hours=1))
        assert not isinstance(info.value, (ServerError, RateLimitError))
        assert len(transport_of(client).requests) == 1

    async def test_retry_after_is_honoured(
        self, make_client: MakeClient, fake_time: FakeClock
    ) -> None:
        client = make_client(
            scripted(error(429, status=429, headers={"Retry-After": "12"}), ok(EMPTY_PAGE))
        )
        await client.list_records(T0, T0 + timedelta(hours=1))
        assert fake_time.sleeps == [12.0]

    async def test_retry_after_beyond_the_cap_raises_at_once(
        self, make_client: MakeClient, fake_time: FakeClock
    ) -> None:
        client = make_client(
            scripted(error(429, status=429, headers={"Retry-After": "3600"})),
            retry=RetryPolicy(max_retry_after=60),
        )
        with pytest.raises(RateLimitError) as info:
            await client.list_records(T0, T0 + timedelta(hours=1))
        assert info.value.retry_after == 3600
        assert fake_time.sleeps == []

    async def test_deadline_bounds_the_whole_call(
        self, make_client: MakeClient, fake_time: FakeClock
    ) -> None:
        client = make_client(
            scripted(*[error(503, status=503)] * 10),
            retry=RetryPolicy(max_attempts=10, initial_delay=4, max_delay=4, deadline=10),
        )
        with pytest.raises(ServerError):
            await client.list_records(T0, T0 + timedelta(hours=1))
        # Each wait is 2..4 s; the call stops retrying before a wait would pass 10 s.
        attempts = len(transport_of(client).requests)
        assert attempts == len(fake_time.sleeps) + 1
        assert 3 <= attempts <= 6
        assert 6 < sum(fake_time.sleeps) <= 10  # the next wait (<= 4 s) would not fit

    async def test_deadline_cuts_a_hanging_attempt(self, make_client: MakeClient) -> None:
        async def hang(request: HttpRequest) -> HttpResponse:
            await asyncio.sleep(30)
            raise AssertionError("unreachable")

        client = make_client(
            hang, retry=RetryPolicy(deadline=0.05), timer=asyncio.get_running_loop().time
        )
        with pytest.raises(RequestTimeout, match="deadline"):
            await client.get_image("abc")

    async def test_none_policy_sends_once(self, make_client: MakeClient) -> None:
        client = make_client(scripted(error(503, status=503)), retry=RetryPolicy.none())
        with pytest.raises(ServerError):
            await client.get_image("abc")
        assert len(transport_of(client).requests) == 1


class TestCreateIsNeverDuplicated:
    @pytest.mark.parametrize(
        "failure", [ConnectError("refused"), error(429, status=429), error(429)]
    )
    async def test_retried_when_the_server_did_not_take_it(
        self, make_client: MakeClient, failure: HttpResponse | Exception
    ) -> None:
        client = make_client(scripted(failure, ok(CREATED)))
        assert await client.create_record("SN1", JPEG) == CreatedRecord(**CREATED)
        assert len(transport_of(client).requests) == 2

    @pytest.mark.parametrize(
        ("failure", "cls"),
        [
            (RequestTimeout("slow"), RequestTimeout),
            (TransportError("dropped"), TransportError),
            (error(503, status=503), ServerError),
            (error(500), ServerError),
            (HttpResponse(502, {}, b""), ServerError),
            (HttpResponse(200, {}, b"garbage"), ResponseError),
        ],
    )
    async def test_raised_at_once_when_it_may_have_landed(
        self, make_client: MakeClient, failure: HttpResponse | Exception, cls: type
    ) -> None:
        client = make_client(scripted(failure, ok(CREATED)))
        with pytest.raises(cls) as info:
            await client.create_record("SN1", JPEG)
        assert type(info.value) is cls
        assert len(transport_of(client).requests) == 1
        assert info.value.record_may_exist
        assert "may have been created" in str(info.value)

    @pytest.mark.parametrize(
        ("failure", "cls"),
        [(error(30001, "Param Invalid"), InvalidParameterError), (error(401), AuthenticationError)],
    )
    async def test_refusal_says_nothing_was_stored(
        self, make_client: MakeClient, failure: HttpResponse, cls: type
    ) -> None:
        client = make_client(scripted(failure))
        with pytest.raises(cls) as info:
            await client.create_record("SN1", JPEG)
        assert not info.value.record_may_exist
        assert "may have been created" not in str(info.value)

    async def test_exhausted_connect_errors_stay_connect_errors(
        self, make_client: MakeClient
    ) -> None:
        client = make_client(scripted(*[ConnectError("refused")] * 3))
        with pytest.raises(ConnectError) as info:
            await client.create_record("SN1", JPEG)
        assert not info.value.record_may_exist
        assert len(transport_of(client).requests) == 3

    async def test_bad_input_sends_nothing(self, make_client: MakeClient) -> None:
        client = make_client(scripted())
        with pytest.raises(ValidationError):
            await client.create_record("SN1", b"not an image")
        with pytest.raises(ValidationError):
            await client.list_records(T0, T0 + timedelta(days=2))
        with pytest.raises(ValidationError):
            client.records(T0, T0 - timedelta(days=2))
        assert transport_of(client).requests == []


class TestLifecycle:
    async def test_closed_client_refuses_calls(self, make_client: MakeClient) -> None:
        client = make_client(scripted())
        await client.aclose()
        await client.aclose()
        assert client.closed
        with pytest.raises(ClientClosedError):
            await client.get_image("abc")
        with pytest.raises(ClientClosedError):
            client.records(T0, T0 + timedelta(hours=1))
        with pytest.raises(ClientClosedError):
            async with client:
                pass

    async def test_closing_during_a_retry_wait_fails_the_call(self, fake_time: FakeClock) -> None:
        holder: dict[str, Client] = {}

        async def close_while_waiting(seconds: float) -> None:
            await holder["client"].aclose()

        client = Client(
            APP_KEY,
            APP_SECRET,
            base_url="https://api.test",
            transport=MockTransport(scripted(error(503, status=503), ok(EMPTY_PAGE))),
            sleep=close_while_waiting,
        )
        holder["client"] = client
        with pytest.raises(ClientClosedError):
            await client.get_image("abc")

    async def test_a_user_transport_is_never_closed(self) -> None:
        transport = MockTransport(scripted())
        async with Client(APP_KEY, APP_SECRET, transport=transport):
            pass
        assert not transport.closed

    async def test_an_owned_transport_is_closed(self) -> None:
        client = Client(APP_KEY, APP_SECRET)
        await client.aclose()
        with pytest.raises(TransportError):
            await client._session.transport.send(HttpRequest("GET", "https://api.test/"))


class TestConfiguration:
    def test_env_fallbacks(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SENSELINK_APP_KEY", "env-key")
        monkeypatch.setenv("SENSELINK_APP_SECRET", "env-secret")
        monkeypatch.setenv("SENSELINK_BASE_URL", "https://link.bi.sensetime.com/")
        client = Client(transport=MockTransport(scripted()))
        assert client.app_key == "env-key"
        assert client.base_url == "https://link.bi.sensetime.com"

    def test_default_base_url(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("SENSELINK_BASE_URL", raising=False)
        assert Client("k", "s", transport=MockTransport(scripted())).base_url == (
            "https://link.japancv.co.jp"
        )

    def test_missing_credentials(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("SENSELINK_APP_KEY", raising=False)
        monkeypatch.delenv("SENSELINK_APP_SECRET", raising=False)
        with pytest.raises(ValidationError, match=r"app_secret \(or \$SENSELINK_APP_SECRET\)"):
            Client("key-only")
        with pytest.raises(ValidationError, match="app_key"):
            Client()

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://x",
            "link.japancv.co.jp",
            "http://example.com",
            "https://h.example#frag",
            "https://h.example/?x=1",
            "https://user:pw@h.example",
        ],
    )
    def test_bad_or_insecure_base_url(self, url: str) -> None:
        with pytest.raises(ValidationError) as info:
            Client("k", "s", base_url=url, transport=MockTransport(scripted()))
        assert info.value.field == "base_url"

    @pytest.mark.parametrize(
        "url", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:2"]
    )
    def test_plain_http_to_loopback_is_fine(self, url: str) -> None:
        Client("k", "s", base_url=url, transport=MockTransport(scripted()))

    def test_insecure_http_can_be_allowed(self) -> None:
        client = Client(
            "k",
            "s",
            base_url="http://gate.lan",
            allow_insecure_http=True,
            transport=MockTransport(scripted()),
        )
        assert client.base_url == "http://gate.lan"

    @pytest.mark.parametrize(
        ("option", "value"),
        [("max_concurrency", 0), ("rate_limit", 0), ("timeout", "5"), ("timeout", 0), ("retry", 3)],
    )
    def test_bad_options(self, option: str, value: Any) -> None:
        with pytest.raises(ValidationError):
            Client("k", "s", transport=MockTransport(scripted()), **{option: value})


class TestImages:
    async def test_get_and_download(self, make_client: MakeClient, tmp_path: Path) -> None:
        image = HttpResponse(200, {"content-type": "image/jpeg"}, JPEG)
        client = make_client(scripted(image, image, image))
        assert await client.get_image("5fceef6e1ddb2800010d1409") == JPEG
        target = tmp_path / "snap.jpg"
        assert await client.download_image("5fceef6e1ddb2800010d1409", target) == len(JPEG)
        assert target.read_bytes() == JPEG
        assert [p.name for p in tmp_path.iterdir()] == ["snap.jpg"]
        buffer = io.BytesIO()
        await client.download_image("5fceef6e1ddb2800010d1409", buffer)
        assert buffer.getvalue() == JPEG

    async def test_a_downloaded_file_gets_the_usual_permissions(
        self, make_client: MakeClient, tmp_path: Path
    ) -> None:
        import os

        client = make_client(scripted(HttpResponse(200, {"content-type": "image/jpeg"}, JPEG)))
        target = tmp_path / "snap.jpg"
        await client.download_image("abc", target)
        mask = os.umask(0)
        os.umask(mask)
        assert target.stat().st_mode & 0o777 == 0o666 & ~mask

    async def test_download_to_a_bad_destination(self, make_client: MakeClient) -> None:
        client = make_client(scripted())
        with pytest.raises(ValidationError):
            await client.download_image("abc", 42)  # type: ignore[arg-type]


class TestSecrets:
    async def test_nothing_secret_in_logs_reprs_or_errors(
        self, make_client: MakeClient, debug_logs: pytest.LogCaptureFixture
    ) -> None:
        marker = JPEG + b"FACE-BYTES-MARKER"
        client = make_client(
            scripted(
                ConnectError("refused"),
                ok(CREATED),
                error(30001, "Param Invalid", desc="bad photo"),
                TransportError("dropped"),
                error(503, status=503),
                ok(EMPTY_PAGE),
            )
        )
        await client.create_record("SN1", marker, extend={"k": "v"})
        with pytest.raises(InvalidParameterError) as refused:
            await client.create_record("SN1", marker)
        with pytest.raises(TransportError) as dropped:
            await client.create_record("SN1", marker)
        await client.list_records(T0, T0 + timedelta(hours=1))
        requests = transport_of(client).requests
        signs = [params(r)["sign"] for r in requests]
        texts = [
            debug_logs.text,
            repr(client),
            *(repr(r) for r in requests),
            str(refused.value),
            repr(refused.value),
            str(refused.value.request),
            str(dropped.value),
            repr(dropped.value),
        ]
        assert any("POST /api/v1/plus/record" in line for line in debug_logs.messages)
        for text in texts:
            assert APP_SECRET not in text
            assert "FACE-BYTES-MARKER" not in text
            assert base64.b64encode(marker).decode()[-20:] not in text
            for sign in signs:
                assert sign not in text


def test_create_record_takes_exactly_the_builders_arguments() -> None:
    # The public signature is written out for readers and IDEs; the sans-I/O builder
    # takes the same arguments: this keeps the two from drifting apart.
    import inspect

    from senselink_plus import _endpoints

    public = dict(inspect.signature(Client.create_record).parameters)
    built = dict(inspect.signature(_endpoints.build_create_record).parameters)
    for name in ("self", "timeout"):
        public.pop(name)
    for name in ("base_url", "now"):
        built.pop(name)
    assert [(p.name, p.kind, p.default) for p in public.values()] == [
        (p.name, p.kind, p.default) for p in built.values()
    ]
