"""Ranking metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from movielens_env.evaluation.metrics import (
    coverage_at_k,
    hit_rate_at_k,
    ndcg_at_k,
    per_user_metrics,
    precision_at_k,
)


def test_two_relevant_items_at_ranks_two_and_five():
    metrics = per_user_metrics(np.array([[1, 2, 3, 4, 5]]), [np.array([2, 5])], ks=(3, 5))
    assert metrics["precision", 5][0] == pytest.approx(2 / 5)
    assert metrics["precision", 3][0] == pytest.approx(1 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(6)
    assert metrics["ndcg", 5][0] == pytest.approx(dcg / (1 + 1 / math.log2(3)))
    # At k=3 only rank 2 counts; the ideal ranking puts both relevant items first.
    assert metrics["ndcg", 3][0] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert metrics["hit_rate", 3][0] == 1.0


def test_fewer_relevant_items_than_k_can_still_reach_ndcg_one():
    # One relevant item, ranked first: ideal DCG is over min(k, 1) = 1 item.
    metrics = per_user_metrics(np.array([[7, 8, 9, 10, 11]]), [np.array([7])], ks=(5,))
    assert metrics["ndcg", 5][0] == pytest.approx(1.0)
    assert metrics["precision", 5][0] == pytest.approx(1 / 5)


def test_fewer_candidates_than_k_pad_with_minus_one():
    top = np.array([[7, 3, -1, -1, -1]])
    metrics = per_user_metrics(top, [np.array([3, 7])], ks=(5,))
    assert metrics["precision", 5][0] == pytest.approx(2 / 5)
    assert metrics["ndcg", 5][0] == pytest.approx(1.0)
    assert coverage_at_k(top, 5, 10) == pytest.approx(2 / 10)


def test_no_relevant_item_in_the_top_scores_zero():
    hits = np.array([[False, False, False, True]])
    assert precision_at_k(hits, 3)[0] == 0.0
    assert ndcg_at_k(hits, np.array([1]), 3)[0] == 0.0
    assert hit_rate_at_k(hits, 3)[0] == 0.0
    assert ndcg_at_k(hits, np.array([0]), 3)[0] == 0.0  # no relevant candidate at all


def test_metrics_are_per_user_and_coverage_is_over_the_catalogue():
    top = np.array([[1, 2], [2, 3], [4, -1]])
    metrics = per_user_metrics(top, [np.array([1]), np.array([9]), np.array([4, 5])], ks=(2,))
    np.testing.assert_allclose(metrics["precision", 2], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(metrics["hit_rate", 2], [1.0, 0.0, 1.0])
    np.testing.assert_allclose(metrics["ndcg", 2], [1.0, 0.0, 1 / (1 + 1 / math.log2(3))])
    assert coverage_at_k(top, 2, 10) == pytest.approx(4 / 10)
    assert coverage_at_k(top, 1, 10) == pytest.approx(3 / 10)
