"""Quickstart: one episode of MovieLensRec-v0 with a random agent, rendered step by step.

Shows the Gymnasium loop on the recommendation env: ``gym.make`` with ``render_mode="ansi"``,
``reset``, ``step`` with an action (a vector in the item-embedding space; the env recommends the
items it scores best), ``render`` after every step, and the episode's return.

Run it (offline, on the generated ``synthetic`` data, a few seconds the first time while the
embeddings are fitted and cached)::

    python examples/quickstart.py
    python examples/quickstart.py --slate-size 3 --max-steps 5 --seed 1
    python examples/quickstart.py --dataset ml-100k --data-dir ~/data/ml-100k
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import gymnasium as gym

import movielens_env


def run_episode(env: gym.Env, seed: int) -> float:
    """Play one episode with uniformly random actions, print each step, return the return."""
    env.action_space.seed(seed)
    env.reset(seed=seed)
    print(env.render())
    episode_return, step, done = 0.0, 0, False
    while not done:
        action = env.action_space.sample()
        _, reward, terminated, truncated, info = env.step(action)
        step += 1
        episode_return += reward
        liked = int(info["hits"].sum())
        print(f"--- step {step}: reward {reward:+.3f}, {liked} of the slate rated >= 4")
        print(env.render())
        done = terminated or truncated
    return episode_return


def main(argv: Sequence[str] | None = None) -> float:
    """Parse the options, play one episode and print its return."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic", choices=movielens_env.DATASET_NAMES)
    parser.add_argument("--data-dir", default=None, help="GroupLens folder or zip (real data)")
    parser.add_argument("--slate-size", type=int, default=1, help="items recommended per step")
    parser.add_argument("--max-steps", type=int, default=10, help="episode length (T)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    env = gym.make(
        "MovieLensRec-v0",
        dataset=args.dataset,
        data_dir=args.data_dir,
        slate_size=args.slate_size,
        max_episode_steps=args.max_steps,
        render_mode="ansi",
    )
    print(f"Observation space: {env.observation_space}\nAction space: {env.action_space}\n")
    episode_return = run_episode(env, args.seed)
    env.close()
    print(f"Episode return: {episode_return:+.3f}")
    return episode_return


if __name__ == "__main__":
    main()
