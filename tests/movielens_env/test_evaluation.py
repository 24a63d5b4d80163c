"""The evaluation protocols: what agents see, what counts as relevant, exports, bad agents."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from agents.baselines import MFRanker, PopularityRanker, RandomRanker
from movielens_env import MovieLensRecEnv
from movielens_env.errors import AgentError, ArgumentError
from movielens_env.evaluation import protocols as evaluation_module
from movielens_env.evaluation.exports import export_recommendations, metrics_from_recommendations
from movielens_env.evaluation.protocols import (
    evaluate,
    evaluate_offline,
    evaluate_online,
    evaluation_users,
)
from tests.helpers import SMALL_ENV_KWARGS


@pytest.fixture
def env_kwargs(small_dataset):
    return {"dataset": small_dataset, "history_len": 5, **SMALL_ENV_KWARGS}


@pytest.fixture
def world(env_kwargs):
    return MovieLensRecEnv(**env_kwargs).world


class SpyRanker:
    """Ranks candidates by id and remembers what it was offered."""

    def __init__(self) -> None:
        self.offered: dict[int, np.ndarray] = {}

    def rank(self, user, candidates, k):
        self.offered[user] = candidates.copy()
        return np.sort(candidates)[:k]


def test_users_are_those_with_a_test_observation_and_a_positive_test_rating(world):
    users = evaluation_users(world, 5)
    for user in range(world.dataset.n_users):
        test_ratings = world.split.test.row(user)[1]
        expected = world.positives.counts[user] >= 5 and (test_ratings >= 4).any()
        assert (user in users) == expected


def test_rerank_offers_test_items_and_full_offers_items_not_rated_in_train(env_kwargs, world):
    spy = SpyRanker()
    evaluate_offline(spy, env_kwargs, protocols=("rerank",))
    for user, offered in spy.offered.items():
        np.testing.assert_array_equal(offered, np.sort(world.split.test.row(user)[0]))
    spy = SpyRanker()
    evaluate_offline(spy, env_kwargs, protocols=("full",))
    for user, offered in spy.offered.items():
        expected = np.setdiff1d(np.arange(world.dataset.n_items), world.split.train.row(user)[0])
        np.testing.assert_array_equal(offered, expected)


def test_policies_see_the_test_split_observation(env_kwargs, world):
    seen = []

    def policy(obs):
        seen.append(obs)
        return np.ones(17, np.float32)

    result = evaluate_offline(policy, env_kwargs, protocols=("rerank",))
    env = MovieLensRecEnv(**{**env_kwargs, "split": "test", "obs_mode": "dict"})
    for obs, user in zip(seen, result.users, strict=True):
        expected = env.reset(options={"user_id": world.dataset.user_ids[user]})[0]
        np.testing.assert_array_equal(expected["history_ids"], world.positives.row(user)[0][-5:])
        np.testing.assert_array_equal(obs[17:].reshape(5, 17), expected["history"])


def test_action_policies_rank_by_inner_product_with_item_vectors(env_kwargs, world):
    action = np.random.default_rng(0).uniform(-1, 1, 17).astype(np.float32)
    result = evaluate_offline(lambda obs: action, env_kwargs, protocols=("full",), ks=(10,))
    vectors = np.hstack([world.mf.item_factors, world.mf.item_bias[:, None]])
    scores = vectors.astype(np.float64) @ action
    for user, top in zip(result.users, result.top_items["full"], strict=True):
        masked = scores.copy()
        masked[world.split.train.row(user)[0]] = -np.inf
        np.testing.assert_array_equal(top, np.argsort(-masked, kind="stable")[:10])


def test_relevance_is_the_test_rating_and_a_perfect_ranker_scores_one(env_kwargs, world):
    class Perfect:
        def rank(self, user, candidates, k):
            items, ratings = world.split.test.row(user)
            rating = dict(zip(items.tolist(), ratings.tolist(), strict=True))
            order = sorted(candidates.tolist(), key=lambda i: -(rating.get(i, 0) >= 4))
            return np.array(order[:k])

    summary = evaluate_offline(Perfect(), env_kwargs).summary()
    assert summary["rerank/ndcg@10"] == pytest.approx(1.0)
    assert summary["full/ndcg@5"] == pytest.approx(1.0)
    assert summary["full/hit_rate@5"] == pytest.approx(1.0)


def test_baselines_are_fitted_on_train_only(small_dataset, world):
    # Flip every test rating: train-only models cannot change, the metrics must.
    n_items = small_dataset.n_items
    test = world.split.test
    test_keys = test.user_of_each_rating().astype(np.int64) * n_items + test.items
    is_test = np.isin(
        small_dataset.users.astype(np.int64) * n_items + small_dataset.items, test_keys
    )
    flipped = small_dataset.ratings.copy()
    flipped[is_test] = 6.0 - flipped[is_test]
    changed = dataclasses.replace(small_dataset, name="flipped", ratings=flipped)
    kwargs = {"history_len": 5, **SMALL_ENV_KWARGS}
    other = MovieLensRecEnv(dataset=changed, **kwargs).world
    np.testing.assert_array_equal(PopularityRanker(world).counts, PopularityRanker(other).counts)
    np.testing.assert_array_equal(MFRanker(world).mf.item_factors, MFRanker(other).mf.item_factors)
    before = evaluate_offline(PopularityRanker(world), {"dataset": small_dataset, **kwargs})
    after = evaluate_offline(PopularityRanker(other), {"dataset": changed, **kwargs})
    assert before.summary()["rerank/precision@5"] != after.summary()["rerank/precision@5"]


@pytest.mark.parametrize("protocol", ["rerank", "full"])
def test_exported_csv_reproduces_the_metrics(env_kwargs, world, tmp_path, protocol):
    result = evaluate_offline(MFRanker(world), env_kwargs)
    path = tmp_path / "recs.csv"
    export_recommendations(result, world, protocol, path)
    header, first = path.read_text().splitlines()[:2]
    assert header == "user,item,rank"
    user, item, rank = map(int, first.split(","))
    assert user == world.dataset.user_ids[result.users[0]] and rank == 1
    assert item == world.dataset.item_ids[result.top_items[protocol][0, 0]]
    recomputed = metrics_from_recommendations(path, world)
    printed = result.summary()
    for name, value in recomputed.items():
        assert value == pytest.approx(printed[f"{protocol}/{name}"]), name
    for ks in ((5, 0), (3, -1), (), "5"):  # precision@0 was NaN, a negative k a raw error
        with pytest.raises(ArgumentError, match="ks must be integers >= 1"):
            metrics_from_recommendations(path, world, ks)  # type: ignore[arg-type]


def test_online_return_of_a_ranker_matches_stepping_the_env_by_hand(env_kwargs, world):
    users = evaluation_users(world, 5)[:10]
    returns = evaluate_online(MFRanker(world), env_kwargs, "mf", users)
    env = MovieLensRecEnv(**{**env_kwargs, "split": "test"})
    for user, expected in zip(users, returns, strict=True):
        env.reset(options={"user_id": world.dataset.user_ids[user]})
        total = 0.0
        for _ in range(10):
            candidates = env.candidate_items()
            best = candidates[np.argmax(world.mf.predict_user(user)[candidates])]
            total += env.step_items([best])[1]
        assert total == pytest.approx(expected)


@pytest.mark.parametrize("candidates", ["all", "rated"])  # "rated": some episodes end early
def test_online_return_of_a_policy_matches_stepping_the_env_by_hand(
    env_kwargs, world, monkeypatch, candidates
):
    monkeypatch.setattr(evaluation_module, "_LOCKSTEP", 4)  # batches of 4, 4 and a padded 2
    kwargs = {**env_kwargs, "candidates": candidates}
    users = evaluation_users(world, 5)[:10]
    weights = np.random.default_rng(0).normal(size=(17, 96))

    def policy(obs: np.ndarray) -> np.ndarray:
        return np.tanh(weights @ obs[:96]).astype(np.float32)

    returns = evaluate_online(policy, kwargs, "mf", users)
    env = MovieLensRecEnv(**{**kwargs, "split": "test"})
    ended_early = 0
    for user, expected in zip(users, returns, strict=True):
        obs, _ = env.reset(options={"user_id": world.dataset.user_ids[user]})
        total, steps, terminated = 0.0, 0, False
        while steps < 10 and not terminated:
            obs, reward, terminated, _, _ = env.step(policy(obs))
            total, steps = total + reward, steps + 1
        ended_early += steps < 10
        assert total == pytest.approx(expected, abs=1e-9)
    assert candidates == "all" or ended_early > 0


class _Counting:
    """An SB3-style model with a memory: its state counts each row's steps in the episode, and
    its action, the step's item vector, depends on it (as a recurrent policy's would)."""

    def __init__(self, items: np.ndarray) -> None:
        self.items, self.asked = items, []

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        steps = np.zeros(len(obs), dtype=int) if state is None else state.copy()
        steps[np.asarray(episode_start, dtype=bool)] = 0
        self.asked.append((state is None, episode_start.copy()))
        return self.items[steps], steps + 1


def test_a_model_with_a_memory_gets_its_state_back_through_the_episode(
    env_kwargs, world, monkeypatch
):
    monkeypatch.setattr(evaluation_module, "_LOCKSTEP", 4)  # batches of 4 and 2
    users = evaluation_users(world, 5)[:6]
    items = np.random.default_rng(2).normal(size=(10, 17))
    model = _Counting(items)
    returns = evaluate_online(model, env_kwargs, "mf", users, name="counting")
    assert [fresh for fresh, _ in model.asked] == [True] + [False] * 9 + [True] + [False] * 9
    assert all(start.all() for _, start in model.asked[::10])
    assert not any(start.any() for _, start in model.asked[1:10] + model.asked[11:])
    env = MovieLensRecEnv(**{**env_kwargs, "split": "test"})
    for user, expected in zip(users, returns, strict=True):
        env.reset(options={"user_id": world.dataset.user_ids[user]})
        total = sum(env.step(items[step])[1] for step in range(10))
        assert total == pytest.approx(expected, abs=1e-9)


def test_only_the_direction_of_an_action_counts_even_beyond_float32(env_kwargs):
    weights = np.random.default_rng(1).normal(size=(17, 96))

    def policy(obs: np.ndarray) -> np.ndarray:
        return np.tanh(weights @ obs[:96])

    normal = evaluate(policy, env_kwargs).summary()
    huge = evaluate(lambda obs: 1e300 * policy(obs), env_kwargs).summary()
    tiny = evaluate(lambda obs: 1e-300 * policy(obs), env_kwargs).summary()
    assert normal == huge == tiny


def test_evaluate_reports_every_protocol_and_the_oracle_on_synthetic_data(env_kwargs):
    summary = evaluate(RandomRanker(0), env_kwargs).summary()
    for name in ("rerank/precision@5", "full/ndcg@10", "full/coverage@10", "online/return_oracle"):
        assert name in summary
    assert 0.0 <= summary["full/coverage@10"] <= 1.0


@pytest.mark.parametrize(
    "agent, message",
    [
        (lambda obs: np.zeros(3), r"agent 'bad' returned an action of shape \(3,\), not \(17,\)"),
        (lambda obs: np.full(17, np.nan), "agent 'bad' returned an action with NaN or inf"),
        (object(), "agent 'bad' is neither a Ranker"),
    ],
)
def test_bad_policies_fail_with_a_message_naming_the_agent(env_kwargs, agent, message):
    with pytest.raises(AgentError, match=message):
        evaluate_offline(agent, env_kwargs, name="bad")


class _OneAtATime:
    """A predict that ignores the batch it is given (returns one action for all)."""

    def predict(self, obs, deterministic=True):
        return np.ones(17), None


class _BuggyPredict:
    def predict(self, obs, deterministic=True):
        raise KeyError("a bug inside the agent")


def test_a_predict_that_does_not_batch_is_named_and_a_bug_in_it_is_not_hidden(env_kwargs):
    with pytest.raises(AgentError, match=r"agent 'single': predict on a batch of \d+ obs"):
        evaluate_offline(_OneAtATime(), env_kwargs, name="single")
    with pytest.raises(KeyError, match="a bug inside the agent"):
        evaluate_offline(_BuggyPredict(), env_kwargs, name="buggy")


def test_bad_rankers_fail_with_a_message_naming_the_agent(env_kwargs):
    class Outside:
        def rank(self, user, candidates, k):
            return np.array([-5])

    with pytest.raises(AgentError, match="agent 'outside' ranked items that are not candidates"):
        evaluate_offline(Outside(), env_kwargs, name="outside")
    with pytest.raises(ValueError, match="unknown protocol 'topk'; valid: rerank, full"):
        evaluate_offline(RandomRanker(), env_kwargs, protocols=("topk",))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda kw: evaluate_offline(RandomRanker(0), kw, ks=(0,)), "ks must be integers >= 1"),
        (lambda kw: evaluate_offline(RandomRanker(0), kw, ks=()), "ks must be integers >= 1"),
        (lambda kw: evaluate_offline(RandomRanker(0), kw, ("x",)), "unknown protocol 'x'"),
        (lambda kw: evaluate_online(RandomRanker(0), kw, "mf", max_steps=0), "max_steps must"),
        (lambda kw: evaluate_online(RandomRanker(0), kw, "bogus"), "reward_model='bogus'"),
    ],
)
def test_bad_evaluation_arguments_are_named(env_kwargs, call, message):
    with pytest.raises(ValueError, match=message):
        call(env_kwargs)


def test_rated_candidates_evaluate_the_users_whose_test_ratings_fill_a_slate(env_kwargs, world):
    """With slates larger than some users' test ratings, the evaluation failed on the first
    such user, blaming their train ratings."""
    counts = world.split.test.counts
    slate = int(np.median(counts[evaluation_users(world, 5)]))
    kwargs = {**env_kwargs, "candidates": "rated", "slate_size": slate}
    result = evaluate(MFRanker(world), kwargs)
    everyone = evaluation_users(world, 5)
    assert 0 < len(result.users) < len(everyone)
    np.testing.assert_array_equal(result.users, everyone[counts[everyone] >= slate])
    assert np.isfinite(result.summary()["online/return_mf"])


def test_online_evaluation_gives_a_dict_policy_one_dict_per_user(env_kwargs, world):
    """Dict observations reached the policy as the dict's key names."""
    kwargs = {**env_kwargs, "obs_mode": "dict"}
    users = evaluation_users(world, 5)[:6]

    def user_vector(obs):  # "return the user vector": the MF ranking
        return obs["user"]

    returns = evaluate_online(user_vector, kwargs, "mf", users)
    np.testing.assert_allclose(returns, evaluate_online(MFRanker(world), env_kwargs, "mf", users))
