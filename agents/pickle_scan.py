"""What a torch file's pickle would build, told before torch builds it.

``torch.load(..., weights_only=True)`` runs no code, but building its objects can still take
for ever: a dict key that is a tuple nested 40 levels deep, each level holding the one below
twice (``t = (t, t)``, a few bytes a level through pickle's memo), costs 2**40 steps to hash,
and the unpickler hashes it while it reads the file (a file of under 1 KB). This module walks
the pickle's opcodes with sizes in place of objects (each object's size as a tree, shared
parts counted as often as they are referenced) and refuses a hashed object (a dict key, a set
member) larger than any model file of this tool's holds.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from typing import Any

# State-dict keys are strings and numbers; a tensor's rebuild tuple holds its shape and strides.
MAX_HASHED = 10_000
# Far beyond any pickle of this tool's: a walk this long is refused rather than finished.
MAX_OPCODES = 10_000_000


class _Node:
    """An object under construction: its size as a tree (it grows as lists and dicts fill)."""

    __slots__ = ("size",)

    def __init__(self, size: int = 1) -> None:
        self.size = size


_MARK = object()


def pickle_problem(data: bytes) -> str:
    """Why the pickle ``data`` is refused ("" if it is not): a dict key or set member larger
    than :data:`MAX_HASHED` once expanded, or more than :data:`MAX_OPCODES` opcodes."""
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(data)):
            if count > MAX_OPCODES:
                return f"its pickle runs past {MAX_OPCODES:,} steps"
            problem = _step(op.name, arg, stack, memo)
            if problem:
                return problem
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        return ""  # damaged: torch's own reading says so
    return ""


def _until_mark(stack: list[Any]) -> list[Any]:
    at = len(stack) - 1 - stack[::-1].index(_MARK)
    items = stack[at + 1 :]
    del stack[at:]
    return items


def _hashed(*nodes: Any) -> str:
    for node in nodes:
        if isinstance(node, _Node) and node.size > MAX_HASHED:
            return (
                f"its pickle hashes an object of more than {MAX_HASHED:,} values (a nested "
                "tuple shared many times over, as no model file of this tool has)"
            )
    return ""


def _size(items: list[Any]) -> int:
    # Saturated: a million shared levels would otherwise make numbers of a million bits.
    return min(1 + sum(item.size for item in items if isinstance(item, _Node)), _CAP)


_CAP = 2**62


def _step(name: str, arg: Any, stack: list[Any], memo: dict[int, Any]) -> str:
    """Apply the opcode ``name`` to the sizes on ``stack``; why it is refused ("" if not)."""
    if name == "MARK":
        stack.append(_MARK)
    elif name in ("TUPLE", "LIST", "FROZENSET"):
        items = _until_mark(stack)
        stack.append(_Node(_size(items)))
        return _hashed(*items) if name == "FROZENSET" else ""
    elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
        count = int(name[-1])
        items = stack[-count:]
        del stack[-count:]
        stack.append(_Node(_size(items)))
    elif name == "DICT":
        items = _until_mark(stack)
        stack.append(_Node(_size(items)))
        return _hashed(*items[::2])
    elif name == "APPEND":
        item = stack.pop()
        stack[-1].size = min(stack[-1].size + item.size, _CAP)
    elif name == "APPENDS":
        items = _until_mark(stack)
        stack[-1].size = min(stack[-1].size + _size(items), _CAP)
    elif name == "SETITEM":
        value, key = stack.pop(), stack.pop()
        stack[-1].size = min(stack[-1].size + _size([key, value]), _CAP)
        return _hashed(key)
    elif name == "SETITEMS":
        items = _until_mark(stack)
        stack[-1].size = min(stack[-1].size + _size(items), _CAP)
        return _hashed(*items[::2])
    elif name == "ADDITEMS":
        items = _until_mark(stack)
        stack[-1].size = min(stack[-1].size + _size(items), _CAP)
        return _hashed(*items)
    elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
        memo[arg] = stack[-1]
    elif name == "MEMOIZE":
        memo[len(memo)] = stack[-1]
    elif name in ("GET", "BINGET", "LONG_BINGET"):
        stack.append(memo[arg])
    elif name == "POP":
        stack.pop()
    elif name == "POP_MARK":
        _until_mark(stack)
    elif name == "DUP":
        stack.append(stack[-1])
    elif name in ("REDUCE", "NEWOBJ"):
        del stack[-2:]
        stack.append(_Node())
    elif name == "NEWOBJ_EX":
        del stack[-3:]
        stack.append(_Node())
    elif name in ("STACK_GLOBAL", "BUILD"):
        top = stack.pop()
        if name == "STACK_GLOBAL":
            stack[-1] = _Node()
        del top
    elif name == "BINPERSID":
        stack[-1] = _Node()
    elif name in ("INST", "OBJ"):
        _until_mark(stack)
        stack.append(_Node())
    elif name in ("PROTO", "FRAME", "STOP", "READONLY_BUFFER", "READWRITE_BUFFER"):
        pass
    else:  # a value: numbers, strings, bytes, None, booleans, globals, empty containers
        stack.append(_Node())
    return ""


def torch_file_problem(source: str | bytes | Any) -> str:
    """Why the torch file ``source`` (a path, its bytes, or an open binary file) is refused
    ("" if it is not, or it is no zip: torch's own reading says why)."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with zipfile.ZipFile(source) as archive:
            for name in archive.namelist():
                if name.endswith(".pkl"):
                    problem = pickle_problem(archive.read(name))
                    if problem:
                        return problem
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return ""
    return ""
