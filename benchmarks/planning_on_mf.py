"""What planning reaches on what an agent can know: the planner on MF's ratings (``planner-mf``)
beside myopic, ``myopic-mf`` and the planner, which read the held-out log.

For each user model (with the horizon its registered variant has) and each of the first
``--users`` test users, one online test-split episode of each reference (`mf` simulator): the
env pays the true rewards whatever a reference planned on. Means with 95% t-intervals over
users. Where ``planner-mf`` is above myopic, an agent that sees only the state and MF's fit
can beat myopic by planning; where it is below a target, no such agent is known to reach it.
With ``--depths``, ``planner-mf`` also replans every step looking only that many steps ahead
(``planner-mf-depthH``): how far ahead a policy must look to reach the full search's return.

    python benchmarks/planning_on_mf.py --dataset ml-100k --users 200 \
        --out benchmarks/results/planning-on-mf/ml-100k
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

POLICIES = ("myopic", "myopic-mf", "planner-mf", "planner")


def columns(depths: tuple[int, ...]) -> tuple[str, ...]:
    """The policies measured, in the table's order."""
    receding = tuple(f"planner-mf-depth{depth}" for depth in depths)
    return (*POLICIES[:2], *receding, *POLICIES[2:])


def measure(
    dataset: str,
    data_dir: str | None,
    user_model: str,
    users: int | None,
    width: int,
    depths: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Each reference's mean return ± 95% t-interval over the users, under ``user_model``."""
    from agents.benchmark.stats import mean_ci95
    from movielens_env import variant_kwargs
    from movielens_env.evaluation.protocols import evaluate_online, evaluation_users, heldout_env
    from movielens_env.evaluation.references import BeamPlanner, MyopicPolicy

    env_kwargs = {"dataset": dataset, "data_dir": data_dir, **variant_kwargs(user_model)}
    env = heldout_env(env_kwargs)
    chosen = evaluation_users(env.world, env.history_len, env.eligible_users)[:users]
    policies = {
        "myopic": MyopicPolicy(), "myopic-mf": MyopicPolicy(mf_ratings=True),
        "planner-mf": BeamPlanner(width=width, mf_ratings=True),
        "planner": BeamPlanner(width=width),
        **{f"planner-mf-depth{d}": BeamPlanner(width=width, mf_ratings=True, depth=d)
           for d in depths},
    }  # fmt: skip
    found: dict[str, Any] = {"horizon": env_kwargs["max_episode_steps"], "users": len(chosen)}
    for name in columns(depths):
        policy = policies[name]
        returns = evaluate_online(policy, env_kwargs, users=chosen, name=name)
        found[name] = mean_ci95(returns.tolist())
    return found


def markdown(results: dict[str, Any], command: str, machine: str) -> str:
    """One row per user model, then planner-mf's ratio to myopic and myopic-mf."""
    about = "\n\n".join((__doc__ or "").split("\n\n")[:2])
    first = next(iter(results.values()), {})
    shown = [name for name in first if name not in ("horizon", "users")]  # measure's order
    lines = [
        "# Planning on MF's ratings", "", f"Command: `{command}`", "", f"Machine: {machine}", "",
        about, "", f"| user model | steps | users | {' | '.join(shown)} | planner-mf / myopic "
        "| planner-mf / myopic-mf |", f"|---|---|---|{'---|' * (len(shown) + 2)}",
    ]  # fmt: skip
    for model, found in results.items():
        cells = [f"{found[name][0]:.3f} ± {found[name][1]:.3f}" for name in shown]
        mf_plan = found["planner-mf"][0]
        ratios = [f"{mf_plan / found[name][0]:.3f}" for name in ("myopic", "myopic-mf")]
        lines.append(
            f"| {model} | {found['horizon']} | {found['users']} | {' | '.join(cells)} | "
            f"{' | '.join(ratios)} |"
        )
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    """Measure every user model, print the report, write ``results.json`` and ``results.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from agents.benchmark.script_results import add_data_options

    add_data_options(parser, "planning-on-mf")
    parser.add_argument("--user-models", default="boredom,boredom+drift")
    parser.add_argument("--users", type=int, default=None, help="only the first N test users")
    parser.add_argument("--width", type=int, default=128, help="the planners' beam width")
    parser.add_argument(
        "--depths", default="",
        help="comma-separated lookahead depths of receding-horizon planner-mf columns (e.g. 2,4)",
    )  # fmt: skip
    parser.add_argument(
        "--force", action="store_true", help="replace results another command wrote in --out"
    )
    from agents.options_once import parse_args

    args = parse_args(parser, argv)
    if args.users is not None and args.users < 1:
        parser.error(f"--users must be at least 1, got {args.users}")

    from agents.benchmark.script_results import write_measured
    from movielens_env import variant_kwargs
    from movielens_env.errors import MovieLensRecError
    from movielens_env.evaluation.references import BeamPlanner

    out = args.out or Path("benchmarks/results/planning-on-mf") / args.dataset
    try:  # refused before any measuring
        BeamPlanner(width=args.width)
        parts = [d.strip() for d in args.depths.split(",") if d.strip()]
        if not all(d.isdigit() for d in parts):
            parser.error(f"--depths: expected whole numbers joined by commas, got {args.depths!r}")
        depths = tuple(int(d) for d in parts)
        for depth in depths:
            BeamPlanner(width=args.width, depth=depth)
        models = [variant_kwargs(name)["user_model"] for name in args.user_models.split(",")]
    except MovieLensRecError as exc:
        parser.error(str(exc))

    def measure_all() -> dict[str, Any]:
        return {
            model: measure(args.dataset, args.data_dir, model, args.users, args.width, depths)
            for model in models
        }

    return write_measured(parser, out, args.force, argv, "planning_on_mf.py", measure_all, markdown)


if __name__ == "__main__":
    from agents.benchmark.script_results import run_script

    sys.exit(run_script(main, "planning_on_mf.py"))
