"""``base_url`` is checked whole at construction: a host the resolver would refuse is a
`ValidationError` (not a bare UnicodeError at the first call), no message, the CLI's
included, ever echoes the URL's user info, query or fragment, and plain http goes only
to a host that is loopback when parsed (``127.0.0.1.evil.com`` is not)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from senselink_plus import Client, ValidationError
from tests.conftest import APP_KEY, APP_SECRET

BAD_HOSTS = [
    "https://a..b.example",
    "https://.example.com",
    "https://" + "a" * 64 + ".example",
    "https://xn--zz.example",
    "https://" + ".".join(["abcdefgh"] * 30),  # over 253 characters
]
GOOD = [
    "https://link.japancv.co.jp",
    "https://link.japancv.co.jp.",  # the root dot
    "https://b\u00fccher.example",
    "https://[::1]:8443",
    "http://127.0.0.1:8080",
]


@pytest.mark.parametrize("url", BAD_HOSTS)
def test_a_host_the_resolver_would_refuse_is_a_validation_error_at_construction(
    url: str,
) -> None:
    with pytest.raises(ValidationError, match="its host") as caught:
        Client(APP_KEY, APP_SECRET, base_url=url)
    assert caught.value.field == "base_url"


@pytest.mark.parametrize("url", GOOD)
def test_valid_hosts_still_pass(url: str) -> None:
    assert Client(APP_KEY, APP_SECRET, base_url=url).base_url == url.rstrip("/")


SECRET_BITS = [
    "https://ingest:hunter2-pw@link.example",
    "https://link.example/?token=hunter2-pw",
    "https://link.example/#hunter2-pw",
    "https://ingest:hunter2-pw@link.example:notaport",
    "http://ingest:hunter2-pw@evil.example",
    "ftp://ingest:hunter2-pw@link.example",
]


@pytest.mark.parametrize("url", SECRET_BITS)
def test_a_refused_base_url_is_shown_without_user_info_or_query(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Client(APP_KEY, APP_SECRET, base_url=url)
    assert "hunter2" not in str(caught.value)
    assert "link.example" in str(caught.value) or "evil.example" in str(caught.value)


@pytest.mark.parametrize("url", SECRET_BITS[:2])
def test_the_cli_never_echoes_a_base_urls_password_or_query(url: str) -> None:
    env = {**os.environ, "SENSELINK_APP_KEY": APP_KEY, "SENSELINK_APP_SECRET": APP_SECRET}
    done = subprocess.run(
        [sys.executable, "-m", "senselink_plus", "image", "x", "--base-url", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert "base_url" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


# --- plain http: only to a loopback host, parsed, not matched by prefix -----------------


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
