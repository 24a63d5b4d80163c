"""``movielens-rec benchmark --quick``: both user models, every row it promises, a summary that
says what the rows mean and ends with the files; references played in worker processes are
the ones this process plays."""

from __future__ import annotations

import re
from pathlib import Path

from agents.benchmark.quick import QUICK_USER_MODELS
from agents.benchmark.runner import BenchmarkConfig, compute_references
from agents.cli import main
from movielens_env import variant_kwargs

REFERENCE_ROWS = ("random (seed 0)", "greedy (MF ranking)", "myopic (best rating now)",
                  "planner (beam search)")  # fmt: skip
AGENT_ROWS = ("random", "popularity", "mf", "drr-ave")


def test_quick_runs_both_user_models_and_ends_with_the_summary_and_its_files(tmp_path, capsys):
    out = tmp_path / "quick"
    # --quick's own settings but tiny budgets: the options given override its settings.
    argv = ["benchmark", "--quick", "--seeds", "0", "--timesteps", "60", "--planner-width", "2",
            "--env-kwargs", '{"max_episode_steps": 4}', "--jobs", "2", "--no-progress", "--out",
            str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    summary = printed[printed.index("What --quick shows: synthetic-small") :]
    assert "static (4 steps)" in summary and "boredom+drift (4 steps)" in summary
    assert "References (they read the simulator" in summary
    rows = {line.split("  ")[1]: line for line in summary.splitlines() if line.startswith("  ")}
    for name in (*REFERENCE_ROWS, *AGENT_ROWS):
        numbers = re.findall(r"-?\d+\.\d+", rows[name])
        assert len(numbers) >= 4, rows[name]  # return and normalized under both user models
    planner = re.findall(r"-?\d+\.\d+", rows["planner (beam search)"])
    assert planner[2] == "100.0" and planner[-1] == "100.0"  # the top of the normalized score
    assert summary.count("What to see:") == 1
    assert "- static: the user has no state" in summary
    assert "- boredom+drift: what the user was shown changes what they like next" in summary
    assert "drr-ave: " in summary.split("- boredom+drift:")[1]
    tail = summary.rstrip().splitlines()[-4:]
    for model, (board, plots) in zip(QUICK_USER_MODELS, zip(tail[::2], tail[1::2], strict=True),
                                     strict=True):  # fmt: skip
        assert board == f"Leaderboard ({model}): {out / model / 'leaderboard.md'}"
        paths = plots.removeprefix(f"Plots ({model}): ").split(" and ")
        assert paths and all(Path(p).is_file() and Path(p).parent == out / model for p in paths)
    assert (out / "static" / "leaderboard.md").is_file()


def test_quick_with_a_user_model_runs_that_one_only(tmp_path, capsys):
    argv = ["benchmark", "--quick", "--env-kwargs", '{"user_model": "boredom", '
            '"max_episode_steps": 3}', "--agents", "random", "--seeds", "0", "--planner-width",
            "2", "--no-progress", "--out", str(tmp_path / "q")]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "boredom (3 steps)" in printed and "static (" not in printed
    assert (tmp_path / "q" / "leaderboard.md").is_file()


def test_references_played_in_workers_are_those_played_here(tmp_path):
    options = {**variant_kwargs("boredom+drift"), "max_episode_steps": 4}
    config = BenchmarkConfig(
        dataset="synthetic-small", env_options=options, planner_width=2, out_dir=tmp_path
    )
    here = compute_references(config, "data", workers=1)
    there = compute_references(config, "data", workers=2)
    assert set(here["returns"]) == {"mf", "oracle"}  # two reward models: one per worker
    assert there["returns"] == here["returns"] and there["n_users"] == here["n_users"]
