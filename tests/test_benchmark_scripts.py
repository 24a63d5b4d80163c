"""The scripts under benchmarks/: refusals before hours of work, and no stored results lost."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def headroom():
    return _script("headroom")


@pytest.fixture(scope="module")
def throughput():
    return _script("throughput")


def _refused(script, argv, capsys) -> str:
    with pytest.raises(SystemExit) as exited:
        script.main(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


def test_headroom_checks_every_planner_and_its_options_before_measuring(headroom, tmp_path, capsys):
    """A width too wide for boredom+drift's horizon was found after boredom's hours of
    planning; --users 0 was a raw error, -1 all users but one."""
    base = ["--dataset", "synthetic", "--out", str(tmp_path / "out")]
    err = _refused(headroom, [*base, "--user-models", "boredom,boredom+drift", "--width", "4096"],
                   capsys)  # fmt: skip
    assert "width" in err and "4096" in err
    for users in ("0", "-1"):
        assert "--users must be at least 1" in _refused(headroom, [*base, "--users", users], capsys)
    assert not (tmp_path / "out").exists()


def test_headroom_reports_a_user_model_by_its_canonical_name_with_its_targets(
    headroom, tmp_path, capsys
):
    """'drift+boredom' was measured under that name, so the report left out boredom+drift's
    target verdicts (one of them missed) without a word; 'static,static' measured it twice."""
    base = ["--dataset", "synthetic", "--users", "2", "--width", "2", "--out", str(tmp_path)]
    assert "names 'static' twice" in _refused(headroom, [*base, "--user-models", "static,static"],
                                               capsys)  # fmt: skip
    assert headroom.main([*base, "--user-models", "drift+boredom"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results["per_user"]) == ["boredom+drift"]
    targets = [line for line in (tmp_path / "results.md").read_text().splitlines()
               if line.startswith("- ") and "boredom+drift" in line]  # fmt: skip
    assert len(targets) == len(headroom.TARGETS["boredom+drift"])


def test_headroom_never_replaces_another_command_s_results_without_force(
    headroom, tmp_path, capsys
):
    """--out defaulted to the ml-100k results whatever the dataset: a 2-user synthetic run
    replaced them."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"command": "python benchmarks/headroom.py"}))
    argv = ["--dataset", "synthetic", "--users", "2", "--user-models", "static", "--out", str(out)]
    assert "holds the results of another command" in _refused(headroom, argv, capsys)
    assert json.loads((out / "results.json").read_text())["command"].endswith("headroom.py")


@pytest.mark.parametrize("script", ["headroom", "throughput"])
def test_a_script_never_replaces_a_lone_report_or_writes_into_a_folder_in_use(
    script, request, tmp_path, capsys
):
    """throughput.py replaced the committed full results whatever its options; headroom.py a
    results.md of the user's, and results another run stored while it measured."""
    import fcntl

    from agents.folder_lock import LOCK_FILE

    module = request.getfixturevalue(script)
    out = tmp_path / "out"
    out.mkdir()
    argv = {"headroom": ["--dataset", "synthetic", "--users", "2", "--user-models", "static"],
            "throughput": ["--quick", "--drr-episodes", "0"]}[script]  # fmt: skip
    (out / "results.md").write_text("my notes")
    assert "without the results.json a run writes" in _refused(
        module, [*argv, "--out", str(out)], capsys
    )
    (out / "results.json").write_text(json.dumps({"command": "python another"}))
    assert "holds the results of another command" in _refused(
        module, [*argv, "--out", str(out)], capsys
    )
    with open(out / LOCK_FILE, "w") as held:  # another run measuring into it
        fcntl.flock(held, fcntl.LOCK_EX)
        assert "is in use by" in _refused(module, [*argv, "--out", str(out), "--force"], capsys)
    assert (out / "results.md").read_text() == "my notes"


def test_headroom_refuses_planning_that_would_take_many_hours(headroom, tmp_path, capsys,
                                                              monkeypatch):  # fmt: skip
    """Width 1024 on an ML-1M-sized catalogue passed every per-user check and planned for about
    10 hours, silently (the benchmark refused it); the limit is lowered here so that the small
    synthetic data stands for it."""
    from movielens_env.evaluation import references
    from movielens_env.evaluation.headroom import reference_returns

    monkeypatch.setattr(references, "MAX_PLANNER_TOTAL", 10**9)
    out = tmp_path / "out"
    err = _refused(headroom, ["--dataset", "synthetic", "--out", str(out), "--user-models",
                              "boredom", "--width", "64"], capsys)  # fmt: skip
    assert "(many hours): use a planner width of at most" in err
    assert not out.exists()
    with pytest.raises(references.ArgumentError, match="many hours"):
        reference_returns({"dataset": "synthetic", "user_model": "boredom"}, "mf", None,
                          references.BeamPlanner(128))  # fmt: skip


def test_action_space_plays_a_chosen_item_through_its_vector(tmp_path, capsys):
    """Under ``static`` myopic-mf's choice is MF's best candidate, so playing it through the
    item's vector must return what the user vector (MF's ranking) returns, step for step; a
    top-50 rerank can only tie it. Under ``boredom`` the linear policies are measured too."""
    script = _script("action_space")
    out = tmp_path / "out"
    argv = ["--dataset", "synthetic", "--user-models", "static,boredom"]
    assert script.main([*argv, "--users", "3", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["results"]
    static, boredom = results["static"], results["boredom"]
    assert static["played"]["myopic-mf by its vector"] == 1.0
    for name in ("myopic-mf by its vector", "top-50 rerank", "myopic-mf"):
        assert static["returns"][name] == pytest.approx(static["returns"]["user vector"])
    assert not any(name.startswith("linear") for name in static["returns"])
    assert {"linear c=0.5", "linear c=1", "linear c=2"} <= set(boredom["returns"])
    assert all(0.0 <= share <= 1.0 for share in boredom["played"].values())
    assert "| top-20 rerank |" in (out / "results.md").read_text()
    assert "--users must be at least 1" in _refused(script, [*argv, "--users", "0"], capsys)


def test_episode_memory_evaluates_a_refined_run_both_ways_and_refuses_an_unrefined_one(
    tmp_path, capsys
):
    from agents.drr.config import DRRConfig
    from agents.drr.train import train_drr

    env = {"dataset": "synthetic", "embedding_dim": 8, "history_len": 5,
           "mf_options": {"iterations": 2}, "user_model": "boredom"}  # fmt: skip
    small = {"hidden": 16, "batch_size": 16, "learning_starts": 16, "eval_every": 1000}
    train_drr(env, DRRConfig(**small, refine_k=4), 4, seed=0, run_dir=tmp_path / "refined")
    train_drr(env, DRRConfig(**small), 2, seed=0, run_dir=tmp_path / "plain")
    script = _script("episode_memory")
    out = tmp_path / "out"
    err = _refused(script, [str(tmp_path / "plain"), "--out", str(out)], capsys)
    assert "without refine_k has no choice to remember" in err
    assert script.main([str(tmp_path / "refined"), "--out", str(out)]) == 0
    (found,) = json.loads((out / "results.json").read_text())["results"]
    assert set(script.WAYS) <= set(found) and found[script.WAYS[0]] != found[script.WAYS[1]]
    assert "| mean over runs |" in (out / "results.md").read_text()


def test_lookahead_at_evaluation_chooses_both_ways_and_refuses_a_run_that_cannot_look_ahead(
    tmp_path, capsys
):
    from agents.drr.config import DRRConfig
    from agents.drr.train import train_drr

    env = {"dataset": "synthetic", "embedding_dim": 8, "history_len": 5,
           "mf_options": {"iterations": 2}, "user_model": "boredom+drift"}  # fmt: skip
    small = {"hidden": 16, "batch_size": 16, "learning_starts": 16, "eval_every": 1000}
    split = DRRConfig(**small, refine_k=4, critic_heads="reward+future")
    train_drr(env, split, 4, seed=0, run_dir=tmp_path / "split")
    train_drr(env, DRRConfig(**small, refine_k=4), 2, seed=0, run_dir=tmp_path / "one-head")
    script = _script("lookahead_at_evaluation")
    out = tmp_path / "out"
    err = _refused(script, [str(tmp_path / "one-head"), "--out", str(out)], capsys)
    assert "it needs refine_k > 0 and critic_heads 'reward+future'" in err
    err = _refused(script, [str(tmp_path / "split"), "--discounts", "0,1"], capsys)
    assert "--discounts: each in (0, 1]" in err
    err = _refused(script, [str(tmp_path / "split"), "--model-candidates", "1,-2"], capsys)
    assert "--model-candidates: each >= 0" in err
    argv = [str(tmp_path / "split"), "--model-candidates", "5", "--out", str(out)]
    assert "at most refine_k of them (got lookahead 0.5, refine_k 4)" in _refused(
        script, argv, capsys
    )
    argv = [str(tmp_path / "split"), "--discounts", "0.5,1", "--model-candidates", "0,4"]
    assert script.main([*argv, "--out", str(out)]) == 0
    (found,) = json.loads((out / "results.json").read_text())["results"]
    assert set(found) >= {"as trained", "lookahead 0.5", "lookahead 1"}
    assert "lookahead 1, 4 model candidates" in found
    assert found["lookahead 1"] != found["as trained"]
    assert "Mean gain over the runs: lookahead 0.5" in (out / "results.md").read_text()


def test_refine_choice_plays_as_the_evaluation_and_bounds_the_choice_by_myopic_mfs(
    tmp_path, capsys
):
    from agents.drr.config import DRRConfig
    from agents.drr.train import load_agent, train_drr
    from movielens_env.evaluation.protocols import evaluate_online, evaluation_users, heldout_env

    env = {"dataset": "synthetic", "embedding_dim": 8, "history_len": 5,
           "mf_options": {"iterations": 2}, "user_model": "boredom"}  # fmt: skip
    small = {"hidden": 16, "batch_size": 16, "learning_starts": 16, "eval_every": 1000}
    refined = DRRConfig(**small, refine_k=4, critic_heads="reward+future",
                        refine_exclude="history+shown")  # fmt: skip
    train_drr(env, refined, 4, seed=0, run_dir=tmp_path / "refined")
    train_drr(env, DRRConfig(**small), 2, seed=0, run_dir=tmp_path / "plain")
    script = _script("refine_choice")
    out = tmp_path / "out"
    err = _refused(script, [str(tmp_path / "plain"), "--out", str(out)], capsys)
    assert "without refine_k has no candidates to compare" in err
    assert "--users must be at least 1" in _refused(script, ["x", "--users", "0"], capsys)
    assert script.main([str(tmp_path / "refined"), "--users", "6", "--out", str(out)]) == 0
    (found,) = json.loads((out / "results.json").read_text())["results"]
    assert found["users"] == 6 and found["steps"] == 6 * 10
    assert found["played"] <= found["best"] and found["best_of_k"] <= found["best"]
    assert 1 <= found["rank"] <= 4 and 0 <= found["best_is_candidate"] <= 1
    assert -1 <= found["critic_corr"] <= 1 and -1 <= found["reward_head_corr"] <= 1
    # Two steps deep: the best is never below the candidates' best nor the played item's, and
    # is worth at least the one-step best (the next step adds a reward of at least -1).
    assert found["played_2step"] <= found["best_2step"] + 1e-9
    assert found["best_of_k_2step"] <= found["best_2step"] + 1e-9
    assert found["best_2step"] >= found["best"] - 1 and -1 <= found["critic_corr_2step"] <= 1
    agent, env_kwargs = load_agent(tmp_path / "refined")
    first = heldout_env(env_kwargs)
    users = evaluation_users(first.world, first.history_len, first.eligible_users)[:6]
    assert found["return"] == pytest.approx(evaluate_online(agent, env_kwargs, users=users).mean())
    assert "| best_of_k |" in (out / "results.md").read_text()


def test_planning_on_mf_reports_every_reference_and_refuses_bad_options(tmp_path, capsys):
    script = _script("planning_on_mf")
    out = tmp_path / "out"
    err = _refused(script, ["--dataset", "synthetic", "--user-models", "bordom", "--out",
                            str(out)], capsys)  # fmt: skip
    assert "unknown component 'bordom'" in err
    assert "--users must be at least 1" in _refused(script, ["--users", "0"], capsys)
    assert "width must be an integer" in _refused(script, ["--width", "0"], capsys)
    assert "--depths: expected whole numbers joined by commas, got '2,x'" in _refused(
        script, ["--depths", "2,x"], capsys
    )
    assert "depth must be an integer in [1, 4096]" in _refused(script, ["--depths", "0"], capsys)
    argv = ["--dataset", "synthetic", "--user-models", "boredom+drift", "--users", "4",
            "--width", "4", "--depths", "3", "--out", str(out)]  # fmt: skip
    assert script.main(argv) == 0
    found = json.loads((out / "results.json").read_text())["results"]["boredom+drift"]
    assert found["users"] == 4 and found["horizon"] == 20
    assert set(script.POLICIES) | {"planner-mf-depth3"} <= set(found)
    assert found["planner"][0] >= found["myopic"][0] - 1e-9  # never below myopic, by design
    report = (out / "results.md").read_text()
    assert "| boredom+drift | 20 | 4 |" in report
    assert "| myopic | myopic-mf | planner-mf-depth3 | planner-mf | planner |" in report
