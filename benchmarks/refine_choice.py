"""Where a refined DRR run's choices lose against ``myopic-mf``: in the candidates its actor
proposes, or in the critic's choice among them.

Each run folder is a ``movielens-rec train`` or ``benchmark`` run of a DRR agent with
``refine_k``. Its trained agent plays one test episode per test user (the first ``--users``),
deterministically and with its episode memory where it has one, as the evaluation plays it.
At every step, each item is valued by the reward ``myopic-mf`` would expect of it now: MF's
predicted rating in the user's current state (satiation, drifted tastes), which the
observation shows. Per step, the script records that one-step reward for the item the env
played, for the best of the ``k`` candidates the actor's action ranks highest, and for the best
item in the catalogue (``myopic-mf``'s choice); whether the catalogue's best is a candidate;
the played item's rank among the candidates by that reward; and, across each step's
candidates, the correlation of the critic's value (and, with ``critic_heads``
``reward+future``, of its reward head) with it. The same, with each item valued two steps
deep (its reward now plus the best the next step can bring after it, on MF's ratings: the
first step of a two-step search, which beats myopic under drift), where the best in the
catalogue is sought among the 100 items best now and the candidates.

    python benchmarks/refine_choice.py RUN [RUN ...] --out benchmarks/results/refine-choice
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS = (
    ("played", "played item"),
    ("best_of_k", "best of the k candidates"),
    ("best", "best in the catalogue (myopic-mf's)"),
    ("best_is_candidate", "catalogue's best among the candidates"),
    ("rank", "played item's rank among the candidates (1: best)"),
    ("critic_corr", "correlation of the critic's Q with the reward, over the candidates"),
    ("reward_head_corr", "the same for the reward head (reward+future only)"),
    ("played_2step", "played item's two-step value (reward now + best reward next)"),
    ("best_of_k_2step", "best two-step value of the k candidates"),
    ("best_2step", "best two-step value among the 100 best now and the candidates"),
    ("best_2step_is_candidate", "that best among the candidates"),
    ("critic_corr_2step", "correlation of the critic's Q with the two-step value, candidates"),
    ("return", "the episodes' return (the env's rewards)"),
)


# Items best now among which the best two-step value is sought (with the candidates).
SHORTLIST = 100


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's over the entries where ``b`` is finite (``-inf``: an item the env would not
    recommend now); NaN where fewer than two are left or either side is constant."""
    keep = np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def measure(run: Path, users: int) -> dict[str, Any]:
    """The run's per-step means over the test episodes of its first ``users`` test users."""
    import torch

    from agents.drr.train import load_agent
    from movielens_env.errors import ArgumentError
    from movielens_env.evaluation.protocols import episode_steps, evaluation_users, heldout_env
    from movielens_env.evaluation.references import step_rewards, two_step_rewards
    from movielens_env.simulator.scoring import top_k_per_row

    agent, env_kwargs = load_agent(run)
    refiner = agent.refiner
    if refiner is None:
        raise ArgumentError(f"{run}: a run without refine_k has no candidates to compare")
    env = heldout_env(env_kwargs)
    horizon = episode_steps(env_kwargs)
    data = env.world.dataset
    internal = {int(raw): index for index, raw in enumerate(data.item_ids)}
    chosen = evaluation_users(env.world, env.history_len, env.eligible_users)[:users]
    steps: dict[str, list[float]] = {name: [] for name, _ in COLUMNS if name != "return"}
    returns = []
    for user in chosen:
        obs, _ = env.reset(options={"user_id": data.user_ids[user]})
        state, total = None, 0.0
        for _ in range(horizon):
            rewards = step_rewards(env, mf_ratings=True)
            batch = torch.as_tensor(obs[None], dtype=torch.float32)
            with torch.no_grad():
                protos = agent.actor(batch)
                # predict's state: the items the episode recommended (with the memory only)
                shown = None if state is None else torch.as_tensor(state)
                top, scores, mask = refiner.candidates(batch, protos, shown)
                valid = (scores[0] > -torch.inf).numpy()
                items = top[0].numpy()[valid]
                picks = refiner.catalogue.recommended_for_items(top, mask)[0][valid]
                repeated = batch.expand(len(items), -1)
                first, future = agent.critic.heads(
                    repeated, refiner.catalogue.playable[top[0][valid]], picks
                )
                q = agent.critic.value(first, future).numpy()
            # Valued before the step: the state the choice was made in.
            best_now = top_k_per_row(rewards[None], min(SHORTLIST, np.isfinite(rewards).sum()))
            pool = np.unique(np.concatenate([best_now[0], items]))
            deep = dict(zip(pool.tolist(), two_step_rewards(env, pool, True), strict=True))
            action, state = agent.predict(obs, state=state)
            obs, reward, terminated, truncated, info = env.step(action)
            played = internal[int(info["item_ids"][0])]
            candidate = rewards[items]
            candidate_2 = np.array([deep[i] for i in items.tolist()])
            # NaN where the env played an item outside the pool (not a candidate: rare)
            steps["played_2step"].append(deep.get(played, float("nan")))
            steps["best_of_k_2step"].append(candidate_2.max())
            best_2 = max(deep.values())
            steps["best_2step"].append(best_2)
            steps["best_2step_is_candidate"].append(float(candidate_2.max() >= best_2))
            steps["critic_corr_2step"].append(_correlation(q, candidate_2))
            steps["played"].append(rewards[played])
            steps["best_of_k"].append(candidate.max())
            steps["best"].append(rewards.max())
            steps["best_is_candidate"].append(float(candidate.max() >= rewards.max()))
            steps["rank"].append(1 + float((candidate > rewards[played]).sum()))
            steps["critic_corr"].append(_correlation(q, candidate))
            heads = future is not None
            steps["reward_head_corr"].append(
                _correlation(first.numpy(), candidate) if heads else float("nan")
            )
            total += float(reward)
            if terminated or truncated:
                break
        returns.append(total)
    means = {name: float(np.nanmean(values)) if np.isfinite(values).any() else None
             for name, values in steps.items()}  # fmt: skip
    return {
        "run": str(run),
        "refine_k": agent.config.refine_k,
        "env_kwargs": {key: str(value) for key, value in env_kwargs.items()},
        "users": len(chosen),
        "steps": len(steps["played"]),
        **means,
        "return": float(np.mean(returns)),
    }


def markdown(results: list[dict[str, Any]], command: str, machine: str) -> str:
    """One row per run, the columns explained below the table."""
    about = "\n\n".join((__doc__ or "").split("\n\n")[:2])
    names = [name for name, _ in COLUMNS]
    lines = [
        "# Refined DRR's choices against myopic-mf's", "", f"Command: `{command}`", "",
        f"Machine: {machine}", "", about, "",
        f"| run | k | users | steps | {' | '.join(names)} |",
        f"|---|---|---|---|{'---|' * len(names)}",
    ]  # fmt: skip
    for found in results:
        values = ["-" if found[n] is None else f"{found[n]:.3f}" for n in names]
        lines.append(
            f"| {found['run']} | {found['refine_k']} | {found['users']} | {found['steps']} | "
            f"{' | '.join(values)} |"
        )
    lines += ["", "Columns (one-step rewards, `(rating - 3) / 2`, as myopic-mf expects them):", ""]
    lines += [f"- `{name}`: {text}" for name, text in COLUMNS]
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    """Measure every run, print the report, write ``results.json`` and ``results.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="DRR run folders with refine_k")
    parser.add_argument("--users", type=int, default=200, help="test users per run (>= 1)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/refine-choice"))
    parser.add_argument(
        "--force", action="store_true", help="replace results another command wrote in --out"
    )
    from agents.options_once import parse_args

    args = parse_args(parser, argv)
    if args.users < 1:
        parser.error(f"--users must be at least 1, got {args.users}")

    from agents.benchmark.script_results import write_measured

    def measure_all() -> list[dict[str, Any]]:
        return [measure(run, args.users) for run in args.runs]

    return write_measured(
        parser, args.out, args.force, argv, "refine_choice.py", measure_all, markdown
    )


if __name__ == "__main__":
    from agents.benchmark.script_results import run_script

    sys.exit(run_script(main, "refine_choice.py"))
