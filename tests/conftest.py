"""Shared fixtures: an isolated cache folder and a small generated dataset (never real data)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from movielens_env import MovieLensRecEnv, RatingsDataset
from movielens_env.data.ratings import from_raw
from movielens_env.data.synthetic import generate_ratings
from tests.helpers import SMALL_ENV_KWARGS


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point $MOVIELENS_DATA at a session folder so tests never touch the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOVIELENS_DATA", str(tmp_path_factory.mktemp("movielens-cache")))
        yield


@pytest.fixture(scope="session")
def small_dataset() -> RatingsDataset:
    """120 users, 300 items, 5000 ratings, with the generator's truth."""
    raw, truth = generate_ratings(120, 300, 5000, seed=1)
    return from_raw("synthetic-small", raw, (1.0, 5.0), truth=truth)


@pytest.fixture(scope="session")
def real_like_dataset() -> RatingsDataset:
    """The same kind of log but without a truth, as real data is."""
    raw, _ = generate_ratings(80, 200, 3000, seed=2)
    return from_raw("real-like", raw, (1.0, 5.0))


@pytest.fixture
def make_env(small_dataset: RatingsDataset) -> Callable[..., MovieLensRecEnv]:
    """Build an unwrapped env on the small dataset; keyword arguments override the defaults."""

    def make(**kwargs) -> MovieLensRecEnv:
        return MovieLensRecEnv(dataset=small_dataset, **{**SMALL_ENV_KWARGS, **kwargs})

    return make
