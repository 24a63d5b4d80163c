"""The ``movielens-rec`` command line."""

from __future__ import annotations

from agents.cli import main


def test_rollout_prints_what_it_did(capsys):
    assert main(["rollout", "--episodes", "2", "--slate-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "MovieLensRec-v0 on synthetic-100k: 943 users" in out
    assert out.count("Episode ") == 2
    assert out.count("recommended 'Synthetic movie") == 2 * 10 * 2
    assert "Random policy, 2 episodes: mean return" in out


def test_rollout_reports_missing_data_clearly(tmp_path, capsys):
    assert main(["rollout", "--dataset", "ml-100k", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("movielens-rec: error:") and "holds no u.data" in err
