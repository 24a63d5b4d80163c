"""Many users at once: the native vector env, and what it buys over Gymnasium's SyncVectorEnv.

``gym.make_vec("MovieLensRec-v0", num_envs=N)`` returns MovieLensRec's own batched env: one
matrix product scores the catalogue for all N users, so a step of N users costs little more
than a step of one. This script steps it with a simple batched policy (recommend along each
user's own embedding), prints the mean episode return, then times both vectorizations.

    python examples/vector_env.py                       # synthetic data, 64 users at a time
    python examples/vector_env.py --num-envs 256 --dataset ml-1m --data-dir ~/data/ml-1m
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import movielens_env  # noqa: F401  (registers MovieLensRec-v0)


def user_embedding_policy(observations: np.ndarray, dim: int) -> np.ndarray:
    """A batched policy: each user's own MF embedding (the first ``dim`` values) as the action."""
    return observations[:, :dim]


def steps_per_second(envs: gym.vector.VectorEnv, steps: int) -> float:
    """Env steps per second of ``envs`` under random actions."""
    envs.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, envs.action_space.shape).astype(np.float32)
    start = time.perf_counter()
    for _ in range(steps):
        envs.step(actions)
    return steps * envs.num_envs / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    """Run the example."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50, help="vector steps per measurement")
    args = parser.parse_args(argv)
    kwargs = {"dataset": args.dataset, "data_dir": args.data_dir}

    envs = gym.make_vec("MovieLensRec-v0", num_envs=args.num_envs, **kwargs)
    dim = envs.single_action_space.shape[0]
    print(
        f"{type(envs).__name__}: {envs.num_envs} users, observations {envs.observation_space.shape}"
    )

    # One episode per sub-environment (10 steps); the next step would reset them.
    obs, info = envs.reset(seed=0)
    returns, ended = np.zeros(envs.num_envs), np.zeros(envs.num_envs, dtype=bool)
    for _ in range(10):
        obs, rewards, terminated, truncated, info = envs.step(user_embedding_policy(obs, dim))
        returns += rewards
        ended |= terminated | truncated
    print(
        f"mean return of one episode per user: {returns.mean():.3f} (users {info['user_id'][:4]}…)"
    )
    print(f"episodes ended: {ended.sum()} of {envs.num_envs}")

    native = steps_per_second(envs, args.steps)
    sync = gym.make_vec(
        "MovieLensRec-v0", num_envs=args.num_envs, vectorization_mode="sync", **kwargs
    )
    synced = steps_per_second(sync, max(1, args.steps // 5))
    print(f"steps/s: native {native:,.0f}, SyncVectorEnv {synced:,.0f} ({native / synced:.1f}x)")


if __name__ == "__main__":
    main()
