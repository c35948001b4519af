"""The ``senselink_emulator`` fixture in a user's suite, under each async test plugin.

Each case runs a small suite in-process with pytester, with only the plugins named on
its command line (``-p no:NAME`` takes one out).
"""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

USES_IT = """
    import time
    from datetime import datetime, timedelta, timezone

    import pytest

    {mark}
    async def test_uses_it(senselink_emulator):
        now = datetime.now(timezone.utc)
        senselink_emulator.seed(3, start=now - timedelta(minutes=5), span=timedelta(minutes=1))
        async with senselink_emulator.client() as client:
            page = await client.list_records(now - timedelta(hours=1), now)
        assert page.total == 3
"""

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


def _suite(pytester: pytest.Pytester, mark: str, ini: str = INI) -> None:
    pytester.makeini(ini)
    pytester.makepyfile(textwrap.dedent(USES_IT).format(mark=mark))


def test_strict_mode_with_the_asyncio_mark(pytester: pytest.Pytester) -> None:
    _suite(pytester, "@pytest.mark.asyncio", INI + "asyncio_mode = strict\n")
    result = pytester.runpytest("-p", "no:anyio", "-W", "error")
    result.assert_outcomes(passed=1)


def test_auto_mode_without_a_mark(pytester: pytest.Pytester) -> None:
    _suite(pytester, "", INI + "asyncio_mode = auto\n")
    result = pytester.runpytest("-p", "no:anyio", "-W", "error")
    result.assert_outcomes(passed=1)


ANYIO_BACKEND = """
@pytest.fixture
def anyio_backend():
    return "asyncio"

@pytest.mark.anyio"""


def test_anyio_plugin_alone(pytester: pytest.Pytester) -> None:
    _suite(pytester, ANYIO_BACKEND, "[pytest]\n")
    result = pytester.runpytest("-p", "no:asyncio", "-W", "error")
    result.assert_outcomes(passed=1)


def test_anyio_beside_pytest_asyncio_in_strict_mode(pytester: pytest.Pytester) -> None:
    _suite(pytester, ANYIO_BACKEND, INI + "asyncio_mode = strict\n")
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=1)


def test_anyio_on_trio_fails_and_says_why(pytester: pytest.Pytester) -> None:
    mark = '@pytest.fixture\ndef anyio_backend():\n    return "trio"\n\n@pytest.mark.anyio'
    _suite(pytester, mark, "[pytest]\n")
    result = pytester.runpytest("-p", "no:asyncio")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*runs on asyncio (aiohttp)*'trio'*"])


def test_without_an_async_plugin_the_test_fails_and_says_what_to_install(
    pytester: pytest.Pytester,
) -> None:
    _suite(pytester, "", "[pytest]\n")
    result = pytester.runpytest("-p", "no:asyncio", "-p", "no:anyio")
    outcomes = result.parseoutcomes()
    assert "skipped" not in outcomes
    assert outcomes.get("errors") == 1
    result.stdout.fnmatch_lines(["*needs an async test: install pytest-asyncio*anyio*"])


def test_strict_mode_without_the_mark_fails_rather_than_skips(pytester: pytest.Pytester) -> None:
    _suite(pytester, "", INI + "asyncio_mode = strict\n")
    result = pytester.runpytest("-p", "no:anyio")
    outcomes = result.parseoutcomes()
    assert "skipped" not in outcomes
    assert outcomes.get("errors") == 1
    result.stdout.fnmatch_lines(["*mark the test @pytest.mark.asyncio*"])
