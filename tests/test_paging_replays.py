# ruff: noqa: E501  (the pinned runs are kept as Hypothesis printed them)
"""Runs of the `Walk` state machine (tests/test_paging.py) that Hypothesis once found
failing, pinned so they run on every CI without its example database: descending walks
with arrivals at the last record's instant, expiries of records already yielded, an
emptied listing, over- and under-stated totals with expiries."""

from __future__ import annotations

import re

import pytest
from test_paging import Walk

from senselink_plus._models import Order

RUNS = [
    (
        "state.start(count=3, spacing=1, order=Order.DESCENDING, page_size=3, lookahead=1, cap=None, extra=0, unit='ms', compare='ms', split=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.arrive(count=1, spacing=0)",
        "state.answer(reshuffle=False, stale=False)",
        "state.arrive(count=2, spacing=0)",
    ),
    (
        "state.start(count=3, spacing=1, order=Order.DESCENDING, page_size=3, lookahead=1, cap=None, extra=0, unit='ms', compare='ms', split=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.arrive(count=1, spacing=0)",
        "state.answer(reshuffle=False, stale=False)",
        "state.arrive(count=3, spacing=0)",
    ),
    (
        "state.start(count=3, spacing=1, order=Order.DESCENDING, page_size=3, lookahead=1, cap=None, extra=0, unit='ms', compare='ms', split=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.arrive(count=15, spacing=0)",
    ),
    (
        "state.start(count=3, spacing=1, order=Order.DESCENDING, page_size=3, lookahead=1, cap=None, extra=0, unit='ms', compare='ms', split=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.arrive(count=2, spacing=0)",
        "state.answer(reshuffle=False, stale=False)",
        "state.arrive(count=2, spacing=0)",
    ),
    (
        "state.start(count=7, spacing=1, order=Order.DESCENDING, page_size=3, lookahead=1, cap=None, extra=0, unit='ms', compare='ms', split=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.expire(count=1)",
        "state.arrive(count=2, spacing=0)",
    ),
    (
        "state.start(count=5, spacing=1, order=Order.DESCENDING, page_size=3, lookahead=1, cap=None, extra=0, unit='ms', compare='ms', split=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.arrive(count=1, spacing=0)",
        "state.answer(reshuffle=False, stale=False)",
        "state.expire(count=3)",
        "state.arrive(count=3, spacing=0)",
    ),
    (
        "state.start(count=6, spacing=1, order=Order.DESCENDING, page_size=3, lookahead=1, cap=None, extra=0, unit='ms', compare='ms', split=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.arrive(count=1, spacing=0)",
        "state.answer(reshuffle=False, stale=False)",
        "state.expire(count=3)",
        "state.arrive(count=3, spacing=0)",
    ),
    (
        "state.start(count=189, spacing=1, order=Order.DESCENDING, page_size=100, lookahead=1, cap=None, extra=500, unit='ms', compare='ms', split=False)",
        "state.expire(count=1)",
        "state.answer(reshuffle=False, stale=False)",
        "state.arrive(count=10, spacing=0)",
        "state.answer(reshuffle=False, stale=False)",
        "state.expire(count=1)",
        "state.expire(count=11)",
    ),
    (
        "state.start(count=330, spacing=400, order=Order.DESCENDING, page_size=52, lookahead=5, cap=None, extra=500, unit='s', compare='ms', split=True)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=5)",
        "state.expire(count=30)",
        "state.expire(count=30)",
        "state.answer_early(pick=1, stale=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=8)",
        "state.expire(count=30)",
        "state.expire(count=30)",
        "state.expire(count=30)",
        "state.answer_early(pick=0, stale=False)",
        "state.answer_early(pick=0, stale=True)",
        "state.answer_early(pick=0, stale=True)",
        "state.answer_early(pick=0, stale=True)",
    ),
    (
        "state.start(count=101, spacing=1, order=Order.ASCENDING, page_size=100, lookahead=1, cap=None, extra=-1, unit='ms', compare='ms', split=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.expire(count=1)",
        "state.expire(count=9)",
        "state.expire(count=30)",
        "state.expire(count=30)",
        "state.expire(count=30)",
    ),
    (
        "state.start(count=101, spacing=1, order=Order.ASCENDING, page_size=100, lookahead=1, cap=None, extra=0, unit='ms', compare='ms', split=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.expire(count=1)",
        "state.expire(count=9)",
        "state.expire(count=30)",
        "state.expire(count=30)",
        "state.expire(count=30)",
    ),
    (
        "state.start(count=0, spacing=1, order=Order.DESCENDING, page_size=3, lookahead=1, cap=None, extra=0, unit='ms', compare='s', split=False)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=300)",
        "state.arrive(count=1, spacing=300)",
        "state.arrive(count=1, spacing=300)",
        "state.arrive(count=1, spacing=300)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=0)",
        "state.arrive(count=1, spacing=0)",
    ),
    (
        "state.start(count=25, spacing=1, order=Order.DESCENDING, page_size=100, lookahead=1, cap=7, extra=0, unit='ms', compare='ms', split=False)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.answer(reshuffle=False, stale=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.expire(count=1)",
        "state.expire(count=1)",
    ),
    (
        "state.start(count=0, spacing=1, order=Order.DESCENDING, page_size=3, lookahead=1, cap=None, extra=0, unit='ms', compare='ms', split=False)",
        "state.never_twice_and_in_order()",
        "state.within_the_bound()",
        "state.arrive(count=3, spacing=0)",
        "state.never_twice_and_in_order()",
        "state.within_the_bound()",
        "state.answer(reshuffle=False, stale=False)",
        "state.never_twice_and_in_order()",
        "state.within_the_bound()",
        "state.arrive(count=7, spacing=0)",
        "state.never_twice_and_in_order()",
        "state.within_the_bound()",
    ),
    (
        "state.start(count=69, spacing=1, order=Order.DESCENDING, page_size=3, lookahead=1, cap=None, extra=0, unit='ms', compare='ms', split=False)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=15)",
        "state.expire(count=30)",
        "state.answer_early(pick=0, stale=False)",
        "state.expire(count=16)",
        "state.answer(reshuffle=False, stale=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.answer_early(pick=0, stale=False)",
        "state.answer_early(pick=0, stale=False)",
        "state.answer_early(pick=0, stale=False)",
        "state.answer_early(pick=0, stale=False)",
        "state.answer_early(pick=0, stale=False)",
        "state.answer_early(pick=0, stale=False)",
        "state.answer(reshuffle=False, stale=False)",
    ),
    (
        "state.start(count=60, spacing=1, order=Order.DESCENDING, page_size=3, lookahead=1, cap=None, extra=0, unit='ms', compare='ms', split=False)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=9)",
        "state.expire(count=30)",
        "state.answer_early(pick=0, stale=False)",
        "state.expire(count=13)",
        "state.answer(reshuffle=True, stale=False)",
        "state.answer_early(pick=0, stale=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.answer_early(pick=0, stale=False)",
        "state.answer_early(pick=0, stale=False)",
        "state.answer_early(pick=0, stale=False)",
        "state.answer_early(pick=0, stale=False)",
        "state.answer_early(pick=0, stale=False)",
        "state.answer(reshuffle=False, stale=False)",
    ),
    (
        "state.start(count=81, spacing=1, order=Order.DESCENDING, page_size=3, lookahead=1, cap=None, extra=0, unit='ms', compare='ms', split=False)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=10)",
        "state.expire(count=30)",
        "state.expire(count=30)",
        "state.answer_early(pick=0, stale=False)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.expire(count=1)",
        "state.answer(reshuffle=False, stale=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.answer(reshuffle=False, stale=False)",
        "state.arrive(count=3, spacing=0)",
        "state.answer(reshuffle=False, stale=False)",
        "state.expire(count=1)",
    ),
]
CALL = re.compile(r"state\.(\w+)\((.*)\)$")


def _kwargs(text: str) -> dict[str, object]:
    pairs = (part.split("=", 1) for part in text.split(", ") if part)
    return {key: _value(value) for key, value in pairs}


def _value(text: str) -> object:
    if text.startswith("Order."):
        return Order[text[len("Order.") :]]
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    if text.startswith("'"):
        return text.strip("'")
    return int(text)


@pytest.mark.parametrize("run", RUNS, ids=[f"run{i}" for i in range(len(RUNS))])
def test_pinned_walk(run: tuple[str, ...]) -> None:
    state = Walk()
    for line in run:
        match = CALL.match(line)
        assert match is not None, line
        getattr(state, match.group(1))(**_kwargs(match.group(2)))
        state.never_twice_and_in_order()
        state.within_the_bound()
    state.teardown()
