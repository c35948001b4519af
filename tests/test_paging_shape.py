"""The paging code stays small enough to check by reading: each file at most 250
lines, each class at most 200, no function above cyclomatic complexity 10 (radon's
rank B at worst; `radon cc -n C senselink_plus` prints nothing for these files)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from radon.complexity import cc_visit  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent / "senselink_plus"
PAGING = [
    "_horizon.py",
    "_pagination.py",
    "_paging.py",
    "_relay.py",
    "_slice.py",
    "_slice_plan.py",
    "_walkorder.py",
    "_yielded.py",
]


@pytest.mark.parametrize("name", PAGING)
def test_each_paging_file_is_small(name: str) -> None:
    source = (ROOT / name).read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 250
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno is not None
            assert node.end_lineno - node.lineno + 1 <= 200, node.name


@pytest.mark.parametrize("name", PAGING)
def test_no_paging_function_is_above_complexity_10(name: str) -> None:
    blocks = cc_visit((ROOT / name).read_text(encoding="utf-8"))
    assert blocks  # the file was read and holds functions
    assert [(b.fullname, b.complexity) for b in blocks if b.complexity > 10] == []
