"""What a DRR run measures of itself besides its scores, at every evaluation: how well the
critic fits and what the actor does. The columns of ``learning_curve.csv`` after the metrics:

- ``td_error``: mean absolute TD error of the gradient steps since the last evaluation;
- ``q_start``: the critic's value ``Q(s0, mu(s0))`` of each test user's first state (mean);
- ``return_discounted``: the discounted return (the critic's ``gamma``) the deterministic
  actor then collects in the test episode, reward model ``mf`` (mean); ``q_bias`` is
  ``q_start - return_discounted`` per user, averaged (the critic bootstraps past the
  episode's time limit, so a positive bias is partly expected);
- ``actor_norm``: mean Euclidean norm of ``mu(s0)`` (the action space is ``[-1, 1]^D``; with
  the ``tanh`` head, ``sqrt(D)`` means saturated; the unit heads give 1 by construction);
  with ``refine_k``, ``mu(s0)`` here is the action played: the item the critic chose;
- ``greedy_agreement@1``: share of test users whose first recommendation under the ``full``
  protocol is greedy's (the MF ranking), which is optimal under the static user model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from movielens_env import load_world
from movielens_env.evaluation.protocols import EvaluationResult, evaluate_offline, heldout_env
from movielens_env.evaluation.protocols import evaluate_online as play_online
from movielens_env.evaluation.references import MFRanker

from .agent import DRRAgent

COLUMNS = (
    "td_error",
    "q_start",
    "return_discounted",
    "q_bias",
    "actor_norm",
    "greedy_agreement@1",
)


def greedy_first_items(env_kwargs: dict[str, Any]) -> np.ndarray:
    """Greedy's first recommendation (``full`` protocol) to each test user, in evaluation
    order; computed once per run."""
    greedy = MFRanker(load_world(**env_kwargs))
    result = evaluate_offline(greedy, env_kwargs, ("full",), (1,), "greedy")
    return result.top_items["full"][:, 0]


def evaluation_diagnostics(
    agent: DRRAgent,
    env_kwargs: dict[str, Any],
    result: EvaluationResult,
    greedy_first: np.ndarray,
    td_errors: list[float],
) -> dict[str, float]:
    """The diagnostics of :data:`COLUMNS` for the agent as evaluated in ``result``."""
    env = heldout_env(env_kwargs)
    raw_ids = env.world.dataset.user_ids
    first = np.stack([env.reset(options={"user_id": raw_ids[u]})[0] for u in result.users])
    with torch.no_grad():
        observations = torch.as_tensor(first, dtype=torch.float32)
        actions = torch.as_tensor(agent.act(first, explore=False))
        q = agent.critic(observations, actions).numpy().reshape(-1)
    returns = play_online(
        agent, env_kwargs, "mf", result.users, name="drr", discount=agent.config.gamma
    )
    agree = result.top_items["full"][:, 0] == greedy_first
    return {
        "td_error": float(np.mean(td_errors)) if td_errors else float("nan"),
        "q_start": float(q.mean()),
        "return_discounted": float(returns.mean()),
        "q_bias": float(np.mean(q - returns)),
        "actor_norm": float(np.linalg.norm(actions.numpy(), axis=1).mean()),
        "greedy_agreement@1": float(agree.mean()),
    }
