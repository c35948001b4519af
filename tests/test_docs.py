"""The documentation site's sources: the API reference covers every public name, the
Japanese pages exist and are linked, the quickstarts run, and the performance page
quotes only the latest benchmark results. (Whether the site builds is `mkdocs build
--strict`, run by .ci/run; these checks need no mkdocs.)"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference"
PACKAGE = ROOT / "senselink_plus"

#: Each public module and the file holding its ``__all__`` (read without importing, so
#: the optional extras need not be installed).
PUBLIC_MODULES = {
    "senselink_plus": PACKAGE / "__init__.py",
    "senselink_plus.testing": PACKAGE / "testing" / "__init__.py",
    "senselink_plus.postgres": PACKAGE / "postgres.py",
    "senselink_plus.otel": PACKAGE / "otel.py",
}

JAPANESE_PAGES = ["ja/index.md", "ja/quickstart.md"]


def public_names(source: Path) -> list[str]:
    """The ``__all__`` list assigned in ``source``."""
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return value
    raise AssertionError(f"{source} has no __all__")


def everything_public() -> set[str]:
    return {
        f"{module}.{name}"
        for module, source in PUBLIC_MODULES.items()
        for name in public_names(source)
    }


def reference_directives() -> dict[str, str]:
    """``::: dotted.name`` directive -> the reference page it is on."""
    found: dict[str, str] = {}
    for page in sorted(REFERENCE.glob("*.md")):
        for match in re.finditer(r"^:::\s+(\S+)", page.read_text(encoding="utf-8"), re.M):
            found[match.group(1)] = page.name
    return found


def test_public_names_are_read_from_the_four_all_lists() -> None:
    names = everything_public()
    assert "senselink_plus.Client" in names
    assert "senselink_plus.testing.Emulator" in names
    assert "senselink_plus.postgres.PostgresCheckpoint" in names
    assert "senselink_plus.otel.OpenTelemetry" in names


@pytest.mark.parametrize("name", sorted(everything_public()))
def test_every_public_name_is_in_the_api_reference(name: str) -> None:
    assert name in reference_directives(), (
        f"{name} is public but no docs/reference page has '::: {name}'"
    )


def test_the_reference_documents_only_public_names() -> None:
    stale = set(reference_directives()) - everything_public()
    assert not stale, f"reference directives for names that are not public: {sorted(stale)}"


def mkdocs_yml() -> str:
    return (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


def test_every_page_is_in_the_nav() -> None:
    nav = mkdocs_yml()
    pages = [
        page.relative_to(DOCS).as_posix() for page in DOCS.rglob("*.md") if "_ext" not in page.parts
    ]
    missing = [page for page in pages if f": {page}" not in nav and f"- {page}" not in nav]
    assert not missing, f"pages not in mkdocs.yml's nav: {missing}"


@pytest.mark.parametrize("page", JAPANESE_PAGES)
def test_the_japanese_pages_exist_are_japanese_and_linked(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    kana = sum(1 for char in text if "\u3040" <= char <= "\u30ff")
    assert kana > 200, f"{page} has little Japanese text"
    assert "認証レコード" in text  # the vendor's term, not a translation of "record"
    assert f"]({page})" in (DOCS / "index.md").read_text(encoding="utf-8")
    assert page in mkdocs_yml()
    assert f"](docs/{page})" in (ROOT / "README.ja.md").read_text(encoding="utf-8")


def quickstart_program(page: Path) -> str:
    """The quickstart's program that runs against the emulator."""
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    programs = [block for block in blocks if "Emulator()" in block]
    assert len(programs) == 1, f"{page} should hold one emulator program"
    return programs[0]


@pytest.mark.parametrize("page", ["quickstart.md", "ja/quickstart.md"])
def test_the_quickstart_program_runs_as_written(page: str, tmp_path: Path) -> None:
    script = tmp_path / "first.py"
    script.write_text(quickstart_program(DOCS / page), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENSELINK_")}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("created ")
    assert lines[1] == "2001 records in the last 7 days"
    assert lines[2].endswith("user 1001")
    assert lines[3].startswith("snapshot: ")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["first.py"]


def test_the_install_commands_match_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```bash\n(python3 -m venv .*?)\n```", readme)
    assert len(commands) == 2  # "Try it" and "Run the tests"
    for page in ["index.md", "ja/index.md"]:
        text = (DOCS / page).read_text(encoding="utf-8")
        for command in commands:
            assert command in text, f"{page} lacks {command!r}"


def table_figures(text: str) -> set[str]:
    """The numbers in the Markdown table rows of ``text``, without thousands commas."""
    rows = "\n".join(line for line in text.splitlines() if line.startswith("|"))
    rows = re.sub(r"`[^`]*`", "", rows)  # code (names such as senselink_plus) holds none
    return {
        number.replace(",", "")
        for number in re.findall(r"(?<![\w.])\d[\d,]*\.\d+|\d{1,3}(?:,\d{3})+", rows)
    }


def test_performance_figures_come_from_the_latest_results() -> None:
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8").replace(",", "")
    page = (DOCS / "guides" / "performance.md").read_text(encoding="utf-8")
    figures = table_figures(page)
    assert len(figures) > 30
    stale = sorted(figure for figure in figures if figure not in results)
    assert not stale, (
        f"docs/guides/performance.md quotes {stale}, which benchmarks/RESULTS.md does not "
        "hold: update the page from the latest results"
    )
