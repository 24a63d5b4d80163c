"""Random, popularity and MF rankers."""

from __future__ import annotations

import numpy as np

from agents.baselines import MFRanker, PopularityRanker, RandomRanker
from movielens_env import MovieLensRecEnv
from tests.helpers import SMALL_ENV_KWARGS


def _world(dataset):
    return MovieLensRecEnv(dataset=dataset, **SMALL_ENV_KWARGS).world


def test_popularity_counts_positive_train_ratings(small_dataset):
    world = _world(small_dataset)
    ranker = PopularityRanker(world)
    train = world.split.train
    expected = np.bincount(train.items[train.ratings >= 4], minlength=small_dataset.n_items)
    np.testing.assert_array_equal(ranker.counts, expected)
    candidates = np.arange(0, small_dataset.n_items, 3)
    top = ranker.rank(0, candidates, 5)
    assert np.all(np.diff(ranker.counts[top]) <= 0)
    assert ranker.counts[top[-1]] >= np.sort(ranker.counts[candidates])[-5]


def test_mf_ranks_by_predicted_rating(small_dataset):
    world = _world(small_dataset)
    candidates = np.arange(40, 140)
    top = MFRanker(world).rank(7, candidates, 10)
    predicted = world.mf.predict(7, candidates)
    np.testing.assert_array_equal(top, candidates[np.argsort(-predicted, kind="stable")[:10]])


def test_random_ranker_is_seeded_and_draws_distinct_candidates():
    candidates = np.arange(100, 150)
    first = RandomRanker(3).rank(0, candidates, 10)
    assert len(set(first.tolist())) == 10 and set(first.tolist()) <= set(candidates.tolist())
    np.testing.assert_array_equal(first, RandomRanker(3).rank(0, candidates, 10))
    assert not np.array_equal(first, RandomRanker(4).rank(0, candidates, 10))
    assert len(RandomRanker(0).rank(0, candidates[:3], 10)) == 3
