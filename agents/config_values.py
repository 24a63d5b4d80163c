"""Config dataclasses from text: ``--set KEY=VALUE`` and JSON files, read by each field's type.

The type of a field is its real annotation (``typing.get_type_hints``), not its spelling: a
``str`` field takes the text as written, a number or a tuple is read as JSON (a JSON list
becomes the tuple), ``X | None`` also takes ``null``. Ranges are the config's own business:
its ``__post_init__`` checks every field (:func:`agents.fields.check_fields`) and names it.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections import Counter
from pathlib import Path
from typing import Any

from movielens_env.errors import ArgumentError
from movielens_env.storage import read_small_text


def field_types(cls: type) -> dict[str, Any]:
    """Each field of the dataclass ``cls`` and its resolved type."""
    hints = typing.get_type_hints(cls)
    return {field.name: hints[field.name] for field in dataclasses.fields(cls)}


def _describe(hint: Any) -> str:
    """What a text must spell for ``hint``, for error messages."""
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if typing.get_origin(hint) is tuple:
        return "a JSON list such as [64, 64]"
    return f"a JSON value of type {hint}"


def _optional(hint: Any) -> Any | None:
    """``X`` for ``X | None`` (or ``Optional[X]``), else ``None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        others = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(others) == 1:
            return others[0]
    return None


def from_json(hint: Any, value: Any) -> Any:
    """A JSON value as ``hint`` holds it: lists become tuples for tuple fields; anything else
    is left as it is, for the config's own check to accept or name."""
    inner = _optional(hint)
    if inner is not None:
        return None if value is None else from_json(inner, value)
    if typing.get_origin(hint) is tuple and isinstance(value, list):
        return tuple(value)
    return value


def parse_text(cls: type, key: str, text: str) -> Any:
    """The value ``text`` gives field ``key`` of ``cls``, read by the field's type.

    Raises:
        ArgumentError: ``text`` is not JSON where the type needs it; the message names the
            field and what it takes.
        TypeError: the field's type is one this module cannot read (a bug in the config).
    """
    hint = field_types(cls)[key]
    inner = _optional(hint)
    if inner is not None and text in ("null", "None"):
        return None
    base = hint if inner is None else inner
    if base is str:
        return text
    if base not in (bool, int, float) and typing.get_origin(base) is not tuple:
        raise TypeError(f"{cls.__name__}.{key}: fields of type {hint} cannot be read from text")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or an integer of thousands of digits
        shown = text if len(text) <= 60 else f"{text[:40]}... ({len(text):,} characters)"
        raise ArgumentError(
            f"{cls.__name__}.{key} must be {_describe(base)}, got {shown!r}"
        ) from None
    return from_json(hint, value)


def parse_overrides(cls: type, pairs: list[str]) -> dict[str, Any]:
    """The fields ``--set KEY=VALUE`` pairs give, each read by its field's type.

    Raises:
        ArgumentError: a pair that is not ``KEY=VALUE`` with a field of ``cls`` as ``KEY``, or
            a value that cannot be read for its field; the message names the pair.
    """
    types_ = field_types(cls)
    values = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        if key not in types_ or not text:
            raise ArgumentError(
                f"--set {pair!r}: expected KEY=VALUE with KEY one of {sorted(types_)} "
                f"(the fields of {cls.__name__})"
            )
        if key in values:
            raise ArgumentError(f"--set {key}= is given twice; give each field once")
        try:
            values[key] = parse_text(cls, key, text)
        except ArgumentError as exc:
            raise ArgumentError(f"--set {pair!r}: {exc}") from None
    return values


def with_options(config: Any, config_file: str | Path | None, pairs: list[str]) -> Any:
    """``config`` with the fields of ``--config FILE`` and then of ``--set KEY=VALUE`` pairs
    (which override the file's); the config's own checks name a value out of range."""
    values = {} if config_file is None else read_config_file(type(config), config_file)
    values.update(parse_overrides(type(config), pairs))
    return dataclasses.replace(config, **values)


def values_from_dict(cls: type, values: Any, where: str) -> dict[str, Any]:
    """The fields a JSON object gives (lists read as tuples where the field is one).

    Raises:
        ArgumentError: ``values`` is not an object, or names keys that are not fields of
            ``cls``; ``where`` (a file, an option) starts the message.
    """
    if not isinstance(values, dict):
        raise ArgumentError(f"{where}: expected a JSON object of {cls.__name__} fields")
    types_ = field_types(cls)
    unknown = sorted(set(values) - set(types_))
    if unknown:
        raise ArgumentError(
            f"{where}: unknown {cls.__name__} keys {unknown}; valid: {sorted(types_)}"
        )
    return {key: from_json(types_[key], value) for key, value in values.items()}


def read_config_file(cls: type, path: str | Path) -> dict[str, Any]:
    """The fields a ``--config FILE.json`` gives (a JSON object of fields of ``cls``).

    Raises:
        ArgumentError: the file is missing, unreadable, not JSON, not an object, or names
            keys that are not fields of ``cls``.
    """
    try:
        text = read_small_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ArgumentError(f"--config {path}: cannot be read ({exc})") from None
    values = strict_json(text, f"--config {path}")
    return values_from_dict(cls, values, f"--config {path}")


def strict_json(text: str, where: str) -> Any:
    """``text`` as JSON, with a key given twice in one object refused (``json`` would keep the
    last silently); ``where`` (an option, a file) starts the message.

    Raises:
        ArgumentError: not valid JSON, or a repeated key.
    """

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        values = dict(pairs)
        if len(values) < len(pairs):  # counted once each: a million keys take a second
            counts = Counter(key for key, _ in pairs)
            repeated = sorted(key for key, count in counts.items() if count > 1)
            raise ArgumentError(f"{where}: key {', '.join(map(repr, repeated))} given twice")
        return values

    try:
        return json.loads(text, object_pairs_hook=unique)
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ArgumentError(f"{where}: JSON nested too deep to be a config") from None
    except ArgumentError:
        raise
    except ValueError:  # what else json raises: an integer beyond Python's 4,300 digits
        raise ArgumentError(
            f"{where}: a number of thousands of digits, beyond any setting's range"
        ) from None
