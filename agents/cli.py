"""The ``movielens-rec`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import gymnasium as gym
import numpy as np

import movielens_env
from movielens_env.formats import DATASET_NAMES


def _rollout(args: argparse.Namespace) -> int:
    """Run a few episodes of a uniformly random policy and print what happened."""
    env = gym.make(
        movielens_env.ENV_ID, dataset=args.dataset, data_dir=args.data_dir, split=args.split,
        slate_size=args.slate_size, render_mode="ansi",
    )  # fmt: skip
    data = env.unwrapped.world.dataset
    print(
        f"MovieLensRec-v0 on {data.name}: {data.n_users} users, {data.n_items} items, "
        f"{data.n_ratings} ratings; observation {env.observation_space.shape}, "
        f"action {env.action_space.shape}"
    )
    env.action_space.seed(args.seed)
    returns, hits = [], 0
    for episode in range(args.episodes):
        _, info = env.reset(seed=args.seed + episode)
        print(f"\nEpisode {episode + 1}: user {info['user_id']}")
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, info = env.step(env.action_space.sample())
            total += reward
            hits += int(np.sum(info["hits"]))
            for item, rating, logged in zip(
                info["item_ids"], info["ratings"], info["logged"], strict=True
            ):
                title = data.title(int(data.item_index(item)))
                source = "logged" if logged else "simulated"
                print(f"  recommended {title!r} (item {item}): rating {rating:.2f} ({source})")
            done = terminated or truncated
        returns.append(total)
        print(f"  return {total:+.3f}")
    print(
        f"\nRandom policy, {args.episodes} episodes: mean return {np.mean(returns):+.3f}, "
        f"{hits} recommendations rated >= 4"
    )
    env.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``movielens-rec``."""
    parser = argparse.ArgumentParser(prog="movielens-rec", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    rollout = commands.add_parser("rollout", help="run a random policy for a few episodes")
    rollout.add_argument("--dataset", default="synthetic", choices=DATASET_NAMES)
    rollout.add_argument("--data-dir", default=None, help="GroupLens folder or zip")
    rollout.add_argument("--split", default="train", choices=("train", "test"))
    rollout.add_argument("--slate-size", type=int, default=1)
    rollout.add_argument("--episodes", type=int, default=3)
    rollout.add_argument("--seed", type=int, default=0)
    rollout.set_defaults(run=_rollout)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``movielens-rec`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (movielens_env.MovieLensRecError, ValueError) as exc:
        print(f"movielens-rec: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
