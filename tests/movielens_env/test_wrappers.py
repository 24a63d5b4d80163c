"""Gymnasium's own wrappers on the env: flattening the dict observation, recording videos of
the rendered episodes, and the text rendering."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from tests.helpers import SMALL_ENV_KWARGS


def test_flattening_the_dict_observation_keeps_ids_as_values(small_dataset):
    kwargs = {**SMALL_ENV_KWARGS, "history_len": 5, "user_model": "boredom"}
    flat_env = gym.make("MovieLensRec-v0", dataset=small_dataset, **kwargs)
    env = gym.wrappers.FlattenObservation(
        gym.make("MovieLensRec-v0", dataset=small_dataset, obs_mode="dict", **kwargs)
    )
    flat, _ = flat_env.reset(seed=4)
    obs, _ = env.reset(seed=4)
    # The flat layout plus the user's id and the history's ids: not one-hot vectors as long as
    # the users and the catalogue (which made 18,843 values on ML-100K).
    assert obs.shape == (len(flat) + 1 + 5,) and env.observation_space.contains(obs)
    dict_obs = env.unwrapped._observation()
    ids = np.concatenate([dict_obs["user_id"], dict_obs["history_ids"]])
    np.testing.assert_array_equal(np.sort(obs), np.sort(np.concatenate([flat, ids])))
    obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)


def test_rgb_array_pictures_the_episode_and_record_video_writes_it(small_dataset, tmp_path):
    pytest.importorskip("moviepy", reason="RecordVideo encodes with moviepy (the dev extra)")
    env = gym.make("MovieLensRec-v0", dataset=small_dataset, render_mode="rgb_array",
                   max_episode_steps=3, user_model="boredom", **SMALL_ENV_KWARGS)  # fmt: skip
    env = gym.wrappers.RecordVideo(env, str(tmp_path / "videos"), episode_trigger=lambda e: True,
                                   disable_logger=True)  # fmt: skip
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (500, 800, 3) and first.dtype == np.uint8
    env.step(env.action_space.sample())
    second = env.render()
    assert first.shape == second.shape and (first != second).any()  # a rated step was drawn
    for _ in range(2):
        env.step(env.action_space.sample())
    env.close()
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000


def test_human_rendering_prints_at_reset_and_step(small_dataset, capsys):
    env = gym.make("MovieLensRec-v0", dataset=small_dataset, render_mode="human",
                   **SMALL_ENV_KWARGS)  # fmt: skip
    env.reset(seed=0)
    assert capsys.readouterr().out.startswith("User ")
    env.step(env.action_space.sample())
    printed = capsys.readouterr().out
    assert "Recommended:" in printed and "rating" in printed
    assert env.render() is None
