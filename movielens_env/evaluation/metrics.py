"""Top-k ranking metrics with binary relevance, per user, and catalogue coverage."""

from __future__ import annotations

import numpy as np


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def precision_at_k(relevant_in_top: np.ndarray, k: int) -> np.ndarray:
    """Relevant items among the top ``k``, divided by ``k``, per user.

    ``relevant_in_top`` is a (users, >= k) boolean matrix: whether the item at each rank is
    relevant. Short rankings are padded with ``False`` by the caller, so a user with fewer than
    ``k`` candidates can score at most (candidates / k): the standard definition.
    """
    return relevant_in_top[:, :k].sum(axis=1) / k


def ndcg_at_k(relevant_in_top: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Binary-relevance NDCG@k per user: DCG over the top ``k`` divided by the ideal DCG.

    The ideal ranking puts ``min(k, n_relevant)`` relevant candidates first; users with no
    relevant candidate get 0.
    """
    discounts = _discounts(k)
    dcg = (relevant_in_top[:, :k] * discounts).sum(axis=1)
    ideal_hits = np.minimum(n_relevant, k)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[ideal_hits]
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def hit_rate_at_k(relevant_in_top: np.ndarray, k: int) -> np.ndarray:
    """1 where at least one of the top ``k`` is relevant, per user."""
    return np.asarray(relevant_in_top[:, :k].any(axis=1), dtype=np.float64)


def coverage_at_k(top_items: np.ndarray, k: int, n_items: int) -> float:
    """Share of the catalogue that appears in at least one user's top ``k`` (``-1`` pads)."""
    shown = top_items[:, :k]
    return len(np.unique(shown[shown >= 0])) / n_items


def per_user_metrics(
    top_items: np.ndarray, relevant: list[np.ndarray], ks: tuple[int, ...]
) -> dict[tuple[str, int], np.ndarray]:
    """Precision, NDCG and hit rate at each k for every user, keyed by ``(metric, k)``.

    Args:
        top_items: (users, max k) internal item ids, best first, ``-1`` where a user had fewer
            candidates.
        relevant: per user, the internal ids of the relevant candidates.
        ks: cut-offs, each at most ``top_items.shape[1]``.
    """
    hits = np.zeros(top_items.shape, dtype=bool)
    for row, (items, good) in enumerate(zip(top_items, relevant, strict=True)):
        hits[row] = np.isin(items, good) & (items >= 0)
    n_relevant = np.array([len(g) for g in relevant], dtype=np.int64)
    out: dict[tuple[str, int], np.ndarray] = {}
    for k in ks:
        out["precision", k] = precision_at_k(hits, k)
        out["ndcg", k] = ndcg_at_k(hits, n_relevant, k)
        out["hit_rate", k] = hit_rate_at_k(hits, k)
    return out
