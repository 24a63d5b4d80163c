"""Reference policies: the planner is never below myopic and is exhaustive search when wide
enough; their plans are what the env then plays; the normalized score."""

from __future__ import annotations

import math

import numpy as np
import pytest

from movielens_env.evaluation.headroom import normalized_score, reference_returns
from movielens_env.evaluation.protocols import evaluate, evaluate_online, evaluation_users
from movielens_env.evaluation.references import BeamPlanner, MFRanker, MyopicPolicy, static_ceiling
from tests.helpers import (
    SMALL_ENV_KWARGS,
    episode_return,
    exhaustive_best,
    tiny_dataset,
    tiny_env,
    user_model_kwargs,
)

DYNAMIC = ["boredom", "drift", "boredom+drift", "boredom+drift+patience"]


@pytest.fixture(scope="module")
def tiny():
    return tiny_dataset(n_users=12, seed=1)


def _planned(policy, env, user_raw: int, horizon: int) -> float:
    env.reset(options={"user_id": user_raw})
    return episode_return(env, user_raw, policy.plan(env, horizon)[:, 0])


@pytest.mark.parametrize("user_model", DYNAMIC)
def test_a_wide_planner_is_exhaustive_search_on_a_tiny_catalogue(tiny, user_model):
    kwargs = user_model_kwargs(user_model, patience_budget=1.0, satiation_strength=1.5)
    env = tiny_env(tiny, **kwargs)
    planner = BeamPlanner(width=6 * 5 * 4, shortlist=6)  # 6 candidates, 3 steps: every sequence
    beats_myopic = 0
    for user_raw in tiny.user_ids[:6]:
        best = exhaustive_best(env, int(user_raw), 3)
        assert _planned(planner, env, int(user_raw), 3) == pytest.approx(best, abs=1e-9)
        beats_myopic += best > _planned(MyopicPolicy(), env, int(user_raw), 3) + 1e-9
    # Where a user state makes planning pay, some users must need it, or the test proves little.
    assert beats_myopic > 0 or user_model == "drift"


@pytest.mark.parametrize("user_model", ["static", *DYNAMIC])
def test_planner_is_never_below_myopic(small_dataset, user_model):
    env_kwargs = {"dataset": small_dataset, "user_model": user_model, **SMALL_ENV_KWARGS}
    users = evaluation_users(_tiny_env_world(env_kwargs), 10)[:15]
    planner = BeamPlanner(width=4, shortlist=5, search_static=True)
    myopic = evaluate_online(MyopicPolicy(), env_kwargs, users=users, max_steps=8)
    planned = evaluate_online(planner, env_kwargs, users=users, max_steps=8)
    assert (planned >= myopic - 1e-9).all()
    if user_model == "static":  # with no user state, the best step now is the best episode
        np.testing.assert_allclose(planned, myopic, atol=1e-9)


def _tiny_env_world(env_kwargs):
    from movielens_env.evaluation.protocols import heldout_env

    return heldout_env(env_kwargs).world


def test_myopic_picks_the_best_rating_now_and_greedy_the_mf_ranking(small_dataset):
    env_kwargs = {"dataset": small_dataset, "user_model": "boredom+drift", **SMALL_ENV_KWARGS}
    from movielens_env.evaluation.protocols import heldout_env

    env = heldout_env(env_kwargs)
    user_raw = int(env.world.dataset.user_ids[evaluation_users(env.world, 10)[0]])
    env.reset(options={"user_id": user_raw})
    plan = MyopicPolicy().plan(env, 5)
    env.reset(options={"user_id": user_raw})
    for slate in plan:
        candidates = env.candidate_items()
        ratings, _ = env.user_model.rate(env.user_state, candidates[None])
        assert slate[0] == candidates[np.argmax(ratings[0])]
        env.step_items(slate)
    greedy = MFRanker(env.world)
    env.reset(options={"user_id": user_raw})
    user = int(env.world.dataset.user_index(user_raw))
    candidates = env.candidate_items()
    predicted = env.world.mf.predict_user(user)[candidates]
    assert greedy.rank(user, candidates, 1)[0] == candidates[np.argmax(predicted)]


def test_reference_returns_and_their_order(small_dataset):
    env_kwargs = {
        "dataset": small_dataset, "user_model": "boredom+drift", "max_episode_steps": 6,
        **SMALL_ENV_KWARGS,
    }  # fmt: skip
    found = reference_returns(env_kwargs, "mf", planner=BeamPlanner(width=8, shortlist=10))
    returns = {name: values.mean() for name, values in found.returns.items()}
    assert set(returns) == {"greedy", "myopic", "myopic-mf", "planner", "planner-mf", "ceiling"}
    assert (found.returns["planner"] >= found.returns["myopic"] - 1e-9).all()
    # planner-mf: the same search on MF's ratings, played as an agent would be.
    planner_mf = BeamPlanner(width=8, shortlist=10, mf_ratings=True)
    np.testing.assert_allclose(
        found.returns["planner-mf"], evaluate_online(planner_mf, env_kwargs, users=found.users)
    )
    assert not np.allclose(found.returns["planner-mf"], found.returns["myopic-mf"])
    assert returns["myopic"] > returns["greedy"]  # boredom: the MF ranking repeats genres
    assert returns["myopic-mf"] > returns["greedy"]  # the state read, the log not
    assert all(found.seconds[name] >= 0 for name in ("greedy", "myopic", "planner", "planner-mf"))
    # The ceiling is the static top-6: what a user without a state gives the static MF order.
    static = {**env_kwargs, "user_model": "static"}
    greedy_static = evaluate_online(MFRanker(_tiny_env_world(static)), static, users=found.users)
    assert (found.returns["ceiling"] >= greedy_static - 1e-9).all()


def test_references_are_evaluated_online_only(small_dataset):
    env_kwargs = {"dataset": small_dataset, "user_model": "boredom", **SMALL_ENV_KWARGS}
    summary = evaluate(MyopicPolicy(), env_kwargs).summary()
    assert set(summary) == {"online/return_mf", "online/return_oracle"}


def test_static_ceiling_is_the_top_t_static_rewards(tiny):
    env = tiny_env(tiny)
    for user_raw in tiny.user_ids[:4]:
        env.reset(options={"user_id": int(user_raw)})
        candidates = env.candidate_items()
        rewards = []
        for item in candidates:
            env.reset(options={"user_id": int(user_raw)})
            rewards.append(env.step_items([item])[1])
        env.reset(options={"user_id": int(user_raw)})
        assert static_ceiling(env, 3) == pytest.approx(sum(sorted(rewards)[-3:]))


def test_normalized_score():
    assert normalized_score(5.0, 1.0, 9.0) == 50.0
    assert normalized_score(1.0, 1.0, 9.0) == 0.0 and normalized_score(9.0, 1.0, 9.0) == 100.0
    assert math.isnan(normalized_score(3.0, 2.0, 2.0))


def test_planner_arguments_are_checked():
    with pytest.raises(ValueError, match=r"width must be an integer in \[1, 4096\]"):
        BeamPlanner(width=0)


def test_myopic_on_mf_ratings_is_greedy_without_a_user_state_and_reads_the_state_with_one(
    small_dataset,
):
    """``myopic-mf`` knows what an agent can: MF's predictions and the user's state, not the
    held-out log. Without a state it is the MF ranking; with boredom it avoids what bores."""
    returns = {}
    # Under patience, long episodes of every user: where MF guesses a user leaves sooner than
    # they do (4 of 105 users here).
    for user_model, n_users, steps in (
        ("static", 30, 8),
        ("boredom", 30, 8),
        ("patience", None, 40),
    ):
        env_kwargs = {"dataset": small_dataset, "user_model": user_model, **SMALL_ENV_KWARGS}
        users = evaluation_users(_tiny_env_world(env_kwargs), 10)[:n_users]
        for name, policy in (
            ("greedy", MFRanker(_tiny_env_world(env_kwargs))),
            ("myopic-mf", MyopicPolicy(mf_ratings=True)),
            ("myopic", MyopicPolicy()),
        ):
            returns[user_model, name] = evaluate_online(
                policy, env_kwargs, users=users, max_steps=steps
            )
    np.testing.assert_allclose(returns["static", "myopic-mf"], returns["static", "greedy"])
    # Patience changes no rating, only when the user leaves, which the env decides: MF's guess
    # of it cut episodes short.
    np.testing.assert_allclose(returns["patience", "myopic-mf"], returns["patience", "greedy"])
    assert returns["static", "myopic"].mean() > returns["static", "myopic-mf"].mean()
    gain = returns["boredom", "myopic-mf"] - returns["boredom", "greedy"]
    assert gain.mean() > 0 and (gain > 1e-9).sum() > 2 * (gain < -1e-9).sum()
    assert MyopicPolicy(mf_ratings=True).name == "myopic-mf"


def test_the_planner_on_mf_ratings_plans_what_it_can_know_and_beats_myopic_mf(small_dataset):
    """``planner-mf`` searches on MF's ratings in the user's state (clipped, as the env rates):
    its plan is worth at least ``myopic-mf``'s on those ratings, it is ``myopic-mf`` where no
    state makes planning pay, and under drift it gains in the env's true rewards too."""
    from movielens_env.evaluation.protocols import heldout_env
    from movielens_env.evaluation.references import _planned_return

    planner = BeamPlanner(width=8, shortlist=10, mf_ratings=True)
    assert planner.name == "planner-mf" and BeamPlanner().name == "planner"
    env_kwargs = {"dataset": small_dataset, "user_model": "boredom+drift", **SMALL_ENV_KWARGS}
    env = heldout_env(env_kwargs)
    users = evaluation_users(env.world, 10)[:20]
    myopic_mf = MyopicPolicy(mf_ratings=True)
    for user in users[:8]:
        env.reset(options={"user_id": env.world.dataset.user_ids[user]})
        planned, myopic = planner.plan(env, 8), myopic_mf.plan(env, 8)
        assert _planned_return(env, planned, True) >= _planned_return(env, myopic, True) - 1e-9
    played = evaluate_online(planner, env_kwargs, users=users, max_steps=8)
    greedy_ones = evaluate_online(myopic_mf, env_kwargs, users=users, max_steps=8)
    assert played.mean() > greedy_ones.mean()
    static = {"dataset": small_dataset, "user_model": "static", **SMALL_ENV_KWARGS}
    np.testing.assert_allclose(
        evaluate_online(planner, static, users=users, max_steps=8),
        evaluate_online(myopic_mf, static, users=users, max_steps=8),
    )


def test_planner_mf_is_myopic_mf_on_a_static_user_and_the_planner_passed_plans_on_the_log(
    small_dataset,
):
    static = {"dataset": small_dataset, "user_model": "static", "max_episode_steps": 6,
              **SMALL_ENV_KWARGS}  # fmt: skip
    found = reference_returns(static, "mf", planner=BeamPlanner(width=8, shortlist=10))
    np.testing.assert_array_equal(found.returns["planner-mf"], found.returns["myopic-mf"])
    np.testing.assert_array_equal(found.returns["planner"], found.returns["myopic"])
    with pytest.raises(ValueError, match=r"planner must plan on the log \(mf_ratings=False\)"):
        reference_returns(static, "mf", planner=BeamPlanner(width=8, mf_ratings=True))


def test_a_receding_planner_looks_depth_steps_ahead_and_replans_each_step(small_dataset):
    """``depth`` 1 plays myopic's episode on the log (a one-step search is the best reward
    now; on MF's ratings the search's clipped ratings tie where myopic-mf ranks them
    unclipped); a depth covering the episode is the full search; a depth between is a plan of
    its own, never below myopic on the ratings it plans on."""
    from movielens_env.evaluation.protocols import heldout_env
    from movielens_env.evaluation.references import _planned_return

    env_kwargs = {"dataset": small_dataset, "user_model": "boredom+drift", **SMALL_ENV_KWARGS}
    env = heldout_env(env_kwargs)
    for mf in (True, False):
        full = BeamPlanner(width=8, shortlist=10, mf_ratings=mf)
        one = BeamPlanner(width=8, shortlist=10, mf_ratings=mf, depth=1)
        three = BeamPlanner(width=8, shortlist=10, mf_ratings=mf, depth=3)
        whole = BeamPlanner(width=8, shortlist=10, mf_ratings=mf, depth=8)
        assert three.name == ("planner-mf-depth3" if mf else "planner-depth3")
        differs = 0
        for user in evaluation_users(env.world, 10)[:6]:
            env.reset(options={"user_id": env.world.dataset.user_ids[user]})
            myopic = MyopicPolicy(mf_ratings=mf).plan(env, 8)
            if not mf:
                np.testing.assert_array_equal(one.plan(env, 8), myopic)
            np.testing.assert_array_equal(whole.plan(env, 8), full.plan(env, 8))
            planned = three.plan(env, 8)
            assert planned.shape == (8, 1) and len(np.unique(planned)) == 8
            assert _planned_return(env, planned, mf) >= _planned_return(env, myopic, mf) - 1e-9
            differs += not np.array_equal(planned, myopic)
        assert differs > 0  # under drift, looking 3 steps ahead changes some episodes
    with pytest.raises(ValueError, match=r"BeamPlanner depth must be an integer in \[1, 4096\]"):
        BeamPlanner(depth=0)


def test_two_step_rewards_are_the_reward_now_plus_the_best_next_after_it(small_dataset):
    from movielens_env.evaluation.protocols import heldout_env
    from movielens_env.evaluation.references import _planned_return, two_step_rewards

    env_kwargs = {"dataset": small_dataset, "user_model": "boredom+drift", **SMALL_ENV_KWARGS}
    env = heldout_env(env_kwargs)
    user = evaluation_users(env.world, 10)[0]
    env.reset(options={"user_id": env.world.dataset.user_ids[user]})
    items = env.candidate_items()[:12]
    found = two_step_rewards(env, items, mf_ratings=True)
    for item, value in zip(items, found, strict=True):  # every second item, by brute force
        best = max(
            _planned_return(env, np.array([[item], [other]]), True)
            for other in env.candidate_items() if other != item
        )  # fmt: skip
        assert value == pytest.approx(best)
