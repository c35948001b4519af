"""HttpRequest, HttpResponse and RequestInfo: the plain values around a transport."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from senselink_plus import HttpRequest, HttpResponse
from senselink_plus._exceptions import RequestInfo

URL = "https://link.test/api/v1/plus/record"
SIGN = "deadbeefdeadbeefdeadbeefdeadbeef"


# --- params and headers ----------------------------------------------------------------


def test_params_from_a_mapping_become_ordered_string_pairs() -> None:
    request = HttpRequest("GET", URL, params={"page": 1, "size": 100, "sn": "JKQ1"})  # type: ignore[arg-type]
    assert request.params == (("page", "1"), ("size", "100"), ("sn", "JKQ1"))


def test_params_from_pairs_keep_order_and_repeats() -> None:
    request = HttpRequest("GET", URL, params=[("b", "2"), ("a", "1"), ("b", "3")])
    assert request.params == (("b", "2"), ("a", "1"), ("b", "3"))
    assert isinstance(request.params, tuple)


def test_params_default_to_empty() -> None:
    request = HttpRequest("GET", URL)
    assert request.params == ()
    assert request.headers == {}
    assert request.content is None


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json", "X-Trace-ID": "abc"},
        [("CONTENT-TYPE", "application/json"), ("x-trace-id", "abc")],
    ],
)
def test_header_names_are_lower_cased(headers: object) -> None:
    request = HttpRequest("POST", URL, headers=headers)  # type: ignore[arg-type]
    response = HttpResponse(200, headers)  # type: ignore[arg-type]
    expected = {"content-type": "application/json", "x-trace-id": "abc"}
    assert request.headers == expected
    assert response.headers == expected


def test_header_values_keep_their_case() -> None:
    response = HttpResponse(200, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert response.headers["retry-after"] == "Wed, 21 Oct 2015 07:28:00 GMT"


def test_values_are_frozen() -> None:
    request = HttpRequest("GET", URL)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        request.url = "https://elsewhere.test"  # type: ignore[misc]


# --- repr hides secrets and bodies -----------------------------------------------------


def test_request_repr_hides_the_sign_and_shows_other_params() -> None:
    request = HttpRequest(
        "GET", URL, params={"sn": "JKQ1", "app_key": "the-key", "sign": SIGN, "timestamp": "1"}
    )
    text = repr(request)
    assert SIGN not in text
    assert "('sign', '***')" in text
    assert "('sn', 'JKQ1')" in text


def test_request_repr_shows_the_body_as_a_length_only() -> None:
    body = b'{"image":{"data":"/9j/4AAQSkZJRgABAQ"}}'
    text = repr(HttpRequest("POST", URL, content=body))
    assert f"<{len(body)} bytes>" in text
    assert "4AAQSkZJRg" not in text
    assert "content=None" in repr(HttpRequest("GET", URL))


def test_response_repr_shows_the_body_as_a_length_only() -> None:
    body = b"\xff\xd8\xff\xe0 jpeg bytes"
    text = repr(HttpResponse(200, {"content-type": "image/jpeg"}, body))
    assert f"<{len(body)} bytes>" in text
    assert "jpeg bytes" not in text
    assert "\\xff" not in text


@given(
    sign=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    others=st.dictionaries(
        st.sampled_from(["sn", "page", "size", "order"]), st.integers(0, 999).map(str)
    ),
)
def test_no_sign_ever_shows_in_a_repr(sign: str, others: dict[str, str]) -> None:
    request = HttpRequest("GET", URL, params={**others, "sign": sign})
    assert sign not in repr(request)
    assert sign not in str(request)


# --- content_type ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/json", "application/json"),
        ("application/json; charset=utf-8", "application/json"),
        ("Image/JPEG", "image/jpeg"),
        ("  text/plain ;charset=ascii", "text/plain"),
        ("", ""),
    ],
)
def test_content_type_is_the_bare_lower_cased_media_type(header: str, expected: str) -> None:
    assert HttpResponse(200, {"Content-Type": header}).content_type == expected


def test_content_type_is_empty_when_absent() -> None:
    assert HttpResponse(200).content_type == ""
    assert HttpResponse(200).content == b""


# --- info() and RequestInfo ------------------------------------------------------------


def test_info_drops_auth_params_and_body_and_keeps_the_rest() -> None:
    request = HttpRequest(
        "GET",
        URL + "?ignored=1",
        params=[
            ("time_from", "2022-12-11T00:00:00+09:00"),
            ("app_key", "the-key"),
            ("timestamp", "1700000000000"),
            ("sign", SIGN),
            ("page", "2"),
        ],
        content=b"body",
    )
    info = request.info()
    assert info == RequestInfo(
        "GET",
        "/api/v1/plus/record",
        (("time_from", "2022-12-11T00:00:00+09:00"), ("page", "2")),
    )
    assert SIGN not in str(info)
    assert "the-key" not in str(info)
    assert "1700000000000" not in str(info)


def test_path_excludes_host_and_query() -> None:
    request = HttpRequest("GET", "https://link.test:8443/api/v1/plus/image/abc?x=1")
    assert request.path == "/api/v1/plus/image/abc"


def test_request_info_str_is_method_path_and_encoded_query() -> None:
    info = RequestInfo(
        "GET", "/api/v1/plus/record", (("time_from", "2022-12-11T00:00:00+09:00"), ("page", "2"))
    )
    assert str(info) == (
        "GET /api/v1/plus/record?time_from=2022-12-11T00%3A00%3A00%2B09%3A00&page=2"
    )


def test_request_info_str_without_params_has_no_question_mark() -> None:
    assert str(RequestInfo("POST", "/api/v1/plus/record")) == "POST /api/v1/plus/record"
