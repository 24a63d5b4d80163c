"""The agent's view of the env's items: the history found by value, the env's recommendation
of an action, and what a critic can read of the item it recommends."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.drr.agent import DRRAgent
from agents.drr.catalogue import ItemCatalogue, RecommendedItem
from agents.drr.config import DRRConfig
from agents.drr.train import load_agent, train_drr
from movielens_env.errors import ArgumentError
from tests.helpers import SMALL_DRR

ENV = {"dataset": "synthetic", "embedding_dim": 8, "history_len": 5,
       "mf_options": {"iterations": 2}, "user_model": "boredom"}  # fmt: skip
RECOMMENDED = "action+user-product+recommended-item"


def test_the_history_is_found_by_value_among_many_items():
    rng = np.random.default_rng(0)
    items = rng.normal(size=(500, 6)).astype(np.float32)
    catalogue = ItemCatalogue(items, history_len=4)
    histories = np.stack([rng.choice(500, 4, replace=False) for _ in range(50)])
    obs = np.concatenate([rng.normal(size=(50, 6)), items[histories].reshape(50, -1)], axis=1)
    obs = torch.as_tensor(obs, dtype=torch.float32)
    mask = catalogue.history_mask(obs)
    expected = np.zeros((50, 500), dtype=bool)
    np.put_along_axis(expected, histories, True, axis=1)
    np.testing.assert_array_equal(mask.numpy(), expected)
    # A vector that is no item's (an item moved by 1e-3) is found nowhere.
    obs[0, 6:12] += 1e-3
    assert catalogue.history_mask(obs)[0].sum() == 3


def test_an_items_own_vector_recommends_what_a_search_of_the_catalogue_finds():
    rng = np.random.default_rng(2)
    items = rng.normal(size=(300, 6)).astype(np.float32)
    items[:40] *= 0.05  # short vectors: other items score higher on them
    items[40] = items[41]  # a tie
    items[42] = 0.0  # no direction
    catalogue = ItemCatalogue(items, history_len=4)
    assert catalogue.rivalled()[[40, 41, 42]].all() and not catalogue.rivalled().all()
    histories = np.stack([rng.choice(300, 4, replace=False) for _ in range(30)])
    obs = np.concatenate([rng.normal(size=(30, 6)), items[histories].reshape(30, -1)], axis=1)
    obs = torch.as_tensor(obs, dtype=torch.float32)
    candidates = torch.as_tensor(rng.integers(0, 300, size=(30, 50)))
    candidates[:, :4] = torch.as_tensor(histories)  # history items recommend another item
    candidates[:, 4:8] = torch.tensor([40, 41, 42, 0])
    picks = catalogue.recommended_for_items(candidates, catalogue.history_mask(obs))
    searched = catalogue.recommended(
        obs.repeat_interleave(50, dim=0), catalogue.playable[candidates].reshape(-1, 6)
    )  # fmt: skip
    np.testing.assert_array_equal(picks.reshape(-1).numpy(), searched.numpy())
    assert (picks != candidates).float().mean() > 0.1  # the search was needed for some


def test_the_target_critic_shares_the_catalogue():
    env = gym.make("MovieLensRec-v0", **ENV)
    inner = env.unwrapped
    agent = DRRAgent(
        DRRConfig(**SMALL_DRR, refine_k=4, critic_input=RECOMMENDED), inner.vectors.dim,
        inner.history_len, seed=0, obs_dim=env.observation_space.shape[0],
        items=inner.vectors.items, item_genres=inner.user_model.weights,
    )  # fmt: skip
    catalogue = agent.critic.features.catalogue
    assert agent.critic_target.features.catalogue is catalogue
    assert agent.refiner.catalogue is catalogue and agent.refiner.tell_items


def _expected(inner, obs: np.ndarray, item: int) -> np.ndarray:
    """What the critic should read of ``item`` recommended to the env's user now."""
    user = obs[: inner.vectors.dim]
    satiation = inner._state.satiation[0] * inner.user_model.weights[item]
    return np.concatenate([user * inner.vectors.items[item], satiation])


def test_the_recommended_item_its_mf_score_and_genre_satiation_are_the_envs():
    env = gym.make("MovieLensRec-v0", **ENV)
    inner = env.unwrapped
    catalogue = ItemCatalogue(inner.vectors.items, inner.history_len)
    features = RecommendedItem(catalogue, inner.user_model.weights)
    rng = np.random.default_rng(1)
    satiated = 0
    for episode in range(5):
        obs, _ = env.reset(seed=episode)
        action = rng.normal(size=env.action_space.shape).astype(np.float32)
        pair = torch.as_tensor(obs)[None], torch.as_tensor(action)[None]
        item = int(catalogue.recommended(*pair)[0])
        seen = features(*pair)[0].numpy()
        expected = _expected(inner, obs, item)
        _, _, _, _, info = env.step(action)  # the first step: nothing recommended before it
        assert inner.world.dataset.item_ids[item] == info["item_ids"][0]
        np.testing.assert_allclose(seen, expected, rtol=1e-5, atol=1e-7)
        dim, mf = inner.vectors.dim, inner.world.mf  # the sum: MF's score less the user's part
        score = mf.predict(inner._user, item) - mf.global_mean - mf.user_bias[inner._user]
        assert seen[:dim].sum() == pytest.approx(score, rel=1e-4, abs=1e-5)
        for _ in range(3):  # later steps, with satiation
            obs, *_ = env.step(rng.normal(size=env.action_space.shape).astype(np.float32))
        pair = torch.as_tensor(obs)[None], torch.as_tensor(action)[None]
        item = int(catalogue.recommended(*pair)[0])
        expected = _expected(inner, obs, item)
        np.testing.assert_allclose(features(*pair)[0].numpy(), expected, rtol=1e-5, atol=1e-7)
        satiated += expected[inner.vectors.dim :].sum() > 0
    assert satiated  # the check above compared some non-zero satiation


def test_the_item_features_are_the_recommended_items_own_vector_and_genres():
    env = gym.make("MovieLensRec-v0", **ENV)
    inner = env.unwrapped
    catalogue = ItemCatalogue(inner.vectors.items, inner.history_len)
    weights = inner.user_model.weights
    plain = RecommendedItem(catalogue, weights)
    features = RecommendedItem(catalogue, weights, item_features=True)
    assert features.width == 2 * plain.width == 2 * (inner.vectors.dim + weights.shape[1])
    obs, _ = env.reset(seed=0)
    for _ in range(3):  # a satiation: the products then differ from the item's own parts
        obs, *_ = env.step(env.action_space.sample())
    actions = torch.as_tensor(np.random.default_rng(0).normal(size=(5, inner.vectors.dim)))
    batch = torch.as_tensor(obs)[None].expand(5, -1)
    items = catalogue.recommended(batch, actions.float())
    seen = features(batch, actions.float())
    torch.testing.assert_close(seen[:, : plain.width], plain(batch, actions.float()))
    own = np.concatenate([inner.vectors.items[items.numpy()], weights[items.numpy()]], axis=1)
    np.testing.assert_allclose(seen[:, plain.width :].numpy(), own, rtol=1e-6)
    config = DRRConfig(**SMALL_DRR, critic_input=f"{RECOMMENDED}+item-features")
    assert config.critic_recommended_item and config.critic_item_features
    assert not DRRConfig(critic_input=RECOMMENDED).critic_item_features
    agent = DRRAgent(
        config, inner.vectors.dim, inner.history_len, seed=0,
        obs_dim=env.observation_space.shape[0], items=inner.vectors.items, item_genres=weights,
    )  # fmt: skip
    assert agent.critic.features.item_features and agent.critic.features.width == features.width
    assert agent.critic(batch.float(), actions.float()).shape == (5,)


def test_the_recommended_item_critic_needs_the_items_their_genres_and_a_satiation():
    config = DRRConfig(**SMALL_DRR, critic_input=RECOMMENDED)
    assert config.critic_user_product and config.critic_recommended_item
    assert DRRConfig.from_dict(config.to_dict()) == config
    items, genres = np.ones((7, 4), np.float32), np.ones((7, 3))
    with pytest.raises(ArgumentError, match="give DRRAgent items="):
        DRRAgent(config, 4, 2, seed=0, obs_dim=15, item_genres=genres)
    with pytest.raises(ArgumentError, match="give DRRAgent item_genres="):
        DRRAgent(config, 4, 2, seed=0, obs_dim=15, items=items)
    with pytest.raises(ArgumentError, match="a user model with boredom"):
        DRRAgent(config, 4, 2, seed=0, obs_dim=12, items=items, item_genres=genres)
    for obs_dim, n_genres in ((15, 3), (12, 0)):  # with boredom, and without (static)
        agent = DRRAgent(
            config, 4, 2, seed=0, obs_dim=obs_dim, items=items,
            item_genres=np.ones((7, n_genres)),
        )  # fmt: skip
        assert agent.critic(torch.zeros(3, obs_dim), torch.ones(3, 4)).shape == (3,)


def test_a_refined_recommended_item_agent_trains_and_reloads_to_the_same_choices(tmp_path):
    config = DRRConfig(**SMALL_DRR, eval_every=1000, refine_k=6, critic_input=RECOMMENDED)
    result = train_drr(ENV, config, 8, seed=0, run_dir=tmp_path)
    assert np.isfinite(result.episode_returns).all()
    agent, _ = load_agent(tmp_path)
    assert agent.config.critic_input == RECOMMENDED
    env = gym.make("MovieLensRec-v0", **ENV)
    obs, _ = env.reset(seed=2)
    for _ in range(4):
        action = agent.predict(obs)[0]
        np.testing.assert_array_equal(action, result.agent.predict(obs)[0])
        obs, *_ = env.step(action)
