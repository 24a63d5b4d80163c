"""n-step transitions (``DRRConfig.n_step``): what the windows fold, and the target they give."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.drr.agent import DRRAgent
from agents.drr.config import DRRConfig
from agents.drr.nstep import NStepWindows
from agents.drr.train import train_drr
from tests.helpers import SMALL_DRR, drr_observations


def _expected(episode_rewards, n, gamma):
    """(first step, reward, later, steps, last step) of every n-step transition of an episode
    (by hand: each step's window runs to n steps or to the episode's end)."""
    found = []
    for t in range(len(episode_rewards)):
        m = min(n, len(episode_rewards) - t)
        later = sum(gamma ** (k - 1) * episode_rewards[t + k] for k in range(1, m))
        found.append((t, episode_rewards[t], later, m, t + m))
    return found


def test_windows_fold_each_step_into_a_transition_of_up_to_n_steps():
    gamma, n = 0.5, 3
    windows = NStepWindows(n, gamma, num_envs=2, obs_dim=1, action_dim=1)
    # Row 0: one 5-step episode ending in termination; row 1: episodes of 2 then 3 steps.
    ends = {0: {4}, 1: {1, 4}}
    rewards = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [10.0, 20.0, 30.0, 40.0, 50.0]])
    got: dict[int, list] = {0: [], 1: []}
    for t in range(5):
        obs = np.array([[t], [t]], dtype=np.float32)  # a state is its step's number
        ended = np.array([row for row in (0, 1) if t in ends[row]], dtype=np.int64)
        terminated = np.array([t == 4, False])
        out = windows.push(obs, obs, rewards[:, t], obs + 1, terminated, ended)
        for i in range(len(out.rewards)):
            row = 0 if out.rewards[i] < 10 else 1
            got[row].append((int(out.observations[i, 0]), float(out.rewards[i]),
                             float(out.later[i]), int(out.steps[i]),
                             int(out.next_observations[i, 0]), float(out.dones[i])))  # fmt: skip
    assert sorted(r[:5] for r in got[0]) == _expected(list(rewards[0]), n, gamma)
    assert [done for *_, done in sorted(got[0])] == [0.0, 0.0, 1.0, 1.0, 1.0]  # ends at 5
    second = [(t - 2, r, later, m, last - 2) for t, r, later, m, last, _ in got[1] if t >= 2]
    assert sorted(r[:5] for r in got[1] if r[0] < 2) == _expected([10.0, 20.0], n, gamma)
    assert sorted(second) == _expected([30.0, 40.0, 50.0], n, gamma)
    assert all(done == 0.0 for *_, done in got[1])  # truncated, not terminated
    assert windows.count.tolist() == [0, 0]  # nothing pending after both episodes ended


def test_an_n_step_batch_bootstraps_after_its_steps():
    rng = np.random.default_rng(0)
    dim, history, n = 4, 2, 32
    config = DRRConfig(**SMALL_DRR, n_step=3, gamma=0.8, critic_heads="reward+future")
    assert DRRConfig.from_dict(config.to_dict()) == config
    assert "n_step" not in DRRConfig().to_dict()
    with pytest.raises(ValueError, match="n_step"):
        DRRConfig(n_step=0)
    agent = DRRAgent(config, dim, history, seed=0)
    items = rng.normal(size=(20, dim)).astype(np.float32)
    obs = drr_observations(rng, items, n, history)
    next_obs = drr_observations(rng, items, n, history)
    actions = rng.normal(size=(n, dim)).astype(np.float32)
    rewards = rng.normal(size=n).astype(np.float32)
    dones = (np.arange(n) % 4 == 0).astype(np.float32)
    later = rng.normal(size=n).astype(np.float32)
    steps = 1 + np.arange(n) % 3
    with pytest.raises(ValueError, match="give later and steps exactly when it keeps them"):
        agent.replay.add(obs, actions, rewards, next_obs, dones)
    agent.replay.add(obs, actions, rewards, next_obs, dones, later=later, steps=steps)
    batch = agent.replay.sample(16, 0.4, np.random.default_rng(1))
    weights = torch.as_tensor(batch.weights)
    loss, td_error, q = agent._critic_loss(batch, weights)
    reward, future = agent.critic.heads(
        torch.as_tensor(batch.observations), torch.as_tensor(batch.actions)
    )
    with torch.no_grad():
        next_o = torch.as_tensor(batch.next_observations)
        value = agent.critic_target(next_o, agent.actor_target(next_o))
    i = batch.indices
    follows = (later[i] + 0.8 ** (steps[i] - 1) * (1 - dones[i]) * value.numpy()).astype(np.float32)
    r = torch.as_tensor(rewards[i])
    expected = (weights * ((r - reward) ** 2 + (torch.as_tensor(follows) - future) ** 2)).mean()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(td_error, (r + 0.8 * torch.as_tensor(follows) - q).detach())


def test_n_step_training_runs_and_stores_spanning_transitions():
    env = {"dataset": "synthetic", "embedding_dim": 8, "history_len": 5,
           "mf_options": {"iterations": 2}}  # fmt: skip
    config = DRRConfig(**SMALL_DRR, n_step=3, num_envs=3, eval_every=1000)
    result = train_drr(env, config, 6, seed=0)
    replay = result.agent.replay
    assert replay.multi_step and set(replay.steps[: replay.size].tolist()) == {1, 2, 3}
    # Every step of the episodes (which all end together) is one transition, none left out.
    assert replay.size == sum(result.episode_lengths) == 60
