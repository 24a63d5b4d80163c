"""The lookahead: a learned model of the next observation, and candidates valued two steps
deep on it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.drr.agent import DRRAgent
from agents.drr.catalogue import ItemCatalogue
from agents.drr.config import DRRConfig
from agents.drr.lookahead import Lookahead
from agents.drr.model import ObservationModel
from agents.drr.refine import ItemRefiner
from agents.fields import ConfigError
from movielens_env.errors import ArgumentError
from tests.helpers import SMALL_DRR

ENV = {"dataset": "synthetic", "embedding_dim": 8, "history_len": 5,
       "mf_options": {"iterations": 2}, "user_model": "boredom+drift"}  # fmt: skip
LOOKAHEAD = {"refine_k": 4, "critic_heads": "reward+future", "lookahead": 0.9}


def _transitions(env, steps: int, seed: int):
    """``steps`` transitions of random actions: observations, items, rewards, next ones."""
    rng = np.random.default_rng(seed)
    rows: list[list] = [[], [], [], []]
    obs, _ = env.reset(seed=seed)
    for _ in range(steps):
        action = rng.normal(size=env.action_space.shape).astype(np.float32)
        next_obs, reward, terminated, truncated, info = env.step(action)
        item = env.unwrapped.world.dataset.item_index(info["item_ids"][0])
        for column, value in zip(rows, (obs, item, reward, next_obs), strict=True):
            column.append(value)
        obs = env.reset()[0] if terminated or truncated else next_obs
    return [np.asarray(column) for column in rows]


def test_the_model_fit_to_an_envs_transitions_predicts_its_next_observations():
    env = gym.make("MovieLensRec-v0", **ENV)
    inner = env.unwrapped
    items = torch.as_tensor(np.array(inner.vectors.items), dtype=torch.float32)
    genres = torch.as_tensor(np.array(inner.user_model.weights), dtype=torch.float32)
    dim, history_len = items.shape[1], ENV["history_len"]
    obs, picks, rewards, next_obs = _transitions(env, 1200, seed=0)
    model = ObservationModel(items, genres, history_len, obs.shape[1] - (history_len + 1) * dim)
    with pytest.raises(RuntimeError, match="fit the model first"):
        model.predict(torch.as_tensor(obs[:1]), torch.as_tensor(picks[:1]), torch.zeros(1))
    model.fit(obs[:800], picks[:800], rewards[:800], next_obs[:800])
    predicted = model.predict(
        torch.as_tensor(obs[800:]), torch.as_tensor(picks[800:]),
        torch.as_tensor(rewards[800:], dtype=torch.float32),
    ).numpy()  # fmt: skip
    error = np.abs(predicted - next_obs[800:])
    end = (history_len + 1) * dim
    assert error[:, :dim].max() < 1e-4  # drift: linear in the tastes and the item's vector
    assert error[:, end:].max() < 1e-3  # satiation: linear in itself and the item's genres
    assert error[:, dim:end].max() == 0.0  # the history took exactly the liked items
    entered = (next_obs[:, end - dim : end] == np.asarray(items)[picks]).all(axis=1)
    assert 0 < entered.mean() < 1
    assert 0.4 < model.threshold <= 0.5  # liked: rated >= 4, a reward >= (4 - 3) / 2
    # The reward: (rating - 3) / 2, the rating MF's score less the satiation penalty.
    score, penalty, _ = model.reward_weights.tolist()
    assert 0.3 < score < 0.6 and penalty < -0.2, model.reward_weights
    predicted_rewards = model.reward(torch.as_tensor(obs[800:]), torch.as_tensor(picks[800:]))
    correlation = np.corrcoef(predicted_rewards.numpy(), rewards[800:])[0, 1]
    assert correlation > 0.8, correlation
    every = model.catalogue_rewards(torch.as_tensor(obs[800:]))
    assert every.shape == (400, len(items))
    torch.testing.assert_close(every[torch.arange(400), picks[800:]], predicted_rewards)


def _user_times(tastes, obs, items, repeats):
    return (obs[:, :3].repeat_interleave(repeats, 0) * tastes[items]).sum(dim=1)


class _Critic:
    """A split critic (discount 0.5) whose reward head is the observed user vector times the
    recommended item's row of ``tastes`` and whose future head is the item's ``future``."""

    split_gamma = 0.5

    def __init__(self, tastes: torch.Tensor, future: torch.Tensor) -> None:
        self.tastes, self.future = tastes, future

    def heads(self, obs, actions, items, repeats=1):
        return _user_times(self.tastes, obs, items, repeats), self.future[items]

    def __call__(self, obs, actions, items, repeats=1):
        reward, future = self.heads(obs, actions, items, repeats)
        return reward + self.split_gamma * future


class _Model:
    """A model under which the reward is the user vector times the item's row of ``tastes``
    and the user vector then becomes that row."""

    def __init__(self, tastes: torch.Tensor) -> None:
        self.tastes = tastes

    def reward(self, obs, picks, repeats=1):
        return _user_times(self.tastes, obs, picks, repeats)

    def catalogue_rewards(self, obs):
        return obs[:, :3] @ self.tastes.T

    def predict(self, obs, picks, rewards):
        return torch.cat([self.tastes[picks], obs[:, 3:]], dim=1)


def test_the_lookahead_plays_the_item_that_opens_a_better_next_step():
    # Items A, B, D (each its own vector's recommendation) and H, in the history. The user
    # [1, 0, 0] is rewarded 1 by A, 0.8 by B, 0 by D; the critic's future head is 0.4 for D,
    # 0 for the others, discounted by 0.5. The critic plays A, after which the best is B
    # (0.8): 1.8 in two steps. B turns the user to [0.8, 0.6, 0], under which D is worth
    # 1.2 + 0.5 * 0.4: 0.8 + 1.4 = 2.2.
    items = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [-1.0, -1.0, -1.0]])
    tastes = torch.tensor([[1.0, 0, 0], [0.8, 0.6, 0], [0, 2.0, 0], [0, 0, 0]])
    refiner = ItemRefiner(ItemCatalogue(items.numpy(), history_len=1), k=3, tell_items=True)
    critic = _Critic(tastes, torch.tensor([0.0, 0.0, 0.4, 0.0]))
    obs = torch.tensor([[1.0, 0, 0, -1.0, -1.0, -1.0]])
    proto = torch.ones((1, 3))
    lookahead = Lookahead(refiner, _Model(tastes), discount=1.0)  # type: ignore[arg-type]
    actor = lambda observations: torch.ones((len(observations), 3))  # noqa: E731

    def values() -> dict[int, float]:
        scored = lookahead.values(obs, proto, actor, critic)  # type: ignore[arg-type]
        assert scored.items is not None and sorted(scored.items[0].tolist()) == [0, 1, 2]
        return dict(zip(scored.items[0].tolist(), scored.values[0].tolist(), strict=True))

    assert values() == pytest.approx({0: 1.8, 1: 2.2, 2: 0.0 + 1.2})
    torch.testing.assert_close(refiner.choose(obs, proto, critic), items[[0]])
    chosen = lookahead.choose(obs, proto, actor, critic)  # type: ignore[arg-type]
    torch.testing.assert_close(chosen, items[[1]])
    # At a discount of 0.25 the next step weighs too little: 1 + 0.2 for A, 0.8 + 0.35 for B.
    lookahead.discount = 0.25
    assert values() == pytest.approx({0: 1.2, 1: 1.15, 2: 0.3})
    chosen = lookahead.choose(obs, proto, actor, critic)  # type: ignore[arg-type]
    torch.testing.assert_close(chosen, items[[0]])
    lookahead.discount = 1.0
    # Once A and B are shown (recommended earlier), D is the only candidate left.
    shown = torch.tensor([[True, True, False, False]])
    chosen = lookahead.choose(obs, proto, actor, critic, shown)  # type: ignore[arg-type]
    torch.testing.assert_close(chosen, items[[2]])


def test_model_candidates_come_first_and_the_actor_proposes_the_rest():
    # Six items, the first in the history. The actor's proto ranks them 5, 4, 3, ...; the
    # proposals (a model's rewards) rank them 1, 2, 0, 3, ... .
    items = torch.eye(6)
    refiner = ItemRefiner(ItemCatalogue(items.numpy(), history_len=1), k=3)
    obs = torch.cat([torch.zeros(1, 6), items[[0]]], dim=1)
    proto = torch.arange(6.0)[None]
    proposals = torch.tensor([[5.0, 9.0, 8.0, 1.0, 0.0, 0.0]])
    top, scores, mask = refiner.candidates(obs, proto, proposals=proposals, proposed=2)
    assert top.tolist() == [[1, 2, 5]] and scores.tolist() == [[9.0, 8.0, 5.0]]
    assert mask.tolist() == [[True, False, False, False, False, False]]
    # Each item proposed once: where the model proposes the actor's best two, the actor's
    # third comes after them.
    overlapping = torch.tensor([[0.0, 0.0, 0.0, 1.0, 3.0, 2.0]])
    top, _, _ = refiner.candidates(obs, proto, proposals=overlapping, proposed=2)
    assert top.tolist() == [[4, 5, 3]]
    # The shown items are no one's candidates; with fewer than k left the rest is -inf.
    shown = torch.tensor([[False, True, True, True, False, False]])
    top, scores, _ = refiner.candidates(obs, proto, shown, proposals, proposed=2)
    assert top[0, :2].tolist() == [4, 5] or top[0, :2].tolist() == [5, 4]
    assert scores[0, 2] == -torch.inf
    # Without proposals, or none proposed: the actor's top k.
    for kwargs in ({}, {"proposals": proposals, "proposed": 0}):
        assert refiner.candidates(obs, proto, **kwargs)[0].tolist() == [[5, 4, 3]]


def test_the_lookahead_values_the_models_candidates_the_actor_misses():
    # The hand-built case above with k = 2: the actor's proto ranks D, B, A, so without
    # proposals A is no candidate; the model's best now, A, comes in with one proposed item.
    items = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [-1.0, -1.0, -1.0]])
    tastes = torch.tensor([[1.0, 0, 0], [0.8, 0.6, 0], [0, 2.0, 0], [0, 0, 0]])
    refiner = ItemRefiner(ItemCatalogue(items.numpy(), history_len=1), k=2, tell_items=True)
    critic = _Critic(tastes, torch.zeros(4))
    obs = torch.tensor([[1.0, 0, 0, -1.0, -1.0, -1.0]])
    proto = torch.tensor([[0.0, 0.1, 1.0]])
    actor = lambda observations: proto.expand(len(observations), -1)  # noqa: E731
    for proposed, candidates in ((0, [2, 1]), (1, [0, 2])):
        lookahead = Lookahead(refiner, _Model(tastes), 1.0, proposed)  # type: ignore[arg-type]
        scored = lookahead.values(obs, proto, actor, critic)  # type: ignore[arg-type]
        assert scored.items is not None and scored.items[0].tolist() == candidates


@pytest.mark.parametrize("model_candidates", [0, 2])
def test_the_agent_fits_its_model_as_it_learns_and_a_checkpoint_keeps_it(model_candidates):
    env = gym.make("MovieLensRec-v0", **ENV)
    inner = env.unwrapped
    dim, obs_dim = env.action_space.shape[0], env.observation_space.shape[0]
    config = DRRConfig(**SMALL_DRR, **LOOKAHEAD, model_candidates=model_candidates)
    agent = DRRAgent(config, dim, 5, 0, obs_dim, inner.vectors.items, inner.user_model.weights)
    assert agent.lookahead is not None and not agent.lookahead.model.fitted
    obs, picks, rewards, next_obs = _transitions(env, 300, seed=1)
    actions = agent.refiner.catalogue.playable[picks].numpy()  # type: ignore[union-attr]
    agent.replay.add(obs, actions, rewards, next_obs, np.zeros(300, dtype=np.float32))
    agent.update(beta=1.0)
    assert agent.lookahead.model.fits == 1
    played = agent.act(obs[:6], explore=False)
    assert played.shape == (6, dim) and np.isfinite(played).all()
    copy = DRRAgent(config, dim, 5, 0, obs_dim, inner.vectors.items, inner.user_model.weights)
    copy.load_state_dict(agent.state_dict())
    np.testing.assert_array_equal(copy.act(obs[:6], explore=False), played)


def test_lookahead_needs_refinement_the_split_critic_and_the_genres():
    with pytest.raises(ConfigError, match="it needs refine_k > 0 and critic_heads"):
        DRRConfig(refine_k=4, lookahead=0.5)
    with pytest.raises(ConfigError, match="refine_k 0"):
        DRRConfig(critic_heads="reward+future", lookahead=0.5)
    for wrong in (1.5, -0.1, True):
        with pytest.raises(ConfigError, match="lookahead"):
            DRRConfig(**LOOKAHEAD | {"lookahead": wrong})
    assert "lookahead" not in DRRConfig().to_dict()
    config = DRRConfig(**SMALL_DRR, **LOOKAHEAD)
    assert DRRConfig.from_dict(config.to_dict()) == config
    assert "model_candidates" not in config.to_dict()
    with pytest.raises(ConfigError, match="needs lookahead > 0 and at most refine_k"):
        DRRConfig(refine_k=4, critic_heads="reward+future", model_candidates=2)
    with pytest.raises(ConfigError, match=r"lookahead 0.9, refine_k 4\)"):
        DRRConfig(**LOOKAHEAD | {"model_candidates": 5})
    proposing = DRRConfig(**SMALL_DRR, **LOOKAHEAD | {"model_candidates": 4})
    assert DRRConfig.from_dict(proposing.to_dict()) == proposing
    items = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    with pytest.raises(ArgumentError, match="lookahead predicts the satiation"):
        DRRAgent(config, 8, 5, seed=0, items=items)
