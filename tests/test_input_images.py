"""get_image's ids and download_image's destinations, hostile (the rule:
`tests/hostile.py`)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from senselink_plus import (
    ValidationError,
)
from senselink_plus._endpoints import IMAGE_PATH
from tests.conftest import JPEG
from tests.hostile import (
    SETTINGS,
    hostile,
    junk,
    new_client,
    odd_text,
    outcome,
    sent,
)
from tests.strategies import image_ids


@SETTINGS
@given(
    image_id=hostile(
        st.sampled_from(
            [".", "..", ".\r", " .. ", "a/..", "%2e%2e", "a/b", "?x=1", "#frag", " abc "]
        ),
        odd_text,
        general=image_ids() | junk,
    )
)
async def test_get_image_any_id(image_id: Any) -> None:
    async with new_client() as client:
        result = await outcome(client, lambda: client.get_image(image_id), {"image_id"})
    if not isinstance(result, ValidationError):
        assert result == JPEG
        rest = sent(client)[0].path[len(IMAGE_PATH) :]
        assert unquote(rest) == image_id


@SETTINGS
@given(
    destination=junk.filter(lambda v: not isinstance(v, str))  # a str is a path: see below
    | st.sampled_from([b"snap.jpg", bytearray(b"x"), memoryview(b"x")])
)
async def test_download_image_refuses_what_is_neither_a_path_nor_a_file(destination: Any) -> None:
    async with new_client() as client:
        result = await outcome(
            client, lambda: client.download_image("abc", destination), {"destination"}
        )
    assert isinstance(result, ValidationError)


async def test_download_image_to_odd_but_valid_destinations(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    async with new_client() as client:
        assert await client.download_image("abc", buffer) == len(JPEG)
        target = tmp_path / "snap 😀 \u202e\u0301.jpg"
        assert await client.download_image("abc", target) == len(JPEG)
        assert await client.download_image("abc", str(target)) == len(JPEG)
    assert buffer.getvalue() == target.read_bytes() == JPEG


@pytest.mark.parametrize(
    "destination",
    ["snap\x00.jpg", "\ud800.jpg", "/nonexistent/dir/snap.jpg", "/", io.StringIO()],
    ids=["nul", "surrogate", "missing-dir", "directory", "text-file"],
)
async def test_download_image_bad_destinations_are_refused_before_sending(
    destination: Any,
) -> None:
    async with new_client() as client:
        with pytest.raises(ValidationError) as info:
            await client.download_image("abc", destination)
    assert info.value.field == "destination"
    assert sent(client) == []
