"""`_exceptions`: the tree as drawn, what each error says, and what it never carries."""

from __future__ import annotations

import re

import pytest

import senselink_plus as slp
from senselink_plus import _exceptions
from senselink_plus._exceptions import RequestInfo

INFO = RequestInfo("GET", "/api/v1/plus/record", (("page", "2"), ("sn", "JKQ")))


def _drawn_tree() -> dict[str, str]:
    """child -> parent, read from the drawing in the module docstring."""
    doc = _exceptions.__doc__ or ""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.split("```")[1].strip().splitlines():
        match = re.match(r"^([│ ]*)(?:[├└]── )?(\w+)", line)
        assert match is not None, line
        depth = len(match.group(1)) // 4 + (1 if "──" in line else 0)
        name = match.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def test_the_drawing_is_the_class_tree() -> None:
    drawn = _drawn_tree()
    errors = {
        name
        for name in _exceptions.__all__
        if isinstance(getattr(_exceptions, name), type)
        and issubclass(getattr(_exceptions, name), slp.SenseLinkError)
    }
    assert set(drawn) | {"SenseLinkError"} == errors
    for child, parent in drawn.items():
        assert getattr(_exceptions, child).__bases__[0] is getattr(_exceptions, parent), child


def test_a_validation_error_is_also_a_value_error_and_names_its_field() -> None:
    error = slp.ValidationError("size is 0; it must be 1..100", field="size")
    assert isinstance(error, ValueError)
    assert error.field == "size"
    assert str(error) == "size is 0; it must be 1..100"


def test_the_message_says_what_was_asked() -> None:
    error = slp.ConnectError("connection refused", request=INFO)
    assert str(error) == f"connection refused [{INFO}]"
    assert str(INFO) == "GET /api/v1/plus/record?page=2&sn=JKQ"


def test_a_create_that_may_have_landed_says_so() -> None:
    error = slp.RequestTimeout("no answer", request=INFO, record_may_exist=True)
    assert "the record may have been created" in str(error)
    assert "list records to check" in str(error)
    assert "may have been created" not in str(slp.RequestTimeout("no answer", request=INFO))


def test_an_api_error_shows_code_message_and_status() -> None:
    error = slp.NotFoundError("Not Found", code=404, status=404, desc="no such image")
    text = str(error)
    assert "404 'Not Found'" in text
    assert "no such image" in text
    assert (error.code, error.status, error.desc) == (404, 404, "no such image")


def test_a_rate_limit_error_keeps_retry_after() -> None:
    error = slp.RateLimitError("slow down", code=429, status=429, retry_after=2.5)
    assert error.retry_after == 2.5


def test_request_info_never_holds_auth_parameters() -> None:
    request = slp.HttpRequest(
        "GET",
        "https://link.japancv.co.jp/api/v1/plus/record",
        params=(("app_key", "k"), ("timestamp", "1"), ("sign", "s" * 32), ("page", "1")),
    )
    info = request.info()
    assert info == RequestInfo("GET", "/api/v1/plus/record", (("page", "1"),))
    assert "sign" not in str(info)


@pytest.mark.parametrize("name", ["APIError", "ResponseError", "RedirectError"])
def test_status_is_an_attribute(name: str) -> None:
    cls = getattr(_exceptions, name)
    error = cls("x", status=418) if name != "APIError" else cls("x", code=1, status=418)
    assert error.status == 418
