"""MovieLensRec-v0: recommendation on MovieLens as a Gymnasium environment."""

from __future__ import annotations

import math
import os
from typing import Any

import gymnasium as gym
import numpy as np

from ..data.ratings import RatingsDataset
from ..errors import ArgumentError, InvalidActionError
from ..simulator.scoring import action_direction, best_slates, real_actions
from ..simulator.user_model import UserState
from ..simulator.world import POSITIVE_RATING
from .info import batch_info, row_info
from .observation import Observation
from .rendering import Frame, draw
from .setup import RENDER_MODES, EnvConfig, EnvSetup, UsesSetup

_DEFAULTS = EnvConfig()


class MovieLensRecEnv(gym.Env[Observation, np.ndarray], UsesSetup):
    """
    ## Description

    Recommendation on MovieLens as a Markov decision process, after Liu et al., "Deep
    Reinforcement Learning based Recommendation with Explicit User-Item Interactions Modeling"
    (arXiv 1810.12027). An episode is one user: the agent sees the user's vector and the
    vectors of the last ``history_len`` items the user liked, recommends a slate of items, and
    is rewarded by the user's ratings of them. Liked items enter the history.

    Vectors come from a biased matrix factorisation (ALS) fitted on the **train** part of a
    per-user temporal split (the first 80% of each user's ratings in time); the same model
    predicts the rating of items the user never rated (the paper's simulator). Nothing fitted
    ever sees a test rating.

    The user can have a state (``user_model=``): with ``"static"`` (default, the paper's) an
    item's rating ignores what came before, so the greedy MF ranking is optimal; with
    ``"boredom"``, ``"drift"`` and ``"patience"`` (and their combinations) what is recommended
    now changes later ratings, and planning pays (see User Model).

    ## Observation Space

    ``obs_mode="flat"`` (default): a float32 ``Box`` with finite bounds. With ``D`` the vector
    length (``embedding_dim + 1`` with ``item_bias=True``, the default; else ``embedding_dim``)
    and ``G`` the number of genres:

    | Slice                       | Content                                                |
    |-----------------------------|--------------------------------------------------------|
    | ``[0, D)``                  | user vector ``[p_u, 1]`` (``p_u`` moves under drift)   |
    | ``[D (k + 1), D (k + 2))``  | vector ``[q_i, b_i]`` of history item ``k``, oldest first |
    | next ``G`` (boredom only)   | satiation per genre, genres sorted by name             |
    | last 1 (patience only)      | remaining patience, clipped to ``[0, patience_budget]`` |

    Vectors are bounded by ``b``, the largest absolute value of any user or item vector;
    satiation by ``slate_size / (1 - max gamma_g)``.

    ``obs_mode="dict"``: ``Dict(user_id=Box((1,), int64), history_ids=Box((history_len,), int64),
    user=Box((D,)), history=Box((history_len, D)))``, plus ``satiation=Box((G,))`` and
    ``patience=Box((1,))`` where the user model has them; ids are internal (contiguous, from 0),
    raw GroupLens ids are in ``info``. The ids are integer boxes rather than ``Discrete`` spaces
    so that flattening (``FlattenObservation``) keeps them as values, not one-hot vectors as
    long as the catalogue: the flat dict observation has ``1 + history_len`` values more than
    ``obs_mode="flat"`` (float64, as NumPy joins int64 and float32).

    ## Action Space

    ``Box(-1, 1, (D,), float32)``. Every candidate item is scored by the inner product of the
    action with its item vector ``[q_i, b_i]``; the ``slate_size`` best are recommended (ties go
    to the lower internal id). The user vector ``[p_u, 1]`` scores ``p_u . q_i + b_i``, MF's
    predicted rating less a per-user constant, so the action "the observation's user vector"
    ranks exactly as MF does. ``item_bias=False`` scores by ``a . q_i`` (the paper's; the item
    bias is then out of every action's reach). Only the action's direction and relative
    magnitudes matter, so values outside [-1, 1] are accepted as they are, at any finite
    magnitude; NaN, inf or a wrong shape raise ``ValueError``.

    Candidates (``candidates=``): ``"all"`` is every item of the catalogue that has not been in
    this episode's history and has not been recommended in this episode; ``"rated"`` is the same
    restricted to the user's rated pool (the paper's offline setting). An item that left the
    history (first in, first out) is not recommended again.

    ## Reward

    Each recommended item gets a rating. Its ``static`` part (``reward_model=``):

    - ``"mf"`` (default): the logged rating if the item is in the user's rated pool, else the MF
      prediction.
    - ``"logged"``: the logged rating if the item is in the pool; otherwise there is no rating
      (NaN in ``info``) and the item's reward is ``unrated_reward`` (default -0.5).
    - ``"oracle"`` (synthetic data only): the generator's true expected rating.

    The user model then adjusts it (below) and it is clipped to the dataset's rating scale
    ([1, 5] for ml-100k and ml-1m). The reward is ``(rating - 3) / 2`` per item (in [-1, 1]
    on a 1-5 scale), or, under ``"patience"``, ``(rating - low) / (high - low)`` (in [0, 1]:
    keeping the user is worth something), summed over the slate.

    The rated pool depends on ``split``: with ``"train"`` it is the user's train ratings except
    the initial history; with ``"test"`` it is the user's held-out test ratings.

    ## User Model

    ``user_model=`` is ``"static"`` or components joined by ``+`` (``"boredom+drift+patience"``);
    every part of the user's state is in the observation, so the problem stays Markov.

    - ``"boredom"``: per-genre satiation ``s`` (0 at reset). An item ``i`` with genres ``G(i)`` is
      rated ``lam * mean_{g in G(i)} s_g`` lower (``lam = satiation_strength``); after each step
      ``s_g <- gamma_g * s_g + sum over the slate of [g in G(i)] / |G(i)|``. Decays ``gamma_g``
      differ per genre: by default each is drawn from U[0.3, 0.98] seeded by the genre's name
      (so "Drama" decays alike in every dataset); with equal decays satiation-aware greedy is
      optimal (Leqi et al., Rebounding Bandits, 2021). Items without genres never bore. Needs
      genres: ml-100k's ``u.item``, ``movies.dat``/``movies.csv`` elsewhere, generated with
      the synthetic data.
    - ``"drift"``: tastes move toward what is recommended: after each item,
      ``p_u <- (1 - alpha) p_u + alpha q_i`` (``alpha = drift_rate``), biases fixed. Ratings add
      ``(p_u - p_u(0)) . q_i`` to their static part, so an MF-predicted rating uses the current
      tastes; the observation shows the current ``p_u``.
    - ``"patience"``: a budget starts at ``patience_budget`` and changes every step by
      ``sum_i min(0, rating_i - patience_threshold) - patience_cost`` (an unrated item counts as
      the lowest rating); the user leaves (``terminated``) when it reaches 0.

    ## Starting State

    A user is drawn uniformly with ``self.np_random`` among users with at least ``history_len``
    train ratings >= 4 (and, with ``candidates="rated"``, a pool of at least ``slate_size``
    items); ``reset(options={"user_id": raw_id})`` picks one. The history is the user's first
    ``history_len`` positive train ratings in time (``split="train"``) or the last
    ``history_len`` positive ratings of the train part (``split="test"``). The user's state
    starts fresh: no satiation, the fitted tastes, a full patience budget.

    ## Episode End

    ``terminated`` when fewer than ``slate_size`` candidates remain, or when the user leaves
    (``"patience"``). ``MovieLensRec-v0`` is truncated after ``max_episode_steps=10`` steps (T
    in the paper); the variants with a user state are registered with longer horizons (see
    ``movielens_env.VARIANTS``); pass ``max_episode_steps=`` to ``gym.make`` to change it.

    ## Info

    The same keys at ``reset`` and at every step, numpy values of fixed dtypes and shapes:
    ``user_id`` (raw, int64), ``history_item_ids`` (raw ids of the history, after the step),
    ``item_ids`` (raw ids of the slate), ``ratings`` (float64; NaN for an item without a
    rating), ``logged`` (whether each rating came from the log), ``hits`` (rating >= 4). At
    ``reset`` there is no slate yet: ``item_ids`` -1, ``ratings`` NaN, ``logged`` and ``hits``
    False (:mod:`movielens_env.envs.info`). The reward is a numpy float64.

    ## Arguments

    ```python
    import gymnasium as gym
    import movielens_env  # optional: "movielens_env:MovieLensRec-v0" imports it

    env = gym.make("MovieLensRec-v0", dataset="synthetic")  # offline
    env = gym.make("MovieLensRec-v0", dataset="ml-100k", data_dir="~/data/ml-100k")
    env = gym.make("MovieLensRec-v0", dataset="ml-100k", user_model="boredom")
    env = gym.make("MovieLensRec-BoredomDriftPatience-v0", dataset="synthetic")  # 50 steps
    ```

    Where a library makes the env in worker processes (RLlib's env runners, Ray Tune trials,
    ``AsyncVectorEnv``, ``SubprocVecEnv``), pass ``"movielens_env:MovieLensRec-v0"``: a worker
    has not imported this package, and Gymnasium imports the module named before the colon
    (the plain id is unknown there: ``NameNotFound``).

    - ``dataset``: ``"ml-1m"`` (default, the seed implementation's), ``"ml-100k"``, ``"ml-10m"``,
      ``"ml-20m"``, ``"ml-25m"``, ``"ml-latest-small"``, ``"synthetic"`` (= ``"synthetic-100k"``),
      ``"synthetic-1m"``, ``"synthetic-25m"``, ``"synthetic-small"`` (300 users, 600 items),
      or a :class:`RatingsDataset`.
    - ``data_dir``: folder or GroupLens zip; else the cache (``$MOVIELENS_DATA`` or the user
      cache dir), else a SHA-256-checked download.
    - ``split``: ``"train"`` (default) or ``"test"``.
    - ``history_len``: items in the observed history (default 10).
    - ``embedding_dim``: MF dimension (default 100, as in the paper).
    - ``slate_size``: items recommended per step (default 1).
    - ``candidates``: ``"all"`` (default) or ``"rated"``.
    - ``reward_model``: ``"mf"`` (default), ``"logged"`` or ``"oracle"``.
    - ``unrated_reward``: reward of an unrated item under ``"logged"``, in [-1, 1] (default
      -0.5); refused with the other reward models, which rate every item.
    - ``obs_mode``: ``"flat"`` (default) or ``"dict"``.
    - ``render_mode``: ``None``, ``"ansi"`` (text), ``"human"`` (that text printed at every
      reset and step) or ``"rgb_array"`` (a picture of the episode so far, for ``RecordVideo``).
    - ``item_bias``: score by ``[q_i, b_i]`` (default ``True``) or by ``q_i`` alone (``False``).
    - ``user_model``: ``"static"`` (default), ``"boredom"``, ``"drift"``, ``"patience"`` or a
      ``+``-joined combination.
    - ``satiation_strength``: ``lam`` >= 0 (default 1.0; 0.5 to 2 sensible).
    - ``satiation_decay``: ``gamma_g`` in [0, 1): ``None`` (default, per genre as above), one
      number, or one per genre (genres sorted by name).
    - ``drift_rate``: ``alpha`` in [0, 1] (default 0.7).
    - ``patience_budget``: > 0 (default 5.0); ``patience_threshold`` (default 4.0);
      ``patience_cost``: >= 0 per step (default 0.1). With the defaults a user who is only ever
      recommended items rated >= 4 stays 50 steps; each star below 4 costs ten steps.
    - ``cache_dir``, ``download``: where cached data and MF fits live; whether to download.
    - ``mf_options``: other :class:`MFConfig` fields (``reg``, ``iterations``, ``seed``, ...).

    ## Version History

    - v0: initial version. The item vectors carry the MF item bias by default (action and
      observation one dimension longer; ``item_bias=False`` gives the earlier scoring); user
      models (``user_model=``) and their registered variants. ``info`` has the same keys at
      ``reset`` and at every step, numpy values only; the reward is a numpy float64; the dict
      observation's ids are int64 boxes (``user_id`` of shape ``(1,)``), which flatten to
      their values; ``render_mode="human"`` and ``"rgb_array"``.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 4}  # noqa: RUF012 (gym's)

    def __init__(
        self,
        dataset: str | RatingsDataset = _DEFAULTS.dataset,
        data_dir: str | os.PathLike[str] | None = None,
        split: str = _DEFAULTS.split,
        history_len: int = _DEFAULTS.history_len,
        embedding_dim: int = _DEFAULTS.embedding_dim,
        slate_size: int = _DEFAULTS.slate_size,
        candidates: str = _DEFAULTS.candidates,
        reward_model: str = _DEFAULTS.reward_model,
        unrated_reward: float = _DEFAULTS.unrated_reward,
        obs_mode: str = _DEFAULTS.obs_mode,
        render_mode: str | None = None,
        *,
        item_bias: bool = _DEFAULTS.item_bias,
        user_model: str = _DEFAULTS.user_model,
        satiation_strength: float = _DEFAULTS.satiation_strength,
        satiation_decay: float | tuple[float, ...] | None = _DEFAULTS.satiation_decay,
        drift_rate: float = _DEFAULTS.drift_rate,
        patience_budget: float = _DEFAULTS.patience_budget,
        patience_threshold: float = _DEFAULTS.patience_threshold,
        patience_cost: float = _DEFAULTS.patience_cost,
        cache_dir: str | os.PathLike[str] | None = None,
        download: bool = _DEFAULTS.download,
        mf_options: dict[str, Any] | None = None,
    ) -> None:
        config = EnvConfig(
            dataset=dataset, data_dir=data_dir, split=split, history_len=history_len,
            embedding_dim=embedding_dim, slate_size=slate_size, candidates=candidates,
            reward_model=reward_model, unrated_reward=unrated_reward, obs_mode=obs_mode,
            render_mode=render_mode, item_bias=item_bias, user_model=user_model,
            satiation_strength=satiation_strength, satiation_decay=satiation_decay,
            drift_rate=drift_rate, patience_budget=patience_budget,
            patience_threshold=patience_threshold, patience_cost=patience_cost,
            cache_dir=cache_dir, download=download, mf_options=mf_options,
        )  # fmt: skip
        setup = EnvSetup(config)
        self._adopt(setup)
        self.render_mode = config.render_mode
        self.action_space = setup.action_space
        self.observation_space = setup.observation_space
        self._user = -1

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode with a random eligible user, or ``options["user_id"]`` (raw id)."""
        super().reset(seed=seed)
        check_options(options)
        if options and options.get("user_id") is not None:
            self._user = self.setup.user_from_raw(options["user_id"])
        else:
            self._user = int(self.eligible_users[self.np_random.integers(len(self.eligible_users))])
        self._history = self.setup.initial_history(np.array([self._user]))[0]
        n_items = self.world.dataset.n_items
        if self.candidates == "all":
            self._available = np.ones(n_items, dtype=bool)
        else:
            pool = self.user_model.pool.row(self._user)[0]
            self._available = np.zeros(n_items, dtype=bool)
            self._available[pool] = True
        self._available[self._history] = False
        # Items no longer recommendable in "all" mode: few, so masking them beats a catalogue pass.
        self._excluded = list(self._history)
        self._n_available = int(self._available.sum())
        self._state = self.user_model.start(np.array([self._user]))
        self._left = False
        self._last: dict[str, Any] | None = None
        self._step_ratings: list[float] = []  # each slate's mean rating, for rgb_array
        info = batch_info(
            self.world.dataset, np.array([self._user]), self._history[None],
            slate_size=self.slate_size,
        )  # fmt: skip
        if self.render_mode == "human":
            self.render()
        return self._observation(), row_info(info)

    def step(self, action: np.ndarray):
        """Recommend the slate the action scores best; see the class docstring."""
        self._check_running()
        return self._recommend(self._top_slate(self._check_action(action)))

    def candidate_items(self) -> np.ndarray:
        """Internal ids of the items that may be recommended now (for rankers), ascending."""
        self._check_running()
        return np.flatnonzero(self._available)

    @property
    def user_state(self) -> UserState:
        """The current user's state (privileged: for reference policies; do not modify)."""
        self._check_running()
        return self._state

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
            raise ArgumentError(f"a slate must hold {self.slate_size} distinct items, got {slate}")
        if ((slate < 0) | (slate >= n_items)).any() or not self._available[slate].all():
            raise ArgumentError(
                f"items {slate} are not all current candidates (see candidate_items())"
            )
        return self._recommend(slate)

    def _check_running(self) -> None:
        if self._user < 0:
            raise gym.error.ResetNeeded("call reset() before step(): no episode has started")
        if self._left:
            raise gym.error.ResetNeeded("the user has left (patience spent); call reset()")
        if self._n_available < self.slate_size:
            raise gym.error.ResetNeeded(
                "the episode has terminated (no candidates left); call reset()"
            )

    def _recommend(self, slate: np.ndarray):
        response = self.user_model.respond(self._state, slate[None])
        ratings = response.ratings[0]
        self._left = bool(response.left[0])
        self._available[slate] = False
        self._excluded.extend(slate.tolist())
        self._n_available -= len(slate)
        liked = slate[ratings >= POSITIVE_RATING]  # NaN (unrated) compares False
        if len(liked):
            self._history = np.concatenate([self._history, liked])[-self.history_len :]
        users = np.array([self._user])
        info = row_info(
            batch_info(
                self.world.dataset,
                users,
                self._history[None],
                slate[None],
                response.ratings,
                response.logged,
            )
        )
        self._last = {"slate": slate, **info}
        rated = ratings[~np.isnan(ratings)]
        self._step_ratings.append(float(rated.mean()) if len(rated) else math.nan)
        if self.render_mode == "human":
            self.render()
        terminated = self._n_available < self.slate_size or self._left
        # float64, as in the vector env (a numpy float64 is a Python float too).
        reward = np.float64(response.rewards[0])
        return self._observation(), reward, bool(terminated), False, info

    def render(self) -> Any:
        """``"ansi"``: the user, the history, the user's state and the last slate, by title, as
        text; ``"human"``: that text printed (at every reset and step too); ``"rgb_array"``: a
        picture of the episode so far (:mod:`movielens_env.envs.rendering`)."""
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode= one of "
                + ", ".join(repr(mode) for mode in RENDER_MODES)
            )
            return None
        if self.render_mode == "rgb_array":
            return draw(self._frame())
        text = self._text()
        if self.render_mode == "human":
            print(text, end="", flush=True)
            return None
        return text

    def _frame(self) -> Frame:
        """What an ``rgb_array`` frame shows now."""
        data = self.world.dataset
        if self._user < 0:
            return Frame("MovieLensRec: call reset() to start an episode", [], [], [],
                         data.rating_scale)  # fmt: skip
        state, model = self._state, self.user_model
        heading = f"User {data.user_ids[self._user]} ({data.name}), step {len(self._step_ratings)}"
        patience = None
        if state.patience is not None:
            patience = (float(state.patience[0]), model.config.patience_budget)
            heading += f", patience {max(patience[0], 0.0):.2f} of {patience[1]:g}"
        slate = []
        if self._last is not None:
            slate = [
                (data.title(item), float(rating))
                for item, rating in zip(self._last["slate"], self._last["ratings"], strict=True)
            ]
        satiation = None
        if state.satiation is not None:
            satiation = dict(zip(model.genres, state.satiation[0].tolist(), strict=True))
        return Frame(
            heading, [data.title(i) for i in self._history], slate, list(self._step_ratings),
            data.rating_scale, satiation, patience,
        )  # fmt: skip

    def _text(self) -> str:
        """The ``ansi`` rendering."""
        if self._user < 0:
            return "MovieLensRec: call reset() to start an episode\n"
        data = self.world.dataset
        lines = [f"User {data.user_ids[self._user]} ({data.name}, split={self.split})", "History:"]
        lines += [f"  - {data.title(i)}" for i in self._history]
        lines += self._render_state()
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

    def _render_state(self) -> list[str]:
        state, model, lines = self._state, self.user_model, []
        if state.satiation is not None:
            order = np.argsort(-state.satiation[0], kind="stable")[:3]
            shown = ", ".join(f"{model.genres[g]} {state.satiation[0, g]:.2f}" for g in order)
            lines.append(f"Satiation (most): {shown}")
        if state.patience is not None:
            budget = model.config.patience_budget
            lines.append(f"Patience: {max(state.patience[0], 0.0):.2f} of {budget:g}")
        return lines

    # ------------------------------------------------------------------ step helpers
    def _check_action(self, action: Any) -> np.ndarray:
        array = np.asarray(action)
        if array.shape != self.action_space.shape:
            raise InvalidActionError(
                f"action must have shape {self.action_space.shape}, got {array.shape}"
            )
        array = real_actions(array)
        if not np.isfinite(array).all():
            raise InvalidActionError("action contains NaN or inf")
        if not array.any():
            raise InvalidActionError("the action is all zeros: it has no direction to rank by")
        return action_direction(array)

    def _top_slate(self, action: np.ndarray) -> np.ndarray:
        vectors = self.vectors
        if self.candidates == "rated":
            items = self.candidate_items()
            coarse = vectors.items[items] @ action
            factors = vectors.items64[items]
        else:
            items = None
            coarse = vectors.items @ action
            coarse[self._excluded] = -np.inf
            factors = vectors.items64
        best = best_slates(coarse[None], action[None], factors, self.slate_size, vectors.bound)[0]
        return best if items is None else items[best]

    def _observation(self) -> Any:
        return self.observe.row(self.observe(self._state, self._history[None]), 0)


def check_options(options: Any, allowed: tuple[str, ...] = ("user_id",)) -> None:
    """``reset``'s options: ``None`` or a dict of ``allowed`` keys (a misspelt key would
    otherwise start a random user without a word)."""
    if options is not None and not isinstance(options, dict):
        raise ArgumentError(f"reset's options must be a dict (or None), got {options!r}")
    unknown = sorted(set(options or {}) - set(allowed), key=str)
    if unknown:
        raise ArgumentError(
            f"reset's options have unknown keys {unknown}; allowed: {', '.join(allowed)}"
        )
