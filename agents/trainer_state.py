"""The values a plugin's trainer reads besides its source, as text for its code key.

The same source trains otherwise with other values: a ``functools.partial``'s arguments, default
arguments, closure cells, the module globals its code names (a value rebound in a sweep), an
object's or a bound method's attributes. They are followed through the functions and objects
of the user's own code among them; libraries' (and the standard library's) functions, classes
and modules count by name, as installed libraries do for the key. Arrays count by content:
numpy's ``repr`` leaves out the middle of large ones.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
import sysconfig
import types
from pathlib import Path
from typing import Any

import numpy as np

# Far beyond a trainer's settings: a state this large (a dataset held in a global) is keyed by
# its registration alone, as code without a source file is.
MAX_VALUES = 100_000


class StateTooLarge(Exception):
    """The trainer reaches more than :data:`MAX_VALUES` values."""


def trainer_state(train: Any) -> str:
    """The values ``train`` reads besides its source, as canonical text.

    Raises:
        StateTooLarge: it reaches more than :data:`MAX_VALUES` values.
    """
    try:
        return json.dumps(_Walk().describe(train), sort_keys=True)
    except RecursionError:  # nested deeper than any settings
        raise StateTooLarge from None


class _Walk:
    def __init__(self) -> None:
        self.seen: dict[int, int] = {}
        self.kept: list[Any] = []  # alive while walked: a freed temporary's id is reused
        self.count = 0

    def describe(self, value: Any) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise StateTooLarge
        if value is None or isinstance(value, bool | int | float | str):
            return value if not isinstance(value, float) else repr(value)  # nan, -0.0 exactly
        if isinstance(value, bytes):
            return f"bytes {hashlib.sha256(value).hexdigest()}"
        if isinstance(value, types.ModuleType) or (
            isinstance(value, type) and not _is_users(value)
        ):
            return f"{type(value).__name__} {getattr(value, '__qualname__', value.__name__)}"
        if id(value) in self.seen:  # shared or recursive: said once
            return f"seen {self.seen[id(value)]}"
        self.seen[id(value)] = len(self.seen)
        self.kept.append(value)
        if isinstance(value, type):  # the user's class: its attributes, methods among them
            found = {k: v for k, v in vars(value).items() if not k.startswith("__")}
            return {"class": [value.__qualname__, self.describe(found)]}
        if isinstance(value, np.ndarray) and value.dtype != object:
            data = np.ascontiguousarray(value).tobytes()
            return f"array {value.dtype} {value.shape} {hashlib.sha256(data).hexdigest()}"
        if isinstance(value, dict):
            pairs = [[self.describe(k), self.describe(v)] for k, v in value.items()]
            return {"dict": sorted(pairs, key=json.dumps)}
        if isinstance(value, list | tuple):
            return {type(value).__name__: [self.describe(item) for item in value]}
        if isinstance(value, set | frozenset):
            return {"set": sorted((self.describe(item) for item in value), key=json.dumps)}
        if isinstance(value, functools.partial):
            return {"partial": [self.describe(value.func), self.describe(value.args),
                                self.describe(value.keywords)]}  # fmt: skip
        if isinstance(value, types.MethodType):
            return {"method": [self.describe(value.__func__), self.describe(value.__self__)]}
        if isinstance(value, types.FunctionType):
            return self._function(value)
        if _is_users(type(value)) and hasattr(value, "__dict__"):
            return {"object": [self.describe(type(value)), self.describe(vars(value))]}
        return _without_addresses(repr(value))

    def _function(self, function: types.FunctionType) -> Any:
        if not _is_users(function):
            return f"function {function.__module__}.{function.__qualname__}"
        names = sorted(_global_names(function.__code__))
        found = {name: function.__globals__[name] for name in names if name in function.__globals__}
        cells = [_contents(cell) for cell in function.__closure__ or ()]
        return {"function": [function.__qualname__, self.describe(function.__defaults__),
                             self.describe(function.__kwdefaults__), self.describe(cells),
                             self.describe(found)]}  # fmt: skip


def _global_names(code: types.CodeType) -> set[str]:
    """The names ``code`` (and the functions and classes defined in it) may read as globals."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _contents(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # a cell not yet filled
        return None


_LIBRARIES = tuple(
    str(Path(path).resolve())
    for path in {
        sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")
    }
)


def _is_users(thing: Any) -> bool:
    """Whether the function or class ``thing`` is the user's own code (not an installed
    library's, the standard library's or this package's)."""
    module = sys.modules.get(getattr(thing, "__module__", None) or "")
    if module is None or module.__name__.split(".")[0] in ("agents", "movielens_env", "builtins"):
        return module is None
    file = getattr(module, "__file__", None)
    if file is None:
        return module.__name__ == "__main__"
    resolved = str(Path(file).resolve())
    return not resolved.startswith(_LIBRARIES)


def _without_addresses(text: str) -> str:
    """``text`` without memory addresses, which no other process shares."""
    return re.sub(r" at 0x[0-9a-fA-F]+", " at 0x", text)
