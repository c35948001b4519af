"""``records --format parquet``: the columns of `Record.to_dict`, with pyarrow; without
it, a usage error naming the install command (before any request)."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from senselink_plus import Record
from senselink_plus._cli import main
from senselink_plus._output import EXPORT_FIELDS
from senselink_plus._parquet import ParquetRecordWriter
from tests.cli_helpers import OLD_EXPORT, EmulatorThread, part_files, seed, spawn, window

HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None
needs_pyarrow = pytest.mark.skipif(
    not HAS_PYARROW, reason="pyarrow is not installed (pip install pyarrow to run this)"
)


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read_rows(path: Path | io.BytesIO) -> tuple[Any, list[dict[str, Any]]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return table.schema, table.to_pylist()


def same_as_to_dict(parquet_row: dict[str, Any], exported: dict[str, Any]) -> None:
    assert list(parquet_row) == list(exported)
    assert parquet_row["created_at"] == from_iso(exported["created_at"])
    assert {**parquet_row, "created_at": None} == {**exported, "created_at": None}


# --- with pyarrow ---------------------------------------------------------------------------


@needs_pyarrow
def test_records_to_parquet_has_the_columns_of_to_dict(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa

    seed(cli_emulator, 300, days=2)
    target = tmp_path / "week.parquet"
    assert main(["records", *window(2), "--format", "parquet", "-o", str(target)]) == 0
    assert "300 records" in capsys.readouterr().err
    assert main(["records", *window(2)]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    schema, rows = read_rows(target)
    assert schema.names == list(EXPORT_FIELDS)
    assert schema.field("created_at").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("record_id").type == pa.int64()
    assert schema.field("matched").type == pa.bool_()
    assert len(rows) == len(exported) == 300
    for row, want in zip(rows, exported, strict=True):
        same_as_to_dict(row, want)
    assert {row["matched"] for row in rows} == {True, False}
    assert any(row["user_id"] is None for row in rows)  # nulls stay nulls
    assert part_files(tmp_path) == []


@needs_pyarrow
def test_an_empty_range_gives_a_file_with_every_column(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "none.parquet"
    assert main(["records", *window(), "--format", "parquet", "-o", str(target)]) == 0
    schema, rows = read_rows(target)
    assert schema.names == list(EXPORT_FIELDS)
    assert rows == []


@needs_pyarrow
def test_row_groups_hold_the_records_in_order() -> None:
    import pyarrow.parquet as pq

    records = [
        Record(
            record_id=i,
            sn="SN1",
            image_id=f"img{i}",
            create_at=1_700_000_000_000 + i * 1001,
            user_id=7 if i % 2 else None,
            verify_score=0.97 if i % 2 else None,
            timezone="GMT+9:00",
            extend='{"gate": "n"}' if i == 3 else None,
        )
        for i in range(7)
    ]
    out = io.BytesIO()
    writer = ParquetRecordWriter(out, rows_per_group=3)
    writer.header()
    for record in records:
        writer.write(record)
    writer.close()
    writer.close()  # twice is harmless
    assert writer.count == 7
    out.seek(0)
    assert pq.ParquetFile(out).metadata.num_row_groups == 3
    out.seek(0)
    _, rows = read_rows(out)
    for row, record in zip(rows, records, strict=True):
        same_as_to_dict(row, record.to_dict())
        assert row["created_at"].tzinfo is not None


@needs_pyarrow
def test_a_failed_parquet_export_leaves_the_file_as_it_was(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cli_emulator, 20)
    target = tmp_path / "week.parquet"
    target.write_text(OLD_EXPORT)
    args = ["records", *window(), "--format", "parquet", "-o", str(target)]
    assert main([*args, "--app-secret", "wrong"]) == 1
    assert "AuthenticationError" in capsys.readouterr().err
    assert target.read_text() == OLD_EXPORT
    assert part_files(tmp_path) == []


@needs_pyarrow
def test_records_to_parquet_in_a_child_process(
    cli_emulator: EmulatorThread, tmp_path: Path
) -> None:
    seed(cli_emulator, 40)
    target = tmp_path / "day.parquet"
    child = spawn(cli_emulator, "records", "--from", "2d", "--to", "now", "--format", "parquet",
                  "-o", str(target))  # fmt: skip
    _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err.decode()
    _, rows = read_rows(target)
    assert len(rows) == 40
    assert all(row["created_at"].tzinfo is not None for row in rows)


# --- without pyarrow, and usage -------------------------------------------------------------


@pytest.fixture
def no_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import pyarrow`` fail, as where it is not installed."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)


@pytest.mark.usefixtures("no_pyarrow")
def test_without_pyarrow_it_names_the_install_command_and_sends_nothing(
    cli_emulator: EmulatorThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "week.parquet"
    assert main(["records", *window(), "--format", "parquet", "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "senselink-plus: error: --format parquet needs pyarrow, which is not installed; "
        "install it with: pip install pyarrow\n"
    )
    assert not target.exists()
    assert part_files(tmp_path) == []
    assert cli_emulator.call(lambda: len(cli_emulator.emu.requests)) == 0


@pytest.mark.usefixtures("no_pyarrow")
def test_without_pyarrow_the_other_formats_work(
    cli_emulator: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cli_emulator, 5)
    assert main(["records", *window(), "--format", "csv"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 5


def test_parquet_needs_an_output_file(
    cli_emulator: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["records", *window(), "--format", "parquet"]) == 2
    assert "--format parquet writes a file: give -o FILE" in capsys.readouterr().err
    assert cli_emulator.call(lambda: len(cli_emulator.emu.requests)) == 0


def test_watch_has_no_parquet(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["watch", "--format", "parquet"])
    assert caught.value.code == 2
    assert "invalid choice: 'parquet'" in capsys.readouterr().err


def test_the_parquet_columns_are_the_export_columns() -> None:
    from senselink_plus._parquet import _TYPES

    assert list(_TYPES) == list(EXPORT_FIELDS)
