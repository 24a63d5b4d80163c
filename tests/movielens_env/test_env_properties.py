"""Property tests of MovieLensRecEnv: its invariants over random arguments and random actions.

Each example builds (or reuses) an env on the small synthetic fixture data with drawn arguments,
plays one episode with drawn actions (any magnitude, inside [-1, 1] or far outside it) and
explicit slates, and checks every step against a model of the env written from its docstring:
candidates, slate, ratings and reward, FIFO history of liked items, observation, termination.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from movielens_env import MovieLensRecEnv, RatingsDataset
from movielens_env.errors import InvalidActionError
from movielens_env.evaluation.protocols import protocol_candidates
from movielens_env.simulator.scoring import rank_by_action
from tests.helpers import SMALL_ENV_KWARGS, env_args

# Actions are drawn with one coordinate per MF factor plus the bias coordinate; an env without
# item_bias uses the first DIM of them.
DIM = SMALL_ENV_KWARGS["embedding_dim"] + 1
PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # every run tries the same examples; a failure prints its example
    database=None,
)


class EnvCache:
    """Envs on one dataset, each argument set built once (``twin`` builds a second one)."""

    def __init__(self, dataset: RatingsDataset) -> None:
        self.dataset = dataset
        self._envs: dict[tuple, MovieLensRecEnv] = {}

    def __call__(self, args: dict[str, Any], twin: int = 0) -> MovieLensRecEnv:
        key = (tuple(sorted(args.items())), twin)
        if key not in self._envs:
            self._envs[key] = MovieLensRecEnv(dataset=self.dataset, **SMALL_ENV_KWARGS, **args)
        return self._envs[key]

    def __repr__(self) -> str:  # hypothesis prints it in every failing example
        return f"EnvCache({self.dataset.name!r})"


@pytest.fixture(scope="module")
def envs(small_dataset: RatingsDataset) -> EnvCache:
    """Envs shared by every example of this module (building one fits nothing new)."""
    return EnvCache(small_dataset)


def fitted(env: MovieLensRecEnv, action: np.ndarray) -> np.ndarray:
    """The drawn action cut to the env's action length."""
    return action[: env.action_space.shape[0]]


def expected_vectors(env: MovieLensRecEnv, user: int, items) -> tuple[np.ndarray, np.ndarray]:
    """The user and item vectors the docstring promises, from the MF model directly."""
    mf = env.world.mf
    user_vector, item_vectors = mf.user_factors[user], mf.item_factors[items]
    if env.item_bias:
        user_vector = np.append(user_vector, np.float32(1.0))
        item_vectors = np.hstack([item_vectors, mf.item_bias[items, None]])
    return user_vector, item_vectors


_unit = hnp.arrays(np.float32, DIM, elements=st.floats(-1, 1, width=32))
# Down to float32 subnormals and up to near its largest value (3.4e38), where scores in float32
# would underflow to ties or overflow to inf.
_scale = st.sampled_from([1e-44, 1e-38, 1e-30, 1e-6, 1e-2, 1.0, 7.0, 1e4, 1e30, 1e37, 3e38])
# Any finite float32, elementwise.
_wild = hnp.arrays(
    np.float32, DIM, elements=st.floats(width=32, allow_nan=False, allow_infinity=False)
)
ACTIONS = st.one_of(
    _unit, st.builds(lambda a, s: (a * np.float32(s)).astype(np.float32), _unit, _scale), _wild
)
# A move: an action for step(), or (as a float in [0, 1)) a seed of an explicit candidate slate.
MOVES = st.lists(ACTIONS | st.floats(0, 1, exclude_max=True), min_size=1, max_size=12)


class EpisodeModel:
    """What the docstring says the env's state is, kept independently of the env."""

    def __init__(self, env: MovieLensRecEnv, info: dict[str, Any]) -> None:
        data, split = env.world.dataset, env.world.split
        self.env, self.data = env, data
        self.user = int(data.user_index(info["user_id"]))
        self.history = data.item_index(info["history_item_ids"]).tolist()
        if env.split == "test":
            items, ratings = split.test.row(self.user)
        else:
            items, ratings = split.train.row(self.user)
            keep = ~np.isin(items, self.history)
            items, ratings = items[keep], ratings[keep]
        self.pool = dict(zip(items.tolist(), ratings.tolist(), strict=True))
        # the starting state: a user with enough positives (and, for "rated", a large enough pool)
        assert env.world.positives.counts[self.user] >= env.history_len
        assert env.candidates == "all" or len(self.pool) >= env.slate_size
        self.excluded = set(self.history)  # in the history once, or recommended

    def candidates(self) -> np.ndarray:
        """Items that may be recommended now, ascending."""
        universe = sorted(self.pool) if self.env.candidates == "rated" else range(self.data.n_items)
        return np.array([i for i in universe if i not in self.excluded], dtype=np.int64)

    def check_observation(self, obs: Any) -> None:
        """The observation is in the space and shows the user and the modelled history."""
        env = self.env
        assert env.observation_space.contains(obs)
        if env.obs_mode == "dict":
            assert obs["user_id"].tolist() == [self.user]
            np.testing.assert_array_equal(obs["history_ids"], self.history)
            user, history = obs["user"], obs["history"]
        else:
            dim = env.action_space.shape[0]
            user, history = obs[:dim], obs[dim:].reshape(env.history_len, dim)
        want_user, want_history = expected_vectors(env, self.user, self.history)
        np.testing.assert_array_equal(user, want_user)
        np.testing.assert_array_equal(history, want_history)

    def check_step(self, slate: np.ndarray, before: np.ndarray, step: tuple) -> None:
        """Everything one step returned, given the slate it recommended."""
        env = self.env
        obs, reward, terminated, truncated, info = step
        assert len(slate) == env.slate_size == len(set(slate.tolist()))
        assert np.isin(slate, before).all() and not self.excluded & set(slate.tolist())
        assert info["user_id"] == self.data.user_ids[self.user]
        ratings, logged = info["ratings"], info["logged"]
        in_pool = np.array([item in self.pool for item in slate.tolist()])
        logged_ratings = np.array([self.pool.get(item, math.nan) for item in slate.tolist()])
        if env.reward_model == "oracle":
            assert not logged.any()
            truth = self.data.truth.true_rating(np.full(len(slate), self.user), slate)
            np.testing.assert_allclose(ratings, truth)
        else:
            np.testing.assert_array_equal(logged, in_pool)
            np.testing.assert_array_equal(ratings[in_pool], logged_ratings[in_pool])
            if env.reward_model == "logged":
                assert np.isnan(ratings[~in_pool]).all()
        rated = ~np.isnan(ratings)
        assert env.reward_model == "logged" or rated.all()
        assert ((ratings[rated] >= 1.0) & (ratings[rated] <= 5.0)).all()
        per_item = np.where(rated, (ratings - 3.0) / 2.0, env.unrated_reward)
        assert (per_item[rated] >= -1.0).all() and (per_item[rated] <= 1.0).all()
        # rewards are computed in float32 (the ratings of the log and of the MF model)
        assert isinstance(reward, float) and reward == pytest.approx(per_item.sum(), abs=1e-5)
        np.testing.assert_array_equal(info["hits"], rated & (np.nan_to_num(ratings) >= 4.0))
        np.testing.assert_array_equal(info["item_ids"], self.data.item_ids[slate])

        self.excluded |= set(slate.tolist())
        liked = slate[info["hits"]].tolist()
        self.history = (self.history + liked)[-env.history_len :]
        assert len(self.history) == env.history_len
        self.check_observation(obs)
        assert terminated is (len(self.candidates()) < env.slate_size) and truncated is False


def _best_scored(model: EpisodeModel, action: np.ndarray, candidates: np.ndarray, slate) -> None:
    """The slate holds the candidates the action scores best (only its direction counts)."""
    direction = action.astype(np.float64)
    peak = np.abs(direction).max()
    if peak == 0:
        return  # every item ties
    vectors = expected_vectors(model.env, model.user, candidates)[1]
    scores = vectors.astype(np.float64) @ (direction / peak)
    chosen = np.isin(candidates, slate)
    tolerance = 1e-4 * max(1.0, np.abs(scores).max())  # the env scores in float32
    assert chosen.all() or scores[chosen].min() >= scores[~chosen].max() - tolerance


@PROPERTY_SETTINGS
@given(args=env_args(), seed=st.integers(0, 2**32 - 1), moves=MOVES)
def test_episode_invariants(envs, args, seed, moves):
    env = envs(args)
    obs, info = env.reset(seed=seed)
    model = EpisodeModel(env, info)
    model.check_observation(obs)
    for move in moves:
        before = model.candidates()
        np.testing.assert_array_equal(env.candidate_items(), before)
        if isinstance(move, float):
            rng = np.random.default_rng(int(move * 2**32))
            slate = rng.choice(before, env.slate_size, replace=False)
            step = env.step_items(slate)
        elif not fitted(env, move).any():  # no direction: refused, and nothing happens
            with pytest.raises(InvalidActionError, match="all zeros"):
                env.step(fitted(env, move))
            continue
        else:
            move = fitted(env, move)
            step = env.step(move)
            slate = env.world.dataset.item_index(step[4]["item_ids"])
            _best_scored(model, move, before, slate)
        model.check_step(slate, before, step)
        if step[2]:
            with pytest.raises(gym.error.ResetNeeded):
                env.step(fitted(env, np.ones(DIM, np.float32)))
            break


@PROPERTY_SETTINGS
@given(args=env_args(), seed=st.integers(0, 2**32 - 1), actions=st.lists(ACTIONS, max_size=8))
def test_step_items_with_the_chosen_slate_is_step(envs, args, seed, actions):
    by_action, by_items = envs(args), envs(args, twin=1)
    obs, info = by_action.reset(seed=seed)
    twin_obs, twin_info = by_items.reset(seed=seed)
    np.testing.assert_equal((obs, info), (twin_obs, twin_info))
    for action in actions:
        if not fitted(by_action, action).any():
            continue  # refused (no direction); see test_episode_invariants
        step = by_action.step(fitted(by_action, action))
        slate = by_action.world.dataset.item_index(step[4]["item_ids"])
        np.testing.assert_equal(by_items.step_items(slate), step)
        if step[2]:
            break


@PROPERTY_SETTINGS
@given(args=env_args(), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_step_items_refuses_what_is_not_a_candidate_slate(envs, args, seed, data):
    env = envs(args)
    env.reset(seed=seed)
    candidates = env.candidate_items()
    excluded = np.setdiff1d(np.arange(env.world.dataset.n_items), candidates)
    size = env.slate_size
    bad = [np.append(candidates[: size - 1], -1), candidates[: size + 1]]
    if size > 1:
        bad.append(np.append(candidates[: size - 1], candidates[0]))
    if len(excluded):
        bad.append(np.append(candidates[: size - 1], data.draw(st.sampled_from(excluded))))
    for slate in bad:
        with pytest.raises(ValueError, match=r"a slate must hold|not all current candidates"):
            env.step_items(slate)
    np.testing.assert_array_equal(env.candidate_items(), candidates)  # nothing happened


@st.composite
def scaled_actions(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """An action of at most 11 significant bits, and the same action times a power of two: both
    exact, so they have exactly the same direction (float32 down to its subnormals and up to
    near its largest value, 3.4e38; float64 over most of its range)."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    low, high = (-139, 127) if dtype is np.float32 else (-1000, 1000)
    mantissas = draw(hnp.arrays(np.int64, DIM, elements=st.integers(-1024, 1024)))
    action = (mantissas / 1024.0).astype(dtype)
    return action, np.ldexp(action, draw(st.integers(low, high))).astype(dtype)


@PROPERTY_SETTINGS
@given(args=env_args(), seed=st.integers(0, 2**32 - 1), actions=scaled_actions())
def test_only_the_direction_of_an_action_counts(envs, args, seed, actions):
    env, twin = envs(args), envs(args, twin=1)
    action, scaled = (fitted(env, a) for a in actions)
    if not action.any():
        return  # no direction at any scale: refused, as test_episode_invariants checks
    env.reset(seed=seed)
    info = twin.reset(seed=seed)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or underflow on the way
        np.testing.assert_equal(twin.step(scaled), env.step(action))
        world = env.world
        candidates = protocol_candidates(
            world, int(world.dataset.user_index(info["user_id"])), "full"
        )
        np.testing.assert_array_equal(
            rank_by_action(env.vectors, scaled, candidates, 10),
            rank_by_action(env.vectors, action, candidates, 10),
        )
