"""How much a user model leaves to gain: the references' returns and the normalized score.

The references (:mod:`movielens_env.evaluation.references`) are played online on the test split, one
episode per test user, exactly as agents are (:func:`movielens_env.evaluation.evaluate_online`).
The normalized score puts an agent's return on the scale D4RL uses: 0 is a random policy,
100 the planner, the best return known.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ArgumentError
from .policies import Ranker
from .protocols import episode_steps, evaluate_online, evaluation_users, heldout_env
from .references import BeamPlanner, MFRanker, MyopicPolicy, Reference, static_ceiling

REFERENCE_NAMES = ("greedy", "myopic", "myopic-mf", "planner", "planner-mf", "ceiling")


@dataclass
class ReferenceReturns:
    """Per-user returns of every reference under one env configuration and reward model.

    Attributes:
        users: internal ids of the test users, in order.
        returns: each of :data:`REFERENCE_NAMES` -> return per user.
        seconds: reference name -> wall-clock seconds it took over all users.
    """

    users: np.ndarray
    returns: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def reference_returns(
    env_kwargs: dict[str, Any],
    reward_model: str = "mf",
    users: np.ndarray | None = None,
    planner: BeamPlanner | None = None,
    progress: Callable[[int], None] = lambda users: None,
) -> ReferenceReturns:
    """Play greedy, myopic (on the log and on MF's ratings) and the planner (on the log and on
    MF's ratings) on every test user, and compute the static ceiling.

    Args:
        env_kwargs: the env (its ``max_episode_steps`` is the horizon, 10 if absent).
        reward_model: the reward model the episodes are rated by.
        users: the users (default: the evaluation's test users).
        planner: the planner to use, on the log (default: :class:`BeamPlanner` with its
            defaults); ``planner-mf`` searches as widely on MF's ratings.
        progress: told ``n`` each time ``n`` more users are done by one reference.

    Raises:
        ArgumentError: ``planner`` plans on MF's ratings (it is the log's planner).
    """
    planner = planner or BeamPlanner()
    if planner.mf_ratings:
        raise ArgumentError(
            "reference_returns: planner must plan on the log (mf_ratings=False); planner-mf is "
            "played beside it with the same width and shortlist"
        )
    env = heldout_env(env_kwargs, reward_model=reward_model)
    if users is None:
        users = evaluation_users(env.world, env.history_len, env.eligible_users)
    result = ReferenceReturns(users=np.asarray(users))
    planner_mf = BeamPlanner(
        planner.width, planner.shortlist, planner.search_static, mf_ratings=True
    )
    horizon = episode_steps(env_kwargs)
    if not planner.returns_myopic(env):  # before greedy and myopic are played
        planner.check_plans(env, horizon, len(users))
    policies: dict[str, Ranker | Reference] = {
        "greedy": MFRanker(env.world), "myopic": MyopicPolicy(),
        "myopic-mf": MyopicPolicy(mf_ratings=True), "planner": planner,
        "planner-mf": planner_mf,
    }  # fmt: skip
    for name, policy in policies.items():
        start = time.perf_counter()
        if isinstance(policy, BeamPlanner) and policy.returns_myopic(env):
            # The same episodes as myopic's (on the log, or on MF's ratings), played already.
            returns = result.returns["myopic-mf" if policy.mf_ratings else "myopic"].copy()
            progress(len(users))
        else:
            returns = evaluate_online(
                policy, env_kwargs, reward_model, users, name=name, progress=progress
            )
        result.returns[name] = returns
        result.seconds[name] = time.perf_counter() - start
    ceiling = np.zeros(len(users))
    for row, user in enumerate(users):
        env.reset(options={"user_id": env.world.dataset.user_ids[user]})
        ceiling[row] = static_ceiling(env, horizon)
    progress(len(users))
    result.returns["ceiling"] = ceiling
    return result


def normalized_score(value: float, random: float, planner: float) -> float:
    """``100 * (value - random) / (planner - random)``: 0 for random, 100 for the planner (NaN
    where the planner does no better than random, so no scale exists)."""
    span = planner - random
    if not span > 0:
        return math.nan
    return 100.0 * (value - random) / span
