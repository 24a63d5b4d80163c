"""Train a DRR-ave agent and compare it with the popularity baseline on held-out ratings.

Shows the project's DRR API: a :class:`DRRConfig`, :func:`train_drr` on the env's train split,
then :func:`movielens_env.evaluation.evaluate` (offline precision/NDCG on the test split under
the ``rerank`` and ``full`` protocols, and the online return of one test episode per user) for
the trained agent and for popularity, printed as a small table.

The default budget is tiny so that it runs in seconds: 60 episodes, with updates starting after
200 transitions (``learning_starts``, 500 by default) so that the agent learns at all within
it. Such an agent is not expected to beat popularity; the paper's setting is thousands of
episodes (``--episodes 5000 --learning-starts 500``), minutes to hours on a CPU.

Run it (offline, on the generated ``synthetic`` data)::

    python examples/train_drr.py
    python examples/train_drr.py --episodes 2000 --out runs/drr-example
    python examples/train_drr.py --dataset ml-1m --data-dir ~/data/ml-1m --episodes 5000
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import torch

import movielens_env
from agents.baselines import PopularityRanker
from agents.drr.config import DRRConfig
from agents.drr.train import train_drr
from movielens_env import load_world
from movielens_env.evaluation import names
from movielens_env.evaluation.protocols import evaluate

METRICS = names.PLOTTED  # the metrics the leaderboard's plot shows


def print_table(summaries: dict[str, dict[str, float]]) -> None:
    """One row per metric, one column per agent (metrics an agent lacks are left out)."""
    columns = list(summaries)
    print(f"{'metric':22s}" + "".join(f"{name:>12s}" for name in columns))
    for metric in METRICS:
        values = [summaries[name].get(metric, math.nan) for name in columns]
        if all(math.isnan(v) for v in values):
            continue
        print(f"{metric:22s}" + "".join(f"{v:12.4f}" for v in values))


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Train DRR-ave, evaluate it and popularity, print the table; return both summaries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic", choices=movielens_env.DATASET_NAMES)
    parser.add_argument("--data-dir", default=None, help="GroupLens folder or zip (real data)")
    parser.add_argument("--episodes", type=int, default=60, help="training episodes (10 steps)")
    parser.add_argument(
        "--learning-starts", type=int, default=200, help="transitions before the first update"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="run folder for the checkpoint (optional)")
    args = parser.parse_args(argv)

    # The networks are small: one thread is as fast, and threads waiting on each other make
    # training and evaluation crawl when another process shares the cores.
    torch.set_num_threads(1)
    env_kwargs = {"dataset": args.dataset, "data_dir": args.data_dir}
    config = DRRConfig(
        state="drr-ave",
        learning_starts=args.learning_starts,
        eval_every=args.episodes,  # evaluate once, at the end
        checkpoint_every=0,
    )

    def progress(episode: int, episode_return: float) -> None:
        if episode % 10 == 0 or episode == args.episodes:
            print(f"episode {episode:5d}: training return {episode_return:+.3f}")

    run_dir = None if args.out is None else Path(args.out)
    result = train_drr(env_kwargs, config, args.episodes, args.seed, run_dir, on_episode=progress)

    world = load_world(**env_kwargs)
    summaries = {
        "drr-ave": evaluate(result.agent, env_kwargs, name="drr-ave").summary(),
        "popularity": evaluate(PopularityRanker(world), env_kwargs, name="popularity").summary(),
    }
    print(f"\nTest split of {args.dataset}, after {args.episodes} training episodes:\n")
    print_table(summaries)
    return summaries


if __name__ == "__main__":
    main()
