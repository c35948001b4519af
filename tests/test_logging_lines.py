"""One line per SDK log event, whatever mix of SENSELINK_LOG and the application's own
logging set-up is in place (each case runs in its own interpreter, with real stderr)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

#: The SDK logs this line once, at WARNING, on the senselink_plus logger.
SCRIPT = """
import logging, sys
{setup}
import senselink_plus
logging.getLogger("senselink_plus").warning("the one line")
"""

CASES = {
    "SENSELINK_LOG alone": ("info", ""),
    "SENSELINK_LOG and basicConfig": ("info", "logging.basicConfig(level=logging.INFO)"),
    "basicConfig alone": ("", "logging.basicConfig(level=logging.INFO)"),
    "SENSELINK_LOG and a handler of the app's on the SDK logger": (
        "debug",
        "logging.getLogger('senselink_plus').addHandler(logging.StreamHandler(sys.stderr))",
    ),
    "SENSELINK_LOG set after basicConfig in code": (
        "warning",
        "logging.basicConfig(stream=sys.stderr, format='%(levelname)s:%(message)s')",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_event_is_printed_once(case: str) -> None:
    level, setup = CASES[case]
    env = {**os.environ, "SENSELINK_LOG": level}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(setup=setup)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stderr.count("the one line") == 1, done.stderr


def test_senselink_log_alone_uses_its_own_format() -> None:
    env = {**os.environ, "SENSELINK_LOG": "info"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(setup="")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert " WARNING senselink_plus: the one line" in done.stderr


def test_a_line_below_the_apps_handler_level_is_still_printed_once() -> None:
    script = """
import logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
logging.getLogger().handlers[0].setLevel(logging.WARNING)
import senselink_plus
logging.getLogger("senselink_plus").debug("a debug line")
logging.getLogger("senselink_plus").warning("a warning line")
"""
    env = {**os.environ, "SENSELINK_LOG": "debug"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stderr.count("a debug line") == 1, done.stderr  # only ours prints it
    assert done.stderr.count("a warning line") == 1, done.stderr  # only the app's does
