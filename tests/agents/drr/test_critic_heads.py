"""The critic split into the step's reward and the next state's value
(``DRRConfig.critic_heads="reward+future"``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.drr.agent import DRRAgent
from agents.drr.config import DRRConfig
from agents.drr.networks import split_observation, unit
from tests.helpers import SMALL_DRR, drr_observations


def test_a_split_critic_fits_the_reward_to_rewards_and_the_future_to_the_next_value():
    rng = np.random.default_rng(0)
    dim, history, n = 4, 2, 64
    config = DRRConfig(**SMALL_DRR, critic_heads="reward+future", gamma=0.8)
    assert DRRConfig.from_dict(config.to_dict()) == config
    assert "critic_heads" not in DRRConfig().to_dict()
    with pytest.raises(ValueError, match="critic_heads='v' is not valid"):
        DRRConfig(critic_heads="v")
    agent = DRRAgent(config, dim, history, seed=0)
    items = rng.normal(size=(20, dim)).astype(np.float32)
    obs = drr_observations(rng, items, n, history)
    next_obs = drr_observations(rng, items, n, history)
    actions = unit(torch.as_tensor(rng.normal(size=(n, dim)), dtype=torch.float32)).numpy()
    rewards = actions[:, 0] - 0.5 * actions[:, 1]  # a function of the action alone
    dones = (np.arange(n) % 2).astype(np.float32)
    agent.replay.add(obs, actions, rewards, next_obs, dones)
    batch = agent.replay.sample(16, 0.4, np.random.default_rng(1))
    weights = torch.as_tensor(batch.weights)
    loss, td_error, q = agent._critic_loss(batch, weights)
    reward, future = agent.critic.heads(
        torch.as_tensor(batch.observations), torch.as_tensor(batch.actions)
    )
    assert future is not None
    with torch.no_grad():
        next_actions = agent.actor_target(torch.as_tensor(batch.next_observations))
        next_value = (1 - torch.as_tensor(batch.dones)) * agent.critic_target(
            torch.as_tensor(batch.next_observations), next_actions
        )
    r = torch.as_tensor(batch.rewards)
    expected = (weights * ((r - reward) ** 2 + (next_value - future) ** 2)).mean()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(q, (reward + 0.8 * future).detach())
    torch.testing.assert_close(td_error, (r + 0.8 * next_value - q).detach())
    torch.testing.assert_close(agent.critic(torch.as_tensor(batch.observations),
                                            torch.as_tensor(batch.actions)), q)  # fmt: skip
    before = float(((r - reward) ** 2).mean().detach())
    for _ in range(300):
        agent.update(beta=0.4)
    all_obs, all_actions = torch.as_tensor(obs), torch.as_tensor(actions)
    reward, _ = agent.critic.heads(all_obs, all_actions)
    after = float(((torch.as_tensor(rewards) - reward) ** 2).mean().detach())
    assert after < 0.2 * before  # the reward head learned the rewards themselves


def test_a_wide_critic_adds_a_linear_function_of_its_input_to_the_first_head():
    rng = np.random.default_rng(0)
    dim, history, n = 4, 2, 32
    config = DRRConfig(**SMALL_DRR, critic_heads="reward+future", critic_wide=True)
    assert DRRConfig.from_dict(config.to_dict()) == config
    assert "critic_wide" not in DRRConfig().to_dict()
    with pytest.raises(ValueError, match="critic_wide must be true or false, got 1"):
        DRRConfig(critic_wide=1)
    agent = DRRAgent(config, dim, history, seed=0)
    critic = agent.critic
    assert (
        critic.wide is not None
        and DRRAgent(DRRConfig(**SMALL_DRR), dim, history, 0).critic.wide is None
    )
    items = rng.normal(size=(20, dim)).astype(np.float32)
    obs = torch.as_tensor(drr_observations(rng, items, n, history))
    actions = unit(torch.as_tensor(rng.normal(size=(n, dim)), dtype=torch.float32))
    reward, future = critic.heads(obs, actions)
    wide = critic.wide
    critic.wide = None
    deep, same_future = critic.heads(obs, actions)
    critic.wide = wide
    user, hist, context = split_observation(obs, dim, history)
    inputs = torch.cat([critic.state(user, hist), context, actions], dim=1)
    torch.testing.assert_close(reward, deep + wide(inputs).squeeze(1))
    torch.testing.assert_close(future, same_future)
    assert any(key.startswith("critic.wide.") for key in _flat_keys(agent.state_dict()))


def _flat_keys(state: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in state.items():
        if isinstance(value, dict):
            keys += _flat_keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys
