"""PNG plots of a benchmark: metric bars with 95% intervals, and learning curves."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from movielens_env.evaluation import names
from movielens_env.storage import atomic_write


def _save(figure: Figure, path: Path) -> Path:
    # Figures made without pyplot draw to files only: no backend is chosen or switched, so a
    # notebook or GUI that imports this module keeps its own.
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110), suffix=".png")
    return path


def plot_bars(
    table: dict[str, dict[str, tuple[float, float, int]]], path: Path, title: str
) -> Path:
    """One panel per headline metric: a bar per agent with its 95% interval over seeds."""
    metrics = [m for m in names.PLOTTED if any(m in values for values in table.values())]
    agents = list(table)
    columns = min(3, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.4 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis, metric in zip(axes.flat, metrics, strict=False):
        means = [table[a].get(metric, (np.nan, np.nan, 0))[0] for a in agents]
        halves = [table[a].get(metric, (np.nan, np.nan, 0))[1] for a in agents]
        errors = [0.0 if math.isnan(h) else h for h in halves]
        axis.bar(agents, means, yerr=errors, capsize=4, color="tab:blue", alpha=0.8)
        axis.set_title(metric)
        axis.set_xlabel("agent")
        axis.set_ylabel("mean return" if metric.startswith("online") else metric.split("/")[1])
        axis.tick_params(axis="x", labelrotation=30)
    for axis in list(axes.flat)[len(metrics) :]:
        axis.set_visible(False)
    figure.suptitle(f"{title}: mean over seeds, bars are 95% intervals")
    figure.tight_layout()
    return _save(figure, path)


def plot_learning_curves(
    records: Sequence[dict[str, Any]], path: Path, title: str, bins: int = 20
) -> Path | None:
    """Training episode return against environment steps, per RL agent (mean over seeds).

    With no RL agent in ``records``, nothing is drawn and an earlier grid's plot at ``path`` is
    removed, so that no curve of an agent the leaderboard beside it lacks is left there.
    """
    curves: dict[str, list[np.ndarray]] = defaultdict(list)
    for record in records:
        if record.get("learning_curve"):
            curves[record["agent"]].append(np.asarray(record["learning_curve"], dtype=np.float64))
    if not curves:
        if path.is_file() or path.is_symlink():
            path.unlink()
        return None
    figure = Figure(figsize=(7, 4.2))
    axis = figure.subplots()
    for agent, runs in curves.items():
        horizon = max(run[-1, 0] for run in runs)
        edges = np.linspace(0, horizon, bins + 1)
        per_seed = []
        for run in runs:
            which = np.clip(np.searchsorted(edges, run[:, 0], side="left") - 1, 0, bins - 1)
            sums = np.bincount(which, weights=run[:, 1], minlength=bins)
            counts = np.bincount(which, minlength=bins)
            per_seed.append(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan))
        stacked = np.vstack(per_seed)
        centres = (edges[:-1] + edges[1:]) / 2
        seeds_in_bin = (~np.isnan(stacked)).sum(axis=0)
        # A bin no seed's episode ended in stays NaN (a gap in the line), without a warning.
        mean = np.nansum(stacked, axis=0) / np.where(seeds_in_bin > 0, seeds_in_bin, np.nan)
        axis.plot(centres, mean, label=f"{agent} ({len(runs)} seeds)")
        if len(runs) > 1:
            axis.fill_between(
                centres, np.fmin.reduce(stacked, axis=0), np.fmax.reduce(stacked, axis=0), alpha=0.2
            )
    axis.set_xlabel("environment steps")
    axis.set_ylabel("training episode return")
    axis.set_title(f"{title}\nlearning curves: mean over seeds, band from min to max")
    axis.legend()
    figure.tight_layout()
    return _save(figure, path)


def plot_training(rows: Sequence[dict[str, float]], out_dir: Path, title: str) -> list[Path]:
    """``precision.png`` (precision@k on the test split) and ``return.png`` against episodes."""
    episodes = [row["episode"] for row in rows]
    figure = Figure(figsize=(7, 4.2))
    axis = figure.subplots()
    for metric in (m for m in rows[0] if "precision@" in m):
        axis.plot(episodes, [row[metric] for row in rows], marker="o", label=metric)
    axis.set_xlabel("training episodes")
    axis.set_ylabel("precision@k on the test split")
    axis.set_title(f"{title}: precision@k during training")
    axis.legend()
    figure.tight_layout()
    paths = [_save(figure, out_dir / "precision.png")]
    figure = Figure(figsize=(7, 4.2))
    axis = figure.subplots()
    axis.plot(
        episodes,
        [row["train_return"] for row in rows],
        marker="o",
        label="training episodes (with noise)",
    )
    axis.plot(
        episodes,
        [row[names.online_return("mf")] for row in rows],
        marker="o",
        label="test users, mf simulator",
    )
    axis.set_xlabel("training episodes")
    axis.set_ylabel("mean episode return")
    axis.set_title(f"{title}: return during training")
    axis.legend()
    figure.tight_layout()
    paths.append(_save(figure, out_dir / "return.png"))
    if "q_start" in rows[0]:  # DRR's learning diagnostics
        paths.append(_plot_diagnostics(rows, episodes, out_dir / "diagnostics.png", title))
    return paths


def _plot_diagnostics(
    rows: Sequence[dict[str, float]], episodes: list[float], path: Path, title: str
) -> Path:
    """The critic's value of the first state against the return it then gets, the TD error,
    and the actor's agreement with greedy, against training episodes."""
    figure = Figure(figsize=(12, 3.8))
    value, td, agree = figure.subplots(1, 3)
    value.plot(episodes, [row["q_start"] for row in rows], marker="o", label="Q(s0, mu(s0))")
    value.plot(
        episodes, [row["return_discounted"] for row in rows], marker="o",
        label="discounted test return",
    )  # fmt: skip
    value.set_title("critic: value vs return")
    value.legend()
    td.plot(episodes, [row["td_error"] for row in rows], marker="o")
    td.set_title("mean |TD error|")
    agree.plot(episodes, [row["greedy_agreement@1"] for row in rows], marker="o")
    agree.set_ylim(0.0, 1.0)
    agree.set_title("first item = greedy's (share of users)")
    for axis in (value, td, agree):
        axis.set_xlabel("training episodes")
    figure.suptitle(f"{title}: learning diagnostics")
    figure.tight_layout()
    return _save(figure, path)
