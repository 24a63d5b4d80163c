"""A loaded rating log with contiguous ids, by name: GroupLens releases or the synthetic ones."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataFormatError, MovieLensRecError
from .formats import SYNTHETIC_NAMES, GroupLensFormat, get_format
from .loaders import ItemMetadata, RawRatings, read_items, read_ratings
from .prepared import content_key, load_prepared, prepared_path, save_prepared
from .sources import locate_dataset
from .storage import writable_file
from .synthetic import GENERATOR_VERSION, SyntheticTruth, generate_synthetic


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
        """SHA-256 over the ratings and ids: equal logs give equal keys, for caches."""
        digest = hashlib.sha256(self.name.encode())
        for array in (
            self.user_ids,
            self.item_ids,
            self.users,
            self.items,
            self.ratings,
            self.timestamps,
        ):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def _lookup(sorted_ids: np.ndarray, raw_ids: np.ndarray | int) -> np.ndarray:
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


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> RatingsDataset:
    """Load a dataset by name.

    Args:
        name: one of ``ml-100k``, ``ml-1m``, ``ml-10m``, ``ml-20m``, ``ml-25m``,
            ``ml-latest-small`` (GroupLens) or ``synthetic``, ``synthetic-100k``,
            ``synthetic-1m``, ``synthetic-25m`` (generated offline).
        data_dir: GroupLens data: the dataset folder, a folder containing it, or its zip.
        cache_dir: overrides ``$MOVIELENS_DATA`` and the user cache dir.
        download: whether a missing GroupLens dataset may be downloaded.
    """
    if name in SYNTHETIC_NAMES:
        if data_dir is not None:
            raise MovieLensRecError(f"dataset {name!r} is generated; it takes no data_dir")
        canonical = "synthetic-100k" if name == "synthetic" else name
        path = prepared_path(canonical, f"generator-v{GENERATOR_VERSION}", cache_dir)
        return _cached(path, canonical, (1.0, 5.0), lambda: _generate(canonical))
    fmt = get_format(name)
    folder, tmp = locate_dataset(fmt, data_dir, cache_dir=cache_dir, download=download)
    try:
        ratings_path = folder / fmt.ratings_file
        path = None
        if tmp is None:  # a lasting folder (not a zip extracted for this call): cache its parse
            key = content_key(ratings_path, folder / fmt.items_file)
            path = prepared_path(name, key, cache_dir)
        return _cached(path, name, fmt.rating_scale, lambda: _parse(name, fmt, folder))
    finally:
        if tmp is not None:
            tmp.cleanup()


def _cached(
    path: Path | None,
    name: str,
    rating_scale: tuple[float, float],
    build: Callable[[], RatingsDataset],
) -> RatingsDataset:
    """The prepared dataset at ``path`` if usable, else ``build()`` (stored when ``path``)."""
    if path is not None:
        writable_file(path)
    if path is not None and path.exists():
        dataset = load_prepared(path, name, rating_scale)
        if dataset is not None:
            return dataset
    dataset = build()
    if path is not None:
        save_prepared(path, dataset)
    return dataset


def _generate(name: str) -> RatingsDataset:
    raw, truth = generate_synthetic(name)
    dataset = from_raw(name, raw, (1.0, 5.0), truth=truth, source=name)
    titles = np.array([f"Synthetic movie {i}" for i in dataset.item_ids], dtype=object)
    return dataclasses.replace(dataset, titles=titles)


def _parse(name: str, fmt: GroupLensFormat, folder: Path) -> RatingsDataset:
    ratings_path = folder / fmt.ratings_file
    raw = read_ratings(ratings_path, fmt)
    metadata = read_items(folder / fmt.items_file, fmt)
    return from_raw(
        name,
        raw,
        fmt.rating_scale,
        metadata,
        source=str(ratings_path),
        first_line=2 if fmt.ratings_header else 1,
    )
