"""The env arguments as a benchmark's stored-run key states them: one spelling per env.

``--user-model static`` gives ``{"user_model": "static", "max_episode_steps": 10}``, the env
that no arguments give; keyed as given, ``benchmark --force`` took the runs stored without
them for another configuration's and removed hours of training.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from movielens_env.envs.setup import EnvConfig
from movielens_env.errors import MovieLensRecError
from movielens_env.evaluation.protocols import EPISODE_STEPS
from movielens_env.simulator.user_model import parse_user_model

from ..run_folder import portable_env_kwargs

_DEFAULTS: dict[str, Any] = {
    **{f.name: f.default for f in fields(EnvConfig) if f.init},
    "max_episode_steps": EPISODE_STEPS,
}


def key_env_options(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """:func:`~agents.run_folder.portable_env_kwargs` without the arguments that equal the
    env's defaults (of the same type: ``1`` for ``item_bias=True`` is not dropped), and with
    ``user_model`` in its canonical spelling (``drift+boredom`` is ``boredom+drift``)."""
    options = dict(portable_env_kwargs(env_kwargs))
    if isinstance(options.get("user_model"), str):
        try:
            options["user_model"] = parse_user_model(options["user_model"]).name
        except MovieLensRecError:
            pass  # refused where the env is built; the key keeps what was given
    return {
        name: value
        for name, value in options.items()
        if not (
            name in _DEFAULTS and type(value) is type(_DEFAULTS[name]) and value == _DEFAULTS[name]
        )
    }
