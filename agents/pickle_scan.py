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
    """An object under construction: its size as a tree (it grows as lists and dicts fill),
    the global it names (``module.name``) or the integer it is, where it is one of those."""

    __slots__ = ("name", "size", "value")

    def __init__(self, size: int = 1, name: str = "", value: int | None = None) -> None:
        self.size, self.name, self.value = size, name, value


_CAP = 2**62  # sizes saturate: a million shared levels would otherwise be numbers of a million bits
# Calls the unpickler may make that allocate what an integer argument says (bytearray(10**10)).
_ALLOCATING = ("builtins.bytearray", "builtins.bytes", "builtins.range")
_MAX_ALLOCATED = 64 * 2**20


def pickle_problem(data: bytes) -> str:
    """Why the pickle ``data`` is refused ("" if it is not): an object hashed (a dict key, a
    set member) or passed to a call the unpickler makes (``set(...)``, ``OrderedDict(...)``,
    an object's state) larger than :data:`MAX_HASHED` once expanded, an allocation of more
    than 64 MiB asked by an integer, or more than :data:`MAX_OPCODES` opcodes."""
    scan = _Scan()
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(data)):
            if count > MAX_OPCODES:
                return f"its pickle runs past {MAX_OPCODES:,} steps"
            problem = scan.step(op.name, arg)
            if problem:
                return problem
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        return ""  # damaged: torch's own reading says so
    return ""


def _size(items: list[Any]) -> int:
    return min(1 + sum(item.size for item in items if isinstance(item, _Node)), _CAP)


def _too_large(*nodes: Any) -> str:
    for node in nodes:
        if isinstance(node, _Node) and node.size > MAX_HASHED:
            return (
                f"its pickle hashes or passes on an object of more than {MAX_HASHED:,} values (a "
                "nested tuple shared many times over, as no model file of this tool has)"
            )
    return ""


class _Scan:
    """The unpickler's stack and memo, with sizes in place of objects."""

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.marks: list[int] = []  # where each open MARK is: linear, as the unpickler's own
        self.memo: dict[int, Any] = {}

    def until_mark(self) -> list[Any]:
        at = self.marks.pop()
        items = self.stack[at:]
        del self.stack[at:]
        return items

    def grow(self, items: list[Any]) -> None:
        self.stack[-1].size = min(self.stack[-1].size + _size(items), _CAP)

    def step(self, name: str, arg: Any) -> str:
        """Apply the opcode ``name``; why it is refused ("" if not)."""
        stack = self.stack
        if name == "MARK":
            self.marks.append(len(stack))
        elif name in ("TUPLE", "LIST", "FROZENSET", "DICT"):
            items = self.until_mark()
            stack.append(_Node(_size(items), value=_largest(items)))
            hashed = {"FROZENSET": items, "DICT": items[::2]}.get(name, [])
            return _too_large(*hashed)
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            count = int(name[-1])
            items = stack[-count:]
            del stack[-count:]
            stack.append(_Node(_size(items), value=_largest(items)))
        elif name == "APPEND":
            self.grow([stack.pop()])
        elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
            items = self.until_mark()
            self.grow(items)
            return _too_large(*(items[::2] if name == "SETITEMS" else items if name == "ADDITEMS"
                                else []))  # fmt: skip
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            self.grow([key, value])
            return _too_large(key)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(self.memo[arg])
        elif name == "POP":
            stack.pop()
        elif name == "POP_MARK":
            self.until_mark()
        elif name == "DUP":
            stack.append(stack[-1])
        elif name in ("REDUCE", "NEWOBJ"):
            args, call = stack.pop(), stack.pop()
            stack.append(_Node())
            return _too_large(args) or _allocation(call, args)
        elif name == "NEWOBJ_EX":
            kwargs, args, _ = stack.pop(), stack.pop(), stack.pop()
            stack.append(_Node())
            return _too_large(args, kwargs)
        elif name == "BUILD":
            return _too_large(stack.pop())
        elif name == "GLOBAL":
            stack.append(_Node(name=str(arg).replace(" ", ".")))
        elif name == "STACK_GLOBAL":
            attribute, module = stack.pop(), stack.pop()
            stack.append(_Node(name=f"{module.name}.{attribute.name}"))
        elif name in ("BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE"):
            stack.append(_Node(name=str(arg)))  # a module or attribute name for STACK_GLOBAL
        elif name in ("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"):
            stack.append(_Node(value=arg if isinstance(arg, int) else None))
        elif name == "BINPERSID":
            stack[-1] = _Node()
        elif name in ("INST", "OBJ"):
            self.until_mark()
            stack.append(_Node())
        elif name in ("PROTO", "FRAME", "STOP", "READONLY_BUFFER", "READWRITE_BUFFER"):
            pass
        else:  # a value: numbers, strings, bytes, None, booleans, empty containers
            stack.append(_Node())
        return ""


def _allocation(call: Any, args: Any) -> str:
    """Why a call allocating what its integer argument says is refused ("" if not)."""
    if not isinstance(call, _Node) or call.name not in _ALLOCATING:
        return ""
    if isinstance(args, _Node) and args.value is not None and args.value > _MAX_ALLOCATED:
        return f"its pickle asks {call.name} for {args.value:,} items, as no model file holds"
    return ""


def _largest(items: list[Any]) -> int | None:
    """The largest integer among ``items`` (a tuple's, as a call's arguments), or ``None``."""
    values = [item.value for item in items if isinstance(item, _Node) and item.value is not None]
    return max(values, default=None)


def torch_file_problem(source: str | bytes | Any) -> str:
    """Why the torch file ``source`` (a path, its bytes, or an open binary file) is refused
    ("" if it is not, or it is no zip: torch's own reading says why)."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".pkl"):
                    continue
                if info.file_size > MAX_PICKLE_BYTES:  # a zip bomb inside a model's zip too
                    return f"its pickle unpacks to more than {MAX_PICKLE_BYTES:,} bytes"
                problem = pickle_problem(archive.read(info))
                if problem:
                    return problem
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return ""
    return ""


# A pickle holds a model file's structure, its tensors' values lie beside it: far below.
MAX_PICKLE_BYTES = 64 * 2**20
