"""The per-user temporal split, stored as compressed sparse rows (no users x items arrays)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import ArgumentError
from .ratings import RatingsDataset

TRAIN_FRACTION = 0.8


@dataclass(frozen=True, eq=False)
class UserRatings:
    """Each user's ratings in compressed sparse rows, in time order within a user.

    User ``u``'s ratings are ``items[indptr[u]:indptr[u + 1]]`` (and the same slice of
    ``ratings`` and ``timestamps``).
    """

    indptr: np.ndarray  # int64, n_users + 1
    items: np.ndarray  # int32
    ratings: np.ndarray  # float32
    timestamps: np.ndarray  # int64
    n_items: int

    @property
    def n_users(self) -> int:
        """Number of rows (users), including users with no ratings here."""
        return len(self.indptr) - 1

    @property
    def counts(self) -> np.ndarray:
        """Number of ratings of each user."""
        return np.diff(self.indptr)

    def row(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """Items and ratings of one user, in time order."""
        start, end = self.indptr[user], self.indptr[user + 1]
        return self.items[start:end], self.ratings[start:end]

    def user_of_each_rating(self) -> np.ndarray:
        """The user of every stored rating (the rows expanded), int32."""
        return np.repeat(np.arange(self.n_users, dtype=np.int32), self.counts)

    @cached_property
    def _sorted_keys(self) -> tuple[np.ndarray, np.ndarray]:
        keys = self.user_of_each_rating().astype(np.int64) * self.n_items + self.items
        order = np.argsort(keys)
        # A sentinel past every key: a binary search then always lands on a valid position.
        sentinel = np.iinfo(np.int64).max
        return np.append(keys[order], sentinel), np.append(self.ratings[order], np.nan)

    def lookup(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each (user, item) pair (broadcast) is rated here, and its rating (NaN if not).

        A binary search in the ratings sorted by (user, item), built on first use.
        """
        keys, ratings = self._sorted_keys
        query = np.asarray(users, dtype=np.int64) * self.n_items + np.asarray(items)
        pos = keys.searchsorted(query)
        found = keys[pos] == query
        return found, np.where(found, ratings[pos], np.nan)

    def subset(self, keep: np.ndarray) -> UserRatings:
        """The ratings where ``keep`` (one flag per stored rating) is true, order preserved."""
        counts = np.bincount(self.user_of_each_rating()[keep], minlength=self.n_users)
        return UserRatings(
            indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            items=self.items[keep],
            ratings=self.ratings[keep],
            timestamps=self.timestamps[keep],
            n_items=self.n_items,
        )


@dataclass(frozen=True, eq=False)
class TemporalSplit:
    """Train and test ratings: per user, the first ``floor(fraction * n)`` in time are train."""

    train: UserRatings
    test: UserRatings
    train_fraction: float


def temporal_split(
    dataset: RatingsDataset, train_fraction: float = TRAIN_FRACTION
) -> TemporalSplit:
    """Split each user's ratings by time.

    Ratings are sorted by (timestamp, raw item id) within each user, so ties in time are broken
    the same way on every machine; the first ``floor(train_fraction * n)`` are train, the rest test.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ArgumentError(f"train_fraction must be in (0, 1), got {train_fraction}")
    order, is_train = _train_flags(dataset, train_fraction)
    counts = np.bincount(dataset.users, minlength=dataset.n_users)
    ordered = UserRatings(
        indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        items=dataset.items[order],
        ratings=dataset.ratings[order],
        timestamps=dataset.timestamps[order],
        n_items=dataset.n_items,
    )
    return TemporalSplit(ordered.subset(is_train), ordered.subset(~is_train), train_fraction)


def _train_flags(dataset: RatingsDataset, train_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The ratings' order by (user, timestamp, raw item id), and whether each rating in that
    order is train."""
    order = np.lexsort((dataset.item_ids[dataset.items], dataset.timestamps, dataset.users))
    counts = np.bincount(dataset.users, minlength=dataset.n_users)
    users = dataset.users[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(users)) - starts[users]
    return order, position < np.floor(train_fraction * counts).astype(np.int64)[users]


def validation_dataset(
    dataset: RatingsDataset, train_fraction: float = TRAIN_FRACTION
) -> RatingsDataset:
    """The train part of ``dataset``'s temporal split as a dataset of its own, for tuning.

    Split again the same way, its train part is the first ``train_fraction`` of each user's
    train ratings and its held-out part (an env's ``split="test"``) is the last part of them in
    time: a validation split that never holds a test rating. Users, items and their ids,
    metadata and the synthetic truth are kept, so the catalogue is the same; only the ratings
    shrink. The name gets ``/validation``, so its caches and fingerprint are its own.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ArgumentError(f"train_fraction must be in (0, 1), got {train_fraction}")
    order, is_train = _train_flags(dataset, train_fraction)
    keep = np.sort(order[is_train])
    return dataclasses.replace(
        dataset,
        name=f"{dataset.name}/validation",
        users=dataset.users[keep],
        items=dataset.items[keep],
        ratings=dataset.ratings[keep],
        timestamps=dataset.timestamps[keep],
    )
