"""What ``movielens-rec tune`` searches for each tunable agent, and the config a trial's values
make.

Every agent gets the same kind of space: its learning rates, network width, discount, target
rate, batch size and exploration scale (SAC's: its entropy weight), in the ranges its config's
docstring calls typical. DRR's, DDPG's and TD3's spaces also hold their actor's head (the
paper's and SB3's ``tanh`` among them), and the residual head's scale where it is drawn.
The ranges are written here once, beside the config type each agent's values fill.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from movielens_env.errors import ArgumentError

from ..drr.config import ACTION_HEADS, DRRConfig
from ..registry import get_agent
from ..sb3.config import ACTION_HEADS as SB3_ACTION_HEADS
from ..sb3.config import SB3Config

# A trial object with Optuna's suggest_* methods (typed loosely: importing Optuna is optional).
Trial = Any
# The discount, from 0: on a static user an item's reward ignores what came before, so no
# discount is right there, and under boredom planning adds 1% over the myopic reference; a
# range from 0.5 refused those (under boredom+drift the validation return still rose from
# gamma 0.9 to 0.5, the range's end).
DISCOUNT = (0.0, 0.99)


def _drr(trial: Trial) -> dict[str, Any]:
    return {
        "action_head": trial.suggest_categorical("action_head", list(ACTION_HEADS)),
        "actor_lr": trial.suggest_float("actor_lr", 1e-5, 1e-3, log=True),
        "critic_lr": trial.suggest_float("critic_lr", 1e-4, 1e-2, log=True),
        "hidden": trial.suggest_categorical("hidden", [64, 128, 256, 512]),
        "gamma": trial.suggest_float("gamma", *DISCOUNT),
        "tau": trial.suggest_float("tau", 1e-3, 5e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
        "noise_std": trial.suggest_float("noise_std", 0.02, 0.5, log=True),
    }


_NET_ARCHS = {"64x64": (64, 64), "256x256": (256, 256), "400x300": (400, 300)}
# SAC's entropy weight: None is SB3's learned weight (its default), then fixed values a decade
# apart by halves, as a choice so that the default is one of the trials.
_ENT_COEFS = (None, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)


def _sb3(algorithm: str, trial: Trial) -> dict[str, Any]:
    values = {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True),
        "net_arch": _NET_ARCHS[trial.suggest_categorical("net_arch", list(_NET_ARCHS))],
        "gamma": trial.suggest_float("gamma", *DISCOUNT),
        "tau": trial.suggest_float("tau", 1e-3, 5e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
        "learning_starts": trial.suggest_categorical("learning_starts", [100, 500, 2000]),
    }
    if algorithm == "sac":  # SAC explores through its entropy bonus: learned (None) or fixed
        values["ent_coef"] = trial.suggest_categorical("ent_coef", list(_ENT_COEFS))
    else:
        values["action_noise"] = trial.suggest_float("action_noise", 0.02, 0.5, log=True)
        values["action_head"] = trial.suggest_categorical("action_head", list(SB3_ACTION_HEADS))
        values["residual_scale"] = (
            trial.suggest_float("residual_scale", 0.005, 0.5, log=True)
            if values["action_head"] == "user-residual"
            else SB3Config.residual_scale  # the tanh head refuses any other (it would ignore it)
        )
    return values


def tunable_agents() -> list[str]:
    """The registered agents whose config this module can search (DRR's and SB3's)."""
    from ..registry import agent_names

    return [name for name in agent_names() if _space_of(name) is not None]


def _space_of(agent: str) -> Callable[[Trial], dict[str, Any]] | None:
    entry = get_agent(agent)
    artefact = entry.artefact
    # A plugin's own trainer is not what the trials would train (they train the built-ins).
    if artefact is None or entry.code is not None:
        return None
    if isinstance(artefact.config, DRRConfig):
        return _drr
    if isinstance(artefact.config, SB3Config):
        return lambda trial: _sb3(agent, trial)
    return None


class _Recorder:
    """A stand-in trial that records each parameter's distribution; a choice it suggests is
    ``base``'s where the choices hold it, so that the parameters it conditions are recorded."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.ranges: dict[str, tuple[float, float]] = {}
        self.choices: dict[str, list[Any]] = {}

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        self.ranges[name] = (low, high)
        return low

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        self.choices[name] = choices
        value = getattr(self.base, name, None)
        return value if name != "net_arch" and value in choices else choices[0]


def base_params(agent: str, base: Any) -> dict[str, Any]:
    """The searched parameters' values in ``base``: the study's first trial, so that tuning
    never ends below the config it started from.

    Raises:
        ArgumentError: a value lies outside the space (it could be neither that first trial nor
            any other); the message names the field and what the space allows.
    """
    recorder = _Recorder(base)
    check_tunable(agent)(recorder)
    params: dict[str, Any] = {}
    outside = []
    for name, (low, high) in recorder.ranges.items():
        params[name] = getattr(base, name)
        if not low <= params[name] <= high:
            outside.append(f"{name}={params[name]!r} (searched in [{low:g}, {high:g}])")
    for name, choices in recorder.choices.items():
        value = shown = getattr(base, name)
        if name == "net_arch":
            value = next((key for key, arch in _NET_ARCHS.items() if arch == value), None)
            choices = [list(_NET_ARCHS[key]) for key in choices]
            shown = list(shown)
        params[name] = value
        if (value is None) if name == "net_arch" else value not in choices:
            outside.append(f"{name}={shown!r} (searched among {choices})")
    if outside:
        raise ArgumentError(
            f"the config the search starts from sets {', '.join(outside)}: outside what "
            f"{agent!r} is tuned over, so it could not be the first trial; leave it to the search"
        )
    return params


def check_tunable(agent: str) -> Callable[[Trial], dict[str, Any]]:
    """The search space of ``agent``.

    Raises:
        ArgumentError: the agent is unknown, or has no space here (a baseline, a plugin).
    """
    space = _space_of(agent)
    if space is None:
        raise ArgumentError(
            f"agent {agent!r} has no hyper-parameters to tune here; tunable agents: "
            f"{', '.join(tunable_agents())}"
        )
    return space


def default_config(agent: str) -> Any:
    """The config a tunable ``agent`` trains with when nothing is tuned (its artefact's)."""
    check_tunable(agent)
    return get_agent(agent).artefact.config  # type: ignore[union-attr]


def trial_config(agent: str, trial: Trial, base: Any | None = None) -> Any:
    """``base`` (default: the agent's default config) with the values ``trial`` suggests."""
    space = check_tunable(agent)
    base = base or default_config(agent)
    values = space(trial)
    if isinstance(base, DRRConfig):  # a larger batch needs as many transitions to start
        values["learning_starts"] = max(base.learning_starts, values["batch_size"])
    return dataclasses.replace(base, **values)
