"""The native vector env: same trajectories as single envs, Gymnasium's vector conventions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from hypothesis import given, settings
from hypothesis import strategies as st

from movielens_env import ENV_ID, MovieLensRecVectorEnv
from movielens_env.envs.info import NO_ITEM
from tests.helpers import SMALL_ENV_KWARGS, env_args, user_model_kwargs

N_ENVS = 5
STEP_INFO_KEYS = ("user_id", "item_ids", "ratings", "logged", "hits", "history_item_ids")

CONFIGS = [
    {},
    {"slate_size": 3, "reward_model": "logged"},
    {"candidates": "rated", "split": "test"},  # small pools: episodes terminate early
    {"candidates": "rated", "slate_size": 2, "reward_model": "oracle", "obs_mode": "dict"},
    {"split": "test", "history_len": 4, "slate_size": 4, "reward_model": "oracle"},
    # user models: patience ends some episodes early, others run to the time limit
    {"user_model": "boredom+drift+patience", "patience_budget": 0.8},
    {"user_model": "boredom", "obs_mode": "dict", "slate_size": 2, "item_bias": False},
    {"user_model": "drift", "reward_model": "logged", "split": "test"},
    {"user_model": "patience", "candidates": "rated", "reward_model": "oracle", "slate_size": 2},
]
USER_MODELS = ["static", "boredom", "drift", "patience", "boredom+drift+patience"]


def _make(small_dataset, mode: str, autoreset=AutoresetMode.NEXT_STEP, **config):
    kwargs = {"dataset": small_dataset, **SMALL_ENV_KWARGS, **config}
    if mode == "sync":
        return gym.make_vec(
            ENV_ID,
            num_envs=N_ENVS,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": autoreset},
            **kwargs,
        )
    return gym.make_vec(
        ENV_ID,
        num_envs=N_ENVS,
        vectorization_mode="vector_entry_point",
        autoreset_mode=autoreset,
        **kwargs,
    )


def _assert_obs_equal(a, b) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    else:
        np.testing.assert_array_equal(a, b)


def _assert_info_equal(native: dict, sync: dict) -> None:
    for key in STEP_INFO_KEYS:
        mask = sync.get(f"_{key}", np.zeros(N_ENVS, dtype=bool))
        np.testing.assert_array_equal(
            native.get(f"_{key}", np.zeros(N_ENVS, dtype=bool)), mask, err_msg=f"_{key}"
        )
        if mask.any():
            np.testing.assert_array_equal(native[key][mask], sync[key][mask], err_msg=key)


def _run_both(native, sync, steps: int, seed: int = 0):
    obs_n, info_n = native.reset(seed=seed)
    obs_s, info_s = sync.reset(seed=seed)
    _assert_obs_equal(obs_n, obs_s)
    _assert_info_equal(info_n, info_s)
    rng = np.random.default_rng(seed)
    ended = 0
    for _ in range(steps):
        actions = rng.uniform(-1.0, 1.0, native.action_space.shape).astype(np.float32)
        out_n, out_s = native.step(actions), sync.step(actions)
        _assert_obs_equal(out_n[0], out_s[0])
        for got, want in zip(out_n[1:4], out_s[1:4], strict=True):
            np.testing.assert_array_equal(got, want)
        _assert_info_equal(out_n[4], out_s[4])
        ended += int((out_n[2] | out_n[3]).sum())
        assert native.observation_space.contains(out_n[0])
    return ended


@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: ",".join(map(str, c.values())) or "default"
)
def test_trajectories_equal_single_envs_step_for_step(small_dataset, config):
    native = _make(small_dataset, "native", **config)
    sync = _make(small_dataset, "sync", **config)
    assert isinstance(native.unwrapped, MovieLensRecVectorEnv)
    ended = _run_both(native, sync, steps=34)
    assert ended >= N_ENVS  # episodes ended and were reset along the way


def test_same_step_autoreset_matches_sync_vector_env(small_dataset):
    config = {"candidates": "rated", "split": "test"}
    native = _make(small_dataset, "native", AutoresetMode.SAME_STEP, **config)
    sync = _make(small_dataset, "sync", AutoresetMode.SAME_STEP, **config)
    native.reset(seed=3)
    sync.reset(seed=3)
    rng = np.random.default_rng(3)
    seen_final = False
    for _ in range(25):
        actions = rng.uniform(-1.0, 1.0, native.action_space.shape).astype(np.float32)
        out_n, out_s = native.step(actions), sync.step(actions)
        np.testing.assert_array_equal(out_n[0], out_s[0])
        np.testing.assert_array_equal(out_n[1], out_s[1])
        _assert_info_equal(out_n[4], out_s[4])
        if "final_obs" in out_s[4]:
            seen_final = True
            mask = out_s[4]["_final_obs"]
            np.testing.assert_array_equal(out_n[4]["_final_obs"], mask)
            for got, want in zip(
                out_n[4]["final_obs"][mask], out_s[4]["final_obs"][mask], strict=True
            ):
                np.testing.assert_array_equal(got, want)
            _assert_info_equal(out_n[4]["final_info"], out_s[4]["final_info"])
    assert seen_final


def test_registered_vector_entry_point_is_the_default(small_dataset):
    envs = gym.make_vec(ENV_ID, num_envs=3, dataset=small_dataset, **SMALL_ENV_KWARGS)
    assert isinstance(envs, MovieLensRecVectorEnv)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.max_episode_steps == 10
    assert envs.observation_space.shape == (3, *envs.single_observation_space.shape)


def test_next_step_autoreset_ignores_the_action_and_gives_zero_reward(small_dataset):
    envs = MovieLensRecVectorEnv(
        num_envs=2, max_episode_steps=2, dataset=small_dataset, **SMALL_ENV_KWARGS
    )
    envs.reset(seed=1)
    actions = np.ones(envs.action_space.shape, np.float32)
    envs.step(actions)
    _, _, _, truncated, _ = envs.step(actions)
    assert truncated.all()
    _, rewards, terminated, truncated, info = envs.step(actions)
    assert (rewards == 0).all() and not terminated.any() and not truncated.any()
    assert info["_history_item_ids"].all() and info["_item_ids"].all()  # a reset's: no slate
    assert (info["item_ids"] == NO_ITEM).all() and np.isnan(info["ratings"]).all()


def test_disabled_autoreset_needs_a_masked_reset(small_dataset):
    envs = MovieLensRecVectorEnv(
        num_envs=3,
        max_episode_steps=1,
        autoreset_mode="Disabled",
        dataset=small_dataset,
        **SMALL_ENV_KWARGS,
    )
    envs.reset(seed=0, options={"reset_mask": np.array([True, True, True])})
    actions = np.ones(envs.action_space.shape, np.float32)
    envs.step(actions)
    with pytest.raises(gym.error.ResetNeeded, match=r"reset_mask"):
        envs.step(actions)
    _, info = envs.reset(options={"reset_mask": np.array([True, True, True])})
    assert info["_user_id"].all()
    envs.step(actions)


def test_reset_with_user_ids(small_dataset):
    envs = MovieLensRecVectorEnv(num_envs=2, dataset=small_dataset, **SMALL_ENV_KWARGS)
    raw = envs.world.dataset.user_ids[envs.eligible_users[:2]]
    _, info = envs.reset(options={"user_id": raw})
    np.testing.assert_array_equal(info["user_id"], raw)
    _, info = envs.reset(options={"user_id": raw[0]})
    np.testing.assert_array_equal(info["user_id"], [raw[0], raw[0]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_envs": 0}, "num_envs must be an integer >= 1"),
        ({"max_episode_steps": 0}, "max_episode_steps must be None or an integer >= 1"),
        ({"autoreset_mode": "sometimes"}, "autoreset_mode='sometimes' is not valid"),
        ({"render_mode": "ansi"}, "does not render"),
        ({"candidates": "some"}, "candidates='some' is not valid"),
    ],
)
def test_bad_arguments_are_named(small_dataset, kwargs, message):
    with pytest.raises(ValueError, match=message):
        MovieLensRecVectorEnv(dataset=small_dataset, **SMALL_ENV_KWARGS, **kwargs)


def test_bad_actions_and_step_before_reset(small_dataset):
    envs = MovieLensRecVectorEnv(num_envs=2, dataset=small_dataset, **SMALL_ENV_KWARGS)
    actions = np.ones(envs.action_space.shape, np.float32)
    with pytest.raises(gym.error.ResetNeeded):
        envs.step(actions)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2, 17\)"):
        envs.step(actions[0])
    actions[1, 3] = np.nan
    with pytest.raises(ValueError, match=r"sub-environments \[1\]"):
        envs.step(actions)
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": np.array([False, False])})


@given(
    args=env_args(),
    user_model=st.sampled_from(USER_MODELS),
    patience=st.sampled_from([0.5, 2.0, 5.0]),
    num_envs=st.integers(1, 6),
    seed=st.integers(0, 2**31),
    steps=st.integers(1, 25),
    autoreset=st.sampled_from([AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP]),
    scales=st.lists(st.sampled_from([1e-40, 1e-3, 1.0, 1e35]), min_size=6, max_size=6),
)
@settings(max_examples=40, deadline=None, derandomize=True, database=None)
def test_any_arguments_give_the_single_envs_trajectories(
    small_dataset, args, user_model, patience, num_envs, seed, steps, autoreset, scales
):
    kwargs = {"dataset": small_dataset, **SMALL_ENV_KWARGS, **args}
    kwargs.update(user_model_kwargs(user_model, patience_budget=patience))
    native = gym.make_vec(ENV_ID, num_envs=num_envs, autoreset_mode=autoreset, **kwargs)
    sync = gym.make_vec(
        ENV_ID,
        num_envs=num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": autoreset},
        **kwargs,
    )
    _assert_obs_equal(native.reset(seed=seed)[0], sync.reset(seed=seed)[0])
    rng = np.random.default_rng(seed)
    scale = np.array(scales[:num_envs], dtype=np.float32)[:, None]
    for _ in range(steps):
        actions = rng.uniform(-1, 1, native.action_space.shape).astype(np.float32) * scale
        out_n, out_s = native.step(actions), sync.step(actions)
        _assert_obs_equal(out_n[0], out_s[0])
        for got, want in zip(out_n[1:4], out_s[1:4], strict=True):
            np.testing.assert_array_equal(got, want)
        for key in ("item_ids", "ratings", "hits"):
            mask = out_s[4].get(f"_{key}", np.zeros(num_envs, dtype=bool))
            np.testing.assert_array_equal(out_n[4].get(f"_{key}", np.zeros_like(mask)), mask)
            if mask.any():
                np.testing.assert_array_equal(out_n[4][key][mask], out_s[4][key][mask])
        assert native.observation_space.contains(out_n[0])


def test_state_dict_resumes_every_user_model_exactly(small_dataset):
    kwargs = {"dataset": small_dataset, "user_model": "boredom+drift+patience", **SMALL_ENV_KWARGS}
    first = MovieLensRecVectorEnv(num_envs=3, max_episode_steps=7, **kwargs)
    second = MovieLensRecVectorEnv(num_envs=3, max_episode_steps=7, **kwargs)
    first.reset(seed=2)
    rng = np.random.default_rng(2)
    actions = rng.uniform(-1, 1, (20, *first.action_space.shape)).astype(np.float32)
    for action in actions[:5]:
        first.step(action)
    second.load_state_dict(first.state_dict())
    for action in actions[5:]:
        out_a, out_b = first.step(action), second.step(action)
        np.testing.assert_array_equal(out_a[0], out_b[0])
        np.testing.assert_array_equal(out_a[1], out_b[1])
    static = MovieLensRecVectorEnv(num_envs=3, dataset=small_dataset, **SMALL_ENV_KWARGS)
    with pytest.raises(ValueError, match="another user model"):
        static.load_state_dict(first.state_dict())
