"""MovieLensRec: MovieLens rating logs as a Gymnasium recommendation environment.

Importing the package registers ``MovieLensRec-v0`` (once, however often it is imported)::

    import gymnasium as gym
    import movielens_env

    env = gym.make("MovieLensRec-v0", dataset="synthetic")
    envs = gym.make_vec("MovieLensRec-v0", num_envs=64, dataset="synthetic")  # native batch
    env = gym.make("MovieLensRec-BoredomDrift-v0", dataset="synthetic")  # users with a state

and the variants in ``VARIANTS``, whose users get bored, drift in taste and may leave.
"""

from __future__ import annotations

from typing import Any

from gymnasium.envs.registration import register, registry

from .data.formats import DATASET_NAMES, FORMATS
from .data.load import load_dataset
from .data.ratings import RatingsDataset
from .data.split import TemporalSplit, UserRatings, temporal_split
from .envs.env import MovieLensRecEnv
from .envs.setup import EnvConfig, load_world
from .envs.vector_env import MovieLensRecVectorEnv
from .errors import (
    ArgumentError,
    CacheError,
    ChecksumError,
    DataFormatError,
    DataNotFoundError,
    InvalidActionError,
    MovieLensRecError,
    UnsafeArchiveError,
)
from .simulator.mf import MFConfig, MFModel
from .simulator.user_model import UserModelConfig, UserModelError, default_horizon, parse_user_model

ENV_ID = "MovieLensRec-v0"
MAX_EPISODE_STEPS = 10
# Registered variants with a user state, by id: their user model; each gets the horizon that
# suits it (default_horizon). A client that can only pass an id (rl-zoo3, RLlib) gets them.
VARIANTS = {
    "MovieLensRec-Boredom-v0": "boredom",
    "MovieLensRec-BoredomDrift-v0": "boredom+drift",
    "MovieLensRec-BoredomDriftPatience-v0": "boredom+drift+patience",
}
# The default long-horizon variant: boredom and drift over 20 steps, where planning pays.
LONG_HORIZON_ID = "MovieLensRec-BoredomDrift-v0"


def variant_kwargs(user_model: str) -> dict[str, Any]:
    """Env keyword arguments of a user model with the horizon that suits it, as the registered
    variants have it: ``{"user_model": ..., "max_episode_steps": ...}``."""
    config = parse_user_model(user_model)
    return {"user_model": config.name, "max_episode_steps": default_horizon(config)}


for _id, _model in {ENV_ID: "static", **VARIANTS}.items():
    if _id not in registry:
        _kwargs = variant_kwargs(_model)
        register(
            id=_id,
            entry_point="movielens_env.envs.env:MovieLensRecEnv",
            vector_entry_point="movielens_env.envs.vector_env:MovieLensRecVectorEnv",
            max_episode_steps=_kwargs.pop("max_episode_steps"),
            kwargs={"dataset": "ml-1m", **_kwargs},
        )

__all__ = [
    "DATASET_NAMES",
    "ENV_ID",
    "FORMATS",
    "LONG_HORIZON_ID",
    "MAX_EPISODE_STEPS",
    "VARIANTS",
    "ArgumentError",
    "CacheError",
    "ChecksumError",
    "DataFormatError",
    "DataNotFoundError",
    "EnvConfig",
    "InvalidActionError",
    "MFConfig",
    "MFModel",
    "MovieLensRecEnv",
    "MovieLensRecError",
    "MovieLensRecVectorEnv",
    "RatingsDataset",
    "TemporalSplit",
    "UnsafeArchiveError",
    "UserModelConfig",
    "UserModelError",
    "UserRatings",
    "default_horizon",
    "load_dataset",
    "load_world",
    "parse_user_model",
    "temporal_split",
    "variant_kwargs",
]
