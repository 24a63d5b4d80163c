"""Choosing slates from actions, with the same result for one user or for a batch of users.

Scores are computed in float32 by BLAS, whose rounding depends on the batch shape (a row of
``actions @ factors.T`` is not bit-identical to ``factors @ action``). A near-tie could then pick
a different item in a vector env than in a single env. So the float32 scores only shortlist the
items within a proven rounding bound of the k-th best; the shortlist is re-scored in float64 by
one fixed summation per (user, item), and the slate is the top ``k`` of those exact scores, ties
to the lower id. The result no longer depends on how many users were scored together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidActionError

if TYPE_CHECKING:
    from .world import ItemVectors

# A float32 dot product of length d is off by at most about d * 2**-24 * sum(|a_j * q_j|)
# (any summation order, with or without FMA); twice that covers comparing two such products,
# and the extra factor leaves room for the float64 re-scoring's own (much smaller) error.
_ROUNDING_SLACK = 4.0 * np.finfo(np.float32).eps


# Actions whose largest magnitude lies in this range score without overflow or underflow as
# they are; others are rescaled by a power of two, which keeps their direction exactly.
_SAFE_PEAK = (2.0**-30, 2.0**30)


def real_actions(actions: np.ndarray) -> np.ndarray:
    """Actions as float32 (as given) or float64 (a finite float64 may exceed float32's range);
    :class:`InvalidActionError` for anything but real numbers (complex, bool, text)."""
    if actions.dtype == np.float32:
        return actions
    if actions.dtype.kind not in "fiu":
        raise InvalidActionError(f"actions must be real numbers, got dtype {actions.dtype}")
    return actions.astype(np.float64)


def action_direction(actions: np.ndarray) -> np.ndarray:
    """Finite actions (one, or one per row) as float32 with the same direction, scaled if need be.

    Only an action's direction matters, but a float32 inner product of a huge action overflows
    to inf and one of a tiny action underflows to ties. Each action whose largest magnitude is
    outside [2**-30, 2**30] is multiplied by the power of two that brings it into [0.5, 1):
    exactly the same direction and the same slate, whatever the batch.
    """
    actions = np.asarray(actions)
    peak = np.abs(actions).max(axis=-1, initial=0.0)
    if actions.ndim == 1:  # one action: plain float comparisons are much cheaper
        if _SAFE_PEAK[0] <= float(peak) <= _SAFE_PEAK[1]:
            return actions.astype(np.float32, copy=False)
    elif np.all((peak >= _SAFE_PEAK[0]) & (peak <= _SAFE_PEAK[1])):
        return actions.astype(np.float32, copy=False)
    exponent = np.where(peak > 0, np.frexp(peak.astype(np.float64))[1], 0)
    scaled = np.ldexp(
        actions.astype(np.float64), -exponent[..., None] if actions.ndim > 1 else -exponent
    )
    return scaled.astype(np.float32)


def rounding_tolerance(actions: np.ndarray, factor_bound: float) -> np.ndarray:
    """Per action (row), a bound on how far two float32 scores of the same item can differ."""
    scale = _ROUNDING_SLACK * actions.shape[-1] * max(factor_bound, 1e-30)
    # The float32 sum is off by far less than the slack factor of 2 above.
    return np.abs(actions).sum(axis=-1) * scale + 1e-30


def best_slates(
    coarse: np.ndarray,
    actions: np.ndarray,
    column_factors: np.ndarray,
    k: int,
    factor_bound: float,
) -> np.ndarray:
    """The ``k`` best columns of each row, best first, by exact score then lower column.

    Args:
        coarse: ``(n, m)`` float32 scores, ``-inf`` where a column may not be chosen; each row
            must have at least ``k`` finite entries. Used as scratch space, restored on return.
        actions: ``(n, d)`` actions that produced the scores.
        column_factors: ``(m, d)`` factors of the columns, ideally float64 (exact re-scoring).
        k: slate size.
        factor_bound: the largest absolute value in ``column_factors``.

    Returns:
        ``(n, k)`` int64 column indices.
    """
    n = coarse.shape[0]
    tolerance = rounding_tolerance(actions, factor_bound)
    if k == 1 and n == 1:  # the single env's case, with scalar operations (same decisions)
        row = coarse[0]
        best = int(row.argmax())
        top = row[best]
        row[best] = -np.inf
        runner_up = row.max()
        row[best] = top
        if runner_up < top - tolerance[0]:
            return np.array([[best]])
    if k == 1:
        rows = np.arange(n)
        best = coarse.argmax(axis=1)
        top = coarse[rows, best]
        # The runner-up tells which rows have a near-tie; the others keep their float32 winner,
        # which is then the exact one.
        coarse[rows, best] = -np.inf
        runner_up = coarse.max(axis=1)
        coarse[rows, best] = top
        tied = np.flatnonzero(runner_up >= top - tolerance)
        if len(tied):
            near = coarse[tied] >= (top[tied] - tolerance[tied])[:, None]
            best[tied] = _exact_top(near, actions[tied], column_factors, 1)[:, 0]
        return best[:, None]
    kth = -np.partition(-coarse, k - 1, axis=1)[:, k - 1]
    return _exact_top(coarse >= (kth - tolerance)[:, None], actions, column_factors, k)


def _exact_top(
    near: np.ndarray, actions: np.ndarray, column_factors: np.ndarray, k: int
) -> np.ndarray:
    """Top ``k`` of each row's shortlisted columns by float64 score, ties to the lower column."""
    rows, cols = np.nonzero(near)
    # One product-and-sum per (row, column) pair, so the result does not depend on the batch.
    exact = np.sum(
        actions[rows].astype(np.float64) * column_factors[cols].astype(np.float64, copy=False),
        axis=1,
    )
    return _first_k(rows, cols, exact, len(near), k)


def _first_k(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int, k: int
) -> np.ndarray:
    """Per row, the ``k`` (row, col) entries with the largest values, ties to the lower col;
    every row must have at least ``k`` entries."""
    order = np.lexsort((cols, -values, rows))
    rows, cols = rows[order], cols[order]
    starts = np.searchsorted(rows, np.arange(n_rows))
    return cols[starts[:, None] + np.arange(k)]


def top_k_per_row(values: np.ndarray, k: int) -> np.ndarray:
    """``(n, k)`` columns of the ``k`` largest values of each row of ``values`` ``(n, m)``,
    best first, ties to the lower column (also across the k-th place); ``-inf`` marks columns
    that may not be chosen, and each row needs ``k`` others."""
    if k >= values.shape[1]:
        kth = values.min(axis=1)
    else:
        kth = -np.partition(-values, k - 1, axis=1)[:, k - 1]
    rows, cols = np.nonzero(values >= kth[:, None])
    return _first_k(rows, cols, values[rows, cols], len(values), k)


def rank_by_action(
    vectors: ItemVectors, action: np.ndarray, candidates: np.ndarray, k: int
) -> np.ndarray:
    """The ``min(k, len(candidates))`` candidates an action scores best, best first, chosen
    exactly as the env chooses a slate (so offline rankings and online slates agree)."""
    k = min(k, len(candidates))
    action = np.asarray(action)
    if not np.isfinite(action).all() or not action.any():
        raise InvalidActionError(
            "the action contains NaN or inf, or is all zeros: it ranks nothing"
        )
    if k == 0:
        return candidates[:0]
    action = action_direction(action)
    coarse = vectors.items[candidates] @ action
    best = best_slates(coarse[None], action[None], vectors.items64[candidates], k, vectors.bound)
    return candidates[best[0]]
