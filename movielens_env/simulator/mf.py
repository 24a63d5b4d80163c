"""Biased matrix factorisation fitted by alternating least squares on train ratings, cached on disk.

Its item factors are the env's item embeddings (they define the action space and the
observation); its predictions are the ``mf`` rating simulator.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ..data.split import UserRatings
from ..errors import ArgumentError
from ..storage import UNREADABLE, atomic_write, cache_root, read_cache, sealed, writable_file

_CACHE_VERSION = 1
_CHUNK_ELEMENTS = 4_000_000  # floats per padded batch of users (~32 MB), bounding memory


@dataclass(frozen=True)
class MFConfig:
    """Hyper-parameters of the factorisation.

    Attributes:
        dim: embedding dimension (the paper uses 100; 16 to 200 are common).
        reg: weighted-lambda L2 penalty per rating (ALS-WR); larger values shrink the factors
            towards the biases. 0.02 to 0.2 is the usual range.
        iterations: ALS sweeps (each solves all users, then all items); 10 to 20 converge.
        seed: seed of the random initial item factors; the fit is otherwise deterministic.
        init_scale: standard deviation of the initial item factors.
    """

    dim: int = 100
    reg: float = 0.1
    iterations: int = 15
    seed: int = 0
    init_scale: float = 0.1

    def __post_init__(self) -> None:
        for name, (low, high) in _INT_RANGES.items():
            value = getattr(self, name)
            if (
                isinstance(value, (bool, np.bool_))
                or not isinstance(value, (int, np.integer))
                or not low <= value <= high
            ):
                raise ArgumentError(
                    f"MFConfig.{name} must be an integer in [{low}, {high}], got {value!r}"
                )
        for name, (smallest, largest) in _FLOAT_RANGES.items():
            value = getattr(self, name)
            if (
                isinstance(value, (bool, np.bool_))
                or not isinstance(value, (int, float, np.integer, np.floating))
                or not (math.isfinite(value) and smallest <= value <= largest)
            ):
                raise ArgumentError(
                    f"MFConfig.{name} must be a number in [{smallest:g}, {largest:g}], got "
                    f"{value!r}"
                )
        # numpy scalars as the Python numbers they equal: the cache key is their JSON.
        for name in (*_INT_RANGES, *_FLOAT_RANGES):
            value = getattr(self, name)
            if isinstance(value, np.integer | np.floating):
                object.__setattr__(self, name, value.item())


# Beyond these, a fit is meaningless or never ends: a ridge penalty below 1e-6 leaves the
# normal equations of rarely rated items singular, and 1,000 sweeps are far past convergence.
_INT_RANGES = {"dim": (1, 1024), "iterations": (1, 1000), "seed": (0, 2**32 - 1)}
_FLOAT_RANGES = {"reg": (1e-6, 1e4), "init_scale": (1e-6, 10.0)}


@dataclass(frozen=True, eq=False)
class MFModel:
    """Fitted factors and biases: ``r(u, i) = mean + b_u + b_i + p_u . q_i``."""

    user_factors: np.ndarray  # float32 (n_users, dim)
    item_factors: np.ndarray  # float32 (n_items, dim)
    user_bias: np.ndarray  # float32 (n_users,)
    item_bias: np.ndarray  # float32 (n_items,)
    global_mean: float

    def predict(self, users: np.ndarray | int, items: np.ndarray | int) -> np.ndarray:
        """Predicted ratings of (user, item) pairs (broadcast), unclipped."""
        users, items = np.asarray(users), np.asarray(items)
        dot = (self.user_factors[users] * self.item_factors[items]).sum(axis=-1)
        return self.global_mean + self.user_bias[users] + self.item_bias[items] + dot

    def predict_user(self, user: int) -> np.ndarray:
        """Predicted ratings of one user for the whole catalogue, unclipped."""
        scores = self.item_factors @ self.user_factors[user]
        return self.global_mean + self.user_bias[user] + self.item_bias + scores


def _transpose(rows: UserRatings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item-major CSR of a user-major one: (indptr, users, ratings)."""
    users = rows.user_of_each_rating()
    order = np.argsort(rows.items, kind="stable")
    counts = np.bincount(rows.items, minlength=rows.n_items)
    return np.concatenate([[0], np.cumsum(counts)]), users[order], rows.ratings[order]


def _solve_rows(
    indptr: np.ndarray, cols: np.ndarray, targets: np.ndarray, other: np.ndarray, reg: float
) -> np.ndarray:
    """Ridge solutions ``w_r = argmin sum (t - x_c . w)^2 + reg * n_r * |w|^2`` for every row.

    Rows are processed in batches of similar length, padded with zeros, so the Gram matrices come
    from batched matrix products rather than a Python loop over rows.
    """
    n_rows, width = len(indptr) - 1, other.shape[1]
    counts = np.diff(indptr)
    solution = np.zeros((n_rows, width))
    order = np.argsort(counts, kind="stable")
    start = 0
    while start < n_rows:
        longest = max(int(counts[order[min(start + 1, n_rows) - 1]]), 1)
        size = max(1, _CHUNK_ELEMENTS // (longest * width))
        # Rows are sorted by length, so the last row of the batch is the longest one.
        end = min(n_rows, start + size)
        while end > start + 1 and counts[order[end - 1]] * width * (end - start) > _CHUNK_ELEMENTS:
            end = start + max(1, (end - start) // 2)
        batch = order[start:end]
        lengths = counts[batch]
        length = max(int(lengths.max()), 1)
        slot = np.repeat(np.arange(len(batch)), lengths)
        offset = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        source = np.repeat(indptr[batch], lengths) + offset
        x = np.zeros((len(batch), length, width))
        y = np.zeros((len(batch), length))
        x[slot, offset] = other[cols[source]]
        y[slot, offset] = targets[source]
        # The Gram matrices take width**2 floats a row whatever the rows' lengths: built and
        # solved a slice of the batch at a time, short rows at dim 1024 stay within the bound.
        step = max(1, _CHUNK_ELEMENTS // (width * width))
        for first in range(0, len(batch), step):
            part = slice(first, first + step)
            xt = x[part].transpose(0, 2, 1)
            gram = np.matmul(xt, x[part])
            gram += (reg * np.maximum(lengths[part], 1))[:, None, None] * np.eye(width)
            rhs = np.matmul(xt, y[part, :, None])
            solution[batch[part]] = np.linalg.solve(gram, rhs)[:, :, 0]
        start = end
    return solution


def fit_mf(train: UserRatings, config: MFConfig) -> MFModel:
    """Fit biased MF on the train ratings by ALS (deterministic given ``config.seed``).

    BLAS runs single-threaded here: the work is thousands of tiny (dim + 1)-square systems, for
    which threads only add synchronisation, and under load from another process a threaded
    BLAS made the same fit 30 times slower (213 s instead of 6.6 s on synthetic-100k, 2 cores).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_mf(train, config)


def _fit_mf(train: UserRatings, config: MFConfig) -> MFModel:
    rng = np.random.default_rng(config.seed)
    mean = float(train.ratings.mean()) if len(train.ratings) else 3.0
    residual = train.ratings.astype(np.float64) - mean
    item_indptr, item_users, item_ratings = _transpose(train)
    item_residual = item_ratings.astype(np.float64) - mean
    # Each side is solved with the other side's factors augmented by a column of ones, so the
    # last coordinate of every solution is that row's bias.
    items = np.hstack(
        [
            rng.normal(0.0, config.init_scale, (train.n_items, config.dim)),
            np.zeros((train.n_items, 1)),
        ]
    )
    users = np.zeros((train.n_users, config.dim + 1))
    # A bar only for fits that take a while (long sweeps, big data): the fit is cached after.
    sweeps = tqdm(
        range(config.iterations), desc=f"MF fit ({len(train.ratings):,} ratings, dim {config.dim})",
        unit="sweep", delay=2.0, leave=False,
    )  # fmt: skip
    for _ in sweeps:
        other = np.hstack([items[:, :-1], np.ones((train.n_items, 1))])
        users = _solve_rows(
            train.indptr, train.items, residual - items[train.items, -1], other, config.reg
        )
        other = np.hstack([users[:, :-1], np.ones((train.n_users, 1))])
        items = _solve_rows(
            item_indptr, item_users, item_residual - users[item_users, -1], other, config.reg
        )
    return MFModel(
        user_factors=users[:, :-1].astype(np.float32),
        item_factors=items[:, :-1].astype(np.float32),
        user_bias=users[:, -1].astype(np.float32),
        item_bias=items[:, -1].astype(np.float32),
        global_mean=mean,
    )


def rmse(model: MFModel, rows: UserRatings, clip: tuple[float, float] | None = None) -> float:
    """Root mean squared error of the model on the given ratings."""
    predicted = model.predict(rows.user_of_each_rating(), rows.items)
    if clip is not None:
        predicted = np.clip(predicted, *clip)
    return float(np.sqrt(np.mean((predicted - rows.ratings) ** 2)))


def mf_cache_key(fingerprint: str, train_fraction: float, config: MFConfig) -> str:
    """What a fit's cache is keyed by: dataset fingerprint, split and hyper-parameters."""
    return json.dumps(
        {
            "v": _CACHE_VERSION,
            "data": fingerprint,
            "split": train_fraction,
            **dataclasses.asdict(config),
        },
        sort_keys=True,
    )


def mf_cache_path(
    fingerprint: str, train_fraction: float, config: MFConfig, cache_dir=None
) -> Path:
    """Cache file of a fit, named by a hash of its :func:`mf_cache_key`."""
    key = mf_cache_key(fingerprint, train_fraction, config)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return cache_root(cache_dir) / "embeddings" / f"mf-{digest}.npz"


def _read_cached(path: Path, key: str, n_users: int, n_items: int, dim: int) -> MFModel | None:
    try:
        arrays = read_cache(path, key)
        model = MFModel(
            arrays["user_factors"],
            arrays["item_factors"],
            arrays["user_bias"],
            arrays["item_bias"],
            float(arrays["global_mean"]),
        )
    except UNREADABLE as exc:
        warnings.warn(f"ignoring MF cache {path}: {exc}; refitting", stacklevel=3)
        return None
    if not _plausible(model, n_users, n_items, dim):
        warnings.warn(
            f"ignoring MF cache {path} with wrong shapes or values; refitting", stacklevel=3
        )
        return None
    return model


def _plausible(model: MFModel, n_users: int, n_items: int, dim: int) -> bool:
    """Every array of the expected shape and finite, the mean included."""
    expected = (
        (model.user_factors, (n_users, dim)),
        (model.item_factors, (n_items, dim)),
        (model.user_bias, (n_users,)),
        (model.item_bias, (n_items,)),
    )
    return all(
        array.shape == shape and array.dtype == np.float32 and np.isfinite(array).all()
        for array, shape in expected
    ) and math.isfinite(model.global_mean)


# ALS's work: per sweep, a dim x dim system per user and per item, and a dim x dim update per
# rating. On these 2 cores about 7e9 such units a second: ML-100K's default fit is 5e10 (7 s),
# ML-25M's 6e12 (about 15 minutes); dim 1024 with 1,000 sweeps on ML-100K was 3e15 (days),
# silent until its first sweep ended. The limit is about 40 minutes.
MAX_FIT_WORK = 2**44


def check_fit_cost(train: UserRatings, config: MFConfig) -> None:
    """Refuse an MF fit of ``config`` on ``train`` that would run for hours.

    Raises:
        ArgumentError: naming dim and iterations, the work and its limit.
    """
    n_ratings = int(train.indptr[-1])
    per_sweep = (train.n_users + train.n_items) * config.dim**3 + n_ratings * config.dim**2
    work = config.iterations * per_sweep
    if work > MAX_FIT_WORK:
        raise ArgumentError(
            f"mf_options dim={config.dim} with iterations={config.iterations} on "
            f"{train.n_users:,} users, {train.n_items:,} items and {n_ratings:,} ratings is "
            f"{work:.2g} units of ALS work, beyond {MAX_FIT_WORK:.2g} (hours of fitting): lower "
            "dim (embedding_dim) or iterations"
        )


def load_or_fit_mf(
    train: UserRatings,
    config: MFConfig,
    fingerprint: str,
    train_fraction: float,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
) -> MFModel:
    """The cached fit for this data, split and config; fitted and cached atomically if absent."""
    key = mf_cache_key(fingerprint, train_fraction, config)
    path = mf_cache_path(fingerprint, train_fraction, config, cache_dir)
    if use_cache:
        writable_file(path)
    if use_cache and path.exists():
        model = _read_cached(path, key, train.n_users, train.n_items, config.dim)
        if model is not None:
            return model
    check_fit_cost(train, config)
    model = fit_mf(train, config)
    if not _plausible(model, train.n_users, train.n_items, config.dim):
        raise ArgumentError(
            f"the MF fit with {config} gave values that are not finite; nothing was cached "
            "(try a larger reg)"
        )
    if use_cache:
        arrays: dict[str, Any] = {
            "user_factors": model.user_factors, "item_factors": model.item_factors,
            "user_bias": model.user_bias, "item_bias": model.item_bias,
            "global_mean": np.array(model.global_mean, dtype=np.float64),
        }  # fmt: skip
        arrays = sealed(arrays, key)
        atomic_write(path, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")
    return model
