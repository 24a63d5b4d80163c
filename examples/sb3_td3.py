"""Stable-Baselines3 TD3 straight on MovieLensRec-v0, then the project's evaluation.

Shows that the env is an ordinary continuous-action Gymnasium env: ``TD3("MlpPolicy", env)``
with Gaussian action noise trains on it unchanged, and the trained SB3 model plugs directly into
:func:`movielens_env.evaluation.evaluate` (it has SB3's ``predict``), here next to a random
ranking for reference.

The default budget is tiny so that it runs in seconds: 300 environment steps, of which the
first 100 are random (``learning_starts``), and a replay buffer sized to the budget (SB3's
default of a million transitions would reserve gigabytes for 1100-float observations). A
useful agent needs tens of thousands of steps (``--timesteps 20000``).

Run it (offline, on the generated ``synthetic`` data)::

    python examples/sb3_td3.py
    python examples/sb3_td3.py --timesteps 20000 --learning-starts 1000
    python examples/sb3_td3.py --dataset ml-100k --data-dir ~/data/ml-100k --timesteps 20000
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import TD3
from stable_baselines3.common.noise import NormalActionNoise

import movielens_env
from agents.baselines import RandomRanker
from movielens_env.evaluation import names
from movielens_env.evaluation.protocols import evaluate

METRICS = names.AFTER_TRAINING


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Train TD3, evaluate it and a random ranking, print the metrics; return both summaries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic", choices=movielens_env.DATASET_NAMES)
    parser.add_argument("--data-dir", default=None, help="GroupLens folder or zip (real data)")
    parser.add_argument("--timesteps", type=int, default=300, help="environment steps")
    parser.add_argument("--learning-starts", type=int, default=100, help="random steps first")
    parser.add_argument("--noise", type=float, default=0.1, help="std of the action noise")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    # The networks are small: one thread is as fast, and threads waiting on each other make
    # training crawl when another process shares the cores.
    torch.set_num_threads(1)
    env_kwargs = {"dataset": args.dataset, "data_dir": args.data_dir}
    env = gym.make("MovieLensRec-v0", **env_kwargs)
    dim = env.action_space.shape[0]
    model = TD3(
        "MlpPolicy",
        env,
        action_noise=NormalActionNoise(np.zeros(dim), args.noise * np.ones(dim)),
        learning_starts=args.learning_starts,
        buffer_size=max(args.timesteps, 1),
        gamma=0.9,  # 10-step episodes
        seed=args.seed,
    )
    model.learn(total_timesteps=args.timesteps)

    summaries = {
        "td3": evaluate(model, env_kwargs, name="td3").summary(),
        "random": evaluate(RandomRanker(args.seed), env_kwargs, name="random").summary(),
    }
    print(f"Test split of {args.dataset}, TD3 after {args.timesteps} steps:")
    for name, summary in summaries.items():
        shown = ", ".join(f"{metric} {summary[metric]:.4f}" for metric in METRICS)
        print(f"  {name:8s} {shown}")
    return summaries


if __name__ == "__main__":
    main()
