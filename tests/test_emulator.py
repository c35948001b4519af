"""The emulator against the wire format: plain aiohttp requests signed by hand."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from senselink_plus._auth import compute_sign
from senselink_plus.testing import Emulator
from senselink_plus.testing._emulator_store import SEED_IMAGE

pytest_plugins = ["pytester"]

JST = timezone(timedelta(hours=9))
UTC = timezone.utc
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z, the fake clock's start
RECORD = "/api/v1/plus/record"
JPEG = b"\xff\xd8\xff\xe0" + b"face of alice"
JPEG_B = b"\xff\xd8\xff\xe0" + b"face of bob"
PNG = b"\x89PNG\r\n\x1a\n" + b"a png snapshot"
RECORD_KEYS = [
    "record_id",
    "sn",
    "image_id",
    "user_id",
    "verify_score",
    "device_timestamp",
    "timezone",
    "create_at",
    "extend",
]


class FakeClock:
    """A clock the test moves by hand (seconds, like time.time)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@attrs.frozen
class Reply:
    status: int
    content_type: str
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def code(self) -> int:
        return int(self.json["code"])

    @property
    def data(self) -> Any:
        assert self.json["code"] == 200, self.json
        return self.json["data"]


class Api:
    """Signs requests as the cloud expects (query app_key/timestamp/sign) and sends them."""

    def __init__(self, session: aiohttp.ClientSession, emu: Emulator) -> None:
        self.session = session
        self.emu = emu

    def auth(
        self,
        *,
        key: str | None = None,
        secret: str | None = None,
        timestamp: int | str | None = None,
    ) -> dict[str, str]:
        stamp = str(round(self.emu.clock() * 1000) if timestamp is None else timestamp)
        return {
            "app_key": key or self.emu.app_key,
            "timestamp": stamp,
            "sign": compute_sign(stamp, secret or self.emu.app_secret),
        }

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        auth: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Reply:
        query = {
            **(self.auth() if auth is None else auth),
            **{k: str(v) for k, v in (params or {}).items()},
        }
        if "json" in kwargs:
            # A stream, because aiohttp warns (an error under -W error) on big raw bodies.
            kwargs["data"] = io.BytesIO(orjson.dumps(kwargs.pop("json")))
            kwargs["headers"] = {"Content-Type": "application/json"}
        async with self.session.request(
            method, self.emu.base_url + path, params=query, **kwargs
        ) as response:
            return Reply(
                response.status, response.content_type, response.headers, await response.read()
            )

    async def create(self, image: bytes = JPEG, **fields: Any) -> Reply:
        body = {
            "sn": "SN1",
            "timestamp": 1658136457,
            "image": {"data": base64.b64encode(image).decode()},
            **fields,
        }
        return await self.send("POST", RECORD, json=body)

    async def list(self, time_from: datetime, time_to: datetime, **params: Any) -> Reply:
        return await self.send(
            "GET",
            RECORD,
            params={"time_from": time_from.isoformat(), "time_to": time_to.isoformat(), **params},
        )

    async def image(self, image_id: str) -> Reply:
        return await self.send("GET", f"/api/v1/plus/image/{image_id}")


def at(seconds: float, tz: timezone = JST) -> datetime:
    return datetime.fromtimestamp(seconds, tz)


Factory = Callable[..., Awaitable[tuple[Emulator, Api]]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def api(senselink_emulator: Emulator, session: aiohttp.ClientSession) -> Api:
    return Api(session, senselink_emulator)


@pytest.fixture
async def make(session: aiohttp.ClientSession) -> AsyncIterator[Factory]:
    """Start emulators with custom settings (a fake clock by default)."""
    async with AsyncExitStack() as stack:

        async def factory(**options: Any) -> tuple[Emulator, Api]:
            options.setdefault("clock", FakeClock())
            emu = await stack.enter_async_context(Emulator(**options))
            return emu, Api(session, emu)

        yield factory


# -- lifecycle and plugin -------------------------------------------------------------


async def test_plugin_fixture_serves(senselink_emulator: Emulator, api: Api) -> None:
    assert senselink_emulator.base_url.startswith("http://127.0.0.1:")
    assert (await api.list(at(time.time() - 60), at(time.time()))).data["total"] == 0


def test_plugin_in_a_users_suite(pytester: pytest.Pytester) -> None:
    """The entry point gives a user's strict-mode suite the fixture with no setup."""
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile("""
        import pytest

        @pytest.mark.asyncio
        async def test_uses_it(senselink_emulator):
            assert senselink_emulator.base_url.startswith("http://127.0.0.1:")
            assert senselink_emulator.records == []
    """)
    pytester.runpytest("-W", "error").assert_outcomes(passed=1)


async def test_lifecycle() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.base_url
    await emu.start()
    with pytest.raises(RuntimeError, match="already running"):
        await emu.start()
    assert emu.port != 0
    await emu.stop()
    await emu.stop()  # idempotent


# -- auth -----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["app_key", "timestamp", "sign"])
async def test_auth_parameter_missing(api: Api, missing: str) -> None:
    auth = api.auth()
    del auth[missing]
    reply = await api.send("GET", RECORD, auth=auth)
    assert (reply.status, reply.code, reply.json["message"]) == (200, 401, "Unauthorized")
    assert missing in reply.json["desc"]


@pytest.mark.parametrize(
    ("change", "desc"),
    [
        ({"key": "someone-else"}, "unknown app_key"),
        ({"secret": "wrong-secret"}, "sign does not match"),
        ({"timestamp": "17e11"}, "digits"),
    ],
)
async def test_auth_refused(make: Factory, change: dict[str, str], desc: str) -> None:
    _, api = await make()
    for path in (RECORD, "/api/v1/plus/image/" + "0" * 24):
        reply = await api.send("GET", path, auth=api.auth(**change))
        assert reply.code == 401
        assert desc in reply.json["desc"]
    reply = await api.send("POST", RECORD, auth=api.auth(**change), json={})
    assert reply.code == 401


async def test_auth_uppercase_sign_refused(make: Factory) -> None:
    _, api = await make()
    auth = api.auth()
    auth["sign"] = auth["sign"].upper()
    assert (await api.send("GET", RECORD, auth=auth)).code == 401


async def test_auth_clock_skew(make: Factory) -> None:
    emu, api = await make()
    now_ms = round(emu.clock() * 1000)
    limit = 30 * 60 * 1000
    for stamp in (now_ms - limit, now_ms + limit):
        reply = await api.send("GET", RECORD, auth=api.auth(timestamp=stamp))
        assert reply.code == 30001  # auth passed; the missing window is the complaint
    for stamp in (now_ms - limit - 1, now_ms + limit + 1):
        reply = await api.send("GET", RECORD, auth=api.auth(timestamp=stamp))
        assert reply.code == 401
        assert "away from the server clock" in reply.json["desc"]
    assert [r.auth_ok for r in emu.requests] == [True, True, False, False]


async def test_auth_checked_before_validation(make: Factory) -> None:
    _, api = await make()
    reply = await api.send("POST", RECORD, auth=api.auth(secret="x"), data=b"not json")
    assert reply.code == 401


# -- create ---------------------------------------------------------------------------

MB = 1_048_576
B64 = base64.b64encode


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sn": "SN1",
        "timestamp": 1658136457,
        "timezone": "GMT+9:00",
        "threshold": 0.9,
        "image": {"data": B64(JPEG).decode()},
        "process_mode": 0,
        "extend": '{"gate": "north"}',
    }
    for key, value in changes.items():
        if value is ...:
            del body[key]
        else:
            body[key] = value
    return body


def _image(data: bytes | str, **rectangle: Any) -> dict[str, Any]:
    image: dict[str, Any] = {"data": data if isinstance(data, str) else B64(data).decode()}
    if rectangle:
        image["rectangle"] = rectangle
    return image


RECT = {"top": 0, "left": 0, "width": 10, "height": 10}
INVALID_CREATE = {
    "not an object": [1, 2],
    "sn missing": _body(sn=...),
    "sn empty": _body(sn=""),
    "sn number": _body(sn=12),
    "timestamp missing": _body(timestamp=...),
    "timestamp string": _body(timestamp="1658136457"),
    "timestamp float": _body(timestamp=1.5),
    "timestamp bool": _body(timestamp=True),
    "timestamp over int64": _body(timestamp=2**63),
    "timezone number": _body(timezone=9),
    "threshold string": _body(threshold="0.9"),
    "threshold below 0": _body(threshold=-0.01),
    "threshold above 1": _body(threshold=1.01),
    "threshold bool": _body(threshold=True),
    "image missing": _body(image=...),
    "image string": _body(image="abc"),
    "image data missing": _body(image={}),
    "image data empty": _body(image={"data": ""}),
    "image data not base64": _body(image=_image("@@@@")),
    "image data with newline": _body(
        image=_image(B64(JPEG).decode()[:8] + "\n" + B64(JPEG).decode()[8:])
    ),
    "image gif": _body(image=_image(b"GIF89a....")),
    "image over 1 MB": _body(image=_image(b"\xff\xd8\xff" + bytes(MB - 2))),
    "image far over 1 MB": _body(image=_image(b"\xff\xd8\xff" + bytes(2 * MB))),
    "rectangle not object": _body(image={**_image(JPEG), "rectangle": [1, 2, 3, 4]}),
    "rectangle width missing": _body(image=_image(JPEG, top=0, left=0, height=1)),
    "rectangle top negative": _body(image=_image(JPEG, **{**RECT, "top": -1})),
    "rectangle left float": _body(image=_image(JPEG, **{**RECT, "left": 1.0})),
    "rectangle width zero": _body(image=_image(JPEG, **{**RECT, "width": 0})),
    "rectangle height bool": _body(image=_image(JPEG, **{**RECT, "height": True})),
    "process_mode 1": _body(process_mode=1),
    "process_mode string": _body(process_mode="0"),
    "extend object": _body(extend={"gate": "north"}),
    "extend not JSON": _body(extend="{gate: north}"),
    "extend over 1 KB": _body(extend=orjson.dumps("あ" * 341).decode()),  # 1025 bytes
}


@pytest.mark.parametrize("body", INVALID_CREATE.values(), ids=INVALID_CREATE.keys())
async def test_create_invalid(api: Api, body: Any) -> None:
    reply = await api.send("POST", RECORD, json=body)
    assert (reply.status, reply.code, reply.json["message"]) == (200, 30001, "Param Invalid")
    assert reply.json["desc"]
    assert api.emu.records == []


@pytest.mark.parametrize("raw", [b"", b"{", b"sn=SN1"], ids=["empty", "truncated", "form"])
async def test_create_body_not_json(api: Api, raw: bytes) -> None:
    reply = await api.send("POST", RECORD, data=raw)
    assert reply.code == 30001
    assert api.emu.requests[-1].json is None


VALID_CREATE = {
    "minimal": {"sn": "S", "timestamp": -5, "image": {"data": B64(JPEG).decode()}},
    "nulls": _body(timezone=None, threshold=None, process_mode=None, extend=None),
    "png": _body(image=_image(PNG)),
    "image exactly 1 MB": _body(image=_image(b"\xff\xd8\xff" + bytes(MB - 3))),
    "rectangle": _body(image=_image(JPEG, top=0, left=0, width=1, height=1)),
    "threshold 0": _body(threshold=0),
    "threshold 1": _body(threshold=1),
    "extend exactly 1 KB": _body(extend=orjson.dumps("あ" * 340 + "xx").decode()),
    "extend JSON scalar": _body(extend="3"),
    "timestamp milliseconds": _body(timestamp=1659423903029),
}


@pytest.mark.parametrize("body", VALID_CREATE.values(), ids=VALID_CREATE.keys())
async def test_create_valid(api: Api, body: dict[str, Any]) -> None:
    reply = await api.send("POST", RECORD, json=body)
    assert reply.code == 200, reply.json
    (record,) = api.emu.records
    assert reply.data == {"record_id": record["record_id"], "image_id": record["image_id"]}
    assert record["device_timestamp"] == body["timestamp"]
    assert record["extend"] == body.get("extend")


async def test_round_trip(make: Factory) -> None:
    emu, api = await make(first_record_id=930490000)
    created = (
        await api.create(JPEG, sn="GATE-1", timezone="GMT+9:00", extend='{"gate":"north"}')
    ).data
    assert created["record_id"] == 930490000
    assert len(created["image_id"]) == 24
    assert created["image_id"] == created["image_id"].lower()
    int(created["image_id"], 16)
    emu.clock.advance(1.5)  # type: ignore[attr-defined]
    second = (await api.create(PNG, sn="GATE-2", timestamp=1)).data
    assert second["record_id"] == 930490001
    assert second["image_id"] != created["image_id"]

    page = (await api.list(at(T0 - 10), at(T0 + 10), order=1)).data
    assert (page["page_num"], page["page_size"], page["total"]) == (1, 20, 2)
    first = page["list"][0]
    assert list(first) == RECORD_KEYS
    assert first == {
        "record_id": 930490000,
        "sn": "GATE-1",
        "image_id": created["image_id"],
        "user_id": None,
        "verify_score": 0.31,
        "device_timestamp": 1658136457,
        "timezone": "GMT+9:00",
        "create_at": round(T0 * 1000),
        "extend": '{"gate":"north"}',
    }
    assert page["list"][1]["create_at"] == round(T0 * 1000) + 1500
    assert page["list"][1]["timezone"] is None
    assert (await api.list(at(T0 - 10), at(T0 + 10))).data["list"][0]["record_id"] == 930490001

    jpeg = await api.image(created["image_id"])
    assert (jpeg.status, jpeg.content_type, jpeg.body) == (200, "image/jpeg", JPEG)
    png = await api.image(second["image_id"])
    assert (png.status, png.content_type, png.body) == (200, "image/png", PNG)
    assert dict(emu.images) == {created["image_id"]: JPEG, second["image_id"]: PNG}


@pytest.mark.parametrize("image_id", ["0" * 24, "nothex" * 4, "abc"])
async def test_image_unknown(api: Api, image_id: str) -> None:
    created = (await api.create()).data
    # Same tag and time, another record id: still unknown.
    forged = created["image_id"][:14] + f"{created['record_id'] + 1:010x}"
    for unknown in (image_id, forged):
        reply = await api.image(unknown)
        assert (reply.status, reply.content_type, reply.code) == (200, "application/json", 404)
        assert reply.json["message"] == "Not Found"


# -- face matching --------------------------------------------------------------------


async def test_enroll_matches_identical_bytes(api: Api) -> None:
    api.emu.enroll(42, JPEG)
    await api.create(JPEG)
    await api.create(JPEG, threshold=0.98)  # the score is below this threshold
    await api.create(JPEG_B)
    assert [(r["user_id"], r["verify_score"]) for r in api.emu.records] == [
        (42, 0.97),
        (None, 0.97),
        (None, 0.31),
    ]


async def test_mark_no_face(api: Api) -> None:
    api.emu.mark_no_face(JPEG_B)
    reply = await api.create(JPEG_B)
    assert (reply.code, reply.json["message"]) == (30003, "No Face Detected In The Image")
    assert api.emu.records == []
    assert (await api.create(JPEG)).code == 200


def test_enroll_rejects_bad_user_id() -> None:
    with pytest.raises(ValueError, match="user_id"):
        Emulator().enroll(True, JPEG)  # type: ignore[arg-type]


# -- error shapes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_status", "expected"),
    [(200, [200, 200, 200, 200]), (None, [400, 400, 401, 404]), (418, [418, 418, 418, 418])],
)
async def test_error_shapes(make: Factory, error_status: int | None, expected: list[int]) -> None:
    emu, api = await make(error_status=error_status)
    emu.mark_no_face(JPEG_B)
    replies = [
        await api.create(b"GIF89a"),
        await api.create(JPEG_B),
        await api.send("GET", RECORD, auth=api.auth(secret="bad")),
        await api.image("f" * 24),
    ]
    assert [r.status for r in replies] == expected
    assert [r.code for r in replies] == [30001, 30003, 401, 404]
    assert all(r.content_type == "application/json" for r in replies)
    assert all(r.json["data"] is None and r.json["desc"] for r in replies)
    assert (await api.create(JPEG)).status == 200


# -- list validation ------------------------------------------------------------------

FROM, TO = "2022-12-11T00:00:00+09:00", "2022-12-11T23:59:59+09:00"
INVALID_LIST = {
    "time_from missing": {"time_to": TO},
    "time_to missing": {"time_from": FROM},
    "time_from empty": {"time_from": "", "time_to": TO},
    "naive": {"time_from": "2022-12-11T00:00:00", "time_to": TO},
    "date only": {"time_from": "2022-12-11", "time_to": TO},
    "unparsable": {"time_from": "yesterday", "time_to": TO},
    "month 13": {"time_from": "2022-13-11T00:00:00+09:00", "time_to": TO},
    "offset 24h": {"time_from": "2022-12-11T00:00:00+24:00", "time_to": TO},
    "space for plus": {"time_from": "2022-12-11T00:00:00 09:00", "time_to": TO},
    "epoch number": {"time_from": "1670684400", "time_to": TO},
    "reversed": {"time_from": TO, "time_to": FROM},
    "over 24 h": {"time_from": FROM, "time_to": "2022-12-12T00:00:00.001+09:00"},
    "over 24 h across zones": {
        "time_from": "2022-12-11T00:00:00Z",
        "time_to": "2022-12-12T09:00:01+09:00",
    },
    "order 2": {"time_from": FROM, "time_to": TO, "order": "2"},
    "order text": {"time_from": FROM, "time_to": TO, "order": "asc"},
    "page 0": {"time_from": FROM, "time_to": TO, "page": "0"},
    "page negative": {"time_from": FROM, "time_to": TO, "page": "-1"},
    "page float": {"time_from": FROM, "time_to": TO, "page": "1.0"},
    "size 0": {"time_from": FROM, "time_to": TO, "size": "0"},
    "size 101": {"time_from": FROM, "time_to": TO, "size": "101"},
    "size text": {"time_from": FROM, "time_to": TO, "size": "many"},
}


@pytest.mark.parametrize("params", INVALID_LIST.values(), ids=INVALID_LIST.keys())
async def test_list_invalid(api: Api, params: dict[str, str]) -> None:
    reply = await api.send("GET", RECORD, params=params)
    assert (reply.status, reply.code) == (200, 30001), reply.json
    assert reply.json["desc"]


VALID_LIST = {
    "exactly 24 h": {"time_from": FROM, "time_to": "2022-12-12T00:00:00+09:00"},
    "zulu and fraction": {
        "time_from": "2022-12-11T00:00:00.123456789Z",
        "time_to": "2022-12-11T00:00:00.5Z",
    },
    "equal bounds": {"time_from": FROM, "time_to": FROM},
    "all options": {
        "time_from": FROM,
        "time_to": TO,
        "order": "1",
        "page": "3",
        "size": "100",
        "sn": "SN1",
        "unknown": "ignored",
    },
}


@pytest.mark.parametrize("params", VALID_LIST.values(), ids=VALID_LIST.keys())
async def test_list_valid(api: Api, params: dict[str, str]) -> None:
    data = (await api.send("GET", RECORD, params=params)).data
    assert data["list"] == []
    assert (data["page_num"], data["page_size"]) == (
        int(params.get("page", 1)),
        int(params.get("size", 20)),
    )


# -- listing against a brute-force filter ---------------------------------------------

steps = st.one_of(st.integers(-3, 3_000).map(lambda s: s * 1000), st.integers(-2_000, 4_000_000))
offsets = st.sampled_from([timedelta(0), timedelta(hours=9), timedelta(hours=-3, minutes=-30)])


@settings(max_examples=60, deadline=None)
@given(
    arrivals=st.lists(st.tuples(steps, st.sampled_from(["A", "B", "C"])), max_size=24),
    retention=st.sampled_from([timedelta(days=90), timedelta(hours=2)]),
    data=st.data(),
)
async def test_listing_matches_brute_force(
    arrivals: list[tuple[int, str]], retention: timedelta, data: st.DataObject
) -> None:
    clock = FakeClock()
    created: list[dict[str, Any]] = []
    async with Emulator(clock=clock, retention=retention) as emu, aiohttp.ClientSession() as http:
        api = Api(http, emu)
        for step, sn in arrivals:
            clock.advance(step / 1000)
            record_id = (await api.create(JPEG, sn=sn)).data["record_id"]
            create_at = max(round(clock.now * 1000), created[-1]["create_at"] if created else 0)
            created.append({"record_id": record_id, "sn": sn, "create_at": create_at})
        # With the short retention some records have expired (and been compacted away).
        oldest = round(clock.now * 1000) - retention // timedelta(milliseconds=1)
        expected = [r for r in created if r["create_at"] >= oldest]
        assert [(r["record_id"], r["sn"], r["create_at"]) for r in emu.records] == [
            (r["record_id"], r["sn"], r["create_at"]) for r in expected
        ]
        # Bounds on whole seconds, often exactly on a record's create_at (inclusive ends).
        moments = [r["create_at"] // 1000 for r in created] or [int(T0)]
        bound = st.one_of(st.sampled_from(moments), st.integers(int(T0) - 5, max(moments) + 5))
        for _ in range(3):
            low = data.draw(bound)
            high = min(data.draw(st.integers(low, max(low, max(moments) + 5))), low + 86_400)
            sn = data.draw(st.sampled_from([None, "A", "B", "Z"]))
            order = data.draw(st.sampled_from([0, 1]))
            size = data.draw(st.integers(1, 7))
            page = data.draw(st.integers(1, 5))
            zone = timezone(data.draw(offsets))
            params: dict[str, Any] = {"order": order, "page": page, "size": size}
            if sn is not None:
                params["sn"] = sn
            reply = (await api.list(at(low, zone), at(high, zone), **params)).data
            hits = [
                r["record_id"]
                for r in expected
                if low * 1000 <= r["create_at"] <= high * 1000 and sn in (None, r["sn"])
            ]
            if order == 0:
                hits.reverse()
            assert reply["total"] == len(hits)
            assert [r["record_id"] for r in reply["list"]] == hits[(page - 1) * size :][:size]
            assert (reply["page_num"], reply["page_size"]) == (page, size)


async def test_clock_going_back_keeps_create_at_ordered(make: Factory) -> None:
    emu, api = await make()
    await api.create()
    emu.clock.advance(-60)  # type: ignore[attr-defined]
    await api.create()
    first, second = emu.records
    assert second["create_at"] == first["create_at"] == round(T0 * 1000)


# -- retention ------------------------------------------------------------------------


async def test_retention_hides_old_records_and_images(make: Factory) -> None:
    emu, api = await make(retention=timedelta(days=90))
    old = (await api.create(JPEG)).data
    emu.clock.advance(86_400)  # type: ignore[attr-defined]
    young = (await api.create(PNG)).data
    emu.clock.advance(89 * 86_400)  # type: ignore[attr-defined]
    # The old record is now exactly 90 days old: still kept.
    assert [r["record_id"] for r in emu.records] == [old["record_id"], young["record_id"]]
    emu.clock.advance(0.001)  # type: ignore[attr-defined]
    assert [r["record_id"] for r in emu.records] == [young["record_id"]]
    reply = await api.list(at(T0), at(T0 + 86_400))
    assert [r["record_id"] for r in reply.data["list"]] == [young["record_id"]]
    assert reply.data["total"] == 1
    assert (await api.image(old["image_id"])).code == 404
    assert (await api.image(young["image_id"])).body == PNG
    assert list(emu.images) == [young["image_id"]]
    assert old["image_id"] not in emu.images


async def test_retention_compacts_seeded_history(make: Factory) -> None:
    emu, api = await make(retention=timedelta(days=1))
    start = at(T0 - 2 * 86_400)
    emu.seed(3000, start=start, span=timedelta(hours=36), sn=["A", "B", "A"])
    emu.seed(10, start=at(T0 - 3600), span=timedelta(minutes=10), sn="B")
    kept = [r for r in emu.records]
    assert all(r["create_at"] >= (T0 - 86_400) * 1000 for r in kept)
    assert 1000 < len(kept) < 1510
    reply = (await api.list(at(T0 - 86_400), at(T0), sn="B", size=100, order=1)).data
    expected = [r["record_id"] for r in kept if r["sn"] == "B"]
    assert reply["total"] == len(expected)
    assert [r["record_id"] for r in reply["list"]] == expected[:100]
    assert (await api.image(kept[0]["image_id"])).body == SEED_IMAGE
    created = (await api.create()).data
    assert created["record_id"] == kept[-1]["record_id"] + 1


# -- seeding --------------------------------------------------------------------------


async def test_seed_200k_lists_correctly(make: Factory) -> None:
    emu, api = await make(clock=FakeClock(T0 + 11 * 86_400))
    start = at(T0, JST)
    began = time.perf_counter()
    ids = emu.seed(200_000, start=start, span=timedelta(days=10), sn=["GATE-A", "GATE-B"])
    assert time.perf_counter() - began < 5
    assert ids == range(1_000_000, 1_200_000)
    step_ms = 10 * 86_400_000 / 199_999
    window = (at(T0 + 3 * 86_400 + 0.5), at(T0 + 4 * 86_400 - 0.5))
    for sn in (None, "GATE-B"):
        for order in (0, 1):
            reply = (await api.list(*window, sn=sn or "", order=order, page=7, size=100)).data
            lo, hi = (round(w.timestamp() * 1000) for w in window)
            hits = [i for i in ids if lo <= T0 * 1000 + (i - ids[0]) * step_ms // 1 <= hi]
            assert abs(reply["total"] - (len(hits) if sn is None else len(hits) / 2)) <= 2
            got = [r["record_id"] for r in reply["list"]]
            assert len(got) == 100
            assert got == sorted(got, reverse=order == 0)
            assert all(r["sn"] == (sn or r["sn"]) for r in reply["list"])
    records = emu.records
    assert len(records) == 200_000
    assert records[0]["create_at"] == round(T0 * 1000)
    assert records[-1]["create_at"] == round(T0 * 1000) + 10 * 86_400_000
    assert [r["user_id"] is not None for r in records[:6]] == [True, False, False] * 2
    assert records[0]["timezone"] == "GMT+9:00"
    assert records[0]["device_timestamp"] == int(T0)
    # The exact listing, checked against the materialised records.
    lo, hi = (round(w.timestamp() * 1000) for w in window)
    brute = [r["record_id"] for r in records if lo <= r["create_at"] <= hi and r["sn"] == "GATE-A"]
    reply = (await api.list(*window, sn="GATE-A", order=1, page=3, size=50)).data
    assert reply["total"] == len(brute)
    assert [r["record_id"] for r in reply["list"]] == brute[100:150]
    image = await api.image(reply["list"][0]["image_id"])
    assert (image.content_type, image.body) == ("image/jpeg", SEED_IMAGE)


async def test_seed_uses_enrolled_users_and_checks_arguments(make: Factory) -> None:
    emu, _ = await make()
    emu.enroll(7, JPEG)
    emu.seed(
        4,
        start=at(T0 - 100, timezone(timedelta(hours=-3, minutes=-30))),
        span=timedelta(seconds=3),
        matched_every=2,
    )
    assert [r["user_id"] for r in emu.records] == [7, None, 7, None]
    assert emu.records[0]["timezone"] == "GMT-3:30"
    with pytest.raises(ValueError, match="naive"):
        emu.seed(1, start=datetime(2024, 1, 1), span=timedelta(0))
    with pytest.raises(ValueError, match="before the newest"):
        emu.seed(1, start=at(T0 - 1000), span=timedelta(0))


# -- requests log ---------------------------------------------------------------------


async def test_requests_log_redacts_image_and_sign(api: Api) -> None:
    await api.create(JPEG, extend="{}")
    await api.send("GET", RECORD, params={"sn": "X"}, auth=api.auth(secret="bad"))
    create, listing = api.emu.requests
    assert (create.method, create.path, create.route, create.auth_ok) == (
        "POST",
        RECORD,
        "create",
        True,
    )
    assert create.json["image"]["data"] == f"<{len(B64(JPEG))} base64 chars>"
    assert create.json["extend"] == "{}"
    assert B64(JPEG).decode() not in repr(create)
    assert listing.query["sn"] == "X"
    assert (listing.route, listing.json, listing.auth_ok) == ("list", None, False)
    assert listing.query["sign"] not in repr(listing)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        listing.auth_ok = True  # type: ignore[misc]
    api.emu.reset_requests()
    assert api.emu.requests == []


# -- faults ---------------------------------------------------------------------------


async def test_fail_with_retry_after(api: Api) -> None:
    api.emu.fail("create", status=503, times=2, retry_after=1.0)
    for _ in range(2):
        reply = await api.create()
        assert (reply.status, reply.code, reply.json["message"]) == (
            503,
            503,
            "Service Unavailable",
        )
        assert reply.headers["Retry-After"] == "1"
    assert (await api.create()).code == 200
    assert [r.fault for r in api.emu.requests] == ["fail", "fail", None]
    assert len(api.emu.records) == 1


async def test_fail_custom_code_and_routes(api: Api) -> None:
    api.emu.fail("image", status=429, code=40029, message="Slow Down", retry_after="Wed")
    api.emu.fail("*", status=500)
    listing = await api.send("GET", RECORD)  # "*" takes it; the image fault waits
    assert (listing.status, listing.code, listing.json["message"]) == (
        500,
        500,
        "Internal Server Error",
    )
    image = await api.image("0" * 24)
    assert (image.status, image.code, image.json["message"]) == (429, 40029, "Slow Down")
    assert image.headers["Retry-After"] == "Wed"
    api.emu.fail("list", status=429)
    assert (await api.send("GET", RECORD)).json["message"] == "Too Many Requests"


async def test_fault_fires_before_auth(api: Api) -> None:
    api.emu.fail("list", status=503)
    reply = await api.send("GET", RECORD, auth=api.auth(secret="bad"))
    assert reply.status == 503
    (seen,) = api.emu.requests
    assert (seen.auth_ok, seen.fault) == (False, "fail")


async def test_fail_envelope(api: Api) -> None:
    api.emu.fail_envelope("list", 429, "Too Many Requests", times=1)
    api.emu.fail_envelope("list", 31234)
    first = await api.send("GET", RECORD)
    second = await api.send("GET", RECORD)
    assert (first.status, first.code, first.json["message"]) == (200, 429, "Too Many Requests")
    assert (second.status, second.code) == (200, 31234)


async def test_drop(api: Api) -> None:
    api.emu.drop("create")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.create()
    assert api.emu.records == []
    assert (await api.create()).code == 200  # the next connection works


async def test_drop_after_processing_stores_the_record(api: Api) -> None:
    api.emu.drop("create", after_processing=True)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.create(sn="LOST-REPLY")
    assert [r["sn"] for r in api.emu.records] == ["LOST-REPLY"]
    assert api.emu.requests[-1].fault == "drop"


async def test_malformed(api: Api) -> None:
    api.emu.malformed("list", times=2)
    for _ in range(2):
        reply = await api.send("GET", RECORD)
        assert (reply.status, reply.content_type) == (200, "application/json")
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(reply.body)
    assert (await api.send("GET", RECORD)).code == 30001


async def test_delay(api: Api) -> None:
    api.emu.delay("image", 0.05)
    began = time.perf_counter()
    reply = await api.image("0" * 24)
    assert time.perf_counter() - began >= 0.05
    assert reply.code == 404  # answered normally after the delay
    began = time.perf_counter()
    await api.image("0" * 24)
    assert time.perf_counter() - began < 0.05


async def test_fault_arguments_checked(api: Api) -> None:
    with pytest.raises(ValueError, match="route"):
        api.emu.fail("records")
    with pytest.raises(ValueError, match="times"):
        api.emu.drop("create", times=0)
    with pytest.raises(ValueError, match="seconds"):
        api.emu.delay("list", -1)
    api.emu.fail("list")
    api.emu.clear_faults()
    assert (await api.send("GET", RECORD)).code == 30001


async def test_stop_during_delay_does_not_hang() -> None:
    emu = Emulator()
    await emu.start()
    emu.delay("list", 30)
    async with aiohttp.ClientSession() as http:
        task = asyncio.create_task(Api(http, emu).send("GET", RECORD))
        for _ in range(2000):  # until the request is in (and sleeping)
            if emu.requests:
                break
            await asyncio.sleep(0.001)
        began = time.perf_counter()
        await emu.stop()
        assert time.perf_counter() - began < 2
        with pytest.raises(aiohttp.ClientError):
            await task


@pytest.mark.parametrize("offset", [timedelta(minutes=-10), 600.0])
async def test_clock_offset_moves_the_servers_date_stamps_and_auth_window(
    offset: timedelta | float,
) -> None:
    import email.utils

    from senselink_plus import AuthenticationError

    local = 1_700_000_000.0
    seconds = offset.total_seconds() if isinstance(offset, timedelta) else offset
    async with Emulator(clock=lambda: local, clock_offset=offset) as emu:
        assert emu.now() == local + seconds
        async with emu.client(clock=lambda: local) as client:  # signs with the local clock
            created = await client.create_record("SN1", SEED_IMAGE)
            stored = emu.records[-1]
            assert stored["record_id"] == created.record_id
            assert stored["create_at"] == round((local + seconds) * 1000)
            raw_date = client._session._server_date[0]  # type: ignore[index]
            assert email.utils.parsedate_to_datetime(raw_date).timestamp() == local + seconds
            server_now, skew = client._session.server_time()  # type: ignore[misc]
            assert skew == seconds
            assert server_now == pytest.approx(local + seconds, abs=1)
        emu.clock_offset = timedelta(minutes=31)  # settable: now beyond what auth accepts
        async with emu.client(clock=lambda: local) as client:
            with pytest.raises(AuthenticationError, match="away from the server clock"):
                await client.create_record("SN1", SEED_IMAGE)
    with pytest.raises(TypeError):
        Emulator(clock_offset="10")  # type: ignore[arg-type]
