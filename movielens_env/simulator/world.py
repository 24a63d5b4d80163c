"""Everything an env reads (data, split, fitted MF), built once per process and shared."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..data.load import load_dataset
from ..data.ratings import RatingsDataset
from ..data.sources import source_signature
from ..data.split import TRAIN_FRACTION, TemporalSplit, UserRatings, temporal_split
from ..storage import cache_root
from .mf import MFConfig, MFModel, load_or_fit_mf

POSITIVE_RATING = 4.0


@dataclass(frozen=True)
class WorldSpec:
    """What identifies a world: two envs with equal specs share one in memory."""

    dataset: str | RatingsDataset
    data_dir: str | None = None
    cache_dir: str | None = None
    download: bool = True
    mf: MFConfig = field(default_factory=MFConfig)
    train_fraction: float = TRAIN_FRACTION


@dataclass(frozen=True, eq=False)
class ItemVectors:
    """The item vectors that actions are scored against, and how user vectors extend to match.

    With ``bias`` the item vector is ``[q_i, b_i]`` and the user vector ``[p_u, 1]``, so the
    user vector scores ``p_u . q_i + b_i``: MF's prediction less the user's own constant, hence
    exactly MF's ranking. Without it, both are the plain MF factors (the paper's ``a . q_i``).

    Attributes:
        items: ``(n_items, d)`` float32, for the coarse scoring product.
        items64: the same in float64, for exact re-scoring (see
            :mod:`movielens_env.simulator.scoring`).
        fitted_users: ``(n_users, d)`` float32 vectors of the users' fitted tastes.
        bound: the largest absolute value of any user or item vector.
        bias: whether the vectors carry the bias.
    """

    items: np.ndarray
    items64: np.ndarray
    fitted_users: np.ndarray
    bound: float
    bias: bool

    @property
    def dim(self) -> int:
        """Length of every item, user and action vector."""
        return self.items.shape[1]

    def users(self, factors: np.ndarray) -> np.ndarray:
        """User vectors (float32) from MF user factors ``(..., dim)``: ``[p_u, 1]`` with bias."""
        factors = np.asarray(factors, dtype=np.float32)
        if not self.bias:
            return factors
        ones = np.ones((*factors.shape[:-1], 1), dtype=np.float32)
        return np.concatenate([factors, ones], axis=-1)


@dataclass(frozen=True, eq=False)
class RecWorld:
    """A dataset with its temporal split, its MF model and each user's positive train ratings.

    Immutable and shared between envs; pickles as its spec (the MF fit comes back from the disk
    cache), so pickled envs stay small.
    """

    spec: WorldSpec
    dataset: RatingsDataset
    split: TemporalSplit
    mf: MFModel
    positives: UserRatings  # train ratings >= 4, per user in time order
    embedding_bound: float  # max |value| over user and item factors

    @cached_property
    def item_factors64(self) -> np.ndarray:
        """The item factors in float64, for exact re-scoring of shortlisted items."""
        return self.mf.item_factors.astype(np.float64)

    def vectors(self, item_bias: bool) -> ItemVectors:
        """The vectors actions score: ``[q_i, b_i]`` with ``item_bias``, else ``q_i``."""
        return self._biased_vectors if item_bias else self._plain_vectors

    @cached_property
    def _plain_vectors(self) -> ItemVectors:
        mf = self.mf
        return ItemVectors(
            mf.item_factors, self.item_factors64, mf.user_factors, self.embedding_bound, False
        )

    @cached_property
    def _biased_vectors(self) -> ItemVectors:
        mf = self.mf
        items = np.hstack([mf.item_factors, mf.item_bias[:, None]])
        users = np.hstack([mf.user_factors, np.ones((len(mf.user_factors), 1), np.float32)])
        bound = max(self.embedding_bound, 1.0, float(np.abs(mf.item_bias).max(initial=0.0)))
        return ItemVectors(items, items.astype(np.float64), users, bound, True)

    def __reduce__(self):
        return (build_world, (self.spec,))


_CACHE: dict[tuple, RecWorld] = {}
_LOCK = threading.Lock()
_MAX_CACHED = 4


def _cache_key(spec: WorldSpec) -> tuple:
    if isinstance(spec.dataset, RatingsDataset):
        return (
            spec.dataset.fingerprint(),
            spec.data_dir,
            spec.cache_dir,
            spec.mf,
            spec.train_fraction,
        )
    # The files' identity too: a world kept from files since edited would serve old ratings.
    return (spec, source_signature(spec.dataset, spec.data_dir, spec.cache_dir))


def build_world(
    spec: WorldSpec, check: Callable[[RatingsDataset], None] = lambda dataset: None
) -> RecWorld:
    """Load (or reuse from this process) the world described by ``spec``.

    ``check`` sees the dataset before anything is fitted, so that arguments the data cannot
    serve are refused before a long MF fit (and before anything is cached for them).
    """
    key = _cache_key(spec)
    with _LOCK:
        if key in _CACHE:
            check(_CACHE[key].dataset)
            return _CACHE[key]
    if isinstance(spec.dataset, RatingsDataset):
        dataset = spec.dataset
        dataset.check_consistent()  # built by hand: the loaders' checks were never run on it
    else:
        dataset = load_dataset(
            spec.dataset, spec.data_dir, cache_dir=spec.cache_dir, download=spec.download
        )
    check(dataset)
    split = temporal_split(dataset, spec.train_fraction)
    mf = load_or_fit_mf(
        split.train, spec.mf, dataset.fingerprint(), spec.train_fraction, spec.cache_dir
    )
    bound = float(
        max(np.abs(mf.user_factors).max(initial=0.0), np.abs(mf.item_factors).max(initial=0.0))
    )
    world = RecWorld(
        spec, dataset, split, mf, split.train.subset(split.train.ratings >= POSITIVE_RATING), bound
    )
    with _LOCK:
        while len(_CACHE) >= _MAX_CACHED:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = world
    return world


def world_spec(
    dataset: str | RatingsDataset,
    data_dir: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str] | None,
    download: bool,
    mf: MFConfig,
) -> WorldSpec:
    """A spec with paths resolved to strings, the cache folder included (so that a changed
    ``$MOVIELENS_DATA`` is a different world)."""
    return WorldSpec(
        dataset=dataset,
        data_dir=None if data_dir is None else os.fspath(data_dir),
        cache_dir=str(cache_root(cache_dir)),
        download=download,
        mf=mf,
    )
