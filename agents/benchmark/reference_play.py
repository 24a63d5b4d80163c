"""The reference policies played on every test user, once per reward model; the reward models
side by side in worker processes where the benchmark has more than one.

Each reward model's references (greedy, myopic, the planner, the static ceiling and a seeded
random policy) depend on nothing but the env, the users and the planner's width, so a worker
process plays them exactly as this process would: the same returns, wherever they were played.
On synthetic data (two reward models, ``mf`` and ``oracle``) two workers halve the wait before
the runs start; real data has one reward model and plays it here.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from movielens_env.evaluation.headroom import REFERENCE_NAMES, reference_returns
from movielens_env.evaluation.protocols import evaluate_online
from movielens_env.evaluation.references import BeamPlanner

from ..baselines import RandomRanker
from .executors import one_thread
from .stats import mean_ci95

# What one reward model's references come back as: mean and interval per reference, seconds.
ModelReferences = tuple[dict[str, Any], dict[str, float]]


def play_references(
    env_kwargs: dict[str, Any],
    reward_models: list[str],
    users: np.ndarray,
    planner_width: int,
    workers: int = 1,
    progress: Callable[[int], None] = lambda users: None,
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Every reference's return (mean, 95% interval over ``users``) per reward model, and the
    seconds each took (``"<model>/<reference>"``); the models in up to ``workers`` processes.

    ``progress(n)`` is told each time ``n`` more user episodes are done (here: per reference;
    from workers: per reward model, when it is done).
    """
    if workers <= 1 or len(reward_models) <= 1:
        played = [
            _play_one(env_kwargs, model, users, planner_width, progress) for model in reward_models
        ]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            min(workers, len(reward_models)), mp_context=context, initializer=one_thread
        ) as pool:
            futures = [
                pool.submit(_play_one, env_kwargs, model, users, planner_width)
                for model in reward_models
            ]
            played = []
            for future in futures:
                played.append(future.result())
                progress(episodes_per_model(len(users)))
    models = {model: returns for model, (returns, _) in zip(reward_models, played, strict=True)}
    seconds = {
        f"{model}/{name}": value
        for model, (_, taken) in zip(reward_models, played, strict=True)
        for name, value in taken.items()
    }
    return models, seconds


def episodes_per_model(n_users: int) -> int:
    """User episodes one reward model's references play, as ``progress`` counts them: each
    reference (the ceiling among them) and random, on every user."""
    return (len(REFERENCE_NAMES) + 1) * n_users


def _play_one(
    env_kwargs: dict[str, Any],
    model: str,
    users: np.ndarray,
    planner_width: int,
    progress: Callable[[int], None] = lambda users: None,
) -> ModelReferences:
    """One reward model's references and random, each played on every user."""
    found = reference_returns(env_kwargs, model, users, BeamPlanner(planner_width), progress)
    found.returns["random"] = evaluate_online(
        RandomRanker(0), env_kwargs, model, users, progress=progress
    )
    returns = {name: mean_ci95(values) for name, values in found.returns.items()}
    return returns, dict(found.seconds)
