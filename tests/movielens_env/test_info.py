"""The info of reset and step: the same keys every time, numpy values of stable dtypes and
shapes, in the single env, the native vector env and Gymnasium's vector envs, whatever the
autoreset mode; and the reward's dtype the same in single and vector envs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from movielens_env import MovieLensRecVectorEnv
from movielens_env.envs.info import INFO_KEYS, NO_ITEM
from tests.helpers import SMALL_ENV_KWARGS

SLATE, HISTORY = 2, 4
DTYPES = {"user_id": np.int64, "history_item_ids": np.int64, "item_ids": np.int64,
          "ratings": np.float64, "logged": np.bool_, "hits": np.bool_}  # fmt: skip
SHAPES = {"user_id": (), "history_item_ids": (HISTORY,), "item_ids": (SLATE,),
          "ratings": (SLATE,), "logged": (SLATE,), "hits": (SLATE,)}  # fmt: skip


def _check(info, batch=()):
    assert tuple(info) == INFO_KEYS
    for key, value in info.items():
        assert isinstance(value, np.ndarray | np.generic), (key, type(value))
        assert value.dtype == DTYPES[key] and value.shape == (*batch, *SHAPES[key]), key


def test_the_single_env_gives_every_key_at_reset_and_step_as_numpy(make_env):
    env = make_env(slate_size=SLATE, history_len=HISTORY, reward_model="logged")
    _, info = env.reset(seed=0)
    _check(info)
    assert (info["item_ids"] == NO_ITEM).all() and np.isnan(info["ratings"]).all()
    assert not info["logged"].any() and not info["hits"].any()
    rng = np.random.default_rng(0)
    for _ in range(6):
        _, reward, terminated, _, info = env.step(env.action_space.sample() + rng.normal())
        _check(info)
        assert type(reward) is np.float64
        assert (info["item_ids"] != NO_ITEM).all()
        liked = info["item_ids"][info["hits"]]
        assert set(liked.tolist()) <= set(info["history_item_ids"].tolist())  # after the step
        if terminated:
            break


def _filtered(info):
    """The info's own keys (not Gymnasium's masks or final_*), unstacked from object arrays."""
    return {k: v for k, v in info.items() if not k.startswith("_") and not k.startswith("final")}


@pytest.mark.parametrize("mode", ["NextStep", "SameStep", "Disabled"])
def test_the_native_vector_env_gives_every_key_at_reset_and_step(small_dataset, mode):
    envs = MovieLensRecVectorEnv(
        3, dataset=small_dataset, **{**SMALL_ENV_KWARGS, "slate_size": SLATE,
                                     "history_len": HISTORY}, max_episode_steps=2,
        autoreset_mode=mode,
    )  # fmt: skip
    _, info = envs.reset(seed=0)
    _check(_filtered(info), (3,))
    for _ in range(5):
        if mode == "Disabled" and envs._autoreset.any():
            _, info = envs.reset(options={"reset_mask": envs._autoreset.copy()})
            _check(_filtered(info), (3,))
        _, rewards, _, _, info = envs.step(envs.action_space.sample())
        assert rewards.dtype == np.float64
        _check(_filtered(info), (3,))
        if "final_info" in info:
            _check(_filtered(info["final_info"]), (3,))


@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
def test_gymnasiums_vector_env_stacks_the_same_keys_at_reset_and_autoreset(small_dataset, mode):
    envs = gym.vector.SyncVectorEnv(
        [lambda: gym.make("MovieLensRec-v0", dataset=small_dataset, max_episode_steps=2,
                          **{**SMALL_ENV_KWARGS, "slate_size": SLATE})] * 2,
        autoreset_mode=mode,
    )  # fmt: skip
    _, info = envs.reset(seed=0)
    keys = set(_filtered(info))
    assert keys == set(INFO_KEYS)
    for _ in range(5):
        _, rewards, *_, info = envs.step(envs.action_space.sample())
        assert rewards.dtype == np.float64 and set(_filtered(info)) == keys
        assert info["user_id"].dtype == np.int64  # numpy scalars stack as numbers, not objects
