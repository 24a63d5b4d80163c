"""Stable-Baselines3 agents run on MovieLensRec-v0 as it is, with no adapter code."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import TD3

from agents.fields import ConfigError
from agents.sb3.config import SACConfig, SB3Config
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


def test_sac_takes_its_entropy_weight_from_its_config(small_dataset):
    env = gym.make("MovieLensRec-v0", dataset=small_dataset, **SMALL_ENV_KWARGS)
    fixed = make_model("sac", env, 0, SACConfig(ent_coef=0.01))
    assert fixed.log_ent_coef is None and float(fixed.ent_coef_tensor) == pytest.approx(0.01)
    learned = make_model("sac", env, 0, SACConfig(target_entropy=-500.0))
    assert learned.log_ent_coef is not None and learned.target_entropy == -500.0
    default = make_model("sac", env, 0, SB3Config())  # SB3's own: learned, aiming at -dim
    assert default.target_entropy == -float(env.action_space.shape[0])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ent_coef": -0.1}, "SACConfig.ent_coef must be a number in [0, 10], got -0.1"),
        ({"ent_coef": float("nan")}, "SACConfig.ent_coef must be a number"),
        ({"target_entropy": "auto"}, "SACConfig.target_entropy must be a number"),
        ({"ent_coef": 0.1, "target_entropy": -5.0}, "target_entropy=-5.0 is for a learned"),
    ],
)
def test_sac_entropy_fields_out_of_range_are_refused_by_name(values, message):
    with pytest.raises(ConfigError) as caught:
        SACConfig(**values)
    assert message in str(caught.value)


def test_sac_entropy_fields_are_refused_for_ddpg_and_td3(small_dataset):
    env = gym.make("MovieLensRec-v0", dataset=small_dataset, **SMALL_ENV_KWARGS)
    with pytest.raises(ConfigError, match=r"SACConfig.ent_coef=0.1 is for sac; td3 has no"):
        make_model("td3", env, 0, SACConfig(ent_coef=0.1))
    make_model("td3", env, 0, SACConfig())  # nothing SAC-only set: nothing to ignore
    with pytest.raises(ValueError, match=r"unknown SB3Config keys \['ent_coef'\]"):
        SB3Config.from_dict({"ent_coef": 0.1})  # a td3 config file naming it
