"""Every script in ``examples/`` runs end to end, offline, with its smallest budget.

Each runs as a user would run it (a fresh interpreter on the script file), with this checkout's
packages first on the module path and ``$MOVIELENS_DATA`` pointing at the session's cache.
"""

from __future__ import annotations

import ast
import csv
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TESTED = {
    "quickstart.py", "train_drr.py", "sb3_td3.py", "custom_agent.py", "vector_env.py",
    "user_models.py", "rllib_ppo.py", "torchrl_td3.py", "cleanrl_td3.py", "tianshou_td3.py",
}  # fmt: skip
NUMBER = r"[-+]?\d+\.\d+"


def _run(args: list[str], pythonpath: tuple[Path, ...] = ()) -> str:
    """Run ``python ARGS`` from the repository root; its stdout, or a failure with stderr."""
    path = os.pathsep.join(
        [*(str(p) for p in (*pythonpath, ROOT)), os.environ.get("PYTHONPATH", "")]
    )
    env = {**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stderr[-4000:]}"
    return done.stdout


def test_every_example_is_smoke_tested_and_documented():
    scripts = {path.name for path in EXAMPLES.glob("*.py")}
    assert scripts == TESTED
    for name in scripts:
        docstring = ast.get_docstring(ast.parse((EXAMPLES / name).read_text()))
        assert docstring and f"python examples/{name}" in docstring, name


def test_quickstart_plays_and_renders_one_episode():
    out = _run(["examples/quickstart.py", "--slate-size", "2", "--max-steps", "3", "--seed", "4"])
    rewards = [float(r) for r in re.findall(rf"--- step \d+: reward ({NUMBER})", out)]
    assert len(rewards) == 3  # truncated by --max-steps, as the registered time limit does
    assert out.count("Recommended:") == 3 and out.count("\n  * ") == 3 * 2
    assert out.count("History:") == 1 + 3  # after reset, then after every step
    total = float(re.search(rf"Episode return: ({NUMBER})\n$", out).group(1))
    assert math.isfinite(total) and total == pytest.approx(sum(rewards), abs=3 * 5e-4 + 5e-4)
    assert abs(total) <= 3 * 2  # at most 1 per recommended item


def _table(out: str, columns: int) -> dict[str, list[float]]:
    rows = re.findall(rf"^(\S+/\S+)((?:\s+{NUMBER}){{{columns}}})$", out, flags=re.MULTILINE)
    return {metric: [float(v) for v in values.split()] for metric, values in rows}


def test_train_drr_trains_checkpoints_and_compares_with_popularity(tmp_path):
    out = _run(
        ["examples/train_drr.py", "--episodes", "12", "--learning-starts", "64",
         "--out", str(tmp_path)]
    )  # fmt: skip
    assert re.search(rf"episode +12: training return {NUMBER}", out)
    assert (tmp_path / "checkpoint.pt").is_file()
    assert re.search(r"^metric +drr-ave +popularity$", out, flags=re.MULTILINE)
    table = _table(out, 2)
    assert set(table) == {
        "rerank/precision@10", "rerank/ndcg@10", "full/precision@10", "full/ndcg@10",
        "online/return_mf", "online/return_oracle",
    }  # fmt: skip
    for metric, values in table.items():
        assert all(math.isfinite(v) for v in values), metric
        if not metric.startswith("online/"):
            assert all(0.0 <= v <= 1.0 for v in values), metric
    # popularity is deterministic: its full-catalogue precision is far above chance
    assert table["full/precision@10"][1] > 0.1


def test_sb3_td3_trains_and_plugs_into_the_evaluation():
    out = _run(["examples/sb3_td3.py", "--timesteps", "120", "--learning-starts", "100"])
    assert "TD3 after 120 steps" in out
    for agent in ("td3", "random"):
        line = re.search(rf"^  {agent} +(.*)$", out, flags=re.MULTILINE).group(1)
        values = dict(re.findall(rf"(\S+/\S+) ({NUMBER})", line))
        assert set(values) == {"rerank/precision@10", "full/precision@10", "online/return_mf"}
        assert 0.0 <= float(values["full/precision@10"]) <= 1.0
        assert math.isfinite(float(values["online/return_mf"]))


def test_rllib_ppo_trains_with_remote_env_runners_and_plugs_into_the_evaluation():
    pytest.importorskip(
        "ray.rllib", reason="the 'rllib' extra is not installed (pip install -e '.[rllib]')"
    )
    out = _run(["examples/rllib_ppo.py", "--iterations", "1", "--batch", "200"])
    assert "iteration 1: 200" in out  # sampled by the remote env runner
    assert "RLlib PPO after 1 iteration(s)" in out
    for agent in ("ppo", "random"):
        line = re.search(rf"^  {agent} +(.*)$", out, flags=re.MULTILINE).group(1)
        values = dict(re.findall(rf"(\S+/\S+) ({NUMBER})", line))
        assert set(values) == {"rerank/precision@10", "full/precision@10", "online/return_mf"}
        assert math.isfinite(float(values["online/return_mf"]))


def test_cleanrl_style_td3_trains_from_final_observations_and_plugs_into_the_evaluation():
    out = _run(["examples/cleanrl_td3.py", "--total-timesteps", "300", "--learning-starts", "200"])
    assert "100 TD3 updates on 300 steps of 2 envs" in out
    for agent in ("td3", "random"):
        line = re.search(rf"^  {agent} +(.*)$", out, flags=re.MULTILINE).group(1)
        values = dict(re.findall(rf"(\S+/\S+) ({NUMBER})", line))
        assert math.isfinite(float(values["online/return_mf"]))


def test_the_walkthrough_notebook_runs_top_to_bottom():
    pytest.importorskip("nbclient", reason="executing notebooks needs nbclient (the dev extra)")
    code = (
        "import os, nbclient, nbformat\n"
        "os.environ.pop('MPLBACKEND')  # the kernel's own inline figures, as in Jupyter\n"
        "nb = nbformat.read('examples/walkthrough.ipynb', as_version=4)\n"
        "nbclient.NotebookClient(nb, timeout=600, kernel_name='python3').execute()\n"
        "for cell in nb.cells:\n"
        "    for out in cell.get('outputs', []):\n"
        "        print(out.get('text', '') or '[' + out['output_type'] + ']')\n"
    )
    out = _run(["-c", code])  # a failing cell raises CellExecutionError, naming it
    for agent in ("drr-ave", "random", "popularity", "mf"):
        assert re.search(rf"^{agent} +{NUMBER} +{NUMBER} +{NUMBER}$", out, flags=re.MULTILINE)
    assert "loaded agent, trained on synthetic" in out  # and scored as the trained one
    assert out.count("[display_data]") == 3  # the rendered episode, the curves, the embeddings


CLIENTS = "the 'clients' extra is not installed (pip install -e '.[clients]')"


def test_torchrl_td3_trains_on_the_native_vector_env_and_plugs_into_the_evaluation():
    pytest.importorskip("torchrl", reason=CLIENTS)
    out = _run(["examples/torchrl_td3.py", "--frames", "400", "--updates-per-batch", "20"])
    assert "120 TD3 updates on 400 frames of 4 users at a time" in out  # across autoresets
    for agent in ("td3", "random"):
        line = re.search(rf"^  {agent} +(.*)$", out, flags=re.MULTILINE).group(1)
        values = dict(re.findall(rf"(\S+/\S+) ({NUMBER})", line))
        assert math.isfinite(float(values["online/return_mf"]))


def test_rl_zoo3_trains_with_the_projects_hyperparameters_and_enjoy_renders(tmp_path):
    pytest.importorskip("rl_zoo3", reason=CLIENTS)
    env = ["--env", "MovieLensRec-v0", "--gym-packages", "movielens_env", "--env-kwargs",
           "dataset:'synthetic'", "embedding_dim:8", "-f", str(tmp_path),
           "--num-threads", "1"]  # fmt: skip
    conf = str(EXAMPLES / "rl_zoo3" / "td3.yml")
    _run(["-m", "rl_zoo3.train", "--algo", "td3", *env, "-conf", conf, "-n", "150",
          "--eval-freq", "-1", "--seed", "0"])  # fmt: skip
    config = (tmp_path / "td3" / "MovieLensRec-v0_1" / "MovieLensRec-v0" / "config.yml").read_text()
    assert "buffer_size\n    - 100000" in config and "net_arch=[64, 64]" in config  # the file's
    out = _run(["-m", "rl_zoo3.enjoy", "--algo", "td3", *env, "--exp-id", "1", "-n", "10"])
    assert out.count("Recommended:") >= 10 and "Mean reward" in out  # rendered, as "human"


def test_tianshou_td3_trains_in_its_vector_envs_and_plugs_into_the_evaluation():
    pytest.importorskip(
        "tianshou", reason="the 'tianshou' extra is not installed (pip install -e '.[tianshou]')"
    )
    out = _run(["examples/tianshou_td3.py", "--epochs", "1", "--epoch-steps", "100"])
    assert "TD3 update steps on 300 transitions" in out
    for agent in ("td3", "random"):
        line = re.search(rf"^  {agent} +(.*)$", out, flags=re.MULTILINE).group(1)
        values = dict(re.findall(rf"(\S+/\S+) ({NUMBER})", line))
        assert math.isfinite(float(values["online/return_mf"]))


def _leaderboard_agents(path: Path) -> set[str]:
    with open(path, newline="") as handle:
        return {row["agent"] for row in csv.DictReader(handle)}


def test_custom_agent_joins_the_leaderboard(tmp_path):
    out = _run(["examples/custom_agent.py", "--out", str(tmp_path)])
    assert _leaderboard_agents(tmp_path / "leaderboard.csv") == {
        "random", "popularity", "mf", "recency-popular"
    }  # fmt: skip
    assert "| recency-popular | 1 |" in (tmp_path / "leaderboard.md").read_text()
    assert (tmp_path / "runs" / "recency-popular-seed0.json").is_file()
    row = re.search(rf"^recency-popular +1 +({NUMBER}) ", out, flags=re.MULTILINE)
    assert row and 0.0 <= float(row.group(1)) <= 1.0


def test_custom_agent_loads_as_a_cli_plugin(tmp_path):
    _run(
        ["-m", "agents.cli", "benchmark", "--plugin", "custom_agent", "--agents",
         "recency-popular", "--seeds", "0", "--out", str(tmp_path), "--no-progress"],
        pythonpath=(EXAMPLES,),
    )  # fmt: skip
    assert _leaderboard_agents(tmp_path / "leaderboard.csv") == {"recency-popular"}


def test_vector_env_steps_many_users_and_compares_with_sync():
    out = _run(["examples/vector_env.py", "--num-envs", "8", "--steps", "10"])
    assert "MovieLensRecVectorEnv: 8 users, observations (8, 1111)" in out
    mean = float(re.search(rf"mean return of one episode per user: ({NUMBER})", out).group(1))
    assert -10.0 <= mean <= 10.0  # 10 steps of rewards in [-1, 1]
    assert "episodes ended: 8 of 8" in out  # truncated after 10 steps, as registered
    native, sync = re.search(r"steps/s: native ([\d,]+), SyncVectorEnv ([\d,]+)", out).groups()
    assert int(native.replace(",", "")) > 0 and int(sync.replace(",", "")) > 0


def test_user_models_scores_a_policy_between_random_and_the_planner():
    out = _run(["examples/user_models.py", "--users", "8"])
    assert "MovieLensRec-BoredomDrift-v0: user model 'boredom+drift', 20 steps" in out
    assert "Satiation (most):" in out  # the rendered state of the user
    rows = dict(re.findall(rf"^  (\w+(?: \w+)?)\s+({NUMBER})\s+normalized", out, re.MULTILINE))
    scores = dict(re.findall(rf"^  (\w+(?: \w+)?)\s+{NUMBER}\s+normalized\s+({NUMBER})$", out,
                             re.MULTILINE))  # fmt: skip
    assert set(rows) == {"random", "greedy", "user vector", "myopic", "planner", "ceiling"}
    assert float(scores["random"]) == 0.0 and float(scores["planner"]) == 100.0
    returns = {name: float(value) for name, value in rows.items()}
    assert returns["random"] < returns["greedy"] < returns["myopic"] <= returns["planner"]
