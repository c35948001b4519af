"""A griffe extension for the API reference: doctest examples become code blocks.

The package's docstrings are plain prose with ``>>>`` examples, as ``help()`` shows them.
Markdown would read ``>>>`` as three nested quotes, so each run of example lines (from a
``>>>`` line to the next blank line) is fenced as ``pycon``, without its ``# doctest:``
directives. mkdocs.yml loads it (``extensions:`` of the python handler).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_DIRECTIVE = re.compile(r"\s*#\s*doctest:.*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def fence_doctests(text: str) -> str:
    """``text`` with each doctest block wrapped in a ``pycon`` fence (idempotent)."""
    lines = text.splitlines()
    out: list[str] = []
    in_fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            in_fence = not in_fence
        if in_fence or not line.lstrip().startswith(">>>"):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        block: list[str] = []
        while i < len(lines) and lines[i].strip():
            body = lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i].lstrip()
            block.append(indent + _DIRECTIVE.sub("", body))
            i += 1
        out += [indent + "```pycon", *block, indent + "```"]
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    """Fence the doctest examples of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
