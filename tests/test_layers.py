"""The house stays a house: no import circle, no arrow from a lower layer up, no private
name used outside its module (read from the source by `layers`)."""

from __future__ import annotations

import ast

import layers
import pytest


@pytest.fixture(scope="module")
def trees() -> dict[str, ast.Module]:
    return layers.modules()


def test_the_package_has_no_import_circle(trees: dict[str, ast.Module]) -> None:
    assert layers.circles(layers.graph(trees)) == []


def test_no_module_imports_from_a_higher_layer(trees: dict[str, ast.Module]) -> None:
    assert layers.upward(layers.graph(trees)) == []


def test_no_private_name_is_used_outside_its_module(trees: dict[str, ast.Module]) -> None:
    assert layers.private_uses(trees) == []


def test_every_layered_module_exists(trees: dict[str, ast.Module]) -> None:
    # A renamed module would silently drop to the public layer.
    listed = {f"{layers.PACKAGE}.{name}" for names in layers.LAYERS for name in names}
    assert listed - set(trees) == set()


def test_the_client_is_imported_only_by_the_public_layer(trees: dict[str, ast.Module]) -> None:
    edges = layers.graph(trees)
    users = {source for source, targets in edges.items() if "senselink_plus._client" in targets}
    assert users, "the graph sees no import of the client at all"
    assert all(layers.layer(user) == len(layers.LAYERS) for user in users), users


# --- the checker finds what it looks for -----------------------------------------------


def _parse(sources: dict[str, str]) -> dict[str, ast.Module]:
    return {name: ast.parse(text) for name, text in sources.items()}


def test_a_circle_through_a_late_or_type_checking_import_is_found() -> None:
    trees = _parse(
        {
            "senselink_plus._a": "from ._b import x\n",
            "senselink_plus._b": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ._c import y\n"
            ),
            "senselink_plus._c": "def f():\n    from ._a import z\n",
            "senselink_plus._d": "from ._a import x\n",
        }
    )
    assert layers.circles(layers.graph(trees)) == [
        ["senselink_plus._a", "senselink_plus._b", "senselink_plus._c"]
    ]


def test_an_import_of_another_package_is_not_an_arrow() -> None:
    trees = _parse(
        {
            "senselink_plus._a": "import asyncio\nfrom attrs import frozen\n",
            "senselink_plus._b": "from . import _a\n",
        }
    )
    assert layers.graph(trees) == {
        "senselink_plus._a": set(),
        "senselink_plus._b": {"senselink_plus._a"},
    }


def test_an_upward_arrow_is_found() -> None:
    trees = _parse(
        {
            "senselink_plus._http": "from ._session import Session\n",
            "senselink_plus._session": "from ._http import HttpRequest\n",
        }
    )
    assert layers.upward(layers.graph(trees)) == ["senselink_plus._http -> senselink_plus._session"]


def test_private_names_crossing_modules_are_found() -> None:
    trees = _parse(
        {
            "senselink_plus._models": "class Record:\n    pass\nclass _Builder:\n    pass\n",
            "senselink_plus._http": "class HttpRequest:\n    def _fast(self): ...\n",
            "senselink_plus._wire": (
                "from ._models import _Builder\n"
                "from ._http import HttpRequest as R\n"
                "from . import _models\n"
                "R._fast()\n"
                "_models._hidden\n"
                "_models.Record\n"
            ),
        }
    )
    assert layers.private_uses(trees) == [
        "senselink_plus._wire:1 -> senselink_plus._models._Builder",
        "senselink_plus._wire:4 -> senselink_plus._http.HttpRequest._fast",
        "senselink_plus._wire:5 -> senselink_plus._models._hidden",
    ]


def test_a_module_may_use_its_own_private_names() -> None:
    trees = _parse({"senselink_plus._http": "class A:\n    def _x(self): ...\nA._x(A())\n"})
    assert layers.private_uses(trees) == []


def test_the_report_names_each_finding() -> None:
    trees = _parse(
        {
            "senselink_plus._a": "from ._b import _x\n",
            "senselink_plus._b": "from ._a import y\n",
        }
    )
    text = layers.report(trees)
    assert "circles: 1" in text
    assert "senselink_plus._a <-> senselink_plus._b" in text
    assert "private names used outside their module: 1" in text
