"""What an episode memory is worth to refined DRR runs: their online return on the test users
as trained, and with ``refine_exclude="history+shown"`` at evaluation only.

MovieLensRec-v0 never recommends an item twice in an episode, but only the liked items enter
the observed history: a refined agent without a memory may choose an item it recommended
earlier (and the user did not like), and the env then plays the next item along that vector.
With the memory, refinement chooses among the items not yet recommended, remembered through
``predict``'s ``state`` (which the evaluation passes back, as SB3's ``evaluate_policy`` does).
Each run folder is a ``movielens-rec train`` or ``benchmark`` run of a DRR agent with
``refine_k``; the same trained weights are evaluated both ways.

    python benchmarks/episode_memory.py RUN [RUN ...] --out benchmarks/results/episode-memory
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np

WAYS = ("as trained", "with the memory")


def measure(run: Path) -> dict[str, Any]:
    """The run's mean test return evaluated both ways."""
    from agents.drr.train import load_agent
    from movielens_env.errors import ArgumentError
    from movielens_env.evaluation.protocols import evaluate_online

    agent, env_kwargs = load_agent(run)
    if not agent.config.refine_k:
        raise ArgumentError(f"{run}: a run without refine_k has no choice to remember")
    returns = {WAYS[0]: float(evaluate_online(agent, env_kwargs).mean())}
    agent.config = dataclasses.replace(agent.config, refine_exclude="history+shown")
    returns[WAYS[1]] = float(evaluate_online(agent, env_kwargs).mean())
    return {"run": str(run), "env_kwargs": {k: str(v) for k, v in env_kwargs.items()}, **returns}


def markdown(results: list[dict[str, Any]], command: str, machine: str) -> str:
    """One row per run, then the mean ± 95% t-interval over runs and the mean gain."""
    from agents.benchmark.stats import mean_ci95

    about = "\n\n".join((__doc__ or "").split("\n\n")[:2])
    lines = [
        "# Episode memory for refined DRR", "", f"Command: `{command}`", "",
        f"Machine: {machine}", "", about, "",
        f"| run | {WAYS[0]} | {WAYS[1]} | gain |", "|---|---|---|---|",
    ]  # fmt: skip
    for found in results:
        before, after = found[WAYS[0]], found[WAYS[1]]
        lines.append(f"| {found['run']} | {before:.3f} | {after:.3f} | {after / before - 1:+.1%} |")
    means = [mean_ci95([found[way] for found in results]) for way in WAYS]
    gain = float(np.mean([found[WAYS[1]] / found[WAYS[0]] - 1 for found in results]))
    shown = " | ".join(f"{mean:.3f} ± {half:.3f}" for mean, half in means)
    lines += [f"| mean over runs | {shown} | {gain:+.1%} |", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure every run, print the report, write ``results.json`` and ``results.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="DRR run folders with refine_k")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/episode-memory"))
    parser.add_argument(
        "--force", action="store_true", help="replace results another command wrote in --out"
    )
    from agents.options_once import parse_args

    args = parse_args(parser, argv)

    from agents.benchmark.script_results import write_measured

    def measure_all() -> list[dict[str, Any]]:
        return [measure(run) for run in args.runs]

    return write_measured(
        parser, args.out, args.force, argv, "episode_memory.py", measure_all, markdown
    )


if __name__ == "__main__":
    from agents.benchmark.script_results import run_script

    sys.exit(run_script(main, "episode_memory.py"))
