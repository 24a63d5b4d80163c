"""The prepared-dataset cache: a loaded dataset stored as plain arrays.

Parsing a large GroupLens release or generating synthetic-25m takes about a minute and several
GB; reading the prepared arrays back takes seconds. Files are written atomically and read
without pickle; an unreadable or inconsistent file is reported and rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from ..storage import UNREADABLE, atomic_write, cache_root, read_cache, sealed
from .parsing import check_source_size
from .synthetic import SyntheticTruth

# 2: a genre named twice in an item's field is read once (caches of version 1 kept both).
_VERSION = 2
_ARRAYS = ("user_ids", "item_ids", "users", "items", "ratings", "timestamps")
_TRUTH = ("user_factors", "item_factors", "user_bias", "item_bias", "thresholds")


def prepared_key(name: str, source_key: str) -> str:
    """What a dataset's cache is keyed by: its name and what it was built from."""
    return f"v{_VERSION}|{name}|{source_key}"


def prepared_path(key: str, cache_dir: str | os.PathLike[str] | None) -> Path:
    """Cache file of the dataset of :func:`prepared_key` ``key``."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_root(cache_dir) / "prepared" / f"{key.split('|')[1]}-{digest}.npz"


def content_key(*paths: Path) -> str:
    """Identity of source files by content: a SHA-256 of each (``absent`` for a missing one).

    Size and modification time are not enough: a file edited in place can keep both. Hashing
    reads each file once per load (about a second for ML-25M's 650 MB of ratings).
    """
    parts = []
    for path in paths:
        if not path.is_file():
            parts.append("absent")
            continue
        check_source_size(path)  # before hashing it: a 50 GB file took minutes, silently
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                digest.update(chunk)
        parts.append(digest.hexdigest())
    return "|".join(parts)


def save_prepared(path: Path, dataset, key: str) -> None:
    """Write ``dataset`` (a :class:`~movielens_env.data.ratings.RatingsDataset`) atomically, as
    the content of :func:`prepared_key` ``key``."""
    arrays = {name: getattr(dataset, name) for name in _ARRAYS}
    arrays["rating_scale"] = np.array(dataset.rating_scale, dtype=np.float64)
    if dataset.titles is not None:
        arrays["titles_utf8"], arrays["titles_ends"] = _pack(dataset.titles.tolist())
    if dataset.genres is not None:
        packed = _pack(["|".join(g) for g in dataset.genres])
        arrays["genres_utf8"], arrays["genres_ends"] = packed
    if dataset.truth is not None:
        for name in _TRUTH:
            arrays[f"truth_{name}"] = getattr(dataset.truth, name)
        arrays["truth_noise_scale"] = np.float64(dataset.truth.noise_scale)
        if dataset.truth.genre_flags is not None:
            arrays["truth_genre_flags"] = dataset.truth.genre_flags
    arrays = sealed(arrays, key)
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")


def _pack(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings as their UTF-8 bytes end to end and where each ends: a fixed-width string array
    makes every item pay for the longest (one 4 MB title in a file asked for 27 GiB)."""
    encoded = [text.encode("utf-8", "surrogatepass") for text in strings]
    ends = np.cumsum([len(data) for data in encoded], dtype=np.int64)
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), ends


def _unpack(data: np.ndarray, ends: np.ndarray) -> list[str]:
    """The strings :func:`_pack` stored (``ValueError`` where the two arrays disagree)."""
    if ends.dtype.kind not in "iu" or (np.diff(ends) < 0).any() or (len(ends) and ends[0] < 0):
        raise ValueError("string offsets that are not ascending")
    if (ends[-1] if len(ends) else 0) != len(data):
        raise ValueError("string offsets that do not end with their bytes")
    raw = data.tobytes()
    bounds = zip([0, *ends[:-1].tolist()], ends.tolist(), strict=True)
    return [raw[start:end].decode("utf-8", "surrogatepass") for start, end in bounds]


def load_prepared(path: Path, name: str, rating_scale: tuple[float, float], key: str):
    """The dataset stored at ``path`` for :func:`prepared_key` ``key``, or ``None`` (with a
    warning) if it cannot be trusted: written for another key, or any value off (shapes, types,
    ranges, sorted ids, the expected ``rating_scale``), not only the file's form."""
    from .ratings import RatingsDataset

    try:
        arrays = read_cache(path, key)
        columns = {key: arrays[key] for key in _ARRAYS}
        truth = None
        if "truth_thresholds" in arrays:
            truth = SyntheticTruth(
                **{key: arrays[f"truth_{key}"] for key in _TRUTH},
                noise_scale=float(arrays["truth_noise_scale"]),
                genre_flags=arrays.get("truth_genre_flags"),
            )
        titles = None
        if "titles_utf8" in arrays:
            titles = np.empty(len(arrays["titles_ends"]), dtype=object)
            titles[:] = _unpack(arrays["titles_utf8"], arrays["titles_ends"])
        genres = None
        if "genres_utf8" in arrays:
            joined = _unpack(arrays["genres_utf8"], arrays["genres_ends"])
            genres = np.empty(len(joined), dtype=object)
            genres[:] = [tuple(g.split("|")) if g else () for g in joined]
        low, high = arrays["rating_scale"].tolist()
        dataset = RatingsDataset(
            name, **columns, rating_scale=(low, high), titles=titles, genres=genres, truth=truth
        )
        _check(dataset, rating_scale)
    except (*UNREADABLE, TypeError, IndexError) as exc:
        warnings.warn(
            f"ignoring unusable prepared dataset {path} ({exc}); rebuilding", stacklevel=3
        )
        return None
    return dataset


def _check(dataset, rating_scale: tuple[float, float]) -> None:
    if tuple(dataset.rating_scale) != tuple(rating_scale):
        raise ValueError(f"rating scale {dataset.rating_scale}, expected {rating_scale}")
    for name in ("user_ids", "item_ids", "users", "items", "timestamps"):
        if getattr(dataset, name).dtype.kind not in "iu":
            raise ValueError(f"{name} is not an integer array")
    for name in ("user_ids", "item_ids"):
        if (np.diff(getattr(dataset, name)) <= 0).any():
            raise ValueError(f"{name} are not sorted and distinct")
    if not np.isfinite(dataset.ratings).all():
        raise ValueError("ratings that are not finite")
    n = len(dataset.ratings)
    if not len(dataset.users) == len(dataset.items) == len(dataset.timestamps) == n:
        raise ValueError("rating columns have different lengths")
    if n and (
        dataset.users.min() < 0
        or dataset.users.max() >= dataset.n_users
        or dataset.items.min() < 0
        or dataset.items.max() >= dataset.n_items
    ):
        raise ValueError("user or item index out of range")
    low, high = dataset.rating_scale
    if n and not (low <= dataset.ratings.min() and dataset.ratings.max() <= high):
        raise ValueError("ratings outside the rating scale")
    truth = dataset.truth
    if truth is not None and (
        len(truth.user_factors) != dataset.n_users
        or len(truth.item_factors) != dataset.n_items
        or (truth.genre_flags is not None and len(truth.genre_flags) != dataset.n_items)
    ):
        raise ValueError("the synthetic truth does not match the users and items")
    if truth is not None:
        for name in _TRUTH:
            if not np.isfinite(getattr(truth, name)).all():
                raise ValueError(f"the synthetic truth's {name} are not finite")
        if (np.diff(truth.thresholds) <= 0).any() or not truth.noise_scale > 0:
            raise ValueError("the synthetic truth's thresholds or noise are impossible")
    for extra in (dataset.titles, dataset.genres):
        if extra is not None and len(extra) != dataset.n_items:
            raise ValueError("item metadata does not match the catalogue")
