"""What the lookahead is worth to trained DRR runs at decision time alone: their online return
on the test users as trained, and choosing by the lookahead at each discount asked.

``DRRConfig.lookahead`` values each of refinement's candidates by one step of planning on a
linear model of the observation and reward fit to the run's replay: the item's model reward
plus the discounted value of the best candidate in the next observation the model predicts
(its model reward plus the critic's future head; ``agents/drr/lookahead.py``). Here the same trained
weights choose both ways (``DRRAgent.plan_ahead``), so the difference is the decision rule's,
not the training data's. With ``--model-candidates``, each discount is measured with each
number of the candidates taken from the model's reward ranking over the catalogue
(``DRRConfig.model_candidates``; 0: the actor proposes all, the only way by default). Each run
folder is a ``movielens-rec train`` or ``benchmark`` run of a DRR agent with ``refine_k`` and
``critic_heads`` ``reward+future``.

    python benchmarks/lookahead_at_evaluation.py RUN [RUN ...] --discounts 0.5,1 \\
        --out benchmarks/results/lookahead-at-evaluation
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

TRAINED = "as trained"


def _listed(option: str, kind: type, what: str, allowed: str, fits: Callable[[Any], bool]):
    """An argparse type for ``option``: comma-separated ``kind`` values (``what``), each
    ``allowed`` (``fits``)."""

    def parse(text: str) -> list[Any]:
        try:
            values = [kind(part) for part in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{option}: {what} joined by commas, got {text!r}"
            ) from None
        if not all(fits(value) for value in values):
            raise argparse.ArgumentTypeError(f"{option}: each {allowed}, got {text!r}")
        return values

    return parse


_discounts = _listed("--discounts", float, "numbers", "in (0, 1]", lambda d: 0.0 < d <= 1.0)
_counts = _listed("--model-candidates", int, "whole numbers", ">= 0", lambda n: n >= 0)


def way(discount: float, proposed: int) -> str:
    """A result's name: the discount, and the model's candidates where there are any."""
    name = f"lookahead {discount:g}"
    return f"{name}, {proposed} model candidates" if proposed else name


def measure(run: Path, discounts: list[float], counts: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """The run's mean test return as trained, then with the lookahead at each discount, with
    each number of model candidates."""
    from agents.drr.train import load_agent
    from movielens_env.evaluation.protocols import evaluate_online

    agent, env_kwargs = load_agent(run)
    # Every way the run cannot choose is refused before the first evaluation's minutes.
    for proposed in counts:
        dataclasses.replace(agent.config, lookahead=discounts[0], model_candidates=proposed)
    returns = {TRAINED: float(evaluate_online(agent, env_kwargs).mean())}
    for discount in discounts:
        for proposed in counts:
            agent.plan_ahead(discount, proposed)
            returns[way(discount, proposed)] = float(evaluate_online(agent, env_kwargs).mean())
    return {"run": str(run), "env_kwargs": {k: str(v) for k, v in env_kwargs.items()}, **returns}


def markdown(results: list[dict[str, Any]], command: str, machine: str) -> str:
    """One row per run, then the mean ± 95% t-interval over runs."""
    from agents.benchmark.stats import mean_ci95

    about = "\n\n".join((__doc__ or "").split("\n\n")[:2])
    ways = [key for key in results[0] if key not in ("run", "env_kwargs")]
    lines = [
        "# The lookahead at evaluation only", "", f"Command: `{command}`", "",
        f"Machine: {machine}", "", about, "",
        "| run | " + " | ".join(ways) + " |", "|---|" + "---|" * len(ways),
    ]  # fmt: skip
    for found in results:
        lines.append(f"| {found['run']} | " + " | ".join(f"{found[w]:.3f}" for w in ways) + " |")
    if len(results) > 1:
        means = [mean_ci95([found[way] for found in results]) for way in ways]
        lines.append(
            "| mean over runs | " + " | ".join(f"{m:.3f} ± {h:.3f}" for m, h in means) + " |"
        )
    gains = [
        float(np.mean([found[way] / found[TRAINED] - 1 for found in results]))
        for way in ways[1:]
    ]  # fmt: skip
    lines += ["", "Mean gain over the runs: " + ", ".join(
        f"{way} {gain:+.1%}" for way, gain in zip(ways[1:], gains, strict=True)
    ), ""]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure every run, print the report, write ``results.json`` and ``results.md``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="DRR run folders (refined, split)")
    parser.add_argument("--discounts", type=_discounts, default=[0.5, 1.0])
    parser.add_argument(
        "--model-candidates", type=_counts, default=[0],
        help="candidates from the model's ranking, each number tried (each <= the run's refine_k)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/lookahead-at-evaluation")
    )
    parser.add_argument(
        "--force", action="store_true", help="replace results another command wrote in --out"
    )
    from agents.options_once import parse_args

    args = parse_args(parser, argv)

    from agents.benchmark.script_results import write_measured

    def measure_all() -> list[dict[str, Any]]:
        counts = tuple(args.model_candidates)
        return [measure(run, args.discounts, counts) for run in args.runs]

    return write_measured(
        parser, args.out, args.force, argv, "lookahead_at_evaluation.py", measure_all, markdown
    )


if __name__ == "__main__":
    from agents.benchmark.script_results import run_script

    sys.exit(run_script(main, "lookahead_at_evaluation.py"))
