"""The watch's pure position (`_follow`): windows, verdicts, saved state, back-off, with
plain calls and a simulated server; no I/O, no event loop."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from senselink_plus import (
    AuthenticationError,
    RateLimitError,
    Record,
    ServerError,
    ValidationError,
)
from senselink_plus._follow import (
    AUTH_FAILURE_LIMIT,
    MAX_BACKOFF,
    MAX_RETRY_AFTER,
    MAX_SKEW,
    DateGap,
    PollFailures,
    Position,
    Query,
    Verdict,
    believed_now,
    state_covers,
)
from senselink_plus._retry import backoff_delay

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
OVERLAP = timedelta(minutes=2)
QUERY = Query.of("app-key", sn="GATE-1")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rec(record_id: int, seconds: float) -> Record:
    ms = round(at(seconds).timestamp() * 1000)
    return Record(record_id=record_id, sn="GATE-1", image_id=f"{record_id:024x}", create_at=ms)


def deliver(position: Position, records: list[Record], lo: datetime, hi: datetime) -> list[int]:
    """What a poll of ``(lo, hi)`` listing ``records`` delivers, each taken at once."""
    got = []
    for record in records:
        if position.verdict(record, lo, hi) is Verdict.NEW:
            position.take(record)
            got.append(record.record_id)
    return got


# --- windows ---------------------------------------------------------------------------


def test_a_fresh_position_reads_from_its_start_to_the_servers_now() -> None:
    position = Position.fresh(QUERY, at(0.7), OVERLAP)
    assert position.floor == at(0)  # whole seconds: the start's own second is included
    assert position.window(at(30)) == (at(0), at(30))
    # A server "now" at or before the start still reads a second.
    assert position.window(at(-5)) == (at(0), at(1))


def test_the_next_window_starts_an_overlap_before_the_cursor() -> None:
    position = Position.fresh(QUERY, at(0), OVERLAP)
    lo, hi = position.window(at(600))
    assert deliver(position, [rec(1, 300), rec(2, 500)], lo, hi) == [1, 2]
    assert position.polled(hi)
    assert position.cursor == at(600)
    assert position.window(at(610)) == (at(480), at(610))
    assert position.floor is None  # no poll reaches below the start any more


def test_an_idle_position_moves_with_the_server_so_a_poll_stays_short() -> None:
    position = Position.fresh(QUERY, at(0), OVERLAP)
    for step in range(1, 1000):
        lo, hi = position.window(at(step * 3600))
        assert hi - lo <= timedelta(hours=1) + OVERLAP
        position.polled(hi)
    assert not position.polled(at(0))  # never backwards


def test_records_outside_the_asked_window_are_refused() -> None:
    position = Position.fresh(QUERY, at(0), OVERLAP)
    lo, hi = at(0), at(60)
    assert position.verdict(rec(1, -0.5), lo, hi) is Verdict.OUTSIDE
    assert position.verdict(rec(2, 62), lo, hi) is Verdict.OUTSIDE
    assert position.verdict(rec(3, 60.9), lo, hi) is Verdict.NEW  # a second of slack
    assert position.verdict(rec(4, 0), lo, hi) is Verdict.NEW


def test_ids_delivered_are_not_delivered_again_and_the_floor_holds() -> None:
    position = Position.fresh(QUERY, at(100), OVERLAP)
    lo, hi = position.window(at(200))
    assert deliver(position, [rec(1, 150)], lo, hi) == [1]
    position.polled(hi)
    lo, hi = position.window(at(210))
    assert lo == at(100)  # the floor: 200 - 120 would reach below the start
    # A record stored before the start, listed late, is not this watch's.
    assert deliver(position, [rec(0, 99), rec(1, 150), rec(2, 205)], lo, hi) == [2]


def test_a_late_commit_inside_the_overlap_is_delivered_even_with_a_lower_id() -> None:
    position = Position.fresh(QUERY, at(0), OVERLAP)
    lo, hi = position.window(at(100))
    assert deliver(position, [rec(10, 50), rec(12, 90)], lo, hi) == [10, 12]
    position.polled(hi)
    lo, hi = position.window(at(130))
    # 11 was committed after 12 was delivered, 60 s before it: in memory, it comes.
    assert deliver(position, [rec(10, 50), rec(11, 30), rec(12, 90), rec(13, 125)], lo, hi) == [
        11,
        13,
    ]


def test_a_position_after_the_newest_record_skips_its_whole_second_up_to_it() -> None:
    # The probe saw record 12, the newest stored; 10 and 11 share its second, 13 came
    # later in that second, 14 in the next.
    old = [rec(10, 4.1), rec(11, 4.5), rec(12, 4.6)]
    later = [rec(13, 4.9), rec(14, 6)]
    position = Position.after(QUERY, old[-1], OVERLAP)
    lo, hi = position.window(at(10))
    assert deliver(position, old + later, lo, hi) == [13, 14]
    # A restart before anything was delivered keeps the same rule.
    fresh = Position.after(QUERY, old[-1], OVERLAP)
    again = Position.from_state(fresh.state(), QUERY, OVERLAP, "here")
    assert deliver(again, old + later, *again.window(at(10))) == [13, 14]
    assert state_covers(again.state(), fresh.state())


# --- the saved state ---------------------------------------------------------------------


def test_the_state_holds_only_the_ids_of_the_newest_second() -> None:
    position = Position.fresh(QUERY, at(0), OVERLAP)
    records = [rec(i, i // 100) for i in range(5000)]  # 100 records a second, 50 seconds
    lo, hi = position.window(at(60))
    assert len(deliver(position, records, lo, hi)) == 5000
    state = position.state()
    assert state["ids"] == list(range(4900, 5000))
    assert state["watermark"] == 4999
    assert len(orjson.dumps(state)) < 1000
    assert datetime.fromisoformat(state["newest"]) == at(49)


def test_state_with_the_record_in_hand_is_what_to_save_once_it_is_handled() -> None:
    position = Position.fresh(QUERY, at(0), OVERLAP)
    lo, hi = position.window(at(60))
    deliver(position, [rec(1, 10), rec(2, 20)], lo, hi)
    before = position.state()
    position.deliver(rec(3, 20.5))  # yielded, in hand
    assert position.state() == before  # not acknowledged: not in what is saved
    after = position.state(delivered=True)
    assert after["ids"] == [2, 3]
    assert after["watermark"] == 3
    position.deliver(rec(4, 21))
    later = position.state(delivered=True)
    assert later["ids"] == [4]
    assert position.state() == before  # asking changes nothing
    position.ack(rec(3, 20.5))
    position.ack(rec(4, 21))
    assert position.state() == later


def test_a_restart_from_the_state_repeats_nothing_saved_and_misses_nothing() -> None:
    position = Position.fresh(QUERY, at(0), OVERLAP)
    listing = [rec(1, 10), rec(2, 50), rec(3, 50.2), rec(4, 50.9)]
    lo, hi = position.window(at(55))
    assert deliver(position, listing, lo, hi) == [1, 2, 3, 4]
    saved = orjson.loads(orjson.dumps(position.state()))  # through JSON, as a file would
    restored = Position.from_state(saved, QUERY, OVERLAP, "here")
    # Later: a late commit below the newest second with a higher id, one more at 50 s,
    # and a new one.
    listing += [rec(5, 20), rec(6, 50.5), rec(7, 60)]
    lo, hi = restored.window(at(65))
    assert lo == at(0)  # the floor is still within reach
    assert deliver(restored, listing, lo, hi) == [5, 6, 7]


@pytest.mark.parametrize(
    ("other", "named"),
    [
        (Query.of("app-key", sn="GATE-2"), "sn 'GATE-2'"),
        (Query.of("app-key", sn=None), "all devices"),
        (Query.of("other-key", sn="GATE-1"), "sha256:"),
    ],
)
def test_a_state_of_another_query_is_refused_naming_both(other: Query, named: str) -> None:
    state = Position.fresh(QUERY, at(0), OVERLAP).state()
    with pytest.raises(ValidationError, match="belongs to another watch") as info:
        Position.from_state(state, other, OVERLAP, "FileCheckpoint('s.json')")
    message = str(info.value)
    assert "sn 'GATE-1'" in message
    assert named in message
    assert "FileCheckpoint('s.json')" in message
    assert "app-key" not in message  # a fingerprint only
    assert info.value.field == "checkpoint"


@pytest.mark.parametrize(
    "change",
    [
        {"version": 1},
        {"cursor": None},
        {"cursor": "2024-05-01T12:00:00"},  # naive
        {"ids": [1, "2"]},
        {"ids": [-1]},
        {"ids": {"1": 2}},
        {"watermark": "9"},
        {"watermark": None, "newest": "2024-05-01T12:00:00+00:00"},
        {"query": None},
        {"query": {"sn": 5, "app": "x", "order": "ascending"}},
    ],
)
def test_an_unusable_state_is_a_validation_error(change: dict[str, object]) -> None:
    position = Position.fresh(QUERY, at(0), OVERLAP)
    position.take(rec(1, 5))
    state = {**position.state(), **change}
    with pytest.raises(ValidationError, match="no usable watch state"):
        Position.from_state(state, QUERY, OVERLAP, "here")


# --- failures and server time ---------------------------------------------------------------


def test_the_poll_back_off_is_the_retry_policys_formula() -> None:
    failures, twin = PollFailures(10.0, random.Random(7)), random.Random(7)
    error = ServerError("down", code=503, status=503)
    waits = [failures.failed(error) for _ in range(8)]
    assert waits == [backoff_delay(n + 1, 10.0, MAX_BACKOFF, twin) for n in range(1, 9)]
    assert max(w for w in waits if w is not None) <= MAX_BACKOFF
    failures.succeeded()
    assert failures.count == 0


def test_a_long_retry_after_is_waited_for() -> None:
    failures = PollFailures(10.0, random.Random(1))
    assert failures.failed(RateLimitError("slow", code=429, status=429, retry_after=3600)) == 3600
    huge = RateLimitError("slow", code=429, status=429, retry_after=1e300)
    assert failures.failed(huge) == MAX_RETRY_AFTER
    short = RateLimitError("slow", code=429, status=429, retry_after=0.5)
    assert 10.0 <= (failures.failed(short) or 0) <= MAX_BACKOFF  # the back-off is longer


def test_three_consecutive_refusals_end_the_watch_other_failures_in_between_do_not() -> None:
    failures = PollFailures(1.0, random.Random(1))
    refused = AuthenticationError("bad sign", code=401, status=401)
    down = ServerError("down", code=503, status=503)
    assert failures.failed(refused) is not None
    assert failures.failed(refused) is not None
    assert failures.failed(down) is not None  # resets the refusals
    assert all(failures.failed(refused) is not None for _ in range(AUTH_FAILURE_LIMIT - 1))
    assert failures.failed(refused) is None
    assert failures.count == 3 + AUTH_FAILURE_LIMIT


def test_the_servers_now_is_believed_within_an_hour_of_the_local_clock() -> None:
    local = T0.timestamp()
    assert believed_now(local - 1799, local) == at(-1799)
    assert believed_now(local + MAX_SKEW, local) == at(MAX_SKEW)
    assert believed_now(local + 10**12, local) == T0  # not the server's clock: ignored
    assert believed_now(local - MAX_SKEW - 1, local) == T0
    assert believed_now(None, local) == T0


# --- a simulated server: any skew, any arrivals, restarts -----------------------------------


@attrs.define
class Sim:
    """A listing ordered by id; records become visible on arrival, stamped up to
    ``late`` seconds before it (committed late); ``Date`` in whole seconds."""

    overlap: float
    server: float = 0.0  # seconds after T0, the server's clock
    rows: list[tuple[int, float, float]] = attrs.Factory(list)  # id, create_at, visible at
    next_id: int = 1
    last_date: float | None = None
    last_date_local: float = 0.0

    def arrive(self, lateness: float) -> None:
        stamp = max(0.0, self.server - lateness)
        self.rows.append((self.next_id, math.floor(stamp * 1000) / 1000, self.server))
        self.next_id += 1

    def list(self, lo: datetime, hi: datetime) -> list[Record]:
        low = math.floor((lo - T0).total_seconds())
        high = math.ceil((hi - T0).total_seconds())
        return [
            rec(rid, created)
            for rid, created, visible in self.rows
            if visible <= self.server and low <= created <= high
        ]


@settings(max_examples=150, deadline=None)
@given(
    offset=st.floats(-1800, 1800),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("arrive"), st.integers(1, 30), st.floats(0, 50)),
            st.tuples(st.just("wait"), st.floats(0.001, 5) | st.floats(5, 400), st.just(0.0)),
            st.tuples(st.just("poll"), st.floats(0, 0.999), st.just(0.0)),
            st.tuples(st.just("save"), st.just(0), st.just(0.0)),
            st.tuples(st.just("restart"), st.just(0), st.just(0.0)),
        ),
        max_size=60,
    ),
)
def test_any_skew_and_arrivals_nothing_missed_and_repeats_only_since_the_last_save(
    offset: float, steps: list[tuple[str, float, float]]
) -> None:
    overlap = OVERLAP.total_seconds()
    sim = Sim(overlap)
    local_base = T0.timestamp() + offset  # the client's clock reads server + offset

    def local() -> float:
        return local_base + sim.server

    def server_now(lag: float) -> datetime:
        # What the driver computes: the last Date (whole seconds) moved on by the local
        # timer; ``lag`` is how far into its second that Date was read.
        date = math.floor(sim.server - lag)
        return believed_now(T0.timestamp() + date + lag, local())

    position = Position.fresh(QUERY, server_now(0.0), OVERLAP)
    start = position.floor
    assert start is not None
    saved = position.state()
    delivered: list[int] = []
    since_save: set[int] = set()
    allowed_repeats: set[int] = set()

    def poll(lag: float) -> None:
        lo, hi = position.window(server_now(lag))
        for record in sim.list(lo, hi):
            if position.verdict(record, lo, hi) is Verdict.NEW:
                position.take(record)
                delivered.append(record.record_id)
                since_save.add(record.record_id)
        position.polled(hi)

    for kind, amount, lateness in steps:
        if kind == "arrive":
            count = int(amount)
            for i in range(count):  # stamped from ``lateness`` ago up to now
                sim.arrive(min(lateness, overlap - 1) * (count - i) / count)
        elif kind == "wait":
            sim.server += amount
        elif kind == "poll":
            poll(amount)
        elif kind == "save":
            saved = orjson.loads(orjson.dumps(position.state()))
            since_save.clear()
        else:
            allowed_repeats |= since_save
            since_save.clear()
            position = Position.from_state(saved, QUERY, OVERLAP, "sim")
    sim.server += 1.0
    poll(0.0)  # one more poll after the last arrival: everything is visible
    expected = [rid for rid, created, _ in sim.rows if at(created) >= start]
    assert sorted(set(delivered)) == expected  # nothing missed, nothing from before
    repeats = {rid for rid in delivered if delivered.count(rid) > 1}
    assert repeats <= allowed_repeats


# --- acknowledgement -------------------------------------------------------------------


def delivered(position: Position, records: list[Record], lo: datetime, hi: datetime) -> None:
    for record in records:
        assert position.verdict(record, lo, hi) is Verdict.NEW
        position.deliver(record)


def test_acknowledging_out_of_order_twice_or_unknown_is_an_error_that_changes_nothing() -> None:
    position = Position.fresh(QUERY, at(0), OVERLAP)
    lo, hi = position.window(at(60))
    one, two, three = rec(1, 10), rec(2, 20), rec(3, 30)
    delivered(position, [one, two, three], lo, hi)
    before = position.state()
    with pytest.raises(ValidationError, match="record 2 is acknowledged out of order: record 1"):
        position.ack(two)
    with pytest.raises(ValidationError, match="record 9 was not delivered"):
        position.ack(rec(9, 40))
    assert position.state() == before
    position.ack(one)
    with pytest.raises(ValidationError, match="record 1 was already acknowledged"):
        position.ack(one)
    assert position.state()["watermark"] == 1
    assert position.unacknowledged == 2


def test_the_saved_cursor_waits_for_the_oldest_unacknowledged_record() -> None:
    position = Position.fresh(QUERY, at(0), OVERLAP)
    lo, hi = position.window(at(60))
    delivered(position, [rec(1, 10), rec(2, 50)], lo, hi)
    position.polled(at(60))  # the poll completed: the read cursor moves on
    assert datetime.fromisoformat(position.state()["cursor"]) == at(0)
    position.ack(rec(1, 10))
    assert datetime.fromisoformat(position.state()["cursor"]) == at(10)
    position.ack(rec(2, 50))
    assert datetime.fromisoformat(position.state()["cursor"]) == at(60)


def test_a_restart_from_a_partly_acknowledged_state_redelivers_only_the_rest() -> None:
    position = Position.fresh(QUERY, at(0), OVERLAP)
    listing = [rec(1, 10), rec(2, 10.5), rec(3, 50), rec(4, 51)]
    lo, hi = position.window(at(60))
    delivered(position, listing, lo, hi)
    position.ack(listing[0])
    position.ack(listing[1])
    position.polled(at(60))
    saved = orjson.loads(orjson.dumps(position.state()))
    restored = Position.from_state(saved, QUERY, OVERLAP, "here")
    lo, hi = restored.window(at(70))
    assert deliver(restored, listing, lo, hi) == [3, 4]


def test_state_covers_orders_states_by_what_they_acknowledge() -> None:
    position = Position.fresh(QUERY, at(0), OVERLAP)
    lo, hi = position.window(at(60))
    states = []
    for record in [rec(1, 10), rec(2, 10.5), rec(3, 50)]:
        states.append(position.state())
        assert position.verdict(record, lo, hi) is Verdict.NEW
        position.take(record)
    states.append(position.state())
    for i, older in enumerate(states):
        for newer in states[i:]:
            assert state_covers(newer, older)
        for newer in states[i + 1 :]:
            assert not state_covers(older, newer)


# --- one clock -------------------------------------------------------------------------


def test_the_date_gap_is_an_upper_bound_from_every_listed_record() -> None:
    gap = DateGap()
    assert gap.lead() == timedelta(seconds=MAX_SKEW)  # no record seen: no trust yet
    gap.note(at(300), at(100))  # an old record: at most 200 s
    gap.note(at(400), at(275))  # a fresh one: at most 125 s
    gap.note(at(500), at(300))
    assert gap.lead() == timedelta(seconds=125)
    gap.note(at(600), at(601))  # stamped after the Date: no lead at all
    assert gap.lead() == timedelta(0)
    far = DateGap()
    far.note(at(10**6), at(0))
    assert far.lead() == timedelta(seconds=MAX_SKEW)


def test_widening_the_overlap_redelivers_nothing_already_pruned() -> None:
    position = Position.fresh(QUERY, at(0), OVERLAP)
    early = [rec(i, i) for i in range(1, 11)]
    lo, hi = position.window(at(20))
    assert deliver(position, early, lo, hi) == list(range(1, 11))
    position.polled(at(400))  # prunes the ids below 400 - 120 s
    position.widen(timedelta(seconds=500))
    lo, hi = position.window(at(410))
    assert lo <= at(0)
    late = rec(11, 5)  # committed late, now inside the wider overlap
    assert deliver(position, [*early, late], lo, hi) == [11]
