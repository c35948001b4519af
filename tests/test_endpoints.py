"""The sans-I/O request builders and response parsers: plain function calls, no loop."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pytest

from senselink_plus import (
    FaceImage,
    HttpRequest,
    HttpResponse,
    InvalidParameterError,
    NotFoundError,
    Order,
    Rectangle,
    ResponseError,
    ValidationError,
)
from senselink_plus import _endpoints as ep
from tests.conftest import BASE_URL, JPEG, PNG, WIRE_RECORD, envelope, error, ok

JST = timezone(timedelta(hours=9))
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=JST)
T0 = datetime(2022, 12, 11, 0, 0, 0, tzinfo=JST)


def create_body(**kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("now", NOW)
    request = ep.build_create_record(BASE_URL, "JKQ00009234", kwargs.pop("image", JPEG), **kwargs)
    assert request.method == "POST"
    assert request.url == "https://api.test/api/v1/plus/record"
    assert request.headers["content-type"] == "application/json"
    assert request.content is not None
    body: dict[str, Any] = orjson.loads(request.content)
    return body


class Refusal(NamedTuple):
    """Arguments to refuse, the field the error names, and words its message holds."""

    kwargs: dict[str, Any]
    field: str
    fragment: str


class TestCreateRecord:
    def test_minimal_body_uses_now_and_its_zone(self) -> None:
        body = create_body()
        assert body == {
            "sn": "JKQ00009234",
            "timestamp": int(NOW.timestamp()),
            "timezone": "GMT+9:00",
            "image": {"data": base64.b64encode(JPEG).decode()},
        }

    def test_every_field_as_the_spec_names_it(self) -> None:
        when = datetime(2022, 7, 18, 9, 27, 37, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))
        body = create_body(
            timestamp=when,
            threshold=0.92,
            rectangle=Rectangle(top=12, left=32, width=84, height=23),
            extend={"device_name": "xxxxx"},
            process_mode=0,
        )
        assert body == {
            "sn": "JKQ00009234",
            "timestamp": 1658149057,  # 12:57:37 UTC
            "timezone": "GMT-3:30",
            "threshold": 0.92,
            "image": {
                "data": base64.b64encode(JPEG).decode(),
                "rectangle": {"top": 12, "left": 32, "width": 84, "height": 23},
            },
            "process_mode": 0,
            "extend": '{"device_name":"xxxxx"}',
        }

    def test_int_timestamp_is_sent_as_given_without_a_derived_zone(self) -> None:
        body = create_body(timestamp=1659423903029)
        assert body["timestamp"] == 1659423903029
        assert "timezone" not in body

    def test_explicit_timezone_wins(self) -> None:
        assert create_body(timezone="GMT+8:00")["timezone"] == "GMT+8:00"

    def test_extend_string_is_kept_verbatim(self) -> None:
        assert create_body(extend='{"a": [1, 2]}')["extend"] == '{"a": [1, 2]}'

    def test_rectangle_mapping_and_face_image_rectangle(self) -> None:
        rect = {"top": 1, "left": 2, "width": 3, "height": 4}
        assert create_body(rectangle=rect)["image"]["rectangle"] == rect
        face = FaceImage(PNG, Rectangle(5, 6, 7, 8))
        assert create_body(image=face)["image"]["rectangle"] == {
            "top": 5,
            "left": 6,
            "width": 7,
            "height": 8,
        }

    def test_image_from_path(self, tmp_path: Path) -> None:
        path = tmp_path / "face.png"
        path.write_bytes(PNG)
        assert base64.b64decode(create_body(image=path)["image"]["data"]) == PNG
        assert base64.b64decode(create_body(image=str(path))["image"]["data"]) == PNG

    @pytest.mark.parametrize(
        Refusal._fields,
        [
            Refusal({"image": JPEG[:0]}, "image", "empty"),
            Refusal({"image": b"GIF89a" + bytes(10)}, "image", "not a JPEG or PNG"),
            Refusal({"image": JPEG + bytes(1_048_577 - len(JPEG))}, "image", "1048577 bytes"),
            Refusal({"image": 42}, "image", "bytes, a path or a FaceImage"),
            Refusal({"image": "/nonexistent/face.jpg"}, "image", "cannot read"),
            Refusal({"threshold": 1.01}, "threshold", "[0, 1]"),
            Refusal({"threshold": -0.0001}, "threshold", "[0, 1]"),
            Refusal({"threshold": float("nan")}, "threshold", "[0, 1]"),
            Refusal({"threshold": float("inf")}, "threshold", "[0, 1]"),
            Refusal({"threshold": True}, "threshold", "number"),
            Refusal({"threshold": "0.9"}, "threshold", "number"),
            Refusal({"extend": "{not json"}, "extend", "not valid JSON"),
            Refusal({"extend": {"k": "x" * 1020}}, "extend", "the limit is 1024"),
            Refusal({"extend": ["a"]}, "extend", "dict or a JSON string"),
            Refusal({"extend": {1: object()}}, "extend", "cannot be serialised"),
            Refusal({"timestamp": datetime(2024, 1, 1)}, "timestamp", "no time zone"),
            Refusal({"timestamp": -1}, "timestamp", ">= 0"),
            Refusal({"timestamp": 1.5}, "timestamp", "aware datetime or an int"),
            Refusal({"timezone": ""}, "timezone", "is empty"),
            Refusal({"process_mode": 1}, "process_mode", "only 0"),
            Refusal({"process_mode": False}, "process_mode", "only 0"),
            Refusal(
                {"rectangle": {"top": 0, "left": 0, "width": 0, "height": 5}},
                "rectangle.width",
                "1..2147483647",
            ),
            Refusal(
                {"rectangle": {"top": -1, "left": 0, "width": 1, "height": 5}},
                "rectangle.top",
                "0..2147483647",
            ),
            Refusal({"rectangle": {"top": 0}}, "rectangle", "exactly top, left, width and height"),
            Refusal({"rectangle": (1, 2, 3, 4)}, "rectangle", "must be a Rectangle"),
        ],
    )
    def test_bad_input_is_refused_naming_the_field(
        self, kwargs: dict[str, Any], field: str, fragment: str
    ) -> None:
        with pytest.raises(ValidationError) as info:
            create_body(**kwargs)
        assert info.value.field == field
        assert fragment in str(info.value)

    def test_extend_limit_is_counted_in_utf8_bytes(self) -> None:
        exactly = '"' + "x" * 1022 + '"'
        assert len(create_body(extend=exactly)["extend"]) == 1024
        with pytest.raises(ValidationError, match="1025 bytes"):
            create_body(extend='"x' + "é" * 511 + '"')  # 2 quotes + 1 + 511 * 2 bytes
        assert len(create_body(extend='"' + "é" * 511 + '"')["extend"]) == 513  # 1024 bytes

    def test_image_limit_is_inclusive(self) -> None:
        data = JPEG + bytes(1_048_576 - len(JPEG))
        assert len(base64.b64decode(create_body(image=data)["image"]["data"])) == 1_048_576

    @pytest.mark.parametrize("sn", ["", "   ", None, 5])
    def test_sn_is_required(self, sn: Any) -> None:
        with pytest.raises(ValidationError) as info:
            ep.build_create_record(BASE_URL, sn, JPEG, now=NOW)
        assert info.value.field == "sn"


class TestListRecords:
    def test_params_follow_the_spec(self) -> None:
        request = ep.build_list_records(
            BASE_URL,
            T0,
            T0 + timedelta(hours=23, minutes=59, seconds=59),
            sn="SN1",
            page=2,
            size=10,
        )
        assert request.method == "GET"
        assert request.url == "https://api.test/api/v1/plus/record"
        assert request.params == (
            ("time_from", "2022-12-11T00:00:00+09:00"),
            ("time_to", "2022-12-11T23:59:59+09:00"),
            ("sn", "SN1"),
            ("order", "1"),
            ("page", "2"),
            ("size", "10"),
        )

    def test_order_is_always_sent(self) -> None:
        request = ep.build_list_records(
            BASE_URL, T0, T0 + timedelta(hours=1), order=Order.DESCENDING
        )
        assert ("order", "0") in request.params
        assert not any(key == "sn" for key, _ in request.params)

    def test_iso_strings_are_accepted(self) -> None:
        request = ep.build_list_records(
            BASE_URL, "2022-12-11T00:00:00+09:00", "2022-12-11T01:00:00Z"
        )
        assert request.params[1] == ("time_to", "2022-12-11T01:00:00+00:00")

    def test_times_round_outwards_to_whole_seconds(self) -> None:
        request = ep.build_list_records(
            BASE_URL, T0 + timedelta(microseconds=900), T0 + timedelta(seconds=5, microseconds=1)
        )
        assert request.params[:2] == (
            ("time_from", "2022-12-11T00:00:00+09:00"),
            ("time_to", "2022-12-11T00:00:06+09:00"),
        )

    def test_exactly_24_hours_is_allowed(self) -> None:
        ep.build_list_records(BASE_URL, T0, T0 + timedelta(hours=24))

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"time_to": T0 + timedelta(hours=24, seconds=1)}, "time_to"),
            ({"time_to": T0}, "time_to"),
            ({"time_to": T0 - timedelta(seconds=1)}, "time_to"),
            ({"time_from": datetime(2022, 12, 11)}, "time_from"),
            ({"time_from": "yesterday"}, "time_from"),
            ({"time_from": "2022-12-11T00:00:00"}, "time_from"),
            ({"size": 0}, "size"),
            ({"size": 101}, "size"),
            ({"size": 10.0}, "size"),
            ({"page": 0}, "page"),
            ({"page": True}, "page"),
            ({"order": 2}, "order"),
            ({"order": "asc"}, "order"),
            ({"sn": ""}, "sn"),
        ],
    )
    def test_bad_input_is_refused(self, kwargs: dict[str, Any], field: str) -> None:
        args: dict[str, Any] = {"time_from": T0, "time_to": T0 + timedelta(hours=1)}
        args.update(kwargs)
        with pytest.raises(ValidationError) as info:
            ep.build_list_records(BASE_URL, args.pop("time_from"), args.pop("time_to"), **args)
        assert info.value.field == field

    def test_over_24_hours_points_to_records(self) -> None:
        with pytest.raises(ValidationError, match=r"at most 1 day.*client\.records\(\)"):
            ep.build_list_records(BASE_URL, T0, T0 + timedelta(days=2))

    def test_parse_page(self) -> None:
        request = ep.build_list_records(BASE_URL, T0, T0 + timedelta(hours=1))
        record = {**WIRE_RECORD, "create_at": 130000000, "extend": '{"a":1}'}
        page = ep.parse_record_page(
            ok({"page_num": 2, "page_size": 10, "total": 11, "list": [record]}), request
        )
        assert (page.page_num, page.page_size, page.total, len(page)) == (2, 10, 11, 1)
        got = page.records[0]
        assert (got.record_id, got.user_id, got.verify_score, got.extend_data) == (
            1392523,
            123,
            0.959,
            {"a": 1},
        )


class TestGetImage:
    def test_path_is_quoted(self) -> None:
        request = ep.build_get_image(BASE_URL, "5fceef6e1ddb2800010d1409")
        assert request.url == "https://api.test/api/v1/plus/image/5fceef6e1ddb2800010d1409"
        assert ep.build_get_image(BASE_URL, "a/b?c").url.endswith("/image/a%2Fb%3Fc")

    @pytest.mark.parametrize("image_id", ["", " ", None, 12])
    def test_bad_id(self, image_id: Any) -> None:
        with pytest.raises(ValidationError) as info:
            ep.build_get_image(BASE_URL, image_id)
        assert info.value.field == "image_id"

    def request(self) -> HttpRequest:
        return ep.build_get_image(BASE_URL, "abc")

    @pytest.mark.parametrize(
        ("content_type", "body"),
        [
            ("image/jpeg", JPEG),
            ("image/png", PNG),
            ("application/octet-stream", JPEG),
            ("", PNG),
        ],
    )
    def test_image_bytes(self, content_type: str, body: bytes) -> None:
        response = HttpResponse(200, {"Content-Type": content_type}, body)
        assert ep.parse_image(response, self.request()) == body

    def test_envelope_in_place_of_an_image_is_an_error(self) -> None:
        with pytest.raises(NotFoundError) as info:
            ep.parse_image(error(404, "Not Found"), self.request())
        assert info.value.request is not None
        assert info.value.request.path == "/api/v1/plus/image/abc"

    def test_envelope_without_content_type_is_recognised_by_magic(self) -> None:
        response = HttpResponse(200, {}, envelope(None, code=30001, message="Param Invalid"))
        with pytest.raises(InvalidParameterError):
            ep.parse_image(response, self.request())

    def test_success_envelope_instead_of_image(self) -> None:
        with pytest.raises(ResponseError, match="expected image bytes"):
            ep.parse_image(ok({"x": 1}), self.request())

    @pytest.mark.parametrize(
        ("content_type", "body"),
        [("application/octet-stream", b"GIF89a..."), ("text/html", b"<html>"), ("image/jpeg", b"")],
    )
    def test_unrecognisable_body(self, content_type: str, body: bytes) -> None:
        with pytest.raises(ResponseError):
            ep.parse_image(HttpResponse(200, {"content-type": content_type}, body), self.request())


# --- the create body, written in one pass ----------------------------------------------


def _reference_body(request_kwargs: dict[str, Any], zone: str | None, stamp: int) -> bytes:
    """The body as a dict encoded by orjson: what the one-pass writer must equal."""
    body: dict[str, Any] = {"sn": "JKQ00009234", "timestamp": stamp}
    if zone is not None:
        body["timezone"] = zone
    if "threshold" in request_kwargs:
        body["threshold"] = float(request_kwargs["threshold"])
    image: dict[str, Any] = {"data": base64.b64encode(JPEG).decode()}
    if "rectangle" in request_kwargs:
        image["rectangle"] = dict(request_kwargs["rectangle"])
    body["image"] = image
    if "process_mode" in request_kwargs:
        body["process_mode"] = 0
    if "extend" in request_kwargs:
        body["extend"] = orjson.dumps(request_kwargs["extend"]).decode()
    return orjson.dumps(body)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"threshold": 0.5},
        {"rectangle": {"top": 1, "left": 2, "width": 30, "height": 40}},
        {"process_mode": 0},
        {"extend": {"gate": "north", "n": [1, 2.5, None]}},
        {
            "threshold": 1,
            "rectangle": {"top": 0, "left": 0, "width": 1, "height": 1},
            "process_mode": 0,
            "extend": {"k": '\u65e5\u672c"\\'},
        },
    ],
)
def test_the_create_body_is_the_json_of_its_fields(kwargs: dict[str, Any]) -> None:
    request = ep.build_create_record(BASE_URL, "JKQ00009234", JPEG, now=NOW, **kwargs)
    assert request.content == _reference_body(kwargs, "GMT+9:00", int(NOW.timestamp()))
    orjson.loads(request.content or b"")  # and it parses


def test_an_integer_now_is_sent_as_is_with_the_local_zone_label(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time as time_module

    monkeypatch.setenv("TZ", "America/St_Johns")
    time_module.tzset()
    try:
        winter, summer = 1704110400, 1719835200  # 2024-01-01, 2024-07-01 12:00 UTC
        for stamp, zone in ((winter, "GMT-3:30"), (summer, "GMT-2:30")):
            request = ep.build_create_record(BASE_URL, "JKQ00009234", JPEG, now=stamp)
            assert request.content == _reference_body({}, zone, stamp)
            # The same label the datetime path gives for the local time at that instant.
            local = datetime.fromtimestamp(stamp).astimezone()
            assert ep.build_create_record(BASE_URL, "JKQ00009234", JPEG, now=local).content == (
                request.content
            )
        given = ep.build_create_record(BASE_URL, "JKQ00009234", JPEG, now=winter, timezone="X")
        assert orjson.loads(given.content or b"")["timezone"] == "X"
    finally:
        monkeypatch.delenv("TZ")
        time_module.tzset()


def test_a_negative_integer_now_is_refused_like_a_negative_timestamp() -> None:
    with pytest.raises(ValidationError, match="timestamp is -1; it must be >= 0"):
        ep.build_create_record(BASE_URL, "JKQ00009234", JPEG, now=-1)
