"""The env against Gymnasium's and SB3's checkers, seeded reproducibility, and pickling."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import movielens_env
from tests.helpers import SMALL_ENV_KWARGS, write_ml100k

# Warnings the checkers may raise that are not faults of the env. Each entry says why.
WARNING_WHITELIST: tuple[str, ...] = (
    # SB3, on obs_mode="dict": the (history_len, dim) history matrix is kept 2-D on purpose for
    # custom agents (DRR's state module reads it row by row); SB3 policies use the flat mode.
    "Your observation history has an unconventional shape",
)


def _check_without_warnings(check, env) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check(env)
    unexpected = [
        str(w.message) for w in caught if not any(ok in str(w.message) for ok in WARNING_WHITELIST)
    ]
    assert not unexpected, unexpected


@pytest.mark.parametrize("obs_mode", ["flat", "dict"])
@pytest.mark.parametrize("candidates", ["all", "rated"])
def test_gymnasium_check_env(small_dataset, obs_mode, candidates):
    # Made through gym.make so the checker finds a spec and tests the render modes too.
    env = gym.make(
        "MovieLensRec-v0",
        dataset=small_dataset,
        obs_mode=obs_mode,
        candidates=candidates,
        render_mode="ansi",
        slate_size=2,
        **SMALL_ENV_KWARGS,
    )
    _check_without_warnings(gym_check_env, env.unwrapped)


@pytest.mark.parametrize("obs_mode", ["flat", "dict"])
def test_sb3_check_env(make_env, obs_mode):
    _check_without_warnings(sb3_check_env, make_env(obs_mode=obs_mode))


@pytest.mark.parametrize("env_id", list(movielens_env.VARIANTS))
@pytest.mark.parametrize("obs_mode", ["flat", "dict"])
def test_registered_variants_pass_both_checkers(small_dataset, env_id, obs_mode):
    env = gym.make(
        env_id, dataset=small_dataset, obs_mode=obs_mode, render_mode="ansi", **SMALL_ENV_KWARGS
    )
    _check_without_warnings(gym_check_env, env.unwrapped)
    _check_without_warnings(sb3_check_env, env.unwrapped)


def test_boredom_on_ml100k_files_passes_both_checkers(tmp_path):
    write_ml100k(tmp_path / "ml-100k")
    env = gym.make(
        "MovieLensRec-v0", dataset="ml-100k", data_dir=tmp_path / "ml-100k", user_model="boredom",
        render_mode="ansi", **SMALL_ENV_KWARGS,
    )  # fmt: skip
    _check_without_warnings(gym_check_env, env.unwrapped)
    _check_without_warnings(sb3_check_env, env.unwrapped)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    assert "Satiation (most):" in env.render()


def _seeded_rollout(env: gym.Env, steps: int = 50):
    env.action_space.seed(123)
    obs, info = env.reset(seed=42)
    trace = [(obs, info)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trace.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            obs, info = env.reset()
            trace.append((obs, info))
    return trace


def _assert_same(first, second) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            if isinstance(x, dict):  # an info: its NaN (no rating) equals NaN
                assert x.keys() == y.keys(), (x, y)
                for key in x:
                    np.testing.assert_array_equal(x[key], y[key], err_msg=key)
                    assert x[key].dtype == y[key].dtype, key
            else:
                assert gym.utils.env_checker.data_equivalence(x, y, exact=True), (x, y)


def test_seeded_50_step_rollout_is_reproduced_by_two_envs(small_dataset):
    make = lambda: gym.make("MovieLensRec-v0", dataset=small_dataset, **SMALL_ENV_KWARGS)  # noqa: E731
    first, second = _seeded_rollout(make()), _seeded_rollout(make())
    _assert_same(first, second)
    assert sum(isinstance(step[0], np.ndarray) and len(step) == 2 for step in first) >= 5  # resets


@pytest.mark.parametrize("user_model", ["static", "boredom+drift+patience"])
def test_pickle_round_trip_mid_episode(make_env, user_model):
    patience = {"patience_budget": 50.0} if "patience" in user_model else {}
    env = make_env(slate_size=2, user_model=user_model, **patience)
    env.reset(seed=11)
    for _ in range(3):
        env.step(env.action_space.sample())
    clone = pickle.loads(pickle.dumps(env))
    assert clone.world is env.world  # the shared world comes back from the process cache
    actions = np.random.default_rng(0).uniform(-1, 1, (6, 17)).astype(np.float32)
    _assert_same([env.step(a) for a in actions], [clone.step(a) for a in actions])
    _assert_same([env.reset()], [clone.reset()])  # the RNG state travelled too


def test_pickled_world_is_small(small_dataset):
    env = movielens_env.MovieLensRecEnv(
        dataset="synthetic", embedding_dim=4, mf_options={"iterations": 2}
    )
    assert len(pickle.dumps(env.world)) < 10_000
