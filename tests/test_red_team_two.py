"""Issue 11, the second red-team pass: a hostile network and a careless caller.

Redirects, the loopback check, frame locals, image paths that are not files, a client
used from another event loop, the umask, event hooks, CLI outputs and secrets, and
numbers JSON cannot carry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from senselink_plus import Client, FileCheckpoint, ValidationError
from senselink_plus._files import write_atomically
from tests.conftest import APP_KEY, APP_SECRET, JPEG, MakeClient, transport_of

# --- 2. loopback is parsed, not matched by prefix -----------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1.evil.com:8080",
        "http://127.attacker.example",
        "http://127.0.0.1.nip.io",
        "http://localhost.evil.com",
        "http://localhost.",
        "http://evil-localhost",
        "http://[::ffff:8.8.8.8]",
        "http://128.0.0.1",
        "http://0.0.0.0:8080",
    ],
)
def test_plain_http_to_a_name_that_only_looks_like_loopback_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="plain http") as caught:
        Client(APP_KEY, APP_SECRET, base_url=url)
    assert caught.value.field == "base_url"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.0.0.2",
        "http://127.255.255.254:1",
        "http://[::1]:8080",
        "http://localhost:8080",
        "http://LOCALHOST",
    ],
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert Client(APP_KEY, APP_SECRET, base_url=url).base_url == url


# --- 9. numbers JSON cannot carry ------------------------------------------------------------


@pytest.mark.parametrize(
    ("extend", "where"),
    [
        ({"temp": float("nan")}, "extend['temp']"),
        ({"temp": float("inf")}, "extend['temp']"),
        ({"a": {"b": [1.0, float("-inf")]}}, "extend['a']['b'][1]"),
        ({"a": ({"t": float("nan")},)}, "extend['a'][0]['t']"),
    ],
)
async def test_nan_and_infinities_in_extend_are_refused_naming_the_key(
    make_client: MakeClient, extend: dict[str, Any], where: str
) -> None:
    client = make_client(lambda request: pytest.fail("nothing may be sent"))
    with pytest.raises(ValidationError) as caught:
        await client.create_record("GATE-1", JPEG, extend=extend)
    assert caught.value.field == "extend"
    assert where in str(caught.value)
    assert transport_of(client).requests == []



# --- 6. the process umask is never changed ---------------------------------------------------


def test_atomic_writes_never_touch_the_process_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Setting the umask, even for a moment, makes another thread's new files take the
    # wrong mode: no write may call os.umask at all.
    mask = os.umask(0o027)
    try:
        calls: list[tuple[Any, ...]] = []
        monkeypatch.setattr(os, "umask", lambda *args: calls.append(args) or 0)
        target = tmp_path / "state.json"
        write_atomically(str(target), b"{}", durable=True)
        write_atomically(str(target), b"{}")
        FileCheckpoint(tmp_path / "cp.json")._save(b"{}")
        assert calls == []
        monkeypatch.undo()
        assert target.stat().st_mode & 0o777 == 0o640  # 0o666 less the umask, as usual
        assert (tmp_path / "cp.json").stat().st_mode & 0o777 == 0o640
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cp.json", "state.json"]
    finally:
        os.umask(mask)

