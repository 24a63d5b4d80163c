"""Checking a config dataclass field by field: type and range, with messages that name both."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from movielens_env.errors import MovieLensRecError


class ConfigError(MovieLensRecError, ValueError):
    """A config field has the wrong type or is out of its range; the message names both."""


@dataclass(frozen=True)
class Bound:
    """What a numeric field accepts: its type and range.

    Attributes:
        kind: ``int`` (an integer, not a bool) or ``float`` (any real number, integers too).
        low: smallest allowed value (``None``: no bound).
        high: largest allowed value (``None``: no bound).
        low_open: whether ``low`` itself is excluded.
        high_open: whether ``high`` itself is excluded.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        """The range in interval notation, e.g. ``an integer in [1, 1024]``."""
        kind = "an integer" if self.kind is int else "a number"
        if self.low is None and self.high is None:
            return kind
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        low = "-inf" if self.low is None else _number(self.low)
        high = "inf" if self.high is None else _number(self.high)
        return f"{kind} in {left}{low}, {high}{right}"

    def admits(self, value: Any) -> bool:
        """Whether ``value`` has the right type and lies in the range."""
        if isinstance(value, bool):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if self.kind is float and not (isinstance(value, (int, float)) and math.isfinite(value)):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


@dataclass(frozen=True)
class TupleBound:
    """What a tuple field accepts: ``min_len`` to ``max_len`` entries, each within ``item``.

    Attributes:
        item: the bound of every entry.
        min_len: fewest entries.
        max_len: most entries.
    """

    item: Bound
    min_len: int = 1
    max_len: int = 16

    def describe(self) -> str:
        """E.g. ``a list of 1 to 16 entries, each an integer in [1, 8192]``."""
        return f"a list of {self.min_len} to {self.max_len} entries, each {self.item.describe()}"

    def admits(self, value: Any) -> bool:
        """Whether ``value`` is a tuple of the right length whose entries are all admitted."""
        return (
            isinstance(value, tuple)
            and self.min_len <= len(value) <= self.max_len
            and all(self.item.admits(entry) for entry in value)
        )


def _number(value: float) -> str:
    """``10000000`` as ``10,000,000``; other numbers as ``%g``."""
    if float(value).is_integer() and abs(value) >= 10_000:
        return f"{int(value):,}"
    return f"{value:g}"


def check_choice(config: Any, field: str, allowed: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` if ``config``'s ``field`` is not one of ``allowed``, listing
    them."""
    value = getattr(config, field)
    if value not in allowed:
        raise ConfigError(
            f"{type(config).__name__}.{field}={value!r:.100} is not valid; allowed: "
            f"{', '.join(allowed)}"
        )


def check_fields(config: Any, bounds: Mapping[str, Bound | TupleBound]) -> None:
    """Raise :class:`ConfigError` for the first field of ``config`` outside its bound."""
    name = type(config).__name__
    for field in fields(config):
        bound = bounds.get(field.name)
        value = getattr(config, field.name)
        if bound is not None and not bound.admits(value):
            raise ConfigError(f"{name}.{field.name} must be {bound.describe()}, got {value!r}")
        if isinstance(value, float) and value == 0.0 and math.copysign(1.0, value) < 0:
            # -0.0 (or -1e-400, read as it) passes [0, ...], but numpy's scales refuse it.
            object.__setattr__(config, field.name, 0.0)


# NumPy's global seeding (which SB3 and other libraries call) takes 32-bit seeds.
SEED = Bound(int, 0, 2**32 - 1)


def check_seed(name: str, value: Any) -> int:
    """``value`` as a seed, or :class:`ConfigError` naming ``name`` and the range."""
    if not SEED.admits(value):
        raise ConfigError(f"{name} must be {SEED.describe()}, got {value!r}")
    return value


# What a gradient step costs grows with batch_size * width * (inputs + width) multiply-adds
# per network (about 2 ns each on these 2 cores for actor, critic and targets together), what
# it holds with width * (inputs + width) weights. Each field within its own bounds still
# allowed seconds per step (hidden=8192), minutes per collected batch (batch 65,536 with 1,024
# updates per batch) and tens of GB (drr-p over 150 history items). At these limits a step
# takes about half a second, a collected batch about ten, and a network about 1 GB.
MAX_STEP_COST = 2**28
MAX_BATCH_COST = 2**32
MAX_WEIGHTS = 2**26


def check_training_cost(
    config: str, fields: str, batch_size: int, layers: tuple[int, ...], inputs: int, updates: int
) -> None:
    """Refuse networks of hidden ``layers`` (their widths, in order) on ``inputs`` inputs,
    trained on batches of ``batch_size`` with ``updates`` gradient steps per collected batch,
    that would take seconds per step, minutes per batch or more memory than the machine has;
    ``config`` and ``fields`` (the fields that set the layers and the updates) name them in the
    message. Every layer counts: 16 layers are 16 times the work of one.

    Raises:
        ConfigError: naming the fields, the product and its limit.
    """
    weights = sum(a * b for a, b in zip((inputs, *layers), layers, strict=False))
    step = batch_size * weights
    shape = f"batch_size {batch_size}, hidden layers {list(layers)}, {inputs:,} inputs"
    if weights > MAX_WEIGHTS:
        raise ConfigError(
            f"{config}: a network of hidden layers {list(layers)} on {inputs:,} inputs holds "
            f"{weights:,} weights, beyond {MAX_WEIGHTS:,} (about 1 GB with its optimiser): "
            f"lower {fields} (or the inputs: history_len, embedding_dim)"
        )
    if step > MAX_STEP_COST:
        raise ConfigError(
            f"{config}: one gradient step ({shape}) costs {step:,} multiply-adds per network, "
            f"beyond {MAX_STEP_COST:,} (each step would take seconds): lower batch_size or "
            f"{fields}"
        )
    if step * updates > MAX_BATCH_COST:
        raise ConfigError(
            f"{config}: {updates:,} gradient steps per collected batch ({shape}) cost "
            f"{step * updates:,} multiply-adds, beyond {MAX_BATCH_COST:,} (minutes between "
            f"collected batches): lower {fields} or batch_size"
        )
