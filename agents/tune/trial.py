"""One trial of a tuning study: train a drawn config on the validation dataset and score it.

The same in this process (:mod:`~agents.tune.study`) and in a Ray Tune trial
(:mod:`~agents.tune.on_ray`): the trial is evaluated :data:`EVALUATIONS` times as it trains,
each score reported to the Optuna trial (or what stands for it) for the pruner; a trial whose
agent took no gradient step, whose drawn values the training-cost check refuses, or whose score
is not finite is pruned with the reason, never ranked.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

from movielens_env import ENV_ID
from movielens_env.errors import ArgumentError
from movielens_env.evaluation import names
from movielens_env.evaluation.protocols import episode_steps

from ..fields import ConfigError

EVALUATIONS = 4  # intermediate scores per trial, what the pruner compares
OBJECTIVE = names.online_return("mf")


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ArgumentError(
            "movielens-rec tune needs Optuna: pip install 'movielens-rec[tune]' (or optuna)"
        ) from None
    # A failed trial's traceback is Optuna's WARNING; the error itself reaches the caller.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna


def changed_fields(config: Any, base: Any) -> dict[str, Any]:
    """The fields of ``config`` that differ from ``base``, as JSON values (tuples as lists):
    a trial keeps them, and the best trial's config is rebuilt from them."""
    changed = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if getattr(config, f.name) != getattr(base, f.name)
    }
    return json.loads(json.dumps(changed))  # type: ignore[no-any-return]


def score_trial(
    agent: str, config: Any, env_kwargs: dict[str, Any], timesteps: int, seed: int,
    trial: Any, optuna: Any,
) -> float:  # fmt: skip
    """Train and score one trial's ``config``, reporting each evaluation to ``trial`` (an
    Optuna trial, or what stands for one where the trial runs elsewhere); raise
    ``optuna.TrialPruned`` where it is pruned, saying why in its ``pruned`` user attribute."""
    try:
        score = _train_and_score(agent, config, env_kwargs, timesteps, seed, trial, optuna)
    except ConfigError as exc:  # drawn values too slow or large together on this env
        if trial.number == 0:  # the starting config: the user's to change
            raise
        _prune(trial, f"refused: {exc}", optuna)
    if not math.isfinite(score):
        _prune(trial, f"the validation return is {score}", optuna)
    return score


def _report(trial: Any, step: int, value: float, optuna: Any) -> None:
    trial.report(value, step)
    if trial.should_prune():
        _prune(trial, f"below the median at evaluation {step}: {value:.4g}", optuna)


def _prune(trial: Any, why: str, optuna: Any) -> None:
    """Stop ``trial`` as pruned, saying ``why`` (kept in the study, shown per trial)."""
    trial.set_user_attr("pruned", why)
    raise optuna.TrialPruned(why)


def _no_update(trial: Any, what: str, optuna: Any) -> None:
    """Prune a trial whose agent never took a gradient step: its score is that of an
    untrained network, which must not be ranked against trained ones."""
    _prune(trial, f"took no gradient step ({what}): an untrained network, not scored", optuna)


def _train_and_score(
    agent: str, config: Any, env_kwargs: dict[str, Any], timesteps: int, seed: int,
    trial: Any, optuna: Any,
) -> float:  # fmt: skip
    """Train one trial's agent on the validation dataset's train split; its last validation
    return (reported as it goes, for the pruner)."""
    horizon = episode_steps(env_kwargs)
    if hasattr(config, "state"):  # DRR
        from ..drr.config import budget_episodes
        from ..drr.train import train_drr

        episodes = budget_episodes(timesteps, horizon)
        every = max(1, episodes // EVALUATIONS)
        config = dataclasses.replace(config, eval_every=every, checkpoint_every=0)
        steps: list[float] = []

        def on_evaluation(row: dict[str, float]) -> None:
            steps.append(row[OBJECTIVE])
            _report(trial, len(steps), row[OBJECTIVE], optuna)

        with warnings.catch_warnings():  # said per trial, as the reason it was pruned
            warnings.filterwarnings("ignore", "DRR took no gradient step")
            result = train_drr(env_kwargs, config, episodes, seed, on_evaluation=on_evaluation)
        if result.agent.updates == 0:
            _no_update(trial, f"learning_starts={config.learning_starts} transitions", optuna)
        return steps[-1]
    return _train_sb3(agent, config, env_kwargs, timesteps, seed, trial, optuna)


def _train_sb3(
    agent: str, config: Any, env_kwargs: dict[str, Any], timesteps: int, seed: int,
    trial: Any, optuna: Any,
) -> float:  # fmt: skip
    from stable_baselines3.common.monitor import Monitor

    from movielens_env.evaluation.protocols import evaluate_online

    from ..sb3.train import check_fits, make_model
    from ..threads import torch_threads

    env = Monitor(gym.make(ENV_ID, **env_kwargs))
    obs_dim = gym.spaces.flatdim(env.observation_space)
    check_fits(config, obs_dim, gym.spaces.flatdim(env.action_space))
    if config.learning_starts >= timesteps:
        _no_update(trial, f"learning_starts={config.learning_starts} of {timesteps} steps", optuna)
    env.reset(seed=seed)
    chunks = np.diff(np.linspace(0, timesteps, EVALUATIONS + 1).astype(int))
    value = float("nan")
    with torch_threads(1):
        model = make_model(agent, env, seed, config)
        for step, chunk in enumerate(chunks[chunks > 0], start=1):
            model.learn(total_timesteps=int(chunk), reset_num_timesteps=False)
            value = float(evaluate_online(model, env_kwargs, "mf", name=agent).mean())
            _report(trial, step, value, optuna)
    if model._n_updates == 0:  # SB3 counts its gradient steps there (train_freq can skip all)
        _no_update(trial, f"train_freq={config.train_freq} in {timesteps} steps", optuna)
    return value
