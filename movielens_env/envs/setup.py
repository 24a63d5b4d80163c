"""What both envs are made of: their arguments, validated once (:class:`EnvConfig`), and what
those arguments build on the data (:class:`EnvSetup`: the world, the item vectors, the user
model, the users who can start an episode, the observation and the spaces)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from ..checks import choice, episode_length, finite_number, positive_int
from ..data.ratings import RatingsDataset
from ..errors import ArgumentError
from ..simulator.mf import MFConfig
from ..simulator.user_model import REWARD_MODELS, UserModel, UserModelConfig, parse_user_model
from ..simulator.world import ItemVectors, RecWorld, build_world, world_spec
from .observation import OBS_MODES, ObservationBuilder

SPLITS = ("train", "test")
CANDIDATE_MODES = ("all", "rated")
RENDER_MODES = ("ansi", "human", "rgb_array")
MAX_EMBEDDING_DIM = 1024
_USER_DEFAULTS = UserModelConfig()
_UNRATED = -0.5  # unrated_reward's default


@dataclass(frozen=True)
class EnvConfig:
    """The arguments of ``MovieLensRec-v0`` (see :class:`~movielens_env.MovieLensRecEnv` for
    each), validated on construction: a wrong type or value raises :class:`ArgumentError`
    naming the argument and what it allows. ``user`` and ``mf`` are the user-model and MF
    configs the arguments give."""

    dataset: str | RatingsDataset = "ml-1m"
    data_dir: str | os.PathLike[str] | None = None
    split: str = "train"
    history_len: int = 10
    embedding_dim: int = 100
    slate_size: int = 1
    candidates: str = "all"
    reward_model: str = "mf"
    unrated_reward: float = _UNRATED
    obs_mode: str = "flat"
    render_mode: str | None = None
    item_bias: bool = True
    user_model: str = "static"
    satiation_strength: float = _USER_DEFAULTS.satiation_strength
    satiation_decay: float | tuple[float, ...] | None = _USER_DEFAULTS.satiation_decay
    drift_rate: float = _USER_DEFAULTS.drift_rate
    patience_budget: float = _USER_DEFAULTS.patience_budget
    patience_threshold: float = _USER_DEFAULTS.patience_threshold
    patience_cost: float = _USER_DEFAULTS.patience_cost
    cache_dir: str | os.PathLike[str] | None = None
    download: bool = True
    mf_options: dict[str, Any] | None = None
    user: UserModelConfig = field(init=False, repr=False)
    mf: MFConfig = field(init=False, repr=False)

    def __post_init__(self) -> None:
        choice("split", self.split, SPLITS)
        choice("candidates", self.candidates, CANDIDATE_MODES)
        choice("reward_model", self.reward_model, REWARD_MODELS)
        choice("obs_mode", self.obs_mode, OBS_MODES)
        choice("render_mode", self.render_mode, (None, *RENDER_MODES))
        _check_types(
            dataset=self.dataset, data_dir=self.data_dir, cache_dir=self.cache_dir,
            download=self.download, mf_options=self.mf_options, item_bias=self.item_bias,
        )  # fmt: skip
        if self.cache_dir is not None and not str(os.fspath(self.cache_dir)).strip():
            raise ArgumentError(
                f"cache_dir is empty ({self.cache_dir!r}), which would mean the current folder; "
                "give a folder path, or None for the default cache"
            )
        dim = positive_int("embedding_dim", self.embedding_dim)
        if dim > MAX_EMBEDDING_DIM:
            raise ArgumentError(
                f"embedding_dim={dim} is beyond {MAX_EMBEDDING_DIM} (the paper uses 100; ALS "
                "solves a dim x dim system per user and item)"
            )
        unrated = finite_number("unrated_reward", self.unrated_reward)
        normalized = {
            "history_len": positive_int("history_len", self.history_len),
            "slate_size": positive_int("slate_size", self.slate_size),
            "embedding_dim": dim,
            "unrated_reward": unrated,
            "item_bias": bool(self.item_bias),
            "download": bool(self.download),
            "user": self._user_model(),
            "mf": _mf_config(dim, self.mf_options),
        }
        if not -1.0 <= unrated <= 1.0:
            raise ArgumentError(
                f"unrated_reward must be in [-1, 1], the range of a rated item's reward, got "
                f"{self.unrated_reward}"
            )
        if self.reward_model != "logged" and unrated != _UNRATED:
            raise ArgumentError(
                f"unrated_reward={self.unrated_reward} is used by reward_model='logged' only; "
                f"with {self.reward_model!r} every item has a rating, so it would be ignored"
            )
        for name, value in normalized.items():
            object.__setattr__(self, name, value)

    def _user_model(self) -> UserModelConfig:
        return parse_user_model(
            self.user_model, satiation_strength=self.satiation_strength,
            satiation_decay=self.satiation_decay, drift_rate=self.drift_rate,
            patience_budget=self.patience_budget, patience_threshold=self.patience_threshold,
            patience_cost=self.patience_cost,
        )  # fmt: skip

    @classmethod
    def of(cls, **kwargs: Any) -> EnvConfig:
        """The config of keyword arguments; an unknown one is refused with the allowed list."""
        allowed = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise ArgumentError(
                f"MovieLensRec-v0 takes no argument {', '.join(map(repr, unknown))}; allowed: "
                f"{', '.join(sorted(allowed))}"
            )
        return cls(**kwargs)


class EnvSetup:
    """What a config builds on the data, shared by the single and the vector env.

    Attributes:
        config: the validated arguments.
        world: data, split, MF model and positives (shared by every env of the same data).
        vectors: the item vectors actions are scored against.
        user_model: how users rate, are rewarded and change.
        eligible_users: internal ids of the users who can start an episode.
        observe: the observation builder.
        action_space: ``Box(-1, 1, (D,))``.
        observation_space: the observation builder's space.
    """

    def __init__(self, config: EnvConfig) -> None:
        self.config = config
        self.world = _world(config)
        data = self.world.dataset
        history_len, slate_size = config.history_len, config.slate_size
        self.vectors: ItemVectors = self.world.vectors(config.item_bias)
        self.user_model = UserModel(
            self.world, config.user, config.reward_model, config.split, config.unrated_reward
        )
        self.eligible_users = self._eligible_users()
        self.observe = ObservationBuilder(
            self.vectors, self.user_model, history_len, slate_size, config.obs_mode,
            data.n_users,
        )  # fmt: skip
        self.action_space = spaces.Box(-1.0, 1.0, (self.vectors.dim,), np.float32)
        self.observation_space = self.observe.space

    def _eligible_users(self) -> np.ndarray:
        config, split = self.config, self.world.split
        enough = self.world.positives.counts >= config.history_len
        if config.candidates == "rated":
            pool = (
                split.train.counts - config.history_len
                if config.split == "train"
                else split.test.counts
            )
            enough &= pool >= config.slate_size
        eligible = np.flatnonzero(enough)
        if len(eligible) == 0:
            pool_text = (
                f" and {config.slate_size} rated items in the {config.split} pool"
                if config.candidates == "rated"
                else ""
            )
            raise ArgumentError(
                f"no user of {self.world.dataset.name!r} has {config.history_len} positive "
                f"train ratings{pool_text}"
            )
        return eligible

    def initial_history(self, users: np.ndarray) -> np.ndarray:
        """``(n, history_len)`` starting histories of users: their first positive train ratings
        in time (train split) or the last ones of the train part (test split)."""
        history_len, positives = self.config.history_len, self.world.positives
        first = positives.indptr[users]
        if self.config.split == "test":
            first = positives.indptr[users + 1] - history_len
        return positives.items[first[:, None] + np.arange(history_len)].astype(np.int64)

    def user_from_raw(self, raw_id: Any) -> int:
        """The internal id of a raw user id that can start an episode, else an ArgumentError."""
        if isinstance(raw_id, (bool, np.bool_)) or not isinstance(raw_id, (int, np.integer)):
            raise ArgumentError(
                f"options['user_id'] must be a raw user id (an integer), got {raw_id!r}"
            )
        data = self.world.dataset
        known = -(2**63) <= int(raw_id) < 2**63
        user = int(data.user_index(int(raw_id))) if known else -1
        if user < 0:
            raise ArgumentError(f"options['user_id']={raw_id!r} is not a user of {data.name!r}")
        if not np.isin(user, self.eligible_users):
            raise ArgumentError(
                f"user {raw_id} cannot start an episode: fewer than "
                f"history_len={self.config.history_len} positive train ratings"
                + (" or too small a rated pool" if self.config.candidates == "rated" else "")
            )
        return user


class UsesSetup:
    """The attributes both envs expose from their :class:`EnvSetup` (set by :meth:`_adopt`)."""

    setup: EnvSetup
    world: RecWorld
    vectors: ItemVectors
    user_model: UserModel
    eligible_users: np.ndarray
    observe: ObservationBuilder
    split: str
    history_len: int
    slate_size: int
    candidates: str
    reward_model: str
    unrated_reward: float
    obs_mode: str
    item_bias: bool

    def _adopt(self, setup: EnvSetup) -> None:
        config = setup.config
        self.setup, self.world, self.vectors = setup, setup.world, setup.vectors
        self.user_model, self.eligible_users = setup.user_model, setup.eligible_users
        self.observe = setup.observe
        self.split, self.history_len, self.slate_size = (
            config.split, config.history_len, config.slate_size,
        )  # fmt: skip
        self.candidates, self.reward_model = config.candidates, config.reward_model
        self.unrated_reward, self.obs_mode = config.unrated_reward, config.obs_mode
        self.item_bias = config.item_bias


def load_world(**env_kwargs: Any) -> RecWorld:
    """The world (data, split, MF fit, positives) that the env of these arguments runs on,
    without building an env. ``max_episode_steps``, the registration's wrapper argument, is
    checked and ignored; any other argument is checked as the env checks it."""
    if env_kwargs.get("max_episode_steps") is not None:
        episode_length(env_kwargs["max_episode_steps"])
    env_kwargs.pop("max_episode_steps", None)
    return _world(EnvConfig.of(**env_kwargs))


def _world(config: EnvConfig) -> RecWorld:
    spec = world_spec(config.dataset, config.data_dir, config.cache_dir, config.download, config.mf)
    return build_world(spec, check=lambda data: _check_dataset(config, data))


def _check_types(**values: Any) -> None:
    """Arguments whose type is wrong fail here with their name, not deep inside a loader."""
    path_like = (str, os.PathLike, type(None))
    allowed = {
        "dataset": ((str, RatingsDataset), "a dataset name or a RatingsDataset"),
        "data_dir": (path_like, "a folder path or None"),
        "cache_dir": (path_like, "a folder path or None"),
        "download": ((bool, np.bool_), "True or False"),
        "item_bias": ((bool, np.bool_), "True or False"),
        "mf_options": ((dict, type(None)), "a dict of MFConfig fields or None"),
    }
    for name, value in values.items():
        kinds, what = allowed[name]
        if not isinstance(value, kinds):
            raise ArgumentError(f"{name} must be {what}, got {value!r}")


def _mf_config(dim: int, options: dict[str, Any] | None) -> MFConfig:
    fields = {f.name for f in dataclasses.fields(MFConfig)} - {"dim"}
    unknown = set(options or {}) - fields
    if unknown:
        raise ArgumentError(
            f"mf_options has unknown keys {sorted(unknown)}; allowed: {sorted(fields)} "
            "(the dimension is embedding_dim)"
        )
    return MFConfig(dim=dim, **(options or {}))


def _check_dataset(config: EnvConfig, data: RatingsDataset) -> None:
    """What the dataset must have for these arguments, checked before the MF fit."""
    history_len, slate_size = config.history_len, config.slate_size
    if history_len >= data.n_items:
        raise ArgumentError(
            f"history_len={history_len} must be smaller than the catalogue ({data.n_items} items)"
        )
    if slate_size > data.n_items - history_len:
        raise ArgumentError(
            f"slate_size={slate_size} is larger than the {data.n_items - history_len} "
            f"items left as candidates ({data.n_items} in the catalogue, "
            f"history_len={history_len})"
        )
    if config.reward_model == "oracle" and data.truth is None:
        raise ArgumentError(
            f"reward_model='oracle' needs synthetic data with a known truth; "
            f"{data.name!r} is real data: use 'mf' or 'logged'"
        )
    if config.user.boredom and data.genres is None:
        raise ArgumentError(
            f"user_model={config.user.name!r} needs item genres, and dataset {data.name!r} has "
            "none (its item file, e.g. u.item or movies.dat, was not found beside the ratings)"
        )
