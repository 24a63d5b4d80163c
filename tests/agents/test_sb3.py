"""Stable-Baselines3 agents run on MovieLensRec-v0 as it is, with no adapter code."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from stable_baselines3 import TD3

from tests.conftest import SMALL_ENV_KWARGS


def test_td3_trains_and_predicts_on_the_env(small_dataset):
    env = gym.make("MovieLensRec-v0", dataset=small_dataset, **SMALL_ENV_KWARGS)
    model = TD3("MlpPolicy", env, learning_starts=50, train_freq=10, seed=0, device="cpu")
    model.learn(total_timesteps=200)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)
    _, reward, *_ = env.step(action)
    assert np.isfinite(reward)
