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


def _user_unit(obs: np.ndarray, dim: int) -> np.ndarray:
    user = obs[..., :dim]
    return user / np.linalg.norm(user, axis=-1, keepdims=True)


@pytest.mark.parametrize("algorithm", ["ddpg", "td3"])
def test_the_untrained_user_residual_actor_acts_as_mf_and_reloads_exactly(
    algorithm, small_dataset, tmp_path
):
    env_kwargs = {"dataset": small_dataset, **SMALL_ENV_KWARGS}
    env = gym.make("MovieLensRec-v0", **env_kwargs)
    dim = env.action_space.shape[0]
    obs = np.stack([env.reset(seed=seed)[0] for seed in range(5)])
    config = SB3Config(
        learning_starts=20, batch_size=16, net_arch=(32,), action_head="user-residual",
        residual_scale=0.5, action_noise=0.05,
    )  # fmt: skip
    untrained = make_model(algorithm, env, 0, config)
    actions = untrained.predict(obs, deterministic=True)[0]
    np.testing.assert_allclose(actions, _user_unit(obs, dim), rtol=1e-5, atol=1e-6)
    path = tmp_path / f"{algorithm}.zip"
    model, _ = train_model(algorithm, env_kwargs, 0, 120, config, save_to=path)
    trained = model.predict(obs, deterministic=True)[0]
    assert not np.allclose(trained, _user_unit(obs, dim), atol=1e-6)  # the correction learned
    np.testing.assert_allclose(np.linalg.norm(trained, axis=1), 1.0, rtol=1e-5)
    rebuilt = make_model(algorithm, env, 0, config)  # as a run folder's loader does
    rebuilt.set_parameters(str(path), exact_match=True, device="cpu")
    np.testing.assert_array_equal(rebuilt.predict(obs, deterministic=True)[0], trained)


def test_the_residual_fields_are_checked_and_left_out_of_tanh_configs(small_dataset):
    assert "action_head" not in SB3Config().to_dict()  # the keys stored before the head existed
    assert SB3Config.from_dict(SB3Config().to_dict()) == SB3Config()
    residual = SB3Config(action_head="user-residual", residual_scale=0.1)
    assert residual.to_dict()["residual_scale"] == 0.1
    assert SB3Config.from_dict(residual.to_dict()) == residual
    with pytest.raises(ConfigError, match=r"action_head='relu' is not valid; allowed: tanh, user"):
        SB3Config(action_head="relu")
    with pytest.raises(ConfigError, match=r"residual_scale=0.1 is for action_head='user-resid"):
        SB3Config(residual_scale=0.1)
    with pytest.raises(ConfigError, match=r"residual_scale must be a number in \(0, 10\]"):
        SB3Config(action_head="user-residual", residual_scale=0.0)
    env = gym.make("MovieLensRec-v0", dataset=small_dataset, **SMALL_ENV_KWARGS)
    with pytest.raises(ConfigError, match=r"action_head='user-residual' is for ddpg and td3"):
        make_model("sac", env, 0, SACConfig(action_head="user-residual"))
