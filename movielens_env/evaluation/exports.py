"""Recommendations as ``user,item,rank`` CSV (raw ids), and the metrics recomputed from one."""

from __future__ import annotations

import csv
import io
import os
import re

import numpy as np

from ..errors import ArgumentError, DataFormatError
from ..simulator.world import RecWorld
from ..storage import atomic_write, read_small_bytes
from . import names
from .metrics import coverage_at_k, per_user_metrics
from .protocols import DEFAULT_KS, EvaluationResult, check_ks, relevant_items

RECOMMENDATION_HEADER = ("user", "item", "rank")
# Read row by row into Python objects: about 35 bytes of memory per byte of file. 256 MiB is
# 16 M recommendations (ML-25M's users x 100).
MAX_RECOMMENDATIONS_BYTES = 2**28
# Plain decimal integers only (int() would also take "1_0" or " 7").
_INTEGER = re.compile(r"-?[0-9]+")


def export_recommendations(
    result: EvaluationResult,
    world: RecWorld,
    protocol: str,
    path: str | os.PathLike[str],
    replace: bool = True,
) -> None:
    """Write ``user,item,rank`` (raw ids, rank from 1) for one protocol, atomically; without
    ``replace``, a file at ``path`` (even one made meanwhile) is kept: ``FileExistsError``."""
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
            writer.writerow(RECOMMENDATION_HEADER)
            writer.writerows(rows)

    atomic_write(path, write, suffix=".csv", exclusive=not replace)


def metrics_from_recommendations(
    path: str | os.PathLike[str], world: RecWorld, ks: tuple[int, ...] = DEFAULT_KS
) -> dict[str, float]:
    """Recompute the offline metrics of an exported ``user,item,rank`` file from the test split:
    the mean over the users the file ranks (all test users, as exported; fewer give the mean
    over those).

    Raises:
        DataFormatError: no ``user,item,rank`` header, a field that is not an integer, a rank
            below 1, a (user, rank) or (user, item) given twice, an unknown id, or a user
            without a positive test rating (nothing to score them on, so never exported); the
            message names the file and line. ArgumentError: a k beyond the deepest rank the
            file holds (a top-5 file scored @10 counts ranks 6 to 10 as misses), or ks that are
            not integers >= 1.
    """
    check_ks(ks)
    users_raw, item_ids, ranks = _read_recommendations(path)
    deepest = int(ranks.max())
    if max(ks) > deepest:
        raise ArgumentError(
            f"{path} ranks at most {deepest} items per user: metrics @{max(ks)} cannot be "
            f"computed from it (give ks of at most {deepest}, or export a deeper list)"
        )
    items = world.dataset.item_index(item_ids)
    order_users, index = np.unique(users_raw, return_inverse=True)
    users = world.dataset.user_index(order_users)
    if (users < 0).any() or (items < 0).any():
        line = int(np.flatnonzero((users[index] < 0) | (items < 0))[0]) + 2
        raise DataFormatError(f"{path}:{line}: unknown user or item id for {world.dataset.name!r}")
    relevant = relevant_items(world, users)
    unscored = np.array([len(r) == 0 for r in relevant])
    if unscored.any():
        line = int(np.flatnonzero(unscored[index])[0]) + 2
        raise DataFormatError(
            f"{path}:{line}: user {users_raw[line - 2]} has no positive test rating, so "
            "nothing to be scored on (a row of another dataset or split?)"
        )
    top = np.full((len(users), max(ks)), -1, dtype=np.int64)
    keep = ranks <= max(ks)
    top[index[keep], ranks[keep] - 1] = items[keep]
    per_user = per_user_metrics(top, relevant, ks)
    out = {names.at_k(metric, k): float(np.mean(v)) for (metric, k), v in per_user.items()}
    for k in ks:
        out[names.at_k("coverage", k)] = coverage_at_k(top, k, world.dataset.n_items)
    return out


def _read_recommendations(path: str | os.PathLike[str]) -> tuple[np.ndarray, ...]:
    """The (user, item, rank) columns of a recommendations file, checked row by row."""
    try:
        data = read_small_bytes(path, limit=MAX_RECOMMENDATIONS_BYTES)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise DataFormatError(f"{path}: not read as recommendations ({exc.strerror})") from None
    try:
        text = data.decode("ascii")  # the file holds numbers and the header only
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataFormatError(f"{path}:{line}: a byte that is not plain text") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header != list(RECOMMENDATION_HEADER):
        raise DataFormatError(
            f"{path}:1: expected the header {','.join(RECOMMENDATION_HEADER)!r}, found {header!r}"
        )
    rows: list[tuple[int, int, int]] = []
    seen: dict[tuple[int, str, int], int] = {}
    for line, fields in enumerate(reader, start=2):
        if len(fields) != 3 or not all(_INTEGER.fullmatch(f) for f in fields):
            raise DataFormatError(
                f"{path}:{line}: expected three integers user,item,rank, found {fields!r}"
            )
        user, item, rank = (int(field) for field in fields)
        if max(abs(user), abs(item), rank) >= 2**53:  # as the GroupLens loaders bound ids
            raise DataFormatError(f"{path}:{line}: a number beyond 2**53 in {fields!r}")
        if rank < 1:
            raise DataFormatError(f"{path}:{line}: ranks start at 1, found {rank}")
        # One item per rank and one rank per item, for each user.
        for key, what in (
            ((user, "rank", rank), f"rank {rank}"),
            ((user, "item", item), f"item {item}"),
        ):
            if key in seen:
                raise DataFormatError(
                    f"{path}:{line}: user {user} has {what} twice (lines {seen[key]} and {line})"
                )
            seen[key] = line
        rows.append((user, item, rank))
    if not rows:
        raise DataFormatError(f"{path}: no recommendations below the header")
    columns = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return columns[:, 0], columns[:, 1], columns[:, 2]
