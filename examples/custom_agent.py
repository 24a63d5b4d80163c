"""A third-party agent in a few lines, benchmarked next to random, popularity and MF.

Shows the two plug-in points: an agent is anything the evaluation accepts (here a *ranker*, an
object with ``rank(user, candidates, k)`` returning the best ``k`` candidates, internal ids, best
first), and :func:`agents.registry.register_agent` names it so that the benchmark trains and
evaluates it exactly like the built-in agents. The agent, "recency-popular", recommends what
most users liked in the latest quarter of the train period: no reinforcement learning, a classic
baseline where tastes drift over time (on the synthetic data, which has no drift, it ties with
popularity).

Run it (offline, on the generated ``synthetic`` data; writes ``leaderboard.md`` and
``leaderboard.csv`` into ``--out``, by default a new temporary folder)::

    python examples/custom_agent.py
    python examples/custom_agent.py --seeds 0,1,2 --out runs/custom-agent
    python examples/custom_agent.py --dataset ml-100k --data-dir ~/data/ml-100k

Importing this file registers the agent, so the ``movielens-rec`` command line can load it as a
plugin (with ``examples/`` on the module path)::

    PYTHONPATH=examples movielens-rec benchmark --plugin custom_agent --seeds 0 \\
        --agents random,popularity,mf,recency-popular --out runs/custom-agent
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import movielens_env
from agents.benchmark.leaderboard import aggregate, format_table, write_leaderboard
from agents.benchmark.runner import BenchmarkConfig, run_benchmark
from agents.registry import TrainContext, TrainedAgent, agent_names, register_agent
from movielens_env.evaluation import names

AGENT_NAME = "recency-popular"
BASELINES = ("random", "popularity", "mf")
SHOWN = tuple(name for name in names.RANKING if name.endswith("@10"))


class RecencyPopularityRanker:
    """Candidates by their number of positive train ratings in the recent past.

    Popularity drifts: what many users liked lately is a better guess than what many users
    liked over the whole log. Ties (items nobody liked lately) go to all-time popularity.

    Args:
        items, ratings, timestamps: the train ratings, one entry per rating.
        n_items: size of the catalogue.
        recent: share of the train period, the latest, whose positive ratings count.
    """

    def __init__(
        self,
        items: np.ndarray,
        ratings: np.ndarray,
        timestamps: np.ndarray,
        n_items: int,
        recent: float = 0.25,
    ) -> None:
        liked = ratings >= 4
        lately = liked & (timestamps >= np.quantile(timestamps, 1.0 - recent))
        recent_counts = np.bincount(items[lately], minlength=n_items)
        all_time = np.bincount(items[liked], minlength=n_items)
        # all-time counts only break ties: scaled below 1, they never outweigh a recent rating
        self.scores = recent_counts + all_time / (all_time.max(initial=0) + 1.0)

    def rank(self, user: int, candidates: np.ndarray, k: int) -> np.ndarray:
        """The ``k`` best candidates, the same order for every user."""
        return candidates[np.argsort(-self.scores[candidates], kind="stable")[:k]]


def train_recency_popularity(ctx: TrainContext) -> TrainedAgent:
    """The registry's trainer: count the run's train ratings (no RL budget, seed unused)."""
    world = ctx.world()
    train = world.split.train
    ranker = RecencyPopularityRanker(
        train.items, train.ratings, train.timestamps, world.dataset.n_items
    )
    return TrainedAgent(ranker)


if AGENT_NAME not in agent_names():
    register_agent(
        AGENT_NAME,
        train_recency_popularity,
        "most positive train ratings in the latest quarter of the train period",
        is_rl=False,
    )


def main(argv: Sequence[str] | None = None) -> Path:
    """Benchmark the custom agent with the baselines; print and write the leaderboard."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic", choices=movielens_env.DATASET_NAMES)
    parser.add_argument("--data-dir", default=None, help="GroupLens folder or zip (real data)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--out", default=None, help="results folder (default: a temporary one)")
    args = parser.parse_args(argv)

    out = Path(args.out or tempfile.mkdtemp(prefix="custom-agent-"))
    config = BenchmarkConfig(
        dataset=args.dataset,
        data_dir=args.data_dir,
        agents=(*BASELINES, AGENT_NAME),
        seeds=tuple(int(seed) for seed in args.seeds.split(",")),
        out_dir=out,
    )
    records = run_benchmark(config, progress=False)
    table = aggregate(records)
    title = f"MovieLensRec-v0, {args.dataset}: {AGENT_NAME} against the baselines"
    print(f"{title}\n\n{format_table(table, SHOWN)}\n")
    command = shlex.join(
        ["python", "examples/custom_agent.py", *(sys.argv[1:] if argv is None else argv)]
    )
    machine = f"{platform.platform()}, Python {platform.python_version()}"
    markdown, csv = write_leaderboard(table, out, title, command, machine)
    print(f"Leaderboard: {markdown} and {csv}")
    return out


if __name__ == "__main__":
    main()
