"""The env arguments as a benchmark's stored-run key states them: one spelling per env.

``--user-model static`` gives ``{"user_model": "static", "max_episode_steps": 10}``, the env
that no arguments give; keyed as given, ``benchmark --force`` took the runs stored without
them for another configuration's and removed hours of training.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np

from movielens_env.envs.setup import EnvConfig
from movielens_env.errors import MovieLensRecError
from movielens_env.evaluation.protocols import EPISODE_STEPS
from movielens_env.simulator.mf import MFConfig
from movielens_env.simulator.user_model import COMPONENT_PARAMETERS, parse_user_model

from ..run_folder import portable_env_kwargs

_DEFAULTS: dict[str, Any] = {
    **{f.name: f.default for f in fields(EnvConfig) if f.init},
    "max_episode_steps": EPISODE_STEPS,
}
_USER_PARAMETERS = {name for names in COMPONENT_PARAMETERS.values() for name in names}
_MF_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(MFConfig) if f.name != "dim"}


def key_env_options(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """:func:`~agents.run_folder.portable_env_kwargs` without the arguments that equal the
    env's defaults (numbers by value, ``1`` for ``1.0``; a bool only as a bool: ``1`` for
    ``item_bias=True`` stays) or that the env reads as them (a user-model parameter of
    ``None``), ``satiation_decay`` of one value for every genre as that value,
    ``mf_options`` without the MF defaults (left out when none is left), and
    ``user_model`` in its canonical spelling (``drift+boredom`` is ``boredom+drift``)."""
    options = {name: _plain(value) for name, value in portable_env_kwargs(env_kwargs).items()}
    if isinstance(options.get("user_model"), str):
        try:
            options["user_model"] = parse_user_model(options["user_model"]).name
        except MovieLensRecError:
            pass  # refused where the env is built; the key keeps what was given
    for name in _USER_PARAMETERS:
        if name in options and options[name] is None:  # the user model reads None as its default
            del options[name]
    if isinstance(options.get("satiation_decay"), list | tuple):
        options["satiation_decay"] = _one_decay(options["satiation_decay"])
    if isinstance(options.get("mf_options"), dict):
        mf_options = {name: _plain(value) for name, value in options["mf_options"].items()}
        options["mf_options"] = _without_defaults(mf_options, _MF_DEFAULTS) or None
    return _without_defaults(options, _DEFAULTS)


def _without_defaults(options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in options.items()
        if not (name in defaults and _same_value(value, defaults[name]))
    }


def _same_value(value: Any, default: Any) -> bool:
    """Whether ``value`` gives what ``default`` does: numbers by value, anything else (bools
    among them) only as the same type."""
    number = (int, float)
    if isinstance(value, number) and isinstance(default, number):
        if isinstance(value, bool) or isinstance(default, bool):
            return type(value) is type(default) and value == default
        return bool(value == default)
    return type(value) is type(default) and bool(value == default)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (the key is JSON, and ``np.int64(10)`` is
    the default ``10``)."""
    return value.item() if isinstance(value, np.generic) else value


def _one_decay(decay: list[Any] | tuple[Any, ...]) -> Any:
    """Per-genre decays all equal as the one number the env spreads over every genre alike."""
    values = [_plain(value) for value in decay]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if values and numbers and all(v == values[0] for v in values):
        return float(values[0])
    return values
