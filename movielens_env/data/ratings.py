"""A loaded rating log with contiguous ids, by name: GroupLens releases or the synthetic ones."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..errors import DataFormatError
from .formats import valid_genre
from .parsing import ItemMetadata, RawRatings
from .synthetic import SyntheticTruth


@dataclass(frozen=True, eq=False)
class RatingsDataset:
    """Ratings with users and items remapped to contiguous ``0..n-1``.

    ``user_ids[u]`` and ``item_ids[i]`` give the raw GroupLens id of internal user ``u`` and item
    ``i`` (both sorted ascending, so raw -> internal is a binary search). Each rating is a row of
    ``users``, ``items``, ``ratings``, ``timestamps``.

    Attributes:
        name: dataset name.
        titles: title of each internal item, or ``None`` when no metadata was loaded.
        genres: tuple of genres of each internal item, or ``None``.
        rating_scale: smallest and largest possible rating.
        truth: the generator's model for synthetic data (indexed by internal ids), else ``None``.
    """

    name: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    rating_scale: tuple[float, float]
    titles: np.ndarray | None = None
    genres: np.ndarray | None = None
    truth: SyntheticTruth | None = None

    def __post_init__(self) -> None:
        if self.genres is not None:
            for item, names in enumerate(self.genres):
                bad = [name for name in names if not valid_genre(name)]
                if bad:
                    raise ValueError(
                        f"{self.name}: item {self.item_ids[item]} has the genre name "
                        f"{bad[0]!r}: empty, or holding '|' or a control character"
                    )

    def check_consistent(self) -> None:
        """Refuse what the file loaders refuse, for a dataset built by hand (the loaders check
        it while parsing): a (user, item) pair rated twice, a rating off its scale or not a
        number, ids out of order.

        Raises:
            DataFormatError: naming the first such rating.
        """
        for what, ids in (("user_ids", self.user_ids), ("item_ids", self.item_ids)):
            if len(ids) > 1 and not np.all(ids[1:] > ids[:-1]):
                raise DataFormatError(f"{self.name}: {what} must be strictly increasing")
        low, high = self.rating_scale
        off = np.flatnonzero(~((self.ratings >= low) & (self.ratings <= high)))
        if len(off):
            raise DataFormatError(
                f"{self.name}: rating {off[0]} is {self.ratings[off[0]]}, outside the scale "
                f"{self.rating_scale}"
            )
        keys = self.users.astype(np.int64) * max(self.n_items, 1) + self.items
        ordered = np.sort(keys)
        twice = np.flatnonzero(ordered[1:] == ordered[:-1])
        if len(twice):
            user, item = divmod(int(ordered[twice[0]]), max(self.n_items, 1))
            raise DataFormatError(
                f"{self.name}: user {self.user_ids[user]} rated item {self.item_ids[item]} twice"
            )

    @property
    def n_users(self) -> int:
        """Number of users."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of items in the catalogue (every item with at least one rating)."""
        return len(self.item_ids)

    @property
    def n_ratings(self) -> int:
        """Number of ratings."""
        return len(self.ratings)

    def user_index(self, raw_ids: np.ndarray | int) -> np.ndarray:
        """Internal indices of raw user ids; ``-1`` where a raw id is unknown."""
        return _lookup(self.user_ids, raw_ids)

    def item_index(self, raw_ids: np.ndarray | int) -> np.ndarray:
        """Internal indices of raw item ids; ``-1`` where a raw id is unknown."""
        return _lookup(self.item_ids, raw_ids)

    def title(self, item: int) -> str:
        """Title of an internal item, or ``item <raw id>`` without metadata."""
        if self.titles is None:
            return f"item {self.item_ids[item]}"
        return str(self.titles[item])

    def fingerprint(self) -> str:
        """SHA-256 over everything an env reads of the data (ratings, ids, scale, genres, the
        synthetic truth; not titles): equal keys give equal results, for caches and stored
        runs."""
        digest = hashlib.sha256(self.name.encode())
        arrays = [self.user_ids, self.item_ids, self.users, self.items, self.ratings]
        arrays += [self.timestamps, np.asarray(self.rating_scale, np.float64)]
        if self.truth is not None:
            truth = self.truth
            arrays += [truth.user_factors, truth.item_factors, truth.user_bias, truth.item_bias]
            arrays += [truth.thresholds, np.asarray(truth.noise_scale, np.float64)]
        for array in arrays:
            digest.update(np.ascontiguousarray(array).tobytes())
        # Tuples of names, one per item: names are never empty and hold no "|" or newline
        # (valid_genre), so this joining tells every genre table apart.
        if self.genres is not None:
            digest.update("\n".join("|".join(g) for g in self.genres).encode())
        return digest.hexdigest()


def _lookup(sorted_ids: np.ndarray, raw_ids: np.ndarray | int) -> np.ndarray:
    if isinstance(raw_ids, int) and not -(2**63) <= raw_ids < 2**63:
        return np.asarray(-1)  # beyond int64: no id of any dataset
    raw = np.asarray(raw_ids, dtype=np.int64)
    pos = np.clip(np.searchsorted(sorted_ids, raw), 0, len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == raw, pos, -1)


def from_raw(
    name: str,
    raw: RawRatings,
    rating_scale: tuple[float, float],
    metadata: ItemMetadata | None = None,
    truth: SyntheticTruth | None = None,
    source: str = "ratings",
    first_line: int = 1,
) -> RatingsDataset:
    """Remap raw ids to contiguous ones and attach metadata; refuse duplicate (user, item) pairs.

    ``truth`` (synthetic data) is indexed by raw id minus one and re-indexed here. ``first_line``
    is the line of ``source`` that holds the first rating (2 after a header), so that a duplicate
    is reported as ``source:line``.
    """
    user_ids, users = np.unique(raw.users, return_inverse=True)
    item_ids, items = np.unique(raw.items, return_inverse=True)
    keys = users.astype(np.int64) * len(item_ids) + items
    order = np.argsort(keys, kind="stable")
    dup = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    if len(dup):
        first, second = sorted(order[dup[0] : dup[0] + 2])
        line, other = first + first_line, second + first_line
        raise DataFormatError(
            f"{source}:{line}: user {raw.users[first]} rated item {raw.items[first]} twice "
            f"(lines {line} and {other})"
        )
    titles = genres = None
    if metadata is not None:
        titles = np.array([f"item {i}" for i in item_ids], dtype=object)
        genres = np.empty(len(item_ids), dtype=object)
        genres[:] = [()] * len(item_ids)
        where = _lookup(item_ids, metadata.item_ids)
        known = where >= 0
        titles[where[known]] = metadata.titles[known]
        genres[where[known]] = metadata.genres[known]
    if truth is not None:
        truth = truth.subset(user_ids - 1, item_ids - 1)
        if genres is None:
            genres = truth.item_genres()
    return RatingsDataset(
        name=name,
        user_ids=user_ids,
        item_ids=item_ids,
        users=users.astype(np.int32),
        items=items.astype(np.int32),
        ratings=raw.ratings.astype(np.float32),
        timestamps=raw.timestamps.astype(np.int64),
        rating_scale=rating_scale,
        titles=titles,
        genres=genres,
        truth=truth,
    )
