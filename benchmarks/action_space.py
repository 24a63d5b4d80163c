"""What the action space allows: how close policies that act through item vectors get to
``myopic-mf``, the best policy that does not plan and does not read the held-out log.

An action scores the catalogue by its inner product with each item vector, so a policy picks
items only through a direction. For every user model and every test user, one online
test-split episode of:

- ``user vector``: the action is the observation's user vector: MF's ranking of the user's
  current tastes (drifted, under ``drift``), blind to satiation (the ``greedy`` reference ranks
  by the fitted tastes, so under ``drift`` it differs);
- ``linear c=C`` (user models with ``boredom``): ``u - C * lam * B s``, a policy linear in the
  observation: the user vector ``u`` less the observed satiation ``s`` mapped into item-vector
  space by ``B``, the least-squares fit of the items' genre weights on their vectors (over the
  items in some test user's MF top 20), ``lam`` the satiation strength;
- ``myopic-mf``: each step the item with the best MF-rated reward now, in the user's current
  state, chosen freely (the reference);
- ``myopic-mf by its vector``: the same choice played through the action space, the action
  being the chosen item's own vector; ``played`` is the share of steps where the env
  recommended exactly that item;
- ``top-K rerank``: the ``K`` candidates the user vector ranks highest, re-ranked by
  ``myopic-mf``'s reward now and the best played by its vector: a Wolpertinger policy
  (Dulac-Arnold et al., 2015) whose actor stays at MF and whose critic knows the one-step value.

These are privileged diagnostics (they read the simulator, as the references do), never agents.

    python benchmarks/action_space.py --dataset ml-100k \
        --out benchmarks/results/action-space/ml-100k
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

USER_MODELS = ("static", "boredom", "boredom+drift")
LINEAR_SCALES = (0.5, 1.0, 2.0)
RERANK_KS = (5, 10, 20, 50)
TOP_FOR_FIT = 20


def _play(env: Any, users: np.ndarray, horizon: int, choose: Callable) -> tuple[list, float]:
    """One episode per user, each step playing the item vector of ``choose(env, obs)``; the
    returns and the share of steps where the env recommended the chosen item."""
    vectors = env.vectors.items
    returns, played, steps = [], 0, 0
    for user in users:
        obs, _ = env.reset(options={"user_id": env.world.dataset.user_ids[user]})
        total = 0.0
        for _ in range(horizon):
            item = choose(env, obs)
            # A little of the user vector breaks ties for items whose vector is all zeros.
            action = vectors[item] + 1e-4 * obs[: vectors.shape[1]]
            obs, reward, terminated, truncated, info = env.step(action / np.abs(action).max())
            total += float(reward)
            played += int(env.world.dataset.item_ids[item] == info["item_ids"][0])
            steps += 1
            if terminated or truncated:
                break
        returns.append(total)
    return returns, played / max(steps, 1)


def _reranker(k: int | None) -> Callable:
    """The candidate with the best ``myopic-mf`` reward now, among the user vector's top ``k``
    (all candidates when ``k`` is None)."""
    from movielens_env.evaluation.references import step_rewards

    def choose(env: Any, obs: np.ndarray) -> int:
        rewards = step_rewards(env, mf_ratings=True)
        candidates = np.flatnonzero(np.isfinite(rewards))
        if k is not None:
            scores = env.vectors.items64[candidates] @ obs[: env.vectors.dim].astype(np.float64)
            candidates = candidates[np.argsort(-scores, kind="stable")[:k]]
        return int(candidates[np.argmax(rewards[candidates])])

    return choose


def _linear_policy(env: Any) -> Callable[[float], Callable]:
    """``scale -> (obs -> u - scale * lam * B s)`` (see the module's docstring): ``B`` is
    fitted once for every scale."""
    model, vectors = env.user_model, env.vectors
    fitted = vectors.fitted_users.astype(np.float64) @ vectors.items64.T
    fit_items = np.unique(np.argsort(-fitted, axis=1)[:, :TOP_FOR_FIT])
    weights = model.weights[fit_items]
    mapping, *_ = np.linalg.lstsq(
        vectors.items64[fit_items], weights - weights.mean(axis=0), rcond=None
    )
    dim, start = vectors.dim, (env.history_len + 1) * vectors.dim
    strength = model.config.satiation_strength

    def scaled(scale: float) -> Callable:
        def act(obs: np.ndarray) -> np.ndarray:
            obs = np.asarray(obs, dtype=np.float64)
            satiation = obs[..., start : start + mapping.shape[1]]
            return (obs[..., :dim] - scale * strength * satiation @ mapping.T).astype(np.float32)

        return act

    return scaled


def measure(
    dataset: str, data_dir: str | None, user_model: str, limit: int | None
) -> dict[str, Any]:
    """Every policy's per-user returns (and played shares) under one user model."""
    from movielens_env import variant_kwargs
    from movielens_env.evaluation.protocols import evaluate_online, evaluation_users, heldout_env
    from movielens_env.evaluation.references import MyopicPolicy

    env_kwargs = {"dataset": dataset, "data_dir": data_dir, **variant_kwargs(user_model)}
    env = heldout_env(env_kwargs)
    horizon = env_kwargs["max_episode_steps"]
    users = evaluation_users(env.world, env.history_len, env.eligible_users)[:limit]
    dim = env.vectors.dim
    returns: dict[str, list[float]] = {
        "user vector": evaluate_online(lambda obs: obs[..., :dim], env_kwargs, users=users).tolist()
    }
    if env.user_model.config.boredom:
        linear = _linear_policy(env)
        for scale in LINEAR_SCALES:
            policy = linear(scale)
            returns[f"linear c={scale:g}"] = evaluate_online(
                policy, env_kwargs, users=users
            ).tolist()
    played: dict[str, float] = {}
    for name, k in (
        ("myopic-mf by its vector", None),
        *((f"top-{k} rerank", k) for k in RERANK_KS),
    ):
        returns[name], played[name] = _play(env, users, horizon, _reranker(k))
    reference = MyopicPolicy(mf_ratings=True)
    returns["myopic-mf"] = evaluate_online(
        reference, env_kwargs, users=users, name=reference.name
    ).tolist()
    line = ", ".join(f"{name} {np.mean(values):.3f}" for name, values in returns.items())
    print(f"  {user_model}: {line}", flush=True)
    return {"horizon": horizon, "n_users": len(users), "returns": returns, "played": played}


def markdown(results: dict[str, Any], command: str, machine: str, data: str) -> str:
    """One table per user model: mean return ± 95% t-interval over users, ratio to
    ``myopic-mf``, and the share of steps that played the chosen item."""
    from agents.benchmark.stats import mean_ci95

    about = "\n\n".join((__doc__ or "").split("\n\n")[1:4])
    lines = [f"# What the action space allows: {data}", "", f"Command: `{command}`", "",
             f"Machine: {machine}", "", about, ""]  # fmt: skip
    for user_model, found in results.items():
        reference = float(np.mean(found["returns"]["myopic-mf"]))
        title = f"## `{user_model}` ({found['horizon']} steps, {found['n_users']} test users)"
        lines += [title, "", "| policy | return | / myopic-mf | played |", "|---|---|---|---|"]
        for name, values in found["returns"].items():
            mean, half = mean_ci95(values)
            share = found["played"].get(name)
            shown = "-" if share is None else f"{share:.1%}"
            lines.append(f"| {name} | {mean:.3f} ± {half:.3f} | {mean / reference:.3f} | {shown} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure every user model, print the report, write ``results.json`` and ``results.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from agents.benchmark.script_results import add_data_options

    add_data_options(parser, "action-space")
    parser.add_argument("--user-models", default=",".join(USER_MODELS))
    parser.add_argument("--users", type=int, default=None, help="only the first N test users")
    parser.add_argument(
        "--force", action="store_true", help="replace results another command wrote in --out"
    )
    from agents.options_once import parse_args

    args = parse_args(parser, argv)

    from agents.benchmark.machine import machine_description
    from agents.benchmark.script_results import script_results, write_script_results
    from agents.threads import torch_threads
    from movielens_env import load_world, variant_kwargs
    from movielens_env.errors import MovieLensRecError

    command = "python " + shlex.join(["benchmarks/action_space.py", *(argv or sys.argv[1:])])
    out = args.out or Path("benchmarks/results/action-space") / args.dataset
    if args.users is not None and args.users < 1:
        parser.error(f"--users must be at least 1, got {args.users}")
    try:
        user_models = [variant_kwargs(name)["user_model"] for name in args.user_models.split(",")]
        with script_results(out, command, args.force, "action_space.py"), torch_threads(1):
            start = time.perf_counter()
            results = {
                name: measure(args.dataset, args.data_dir, name, args.users) for name in user_models
            }
            data = load_world(dataset=args.dataset, data_dir=args.data_dir).dataset
            described = f"{data.name} ({data.n_users} users, {data.n_items} items)"
            report = markdown(results, command, machine_description(), described)
            report += (
                f"\nWall time of the whole run: {(time.perf_counter() - start) / 60:.1f} min.\n"
            )
            payload = {"command": command, "machine": machine_description(), "results": results}
            write_script_results(out, json.dumps(payload), report)
    except MovieLensRecError as exc:
        parser.error(str(exc))
    print(report)
    return 0


if __name__ == "__main__":
    from agents.benchmark.script_results import run_script

    sys.exit(run_script(main, "action_space.py"))
