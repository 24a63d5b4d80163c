"""``movielens-rec train``, ``evaluate`` and ``recommend`` for every agent with a trained artefact,
driven from the registry: SB3 runs end to end, the benchmark's run folders, the agents refused."""

from __future__ import annotations

import csv
import json

import pytest

from agents.cli import main
from agents.config_values import parse_overrides, read_config_file
from agents.drr.config import DRRConfig
from agents.registry import trainable_agents
from agents.sb3.config import SB3Config
from tests.helpers import TINY_ENV_JSON, TINY_SB3, cli_error


@pytest.fixture(scope="module")
def td3_run(tmp_path_factory):
    """A 60-step TD3 run trained by ``movielens-rec train`` (once for the module)."""
    run = tmp_path_factory.mktemp("runs") / "td3"
    assert main(["train", "--agent", "td3", "--seed", "1", "--out", str(run), *TINY_SB3]) == 0
    return run


def test_sb3_train_evaluate_recommend(td3_run, tmp_path, capsys):
    assert sorted(p.name for p in td3_run.iterdir()) == [
        "learning_curve.csv", "run.json", "td3.zip"
    ]  # fmt: skip
    info = json.loads((td3_run / "run.json").read_text())
    assert (info["agent"], info["algorithm"], info["seed"], info["timesteps"]) == (
        "td3",
        "td3",
        1,
        60,
    )
    assert info["config"]["net_arch"] == [32] and info["config"]["batch_size"] == 16
    assert info["env_kwargs"] == {"dataset": "synthetic", **json.loads(TINY_ENV_JSON)}
    assert len(info["data"]) == 64  # the data's fingerprint, never its location
    rows = list(csv.DictReader((td3_run / "learning_curve.csv").open()))
    assert [row["timesteps"] for row in rows] == ["10", "20", "30", "40", "50", "60"]

    capsys.readouterr()
    assert main(["evaluate", str(td3_run)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"td3 from {td3_run} on synthetic (test split)")
    for name in ("rerank/precision@5", "full/ndcg@10", "online/return_mf", "online/return_oracle"):
        assert name in printed

    assert main(["recommend", str(td3_run), "--user", "1", "--k", "5"]) == 0
    printed = capsys.readouterr().out
    assert "Top 5 recommendations of td3" in printed and printed.count("(item ") == 5

    recs = tmp_path / "recs.csv"
    argv = ["recommend", str(td3_run), "--all-test-users", "--k", "3", "--output", str(recs)]
    assert main(argv) == 0
    lines = recs.read_text().splitlines()
    assert lines[0] == "user,item,rank" and len(lines) > 100


def test_train_prints_the_test_split_after_training(tmp_path, capsys):
    run = tmp_path / "sac"
    assert main(["train", "--agent", "sac", "--out", str(run), *TINY_SB3]) == 0
    printed = capsys.readouterr().out
    assert "Trained sac for 60 timesteps; test split after training:" in printed
    assert "online/return_mf" in printed and "sac.zip, run.json, learning_curve.csv" in printed


def test_evaluate_reads_the_benchmarks_run_folders(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["benchmark", "--agents", "td3", "--seeds", "0", "--timesteps", "60",
            "--planner-width", "2", "--out", str(out), "--no-progress",
            "--env-kwargs", TINY_ENV_JSON]  # fmt: skip
    assert main(argv) == 0
    record = json.loads((out / "runs" / "td3-seed0.json").read_text())
    capsys.readouterr()
    assert main(["evaluate", str(out / "runs" / "td3-seed0")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("td3 from")
    # The loaded model is the benchmark's: it scores exactly as the benchmark measured it.
    for name in ("rerank/precision@5", "online/return_mf"):
        line = next(line for line in printed.splitlines() if line.split()[0] == name)
        assert float(line.split()[1]) == pytest.approx(record["metrics"][name], abs=1e-4)
    assert main(["recommend", str(out / "runs" / "td3-seed0"), "--user", "1", "--k", "2"]) == 0


@pytest.mark.parametrize("agent", ["random", "popularity", "mf"])
def test_train_refuses_agents_without_an_artefact(tmp_path, capsys, agent):
    assert main(["train", "--agent", agent, "--out", str(tmp_path / "run")]) == 2
    err = cli_error(capsys)
    assert f"agent {agent!r} has no trained artefact to save" in err
    assert "trainable agents: ddpg, td3, sac, drr-ave, drr-u, drr-p, drr-n" in err
    assert not (tmp_path / "run").exists()


def test_every_rl_builtin_is_trainable():
    assert trainable_agents() == ["ddpg", "td3", "sac", "drr-ave", "drr-u", "drr-p", "drr-n"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--agent", "dqn"], "unknown agent 'dqn'; trainable agents: ddpg, td3"),
        (["--agent", "td3", "--episodes", "5"], "td3 trains for --timesteps, not --episodes"),
        (["--agent", "drr-u", "--timesteps", "5"], "drr-u trains for --episodes, not --timesteps"),
        (["--agent", "td3", "--timesteps", "0"], "timesteps must be an integer >= 1, got 0"),
        (["--agent", "drr-u", "--set", "state=drr-n"], "choose the state representation with"),
        (["--agent", "td3", "--set", "actor_lr=1e-3"], "KEY one of ['action_head', 'action_noise'"),
    ],
)
def test_train_options_that_do_not_fit_the_agent_are_refused(tmp_path, capsys, argv, message):
    assert main(["train", "--out", str(tmp_path / "run"), *argv]) == 2
    assert message in cli_error(capsys)
    assert not (tmp_path / "run").exists()


def test_config_file_and_set_are_read_by_the_fields_types(tmp_path, capsys):
    path = tmp_path / "sb3.json"
    path.write_text(json.dumps({"net_arch": [16, 8], "gamma": 0.5, "batch_size": 16}))
    run = tmp_path / "run"
    argv = ["train", "--agent", "ddpg", "--out", str(run), "--config", str(path), *TINY_SB3]
    assert main(argv) == 0  # TINY_SB3's --set net_arch=[32] overrides the file's
    config = json.loads((run / "run.json").read_text())["config"]
    assert (config["net_arch"], config["gamma"], config["learning_starts"]) == ([32], 0.5, 20)
    path.write_text(json.dumps({"net_arc": [16]}))
    capsys.readouterr()
    assert (
        main(["train", "--agent", "ddpg", "--out", str(tmp_path / "x"), "--config", str(path)]) == 2
    )
    assert "unknown SB3Config keys ['net_arc']" in cli_error(capsys)


def test_overrides_take_each_fields_real_type(tmp_path):
    assert parse_overrides(SB3Config, ["net_arch=[64, 32]", "gamma=0.5", "batch_size=8"]) == {
        "net_arch": (64, 32), "gamma": 0.5, "batch_size": 8,
    }  # fmt: skip
    # A str field takes the text as written, never read as JSON.
    assert parse_overrides(DRRConfig, ["state=drr-u", "hidden=64"]) == {
        "state": "drr-u", "hidden": 64,
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"SB3Config.net_arch must be a JSON list .*got '\[64,'"):
        parse_overrides(SB3Config, ["net_arch=[64,"])
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object of SB3Config fields"):
        read_config_file(SB3Config, tmp_path / "list.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON"):
        read_config_file(SB3Config, tmp_path / "bad.json")
