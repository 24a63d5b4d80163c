"""Registration on import, the registered defaults, and gym.make without the import."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import gymnasium as gym
import pytest

import movielens_env


def test_registered_once_with_the_papers_defaults():
    importlib.reload(movielens_env)  # a second import must not re-register
    spec = gym.spec("MovieLensRec-v0")
    assert spec.entry_point == "movielens_env.envs.env:MovieLensRecEnv"
    assert spec.max_episode_steps == 10
    assert spec.kwargs["dataset"] == "ml-1m"
    assert sum(env_id == "MovieLensRec-v0" for env_id in gym.registry) == 1


def test_variants_are_registered_with_their_user_models_and_horizons():
    importlib.reload(movielens_env)
    horizons = {"boredom": 10, "boredom+drift": 20, "boredom+drift+patience": 50}
    for env_id, user_model in movielens_env.VARIANTS.items():
        spec = gym.spec(env_id)
        assert spec.kwargs == {"dataset": "ml-1m", "user_model": user_model}
        assert spec.max_episode_steps == horizons[user_model]
        assert spec.vector_entry_point == "movielens_env.envs.vector_env:MovieLensRecVectorEnv"
        assert sum(other == env_id for other in gym.registry) == 1
    assert gym.spec(movielens_env.LONG_HORIZON_ID).kwargs["user_model"] == "boredom+drift"
    assert movielens_env.variant_kwargs("drift+patience") == {
        "user_model": "drift+patience",
        "max_episode_steps": 50,
    }


def test_default_dataset_without_data_fails_with_the_three_ways_out(tmp_path):
    with pytest.raises(movielens_env.DataNotFoundError) as error:
        gym.make("MovieLensRec-v0", download=False, cache_dir=tmp_path)
    message = str(error.value)
    assert "ml-1m" in message and "data_dir=" in message
    assert str(tmp_path / "ml-1m") in message and "download" in message


def test_gym_make_with_module_prefix_works_without_importing(tmp_path):
    code = (
        "import sys, gymnasium as gym\n"
        "assert 'movielens_env' not in sys.modules\n"
        "env = gym.make('movielens_env:MovieLensRec-v0', dataset='synthetic', embedding_dim=4,\n"
        "               mf_options={'iterations': 2})\n"
        "obs, info = env.reset(seed=0)\n"
        "obs, reward, terminated, truncated, info = env.step(env.action_space.sample())\n"
        "print(obs.shape, type(reward).__name__, sorted(info))\n"
        "env = gym.make('movielens_env:MovieLensRec-BoredomDrift-v0', dataset='synthetic',\n"
        "               embedding_dim=4, mf_options={'iterations': 2})\n"
        "print('variant', env.spec.max_episode_steps, env.reset(seed=0)[0].shape)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={**os.environ, "MOVIELENS_DATA": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    keys = "['history_item_ids', 'hits', 'item_ids', 'logged', 'ratings', 'user_id']"
    assert f"(55,) float64 {keys}" in result.stdout
    assert "variant 20 (73,)" in result.stdout  # 11 vectors of 5, and 18 genres' satiation
