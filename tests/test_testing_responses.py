"""The response builders of senselink_plus.testing, read back by a real client."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import NamedTuple

import pytest

import senselink_plus as slp
from senselink_plus.testing import (
    MockTransport,
    created_record_response,
    error_response,
    image_response,
    record_page_response,
    sample_image,
    wire_record,
)

T0 = datetime(2026, 11, 29, tzinfo=timezone.utc)


def client_for(mock: MockTransport) -> slp.Client:
    return slp.Client("key", "secret", transport=mock, retry=slp.RetryPolicy.none())


async def test_record_page_from_wire_dicts_and_records() -> None:
    record = slp.Record(5, "SN2", "img5", 1_700_000_100_000, user_id=9, verify_score=0.93)
    mock = MockTransport(
        lambda request: record_page_response(
            [wire_record(4, sn="SN1", extend='{"gate":"n"}'), record], total=12, page_num=2
        )
    )
    async with client_for(mock) as client:
        page = await client.list_records(T0, T0 + timedelta(hours=1), page=2)
    assert (page.page_num, page.page_size, page.total) == (2, 100, 12)
    assert page.records[0].record_id == 4
    assert page.records[0].extend_data == {"gate": "n"}
    assert page.records[1] == record


async def test_created_record() -> None:
    mock = MockTransport(lambda request: created_record_response(77, "img77"))
    async with client_for(mock) as client:
        created = await client.create_record("SN1", sample_image("alice"))
    assert created == slp.CreatedRecord(77, "img77")


class ErrorCase(NamedTuple):
    """A canned error response, the error it raises, and the code that error carries."""

    response: slp.HttpResponse
    kind: type[slp.APIError]
    code: int


@pytest.mark.parametrize(
    ErrorCase._fields,
    [
        ErrorCase(error_response(30003), kind=slp.NoFaceDetectedError, code=30003),
        ErrorCase(
            error_response(30001, status=400, desc="sn"),
            kind=slp.InvalidParameterError,
            code=30001,
        ),
        ErrorCase(error_response(401, status=401), kind=slp.AuthenticationError, code=401),
        ErrorCase(error_response(503, status=503), kind=slp.ServerError, code=503),
    ],
)
async def test_error_envelopes(
    response: slp.HttpResponse, kind: type[slp.APIError], code: int
) -> None:
    async with client_for(MockTransport(lambda request: response)) as client:
        with pytest.raises(kind) as caught:
            await client.get_image("img1")
    assert caught.value.code == code
    assert caught.value.status == response.status


async def test_rate_limit_with_retry_after() -> None:
    mock = MockTransport(lambda request: error_response(429, status=429, retry_after=3))
    async with client_for(mock) as client:
        with pytest.raises(slp.RateLimitError) as caught:
            await client.get_image("img1")
    assert caught.value.retry_after == 3.0


@pytest.mark.parametrize("content", [sample_image("bob"), b"\xff\xd8\xff\xe0" + bytes(20)])
async def test_image(content: bytes) -> None:
    response = image_response(content)
    assert response.content_type == ("image/png" if content[:1] == b"\x89" else "image/jpeg")
    async with client_for(MockTransport(lambda request: response)) as client:
        assert await client.get_image("img1") == content
