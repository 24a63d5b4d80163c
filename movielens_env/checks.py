"""Argument checks shared by the envs, the evaluation and the agents: each failure names the
argument, what it must be, and what it got."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import ArgumentError


def choice(name: str, value: Any, allowed: tuple) -> Any:
    """``value`` if it is one of ``allowed``, else :class:`ArgumentError` listing them."""
    if value not in allowed:
        raise ArgumentError(
            f"{name}={value!r} is not valid; allowed values: {', '.join(map(repr, allowed))}"
        )
    return value


# A training budget (episodes, env steps) beyond this is a slip: a billion env steps is weeks
# on one machine, and 2**70 was accepted with an ETA of 10**16 hours.
MAX_BUDGET = 10**9


def positive_int(name: str, value: Any, high: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer in ``[1, high]`` (not a bool), else an error."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ArgumentError(f"{name} must be an integer >= 1, got {value!r}")
    if high is not None and value > high:
        raise ArgumentError(f"{name} must be an integer in [1, {high:,}], got {value!r}")
    return int(value)


def budget(name: str, value: Any) -> int:
    """A training budget: an integer in ``[1, MAX_BUDGET]``, else an error naming ``name``."""
    return positive_int(name, value, MAX_BUDGET)


def finite_number(name: str, value: Any, error: type[Exception] = ArgumentError) -> float:
    """``value`` as a ``float`` if it is a finite real number (not a bool), else ``error``."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
    ):
        raise error(f"{name} must be a finite number, got {value!r}")
    return float(value)


# The longest episode an env may be asked for. The horizons studied are 10 to 50 steps; an
# episode otherwise ends only when its user's catalogue runs out, and the evaluation plays every
# test user's episode to its end, so a larger value (1e9 meaning "no limit") ran for hours.
MAX_EPISODE_STEPS_LIMIT = 10_000


def episode_length(value: Any) -> int:
    """``value`` as an ``int`` if it is an integer in ``[1, MAX_EPISODE_STEPS_LIMIT]``, else
    :class:`ArgumentError` naming ``max_episode_steps``."""
    steps = positive_int("max_episode_steps", value)
    if steps > MAX_EPISODE_STEPS_LIMIT:
        raise ArgumentError(
            f"max_episode_steps must be an integer in [1, {MAX_EPISODE_STEPS_LIMIT:,}], got "
            f"{steps:,} (episodes also end when a user's catalogue runs out)"
        )
    return steps
