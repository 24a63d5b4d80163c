"""Slate choice: exact order, ties to the lower id, and the same answer in any batch."""

from __future__ import annotations

import numpy as np
import pytest

from movielens_env.simulator.scoring import best_slates


def _reference(actions: np.ndarray, factors: np.ndarray, blocked: np.ndarray, k: int):
    """Brute force in float64: best exact score first, ties to the lower column."""
    out = []
    for action, row_blocked in zip(actions, blocked, strict=True):
        exact = factors.astype(np.float64) @ action.astype(np.float64)
        columns = np.flatnonzero(~row_blocked)
        order = np.lexsort((columns, -exact[columns]))
        out.append(columns[order[:k]])
    return np.array(out)


@pytest.mark.parametrize("k", [1, 3])
def test_same_slates_whatever_the_batch(k):
    rng = np.random.default_rng(0)
    factors = rng.normal(0, 0.3, (400, 32)).astype(np.float32)
    # Near-ties on purpose: copies of items nudged by less than float32 rounding of a score.
    factors[200:260] = factors[:60] * np.float32(1 + 1e-7)
    factors[300:310] = factors[:10]  # exact ties
    actions = rng.uniform(-1, 1, (300, 32)).astype(np.float32)
    actions[:60] = factors[:60] * 3  # these rows' best items have (near-)twins
    blocked = rng.random((300, 400)) < 0.05
    bound = float(np.abs(factors).max())

    def run(rows: np.ndarray) -> np.ndarray:
        coarse = actions[rows] @ factors.T
        coarse[blocked[rows]] = -np.inf
        return best_slates(coarse, actions[rows], factors.astype(np.float64), k, bound)

    everything = run(np.arange(300))
    one_by_one = np.concatenate([run(np.array([i])) for i in range(300)])
    np.testing.assert_array_equal(everything, one_by_one)
    np.testing.assert_array_equal(everything, _reference(actions, factors, blocked, k))


def test_exact_tie_goes_to_the_lower_column():
    factors = np.array([[1.0, 0.0], [0.5, 0.5], [1.0, 0.0]], dtype=np.float32)
    action = np.array([[1.0, 0.0]], dtype=np.float32)
    coarse = action @ factors.T
    assert best_slates(coarse.copy(), action, factors, 1, 1.0).tolist() == [[0]]
    coarse[0, 0] = -np.inf
    assert best_slates(coarse, action, factors, 1, 1.0).tolist() == [[2]]
    assert np.isfinite(coarse[0, 2])  # scratch use of the scores is undone
