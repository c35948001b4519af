"""The envelope, the error mapping and the record converter."""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from senselink_plus import (
    APIError,
    AuthenticationError,
    InvalidParameterError,
    NoFaceDetectedError,
    NotFoundError,
    RateLimitError,
    Record,
    RecordPage,
    ResponseError,
    SenseLinkError,
    ServerError,
)
from senselink_plus._exceptions import RequestInfo
from senselink_plus._http import HttpResponse
from senselink_plus._wire import error_class, parse_envelope, parse_retry_after, structure
from tests.conftest import WIRE_RECORD, envelope, error, ok

INFO = RequestInfo("GET", "/api/v1/plus/record", (("page", "1"),))


class Mapped(NamedTuple):
    """An envelope's code and the HTTP status around it, and the error class they make."""

    code: int
    status: int
    cls: type


class Bare(NamedTuple):
    """An error status with a body that is no envelope, and the error class it makes."""

    status: int
    body: bytes
    cls: type


class TestEnvelope:
    def test_success_returns_data(self) -> None:
        assert parse_envelope(ok({"a": 1}), INFO) == {"a": 1}

    @pytest.mark.parametrize(
        Mapped._fields,
        [
            Mapped(code=30001, status=200, cls=InvalidParameterError),
            Mapped(code=30003, status=200, cls=NoFaceDetectedError),
            Mapped(code=30001, status=400, cls=InvalidParameterError),
            Mapped(code=401, status=200, cls=AuthenticationError),
            Mapped(code=403, status=200, cls=AuthenticationError),
            Mapped(code=404, status=200, cls=NotFoundError),
            Mapped(code=429, status=200, cls=RateLimitError),
            Mapped(code=500, status=200, cls=ServerError),
            Mapped(code=503, status=200, cls=ServerError),
            Mapped(code=99999, status=200, cls=APIError),
            Mapped(code=99999, status=401, cls=AuthenticationError),
            Mapped(code=99999, status=429, cls=RateLimitError),
            Mapped(code=99999, status=502, cls=ServerError),
            Mapped(code=99999, status=400, cls=APIError),
        ],
    )
    def test_both_error_shapes_map_to_types(self, code: int, status: int, cls: type) -> None:
        with pytest.raises(APIError) as info:
            parse_envelope(error(code, "boom", status=status, desc="why"), INFO)
        exc = info.value
        assert type(exc) is cls
        assert (exc.code, exc.message, exc.desc, exc.status) == (code, "boom", "why", status)
        assert exc.request == INFO
        assert "boom" in str(exc)
        assert "GET /api/v1/plus/record?page=1" in str(exc)

    @pytest.mark.parametrize(
        Bare._fields,
        [
            Bare(status=401, body=b"", cls=AuthenticationError),
            Bare(status=404, body=b"<html>not found</html>", cls=NotFoundError),
            Bare(status=429, body=b"slow down", cls=RateLimitError),
            Bare(status=503, body=b"", cls=ServerError),
            Bare(status=418, body=b"{}", cls=APIError),
        ],
    )
    def test_error_status_without_an_envelope(self, status: int, body: bytes, cls: type) -> None:
        with pytest.raises(APIError) as info:
            parse_envelope(HttpResponse(status, {}, body), INFO)
        assert type(info.value) is cls
        assert (info.value.code, info.value.status) == (status, status)

    def test_error_status_around_a_success_envelope(self) -> None:
        with pytest.raises(ServerError) as info:
            parse_envelope(HttpResponse(500, {}, envelope({"x": 1})), INFO)
        assert info.value.code == 500

    @pytest.mark.parametrize("body", [b"", b"not json", b"[1,2]", b'{"code":"200"}', b'{"data":1}'])
    def test_success_status_without_an_envelope_is_a_response_error(self, body: bytes) -> None:
        with pytest.raises(ResponseError) as info:
            parse_envelope(HttpResponse(200, {}, body), INFO)
        assert info.value.request == INFO
        assert info.value.status == 200

    def test_custom_codes(self) -> None:
        codes = {40001: AuthenticationError}
        with pytest.raises(AuthenticationError):
            parse_envelope(error(40001), INFO, codes=codes)
        assert error_class(40001, 200) is APIError

    def test_retry_after_is_read(self) -> None:
        response = error(429, status=429, headers={"Retry-After": "7"})
        with pytest.raises(RateLimitError) as info:
            parse_envelope(response, INFO)
        assert info.value.retry_after == 7.0


class TestRetryAfter:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (None, None),
            ("", None),
            ("3", 3.0),
            ("2.5", 2.5),
            ("-4", 0.0),
            ("nan", None),
            ("soon", None),
            ("Tue, 14 Nov 2023 22:13:30 GMT", 10.0),
            ("Tue, 14 Nov 2023 22:13:00 GMT", 0.0),
        ],
    )
    def test_values(self, value: str | None, expected: float | None) -> None:
        now = 1700000000.0  # 2023-11-14T22:13:20Z
        assert parse_retry_after(value, now) == expected


class TestConverter:
    def test_record_round_trip(self) -> None:
        record = structure(WIRE_RECORD, Record, INFO, 200)
        assert record == Record(**WIRE_RECORD)
        assert record.created_at.year == 2023

    def test_optional_fields_may_be_missing_or_null(self) -> None:
        data = {k: WIRE_RECORD[k] for k in ("record_id", "sn", "image_id", "create_at")}
        data["user_id"] = None
        record = structure(data, Record, INFO, 200)
        assert record.user_id is None
        assert not record.matched
        assert record.verify_score is None

    def test_int_score_becomes_float_and_object_extend_becomes_a_string(self) -> None:
        record = structure(
            {**WIRE_RECORD, "verify_score": 1, "extend": {"a": 1}}, Record, INFO, 200
        )
        assert record.verify_score == 1.0
        assert isinstance(record.verify_score, float)
        assert record.extend == '{"a":1}'

    @pytest.mark.parametrize(
        ("change", "fragment"),
        [
            ({"record_id": "1"}, "record_id must be an integer"),
            ({"record_id": True}, "record_id must be an integer"),
            ({"sn": None}, "sn must be a string"),
            ({"create_at": 1.5}, "create_at must be an integer"),
            ({"user_id": "u"}, "user_id must be an integer or null"),
            ({"verify_score": "high"}, "verify_score must be a number"),
            ({"timezone": 9}, "timezone must be a string or null"),
            ({"extend": 5}, "extend must be a JSON string"),
        ],
    )
    def test_wrong_types_name_the_field(self, change: dict[str, Any], fragment: str) -> None:
        with pytest.raises(ResponseError, match=fragment) as info:
            structure({**WIRE_RECORD, **change}, Record, INFO, 200)
        assert info.value.request == INFO

    def test_page(self) -> None:
        page = structure(
            {"page_num": 1, "page_size": 100, "total": 1, "list": [WIRE_RECORD]},
            RecordPage,
            INFO,
            200,
        )
        assert page.records == (Record(**WIRE_RECORD),)
        empty = structure(
            {"page_num": 1, "page_size": 100, "total": 0, "list": None}, RecordPage, INFO, 200
        )
        assert empty.records == ()

    @pytest.mark.parametrize(
        "data",
        [
            None,
            [],
            {"page_num": 1, "page_size": 1, "total": -1, "list": []},
            {"page_num": 1, "page_size": 1, "total": 1, "list": {}},
            {"page_num": 1, "page_size": 1, "list": []},
            {"page_num": 1, "page_size": 1, "total": 1, "list": [None]},
        ],
    )
    def test_bad_pages(self, data: Any) -> None:
        with pytest.raises(ResponseError):
            structure(data, RecordPage, INFO, 200)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
record_like = st.fixed_dictionaries(
    {}, optional={key: json_values | st.just(value) for key, value in WIRE_RECORD.items()}
)
page_like = st.fixed_dictionaries(
    {},
    optional={
        "page_num": json_values | st.integers(0, 3),
        "page_size": json_values | st.integers(0, 100),
        "total": json_values | st.integers(-1, 10),
        "list": json_values | st.lists(record_like, max_size=3),
    },
)


@given(
    status=st.sampled_from([200, 200, 400, 404, 429, 500]),
    body=st.binary(max_size=40)
    | st.builds(
        lambda d, c: orjson.dumps({"code": c, "message": "m", "data": d}),
        page_like | json_values,
        st.sampled_from([200, 200, 30001, 0]),
    ),
)
def test_any_response_gives_a_page_or_a_senselink_error(status: int, body: bytes) -> None:
    from senselink_plus._endpoints import parse_record_page
    from senselink_plus._http import HttpRequest

    request = HttpRequest("GET", "https://api.test/api/v1/plus/record")
    try:
        page = parse_record_page(HttpResponse(status, {}, body), request)
    except SenseLinkError as exc:
        assert exc.request is not None
    else:
        assert isinstance(page, RecordPage)
        assert all(isinstance(r, Record) for r in page.records)


def test_fast_path_records_are_ordinary_frozen_records() -> None:
    import pickle

    import attrs as attrs_module

    page = structure(
        {"page_num": 1, "page_size": 100, "total": 1, "list": [WIRE_RECORD]},
        RecordPage,
        INFO,
        200,
    )
    record = page.records[0]
    assert type(record) is Record
    assert record == Record(**WIRE_RECORD)
    assert hash(record) == hash(Record(**WIRE_RECORD))
    assert pickle.loads(pickle.dumps(record)) == record
    assert attrs_module.evolve(record, sn="other").sn == "other"
    with pytest.raises(attrs_module.exceptions.FrozenInstanceError):
        record.sn = "changed"  # type: ignore[misc]


def test_a_record_missing_optional_fields_takes_the_same_fast_result() -> None:
    data = {k: WIRE_RECORD[k] for k in ("record_id", "sn", "image_id", "create_at")}
    page = structure(
        {"page_num": 1, "page_size": 100, "total": 1, "list": [data]}, RecordPage, INFO, 200
    )
    assert page.records == (Record(**data),)


def _record_variant(**overrides: Any) -> type:
    """A copy of Record's definition with one field or hook changed."""
    import attrs as attrs_module

    fields: dict[str, Any] = {
        "record_id": attrs_module.field(),
        "sn": attrs_module.field(),
        "image_id": attrs_module.field(),
        "create_at": attrs_module.field(),
        "user_id": attrs_module.field(default=None),
        "verify_score": attrs_module.field(default=None),
        "device_timestamp": attrs_module.field(default=None),
        "timezone": attrs_module.field(default=None),
        "extend": attrs_module.field(default=None),
    }
    body = overrides.pop("body", {})
    fields.update(overrides)
    return attrs_module.make_class(
        "Record", fields, frozen=True, slots=True, weakref_slot=False, **body
    )


def test_the_import_time_guard_passes_record_as_it_is() -> None:
    from senselink_plus._wire import check_plain_record

    check_plain_record(Record)  # also ran at import
    check_plain_record(_record_variant())


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"sn": "validator"}, "field sn has a validator"),
        ({"create_at": "converter"}, "field create_at has a converter"),
        ({"extend": "factory"}, "field extend has a default factory"),
        ({"body": "post_init"}, "__attrs_post_init__"),
        ({"body": "pre_init"}, "__attrs_pre_init__"),
        ({"body": "extra_field"}, "its slots are not"),
    ],
)
def test_the_import_time_guard_refuses_a_record_the_fast_path_would_bypass(
    change: dict[str, str], named: str
) -> None:
    import attrs as attrs_module

    from senselink_plus._wire import check_plain_record

    ((key, kind),) = change.items()
    if kind == "validator":
        cls = _record_variant(
            **{key: attrs_module.field(validator=attrs_module.validators.instance_of(str))}
        )
    elif kind == "converter":
        cls = _record_variant(**{key: attrs_module.field(converter=int)})
    elif kind == "factory":
        cls = _record_variant(**{key: attrs_module.field(factory=str)})
    elif kind == "extra_field":
        cls = _record_variant(extra=attrs_module.field(default=None))
    else:
        base = _record_variant()
        hook = "__attrs_post_init__" if kind == "post_init" else "__attrs_pre_init__"
        cls = type("Record", (base,), {"__slots__": (), hook: lambda self: None})
    with pytest.raises(RuntimeError, match=named):
        check_plain_record(cls)


def test_fast_path_records_match_init_records_field_for_field() -> None:
    import copy
    import pickle

    import attrs as attrs_module

    variants = [
        WIRE_RECORD,
        {**WIRE_RECORD, "user_id": None, "verify_score": None, "extend": None},
        {k: WIRE_RECORD[k] for k in ("record_id", "sn", "image_id", "create_at")},
    ]
    page = structure(
        {"page_num": 1, "page_size": 100, "total": 3, "list": variants}, RecordPage, INFO, 200
    )
    for fast, data in zip(page.records, variants, strict=True):
        made = Record(**data)
        assert attrs_module.asdict(fast) == attrs_module.asdict(made)
        assert fast == made
        assert (fast != made) is False
        assert hash(fast) == hash(made)
        assert {fast: 1}[made] == 1
        assert repr(fast) == repr(made)
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            assert pickle.loads(pickle.dumps(fast, protocol)) == made
        assert copy.copy(fast) == made
        assert copy.deepcopy(fast) == made
        assert attrs_module.evolve(fast, record_id=1) == attrs_module.evolve(made, record_id=1)
        assert attrs_module.evolve(fast, record_id=1) != made


_EDGE_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    1,
    1.0,
    0.5,
    2**62,
    253_402_300_799_000,
    "",
    "x",
    [],
    {"a": 1},
]
#: WIRE_RECORD with one field left out, or set to each value above.
_NEAR_WIRE_RECORDS = [{k: v for k, v in WIRE_RECORD.items() if k != key} for key in WIRE_RECORD] + [
    {**WIRE_RECORD, key: value} for key in WIRE_RECORD for value in _EDGE_VALUES
]


def _read(listed: list[Any]) -> tuple[list[list[tuple[type, Any]]] | str, ...]:
    """The records of a page holding ``listed``, and those records one by one through
    the checked parser: each as typed values, or the error's text."""
    listed = orjson.loads(orjson.dumps(listed))  # as the wire gives it (no inf or nan)
    data = {"page_num": 1, "page_size": 100, "total": len(listed), "list": listed}
    one_by_one: list[list[tuple[type, Any]]] | str = []
    try:
        for item in listed:
            one_by_one.append(_typed(structure(item, Record, INFO, 200)))  # type: ignore[union-attr]
    except ResponseError as exc:
        one_by_one = str(exc)
    try:
        page: list[list[tuple[type, Any]]] | str = [
            _typed(r) for r in structure(data, RecordPage, INFO, 200).records
        ]
    except ResponseError as exc:
        page = str(exc)
    return page, one_by_one


# The page parser passes the usual shape by one expression and sends the rest to the
# checked parser: whatever the shape, both must agree, value for value and type for type.


@pytest.mark.parametrize("item", _NEAR_WIRE_RECORDS)
def test_a_page_reads_a_record_as_the_checked_record_parser_does(item: dict[str, Any]) -> None:
    page, one_by_one = _read([item])
    assert page == one_by_one


@given(st.lists(st.sampled_from(_NEAR_WIRE_RECORDS) | record_like, max_size=4))
def test_a_page_reads_its_records_as_the_checked_record_parser_does(listed: list[Any]) -> None:
    page, one_by_one = _read(listed)
    assert page == one_by_one


def _typed(record: Record) -> list[tuple[type, Any]]:
    import attrs as attrs_module

    return [(type(value), value) for value in attrs_module.astuple(record)]


def test_importing_the_package_does_not_import_cattrs() -> None:
    import subprocess
    import sys

    code = "import sys, senselink_plus; print('cattrs' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_other_classes_go_through_the_one_converter_with_shape_errors_typed() -> None:
    import attrs as attrs_module

    from senselink_plus import _wire

    @attrs_module.frozen
    class Pair:
        a: int
        b: str

    assert structure({"a": 1, "b": "x"}, Pair, INFO, 200) == Pair(1, "x")
    with pytest.raises(ResponseError, match="unexpected response shape") as caught:
        structure({"a": 1}, Pair, INFO, 200)
    assert caught.value.request == INFO
    assert _wire.converter is _wire.get_converter()  # one converter, made once
    # The endpoints' classes take the module's hooks through it too.
    page = _wire.get_converter().structure(
        {"page_num": 1, "page_size": 100, "total": 1, "list": [WIRE_RECORD]}, RecordPage
    )
    assert page.records == (Record(**WIRE_RECORD),)
