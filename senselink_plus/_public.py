"""Public names carry their public home, so tracebacks, reprs and ``help()`` show it.

``senselink_plus.CheckpointInUseError``, as users import it, rather than the private
module it is written in. A class's own annotations are resolved first (they are strings
under ``from __future__ import annotations``, evaluated in the class's module), so
``typing.get_type_hints`` keeps working from the new home.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Iterable, Mapping

__all__ = ["rehome"]


def rehome(namespace: Mapping[str, object], names: Iterable[str], module: str) -> None:
    """Set ``__module__`` of each class and function among ``names`` to ``module``."""
    for name in names:
        obj = namespace[name]
        if isinstance(obj, types.GenericAlias):
            continue  # a type alias (EventHook): Python 3.10 calls it a type, read-only
        if isinstance(obj, type):
            _resolve_annotations(obj)
            obj.__module__ = module
        elif isinstance(obj, types.FunctionType):
            obj.__module__ = module  # its annotations resolve through __globals__


def _resolve_annotations(cls: type) -> None:
    own = inspect.get_annotations(cls)
    if not own:
        return
    try:
        hints = typing.get_type_hints(cls)
    except NameError:
        return  # names imported for type checkers only: left as they are
    cls.__annotations__ = {key: hints[key] for key in own}
