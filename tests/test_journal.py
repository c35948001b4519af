"""The acknowledgement journal's record format: what checks out is read back whole,
anything else (torn, flipped, foreign, garbage) reads as nothing."""

from __future__ import annotations

import os
import zlib

import orjson
from hypothesis import given
from hypothesis import strategies as st

from senselink_plus._journal import AckJournal, decode, encode

STATE = {"version": 2, "ids": [7, 8], "watermark": 8, "newest": "2024-05-01T00:00:01+00:00"}


def test_a_record_reads_back_and_trailing_bytes_are_ignored() -> None:
    record = encode(orjson.dumps(STATE))
    assert decode(record) == STATE
    assert decode(record + b"older, longer record's tail") == STATE


@given(st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=7))
def test_any_cut_or_flipped_bit_reads_as_nothing(cut: int, bit: int) -> None:
    record = encode(orjson.dumps(STATE))
    at = cut % len(record)
    assert decode(record[:at]) is None
    flipped = bytearray(record)
    flipped[at] ^= 1 << bit
    assert decode(bytes(flipped)) is None


def test_a_payload_that_is_not_a_mapping_reads_as_nothing() -> None:
    for payload in (b"[1, 2]", b"not json", b""):
        length = len(payload).to_bytes(4, "big")
        crc = zlib.crc32(payload, zlib.crc32(length)).to_bytes(4, "big")
        assert decode(b"slp-ack1" + length + crc + payload) is None
    assert decode(b"other-01" + encode(b"{}")[8:]) is None


def test_each_write_overwrites_the_head(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "state.json.acks")
    journal = AckJournal.open(path)
    try:
        journal.write({**STATE, "ids": list(range(100))})
        journal.write(STATE)  # shorter: the longer one's tail stays, unread
        assert journal.read() == STATE
        journal.clear()
        assert journal.read() is None
        assert os.path.getsize(path) == 0
    finally:
        journal.remove()
    assert not os.path.exists(path)
