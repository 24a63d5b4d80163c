"""Wolpertinger refinement: the critic chooses among the actor's top items, and the env plays
the chosen one."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.drr.agent import DRRAgent
from agents.drr.catalogue import ItemCatalogue
from agents.drr.config import DRRConfig
from agents.drr.networks import unit
from agents.drr.refine import ItemRefiner
from agents.drr.train import load_agent, train_drr
from agents.fields import ConfigError
from movielens_env.errors import ArgumentError
from tests.helpers import SMALL_DRR, drr_observations

ENV = {"dataset": "synthetic", "embedding_dim": 8, "history_len": 5,
       "mf_options": {"iterations": 2}, "user_model": "boredom"}  # fmt: skip


class _Prefers:
    """A critic that values an action by its inner product with one direction."""

    def __init__(self, direction: torch.Tensor) -> None:
        self.direction = direction

    def __call__(self, obs, actions: torch.Tensor, items=None, repeats=1) -> torch.Tensor:
        return actions @ self.direction


def _obs(items: np.ndarray, history: list[int], user: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.concatenate([user, *items[history], [0.5]]), dtype=torch.float32)


def test_the_critic_chooses_among_the_proto_actions_top_items_outside_the_history():
    rng = np.random.default_rng(0)
    items = rng.normal(size=(30, 4)).astype(np.float32)
    items[7] = 0.0  # an item with no direction
    refiner = ItemRefiner(ItemCatalogue(items, history_len=2), k=5)
    proto = torch.as_tensor(rng.normal(size=(1, 4)), dtype=torch.float32)
    ranked = list(np.argsort(-(items @ proto.numpy()[0])))
    history = ranked[:2]
    top = ranked[2:7]  # the proto-action's five best outside the history
    obs = _obs(items, history, rng.normal(size=4))[None]
    for wanted in top:
        critic = _Prefers(torch.as_tensor(unit(torch.as_tensor(items[wanted]))))
        played = refiner.choose(obs, proto, critic)
        torch.testing.assert_close(played[0], unit(torch.as_tensor(items[wanted])))
    # The critic's favourite among all items is in the history, then outside the top five:
    # neither can be chosen.
    for banned in (history[0], ranked[10]):
        critic = _Prefers(torch.as_tensor(items[banned]) * 100)
        chosen = refiner.choose(obs, proto, critic)[0]
        assert not torch.allclose(chosen, unit(torch.as_tensor(items[banned])))


def test_an_item_without_a_direction_keeps_the_proto_action():
    items = np.zeros((3, 2), dtype=np.float32)
    items[1] = [1.0, 0.0]
    refiner = ItemRefiner(ItemCatalogue(items, history_len=1), k=3)
    obs = _obs(items, [1], np.ones(2))[None]  # item 1 is in the history
    proto = torch.tensor([[0.0, 1.0]])
    played = refiner.choose(obs, proto, _Prefers(torch.tensor([1.0, 1.0])))
    torch.testing.assert_close(played, proto)


def test_refine_k_needs_the_item_vectors_and_keeps_old_keys():
    with pytest.raises(ArgumentError, match="refine_k=4 chooses among the env's item vectors"):
        DRRAgent(DRRConfig(**SMALL_DRR, refine_k=4), 8, 5, seed=0)
    assert not {"refine_k", "refine_target"} & set(DRRConfig().to_dict())
    for config in (DRRConfig(refine_k=20), DRRConfig(refine_k=20, refine_target="double")):
        assert DRRConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="refine_k"):
        DRRConfig(refine_k=-1)
    with pytest.raises(ValueError, match="refine_target='online' is not valid; allowed: target"):
        DRRConfig(refine_target="online")


def test_a_refined_agent_plays_catalogue_items_and_reloads_to_the_same_choices(tmp_path):
    config = DRRConfig(**SMALL_DRR, eval_every=1000, refine_k=6)
    result = train_drr(ENV, config, 10, seed=0, run_dir=tmp_path)
    assert len(result.episode_returns) == 10
    env = gym.make("MovieLensRec-v0", **ENV)
    playable = unit(torch.as_tensor(env.unwrapped.vectors.items)).numpy()
    stored = result.agent.replay.state_dict()["actions"][: len(result.agent.replay)]
    distances = np.abs(stored[:, None, :] - playable[None]).max(axis=2).min(axis=1)
    assert distances.max() < 1e-6  # every explored action is an item's own (unit) vector
    agent, _ = load_agent(tmp_path)
    assert agent.config.refine_k == 6
    obs, _ = env.reset(seed=1)
    for _ in range(4):
        action = agent.predict(obs)[0]
        np.testing.assert_array_equal(action, result.agent.predict(obs)[0])
        assert np.abs(playable - action).max(axis=1).min() < 1e-6
        obs, *_ = env.step(action)


def test_a_critic_reading_the_user_product_sees_the_actions_mf_score():
    from agents.drr.networks import Critic

    dim, history = 4, 2
    critic = Critic("drr-ave", dim, history, 8, 0, user_product=True)
    first = critic.body[0]
    assert isinstance(first, torch.nn.Linear)
    assert first.in_features == critic.state.out_dim + 2 * dim
    obs = torch.randn(3, (history + 1) * dim)
    action = torch.randn(3, dim)
    # With only the last dim inputs weighted, scaling the user vector changes Q: they are
    # u * a (without the product they would be the action itself, which the scaling leaves).
    with torch.no_grad():
        first.weight.zero_()
        first.weight[:, -dim:] = 1.0
        scaled = obs.clone()
        scaled[:, :dim] *= 2.0
        assert not torch.allclose(critic(obs, action), critic(scaled, action))
    assert "critic_input" not in DRRConfig().to_dict()
    config = DRRConfig(critic_input="action+user-product")
    assert DRRConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="critic_input"):
        DRRConfig(critic_input="item")


def test_the_built_in_drr_agents_keep_the_keys_their_stored_results_have():
    """Their registered config keys every stored result: a field added at its default must
    not enter it (it did once, and every DRR record became another configuration's)."""
    from agents.builtin_agents import register_builtin_agents
    from agents.registry import AGENTS

    register_builtin_agents()
    for state in ("drr-ave", "drr-n", "drr-u", "drr-p"):
        config = AGENTS[state].config
        added = {
            "refine_k",
            "refine_explore",
            "refine_target",
            "refine_exclude",
            "critic_input",
            "critic_heads",
        }
        assert not added & set(config)
        assert DRRConfig.from_dict(config) == DRRConfig(state=state)


def _bootstrap_calls(agent: DRRAgent) -> list:
    """The ``(critic, skip)`` of each call of the agent's refiner, as it is made."""
    assert agent.refiner is not None
    original, calls = agent.refiner.choose, []

    def choose(observations, protos, critic, skip=None):
        calls.append((critic, skip))
        return original(observations, protos, critic, skip)

    agent.refiner.choose = choose  # type: ignore[method-assign]
    return calls


@pytest.mark.parametrize(("target", "chooser"), [("target", "critic_target"), ("double", "critic")])
def test_the_bootstrap_item_is_chosen_by_the_critic_refine_target_names(target, chooser):
    rng = np.random.default_rng(0)
    dim, history, n = 4, 2, 16
    items = rng.normal(size=(20, dim)).astype(np.float32)
    config = DRRConfig(**SMALL_DRR, refine_k=3, refine_target=target)
    agent = DRRAgent(config, dim, history, seed=0, items=items)
    obs = drr_observations(rng, items, n, history)
    agent.replay.add(obs, rng.normal(size=(n, dim)), rng.normal(size=n), obs, np.zeros(n))
    calls = _bootstrap_calls(agent)
    agent.update(beta=0.4)
    assert [critic for critic, _ in calls] == [getattr(agent, chooser)]


def test_refinement_that_remembers_never_repeats_an_item_and_knows_what_the_env_played(tmp_path):
    config = DRRConfig(
        **SMALL_DRR, eval_every=1000, refine_k=6, refine_exclude="history+shown", noise_floor=0.5
    )  # fmt: skip
    assert config.remembers_shown and config.to_dict()["refine_exclude"] == "history+shown"
    assert "refine_exclude" not in DRRConfig(refine_k=6).to_dict()
    result = train_drr(ENV, config, 10, seed=0, run_dir=tmp_path)
    agent, _ = load_agent(tmp_path)
    env = gym.make("MovieLensRec-v0", **ENV)
    inner = env.unwrapped
    playable = unit(torch.as_tensor(inner.vectors.items)).numpy()
    for episode in range(3):
        obs, _ = env.reset(seed=episode)
        state, shown = None, []
        for step in range(10):
            action, state = agent.predict(obs, state, np.array([step == 0]))
            chosen = int(np.abs(playable - action).max(axis=1).argmin())
            obs, *_, info = env.step(action)
            played = int(inner.world.dataset.item_index(info["item_ids"][0]))
            assert chosen not in shown  # chosen among the items not yet recommended
            shown.append(played)
            assert np.flatnonzero(state[0]).tolist() == sorted(shown)  # what the env played
    with pytest.raises(ArgumentError, match=r"state must be the \(batch, n_items\)"):
        agent.predict(obs, np.zeros((2, 3), dtype=bool))
    # The replay keeps each transition's episode so far: the items of its earlier steps, then
    # its own, never one twice (8 envs, their transitions in turn; 10-step episodes).
    replay = result.agent.replay
    shown = replay.next_shown[: len(replay)].reshape(-1, 8, 10)
    for step, rows in enumerate(shown):
        listed = (rows >= 0).sum(axis=1)
        assert (listed == step % 10 + 1).all() and (rows[:, step % 10 + 1 :] == -1).all()
        if step % 10:
            np.testing.assert_array_equal(rows[:, : step % 10], shown[step - 1][:, : step % 10])
        assert all(len(set(row[:count])) == count for row, count in zip(rows, listed, strict=True))


def test_the_bootstrap_target_skips_what_the_next_states_episode_showed():
    config = DRRConfig(**SMALL_DRR, refine_k=3, refine_exclude="history+shown")
    rng = np.random.default_rng(0)
    dim, history, n = 4, 2, 16
    items = rng.normal(size=(20, dim)).astype(np.float32)
    with pytest.raises(ArgumentError, match="give DRRAgent episode_items="):
        DRRAgent(config, dim, history, seed=0, items=items)
    agent = DRRAgent(config, dim, history, seed=0, items=items, episode_items=3)
    obs = drr_observations(rng, items, n, history)
    shown = np.full((n, 3), -1)
    shown[:, :2] = rng.integers(0, 20, (n, 2))
    agent.replay.add(obs, rng.normal(size=(n, dim)), rng.normal(size=n), obs, np.zeros(n), shown)
    calls = _bootstrap_calls(agent)
    batch = agent.replay.sample(config.batch_size, 0.4, np.random.default_rng(1))
    agent.rng = np.random.default_rng(1)  # update() draws the same batch
    agent.update(beta=0.4)
    expected = np.zeros((len(batch.indices), 20), dtype=bool)
    np.put_along_axis(expected, shown[batch.indices, :2], True, axis=1)
    np.testing.assert_array_equal(calls[0][1].numpy(), expected)


def test_exploring_in_item_space_plays_other_candidates_and_only_while_exploring():
    rng = np.random.default_rng(0)
    dim, history, n, k = 4, 2, 400, 5
    items = rng.normal(size=(30, dim)).astype(np.float32)
    refiner = ItemRefiner(ItemCatalogue(items, history_len=history), k=k)
    obs = torch.as_tensor(drr_observations(rng, items, n, history))
    protos = torch.as_tensor(rng.normal(size=(n, dim)), dtype=torch.float32)
    critic = _Prefers(torch.ones(dim))
    greedy = refiner.choose(obs, protos, critic)
    draws = np.random.default_rng(1)
    explored = refiner.choose(obs, protos, critic, explore=0.5, rng=draws)
    other = ~torch.isclose(explored, greedy).all(dim=1)
    # Half the rows draw, and a draw repeats the critic's choice one time in k.
    assert 0.3 * n < int(other.sum()) < 0.5 * n
    mask = refiner.catalogue.history_mask(obs)
    scores = (protos @ refiner.catalogue.items.T).masked_fill(mask, -torch.inf)
    top = scores.topk(k, dim=1).indices
    ids = (explored @ refiner.catalogue.playable.T).argmax(dim=1)
    assert (top == ids[:, None]).any(dim=1).all()  # always one of the row's k candidates
    torch.testing.assert_close(refiner.choose(obs, protos, critic, explore=0.0, rng=draws), greedy)
    with pytest.raises(ValueError, match="explore > 0 draws candidates: give it rng"):
        refiner.choose(obs, protos, critic, explore=0.5)

    config = DRRConfig(**SMALL_DRR, refine_k=k, refine_explore=1.0)
    assert DRRConfig.from_dict(config.to_dict()) == config
    assert "refine_explore" not in DRRConfig(refine_k=k).to_dict()
    agent = DRRAgent(config, dim, history, seed=0, items=items)
    agent.noise_std = 0.0  # only the draw among the candidates explores
    fixed = agent.act(obs.numpy(), explore=False)
    np.testing.assert_array_equal(fixed, agent.act(obs.numpy(), explore=False))
    assert (agent.act(obs.numpy(), explore=True) != fixed).any(axis=1).mean() > 0.5
    with pytest.raises(ValueError, match=r"refine_explore \(0.1\) draws among refine_k"):
        DRRConfig(refine_explore=0.1)
    with pytest.raises(ValueError, match="refine_explore"):
        DRRConfig(refine_k=k, refine_explore=1.5)


def test_actor_imitation_pulls_the_actors_candidates_toward_the_items_chosen():
    rng = np.random.default_rng(0)
    dim, history, n = 4, 2, 64
    items = rng.normal(size=(20, dim)).astype(np.float32)
    obs = drr_observations(rng, items, n, history)
    target = 7
    held = obs[:, dim:].reshape(n, history, dim)
    free = ~(held == items[target]).all(axis=2).any(axis=1)  # rows where item 7 may be played
    chosen = np.tile(items[target] / np.linalg.norm(items[target]), (n, 1))

    def candidates_after(imitation: float) -> np.ndarray:
        config = DRRConfig(
            **SMALL_DRR | {"batch_size": n, "learning_starts": n}, refine_k=3, actor_lr=3e-2,
            actor_imitation=imitation,
        )  # fmt: skip
        agent = DRRAgent(config, dim, history, seed=0, items=items)
        agent.replay.add(obs, chosen, np.zeros(n), obs, np.ones(n))
        for _ in range(100):
            agent.update(beta=0.4)
        assert agent.refiner is not None
        with torch.no_grad():
            protos = agent.actor(torch.as_tensor(obs))
        top, _, _ = agent.refiner.candidates(torch.as_tensor(obs), protos)
        return (top.numpy() == target).any(axis=1)[free]

    # Replayed item 7 everywhere: imitation puts it among nearly every row's 3 candidates,
    # where the critic's gradient alone (it learns nothing of item 7: every reward is 0)
    # leaves the actor's candidates where MF's are.
    assert candidates_after(10.0).mean() > 0.9
    assert candidates_after(0.0).mean() < 0.5


def test_actor_imitation_needs_refinement_and_keeps_old_keys():
    with pytest.raises(ConfigError, match=r"actor_imitation .*needs refine_k > 0"):
        DRRConfig(**SMALL_DRR, actor_imitation=1.0)
    assert "actor_imitation" not in DRRConfig(**SMALL_DRR, refine_k=3).to_dict()
    config = DRRConfig(**SMALL_DRR, refine_k=3, actor_imitation=0.5)
    assert DRRConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="actor_imitation"):
        DRRConfig(**SMALL_DRR, refine_k=3, actor_imitation=-1.0)
