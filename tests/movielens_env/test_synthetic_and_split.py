"""The synthetic generator (shapes, shares, determinism, truth) and the per-user temporal split."""

from __future__ import annotations

import numpy as np
import pytest

from movielens_env import MovieLensRecError, RatingsDataset, load_dataset, temporal_split
from movielens_env.data.parsing import RawRatings
from movielens_env.data.ratings import from_raw
from movielens_env.data.synthetic import (
    MIN_RATINGS_PER_USER,
    RATING_SHARES,
    SYNTHETIC_SHAPES,
    generate_ratings,
    generate_synthetic,
)

N_USERS, N_ITEMS, N_RATINGS = 943, 1_682, 100_000


@pytest.fixture(scope="module")
def synthetic_100k():
    return generate_synthetic("synthetic-100k", seed=0)


@pytest.fixture(scope="module")
def loaded_synthetic() -> RatingsDataset:
    return load_dataset("synthetic")


# --- generator -----------------------------------------------------------------------------


def test_synthetic_100k_shape(synthetic_100k):
    raw, _ = synthetic_100k
    assert SYNTHETIC_SHAPES["synthetic-100k"] == (N_USERS, N_ITEMS, N_RATINGS)
    assert len(raw.ratings) == len(raw.users) == len(raw.items) == len(raw.timestamps)
    assert len(raw.ratings) == N_RATINGS
    # Raw ids are 1-based like GroupLens'; every user appears, items cover nearly the catalogue.
    np.testing.assert_array_equal(np.unique(raw.users), np.arange(1, N_USERS + 1))
    items = np.unique(raw.items)
    assert items.min() >= 1
    assert items.max() <= N_ITEMS
    assert len(items) >= 0.95 * N_ITEMS
    for array, dtype in [(raw.users, np.int64), (raw.items, np.int64), (raw.timestamps, np.int64)]:
        assert array.dtype == dtype
    assert raw.ratings.dtype == np.float32


def test_every_user_has_at_least_20_ratings_and_no_duplicates(synthetic_100k):
    raw, _ = synthetic_100k
    per_user = np.bincount(raw.users)[1:]
    assert per_user.min() >= MIN_RATINGS_PER_USER == 20
    pairs = raw.users * (N_ITEMS + 1) + raw.items
    assert len(np.unique(pairs)) == len(pairs)
    # Long-tailed activity: some users rate far more than the minimum.
    assert per_user.max() > 5 * MIN_RATINGS_PER_USER


def test_star_shares_match_movielens(synthetic_100k):
    raw, _ = synthetic_100k
    assert set(np.unique(raw.ratings).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    shares = np.bincount(raw.ratings.astype(np.int64), minlength=6)[1:] / len(raw.ratings)
    np.testing.assert_allclose(shares, RATING_SHARES, atol=0.005)
    assert RATING_SHARES.sum() == pytest.approx(1.0, abs=1e-3)


def test_timestamps_are_plausible(synthetic_100k):
    raw, _ = synthetic_100k
    assert raw.timestamps.min() >= 946_684_800  # 2000-01-01
    assert raw.timestamps.max() < 946_684_800 + 6 * 365 * 86_400
    assert len(np.unique(raw.timestamps)) > 0.9 * len(raw.timestamps)


def test_same_seed_same_log_other_seed_other_log(synthetic_100k):
    raw, truth = synthetic_100k
    again, truth_again = generate_synthetic("synthetic-100k", seed=0)
    for name in ("users", "items", "ratings", "timestamps"):
        np.testing.assert_array_equal(getattr(raw, name), getattr(again, name))
    np.testing.assert_array_equal(truth.user_factors, truth_again.user_factors)
    np.testing.assert_array_equal(truth.thresholds, truth_again.thresholds)
    other, _ = generate_synthetic("synthetic-100k", seed=1)
    assert len(other.ratings) == N_RATINGS  # the shape does not depend on the seed
    assert not np.array_equal(raw.items, other.items)
    assert not np.array_equal(raw.timestamps, other.timestamps)


def test_truth_in_range_and_correlated_with_logged_ratings(synthetic_100k):
    raw, truth = synthetic_100k
    expected = truth.true_rating(raw.users - 1, raw.items - 1)
    assert expected.shape == raw.ratings.shape
    assert expected.min() >= 1.0
    assert expected.max() <= 5.0
    assert np.corrcoef(expected, raw.ratings)[0, 1] > 0.4
    # Every (user, item) pair has a truth, rated or not.
    rng = np.random.default_rng(0)
    users = rng.integers(0, N_USERS, 5_000)
    items = rng.integers(0, N_ITEMS, 5_000)
    anywhere = truth.true_rating(users, items)
    assert np.all((anywhere >= 1.0) & (anywhere <= 5.0))
    assert truth.user_factors.shape[0] == N_USERS
    assert truth.item_factors.shape[0] == N_ITEMS
    assert np.all(np.diff(truth.thresholds) > 0)


def test_generate_ratings_any_size_and_impossible_sizes():
    raw, truth = generate_ratings(50, 120, 2_000, seed=3)
    assert len(raw.ratings) == 2_000
    assert np.bincount(raw.users)[1:].min() >= MIN_RATINGS_PER_USER
    assert truth.user_factors.shape[0] == 50
    with pytest.raises(MovieLensRecError, match="cannot spread"):
        generate_ratings(50, 120, 50 * MIN_RATINGS_PER_USER - 1)


def test_unknown_synthetic_shape_lists_valid_names():
    with pytest.raises(MovieLensRecError) as err:
        generate_synthetic("synthetic-7m")
    for name in ("synthetic", "synthetic-small", "synthetic-100k", "synthetic-1m", "synthetic-25m"):
        assert name in str(err.value)


def test_load_dataset_synthetic(loaded_synthetic: RatingsDataset, synthetic_100k):
    dataset = loaded_synthetic
    raw, truth = synthetic_100k
    assert dataset.name == "synthetic-100k"
    assert dataset.n_ratings == N_RATINGS
    assert dataset.n_users == N_USERS
    assert dataset.n_items == len(np.unique(raw.items))
    assert dataset.rating_scale == (1.0, 5.0)
    np.testing.assert_array_equal(dataset.user_ids[dataset.users], raw.users)
    np.testing.assert_array_equal(dataset.item_ids[dataset.items], raw.items)
    np.testing.assert_array_equal(dataset.ratings, raw.ratings)
    assert dataset.title(0) == f"Synthetic movie {dataset.item_ids[0]}"
    # The truth is re-indexed by internal ids and still describes the same pairs.
    assert dataset.truth is not None
    assert dataset.truth.user_factors.shape[0] == dataset.n_users
    assert dataset.truth.item_factors.shape[0] == dataset.n_items
    np.testing.assert_allclose(
        dataset.truth.true_rating(dataset.users, dataset.items),
        truth.true_rating(raw.users - 1, raw.items - 1),
        rtol=1e-6,
    )


def test_synthetic_alias_and_no_data_dir(loaded_synthetic: RatingsDataset, tmp_path):
    assert load_dataset("synthetic-100k").fingerprint() == loaded_synthetic.fingerprint()
    with pytest.raises(MovieLensRecError, match="data_dir"):
        load_dataset("synthetic", data_dir=tmp_path)


# --- temporal split ------------------------------------------------------------------------

# (raw user, raw item, timestamp), in a scrambled file order. Ratings are derived from the row.
HAND_MADE = [
    (40, 140, 20),
    (10, 50, 300),
    (30, 99, 100),
    (40, 150, 10),
    (10, 7, 100),
    (40, 3, 20),
    (20, 5, 1000),
    (40, 50, 60),
    (10, 99, 200),
    (40, 130, 30),
    (30, 7, 100),
    (40, 120, 50),
    (10, 3, 500),
    (40, 7, 40),
    (40, 5, 20),
    (30, 50, 50),
    (40, 99, 50),
    (10, 12, 400),
    (40, 12, 50),
]
# Per raw user: (train raw items, test raw items), in (timestamp, raw item id) order.
EXPECTED = {
    10: ([7, 99, 50, 12], [3]),  # n=5: floor(4.0) = 4 train
    20: ([], [5]),  # n=1: floor(0.8) = 0 train
    30: ([50, 7], [99]),  # n=3: floor(2.4) = 2; 7 and 99 tie at t=100
    40: ([150, 3, 5, 140, 130, 7, 12, 99], [120, 50]),  # n=10: the t=50 tie straddles the cut
}


def _rating(user: int, item: int) -> float:
    return float(1 + (user + item) % 5)


@pytest.fixture
def hand_made() -> RatingsDataset:
    raw = RawRatings(
        users=np.array([u for u, _, _ in HAND_MADE], dtype=np.int64),
        items=np.array([i for _, i, _ in HAND_MADE], dtype=np.int64),
        ratings=np.array([_rating(u, i) for u, i, _ in HAND_MADE], dtype=np.float32),
        timestamps=np.array([t for _, _, t in HAND_MADE], dtype=np.int64),
    )
    return from_raw("hand-made", raw, (1.0, 5.0))


def test_temporal_split_rule_on_hand_made_data(hand_made: RatingsDataset):
    split = temporal_split(hand_made)
    assert split.train_fraction == 0.8
    np.testing.assert_array_equal(hand_made.user_ids, [10, 20, 30, 40])
    for part in (split.train, split.test):
        assert part.n_users == hand_made.n_users
        assert part.n_items == hand_made.n_items
        assert part.indptr.dtype == np.int64
    for user, raw_user in enumerate(hand_made.user_ids.tolist()):
        want_train, want_test = EXPECTED[raw_user]
        for part, want in ((split.train, want_train), (split.test, want_test)):
            items, ratings = part.row(user)
            assert hand_made.item_ids[items].tolist() == want, (raw_user, part is split.train)
            assert ratings.tolist() == [_rating(raw_user, i) for i in want]
            start, end = part.indptr[user], part.indptr[user + 1]
            assert np.all(np.diff(part.timestamps[start:end]) >= 0)
    np.testing.assert_array_equal(split.train.counts, [4, 0, 2, 8])
    np.testing.assert_array_equal(split.test.counts, [1, 1, 1, 2])
    np.testing.assert_array_equal(split.test.user_of_each_rating(), [0, 1, 2, 3, 3])


def _rows(part, dataset: RatingsDataset) -> list[tuple[int, int, float, int]]:
    users = dataset.user_ids[part.user_of_each_rating()]
    items = dataset.item_ids[part.items]
    return list(
        zip(
            users.tolist(),
            items.tolist(),
            part.ratings.tolist(),
            part.timestamps.tolist(),
            strict=True,
        )
    )


def _check_partition(dataset: RatingsDataset, split) -> None:
    train, test = _rows(split.train, dataset), _rows(split.test, dataset)
    everything = list(
        zip(
            dataset.user_ids[dataset.users].tolist(),
            dataset.item_ids[dataset.items].tolist(),
            dataset.ratings.tolist(),
            dataset.timestamps.tolist(),
            strict=True,
        )
    )
    assert len(train) + len(test) == dataset.n_ratings
    assert not set(train) & set(test)
    assert sorted(train + test) == sorted(everything)


def test_temporal_split_is_a_partition(hand_made: RatingsDataset):
    _check_partition(hand_made, temporal_split(hand_made))


def test_temporal_split_other_fraction(hand_made: RatingsDataset):
    split = temporal_split(hand_made, train_fraction=0.5)
    np.testing.assert_array_equal(split.train.counts, [2, 0, 1, 5])
    _check_partition(hand_made, split)
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="train_fraction"):
            temporal_split(hand_made, train_fraction=bad)


def test_temporal_split_on_synthetic(loaded_synthetic: RatingsDataset):
    dataset = loaded_synthetic
    split = temporal_split(dataset)
    counts = np.bincount(dataset.users, minlength=dataset.n_users)
    np.testing.assert_array_equal(split.train.counts, np.floor(0.8 * counts).astype(np.int64))
    np.testing.assert_array_equal(split.train.counts + split.test.counts, counts)
    assert split.train.counts.sum() + split.test.counts.sum() == dataset.n_ratings
    # Every user's train ratings come no later than their test ratings.
    last_train = np.full(dataset.n_users, np.iinfo(np.int64).min)
    np.maximum.at(last_train, split.train.user_of_each_rating(), split.train.timestamps)
    first_test = np.full(dataset.n_users, np.iinfo(np.int64).max)
    np.minimum.at(first_test, split.test.user_of_each_rating(), split.test.timestamps)
    assert np.all(last_train <= first_test)

    # No (user, item) pair is in both parts, and together they hold every rating.
    def keys(part) -> np.ndarray:
        return part.user_of_each_rating().astype(np.int64) * dataset.n_items + part.items

    train_keys, test_keys = keys(split.train), keys(split.test)
    assert len(np.intersect1d(train_keys, test_keys)) == 0
    all_keys = dataset.users.astype(np.int64) * dataset.n_items + dataset.items
    np.testing.assert_array_equal(
        np.sort(np.concatenate([train_keys, test_keys])), np.sort(all_keys)
    )
