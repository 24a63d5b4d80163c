"""The RL libraries' own ways of making the env, where they used to need a workaround."""

from __future__ import annotations

import pytest

from tests.helpers import TINY_ENV_KWARGS


def test_torchrl_gymenv_over_gymnasiums_async_vector_env_steps_through_autoresets():
    torchrl_envs = pytest.importorskip(
        "torchrl.envs", reason="the 'clients' extra is not installed (pip install -e '.[clients]')"
    )
    # The workers are processes: the module-qualified id registers the env in them.
    env = torchrl_envs.GymEnv(
        "movielens_env:MovieLensRec-v0", num_envs=2, dataset="synthetic", max_episode_steps=3,
        **TINY_ENV_KWARGS,
    )  # fmt: skip
    try:
        rollout = env.rollout(8, break_when_any_done=False)
    finally:
        env.close()
    assert int(rollout["next", "done"].sum()) == 4  # two episodes each, autoreset in between
    for key in ("user_id", "history_item_ids", "item_ids", "ratings", "logged", "hits"):
        assert key in rollout["next"].keys()  # read at reset and at every step alike
