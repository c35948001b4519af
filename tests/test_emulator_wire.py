"""`testing._emulator_wire`: the auth check (its own sign code) and the error shapes."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from senselink_plus.testing._emulator_wire import check_auth, expected_sign
from tests.emulator_helpers import JPEG, JPEG_B, RECORD, Api, Factory


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


# -- its own sign code ----------------------------------------------------------------


class SignVector(NamedTuple):
    timestamp: str
    secret: str
    sign: str


@pytest.mark.parametrize(
    SignVector._fields,
    [
        # The spec's worked example (FACTS.md), and one computed by hand with md5sum.
        SignVector(
            timestamp="1477881215000",
            secret="2323dsfadfewrasa3434",
            sign="e5ef72ef839bdf5397b4906b199b9fbf",
        ),
        SignVector(timestamp="0", secret="", sign="3c2b65f670402dba46951ac192ca3c27"),
    ],
)
def test_expected_sign_follows_the_spec(timestamp: str, secret: str, sign: str) -> None:
    assert expected_sign(timestamp, secret) == sign


def test_the_emulator_does_not_use_the_clients_sign_code() -> None:
    import senselink_plus.testing._emulator_wire as wire

    assert "compute_sign" not in vars(wire)
    assert "senselink_plus._auth" not in {
        getattr(value, "__module__", None) for value in vars(wire).values()
    }


def test_check_auth_accepts_the_right_sign_and_refuses_a_near_miss() -> None:
    good = expected_sign("1700000000000", "secret")
    query = {"app_key": "key", "timestamp": "1700000000000", "sign": good}
    options = {"app_key": "key", "app_secret": "secret", "now_ms": 1_700_000_000_000}
    assert check_auth(query, **options, max_skew_ms=1000) is None
    near = good[:-1] + ("0" if good[-1] != "0" else "1")
    refused = check_auth({**query, "sign": near}, **options, max_skew_ms=1000)
    assert refused == "sign does not match"
    odd = check_auth({**query, "sign": "\udc80" * 32}, **options, max_skew_ms=1000)
    assert odd == "sign does not match"
