"""Recommendations as ``user,item,rank`` CSV (raw ids), and the metrics recomputed from one."""

from __future__ import annotations

import csv
import os

import numpy as np

from ..errors import ArgumentError
from ..simulator.world import RecWorld
from ..storage import atomic_write
from . import names
from .metrics import coverage_at_k, per_user_metrics
from .protocols import DEFAULT_KS, EvaluationResult, relevant_items


def export_recommendations(
    result: EvaluationResult, world: RecWorld, protocol: str, path: str | os.PathLike[str]
) -> None:
    """Write ``user,item,rank`` (raw ids, rank from 1) for one protocol, atomically."""
    top = result.top_items[protocol]
    rows = [
        (world.dataset.user_ids[user], world.dataset.item_ids[item], rank + 1)
        for user, items in zip(result.users, top, strict=True)
        for rank, item in enumerate(items)
        if item >= 0
    ]

    def write(tmp) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(("user", "item", "rank"))
            writer.writerows(rows)

    atomic_write(path, write, suffix=".csv")


def metrics_from_recommendations(
    path: str | os.PathLike[str], world: RecWorld, ks: tuple[int, ...] = DEFAULT_KS
) -> dict[str, float]:
    """Recompute the offline metrics of an exported ``user,item,rank`` file from the test split."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    users_raw = np.array([int(r["user"]) for r in rows], dtype=np.int64)
    items = world.dataset.item_index(np.array([int(r["item"]) for r in rows], dtype=np.int64))
    ranks = np.array([int(r["rank"]) for r in rows], dtype=np.int64)
    order_users, index = np.unique(users_raw, return_inverse=True)
    users = world.dataset.user_index(order_users)
    if (users < 0).any() or (items < 0).any():
        raise ArgumentError(f"{path}: unknown user or item ids for {world.dataset.name!r}")
    top = np.full((len(users), max(ks)), -1, dtype=np.int64)
    keep = ranks <= max(ks)
    top[index[keep], ranks[keep] - 1] = items[keep]
    relevant = relevant_items(world, users)
    per_user = per_user_metrics(top, relevant, ks)
    out = {names.at_k(metric, k): float(np.mean(v)) for (metric, k), v in per_user.items()}
    for k in ks:
        out[names.at_k("coverage", k)] = coverage_at_k(top, k, world.dataset.n_items)
    return out
