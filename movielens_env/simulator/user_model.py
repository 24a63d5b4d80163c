"""How a user responds to a slate: ratings, rewards and the user's state (boredom, drift, leaving).

One batched implementation, written once: the single env calls it with a batch of one user, the
vector env with a batch of users, and the reference policies with copies of a user's state (one
row per plan they try). Everything here is deterministic given the state and the slate.

A rating is built in four steps, each only where its component is on:

1. the ``static`` rating (the reward model's): the logged rating where the user's rated pool has
   one, else the MF prediction (``"mf"``), or no rating (``"logged"``), or the generator's true
   rating (``"oracle"``);
2. ``drift``: plus ``(p_t - p_0) . q_i``, what the moved tastes ``p_t`` add to the MF prediction;
3. ``boredom``: minus ``lam * mean_{g in G(i)} s_g``, the user's satiation with the item's genres;
4. clipped to the rating scale.

After the slate is rated the state moves on: ``s <- gamma * s + sum_i w_i`` (``w_i`` spreads one
unit over the item's genres), ``p <- (1 - alpha) p + alpha q_i`` for each item in slate order, and
the patience budget changes by ``sum_i min(0, r_i - theta) - cost``; the user leaves when it is
spent.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, fields, replace
from typing import Any, NamedTuple

import numpy as np

from ..checks import finite_number
from ..errors import ArgumentError, MovieLensRecError
from .world import RecWorld

COMPONENTS = ("boredom", "drift", "patience")
REWARD_MODELS = ("mf", "logged", "oracle")
NEUTRAL_RATING = 3.0
# Genre labels that mean "no genre known": such items neither satiate nor bore.
NO_GENRE = ("unknown", "(no genres listed)")
# Per-genre satiation decay is drawn uniformly from this range, seeded by the genre's name.
DECAY_RANGE = (0.3, 0.98)
# Episode lengths that suit each user model: the registered ids and the benchmark use them.
STATIC_HORIZON, DRIFT_HORIZON, PATIENCE_HORIZON = 10, 20, 50


class UserModelError(MovieLensRecError, ValueError):
    """A user model or one of its parameters is invalid: the message names it."""


@dataclass(frozen=True)
class UserModelConfig:
    """Which user-state components are on, and their parameters.

    Attributes:
        boredom: per-genre satiation lowers ratings of genres seen recently.
        drift: tastes move toward what the user is recommended.
        patience: a budget that bad recommendations spend; the user leaves when it is spent.
        satiation_strength: ``lam``, rating points lost per unit of mean satiation (>= 0;
            0.5 to 2 is a sensible range).
        satiation_decay: ``gamma_g``, the share of satiation a genre keeps per step, in [0, 1):
            ``None`` (default) draws one per genre from U[0.3, 0.98] with the genre's name as
            the seed (the same genre decays alike in every dataset); one number for every
            genre; or one per genre, in the order of :func:`genre_table`.
        drift_rate: ``alpha`` in [0, 1], how far tastes move toward each recommended item.
            The default 0.7 is where planning pays on both ML-100K and the synthetic data
            (whose smaller MF factors feel drift less): over 60 test users, the planner's
            return over myopic's was 1.09x / 1.05x at 0.7, 1.09x / 1.04x at 0.6 and
            1.07x / 1.04x at 0.5 (ML-100K / synthetic, ``"boredom+drift"``, 20 steps).
        patience_budget: ``P0`` > 0, the starting budget.
        patience_threshold: ``theta``, ratings below it spend ``theta - rating`` of the budget.
        patience_cost: >= 0, budget every step costs whatever the ratings.
    """

    boredom: bool = False
    drift: bool = False
    patience: bool = False
    satiation_strength: float = 1.0
    satiation_decay: float | tuple[float, ...] | None = None
    drift_rate: float = 0.7
    patience_budget: float = 5.0
    patience_threshold: float = 4.0
    patience_cost: float = 0.1

    @property
    def name(self) -> str:
        """The canonical ``user_model`` string, e.g. ``"boredom+drift"`` or ``"static"``."""
        on = [c for c in COMPONENTS if getattr(self, c)]
        return "+".join(on) if on else "static"

    @property
    def is_static(self) -> bool:
        """Whether the user has no state: ratings ignore what came before."""
        return not (self.boredom or self.drift or self.patience)


def parse_user_model(user_model: Any, **parameters: Any) -> UserModelConfig:
    """Validate ``user_model`` (``"static"`` or components joined by ``+``) and its parameters.

    Raises:
        UserModelError: an unknown component, a repeated one, or a parameter out of range; the
            message names the argument and what is allowed.
    """
    if not isinstance(user_model, str):
        raise UserModelError(
            f"user_model must be a string such as 'static' or 'boredom+drift', got {user_model!r}"
        )
    parts = [part.strip() for part in user_model.split("+")]
    if parts == ["static"]:
        parts = []
    elif "static" in parts:
        raise UserModelError(
            f"user_model={user_model!r}: 'static' means no user state and combines with nothing; "
            f"leave it out ({'+'.join(p for p in parts if p != 'static') or 'static'!r})"
        )
    allowed = ", ".join(map(repr, ("static", *COMPONENTS)))
    for part in parts:
        if part not in COMPONENTS:
            raise UserModelError(
                f"user_model={user_model!r}: unknown component {part!r}; allowed: {allowed}, "
                "components joined by '+' (e.g. 'boredom+drift+patience')"
            )
    if len(set(parts)) != len(parts):
        raise UserModelError(f"user_model={user_model!r} names a component twice")
    known = {f.name for f in fields(UserModelConfig)} - set(COMPONENTS)
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise UserModelError(f"unknown user-model parameters {unknown}; allowed: {sorted(known)}")
    config = UserModelConfig(**{part: True for part in parts})
    config = replace(config, **{k: v for k, v in parameters.items() if v is not None})
    _check_parameters(config)
    _check_used(config)
    return config


# The parameters of each component: set while it is off, they would be silently ignored.
COMPONENT_PARAMETERS = {
    "boredom": ("satiation_strength", "satiation_decay"),
    "drift": ("drift_rate",),
    "patience": ("patience_budget", "patience_threshold", "patience_cost"),
}


def _check_used(config: UserModelConfig) -> None:
    defaults = UserModelConfig()
    for component, names in COMPONENT_PARAMETERS.items():
        changed = [n for n in names if getattr(config, n) != getattr(defaults, n)]
        if changed and not getattr(config, component):
            raise UserModelError(
                f"{', '.join(f'{n}={getattr(config, n)!r}' for n in changed)} set, but user "
                f"model {config.name!r} has no {component}, so it would be ignored; add "
                f"{component!r} to user_model (e.g. {_with(config, component)!r})"
            )


def _with(config: UserModelConfig, component: str) -> str:
    return "+".join(c for c in COMPONENTS if getattr(config, c) or c == component)


def _number(name: str, value: Any) -> float:
    return finite_number(name, value, UserModelError)


# Upper bounds far beyond any meaningful value, so that observations stay finite in float32.
_LARGEST = 1e6


def _check_parameters(config: UserModelConfig) -> None:
    if not 0 <= _number("satiation_strength", config.satiation_strength) <= _LARGEST:
        raise UserModelError(
            f"satiation_strength must be in [0, {_LARGEST:g}], got {config.satiation_strength}"
        )
    decay = config.satiation_decay
    if decay is not None:
        values = np.atleast_1d(np.asarray(decay, dtype=object))
        for value in values:
            if not 0.0 <= _number("satiation_decay", value) < 1.0:
                raise UserModelError(f"satiation_decay values must be in [0, 1), got {decay!r}")
    if not 0.0 <= _number("drift_rate", config.drift_rate) <= 1.0:
        raise UserModelError(f"drift_rate must be in [0, 1], got {config.drift_rate}")
    if not 0 < _number("patience_budget", config.patience_budget) <= _LARGEST:
        raise UserModelError(
            f"patience_budget must be in (0, {_LARGEST:g}], got {config.patience_budget}"
        )
    if not abs(_number("patience_threshold", config.patience_threshold)) <= _LARGEST:
        raise UserModelError(
            f"patience_threshold must be in [-{_LARGEST:g}, {_LARGEST:g}], "
            f"got {config.patience_threshold}"
        )
    if not 0 <= _number("patience_cost", config.patience_cost) <= _LARGEST:
        raise UserModelError(
            f"patience_cost must be in [0, {_LARGEST:g}], got {config.patience_cost}"
        )


def default_horizon(config: UserModelConfig) -> int:
    """The episode length that suits a user model: 50 with patience (the user may leave first),
    20 with drift (tastes need time to move), else 10 (T in the paper)."""
    if config.patience:
        return PATIENCE_HORIZON
    return DRIFT_HORIZON if config.drift else STATIC_HORIZON


# ML-25M: 62,423 items x 19 genres; the dense (items x genres) weights of a bigger catalogue
# of many genres took GBs (1.2 M items x 1,000 genres asked for 9 GiB).
MAX_GENRE_CELLS = 2**25


@functools.lru_cache(maxsize=8)  # worlds are shared per process; envs of one world share this
def genre_table(world: RecWorld) -> tuple[tuple[str, ...], np.ndarray]:
    """The dataset's genres (sorted, without the labels that mean "no genre") and the
    ``(n_items, n_genres)`` weights: ``1 / |G(i)|`` for each genre of item ``i``, else 0."""
    genres = world.dataset.genres
    if genres is None:
        return (), np.zeros((world.dataset.n_items, 0))
    names = tuple(sorted({g for item in genres for g in item} - set(NO_GENRE)))
    cells = world.dataset.n_items * len(names)
    if cells > MAX_GENRE_CELLS:
        raise ArgumentError(
            f"{world.dataset.name}: {world.dataset.n_items:,} items x {len(names):,} genres = "
            f"{cells:,} satiation weights, beyond {MAX_GENRE_CELLS:,} (GB of memory): the "
            "boredom model needs fewer genres or items"
        )
    column = {name: j for j, name in enumerate(names)}
    weights = np.zeros((world.dataset.n_items, len(names)))
    for item, item_genres in enumerate(genres):
        known = sorted({column[g] for g in item_genres if g in column})  # each genre once
        if known:
            weights[item, known] = 1.0 / len(known)
    weights.flags.writeable = False
    return names, weights


def genre_decay(name: str) -> float:
    """The default satiation decay of a genre: U[0.3, 0.98] seeded by the genre's name."""
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return float(np.random.default_rng(seed).uniform(*DECAY_RANGE))


@dataclass
class UserState:
    """The state of a batch of users in their episodes, one row per user.

    Attributes:
        users: internal user ids.
        satiation: ``(n, n_genres)`` per-genre satiation (``boredom``), else ``None``.
        taste: ``(n, dim)`` current MF user factors (``drift``), else ``None``.
        patience: ``(n,)`` remaining budget (``patience``), else ``None``.
    """

    users: np.ndarray
    satiation: np.ndarray | None = None
    taste: np.ndarray | None = None
    patience: np.ndarray | None = None

    def rows(self, rows: np.ndarray) -> UserState:
        """A copy of some rows (fancy indexing copies)."""

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[rows]

        return UserState(self.users[rows], *(pick(a) for a in self._arrays()[1:]))

    def assign(self, rows: np.ndarray, other: UserState) -> None:
        """Overwrite ``rows`` with the rows of ``other``."""
        for mine, theirs in zip(self._arrays(), other._arrays(), strict=True):
            if mine is not None:
                mine[rows] = theirs

    def _arrays(self) -> tuple[np.ndarray | None, ...]:
        return (self.users, self.satiation, self.taste, self.patience)


class Response(NamedTuple):
    """What a batch of users did with their slates.

    Attributes:
        ratings: ``(n, k)`` float64 ratings (NaN: unrated under ``reward_model="logged"``).
        logged: ``(n, k)`` whether each rating came from the log.
        rewards: ``(n,)`` float64 rewards, summed over the slate.
        left: ``(n,)`` whether the user left (patience spent).
    """

    ratings: np.ndarray
    logged: np.ndarray
    rewards: np.ndarray
    left: np.ndarray


class UserModel:
    """Ratings, rewards and state transitions of the users of one env configuration.

    Args:
        world: the dataset, split and MF model.
        config: the user model (see :func:`parse_user_model`).
        reward_model: ``"mf"``, ``"logged"`` or ``"oracle"``.
        split: ``"train"`` or ``"test"``: whose ratings are the logged ones.
        unrated_reward: reward of an item without a rating (``"logged"`` only).
    """

    def __init__(
        self,
        world: RecWorld,
        config: UserModelConfig,
        reward_model: str,
        split: str,
        unrated_reward: float,
    ) -> None:
        self.world, self.config = world, config
        self.reward_model, self.unrated_reward = reward_model, float(unrated_reward)
        self.pool = world.split.train if split == "train" else world.split.test
        self.scale = world.dataset.rating_scale
        low, high = self.scale
        if config.patience and not low < config.patience_threshold <= high:
            raise UserModelError(
                f"patience_threshold={config.patience_threshold} must lie in ({low:g}, {high:g}], "
                f"the rating scale of {world.dataset.name!r} (at or below {low:g} no rating "
                f"spends patience; above {high:g} every one does)"
            )
        # Without boredom there are no genres to weigh and nothing decays (empty arrays).
        self.genres: tuple[str, ...] = ()
        self.weights, self.decay = np.zeros((world.dataset.n_items, 0)), np.zeros(0)
        if config.boredom:
            self.genres, self.weights = genre_table(world)
            if not self.genres:
                raise UserModelError(
                    f"user_model={config.name!r} needs item genres, and dataset "
                    f"{world.dataset.name!r} has none (its item file, e.g. u.item or "
                    "movies.dat, was not found beside the ratings)"
                )
            self.decay = self._decay(config.satiation_decay)

    def _decay(self, decay: float | tuple[float, ...] | None) -> np.ndarray:
        if decay is None:
            return np.array([genre_decay(name) for name in self.genres])
        values = np.asarray(decay, dtype=np.float64)
        if values.ndim == 0:
            return np.full(len(self.genres), float(values))
        if values.shape != (len(self.genres),):
            raise UserModelError(
                f"satiation_decay has {values.size} values; {self.world.dataset.name!r} has "
                f"{len(self.genres)} genres ({', '.join(self.genres)})"
            )
        return values

    @property
    def satiation_bound(self) -> float:
        """Satiation never exceeds this (per genre), whatever the slate size."""
        return float(1.0 / (1.0 - self.decay.max())) if len(self.decay) else 0.0

    # ------------------------------------------------------------------ episodes
    def start(self, users: np.ndarray) -> UserState:
        """The state of users at the start of an episode."""
        users = np.asarray(users, dtype=np.int64)
        n, c = len(users), self.config
        return UserState(
            users=users,
            satiation=np.zeros((n, len(self.genres))) if c.boredom else None,
            taste=self.world.mf.user_factors[users].astype(np.float64) if c.drift else None,
            patience=np.full(n, float(c.patience_budget)) if c.patience else None,
        )

    def rate(self, state: UserState, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ratings ``(n, m)`` of ``items`` ``(n, m)`` in the current state, and whether each came
        from the log. The state does not change."""
        static, logged = self.static_ratings(state.users[:, None], items)
        return self.adjust(state, static, items), logged

    def static_ratings(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The reward model's ratings of (user, item) pairs (broadcast), before any user state
        and unclipped, and whether each came from the log."""
        logged, ratings = self.pool.lookup(users, items)
        if self.reward_model == "oracle":
            shape = np.broadcast_shapes(np.shape(users), np.shape(items))
            truth = self.world.dataset.truth
            assert truth is not None  # the env refuses reward_model="oracle" without a truth
            flat = truth.true_rating(
                np.broadcast_to(users, shape).ravel(), np.broadcast_to(items, shape).ravel()
            )
            return flat.reshape(shape), np.zeros(shape, dtype=bool)
        if self.reward_model == "mf":
            ratings = np.where(logged, ratings, self.world.mf.predict(users, items))
        return ratings, logged

    def adjust(
        self,
        state: UserState,
        static: np.ndarray,
        items: np.ndarray | None = None,
        clip: bool = True,
    ) -> np.ndarray:
        """Ratings in the current state from their static parts ``(n, m)``: drift and boredom
        applied, clipped to the scale (unless not ``clip``: a prediction's order beyond it).
        ``items`` ``(n, m)``, or ``None`` for the whole catalogue in order (then with matrix
        products: how reference policies look ahead cheaply)."""
        low, high = self.scale if clip else (-np.inf, np.inf)
        if self.config.is_static:  # as np.clip, without its wrapper's cost on the hot path
            return np.minimum(np.maximum(static, low), high).astype(np.float64)
        ratings = static.astype(np.float64)
        mf = self.world.mf
        if state.taste is not None:
            moved = state.taste - mf.user_factors[state.users]
            if items is None:
                ratings += moved @ mf.item_factors.T
            else:
                ratings += np.einsum("nd,nmd->nm", moved, mf.item_factors[items])
        if state.satiation is not None:
            if items is None:
                boredom = state.satiation @ self.weights.T
            else:
                boredom = np.einsum("ng,nmg->nm", state.satiation, self.weights[items])
            ratings -= self.config.satiation_strength * boredom
        return np.minimum(np.maximum(ratings, low), high)

    def rewards(self, ratings: np.ndarray) -> np.ndarray:
        """Each rated item's reward: ``(rating - 3) / 2``, or, where the user can leave,
        ``(rating - low) / (high - low)`` (non-negative, so that keeping the user pays);
        ``unrated_reward`` for an item without a rating."""
        if self.config.patience:
            low, high = self.scale
            value = (ratings - low) / (high - low)
        else:
            value = (ratings - NEUTRAL_RATING) / 2.0
        if self.reward_model != "logged":  # the only model that leaves items unrated
            return value
        return np.where(np.isnan(ratings), self.unrated_reward, value)

    def advance(self, state: UserState, slates: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """Move the state on after ``slates`` ``(n, k)`` were rated; whether each user left."""
        c = self.config
        if state.satiation is not None:
            state.satiation *= self.decay
            state.satiation += self.weights[slates].sum(axis=1)
        if state.taste is not None:
            for column in range(slates.shape[1]):
                state.taste *= 1.0 - c.drift_rate
                items = self.world.mf.item_factors[slates[:, column]].astype(np.float64)
                state.taste += c.drift_rate * items
        if state.patience is None:
            return np.zeros(len(state.users), dtype=bool)
        # An unrated item (``"logged"``) disappoints like the lowest rating.
        shortfall = np.minimum(
            0.0, np.nan_to_num(ratings, nan=self.scale[0]) - c.patience_threshold
        )
        state.patience += shortfall.sum(axis=1) - c.patience_cost
        # Budget 5 less 50 costs of 0.1 leaves 1e-15 in floating point: the user leaves there.
        return state.patience <= 1e-9 * c.patience_budget

    def respond(self, state: UserState, slates: np.ndarray) -> Response:
        """Rate ``slates`` ``(n, k)``, reward them and move the state on (in place)."""
        ratings, logged = self.rate(state, slates)
        rewards = self.rewards(ratings).sum(axis=1)
        left = self.advance(state, slates, ratings)
        return Response(ratings, logged, rewards, left)
