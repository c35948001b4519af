"""`testing._emulator_validation`: every create and list parameter checked as FACTS says."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.emulator_helpers import B64, JPEG, PNG, RECORD, Api

MB = 1_048_576


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sn": "SN1",
        "timestamp": 1658136457,
        "timezone": "GMT+9:00",
        "threshold": 0.9,
        "image": {"data": B64(JPEG).decode()},
        "process_mode": 0,
        "extend": '{"gate": "north"}',
    }
    for key, value in changes.items():
        if value is ...:
            del body[key]
        else:
            body[key] = value
    return body


def _image(data: bytes | str, **rectangle: Any) -> dict[str, Any]:
    image: dict[str, Any] = {"data": data if isinstance(data, str) else B64(data).decode()}
    if rectangle:
        image["rectangle"] = rectangle
    return image


RECT = {"top": 0, "left": 0, "width": 10, "height": 10}


INVALID_CREATE = {
    "not an object": [1, 2],
    "sn missing": _body(sn=...),
    "sn empty": _body(sn=""),
    "sn number": _body(sn=12),
    "timestamp missing": _body(timestamp=...),
    "timestamp string": _body(timestamp="1658136457"),
    "timestamp float": _body(timestamp=1.5),
    "timestamp bool": _body(timestamp=True),
    "timestamp over int64": _body(timestamp=2**63),
    "timezone number": _body(timezone=9),
    "threshold string": _body(threshold="0.9"),
    "threshold below 0": _body(threshold=-0.01),
    "threshold above 1": _body(threshold=1.01),
    "threshold bool": _body(threshold=True),
    "image missing": _body(image=...),
    "image string": _body(image="abc"),
    "image data missing": _body(image={}),
    "image data empty": _body(image={"data": ""}),
    "image data not base64": _body(image=_image("@@@@")),
    "image data with newline": _body(
        image=_image(B64(JPEG).decode()[:8] + "\n" + B64(JPEG).decode()[8:])
    ),
    "image gif": _body(image=_image(b"GIF89a....")),
    "image over 1 MB": _body(image=_image(b"\xff\xd8\xff" + bytes(MB - 2))),
    "image far over 1 MB": _body(image=_image(b"\xff\xd8\xff" + bytes(2 * MB))),
    "rectangle not object": _body(image={**_image(JPEG), "rectangle": [1, 2, 3, 4]}),
    "rectangle width missing": _body(image=_image(JPEG, top=0, left=0, height=1)),
    "rectangle top negative": _body(image=_image(JPEG, **{**RECT, "top": -1})),
    "rectangle left float": _body(image=_image(JPEG, **{**RECT, "left": 1.0})),
    "rectangle width zero": _body(image=_image(JPEG, **{**RECT, "width": 0})),
    "rectangle height bool": _body(image=_image(JPEG, **{**RECT, "height": True})),
    "process_mode 1": _body(process_mode=1),
    "process_mode string": _body(process_mode="0"),
    "extend object": _body(extend={"gate": "north"}),
    "extend not JSON": _body(extend="{gate: north}"),
    "extend over 1 KB": _body(extend=orjson.dumps("あ" * 341).decode()),  # 1025 bytes
}


@pytest.mark.parametrize("body", INVALID_CREATE.values(), ids=INVALID_CREATE.keys())
async def test_create_invalid(api: Api, body: Any) -> None:
    reply = await api.send("POST", RECORD, json=body)
    assert (reply.status, reply.code, reply.json["message"]) == (200, 30001, "Param Invalid")
    assert reply.json["desc"]
    assert api.emu.records == []


@pytest.mark.parametrize("raw", [b"", b"{", b"sn=SN1"], ids=["empty", "truncated", "form"])
async def test_create_body_not_json(api: Api, raw: bytes) -> None:
    reply = await api.send("POST", RECORD, data=raw)
    assert reply.code == 30001
    assert api.emu.requests[-1].json is None


VALID_CREATE = {
    "minimal": {"sn": "S", "timestamp": -5, "image": {"data": B64(JPEG).decode()}},
    "nulls": _body(timezone=None, threshold=None, process_mode=None, extend=None),
    "png": _body(image=_image(PNG)),
    "image exactly 1 MB": _body(image=_image(b"\xff\xd8\xff" + bytes(MB - 3))),
    "rectangle": _body(image=_image(JPEG, top=0, left=0, width=1, height=1)),
    "threshold 0": _body(threshold=0),
    "threshold 1": _body(threshold=1),
    "extend exactly 1 KB": _body(extend=orjson.dumps("あ" * 340 + "xx").decode()),
    "extend JSON scalar": _body(extend="3"),
    "timestamp milliseconds": _body(timestamp=1659423903029),
}


@pytest.mark.parametrize("body", VALID_CREATE.values(), ids=VALID_CREATE.keys())
async def test_create_valid(api: Api, body: dict[str, Any]) -> None:
    reply = await api.send("POST", RECORD, json=body)
    assert reply.code == 200, reply.json
    (record,) = api.emu.records
    assert reply.data == {"record_id": record["record_id"], "image_id": record["image_id"]}
    assert record["device_timestamp"] == body["timestamp"]
    assert record["extend"] == body.get("extend")


FROM, TO = "2022-12-11T00:00:00+09:00", "2022-12-11T23:59:59+09:00"


INVALID_LIST = {
    "time_from missing": {"time_to": TO},
    "time_to missing": {"time_from": FROM},
    "time_from empty": {"time_from": "", "time_to": TO},
    "naive": {"time_from": "2022-12-11T00:00:00", "time_to": TO},
    "date only": {"time_from": "2022-12-11", "time_to": TO},
    "unparsable": {"time_from": "yesterday", "time_to": TO},
    "month 13": {"time_from": "2022-13-11T00:00:00+09:00", "time_to": TO},
    "offset 24h": {"time_from": "2022-12-11T00:00:00+24:00", "time_to": TO},
    "space for plus": {"time_from": "2022-12-11T00:00:00 09:00", "time_to": TO},
    "epoch number": {"time_from": "1670684400", "time_to": TO},
    "reversed": {"time_from": TO, "time_to": FROM},
    "over 24 h": {"time_from": FROM, "time_to": "2022-12-12T00:00:00.001+09:00"},
    "over 24 h across zones": {
        "time_from": "2022-12-11T00:00:00Z",
        "time_to": "2022-12-12T09:00:01+09:00",
    },
    "order 2": {"time_from": FROM, "time_to": TO, "order": "2"},
    "order text": {"time_from": FROM, "time_to": TO, "order": "asc"},
    "page 0": {"time_from": FROM, "time_to": TO, "page": "0"},
    "page negative": {"time_from": FROM, "time_to": TO, "page": "-1"},
    "page float": {"time_from": FROM, "time_to": TO, "page": "1.0"},
    "size 0": {"time_from": FROM, "time_to": TO, "size": "0"},
    "size 101": {"time_from": FROM, "time_to": TO, "size": "101"},
    "size text": {"time_from": FROM, "time_to": TO, "size": "many"},
}


@pytest.mark.parametrize("params", INVALID_LIST.values(), ids=INVALID_LIST.keys())
async def test_list_invalid(api: Api, params: dict[str, str]) -> None:
    reply = await api.send("GET", RECORD, params=params)
    assert (reply.status, reply.code) == (200, 30001), reply.json
    assert reply.json["desc"]


VALID_LIST = {
    "exactly 24 h": {"time_from": FROM, "time_to": "2022-12-12T00:00:00+09:00"},
    "zulu and fraction": {
        "time_from": "2022-12-11T00:00:00.123456789Z",
        "time_to": "2022-12-11T00:00:00.5Z",
    },
    "equal bounds": {"time_from": FROM, "time_to": FROM},
    "all options": {
        "time_from": FROM,
        "time_to": TO,
        "order": "1",
        "page": "3",
        "size": "100",
        "sn": "SN1",
        "unknown": "ignored",
    },
}


@pytest.mark.parametrize("params", VALID_LIST.values(), ids=VALID_LIST.keys())
async def test_list_valid(api: Api, params: dict[str, str]) -> None:
    data = (await api.send("GET", RECORD, params=params)).data
    assert data["list"] == []
    assert (data["page_num"], data["page_size"]) == (
        int(params.get("page", 1)),
        int(params.get("size", 20)),
    )
