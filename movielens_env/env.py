"""MovieLensRec-v0: recommendation on MovieLens as a Gymnasium environment."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .dataset import RatingsDataset
from .mf import MFConfig
from .scoring import action_direction, best_slates
from .world import POSITIVE_RATING, RecWorld, build_world, world_spec

SPLITS = ("train", "test")
CANDIDATE_MODES = ("all", "rated")
REWARD_MODELS = ("mf", "logged", "oracle")
OBS_MODES = ("flat", "dict")
RENDER_MODES = ("ansi",)
NEUTRAL_RATING = 3.0


def _choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(
            f"{name}={value!r} is not valid; allowed values: {', '.join(map(repr, allowed))}"
        )


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _mf_config(dim: int, options: dict[str, Any] | None) -> MFConfig:
    fields = {f.name for f in dataclasses.fields(MFConfig)} - {"dim"}
    unknown = set(options or {}) - fields
    if unknown:
        raise ValueError(
            f"mf_options has unknown keys {sorted(unknown)}; allowed: {sorted(fields)} "
            "(the dimension is embedding_dim)"
        )
    return MFConfig(dim=dim, **(options or {}))


class MovieLensRecEnv(gym.Env):
    """
    ## Description

    Recommendation on MovieLens as a Markov decision process, after Liu et al., "Deep
    Reinforcement Learning based Recommendation with Explicit User-Item Interactions Modeling"
    (arXiv 1810.12027). An episode is one user: the agent sees the user's embedding and the
    embeddings of the last ``history_len`` items the user liked, recommends a slate of items, and
    is rewarded by the user's ratings of them. Liked items enter the history.

    Embeddings come from a biased matrix factorisation (ALS) fitted on the **train** part of a
    per-user temporal split (the first 80% of each user's ratings in time); the same model
    predicts the rating of items the user never rated (the paper's simulator). Nothing fitted
    ever sees a test rating.

    ## Observation Space

    ``obs_mode="flat"`` (default): ``Box(-b, b, ((history_len + 1) * embedding_dim,), float32)``,
    where ``b`` is the largest absolute value of any user or item factor.

    | Slice                          | Content                                        |
    |--------------------------------|------------------------------------------------|
    | ``[0, dim)``                   | the user's MF embedding                        |
    | ``[dim * (k + 1), dim * (k + 2))`` | embedding of history item ``k`` (oldest first) |

    ``obs_mode="dict"``: ``Dict(user_id=Discrete(n_users), history_ids=MultiDiscrete,
    user=Box((dim,)), history=Box((history_len, dim)))`` with internal (contiguous) ids; raw
    GroupLens ids are in ``info``.

    ## Action Space

    ``Box(-1, 1, (embedding_dim,), float32)``. Every candidate item is scored by the inner
    product of the action with its item embedding; the ``slate_size`` best are recommended (ties
    go to the lower internal id). Only the action's direction and relative magnitudes matter, so
    values outside [-1, 1] are accepted as they are, at any finite magnitude; NaN, inf or a wrong
    shape raise ``ValueError``.

    Candidates (``candidates=``): ``"all"`` is every item of the catalogue that has not been in
    this episode's history and has not been recommended in this episode; ``"rated"`` is the same
    restricted to the user's rated pool (the paper's offline setting). An item that left the
    history (first in, first out) is not recommended again.

    ## Reward

    Each recommended item gets a rating (``reward_model=``):

    - ``"mf"`` (default): the logged rating if the item is in the user's rated pool, else the MF
      prediction clipped to the dataset's rating scale ([1, 5] for ml-100k and ml-1m).
    - ``"logged"``: the logged rating if the item is in the pool; otherwise there is no rating
      (NaN in ``info``) and the item's reward is ``unrated_reward`` (default -0.5).
    - ``"oracle"`` (synthetic data only): the generator's true expected rating in [1, 5].

    The reward is ``(rating - 3) / 2`` per item, summed over the slate: in [-1, 1] per item on
    a 1-5 scale.

    The rated pool depends on ``split``: with ``"train"`` it is the user's train ratings except
    the initial history; with ``"test"`` it is the user's held-out test ratings.

    ## Starting State

    A user is drawn uniformly with ``self.np_random`` among users with at least ``history_len``
    train ratings >= 4 (and, with ``candidates="rated"``, a pool of at least ``slate_size``
    items); ``reset(options={"user_id": raw_id})`` picks one. The history is the user's first
    ``history_len`` positive train ratings in time (``split="train"``) or the last
    ``history_len`` positive ratings of the train part (``split="test"``).

    ## Episode End

    ``terminated`` when fewer than ``slate_size`` candidates remain. The registered env is
    truncated after ``max_episode_steps=10`` steps (T in the paper); pass
    ``max_episode_steps=`` to ``gym.make`` to change it.

    ## Info

    ``user_id`` (raw), ``item_ids`` (raw ids of the slate), ``ratings``, ``logged`` (whether each
    rating came from the log), ``hits`` (rating >= 4). ``reset`` returns ``user_id`` and
    ``history_item_ids`` (raw).

    ## Arguments

    ```python
    import gymnasium as gym
    import movielens_env  # optional: "movielens_env:MovieLensRec-v0" imports it

    env = gym.make("MovieLensRec-v0", dataset="synthetic")  # offline
    env = gym.make("MovieLensRec-v0", dataset="ml-100k", data_dir="~/data/ml-100k")
    ```

    - ``dataset``: ``"ml-1m"`` (default, the seed implementation's), ``"ml-100k"``, ``"ml-10m"``,
      ``"ml-20m"``, ``"ml-25m"``, ``"ml-latest-small"``, ``"synthetic"`` (= ``"synthetic-100k"``),
      ``"synthetic-1m"``, ``"synthetic-25m"``, or a :class:`RatingsDataset`.
    - ``data_dir``: folder or GroupLens zip; else the cache (``$MOVIELENS_DATA`` or the user
      cache dir), else a SHA-256-checked download.
    - ``split``: ``"train"`` (default) or ``"test"``.
    - ``history_len``: items in the observed history (default 10).
    - ``embedding_dim``: MF dimension (default 100, as in the paper).
    - ``slate_size``: items recommended per step (default 1).
    - ``candidates``: ``"all"`` (default) or ``"rated"``.
    - ``reward_model``: ``"mf"`` (default), ``"logged"`` or ``"oracle"``.
    - ``unrated_reward``: reward of an unrated item under ``"logged"`` (default -0.5).
    - ``obs_mode``: ``"flat"`` (default) or ``"dict"``.
    - ``render_mode``: ``None`` or ``"ansi"``.
    - ``cache_dir``, ``download``: where cached data and MF fits live; whether to download.
    - ``mf_options``: other :class:`MFConfig` fields (``reg``, ``iterations``, ``seed``, ...).

    ## Version History

    - v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": list(RENDER_MODES), "render_fps": 4}

    def __init__(
        self,
        dataset: str | RatingsDataset = "ml-1m",
        data_dir: str | os.PathLike[str] | None = None,
        split: str = "train",
        history_len: int = 10,
        embedding_dim: int = 100,
        slate_size: int = 1,
        candidates: str = "all",
        reward_model: str = "mf",
        unrated_reward: float = -0.5,
        obs_mode: str = "flat",
        render_mode: str | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        download: bool = True,
        mf_options: dict[str, Any] | None = None,
    ) -> None:
        _choice("split", split, SPLITS)
        _choice("candidates", candidates, CANDIDATE_MODES)
        _choice("reward_model", reward_model, REWARD_MODELS)
        _choice("obs_mode", obs_mode, OBS_MODES)
        _choice("render_mode", render_mode, (None, *RENDER_MODES))
        self.history_len = _positive_int("history_len", history_len)
        self.slate_size = _positive_int("slate_size", slate_size)
        dim = _positive_int("embedding_dim", embedding_dim)
        if not math.isfinite(unrated_reward):
            raise ValueError(f"unrated_reward must be a finite number, got {unrated_reward!r}")
        mf = _mf_config(dim, mf_options)
        self.world: RecWorld = build_world(world_spec(dataset, data_dir, cache_dir, download, mf))
        data = self.world.dataset
        if reward_model == "oracle" and data.truth is None:
            raise ValueError(
                f"reward_model='oracle' needs synthetic data with a known truth; "
                f"{data.name!r} is real data: use 'mf' or 'logged'"
            )
        if self.history_len >= data.n_items:
            raise ValueError(
                f"history_len={history_len} must be smaller than the catalogue "
                f"({data.n_items} items)"
            )
        if self.slate_size > data.n_items - self.history_len:
            raise ValueError(
                f"slate_size={slate_size} is larger than the {data.n_items - self.history_len} "
                f"items left as candidates ({data.n_items} in the catalogue, "
                f"history_len={history_len})"
            )
        self.split, self.candidates, self.reward_model = split, candidates, reward_model
        self.unrated_reward = float(unrated_reward)
        self.obs_mode, self.render_mode = obs_mode, render_mode
        self._item_factors = self.world.mf.item_factors
        self._user_factors = self.world.mf.user_factors
        self.eligible_users = self._eligible_users()
        if len(self.eligible_users) == 0:
            pool = (
                f" and {slate_size} rated items in the {split} pool"
                if candidates == "rated"
                else ""
            )
            raise ValueError(
                f"no user of {data.name!r} has {history_len} positive train ratings{pool}"
            )
        self.action_space = spaces.Box(-1.0, 1.0, (dim,), np.float32)
        self.observation_space = self._observation_space(dim)
        self._user = -1

    # ------------------------------------------------------------------ set-up helpers
    def _eligible_users(self) -> np.ndarray:
        enough = self.world.positives.counts >= self.history_len
        if self.candidates == "rated":
            split = self.world.split
            pool = (
                split.train.counts - self.history_len
                if self.split == "train"
                else split.test.counts
            )
            enough &= pool >= self.slate_size
        return np.flatnonzero(enough)

    def _observation_space(self, dim: int) -> spaces.Space:
        bound = np.float32(self.world.embedding_bound or 1.0)
        if self.obs_mode == "flat":
            return spaces.Box(-bound, bound, ((self.history_len + 1) * dim,), np.float32)
        data = self.world.dataset
        return spaces.Dict(
            {
                "user_id": spaces.Discrete(data.n_users),
                "history_ids": spaces.MultiDiscrete(np.full(self.history_len, data.n_items)),
                "user": spaces.Box(-bound, bound, (dim,), np.float32),
                "history": spaces.Box(-bound, bound, (self.history_len, dim), np.float32),
            }
        )

    def _initial_history_and_pool(self, user: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        positives, _ = self.world.positives.row(user)
        split = self.world.split
        if self.split == "train":
            history = positives[: self.history_len]
            items, ratings = split.train.row(user)
            keep = ~np.isin(items, history)
            items, ratings = items[keep], ratings[keep]
        else:
            history = positives[-self.history_len :]
            items, ratings = split.test.row(user)
        order = np.argsort(items)
        return history.astype(np.int64), items[order].astype(np.int64), ratings[order]

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode with a random eligible user, or ``options["user_id"]`` (raw id)."""
        super().reset(seed=seed)
        if options and options.get("user_id") is not None:
            self._user = self._user_from_raw(options["user_id"])
        else:
            self._user = int(self.eligible_users[self.np_random.integers(len(self.eligible_users))])
        self._history, self._pool_items, self._pool_ratings = self._initial_history_and_pool(
            self._user
        )
        n_items = self.world.dataset.n_items
        if self.candidates == "all":
            self._available = np.ones(n_items, dtype=bool)
        else:
            self._available = np.zeros(n_items, dtype=bool)
            self._available[self._pool_items] = True
        self._available[self._history] = False
        # Items no longer recommendable in "all" mode: few, so masking them beats a catalogue pass.
        self._excluded = list(self._history)
        self._n_available = int(self._available.sum())
        self._last: dict[str, Any] | None = None
        info = {
            "user_id": int(self.world.dataset.user_ids[self._user]),
            "history_item_ids": self.world.dataset.item_ids[self._history],
        }
        return self._observation(), info

    def step(self, action: np.ndarray):
        """Recommend the slate the action scores best; see the class docstring."""
        self._check_running()
        return self._recommend(self._top_slate(self._check_action(action)))

    def candidate_items(self) -> np.ndarray:
        """Internal ids of the items that may be recommended now (for rankers), ascending."""
        self._check_running()
        if self.candidates == "rated":
            return self._pool_items[self._available[self._pool_items]]
        return np.flatnonzero(self._available)

    def step_items(self, items: np.ndarray):
        """Recommend an explicit slate of internal item ids instead of scoring an action.

        For agents that rank items themselves (popularity, MF, third-party rankers), so they are
        rated, rewarded and terminated exactly as :meth:`step` would. The slate must hold
        ``slate_size`` distinct items from :meth:`candidate_items`.
        """
        self._check_running()
        slate = np.asarray(items, dtype=np.int64).reshape(-1)
        n_items = self.world.dataset.n_items
        if len(slate) != self.slate_size or len(np.unique(slate)) != len(slate):
            raise ValueError(f"a slate must hold {self.slate_size} distinct items, got {slate}")
        if ((slate < 0) | (slate >= n_items)).any() or not self._available[slate].all():
            raise ValueError(
                f"items {slate} are not all current candidates (see candidate_items())"
            )
        return self._recommend(slate)

    def _check_running(self) -> None:
        if self._user < 0:
            raise gym.error.ResetNeeded("call reset() before step(): no episode has started")
        if self._n_available < self.slate_size:
            raise gym.error.ResetNeeded(
                "the episode has terminated (no candidates left); call reset()"
            )

    def _recommend(self, slate: np.ndarray):
        ratings, logged, rewards = self._rate(slate)
        self._available[slate] = False
        self._excluded.extend(slate.tolist())
        self._n_available -= len(slate)
        hits = ratings >= POSITIVE_RATING  # NaN (unrated) compares False
        liked = slate[hits]
        if len(liked):
            self._history = np.concatenate([self._history, liked])[-self.history_len :]
        data = self.world.dataset
        info = {
            "user_id": int(data.user_ids[self._user]),
            "item_ids": data.item_ids[slate],
            "ratings": ratings,
            "logged": logged,
            "hits": hits,
        }
        self._last = {"slate": slate, **info}
        terminated = self._n_available < self.slate_size
        return self._observation(), float(rewards.sum()), bool(terminated), False, info

    def render(self) -> str | None:
        """``"ansi"``: the user, the history and the last slate, by title."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi'")
            return None
        if self._user < 0:
            return "MovieLensRec: call reset() to start an episode\n"
        data = self.world.dataset
        lines = [f"User {data.user_ids[self._user]} ({data.name}, split={self.split})", "History:"]
        lines += [f"  - {data.title(i)}" for i in self._history]
        if self._last is not None:
            lines.append("Recommended:")
            for item, rating, logged in zip(
                self._last["slate"], self._last["ratings"], self._last["logged"], strict=True
            ):
                source = (
                    "logged"
                    if logged
                    else self.reward_model
                    if not math.isnan(rating)
                    else "unrated"
                )
                shown = "-" if math.isnan(rating) else f"{rating:.2f}"
                lines.append(f"  * {data.title(item)}  rating {shown} ({source})")
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ step helpers
    def _user_from_raw(self, raw_id: Any) -> int:
        user = int(self.world.dataset.user_index(int(raw_id)))
        if user < 0:
            raise ValueError(
                f"options['user_id']={raw_id!r} is not a user of {self.world.dataset.name!r}"
            )
        if not np.isin(user, self.eligible_users):
            raise ValueError(
                f"user {raw_id} cannot start an episode: fewer than history_len={self.history_len} "
                "positive train ratings"
                + (" or too small a rated pool" if self.candidates == "rated" else "")
            )
        return user

    def _check_action(self, action: Any) -> np.ndarray:
        array = np.asarray(action)
        if array.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {array.shape}")
        if array.dtype != np.float32:
            array = array.astype(np.float64)  # a finite float64 may exceed float32's range
        if not np.isfinite(array).all():
            raise ValueError("action contains NaN or inf")
        return action_direction(array)

    def _top_slate(self, action: np.ndarray) -> np.ndarray:
        if self.candidates == "rated":
            items = self.candidate_items()
            coarse = self._item_factors[items] @ action
            factors = self.world.item_factors64[items]
        else:
            items = None
            coarse = self._item_factors @ action
            coarse[self._excluded] = -np.inf
            factors = self.world.item_factors64
        best = best_slates(
            coarse[None], action[None], factors, self.slate_size, self.world.embedding_bound
        )[0]
        return best if items is None else items[best]

    def _logged(self, slate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each slate item is in the rated pool, and its logged rating (NaN if not)."""
        if len(self._pool_items) == 0:
            return np.zeros(len(slate), dtype=bool), np.full(len(slate), np.nan)
        pos = np.minimum(np.searchsorted(self._pool_items, slate), len(self._pool_items) - 1)
        in_pool = self._pool_items[pos] == slate
        return in_pool, np.where(in_pool, self._pool_ratings[pos], np.nan)

    def _rate(self, slate: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ratings of the slate, whether each came from the log, and each item's reward."""
        in_pool, ratings = self._logged(slate)
        if self.reward_model == "oracle":
            ratings = self.world.dataset.truth.true_rating(np.full(len(slate), self._user), slate)
            in_pool = np.zeros(len(slate), dtype=bool)
        elif self.reward_model == "mf":
            predicted = self.world.mf.predict(self._user, slate)
            ratings = np.where(
                in_pool, ratings, np.clip(predicted, *self.world.dataset.rating_scale)
            )
        rewards = np.where(np.isnan(ratings), self.unrated_reward, (ratings - NEUTRAL_RATING) / 2.0)
        return ratings.astype(np.float64), in_pool, rewards

    def _observation(self) -> np.ndarray | dict[str, Any]:
        user = self._user_factors[self._user]
        history = self._item_factors[self._history]
        if self.obs_mode == "flat":
            return np.concatenate([user, history.ravel()]).astype(np.float32, copy=False)
        return {
            "user_id": np.int64(self._user),
            "history_ids": self._history.copy(),
            "user": user.copy(),
            "history": history,
        }
