"""MovieLensRec: MovieLens rating logs as a Gymnasium recommendation environment.

Importing the package registers ``MovieLensRec-v0`` (once, however often it is imported)::

    import gymnasium as gym
    import movielens_env

    env = gym.make("MovieLensRec-v0", dataset="synthetic")
    envs = gym.make_vec("MovieLensRec-v0", num_envs=64, dataset="synthetic")  # native batch
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from .dataset import RatingsDataset, load_dataset
from .env import MovieLensRecEnv
from .errors import (
    ChecksumError,
    DataFormatError,
    DataNotFoundError,
    MovieLensRecError,
    UnsafeArchiveError,
)
from .formats import DATASET_NAMES, FORMATS
from .mf import MFConfig, MFModel
from .split import TemporalSplit, UserRatings, temporal_split
from .vector_env import MovieLensRecVectorEnv

ENV_ID = "MovieLensRec-v0"
MAX_EPISODE_STEPS = 10

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="movielens_env.env:MovieLensRecEnv",
        vector_entry_point="movielens_env.vector_env:MovieLensRecVectorEnv",
        max_episode_steps=MAX_EPISODE_STEPS,
        kwargs={"dataset": "ml-1m"},
    )

__all__ = [
    "DATASET_NAMES",
    "ENV_ID",
    "FORMATS",
    "ChecksumError",
    "DataFormatError",
    "DataNotFoundError",
    "MFConfig",
    "MFModel",
    "MovieLensRecEnv",
    "MovieLensRecError",
    "MovieLensRecVectorEnv",
    "RatingsDataset",
    "TemporalSplit",
    "UnsafeArchiveError",
    "UserRatings",
    "load_dataset",
    "temporal_split",
]
