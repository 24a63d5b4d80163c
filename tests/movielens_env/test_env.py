"""MovieLensRecEnv semantics: candidates, ratings, rewards, history, episode end, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from movielens_env import MovieLensRecEnv
from movielens_env.simulator.world import POSITIVE_RATING
from tests.helpers import SMALL_ENV_KWARGS


def _rollout(env: MovieLensRecEnv, steps: int, seed: int = 0, user=None):
    """Step with seeded random actions until done or ``steps``; yield (obs, reward, term, info)."""
    options = None if user is None else {"user_id": user}
    env.reset(seed=seed, options=options)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        obs, reward, terminated, _, info = env.step(action)
        yield action, obs, reward, terminated, info
        if terminated:
            return


def _pool(env: MovieLensRecEnv, user: int) -> dict[int, float]:
    """The user's rated pool as {internal item: rating}, computed from the split directly."""
    split = env.world.split
    if env.split == "test":
        items, ratings = split.test.row(user)
    else:
        items, ratings = split.train.row(user)
        history = env.world.positives.row(user)[0][: env.history_len]
        keep = ~np.isin(items, history)
        items, ratings = items[keep], ratings[keep]
    return dict(zip(items.tolist(), ratings.tolist(), strict=True))


@pytest.mark.parametrize("item_bias", [True, False])
def test_spaces_and_observation_layout(make_env, item_bias):
    env = make_env(history_len=5, item_bias=item_bias)
    obs, info = env.reset(seed=3)
    dim = 16 + item_bias  # the vectors carry the item bias as one more coordinate
    assert env.action_space == gym.spaces.Box(-1, 1, (dim,), np.float32)
    assert obs.shape == ((5 + 1) * dim,) and obs.dtype == np.float32
    assert env.observation_space.contains(obs)
    assert (
        np.isfinite(env.observation_space.low).all()
        and np.isfinite(env.observation_space.high).all()
    )
    data, mf = env.world.dataset, env.world.mf
    user = int(data.user_index(info["user_id"]))
    history = data.item_index(info["history_item_ids"])
    user_vector, items = mf.user_factors[user], mf.item_factors[history]
    if item_bias:
        user_vector = np.append(user_vector, np.float32(1.0))
        items = np.hstack([items, mf.item_bias[history, None]])
    np.testing.assert_array_equal(obs[:dim], user_vector)
    np.testing.assert_array_equal(obs[dim:].reshape(5, dim), items)
    # split="train": the history is the user's first positives in time.
    np.testing.assert_array_equal(history, env.world.positives.row(user)[0][:5])
    assert (env.world.positives.ratings >= POSITIVE_RATING).all()


def test_dict_observation_mode(make_env):
    env = make_env(obs_mode="dict", history_len=4)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    data = env.world.dataset
    assert obs["user_id"].shape == (1,) and data.user_ids[obs["user_id"][0]] == info["user_id"]
    np.testing.assert_array_equal(data.item_ids[obs["history_ids"]], info["history_item_ids"])
    np.testing.assert_array_equal(obs["history"], env.vectors.items[obs["history_ids"]])
    np.testing.assert_array_equal(obs["user"][-1], 1.0)


def test_recommends_the_best_scored_available_items(make_env):
    env = make_env(slate_size=3)
    env.reset(seed=1)
    mf = env.world.mf
    factors = np.hstack([mf.item_factors, mf.item_bias[:, None]]).astype(np.float64)
    excluded = set(env.world.dataset.item_index(env.reset(seed=1)[1]["history_item_ids"]).tolist())
    for action, _, _, _, info in _rollout(env, 5, seed=1):
        slate = env.world.dataset.item_index(info["item_ids"])
        scores = factors @ action.astype(np.float64)
        scores[list(excluded)] = -np.inf
        expected = np.argsort(-scores, kind="stable")[:3]
        np.testing.assert_array_equal(slate, expected)
        excluded |= set(slate.tolist())


@pytest.mark.parametrize("candidates", ["all", "rated"])
def test_no_item_is_recommended_twice_nor_from_the_history(make_env, candidates):
    env = make_env(candidates=candidates, slate_size=2)
    _, info = env.reset(seed=5)
    seen = set(info["history_item_ids"].tolist())
    for _, _, _, _, info in _rollout(env, 200, seed=5):
        slate = info["item_ids"].tolist()
        assert len(set(slate)) == len(slate)
        assert not seen & set(slate)
        seen |= set(slate)


def test_history_is_fifo_of_liked_items(make_env):
    env = make_env(obs_mode="dict", history_len=4)
    obs, _ = env.reset(seed=2)
    history = obs["history_ids"].tolist()
    for _, obs, _, _, info in _rollout(env, 40, seed=2):
        liked = env.world.dataset.item_index(info["item_ids"][info["hits"]]).tolist()
        history = (history + liked)[-4:]
        assert obs["history_ids"].tolist() == history
        assert (info["hits"] == (info["ratings"] >= 4)).all()


def test_mf_reward_uses_logged_rating_else_clipped_prediction(make_env):
    env = make_env(candidates="all")
    _, info = env.reset(seed=4)
    user = int(env.world.dataset.user_index(info["user_id"]))
    pool = _pool(env, user)
    n_logged = 0
    for _, _, reward, _, info in _rollout(env, 60, seed=4):
        item = int(env.world.dataset.item_index(info["item_ids"][0]))
        rating = info["ratings"][0]
        if item in pool:
            assert info["logged"][0] and rating == pool[item]
            n_logged += 1
        else:
            predicted = np.clip(env.world.mf.predict(user, item), 1.0, 5.0)
            assert not info["logged"][0] and rating == pytest.approx(predicted)
        assert reward == pytest.approx((rating - 3.0) / 2.0)
    assert n_logged > 0, "a 60-step rollout should reach some logged item"


def test_rated_candidates_come_from_the_pool_and_end_the_episode(make_env):
    env = make_env(candidates="rated", split="train")
    _, info = env.reset(seed=6)
    user = int(env.world.dataset.user_index(info["user_id"]))
    pool = _pool(env, user)
    steps = list(_rollout(env, 10_000, seed=6, user=info["user_id"]))
    assert len(steps) == len(pool)
    assert steps[-1][3] is True and not any(step[3] for step in steps[:-1])
    recommended = env.world.dataset.item_index(np.concatenate([s[4]["item_ids"] for s in steps]))
    assert sorted(recommended.tolist()) == sorted(pool)
    assert all(s[4]["logged"].all() for s in steps)


def test_test_split_uses_last_train_positives_and_test_pool(make_env):
    env = make_env(split="test", candidates="rated", obs_mode="dict", history_len=3)
    obs, reset_info = env.reset(seed=7)
    user = int(obs["user_id"][0])
    np.testing.assert_array_equal(obs["history_ids"], env.world.positives.row(user)[0][-3:])
    test_items, test_ratings = env.world.split.test.row(user)
    for _, _, _, _, info in _rollout(env, 100, seed=7, user=reset_info["user_id"]):
        item = int(env.world.dataset.item_index(info["item_ids"][0]))
        assert item in test_items
        assert info["ratings"][0] == test_ratings[test_items.tolist().index(item)]


def test_logged_reward_model_gives_unrated_reward(make_env):
    env = make_env(reward_model="logged", unrated_reward=-0.7)
    unrated = 0
    for _, _, reward, _, info in _rollout(env, 50, seed=8):
        if info["logged"][0]:
            assert reward == pytest.approx((info["ratings"][0] - 3) / 2)
        else:
            assert np.isnan(info["ratings"][0]) and reward == pytest.approx(-0.7)
            assert not info["hits"][0]
            unrated += 1
    assert unrated > 0


def test_oracle_reward_is_the_generators_true_rating(make_env, small_dataset):
    env = make_env(reward_model="oracle", slate_size=2)
    _, info = env.reset(seed=9)
    user = int(small_dataset.user_index(info["user_id"]))
    for _, _, reward, _, info in _rollout(env, 10, seed=9):
        items = small_dataset.item_index(info["item_ids"])
        truth = small_dataset.truth.true_rating(np.full(2, user), items)
        np.testing.assert_allclose(info["ratings"], truth)
        assert reward == pytest.approx(float(np.sum((truth - 3) / 2)))
        assert ((1 <= info["ratings"]) & (info["ratings"] <= 5)).all()
        assert not info["logged"].any()


def test_reset_picks_the_requested_user_and_draws_only_eligible_users(make_env):
    env = make_env(history_len=10)
    eligible_raw = set(env.world.dataset.user_ids[env.eligible_users].tolist())
    assert len(eligible_raw) < env.world.dataset.n_users  # some users have too few positives
    drawn = {env.reset(seed=s)[1]["user_id"] for s in range(50)}
    assert drawn <= eligible_raw and len(drawn) > 10
    raw = sorted(eligible_raw)[3]
    assert env.reset(options={"user_id": raw})[1]["user_id"] == raw


def test_render_ansi_names_user_history_and_slate(make_env):
    env = make_env(render_mode="ansi", obs_mode="dict")
    _, info = env.reset(seed=0)
    obs, _, _, _, step_info = env.step(env.action_space.sample())
    text = env.render()
    data = env.world.dataset
    assert f"User {info['user_id']}" in text
    assert f"{data.title(int(data.item_index(step_info['item_ids'][0])))}  rating" in text
    assert all(f"- {data.title(int(i))}\n" in text for i in obs["history_ids"])


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "action, message",
    [
        (np.zeros(16, np.float32), r"shape \(17,\)"),  # the length without the bias
        (np.zeros((1, 17), np.float32), r"shape \(17,\)"),
        (np.full(17, np.nan, np.float32), "NaN or inf"),
        (np.r_[np.zeros(16), np.inf].astype(np.float32), "NaN or inf"),
    ],
)
def test_bad_actions_are_refused(make_env, action, message):
    env = make_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


def test_step_before_reset_is_refused(make_env):
    with pytest.raises(gym.error.ResetNeeded, match="reset"):
        make_env().step(np.zeros(16, np.float32))


def test_step_after_the_last_candidate_is_refused(make_env):
    env = make_env(candidates="rated")
    *_, last = _rollout(env, 10_000, seed=3)
    assert last[3] is True
    with pytest.raises(gym.error.ResetNeeded, match="terminated"):
        env.step(np.zeros(16, np.float32))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"history_len": 0}, "history_len must be an integer >= 1"),
        ({"history_len": 2.5}, "history_len must be an integer >= 1"),
        ({"slate_size": 0}, "slate_size must be an integer >= 1"),
        ({"slate_size": 10_000}, "slate_size=10000 is larger than"),
        ({"embedding_dim": 0}, "embedding_dim must be an integer >= 1"),
        ({"split": "valid"}, "split='valid' is not valid; allowed values: 'train', 'test'"),
        ({"candidates": "some"}, "allowed values: 'all', 'rated'"),
        ({"reward_model": "dcg"}, "allowed values: 'mf', 'logged', 'oracle'"),
        ({"obs_mode": "image"}, "allowed values: 'flat', 'dict'"),
        ({"render_mode": "video"}, "allowed values: None, 'ansi', 'human', 'rgb_array'"),
        ({"unrated_reward": float("nan")}, "unrated_reward must be a finite number"),
        ({"history_len": 150}, "no user of 'synthetic-small' has 150 positive train ratings"),
        ({"history_len": 296}, "history_len=296 must be smaller than the catalogue"),
        ({"mf_options": {"dim": 3}}, r"mf_options has unknown keys \['dim'\]"),
        (
            {"mf_options": {"lr": 3}},
            r"mf_options has unknown keys \['lr'\]; allowed: \['init_scale'",
        ),
    ],
)
def test_impossible_arguments_are_refused(make_env, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_env(**kwargs)


def test_oracle_on_real_data_is_refused(real_like_dataset):
    with pytest.raises(ValueError, match=r"oracle.*real data"):
        MovieLensRecEnv(dataset=real_like_dataset, reward_model="oracle", embedding_dim=8)


def test_unknown_or_ineligible_user_is_refused(make_env):
    env = make_env(history_len=10)
    with pytest.raises(ValueError, match="not a user"):
        env.reset(options={"user_id": 10**9})
    ineligible = np.setdiff1d(np.arange(env.world.dataset.n_users), env.eligible_users)
    raw = int(env.world.dataset.user_ids[ineligible[0]])
    with pytest.raises(ValueError, match=f"user {raw} cannot start an episode"):
        env.reset(options={"user_id": raw})


def test_load_world_is_the_world_of_the_env_without_building_one(small_dataset):
    from movielens_env import load_world

    env = MovieLensRecEnv(dataset=small_dataset, **SMALL_ENV_KWARGS)
    assert load_world(dataset=small_dataset, max_episode_steps=7, **SMALL_ENV_KWARGS) is env.world
    with pytest.raises(ValueError, match="history_len must be an integer >= 1"):
        load_world(dataset=small_dataset, history_len=0)


def test_both_envs_refuse_an_unknown_argument_by_name(small_dataset):
    with pytest.raises(TypeError, match="histroy_len"):
        MovieLensRecEnv(dataset=small_dataset, histroy_len=3)
    with pytest.raises(
        ValueError, match=r"takes no argument 'histroy_len'; allowed: .*history_len"
    ):
        gym.make_vec("MovieLensRec-v0", num_envs=2, dataset=small_dataset, histroy_len=3)
