"""The house rules, read from the source with `ast`: import circles, upward arrows
(against `LAYERS`) and private names used outside their module.

Run it as a script to print the graph's verdict: ``python tests/layers.py``.
Every import counts, including those inside functions and under ``TYPE_CHECKING``
(an arrow is an arrow, however late it is followed). Imports of other packages are
not arrows of the house.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

PACKAGE = "senselink_plus"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


def module_name(path: Path, root: Path = ROOT) -> str:
    """``senselink_plus.testing._mock`` for ``senselink_plus/testing/_mock.py``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = ROOT) -> dict[str, ast.Module]:
    """Every module of the package, parsed."""
    return {
        module_name(path, root): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(root.rglob("*.py"))
    }


def _resolve(current: str, is_package: bool, level: int, target: str | None) -> str:
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports(name: str, tree: ast.Module, known: Iterable[str]) -> Iterator[tuple[str, str, int]]:
    """``(module, imported name or "", line)`` for each import of a house module."""
    known = set(known)
    is_package = any(other.startswith(name + ".") for other in known) or name == PACKAGE
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    yield alias.name, "", node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = _resolve(name, is_package, node.level, node.module)
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:  # ``from . import _endpoints``: the module itself
                    yield sub, "", node.lineno
                else:
                    yield target, alias.name, node.lineno


def graph(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    """Module -> the house modules it imports (a package's ``__init__`` counts for
    ``from package import name`` only)."""
    edges: dict[str, set[str]] = {name: set() for name in trees}
    for name, tree in trees.items():
        for target, _, _ in imports(name, tree, trees):
            if target != name and target in trees:
                edges[name].add(target)
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


#: The house plan (DESIGN.md), bottom up: a module may import from its own layer or
#: below, never above. A module not listed is public-layer (it may import anything,
#: and nothing listed may import it).
LAYERS: tuple[tuple[str, ...], ...] = (
    # values and rules, no I/O (_imagefit: a pure function, its Pillow import lazy)
    (
        "_version",
        "_public",
        "_exceptions",
        "_checks",
        "_dsn",
        "_http",
        "_timeutil",
        "_image",
        "_imagefit",
        "_models",
        "_files",
        "_headers",
        "_logging",
        "_limits",
        "_auth",
        "_retry",
        "_envopts",
        "_server_date",
    ),
    # the protocol: builders and parsers, wire format, events, output formats
    ("_wire", "_endpoints", "_events", "_output", "_parquet"),
    # pure cores
    (
        "_walkorder",
        "_slice",
        "_slice_plan",
        "_horizon",
        "_yielded",
        "_paging",
        "_watchstate",
        "_follow",
        "_serverclock",
    ),
    # the I/O edge
    ("_transport", "_journal", "_checkpoint", "_saving", "_pgsession", "_stopping", "_close_guard"),
    # the request loop: one attempt (shared by a session's copies), the loop around it
    ("_sender", "_session"),
    # the drivers of the pure cores
    ("_relay", "_pagination", "_watch"),
    # the client
    ("_client",),
)


def layer(module: str) -> int:
    """The layer of ``module`` (``senselink_plus._http`` -> 0)."""
    short = module.removeprefix(PACKAGE + ".")
    for rank, names in enumerate(LAYERS):
        if short in names:
            return rank
    return len(LAYERS)


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Each import from a lower layer to a higher one, as ``"lower -> higher"``."""
    return sorted(
        f"{source} -> {target}"
        for source, targets in edges.items()
        for target in targets
        if layer(target) > layer(source)
    )


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(trees: dict[str, ast.Module]) -> list[str]:
    """Each use of a private name of one house module from another, as
    ``"user:line -> module.name"``.

    Counted: ``from module import _name`` and ``alias._name`` where ``alias`` is an
    imported house module, and ``Name._name`` where ``Name`` was imported from
    another house module (a class's private method called from outside). Importing
    a private *module* (``from . import _endpoints``) is how the house is built and
    is not counted; a package's own ``__init__`` may re-export its modules' names.
    """
    found: list[str] = []
    for user, tree in trees.items():
        owners: dict[str, str] = {}  # local name -> "module" or "module.Name"
        for target, name, line in imports(user, tree, trees):
            if name:
                if _private(name) and target != user:
                    found.append(f"{user}:{line} -> {target}.{name}")
                owners_key = name
                owners[owners_key] = f"{target}.{name}"
            else:
                owners[target.rsplit(".", 1)[-1]] = target
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.asname:
                        for key, value in list(owners.items()):
                            if key == alias.name:
                                owners[alias.asname] = value
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and _private(node.attr)
                and isinstance(node.value, ast.Name)
                and node.value.id in owners
            ):
                owner = owners[node.value.id]
                owner_module = owner if owner in trees else owner.rsplit(".", 1)[0]
                if owner_module != user:
                    found.append(f"{user}:{node.lineno} -> {owner}.{node.attr}")
    return sorted(set(found))


def report(trees: dict[str, ast.Module] | None = None) -> str:
    """The verdict as text: circles, then private names crossing modules."""
    trees = modules() if trees is None else trees
    lines = [f"{len(trees)} modules"]
    found = circles(graph(trees))
    lines.append(f"circles: {len(found)}")
    lines += ["  " + " <-> ".join(group) for group in found]
    up = upward(graph(trees))
    lines.append(f"upward arrows: {len(up)}")
    lines += ["  " + arrow for arrow in up]
    uses = private_uses(trees)
    lines.append(f"private names used outside their module: {len(uses)}")
    lines += ["  " + use for use in uses]
    return "\n".join(lines)


if __name__ == "__main__":
    text = report()
    print(text)
    sys.exit(0 if text.count(": 0") == 3 else 1)
