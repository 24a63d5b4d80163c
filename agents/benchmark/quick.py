"""The quick benchmark, ``movielens-rec benchmark --quick``: what the project is for, in about
two minutes on two cores.

The same grid (random, popularity, MF and the paper's DRR-ave, 3 seeds) under two user models
of a small synthetic world: ``static``, where a user has no state, so ranking by MF (greedy) is
optimal and an RL agent can at best match it; and ``boredom+drift``, where what a user is shown
bores them of its genres and pulls their taste toward it, so planning pays and greedy is
beatable. The summary puts the reference policies (random, greedy, myopic and the planner, which
read the simulator) above the agents, with each one's normalized score (0 random, 100 the
planner), and says in words where the RL agent stands against greedy.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from movielens_env.evaluation import names
from movielens_env.evaluation.headroom import normalized_score

from ..config_values import strict_json
from .leaderboard import REFERENCE_ROWS

# Each option --quick sets where the command line leaves it unset.
QUICK = {
    "dataset": "synthetic-small",
    "agents": "random,popularity,mf,drr-ave",
    "seeds": "0,1,2",
    "timesteps": 1500,
    "planner_width": 32,
}
# Run one after the other, each in OUT/<model>, unless --user-model or --env-kwargs chooses one.
QUICK_USER_MODELS = ("static", "boredom+drift")
QUICK_OUT = Path("runs/benchmark-quick")
# The references the summary shows, in order (the table in leaderboard.md has them all).
SHOWN_REFERENCES = ("random", "greedy", "myopic", "planner")
# The reward model of the summary: the MF simulator (real data has no other).
MODEL = "mf"


@dataclass(frozen=True)
class Shown:
    """What one benchmark of the quick run printed and wrote, for the summary.

    Attributes:
        user_model: the env's user model.
        horizon: steps per episode.
        table: the aggregated leaderboard (agent -> metric -> (mean, half-width, seeds)).
        rl_agents: the agents of the table that learn from reward.
        references: the stored references (``references.json``).
        leaderboard: the path of ``leaderboard.md``.
        plots: the paths of its plots.
    """

    user_model: str
    horizon: int
    table: dict[str, dict[str, tuple[float, float, int]]]
    rl_agents: tuple[str, ...]
    references: dict[str, Any]
    leaderboard: Path
    plots: tuple[Path, ...]


def apply_quick_defaults(args: argparse.Namespace) -> None:
    """Set each of :data:`QUICK`'s options the command line left unset."""
    for key, value in QUICK.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def quick_parts(args: argparse.Namespace) -> list[argparse.Namespace]:
    """The benchmarks ``--quick`` runs: one per user model of :data:`QUICK_USER_MODELS` in
    ``OUT/<model>`` (``OUT``: ``--out``, else :data:`QUICK_OUT`; ``--env-kwargs`` applies to
    each), or the one user model the command line chose (``--user-model``, or ``user_model`` in
    ``--env-kwargs``), in ``--out``, else ``OUT/<model>``."""
    base = QUICK_OUT if args.out is None else Path(args.out)
    extra = (
        strict_json(args.env_kwargs, f"--env-kwargs {args.env_kwargs!r}") if args.env_kwargs else {}
    )
    chosen = args.user_model or (extra.get("user_model") if isinstance(extra, dict) else None)
    if chosen is not None:
        if args.out is not None:
            return [args]
        return [argparse.Namespace(**{**vars(args), "out": str(base / str(chosen))})]
    return [
        argparse.Namespace(**{**vars(args), "user_model": model, "out": str(base / model)})
        for model in QUICK_USER_MODELS
    ]


def quick_summary(parts: list[Shown], dataset: str, n_users: int, seeds: int) -> str:
    """The closing table of ``--quick``: references, then agents, a pair of columns (return,
    normalized score) per user model; then what a reader should see, and where the files are."""
    label_width = max(len(REFERENCE_ROWS[r]) for r in SHOWN_REFERENCES) + 4
    heads = [f"{p.user_model} ({p.horizon} steps)" for p in parts]
    column = 30
    lines = [
        f"What --quick shows: {dataset}, {n_users} held-out test users; online return of one "
        f"episode per user, rated by the MF simulator; agents: {seeds} seeds, mean ± 95% "
        "interval over seeds; references: one deterministic run, ± over users; normalized: 0 "
        "is random, 100 the planner.",
        "",
        " " * label_width + "".join(h.ljust(column) for h in heads),
        " " * label_width + "".join("return          normalized".ljust(column) for _ in parts),
        "References (they read the simulator, including the user's state; not learners):",
    ]
    for name in SHOWN_REFERENCES:
        cells = []
        for part in parts:
            refs = part.references["returns"][MODEL]
            mean, half = refs[name]
            normalized = normalized_score(mean, refs["random"][0], refs["planner"][0])
            cells.append(f"{_value(mean, half):<16}{normalized:.1f}".ljust(column))
        lines.append(f"  {REFERENCE_ROWS[name]}".ljust(label_width) + "".join(cells))
    lines.append("Agents (trained on the train split, evaluated on the held-out test users):")
    for agent in parts[0].table:
        cells = []
        for part in parts:
            values = part.table.get(agent, {})
            ret = values.get(names.online_return(MODEL))
            norm = values.get(names.normalized(MODEL))
            cell = "-" if ret is None else f"{_value(ret[0], ret[1]):<16}"
            cell += "" if norm is None else f"{norm[0]:.1f} ± {norm[1]:.1f}"
            cells.append(cell.ljust(column))
        lines.append(f"  {agent}".ljust(label_width) + "".join(cells))
    lines += ["", "What to see:"]
    for part in parts:
        lines.append(f"- {part.user_model}: {_reading(part)}")
    lines.append("")
    for part in parts:
        lines.append(f"Leaderboard ({part.user_model}): {part.leaderboard}")
        lines.append(f"Plots ({part.user_model}): {' and '.join(map(str, part.plots))}")
    return "\n".join(lines)


def _reading(part: Shown) -> str:
    """What the rows of one user model say: what the user's state is worth (myopic on MF's
    ratings, which knows the state but not the logged test ratings, against greedy), the
    planner's headroom, and where each RL agent stands against greedy (its interval against
    greedy's mean)."""
    refs = part.references["returns"][MODEL]
    greedy, state, planner = refs["greedy"][0], refs["myopic-mf"][0], refs["planner"][0]
    if state - greedy <= 0.01 * abs(greedy):
        said = (
            "the user has no state, so ranking by MF (greedy) is the best a policy can do "
            "without the logged test ratings (myopic and the planner read them, hence their "
            "lead); an RL agent can at best match greedy."
        )
    else:
        said = (
            f"what the user was shown changes what they like next: myopic on MF's ratings "
            f"(the state known, the log not) returns {state:.2f} and the planner "
            f"{planner:.2f} against greedy's {greedy:.2f}; that is the headroom RL is for."
        )
    for agent in part.rl_agents:
        found = part.table.get(agent, {}).get(names.online_return(MODEL))
        if found is None:
            continue
        mean, half, _ = found
        if mean - half > greedy:
            where = "above greedy (its whole interval)"
        elif mean + half < greedy:
            where = "below greedy (its whole interval)"
        else:
            where = "not distinguishable from greedy"
        said += f" {agent}: {_value(mean, half)}, {where}."
    return said


def _value(mean: float, half: float) -> str:
    return f"{mean:.2f}" if math.isnan(half) else f"{mean:.2f} ± {half:.2f}"
