"""What a torch file's pickle would build, told before torch builds it.

``torch.load(..., weights_only=True)`` runs no code, but building its objects can still take
for ever: a dict key that is a tuple nested 40 levels deep, each level holding the one below
twice (a few bytes a level through pickle's memo), costs 2**40 steps to hash; keys whose
hashes collide cost quadratic time; ``bytearray(10**10)`` or punycode of a million letters
come from a few bytes. This module walks the pickle's opcodes with sizes in place of objects
and refuses what no model file of this tool's holds: globals other than tensors' and ordered
dicts', other codecs than latin-1, dict keys other than strings and small integers, sets, and
calls or states of more than :data:`MAX_HASHED` values once expanded.
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

    __slots__ = ("items", "kind", "name", "size", "value")

    def __init__(
        self, size: int = 1, name: str = "", value: int | None = None, kind: str = "",
        items: list[Any] | None = None,
    ) -> None:  # fmt: skip
        self.size, self.name, self.value, self.kind = size, name, value, kind
        self.items = items or []


_CAP = 2**62  # sizes saturate: a million shared levels would otherwise be numbers of a million bits
# What torch.save writes for this tool's model files (DRR checkpoints, SB3's .pth members):
# tensors (storages, dtypes, dense rebuilds), ordered dicts, and bytes as latin-1 text. Every
# other global torch's unpickler accepts builds or hashes what the file asks, at its cost:
# set(), Counter(), complex keys that collide, bytearray(10**10), punycode of 10**6 letters.
_GLOBALS = {
    "collections.OrderedDict", "_codecs.encode", "torch.Size", "torch.device",
    "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
    "torch._tensor._rebuild_from_type_v2",
}  # fmt: skip
_DTYPES = {
    "float16", "float32", "float64", "bfloat16", "half", "float", "double", "complex64",
    "complex128", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "short", "int", "long", "bool",
}  # fmt: skip
_INT_KEYS = 2**31  # optimizer states key parameters by small numbers; no hashes collide there


def pickle_problem(data: bytes) -> str:
    """Why the pickle ``data`` is refused ("" if it is not): a global no model file of this
    tool's names, ``_codecs.encode`` with another codec than latin-1, a dict key other than a
    string or a small integer, a set, an object passed to a call or an object's state larger
    than :data:`MAX_HASHED` once expanded, or more than :data:`MAX_OPCODES` opcodes."""
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
        elif name in ("TUPLE", "LIST", "DICT"):
            items = self.until_mark()
            stack.append(_Node(_size(items)))
            return _keys_problem(items[::2]) if name == "DICT" else ""
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            count = int(name[-1])
            items = stack[-count:]
            del stack[-count:]
            stack.append(_Node(_size(items), items=items))
        elif name in ("FROZENSET", "ADDITEMS", "EMPTY_SET"):
            return "its pickle builds a set, as no model file of this tool's does"
        elif name == "APPEND":
            self.grow([stack.pop()])
        elif name in ("APPENDS", "SETITEMS"):
            items = self.until_mark()
            self.grow(items)
            return _keys_problem(items[::2]) if name == "SETITEMS" else ""
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            self.grow([key, value])
            return _keys_problem([key])
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
            return _too_large(args) or _call_problem(call, args)
        elif name == "NEWOBJ_EX":
            kwargs, args, _ = stack.pop(), stack.pop(), stack.pop()
            stack.append(_Node())
            return _too_large(args, kwargs)
        elif name == "BUILD":
            return _too_large(stack.pop())
        elif name in ("GLOBAL", "STACK_GLOBAL"):
            if name == "GLOBAL":
                found = str(arg).replace(" ", ".")
            else:
                attribute, module = stack.pop(), stack.pop()
                found = f"{module.name}.{attribute.name}"
            stack.append(_Node(name=found))
            return _global_problem(found)
        elif name in ("BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE"):
            # Short ones kept: a module or attribute name for STACK_GLOBAL, a codec's name.
            stack.append(_Node(name=str(arg)[:100], kind="str"))
        elif name in ("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"):
            stack.append(_Node(value=arg if isinstance(arg, int) else None, kind="int"))
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


def _global_problem(name: str) -> str:
    """Why the global ``name`` is refused ("" if this tool's model files name it)."""
    module, _, attribute = name.rpartition(".")
    if name in _GLOBALS or (
        module == "torch" and (attribute.endswith("Storage") or attribute in _DTYPES)
    ):
        return ""
    return f"its pickle calls {name}, as no model file of this tool's does"


def _call_problem(call: Any, args: Any) -> str:
    """Why a call is refused: ``OrderedDict`` with arguments (torch.save writes it empty and
    fills it key by key: pairs given at once would hash keys unchecked), or
    :func:`_codec_problem`'s."""
    if isinstance(call, _Node) and call.name == "collections.OrderedDict":
        if isinstance(args, _Node) and args.size > 1:
            return (
                "its pickle builds an ordered dict from arguments, as no model file of this tool's"
            )
    return _codec_problem(call, args)


def _codec_problem(call: Any, args: Any) -> str:
    """Why a call of ``_codecs.encode`` is refused: only bytes as latin-1 text, as torch.save
    writes them (punycode of 10**6 letters takes days; hex chained doubles each time)."""
    if not isinstance(call, _Node) or call.name != "_codecs.encode":
        return ""
    items = args.items if isinstance(args, _Node) else []
    text_then_codec = len(items) == 2 and items[0].kind == "str" and items[1].kind == "str"
    if text_then_codec and items[1].name in ("latin1", "latin-1"):
        return ""
    return "its pickle encodes with another codec than latin-1, as no model file of this tool's"


def _keys_problem(keys: list[Any]) -> str:
    """Why dict keys are refused: only strings and small integers, as this tool's files have
    (keys whose hashes collide, or tuples nested to hash for hours, are built otherwise)."""
    for key in keys:
        if not isinstance(key, _Node):
            return ""  # damaged: torch's own reading says so
        small = key.kind == "int" and key.value is not None and -_INT_KEYS <= key.value < _INT_KEYS
        if not (key.kind == "str" or small):
            return (
                "its pickle has a dict key other than a string or a small integer, as no model "
                "file of this tool's has"
            )
    return ""


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
