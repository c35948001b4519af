"""Signing: the FACTS.md test vectors, sign_request, and credential resolution."""

from __future__ import annotations

import re
from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from senselink_plus import HttpRequest, ValidationError
from senselink_plus._auth import Credentials, compute_sign, sign_request

SECRET = "s3cr3t-value-never-shown"
URL = "https://link.test/api/v1/plus/record"


# --- compute_sign ----------------------------------------------------------------------


class SignVector(NamedTuple):
    timestamp: int | str
    secret: str
    expected: str


SPEC_EXAMPLE = SignVector(
    timestamp="1477881215000",
    secret="2323dsfadfewrasa3434",
    expected="e5ef72ef839bdf5397b4906b199b9fbf",
)
COMPUTED = SignVector(
    timestamp="1763350834090",
    secret="e30af86f8f4e75d128ba4288597dea3c",
    expected="4ed75ef570a2f8326587677f16b3aa37",
)


@pytest.mark.parametrize(
    SignVector._fields,
    [
        SPEC_EXAMPLE,
        SPEC_EXAMPLE._replace(timestamp=int(SPEC_EXAMPLE.timestamp)),
        COMPUTED,
        COMPUTED._replace(timestamp=int(COMPUTED.timestamp)),
    ],
)
def test_compute_sign_matches_the_published_vectors(
    timestamp: int | str, secret: str, expected: str
) -> None:
    assert compute_sign(timestamp, secret) == expected


@given(
    timestamp=st.integers(min_value=10**12, max_value=10**13 - 1),
    secret=st.text(min_size=1, max_size=64),
)
def test_compute_sign_is_lowercase_hex_md5_and_depends_on_both_inputs(
    timestamp: int, secret: str
) -> None:
    sign = compute_sign(timestamp, secret)
    assert re.fullmatch(r"[0-9a-f]{32}", sign)
    assert compute_sign(str(timestamp), secret) == sign
    assert compute_sign(timestamp + 1, secret) != sign
    assert compute_sign(timestamp, secret + "x") != sign


# --- sign_request ----------------------------------------------------------------------


def _params(request: HttpRequest) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.params:
        out.setdefault(key, []).append(value)
    return out


def test_sign_request_adds_app_key_timestamp_and_sign() -> None:
    credentials = Credentials("my-key", "2323dsfadfewrasa3434")
    request = HttpRequest("GET", URL, params={"sn": "JKQ1", "page": "2"})

    signed = sign_request(request, credentials, now_ms=1477881215000)

    assert _params(signed) == {
        "sn": ["JKQ1"],
        "page": ["2"],
        "app_key": ["my-key"],
        "timestamp": ["1477881215000"],
        "sign": ["e5ef72ef839bdf5397b4906b199b9fbf"],
    }
    # The caller's parameters keep their order, ahead of the auth ones.
    assert [key for key, _ in signed.params][:2] == ["sn", "page"]


def test_sign_request_replaces_stale_auth_params_and_keeps_the_rest() -> None:
    credentials = Credentials("new-key", "2323dsfadfewrasa3434")
    request = HttpRequest(
        "POST",
        URL,
        params=[
            ("app_key", "old-key"),
            ("sn", "JKQ1"),
            ("timestamp", "1000"),
            ("sign", "0" * 32),
            ("tag", "a"),
            ("tag", "b"),
        ],
        headers={"Content-Type": "application/json"},
        content=b'{"sn":"JKQ1"}',
    )

    signed = sign_request(request, credentials, now_ms=1477881215000)

    params = _params(signed)
    assert params["app_key"] == ["new-key"]
    assert params["timestamp"] == ["1477881215000"]
    assert params["sign"] == ["e5ef72ef839bdf5397b4906b199b9fbf"]
    assert params["sn"] == ["JKQ1"]
    assert params["tag"] == ["a", "b"]
    # Everything but the query is untouched, and the original is not mutated.
    assert (signed.method, signed.url, signed.content) == ("POST", URL, b'{"sn":"JKQ1"}')
    assert signed.headers == {"content-type": "application/json"}
    assert ("sign", "0" * 32) in request.params


def test_each_signing_is_fresh() -> None:
    credentials = Credentials("k", SECRET)
    request = HttpRequest("GET", URL)
    first = _params(sign_request(request, credentials, now_ms=1_700_000_000_000))
    again = _params(sign_request(request, credentials, now_ms=1_700_000_000_001))
    assert first["timestamp"] != again["timestamp"]
    assert first["sign"] != again["sign"]
    assert again["sign"] == [compute_sign(1_700_000_000_001, SECRET)]


def test_signed_request_repr_shows_neither_secret_nor_sign() -> None:
    credentials = Credentials("k", SECRET)
    signed = sign_request(HttpRequest("GET", URL), credentials, now_ms=1_700_000_000_000)
    sign = compute_sign(1_700_000_000_000, SECRET)
    assert sign not in repr(signed)
    assert SECRET not in repr(signed)
    assert "'k'" in repr(signed)


# --- Credentials -----------------------------------------------------------------------


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("SENSELINK_APP_KEY", raising=False)
    monkeypatch.delenv("SENSELINK_APP_SECRET", raising=False)
    return monkeypatch


def test_resolve_takes_explicit_values(no_env: pytest.MonkeyPatch) -> None:
    assert Credentials.resolve("key", SECRET) == Credentials("key", SECRET)


def test_resolve_falls_back_to_the_environment(no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("SENSELINK_APP_KEY", "env-key")
    no_env.setenv("SENSELINK_APP_SECRET", "env-secret")
    assert Credentials.resolve(None, None) == Credentials("env-key", "env-secret")
    # Each value falls back on its own.
    assert Credentials.resolve("key", None) == Credentials("key", "env-secret")
    assert Credentials.resolve(None, SECRET) == Credentials("env-key", SECRET)


def test_explicit_values_win_over_the_environment(no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("SENSELINK_APP_KEY", "env-key")
    no_env.setenv("SENSELINK_APP_SECRET", "env-secret")
    assert Credentials.resolve("key", SECRET) == Credentials("key", SECRET)


def test_missing_key_names_the_argument_and_the_env_var(no_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as info:
        Credentials.resolve(None, SECRET)
    assert info.value.field == "app_key"
    message = str(info.value)
    assert "app_key" in message
    assert "SENSELINK_APP_KEY" in message
    assert "app_secret" not in message
    assert SECRET not in message
    assert isinstance(info.value, ValueError)


def test_missing_secret_names_the_argument_and_the_env_var(no_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as info:
        Credentials.resolve("key", None)
    assert info.value.field == "app_secret"
    assert "app_secret" in str(info.value)
    assert "SENSELINK_APP_SECRET" in str(info.value)
    assert "SENSELINK_APP_KEY" not in str(info.value)


def test_both_missing_names_both(no_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as info:
        Credentials.resolve(None, None)
    message = str(info.value)
    assert "SENSELINK_APP_KEY" in message
    assert "SENSELINK_APP_SECRET" in message


def test_empty_values_count_as_missing(no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("SENSELINK_APP_KEY", "")
    no_env.setenv("SENSELINK_APP_SECRET", SECRET)
    with pytest.raises(ValidationError, match="SENSELINK_APP_KEY"):
        Credentials.resolve(None, None)
    with pytest.raises(ValidationError, match="app_secret"):
        Credentials.resolve("key", "")


def test_secret_never_in_repr_or_str() -> None:
    credentials = Credentials("visible-key", SECRET)
    for text in (repr(credentials), str(credentials), f"{credentials!r}", repr([credentials])):
        assert SECRET not in text
        assert "visible-key" in text
    assert repr(credentials) == "Credentials(app_key='visible-key', app_secret='***')"
