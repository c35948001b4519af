"""`_output`: records as JSON lines, CSV or a table, one at a time."""

from __future__ import annotations

import csv
import io

import attrs
import orjson
import pytest

from senselink_plus import Record
from senselink_plus._output import EXPORT_FIELDS, FORMATS, RecordWriter

RECORDS = [
    Record(
        7,
        "JKQ00009234",
        "img-7",
        1_714_521_600_000,
        user_id=1001,
        verify_score=0.93,
        device_timestamp=1_714_521_599,
        timezone="GMT+9:00",
        extend='{"gate":"north"}',
    ),
    Record(8, "JKQ00009234", "img-8", 1_714_521_601),
]


def written(fmt: str) -> str:
    out = io.StringIO()
    writer = RecordWriter(out, fmt)
    writer.header()
    for record in RECORDS:
        writer.write(record)
    assert writer.count == len(RECORDS)
    return out.getvalue()


def test_export_fields_are_the_wire_fields_with_created_at_beside_create_at() -> None:
    assert EXPORT_FIELDS[:5] == ("record_id", "sn", "image_id", "create_at", "created_at")
    assert EXPORT_FIELDS[-1] == "matched"
    assert len(EXPORT_FIELDS) == 11
    assert tuple(RECORDS[0].to_dict()) == EXPORT_FIELDS


def test_to_dict_is_json_ready_with_every_wire_field() -> None:
    record = RECORDS[0]
    data = record.to_dict()
    assert orjson.loads(orjson.dumps(data)) == data
    for name in attrs.fields_dict(Record):
        assert data[name] == getattr(record, name)
    assert data["created_at"] == "2024-05-01T00:00:00.000Z"
    assert data["matched"] is record.matched


def test_created_at_has_one_format_whole_seconds_and_milliseconds_alike() -> None:
    whole = attrs.evolve(RECORDS[0], create_at=1714521600)
    exact = attrs.evolve(RECORDS[0], create_at=1714521600123)
    assert whole.to_dict()["created_at"] == "2024-05-01T00:00:00.000Z"
    assert exact.to_dict()["created_at"] == "2024-05-01T00:00:00.123Z"
    texts = [whole.to_dict()["created_at"], exact.to_dict()["created_at"]]
    assert len({len(text) for text in texts}) == 1  # a column of them parses whole


def test_jsonl_is_one_object_a_line() -> None:
    lines = written("jsonl").splitlines()
    first, second = (orjson.loads(line) for line in lines)
    assert list(first) == list(EXPORT_FIELDS)
    assert first["created_at"] == "2024-05-01T00:00:00.000Z"
    assert first["extend"] == '{"gate":"north"}'
    assert second["user_id"] is None
    assert second["created_at"] == "2024-05-01T00:00:01.000Z"  # seconds, read as such
    assert first["matched"] is True
    assert second["matched"] is False


def test_csv_has_a_header_and_empty_cells_for_none() -> None:
    rows = list(csv.reader(io.StringIO(written("csv"))))
    assert rows[0] == list(EXPORT_FIELDS)
    assert rows[1][:5] == ["7", "JKQ00009234", "img-7", "1714521600000", "2024-05-01T00:00:00.000Z"]
    assert rows[2][EXPORT_FIELDS.index("user_id")] == ""


def test_table_aligns_columns_and_cuts_long_cells() -> None:
    out = io.StringIO()
    writer = RecordWriter(out, "table")
    writer.header()
    writer.write(RECORDS[1])
    writer.write(Record(9, "S" * 40, "img-9", 1_714_521_602))
    head, rule, plain, long = out.getvalue().splitlines()
    assert head.split() == [
        "record_id",
        "stored",
        "(UTC)",
        "sn",
        "user_id",
        "score",
        "image_id",
        "extend",
    ]
    assert set(rule.replace(" ", "")) == {"-"}
    assert plain.split() == ["8", "2024-05-01", "00:00:01", "JKQ00009234", "-", "img-8"]
    assert "S" * 15 + "…" in long
    assert "S" * 16 not in long


def test_an_unknown_format_is_refused() -> None:
    assert FORMATS == ("jsonl", "csv", "table")
    with pytest.raises(ValueError, match="format must be one of jsonl, csv, table, not 'xml'"):
        RecordWriter(io.StringIO(), "xml")
