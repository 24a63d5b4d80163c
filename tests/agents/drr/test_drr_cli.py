"""``movielens-rec train``, ``evaluate`` and ``recommend`` on a tiny run."""

from __future__ import annotations

import csv

from agents.cli import main

TINY = ["--set", "hidden=16", "--set", "batch_size=8", "--set", "learning_starts=8",
        "--set", "buffer_size=200", "--set", "eval_every=3", "--set", "num_envs=3"]  # fmt: skip


def test_train_evaluate_recommend(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--agent", "drr-ave", "--episodes", "6", "--seed", "0",
                 "--out", str(run), *TINY]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "Trained drr-ave for 6 episodes" in printed and "rerank/precision@10" in printed
    for name in ("checkpoint.pt", "config.json", "run.json", "learning_curve.csv",
                 "precision.png", "return.png"):  # fmt: skip
        assert (run / name).stat().st_size > 0, name
    rows = list(csv.DictReader((run / "learning_curve.csv").open()))
    assert [row["episode"] for row in rows] == ["3", "6"]

    assert main(["evaluate", str(run)]) == 0
    printed = capsys.readouterr().out
    for name in ("rerank/precision@5", "full/ndcg@10", "online/return_mf", "online/return_oracle"):
        assert name in printed

    assert main(["recommend", str(run), "--user", "1", "--k", "5"]) == 0
    printed = capsys.readouterr().out
    assert "Top 5 recommendations of drr-ave" in printed
    assert printed.count("(item ") == 5 and "Synthetic movie" in printed

    recs = tmp_path / "recs.csv"
    argv = ["recommend", str(run), "--all-test-users", "--protocol", "rerank", "--k", "10",
            "--output", str(recs)]  # fmt: skip
    assert main(argv) == 0
    lines = recs.read_text().splitlines()
    assert lines[0] == "user,item,rank" and len(lines) > 100


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["train", "--episodes", "1", "--out", str(tmp_path), "--set", "lr=1"]) == 2
    assert "expected KEY=VALUE with KEY one of" in capsys.readouterr().err
    assert main(["train", "--episodes", "1", "--out", str(tmp_path), "--set", "actor_lr=fast"]) == 2
    assert "DRRConfig.actor_lr must be a number, got 'fast'" in capsys.readouterr().err
    assert main(["train", "--episodes", "0", "--out", str(tmp_path)]) == 2
    assert "episodes must be an integer >= 1, got 0" in capsys.readouterr().err
    assert main(["recommend", str(tmp_path), "--user", "1", "--k", "0"]) == 2
    assert "--k must be >= 1, got 0" in capsys.readouterr().err
