"""Headroom: how much each user model leaves to gain over greedy and myopic recommendation.

For every user model (each with the horizon its registered variant has) and every test user,
one online test-split episode of: random, popularity, greedy (the MF ranking), myopic (the best
reward now under the true user model), the planner (beam search over episodes on copies of the
user model; here it searches under ``static`` too, as the control) and the static ceiling (the
user's top-T static rewards). Means with 95% t-intervals over users; the planner's cost per user.

    python benchmarks/headroom.py --dataset ml-100k --out benchmarks/results/headroom/ml-100k
    python benchmarks/headroom.py --dataset synthetic --out benchmarks/results/headroom/synthetic

The targets (the user-dynamics issue): under ``boredom`` the planner returns >= 1.2 x greedy;
under the default long-horizon variant (``boredom+drift``) >= 1.2 x greedy and >= 1.05 x myopic;
under ``static`` within 1% of myopic (with no user state the best step now is the best episode:
if planning paid there, the planner or the env would be wrong).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

USER_MODELS = ("static", "boredom", "boredom+drift", "boredom+drift+patience")
POLICIES = ("random", "popularity", "greedy", "myopic", "myopic-mf", "planner", "ceiling")
TARGETS = {  # user model -> (reference, minimum ratio planner / reference, maximum or None)
    "static": [("myopic", 0.99, 1.01)],
    "boredom": [("greedy", 1.2, None)],
    "boredom+drift": [("greedy", 1.2, None), ("myopic", 1.05, None)],
}


def measure(
    dataset: str, data_dir: str | None, user_model: str, width: int, limit: int | None
) -> dict[str, Any]:
    """Every policy's per-user returns under one user model, per reward model."""
    from agents.baselines import PopularityRanker, RandomRanker
    from movielens_env import variant_kwargs
    from movielens_env.evaluation.headroom import reference_returns
    from movielens_env.evaluation.protocols import (
        evaluate_online,
        evaluation_users,
        heldout_env,
        online_reward_models,
    )
    from movielens_env.evaluation.references import BeamPlanner

    env_kwargs = {"dataset": dataset, "data_dir": data_dir, **variant_kwargs(user_model)}
    env = heldout_env(env_kwargs)
    users = evaluation_users(env.world, env.history_len, env.eligible_users)[:limit]
    models = online_reward_models(env.world)
    out: dict[str, Any] = {"horizon": env_kwargs["max_episode_steps"], "n_users": len(users)}
    for model in models:
        planner = BeamPlanner(width=width, search_static=True)
        found = reference_returns(env_kwargs, model, users, planner)
        returns = dict(found.returns)
        for name, agent in (
            ("random", RandomRanker(0)),
            ("popularity", PopularityRanker(env.world)),
        ):
            returns[name] = evaluate_online(agent, env_kwargs, model, users, name=name)
        out[model] = {
            "returns": {name: returns[name].tolist() for name in POLICIES},
            "planner_seconds_per_user": found.seconds["planner"] / len(users),
        }
        means = ", ".join(f"{name} {np.mean(returns[name]):.3f}" for name in POLICIES)
        cost = out[model]["planner_seconds_per_user"]
        print(f"  {user_model} ({model}): {means}; planner {cost:.3f} s/user", flush=True)
    return out


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Means, intervals, ratios and paired differences of the per-user returns."""
    from agents.benchmark.stats import mean_ci95

    summary: dict[str, Any] = {}
    for user_model, found in results.items():
        for model in ("mf", "oracle"):
            if model not in found:
                continue
            returns = {k: np.asarray(v) for k, v in found[model]["returns"].items()}
            planner = returns["planner"]
            summary[f"{user_model}/{model}"] = {
                "horizon": found["horizon"],
                "n_users": found["n_users"],
                "means": {k: mean_ci95(v) for k, v in returns.items()},
                "planner_over": {
                    k: float(planner.mean() / returns[k].mean()) for k in ("greedy", "myopic")
                },
                "planner_minus_myopic": mean_ci95(planner - returns["myopic"]),
                "planner_seconds_per_user": found[model]["planner_seconds_per_user"],
            }
    return summary


def verdicts(summary: dict[str, Any]) -> list[str]:
    """Each target, met or missed, with the measured ratio (on the ``mf`` simulator)."""
    lines = []
    for user_model, checks in TARGETS.items():
        row = summary.get(f"{user_model}/mf")
        if row is None:
            continue
        for reference, low, high in checks:
            ratio = row["planner_over"][reference]
            met = ratio >= low and (high is None or ratio <= high)
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            lines.append(
                f"- {'MET' if met else 'MISSED'}: `{user_model}`: planner / {reference} = "
                f"{ratio:.3f} (target {bound})"
            )
    return lines


def markdown(summary: dict[str, Any], command: str, machine: str, data: str) -> str:
    """The table and the verdicts as Markdown."""
    lines = [f"# Headroom: {data}", "", f"Command: `{command}`", "", f"Machine: {machine}", ""]
    lines += [
        "One online test-split episode per test user for every policy; mean return ± "
        "half-width of the 95% t-interval over users. `planner - myopic` is the paired "
        "per-user difference. Rewards are `(rating - 3) / 2` per item, `(rating - 1) / 4` "
        "under `patience`; each user model runs over the horizon of its registered variant.",
        "", "## Targets (`mf` simulator)", "", *verdicts(summary), "",
    ]  # fmt: skip
    header = ["user model (simulator)", "T", *POLICIES, "planner / greedy", "planner / myopic",
              "planner - myopic", "planner s/user"]  # fmt: skip
    lines += ["## Returns", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, row in summary.items():
        user_model, model = key.split("/")
        cells = [f"`{user_model}` ({model})", str(row["horizon"])]
        cells += [f"{m:.3f} ± {h:.3f}" for m, h in (row["means"][p] for p in POLICIES)]
        cells += [f"{row['planner_over']['greedy']:.3f}", f"{row['planner_over']['myopic']:.3f}"]
        cells += ["{:.3f} ± {:.3f}".format(*row["planner_minus_myopic"])]
        cells += [f"{row['planner_seconds_per_user']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    users = sorted({row["n_users"] for row in summary.values()})
    lines += ["", f"Test users: {', '.join(map(str, users))}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure every user model, print the report, write ``results.json`` and ``results.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from agents.benchmark.script_results import add_data_options

    add_data_options(parser, "headroom")
    parser.add_argument("--user-models", default=",".join(USER_MODELS))
    parser.add_argument("--width", type=int, default=128, help="the planner's beam width")
    parser.add_argument("--users", type=int, default=None, help="only the first N test users")
    parser.add_argument(
        "--force", action="store_true", help="replace results another command wrote in --out"
    )
    from agents.options_once import parse_args

    args = parse_args(parser, argv)

    from agents.benchmark.script_results import script_results
    from movielens_env import variant_kwargs
    from movielens_env.errors import MovieLensRecError
    from movielens_env.evaluation.protocols import (
        evaluation_users,
        heldout_env,
        online_reward_models,
    )
    from movielens_env.evaluation.references import BeamPlanner

    command = "python " + shlex.join(["benchmarks/headroom.py", *(argv or sys.argv[1:])])
    out = args.out = args.out or Path("benchmarks/results/headroom") / args.dataset
    if args.users is not None and args.users < 1:
        parser.error(f"--users must be at least 1, got {args.users}")
    # Every user model's planner is checked before the first is measured (hours, then lost).
    try:
        args.user_models = _user_models(args.user_models)
        env = heldout_env({"dataset": args.dataset, "data_dir": args.data_dir})
        users = evaluation_users(env.world, env.history_len, env.eligible_users)[: args.users]
        episodes = len(users) * len(online_reward_models(env.world))
        planner = BeamPlanner(width=args.width, search_static=True)
        for user_model in args.user_models:
            planner.check_plans(env, variant_kwargs(user_model)["max_episode_steps"], episodes)
    except MovieLensRecError as exc:
        parser.error(str(exc))
    try:
        with script_results(out, command, args.force, "headroom.py"):
            report = _measure_all(args, command)
    except MovieLensRecError as exc:
        parser.error(str(exc))
    print(report)
    return 0


def _user_models(text: str) -> list[str]:
    """The user models ``--user-models`` names, by their canonical names (``drift+boredom`` is
    ``boredom+drift``, whose targets the report checks).

    Raises:
        ArgumentError: an unknown user model, or one named twice.
    """
    from movielens_env import variant_kwargs
    from movielens_env.errors import ArgumentError

    names: list[str] = []
    for part in text.split(","):
        name = variant_kwargs(part)["user_model"]
        if name in names:
            raise ArgumentError(f"--user-models names {name!r} twice (as {text!r})")
        names.append(name)
    return names


def _measure_all(args: argparse.Namespace, command: str) -> str:
    """Measure every user model, write the results into ``args.out``; the report."""
    from agents.benchmark.machine import machine_description
    from agents.benchmark.script_results import write_script_results
    from agents.threads import torch_threads
    from movielens_env import load_world

    start = time.perf_counter()
    results = {}
    with torch_threads(1):
        for user_model in args.user_models:
            results[user_model] = measure(
                args.dataset, args.data_dir, user_model, args.width, args.users
            )
    summary = summarize(results)
    data = load_world(dataset=args.dataset, data_dir=args.data_dir).dataset
    described = (
        f"{data.name} ({data.n_users} users, {data.n_items} items, {data.n_ratings} ratings)"
    )
    report = markdown(summary, command, machine_description(), described)
    report += f"\nWall time of the whole run: {(time.perf_counter() - start) / 60:.1f} min.\n"
    payload = {"command": command, "machine": machine_description(), "summary": summary,
               "per_user": results}  # fmt: skip
    write_script_results(args.out, json.dumps(payload), report)
    return report


if __name__ == "__main__":
    from agents.benchmark.script_results import run_script

    sys.exit(run_script(main, "headroom.py"))
