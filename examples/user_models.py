"""User models: where long-term planning pays, and how much a policy leaves on the table.

Makes a registered variant whose users get bored of genres and drift in taste
(``MovieLensRec-BoredomDrift-v0``: 20-step episodes), plays one episode step by step with the
state the observation carries, then plays the reference policies (greedy MF, myopic, the
planner) on a few test users and scores a policy of your own against them with the normalized
score: 0 is a random policy, 100 the planner.

Run it (offline, on the generated ``synthetic`` data; a few seconds)::

    python examples/user_models.py
    python examples/user_models.py --env-id MovieLensRec-BoredomDriftPatience-v0 --users 20
    python examples/user_models.py --dataset ml-100k --data-dir ~/data/ml-100k
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np

import movielens_env
from movielens_env.evaluation.headroom import normalized_score, reference_returns
from movielens_env.evaluation.protocols import evaluate_online, evaluation_users, heldout_env
from movielens_env.evaluation.references import BeamPlanner


def user_vector_policy(dim: int) -> Callable[[np.ndarray], np.ndarray]:
    """A policy that recommends with the observation's user vector ``[p_u, 1]`` (its first
    ``dim`` values): the MF ranking of the user's current tastes, which drift, blind to
    satiation."""
    return lambda obs: obs[:dim]


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Play one rendered episode, then the references and the policy on a few test users."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default=movielens_env.LONG_HORIZON_ID,
                        choices=list(movielens_env.VARIANTS))  # fmt: skip
    parser.add_argument("--dataset", default="synthetic", choices=movielens_env.DATASET_NAMES)
    parser.add_argument("--data-dir", default=None, help="GroupLens folder or zip (real data)")
    parser.add_argument("--users", type=int, default=12, help="test users to score on")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    env = gym.make(args.env_id, dataset=args.dataset, data_dir=args.data_dir, render_mode="ansi")
    spec = env.spec
    print(f"{spec.id}: user model {spec.kwargs['user_model']!r}, {spec.max_episode_steps} steps")
    print(f"Observation {env.observation_space.shape}, action {env.action_space.shape}\n")
    dim = env.action_space.shape[0]
    policy = user_vector_policy(dim)
    obs, _ = env.reset(seed=args.seed)
    episode_return, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        episode_return += reward
        done = terminated or truncated
    print(env.render())
    print(f"One episode of the user-vector policy: return {episode_return:+.3f}\n")

    # The same env on the held-out split, as the evaluation plays it, for a few test users.
    env_kwargs = {"dataset": args.dataset, "data_dir": args.data_dir, **spec.kwargs,
                  "max_episode_steps": spec.max_episode_steps}  # fmt: skip
    world = heldout_env(env_kwargs).world
    users = evaluation_users(world, 10)[: args.users]
    found = reference_returns(env_kwargs, users=users, planner=BeamPlanner(width=32))
    means = {name: float(values.mean()) for name, values in found.returns.items()}
    rng = np.random.default_rng(args.seed)
    random_policy = lambda obs: rng.uniform(-1, 1, dim)  # noqa: E731
    means["random"] = float(evaluate_online(random_policy, env_kwargs, users=users).mean())
    means["user vector"] = float(evaluate_online(policy, env_kwargs, users=users).mean())
    print(f"Mean return over {len(users)} test users (normalized: random 0, planner 100):")
    for name in ("random", "greedy", "user vector", "myopic", "planner", "ceiling"):
        score = normalized_score(means[name], means["random"], means["planner"])
        print(f"  {name:12s} {means[name]:+8.3f}   normalized {score:6.1f}")
    return means


if __name__ == "__main__":
    main()
