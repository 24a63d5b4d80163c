"""The benchmark runner, the leaderboard, and the agent registry."""

from __future__ import annotations

import json
import math

import pytest

from agents import registry
from agents.baselines import RandomRanker
from agents.benchmark.leaderboard import aggregate, baseline_comparison, check_metrics, format_table
from agents.benchmark.runner import BenchmarkConfig, run_benchmark, run_path
from agents.benchmark.stats import mean_ci95
from agents.benchmark.stored import ResultsFolderError
from agents.cli import main
from agents.registry import TrainedAgent, get_agent, register_agent

# The synthetic data with small embeddings: every run takes a few seconds.
TINY_ENV = {"embedding_dim": 8, "mf_options": {"iterations": 2}}


@pytest.fixture
def scratch_registry(monkeypatch):
    """Agents registered by a test disappear after it."""
    registry.agent_names()
    monkeypatch.setattr(registry, "AGENTS", dict(registry.AGENTS))


def test_mean_and_interval_over_seeds():
    mean, half = mean_ci95([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert math.isnan(mean_ci95([5.0])[1])
    # Beyond the table, t's quantile and not the normal's (1.960 was 4% short at 31 seeds).
    from agents.benchmark.stats import t_quantile_975

    for dof, exact in ((31, 2.0395), (60, 2.0003), (120, 1.9799), (1000, 1.9623)):
        assert t_quantile_975(dof) == pytest.approx(exact, abs=2e-4)


def test_unknown_agent_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match="unknown agent 'dqn'; valid agents: random, popularity, mf"
    ):
        get_agent("dqn")


def test_unknown_metric_lists_the_valid_ones():
    assert check_metrics(["full/coverage@10", "online/return_mf"]) == [
        "full/coverage@10",
        "online/return_mf",
    ]
    with pytest.raises(ValueError, match=r"unknown metrics \['ndcg'\]; valid metrics: rerank/"):
        check_metrics(["ndcg"])


def test_tiny_benchmark_end_to_end_and_rerun_skips_finished_runs(tmp_path, scratch_registry):
    calls = []

    def counted(ctx):
        calls.append(ctx.seed)
        return TrainedAgent(RandomRanker(ctx.seed), learning_curve=[(10, 0.5), (20, 1.0)])

    register_agent("counted", counted, "a random ranker that counts its trainings", is_rl=False)
    config = BenchmarkConfig(
        dataset="synthetic", agents=("popularity", "counted", "td3"), seeds=(0, 1),
        timesteps=60, out_dir=tmp_path, env_options=TINY_ENV, references=False,
    )  # fmt: skip
    records = run_benchmark(config, progress=False)
    runs = [(r["agent"], r["seed"]) for r in records]
    assert runs == [(a, s) for a in ("popularity", "counted", "td3") for s in (0, 1)]
    assert calls == [0, 1]
    assert (tmp_path / "runs" / "td3-seed0" / "td3.zip").exists()  # SB3's own format
    stored = json.loads(run_path(tmp_path, "td3", 1).read_text())
    assert (
        stored["metrics"]["online/return_oracle"] == records[-1]["metrics"]["online/return_oracle"]
    )
    assert len(stored["learning_curve"]) == 6  # 60 steps, 10-step episodes

    again = run_benchmark(config, progress=False)
    assert calls == [0, 1] and again == records
    table = aggregate(records)
    assert table["popularity"]["rerank/precision@5"][1] == 0.0  # deterministic: no spread
    assert "counted" in format_table(table, ["rerank/ndcg@10"])


def test_interrupted_benchmark_keeps_finished_runs(tmp_path, scratch_registry):
    def crash(ctx):
        raise KeyboardInterrupt

    register_agent("crash", crash, "dies while training", is_rl=False)
    config = BenchmarkConfig(
        dataset="synthetic", agents=("random", "crash"), seeds=(0,), out_dir=tmp_path,
        env_options=TINY_ENV, references=False,
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(config, progress=False)
    assert run_path(tmp_path, "random", 0).exists()
    assert not run_path(tmp_path, "crash", 0).exists()
    assert not list((tmp_path / "runs").glob(".*"))  # no half-written result


def test_changed_settings_are_not_served_old_runs(tmp_path):
    base = BenchmarkConfig(
        dataset="synthetic", agents=("random",), seeds=(0,), out_dir=tmp_path,
        env_options=TINY_ENV, references=False,
    )  # fmt: skip
    run_benchmark(base, progress=False)
    first = run_path(tmp_path, "random", 0).stat().st_mtime_ns
    changed = BenchmarkConfig(
        dataset="synthetic", agents=("random",), seeds=(0,), out_dir=tmp_path,
        env_options={**TINY_ENV, "history_len": 5}, references=False,
    )  # fmt: skip
    with pytest.raises(ResultsFolderError, match=r"differs in env_options\)\); use another --out"):
        run_benchmark(changed, progress=False)  # another configuration's runs are never lost
    assert run_path(tmp_path, "random", 0).stat().st_mtime_ns == first
    run_benchmark(changed, progress=False, force=True)
    assert run_path(tmp_path, "random", 0).stat().st_mtime_ns != first


def test_cli_benchmark_prints_the_table_and_writes_leaderboard_and_plots(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["benchmark", "--agents", "random,popularity", "--seeds", "0,1", "--out", str(out),
            "--no-progress", "--user-model", "boredom+drift", "--planner-width", "4",
            "--env-kwargs", json.dumps({**TINY_ENV, "max_episode_steps": 6})]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "random" in printed and "popularity" in printed and "rerank/precision@5" in printed
    assert "user model 'boredom+drift', 6-step episodes" in printed
    for name in ("leaderboard.md", "leaderboard.csv", "metrics.png", "references.json"):
        assert (out / name).stat().st_size > 0
    markdown = (out / "leaderboard.md").read_text()
    assert "movielens-rec benchmark --agents random,popularity" in markdown
    assert "## Offline, `full` protocol" in markdown
    assert "| planner (beam search) |" in markdown and "normalized_mf" in markdown
    references = json.loads((out / "references.json").read_text())
    returns = references["returns"]["mf"]
    assert returns["planner"][0] >= returns["myopic"][0] > returns["greedy"][0]
    record = json.loads(run_path(out, "random", 0).read_text())
    assert record["key"]["env_options"]["user_model"] == "boredom+drift"
    expected = (
        100
        * (record["metrics"]["online/return_mf"] - returns["random"][0])
        / (returns["planner"][0] - returns["random"][0])
    )
    assert record["metrics"]["online/normalized_mf"] == pytest.approx(expected)


@pytest.mark.parametrize(
    "options, message",
    [
        (["--user-model", "bored"], "unknown component 'bored'"),
        (["--env-kwargs", "{"], "not valid JSON"),
        (["--env-kwargs", "[1]"], "must be a JSON object"),
        (["--env-kwargs", '{"bogus": 1}'], "'bogus' cannot be set here; allowed: "),
        (["--env-kwargs", '{"dataset": "ml-1m"}'], "dataset and data_dir have their own"),
        (["--env-kwargs", '{"drift_rate": 2}', "--user-model", "drift"], "drift_rate must be"),
    ],
)
def test_cli_benchmark_refuses_bad_env_options_before_any_run(tmp_path, capsys, options, message):
    argv = ["benchmark", "--agents", "random", "--out", str(tmp_path), *options]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_cli_benchmark_rejects_unknown_agents_and_metrics(tmp_path, capsys):
    assert main(["benchmark", "--agents", "random,dqn", "--out", str(tmp_path)]) == 2
    assert "unknown agent 'dqn'; valid agents:" in capsys.readouterr().err
    argv = ["benchmark", "--agents", "random", "--seeds", "0", "--out", str(tmp_path),
            "--metrics", "prec@5", "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    assert "unknown metrics ['prec@5']; valid metrics:" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before any run


def test_cli_plugin_module_registers_a_third_party_agent(tmp_path, capsys, monkeypatch):
    (tmp_path / "my_plugin.py").write_text(
        "from agents.baselines import RandomRanker\n"
        "from agents.registry import TrainedAgent, register_agent\n"
        "register_agent('plugged', lambda ctx: TrainedAgent(RandomRanker(ctx.seed)), 'x',"
        " is_rl=False, replace=True)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "AGENTS", dict(registry.AGENTS))
    argv = ["benchmark", "--plugin", "my_plugin", "--agents", "plugged", "--seeds", "0",
            "--out", str(tmp_path / "out"), "--no-progress",
            "--env-kwargs", json.dumps(TINY_ENV)]  # fmt: skip
    assert main(argv) == 0
    assert "plugged" in capsys.readouterr().out


def test_leaderboard_says_whether_an_agent_beats_popularity_and_mf():
    def record(agent, value):
        names = [
            f"{p}/{m}@{k}"
            for p in ("rerank", "full")
            for m in ("precision", "ndcg")
            for k in (5, 10)
        ]
        return {"agent": agent, "metrics": dict.fromkeys(names, value)}

    table = aggregate([record("popularity", 0.5), record("mf", 0.4), record("good", 0.6),
                       record("weak", 0.45)])  # fmt: skip
    lines = baseline_comparison(table)
    assert lines == [
        "- `good` meets the bar: above popularity on 8 and above MF on 8 of the 8 offline "
        "precision/NDCG means.",
        "- `weak` does NOT meet the bar: above popularity on 0 and above MF on 8 of the 8 offline "
        "precision/NDCG means.",
    ]


def test_a_config_file_is_what_the_benchmark_trains_and_keys_its_runs_by(tmp_path):
    from agents.cli import main
    from tests.helpers import TINY_ENV_JSON

    config = tmp_path / "td3.json"
    config.write_text(json.dumps({"net_arch": [16], "learning_starts": 20, "batch_size": 8}))
    out = tmp_path / "bench"
    argv = ["benchmark", "--agents", "td3", "--seeds", "0", "--timesteps", "40",
            "--planner-width", "2", "--out", str(out), "--no-progress",
            "--env-kwargs", TINY_ENV_JSON, "--config", f"td3={config}"]  # fmt: skip
    assert main(argv) == 0
    record = json.loads((out / "runs" / "td3-seed0.json").read_text())
    assert record["key"]["agent_config"]["net_arch"] == [16]
    assert record["key"]["agent_config"]["batch_size"] == 8
    run = json.loads((out / "runs" / "td3-seed0" / "run.json").read_text())
    assert run["config"] == record["key"]["agent_config"]


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_a_grid_without_rl_agents_leaves_no_earlier_grid_s_curves(tmp_path):
    from tests.helpers import TINY_ENV_JSON

    out = tmp_path / "bench"
    argv = ["benchmark", "--agents", "random,td3", "--seeds", "0", "--timesteps", "40",
            "--planner-width", "2", "--out", str(out), "--no-progress",
            "--env-kwargs", TINY_ENV_JSON]  # fmt: skip
    assert main(argv) == 0
    assert (out / "learning_curves.png").is_file()
    assert main([*argv[:2], "random", *argv[3:]]) == 0
    assert not (out / "learning_curves.png").exists()  # it showed td3, not in this leaderboard
    assert (out / "runs" / "td3-seed0.json").is_file()  # the stored run itself is kept


def test_a_record_keeps_a_long_learning_curve_thinned_and_a_huge_record_is_no_result(
    tmp_path, monkeypatch
):
    """Records of 60 MiB outside the grid were each read twice and checksummed before any work
    (minutes for a folder of them); a record now keeps at most 10,000 curve points."""
    from agents.benchmark import stored
    from agents.benchmark.runner import MAX_CURVE_POINTS, _thinned

    curve = [[t, float(t)] for t in range(25_000)]
    thinned = _thinned(curve)
    assert len(thinned) == MAX_CURVE_POINTS and thinned[0] == curve[0] and thinned[-1] == curve[-1]
    assert _thinned(curve[:500]) == curve[:500]
    path = tmp_path / "random-seed0.json"
    stored.write_record(path, {"agent": "random", "seed": 0, "key": {"a": 1}, "metrics": {}})
    assert stored.read_record(path, {"a": 1}).status == "reuse"
    monkeypatch.setattr(stored, "MAX_RESULT_BYTES", 50)
    found = stored.read_record(path, {"a": 1})
    assert found.status == "invalid" and "larger than" in found.reason
