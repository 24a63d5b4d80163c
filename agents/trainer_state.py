"""The values a plugin's trainer reads besides its source, as text for its code key.

The same source trains otherwise with other values: a ``functools.partial``'s arguments, default
arguments, closure cells, the module globals its code names (a value rebound in a sweep), an
object's or a bound method's attributes. They are followed through the functions and objects
of the user's own code among them; libraries' (and the standard library's) functions, classes
and modules count by name, as installed libraries do for the key. Arrays count by content:
numpy's ``repr`` leaves out the middle of large ones.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import logging
import random
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


# An array of settings is small; one this large is data (or a broadcast view of GBs).
MAX_ARRAY_BYTES = 64 * 2**20


class StateTooLarge(Exception):
    """The trainer reaches more than :data:`MAX_VALUES` values."""


def trainer_state(train: Any) -> str:
    """The values ``train`` reads besides its source, as canonical text: the same in every
    process for the same values (sets and dicts in sorted order, shared objects described
    alike wherever they are met).

    Raises:
        StateTooLarge: it reaches more than :data:`MAX_VALUES` values.
    """
    try:
        return json.dumps(_Walk().describe(train), sort_keys=True)
    except RecursionError:  # nested deeper than any settings
        raise StateTooLarge from None


class _Walk:
    def __init__(self) -> None:
        # Each object's description and its size as a tree, by id; kept alive while walked, as
        # a freed temporary's id is reused. A shared object is described alike wherever it is
        # met (so the text does not depend on the order sets are walked in), and counted as
        # often: 40 nested pairs of one list are 2**40 values.
        self.done: dict[int, tuple[Any, int]] = {}
        self.kept: list[Any] = []
        self.walking: set[int] = set()
        self.count = 0

    def describe(self, value: Any, names: frozenset[str] = frozenset()) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 512:
            self._add(1)  # JSON writes no integer of over 4,300 digits: its bytes' digest
            data = value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True)
            return f"int {hashlib.sha256(data).hexdigest()}"
        if value is None or isinstance(value, bool | int | float | str):
            self._add(1)
            return value if not isinstance(value, float) else repr(value)  # nan, -0.0 exactly
        if isinstance(value, types.ModuleType):  # described by what each reader names of it
            return self._describe(value, names)
        key = id(value)
        if key in self.done:
            description, size = self.done[key]
            self._add(size)
            return description
        if key in self.walking:  # an object holding itself
            self._add(1)
            return "cycle"
        self.walking.add(key)
        self.kept.append(value)
        before = self.count
        try:
            description = self._describe(value, names)
        finally:
            self.walking.discard(key)
        self.done[key] = (description, self.count - before)
        return description

    def _alone(self, value: Any) -> Any:
        """``value`` described as if met first (what it shares with others is described in
        it again), so that a set's members read alike whatever order they come in."""
        walk = _Walk()
        walk.walking, walk.count = set(self.walking), self.count
        try:
            return walk.describe(value)
        finally:
            self.kept += walk.kept
            self.count = walk.count

    def _add(self, size: int) -> None:
        self.count += size
        if self.count > MAX_VALUES:
            raise StateTooLarge

    def _describe(self, value: Any, names: frozenset[str]) -> Any:
        self._add(1)
        if isinstance(value, bytes):
            return f"bytes {hashlib.sha256(value).hexdigest()}"
        if isinstance(value, types.ModuleType):
            if not _is_users_module(value):
                return f"module {value.__name__}"
            # The user's module (a config module): the attributes the code reads of it.
            read = {name: vars(value)[name] for name in sorted(names) if name in vars(value)}
            return {"module": [value.__name__, self.describe(read)]}
        if isinstance(value, type):
            if not _is_users(value):
                return f"type {value.__module__}.{value.__qualname__}"
            found = {k: v for k, v in vars(value).items() if not k.startswith("__")}
            return {"class": [value.__qualname__, self.describe(found)]}
        if isinstance(value, np.ndarray) and value.dtype == object:
            return {"objects": [list(value.shape), self.describe(value.tolist())]}
        if isinstance(value, np.ndarray):
            if value.nbytes > MAX_ARRAY_BYTES:  # data, or a view repeating one value 10**9 times
                raise StateTooLarge
            data = np.ascontiguousarray(value).tobytes()
            return f"array {value.dtype} {value.shape} {hashlib.sha256(data).hexdigest()}"
        if isinstance(value, dict):
            pairs = [[self.describe(k), self.describe(v)] for k, v in value.items()]
            return {"dict": sorted(pairs, key=json.dumps)}
        if isinstance(value, list | tuple):
            return {type(value).__name__: [self.describe(item) for item in value]}
        if isinstance(value, set | frozenset):  # walked in hash order: each member alone
            return {"set": sorted((self._alone(item) for item in value), key=json.dumps)}
        if isinstance(value, functools.partial):
            return {"partial": [self.describe(value.func), self.describe(value.args),
                                self.describe(value.keywords)]}  # fmt: skip
        if isinstance(value, types.MethodType):
            return {"method": [self.describe(value.__func__), self.describe(value.__self__)]}
        if isinstance(value, staticmethod | classmethod):
            return {"wrapper": self.describe(value.__func__)}
        if isinstance(value, property):
            return {"property": [self.describe(f) for f in (value.fget, value.fset, value.fdel)]}
        if isinstance(value, types.FunctionType):
            return self._function(value)
        if isinstance(value, enum.Enum):
            member = f"{type(value).__qualname__}.{value.name}"
            return {"enum": [member, self.describe(value.value)]}
        if isinstance(value, logging.Logger):
            return f"logger {value.name}"
        state = _state(value)
        if state is not None:
            return {"state": [f"{type(value).__module__}.{type(value).__qualname__}",
                              self.describe(state)]}  # fmt: skip
        return _without_addresses(repr(value))

    def _function(self, function: types.FunctionType) -> Any:
        cells = [_contents(cell) for cell in function.__closure__ or ()]
        if not _is_users(function):  # a library's code: the values it was made with only
            return {"library function": [f"{function.__module__}.{function.__qualname__}",
                                         self.describe(cells)]}  # fmt: skip
        names = frozenset(_global_names(function.__code__))
        found = {name: function.__globals__[name] for name in names if name in function.__globals__}
        wrapped = getattr(function, "__wrapped__", None)  # a decorator's inner function
        return {"function": [function.__qualname__, self.describe(function.__defaults__),
                             self.describe(function.__kwdefaults__), self.describe(cells),
                             self._globals(found, names), self.describe(wrapped)]}  # fmt: skip

    def _globals(self, found: dict[str, Any], names: frozenset[str]) -> Any:
        """The globals a function reads; of a user's module, the attributes its code names."""
        pairs = [[name, self.describe(value, names)] for name, value in found.items()]
        return {"dict": sorted(pairs, key=json.dumps)}


def _state(value: Any) -> Any:
    """The values an object holds, where they can be read (``None`` where not): an array-like's
    content, a random generator's state, a wrapped function, or its attributes."""
    if isinstance(value, np.random.Generator):
        return value.bit_generator.state
    if isinstance(value, np.random.RandomState | random.Random):
        return value.get_state() if isinstance(value, np.random.RandomState) else value.getstate()
    if type(value).__name__ == "Generator" and hasattr(value, "get_state"):  # torch's
        return _array(value.get_state())
    if hasattr(value, "__array__") or hasattr(value, "detach"):
        if isinstance(getattr(value, "nbytes", 0), int) and value.nbytes > MAX_ARRAY_BYTES:
            raise StateTooLarge  # before a copy: a data frame, or a model on a GPU
        array = _array(value)
        if array is not None:  # objects (strings) item by item: their repr leaves some out
            return array if array.dtype != object else {"objects": array.tolist()}
    if hasattr(value, "__wrapped__"):  # functools.cache, lru_cache and decorators
        return {"wrapped": value.__wrapped__}
    slots = [name for cls in type(value).__mro__ for name in getattr(cls, "__slots__", ())]
    attributes = dict(getattr(value, "__dict__", {}))
    attributes.update({name: getattr(value, name) for name in slots if hasattr(value, name)})
    return attributes or None


def _array(value: Any) -> np.ndarray | None:
    """``value`` (a tensor, a series, an array-like) as a numpy array, or ``None``."""
    try:
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        return np.asarray(value)
    except Exception:  # an array-like that will not convert: its attributes then
        return None


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


def _is_users_module(module: types.ModuleType) -> bool:
    """Whether ``module`` is the user's own (a plugin's helper or config module)."""
    file = getattr(module, "__file__", None)
    if module.__name__.split(".")[0] in ("agents", "movielens_env") or file is None:
        return False
    return not str(Path(file).resolve()).startswith(_LIBRARIES)


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
