"""Stable-Baselines3 DDPG, TD3 and SAC on MovieLensRec-v0, through thin factories.

The factories fix explicit hyper-parameters and action noise; no SB3 algorithm is subclassed,
and the only policy that is, for ``SB3Config.action_head="user-residual"``, swaps the actor
alone (:mod:`.residual`). Trained models save and load with SB3's own ``.zip`` format.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise

from movielens_env.errors import ArgumentError
from movielens_env.storage import require_memory

from ..fields import ConfigError, check_training_cost
from ..run_folder import check_no_split
from ..threads import torch_threads
from .config import SB3Config, check_algorithm_config

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ddpg": DDPG, "td3": TD3, "sac": SAC}


def check_fits(config: SB3Config, obs_dim: int, dim: int) -> None:
    """Refuse networks too large or slow to train on observations of ``obs_dim`` floats
    (:func:`~agents.fields.check_training_cost`), and a replay buffer larger than the memory
    left, before it fills up and the process is killed deep into a run (SB3 reserves its float32
    arrays lazily: observations, next observations, actions, rewards, dones and timeouts)."""
    check_training_cost(
        "SB3Config", "net_arch or gradient_steps", config.batch_size, config.net_arch,
        obs_dim + dim, config.gradient_steps,
    )  # fmt: skip
    size = config.buffer_size
    needed = size * (2 * obs_dim + dim + 3) * 4
    require_memory(
        needed, f"SB3Config.buffer_size={size:,} (observations of {obs_dim} floats)",
        lambda available: int(size * available / needed), ConfigError,
    )  # fmt: skip


def check_env_fits(config: SB3Config, env_kwargs: dict[str, Any]) -> None:
    """:func:`check_fits` on the env ``env_kwargs`` make (the artefact's ``fits``)."""
    env = gym.make("MovieLensRec-v0", **env_kwargs)
    try:
        dims = gym.spaces.flatdim(env.observation_space), gym.spaces.flatdim(env.action_space)
    finally:
        env.close()
    check_fits(config, *dims)


def make_model(algorithm: str, env: gym.Env, seed: int, config: SB3Config | None = None):
    """An untrained SB3 model of ``algorithm`` (``ddpg``, ``td3`` or ``sac``) on ``env``."""
    if algorithm not in ALGORITHMS:
        raise ArgumentError(f"unknown SB3 algorithm {algorithm!r}; valid: {', '.join(ALGORITHMS)}")
    config = config or SB3Config()
    check_algorithm_config(algorithm, config)
    kwargs: dict[str, Any] = {
        "learning_rate": config.learning_rate,
        "buffer_size": config.buffer_size,
        "learning_starts": config.learning_starts,
        "batch_size": config.batch_size,
        "tau": config.tau,
        "gamma": config.gamma,
        "train_freq": config.train_freq,
        "gradient_steps": config.gradient_steps,
        "policy_kwargs": {"net_arch": list(config.net_arch)},
        "seed": seed,
        "device": "cpu",
        "verbose": 0,
    }
    if algorithm == "sac":
        ent_coef, target = (
            getattr(config, "ent_coef", None),
            getattr(config, "target_entropy", None),
        )
        kwargs["ent_coef"] = "auto" if ent_coef is None else ent_coef
        kwargs["target_entropy"] = "auto" if target is None else target
    else:
        dim = gym.spaces.flatdim(env.action_space)
        kwargs["action_noise"] = NormalActionNoise(
            np.zeros(dim), config.action_noise * np.ones(dim)
        )
    policy: Any = "MlpPolicy"
    if config.action_head == "user-residual":
        from .residual import UserResidualPolicy

        policy = UserResidualPolicy
        kwargs["policy_kwargs"]["residual_scale"] = config.residual_scale
    model = ALGORITHMS[algorithm](policy, env, **kwargs)
    # SB3's default logger makes an empty folder in /tmp on every learn(); this one writes nothing.
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def train_model(
    algorithm: str,
    env_kwargs: dict,
    seed: int,
    timesteps: int,
    config: SB3Config | None = None,
    save_to: Path | None = None,
    callback=None,
) -> tuple[BaseAlgorithm, list[tuple[int, float]]]:
    """Train on ``MovieLensRec-v0`` (train split); return the model and its learning curve.

    The curve holds (environment steps so far, episode return) for every training episode.
    """
    check_no_split(env_kwargs)
    env = Monitor(gym.make("MovieLensRec-v0", **env_kwargs))
    obs_dim = gym.spaces.flatdim(env.observation_space)
    check_fits(config or SB3Config(), obs_dim, gym.spaces.flatdim(env.action_space))
    env.reset(seed=seed)
    with torch_threads(1):
        model = make_model(algorithm, env, seed, config)
        model.learn(total_timesteps=timesteps, callback=callback)
    if model._n_updates == 0:  # SB3 counts its gradient steps there (no public attribute)
        starts = (config or SB3Config()).learning_starts
        warnings.warn(
            f"{algorithm} took no gradient step in {timesteps} timesteps (learning starts after "
            f"learning_starts={starts}): the policy is its random initialisation; give more "
            "timesteps or lower learning_starts (with train: --set learning_starts=N)",
            stacklevel=2,
        )
    steps = np.cumsum(env.get_episode_lengths())
    curve = [(int(t), float(r)) for t, r in zip(steps, env.get_episode_rewards(), strict=True)]
    if save_to is not None:
        model.save(save_to)
    return model, curve


def load_model(algorithm: str, path: str | Path) -> BaseAlgorithm:
    """Load a model saved by :func:`train_model` (SB3's own format)."""
    if algorithm not in ALGORITHMS:
        raise ArgumentError(f"unknown SB3 algorithm {algorithm!r}; valid: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[algorithm].load(path, device="cpu")
