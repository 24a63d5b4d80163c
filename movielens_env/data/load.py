"""Loading a dataset by name: find (or download, or generate) it, parse it once, and serve the
parse from the prepared cache afterwards. The entry point of the data package."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import DataFormatError, MovieLensRecError
from ..storage import writable_file
from .formats import SYNTHETIC_NAMES, GroupLensFormat, get_format
from .parsing import read_items, read_ratings
from .prepared import content_key, load_prepared, prepared_key, prepared_path, save_prepared
from .ratings import RatingsDataset, from_raw
from .sources import locate_dataset
from .synthetic import GENERATOR_VERSION, generate_synthetic


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
            ``synthetic-1m``, ``synthetic-25m``, ``synthetic-small`` (generated offline).
        data_dir: GroupLens data: the dataset folder, a folder containing it, or its zip.
        cache_dir: overrides ``$MOVIELENS_DATA`` and the user cache dir.
        download: whether a missing GroupLens dataset may be downloaded.
    """
    if name in SYNTHETIC_NAMES:
        if data_dir is not None:
            raise MovieLensRecError(f"dataset {name!r} is generated; it takes no data_dir")
        canonical = "synthetic-100k" if name == "synthetic" else name
        generated = prepared_key(canonical, f"generator-v{GENERATOR_VERSION}")
        return _cached(generated, cache_dir, canonical, (1.0, 5.0), lambda: _generate(canonical))
    fmt = get_format(name)
    folder, tmp = locate_dataset(fmt, data_dir, cache_dir=cache_dir, download=download)
    try:
        ratings_path = folder / fmt.ratings_file
        key: str | None = None
        sources = (ratings_path, folder / fmt.items_file)
        if tmp is None:  # a lasting folder (not a zip extracted for this call): cache its parse
            key = prepared_key(name, content_key(*sources))
        return _cached(
            key, cache_dir, name, fmt.rating_scale, lambda: _parse(name, fmt, folder),
            lambda: prepared_key(name, content_key(*sources)),
        )  # fmt: skip
    finally:
        if tmp is not None:
            tmp.cleanup()


def _cached(
    key: str | None,
    cache_dir: str | os.PathLike[str] | None,
    name: str,
    rating_scale: tuple[float, float],
    build: Callable[[], RatingsDataset],
    key_now: Callable[[], str] | None = None,
) -> RatingsDataset:
    """The prepared dataset cached for ``key`` if usable, else ``build()`` (cached when there
    is a ``key``, and ``key_now()`` still gives it after the build: files replaced while they
    were parsed would otherwise leave their new content under the old files' key)."""
    if key is None:
        return build()
    path = prepared_path(key, cache_dir)
    writable_file(path)
    if path.exists():
        dataset = load_prepared(path, name, rating_scale, key)
        if dataset is not None:
            return dataset
    dataset = build()
    if key_now is not None and key_now() != key:
        warnings.warn(
            f"the {name} files changed while they were read; this parse was not cached",
            stacklevel=3,
        )
        return dataset
    save_prepared(path, dataset, key)
    return dataset


def _generate(name: str) -> RatingsDataset:
    raw, truth = generate_synthetic(name)
    dataset = from_raw(name, raw, (1.0, 5.0), truth=truth, source=name)
    titles = np.array([f"Synthetic movie {i}" for i in dataset.item_ids], dtype=object)
    return dataclasses.replace(dataset, titles=titles)


def _parse(name: str, fmt: GroupLensFormat, folder: Path) -> RatingsDataset:
    ratings_path = folder / fmt.ratings_file
    raw = read_ratings(ratings_path, fmt)
    items_path = folder / fmt.items_file
    metadata = read_items(items_path, fmt)
    if metadata is not None:
        # GroupLens lists every rated item; one without a row would silently lose its title
        # and genres (and never bore under the boredom user model).
        missing = np.setdiff1d(np.unique(raw.items), metadata.item_ids)
        if len(missing):
            raise DataFormatError(
                f"{items_path}: no row for {len(missing)} of the {len(np.unique(raw.items))} "
                f"rated items (item {missing[0]} first); it must list every item of "
                f"{ratings_path.name}"
            )
    return from_raw(
        name,
        raw,
        fmt.rating_scale,
        metadata,
        source=str(ratings_path),
        first_line=2 if fmt.ratings_header else 1,
    )
