"""Stable-Baselines3 agents run on MovieLensRec-v0 as it is, with no adapter code."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import TD3

from agents.sb3.config import SB3Config
from agents.sb3.train import load_model, make_model, train_model
from tests.helpers import SMALL_ENV_KWARGS


def test_td3_trains_and_predicts_on_the_env(small_dataset):
    env = gym.make("MovieLensRec-v0", dataset=small_dataset, **SMALL_ENV_KWARGS)
    model = TD3("MlpPolicy", env, learning_starts=50, train_freq=10, seed=0, device="cpu")
    model.learn(total_timesteps=200)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)
    _, reward, *_ = env.step(action)
    assert np.isfinite(reward)


def test_sb3_factories_save_and_load_in_sb3_format(small_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path / "sb3-logs"))  # where SB3's default would log
    env_kwargs = {"dataset": small_dataset, **SMALL_ENV_KWARGS}
    for algorithm in ("ddpg", "td3", "sac"):
        config = SB3Config(learning_starts=20, batch_size=16, net_arch=(32,))
        path = tmp_path / f"{algorithm}.zip"
        model, curve = train_model(algorithm, env_kwargs, 0, 60, config, save_to=path)
        assert [steps for steps, _ in curve] == [10, 20, 30, 40, 50, 60]
        loaded = load_model(algorithm, path)
        assert type(loaded) is type(model)
        obs = gym.make("MovieLensRec-v0", **env_kwargs).reset(seed=1)[0]
        np.testing.assert_array_equal(
            loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
        )
    assert not (tmp_path / "sb3-logs").exists()  # training left no log folder behind


def test_unknown_sb3_algorithm_lists_the_valid_ones(small_dataset):
    env = gym.make("MovieLensRec-v0", dataset=small_dataset, **SMALL_ENV_KWARGS)
    with pytest.raises(ValueError, match="unknown SB3 algorithm 'ppo'; valid: ddpg, td3, sac"):
        make_model("ppo", env, 0)
