"""Misuse, as a user would commit it: each case asserts the clear error (one line, exit status 2
from the CLI), and that nothing was lost, nothing silently wrong, nothing cached.

One module, so that the next audit extends it; grouped by the classes of the audit that filed
it: data loss, silently wrong results, settings misread, unclear errors.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.benchmark.stored import InvalidRecordWarning, check_run
from agents.cli import main as cli_main
from agents.drr.config import DRRConfig
from agents.drr.train import load_agent
from agents.fields import ConfigError
from agents.folder_lock import LOCK_FILE
from movielens_env import storage
from tests.helpers import TINY_SB3, last_wins, write_ml100k


def main(argv: list[str]) -> int:
    """The CLI on ``argv`` with its defaults overridden where a test gives an option again
    (the CLI refuses a repeat: see the pass-28 tests)."""
    return cli_main(last_wins(argv))


SMALL_ENV = json.dumps({"embedding_dim": 8, "mf_options": {"iterations": 2}})
TINY_DRR = ["--set", "hidden=16", "--set", "batch_size=8", "--set", "learning_starts=8",
            "--set", "buffer_size=200", "--set", "eval_every=1000", "--set", "num_envs=2",
            "--env-kwargs", SMALL_ENV]  # fmt: skip


def _train(run, *extra: str) -> list[str]:
    return ["train", "--episodes", "4", "--out", str(run), *_tiny(TINY_DRR, extra), *extra]


def _train_sb3(run, *extra: str) -> list[str]:
    return ["train", "--agent", "td3", "--out", str(run), *_tiny(TINY_SB3, extra), *extra]


def _tiny(settings: list[str], extra: tuple[str, ...]) -> list[str]:
    """The tiny ``--set`` pairs, less those ``extra`` sets again (a key may be given once)."""
    again = {extra[i + 1].split("=")[0] for i, arg in enumerate(extra[:-1]) if arg == "--set"}
    kept: list[str] = []
    for option, value in zip(settings[::2], settings[1::2], strict=True):
        if not (option == "--set" and value.split("=")[0] in again):
            kept += [option, value]
    return kept


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("movielens-rec: error: ") and err.count("\n") == 1, err
    return err


def _copy(run, to):
    """A copy of a run folder, to damage without touching the shared one."""
    to.mkdir()
    for path in run.iterdir():
        (to / path.name).write_bytes(path.read_bytes())
    return to


def _reseal(run, model="checkpoint.pt"):
    """Record the (edited) model's digest in ``run.json``, as one crafting both would: the
    checks past the digest are then what is tested."""
    info = json.loads((run / "run.json").read_text())
    del info["checksum"]
    info["model_sha256"] = storage.file_sha256(run / model)
    (run / "run.json").write_text(json.dumps({**info, "checksum": storage.checksum(info)}))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 4-episode DRR run (trained once for the module)."""
    run = tmp_path_factory.mktemp("runs") / "drr"
    assert main(_train(run)) == 0
    return run


# --------------------------------------------------------------------------- data loss
def test_train_into_a_finished_run_is_refused_and_the_run_kept(finished_run, capsys):
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in finished_run.iterdir()}
    assert main(_train(finished_run)) == 2
    err = _error(capsys)
    assert "already holds a run (run.json" in err and "--resume" in err and "--force" in err
    assert {p.name: p.read_bytes() for p in finished_run.iterdir()} == before


def test_force_replaces_a_run_and_resume_continues_it(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "copy")
    # --resume takes the run's own config, seed and env: --out and --episodes are enough.
    assert main(["train", "--resume", "--out", str(run), "--episodes", "6"]) == 0
    assert json.loads((run / "run.json").read_text())["episodes"] == 6
    assert load_agent(run)[0].episodes == 6
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run), "--episodes", "5"]) == 2
    assert "already holds 6 episodes; --episodes is the run's total" in _error(capsys)
    assert main(["train", "--resume", "--out", str(run), "--episodes", "8", "--seed", "3"]) == 2
    assert "another config or seed" in _error(capsys)
    assert main(["train", "--resume", "--out", str(run), "--episodes", "8",
                 "--dataset", "synthetic-1m"]) == 2  # fmt: skip
    assert "made on another env" in _error(capsys)
    assert main(_train(run, "--force")) == 0
    assert load_agent(run)[0].episodes == 4  # replaced by a new 4-episode run


def test_resume_without_a_checkpoint_is_refused(tmp_path, capsys):
    assert main(["train", "--resume", "--out", str(tmp_path / "empty"), "--episodes", "2"]) == 2
    assert "nothing to resume" in _error(capsys)
    assert not (tmp_path / "empty").exists()
    assert main(_train(tmp_path / "x", "--resume", "--force")) == 2
    assert "exclude each other" in _error(capsys)


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    assert main(_train(target)) == 2
    assert "is a file; a folder is needed there" in _error(capsys)
    assert target.read_text() == "keep me"


# --------------------------------------------------------------------------- one source of truth
def test_an_edited_config_json_is_refused(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "edited")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "hidden": 512}))
    assert main(["evaluate", str(run)]) == 2
    assert "config.json disagrees with the config stored in checkpoint.pt" in _error(capsys)
    (run / "config.json").write_text("garbage")
    assert main(["evaluate", str(run)]) == 2
    assert "config.json: unreadable" in _error(capsys)


def test_a_checkpoint_does_not_say_where_data_and_caches_live(finished_run, tmp_path):
    payload = torch.load(finished_run / "checkpoint.pt", weights_only=True)
    assert "data_dir" not in payload["env_kwargs"]  # not recorded
    crafted = _copy(finished_run, tmp_path / "crafted")
    payload["env_kwargs"].update(cache_dir=str(tmp_path / "elsewhere"), download=True)
    torch.save(payload, crafted / "checkpoint.pt")
    _, env_kwargs = load_agent(crafted)
    assert "cache_dir" not in env_kwargs and "download" not in env_kwargs  # not followed
    _reseal(crafted)  # crafted with its record
    assert main(["evaluate", str(crafted)]) == 0
    assert not (tmp_path / "elsewhere").exists()


def test_a_checkpoint_missing_keys_or_with_wrong_shapes_is_refused(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "damaged")
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    payload["obs_dim"] = payload["obs_dim"] + 3
    torch.save(payload, run / "checkpoint.pt")
    _reseal(run)  # the digest is checked first: the checks past it are tested here
    assert main(["evaluate", str(run)]) == 2
    assert "do not fit its own config" in _error(capsys)
    del payload["agent"]
    torch.save(payload, run / "checkpoint.pt")
    _reseal(run)
    assert main(["recommend", str(run), "--user", "1"]) == 2
    assert "incomplete" in _error(capsys)


def test_a_run_evaluated_or_resumed_on_other_ratings_is_refused(two_catalogues, tmp_path, capsys):
    first, second = two_catalogues
    run = tmp_path / "on-a"
    assert main(_train(run, "--dataset", "ml-100k", "--data-dir", str(first))) == 0
    before = (run / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data-dir", str(second)]) == 2
    assert "the agent was trained on other ratings than those found now" in _error(capsys)
    assert main([*_train(run, "--data-dir", str(second), "--resume"), "--episodes", "6"]) == 2
    assert "the checkpoint was trained on other ratings" in _error(capsys)
    assert (run / "checkpoint.pt").read_bytes() == before
    assert main(["evaluate", str(run), "--data-dir", str(first)]) == 0


def test_a_checkpoint_whose_env_arguments_give_another_env_is_refused(
    finished_run, tmp_path, capsys
):
    run = _copy(finished_run, tmp_path / "other-env")
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    payload["env_kwargs"]["history_len"] = 4
    torch.save(payload, run / "checkpoint.pt")
    _reseal(run)  # the digest is checked first: the check past it is tested here
    capsys.readouterr()
    assert main(["recommend", str(run), "--user", "1"]) == 2
    assert "the agent was trained for" in _error(capsys)


def test_a_checkpoint_the_unpickler_chokes_on_is_refused(finished_run, tmp_path, monkeypatch):
    # Damaged bytes make torch's unpickler raise whatever its internals meet (KeyError: 101
    # was seen); every such failure is the same clear refusal.
    from agents.drr import checkpoint
    from agents.drr.checkpoint import CheckpointError

    def damaged(*args, **kwargs):
        raise KeyError(101)

    monkeypatch.setattr(checkpoint.torch, "load", damaged)
    with pytest.raises(CheckpointError, match="unreadable, corrupted"):
        checkpoint.load_checkpoint(finished_run)


def test_load_agent_takes_only_where_data_lives(finished_run):
    with pytest.raises(ValueError, match=r"only where data and caches live.*history_len"):
        load_agent(finished_run, history_len=3)


# --------------------------------------------------------------------------- settings misread
@pytest.mark.parametrize(
    "setting, message",
    [
        ("per_alpha=-5", "DRRConfig.per_alpha must be a number in [0, 1], got -5"),
        ('hidden="64"', "DRRConfig.hidden must be an integer in [1, 8192], got '64'"),
        ("hidden=64.5", "DRRConfig.hidden must be an integer"),
        ("hidden=[64]", "DRRConfig.hidden must be an integer"),
        ("buffer_size=1e11", "DRRConfig.buffer_size must be an integer in [1, 10,000,000]"),
        ("num_envs=100000", "DRRConfig.num_envs must be an integer in [1, 1024], got 100000"),
        ("gamma=1", "DRRConfig.gamma must be a number in [0, 1)"),
        # each within its bounds, together seconds per gradient step (the batch is 8)
        ("hidden=8192", "DRRConfig: one gradient step (batch_size 8, hidden layers [8192, 8192], "
         "0 inputs) costs 536,870,912 multiply-adds per network, beyond 268,435,456"),
    ],
)  # fmt: skip
def test_config_values_of_the_wrong_type_or_range_are_named(tmp_path, capsys, setting, message):
    assert main(_train(tmp_path / "run", "--set", setting)) == 2
    assert message in _error(capsys)
    assert not (tmp_path / "run").exists()


def test_a_negative_zero_is_read_as_zero():
    from agents.sb3.config import SB3Config

    assert math.copysign(1.0, DRRConfig(noise_std=-0.0).noise_std) == 1.0
    assert math.copysign(1.0, SB3Config(action_noise=-0.0).action_noise) == 1.0


@pytest.mark.parametrize(
    "train, extra, message",
    [  # each field within its bounds; together minutes per batch, or a network of GB
        (_train, ["--set", "hidden=64", "--set", "batch_size=65536", "--set",
                  "learning_starts=65536", "--set", "buffer_size=65536"],
         "one gradient step (batch_size 65536, hidden layers [64, 64], 36 inputs) costs"),
        (_train, ["--set", "hidden=128", "--set", "batch_size=4096", "--set",
                  "learning_starts=4096", "--set", "num_envs=1024"],
         "1,024 gradient steps per collected batch"),
        (_train, ["--agent", "drr-p", "--set", "hidden=1024", "--env-kwargs",
                  '{"embedding_dim": 8, "mf_options": {"iterations": 2}, "history_len": 150}'],
         "a network of hidden layers [1024, 1024] on 101,934 inputs holds"),
        (_train_sb3, ["--set", "batch_size=65536", "--set", "gradient_steps=1024"],
         "SB3Config: 1,024 gradient steps per collected batch"),
        # each layer within bounds and cheap alone; 16 of them, seconds a step or 50 GB
        (_train_sb3, ["--set", f"net_arch={[1350] * 16}"],
         "SB3Config: one gradient step (batch_size 16"),
        (_train_sb3, ["--set", "batch_size=1", "--set", f"net_arch={[8000] * 16}"],
         "SB3Config: a network of hidden layers [8000, 8000,"),
    ],
)  # fmt: skip
def test_networks_too_slow_or_large_to_train_are_refused_before_training(
    tmp_path, capsys, train, extra, message
):
    assert main(train(tmp_path / "run", *extra)) == 2
    assert message in _error(capsys)
    assert not (tmp_path / "run").exists()


def test_a_replay_larger_than_memory_is_refused_before_training(monkeypatch):
    from agents.drr import agent as agent_module

    monkeypatch.setattr(storage, "available_memory", lambda: 2**30)
    with pytest.raises(ConfigError, match=r"buffer_size=1,000,000 .*needs .* GiB .* use at most"):
        agent_module.DRRAgent(DRRConfig(buffer_size=1_000_000), 101, 10, seed=0, obs_dim=1111)


def test_recommend_refuses_an_agent_whose_weights_are_nan(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "nan")
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    for name in list(payload["agent"]["actor"]):
        payload["agent"]["actor"][name] = torch.full_like(payload["agent"]["actor"][name], np.nan)
    torch.save(payload, run / "checkpoint.pt")
    _reseal(run)  # as a run that diverged would have it
    capsys.readouterr()
    assert main(["recommend", str(run), "--user", "1", "--k", "3"]) == 2
    assert "NaN or inf" in _error(capsys)
    assert main(["evaluate", str(run)]) == 2
    assert "NaN or inf" in _error(capsys)


# --------------------------------------------------------------------------- SB3 runs
@pytest.fixture(scope="module")
def finished_sb3_run(tmp_path_factory):
    """A finished 60-step TD3 run (trained once for the module)."""
    run = tmp_path_factory.mktemp("runs") / "td3"
    assert main(_train_sb3(run)) == 0
    return run


def test_train_into_a_folder_holding_an_sb3_run_is_refused_and_the_run_kept(
    finished_sb3_run, tmp_path, capsys
):
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in finished_sb3_run.iterdir()}
    assert main(_train_sb3(finished_sb3_run)) == 2
    assert "already holds a run (run.json" in _error(capsys)
    assert main(_train(finished_sb3_run)) == 2  # nor a DRR run over it
    assert "already holds a run (run.json" in _error(capsys)
    assert main(_train_sb3(finished_sb3_run, "--resume")) == 2
    assert "td3 runs cannot be resumed" in _error(capsys)
    assert {p.name: p.read_bytes() for p in finished_sb3_run.iterdir()} == before
    run = _copy(finished_sb3_run, tmp_path / "copy")
    assert main(_train(run, "--force")) == 0  # --force replaces it, whichever agent's
    assert not (run / "td3.zip").exists() and (run / "checkpoint.pt").exists()
    assert json.loads((run / "run.json").read_text())["agent"] == "drr-ave"


@pytest.mark.parametrize(
    "setting, message",
    [
        ("learning_rate=0", "SB3Config.learning_rate must be a number in (0, 1], got 0"),
        ('batch_size="16"', "SB3Config.batch_size must be an integer in [1, 65,536], got '16'"),
        ("batch_size=16.5", "SB3Config.batch_size must be an integer"),
        ("buffer_size=1e11", "SB3Config.buffer_size must be an integer in [1, 10,000,000]"),
        ("gamma=1", "SB3Config.gamma must be a number in [0, 1), got 1"),
        ("tau=0", "SB3Config.tau must be a number in (0, 1], got 0"),
        ("train_freq=0", "SB3Config.train_freq must be an integer in [1, 1,000,000], got 0"),
        ("gradient_steps=-1", "SB3Config.gradient_steps must be an integer in [1, 1024]"),
        ("learning_starts=-5", "SB3Config.learning_starts must be an integer in [0, "),
        ("action_noise=-0.1", "SB3Config.action_noise must be a number in [0, 10], got -0.1"),
        (
            "net_arch=64",
            "SB3Config.net_arch must be a list of 1 to 16 entries, each an integer "
            "in [1, 8192], got 64",
        ),
        ("net_arch=[64,0]", "SB3Config.net_arch must be a list of 1 to 16 entries"),
        ("net_arch=[]", "SB3Config.net_arch must be a list of 1 to 16 entries"),
        ('net_arch=["64"]', "SB3Config.net_arch must be a list of 1 to 16 entries"),
        ("net_arch=[64,", "SB3Config.net_arch must be a JSON list such as [64, 64], got '[64,'"),
        ("learning_rate=fast", "SB3Config.learning_rate must be a number, got 'fast'"),
        (
            "net_arch=[8192,8192]",
            "SB3Config: one gradient step (batch_size 16, hidden layers [8192, 8192], 0 "
            "inputs) costs 1,073,741,824 multiply-adds",
        ),
    ],
)
def test_sb3_config_values_of_the_wrong_type_or_range_are_named(tmp_path, capsys, setting, message):
    assert main(_train_sb3(tmp_path / "run", "--set", setting)) == 2
    assert message in _error(capsys)
    assert not (tmp_path / "run").exists()


def test_an_sb3_replay_larger_than_memory_is_refused_before_training(tmp_path, monkeypatch, capsys):

    monkeypatch.setattr(storage, "available_memory", lambda: 2**20)
    assert main(_train_sb3(tmp_path / "run", "--set", "buffer_size=100000")) == 2
    assert re.search(r"SB3Config.buffer_size=100,000 .*needs .* GiB .* use at most", _error(capsys))
    assert not (tmp_path / "run").exists()


def test_an_sb3_run_evaluated_on_other_ratings_is_refused(two_catalogues, tmp_path, capsys):
    first, second = two_catalogues
    run = tmp_path / "on-a"
    assert main(_train_sb3(run, "--dataset", "ml-100k", "--data-dir", str(first))) == 0
    assert "data_dir" not in json.loads((run / "run.json").read_text())["env_kwargs"]
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data-dir", str(second)]) == 2
    assert "the agent was trained on other ratings than those found now" in _error(capsys)
    assert main(["recommend", str(run), "--user", "1", "--data-dir", str(second)]) == 2
    assert "trained on other ratings" in _error(capsys)
    assert main(["evaluate", str(run), "--data-dir", str(first)]) == 0


def test_an_sb3_run_does_not_follow_a_recorded_data_location(finished_sb3_run, tmp_path):
    from agents.sb3.artefact import load_run

    crafted = _copy(finished_sb3_run, tmp_path / "crafted")
    env_kwargs = json.loads((crafted / "run.json").read_text())["env_kwargs"]
    env_kwargs.update(cache_dir=str(tmp_path / "elsewhere"), download=True)
    _edit_run_json(crafted, env_kwargs=env_kwargs)
    _, env_kwargs = load_run(crafted)
    assert "cache_dir" not in env_kwargs and "download" not in env_kwargs
    assert main(["evaluate", str(crafted)]) == 0
    assert not (tmp_path / "elsewhere").exists()
    with pytest.raises(ValueError, match=r"only where data and caches live.*history_len"):
        load_run(crafted, history_len=3)


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda run: (
                (run / "td3.zip").write_bytes(b"PK\x03\x04 not a zip"),
                _reseal(run, "td3.zip"),
            ),
            "td3.zip: unreadable, damaged, or not the weights of this run's td3",
        ),
        (
            lambda run: (run / "td3.zip").write_bytes(b"PK\x03\x04 not a zip"),
            "td3.zip is not the model this run trained (its SHA-256 differs",
        ),
        (lambda run: (run / "td3.zip").unlink(), "td3.zip: missing"),
        (lambda run: (run / "run.json").write_text("{"), "run.json: unreadable"),
        (lambda run: _edit_run_json(run, model="../../elsewhere.zip"), "not a run of an SB3"),
        (lambda run: _edit_run_json(run, algorithm="ppo"), "not a run of an SB3 agent"),
        (lambda run: _edit_run_json(run, config={"gamma": 2}), "SB3Config.gamma must be"),
        (lambda run: _edit_run_json(run, agent="nobody"), "names agent 'nobody', which is not"),
        (lambda run: _edit_run_json(run, dim=3), "the agent was trained for {'dim': 3"),
        (
            lambda run: _edit_run_json(
                run, env_kwargs={"dataset": "synthetic", "history_len": 4, "embedding_dim": 8}
            ),
            "the agent was trained for",
        ),
    ],
)
def test_a_damaged_sb3_run_is_refused_in_one_line(
    finished_sb3_run, tmp_path, capsys, damage, message
):
    run = _copy(finished_sb3_run, tmp_path / "damaged")
    damage(run)
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    assert message in _error(capsys)


def _edit_run_json(run, **changes):
    """A crafted run.json: edited, then given a matching checksum (so the checks behind the
    checksum are what is tested)."""
    path = run / "run.json"
    info = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps({**info, "checksum": storage.checksum(info)}))


def test_a_run_json_edited_by_hand_is_refused(finished_sb3_run, tmp_path, capsys):
    run = _copy(finished_sb3_run, tmp_path / "edited")
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "agent": "ddpg"}))
    assert main(["evaluate", str(run)]) == 2
    assert "run.json was edited (its checksum no longer matches)" in _error(capsys)


def test_evaluate_of_a_folder_without_a_run_names_it(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "holds no run (no run.json naming its agent, no checkpoint.pt)" in _error(capsys)
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "missing: no such folder" in _error(capsys)


# --------------------------------------------------------------------------- the benchmark
def _bench(out, data_dir, *extra: str) -> list[str]:
    return ["benchmark", "--dataset", "ml-100k", "--data-dir", str(data_dir), "--agents",
            "popularity,random", "--seeds", "0", "--out", str(out), "--no-progress",
            "--planner-width", "2", "--env-kwargs", SMALL_ENV, *extra]  # fmt: skip


@pytest.fixture(scope="module")
def two_catalogues(tmp_path_factory):
    """Two ml-100k-format folders with different ratings."""
    root = tmp_path_factory.mktemp("catalogues")
    write_ml100k(root / "a" / "ml-100k", seed=4)
    write_ml100k(root / "b" / "ml-100k", seed=5)
    return root / "a" / "ml-100k", root / "b" / "ml-100k"


def test_other_data_into_the_same_results_folder_is_not_served_old_numbers(
    two_catalogues, tmp_path, capsys
):
    first, second = two_catalogues
    out = tmp_path / "bench"
    assert main(_bench(out, first)) == 0
    stored = json.loads((out / "runs" / "popularity-seed0.json").read_text())
    capsys.readouterr()
    assert main(_bench(out, second)) == 2  # the key covers the data itself, not its name
    err = _error(capsys)
    assert "holds results of another configuration" in err and "differs in data" in err
    assert json.loads((out / "runs" / "popularity-seed0.json").read_text()) == stored
    assert main(_bench(out, second, "--force")) == 0
    replaced = json.loads((out / "runs" / "popularity-seed0.json").read_text())
    assert replaced["key"]["data"] != stored["key"]["data"]
    assert replaced["metrics"] != stored["metrics"]


def test_the_leaderboard_is_written_under_the_folder_s_lock(two_catalogues, tmp_path, monkeypatch):
    """A second benchmark into the folder could otherwise replace the runs between storing them
    and writing the leaderboard from them."""
    from agents.benchmark import leaderboard

    out, held = tmp_path / "bench", []
    write = leaderboard.write_leaderboard

    def watched(*args, **kwargs):
        held.append((out / LOCK_FILE).exists())  # the lock file lives only while it is held
        return write(*args, **kwargs)

    monkeypatch.setattr(leaderboard, "write_leaderboard", watched)
    assert main(_bench(out, two_catalogues[0])) == 0
    assert held == [True] and not (out / LOCK_FILE).exists()


def test_a_leaderboard_over_few_test_users_says_so(tmp_path, capsys):
    write_ml100k(tmp_path / "ml-100k", n_users=12)
    out = tmp_path / "bench"
    assert main(_bench(out, tmp_path / "ml-100k")) == 0
    err = capsys.readouterr().err
    found = re.search(r"warning: only (\d+) test users evaluated: the numbers describe them", err)
    assert found and int(found[1]) <= 12
    assert f"Warning: only {found[1]} test users evaluated" in (out / "leaderboard.md").read_text()


@pytest.mark.parametrize("name", ["leaderboard.csv", "references.json"])
def test_a_folder_that_is_not_a_results_folder_keeps_its_files(
    two_catalogues, tmp_path, capsys, name
):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / name).write_text("my precious data")
    assert main(_bench(mine, two_catalogues[0])) == 2
    err = _error(capsys)
    assert (
        f"is not a benchmark's results folder but holds {name}, which a benchmark would "
        "overwrite" in err
    )
    assert (mine / name).read_text() == "my precious data"
    assert not (mine / "runs").exists()


def test_changed_genres_or_planner_width_are_not_served_old_numbers(
    two_catalogues, tmp_path, capsys
):
    first, _ = two_catalogues
    out = tmp_path / "bench"
    boredom = ["--user-model", "boredom"]
    assert main(_bench(out, first, *boredom)) == 0
    stored = json.loads((out / "runs" / "popularity-seed0.json").read_text())
    assert main(_bench(out, first, *boredom, "--planner-width", "1")) == 2
    assert "differs in references" in _error(capsys)
    drama = tmp_path / "drama" / "ml-100k"
    drama.mkdir(parents=True)
    (drama / "u.data").write_bytes((first / "u.data").read_bytes())
    lines = (first / "u.item").read_text(encoding="latin-1").splitlines()
    only_drama = "|".join("1" if g == 8 else "0" for g in range(19))  # flag 8 is Drama
    rows = ["|".join(line.split("|")[:5]) + "|" + only_drama for line in lines]
    (drama / "u.item").write_text("\n".join(rows) + "\n", encoding="latin-1")
    assert main(_bench(out, drama, *boredom)) == 2  # same ratings, other genres
    assert "differs in data" in _error(capsys)
    assert json.loads((out / "runs" / "popularity-seed0.json").read_text()) == stored


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda r: {**r, "agent": "random"}, "its content does not match its checksum"),
        (lambda r: {**r, "metrics": {**r["metrics"], "rerank/precision@5": 0.99}}, "checksum"),
        (lambda r: "[]", "not a result record"),
        (lambda r: "{", "unreadable"),
    ],
)
def test_stored_runs_that_cannot_be_trusted_are_recomputed(
    two_catalogues, tmp_path, damage, reason
):
    out = tmp_path / "bench"
    assert main(_bench(out, two_catalogues[0])) == 0
    path = out / "runs" / "popularity-seed0.json"
    good = json.loads(path.read_text())
    damaged = damage(good)
    path.write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))
    with pytest.warns(InvalidRecordWarning, match=reason):
        assert main(_bench(out, two_catalogues[0])) == 0
    recomputed = json.loads(path.read_text())
    assert recomputed["metrics"] == good["metrics"] and recomputed["agent"] == "popularity"
    # It may have been a user's own file of that name: it is kept aside, never overwritten.
    kept = path.with_name("popularity-seed0.json.invalid").read_text()
    assert kept == (damaged if isinstance(damaged, str) else json.dumps(damaged))


@pytest.mark.parametrize(
    "record, reason",
    [
        ({"agent": "random", "seed": 0}, "it names agent 'random'"),
        ({"metrics": {"rerank/precision@5": float("nan")}}, "is NaN"),
        ({"metrics": {"rerank/precision@5": "0.9"}}, "not a number"),
        ({"metrics": {"full/ndcg@10": 1.7}}, "outside [0, 1]"),
        ({"metrics": {}}, "no metrics"),
    ],
)
def test_a_well_formed_record_with_impossible_content_is_refused(record, reason):
    base = {"agent": "popularity", "seed": 0, "n_users": 5, "metrics": {"online/return_mf": 1.0}}
    assert reason in check_run({**base, **record}, "popularity", 0)
    assert check_run(base, "popularity", 0) == ""


@pytest.mark.parametrize(
    "options, message",
    [
        (["--timesteps", "0"], "timesteps must be an integer >= 1, got 0"),
        (["--timesteps", "-5"], "timesteps must be an integer >= 1, got -5"),
        (["--agents", ""], "--agents '': give comma-separated names"),
        (["--agents", "random,,mf"], "none of them empty"),
        (["--seeds", ""], "--seeds '': give comma-separated integers >= 0"),
        (["--seeds", "0,x"], "--seeds '0,x': give comma-separated integers >= 0"),
        (["--seeds", "-1"], "each of seeds must be an integer in [0, 4,294,967,295], got -1"),
        (["--agents", "random,random"], "agents name ['random'] more than once"),
        (["--seeds", "0,0"], "seeds name [0] more than once"),
        (["--planner-width", "0"], "planner_width must be an integer >= 1"),
    ],
)
def test_benchmark_settings_are_read_as_written_or_refused(tmp_path, capsys, options, message):
    argv = ["benchmark", "--agents", "random", "--out", str(tmp_path / "out"), *options]
    assert main(argv) == 2
    assert message in _error(capsys)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- data files
def _ml25m_like(folder, ratings: str, movies: str = "movieId,title,genres\n1,A (1995),Drama\n"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text(ratings)
    (folder / "movies.csv").write_text(movies)
    return folder


@pytest.mark.parametrize(
    "ratings, message",
    [
        ("1,1,4.0,978300760\n2,1,3.0,978300761\n",  # the header forgotten
         "ratings.csv:1: expected the header 'userId,movieId,rating,timestamp', found '1,1,4.0"),
        ("user,movie,rating,time\n1,1,4.0,978300760\n", "expected the header"),
        ("userId,movieId,rating,timestamp\n1,12345678901234567890,4.0,978300760\n",
         "ratings.csv:2: item must be an integer in [0, 2**53)"),
        ("userId,movieId,rating,timestamp\n1,1,4.0,99999999999999999999\n",
         "ratings.csv:2: timestamp must be an integer in (-2**53, 2**53)"),
    ],
)  # fmt: skip
def test_grouplens_files_that_would_be_misread_are_refused_by_line(tmp_path, ratings, message):
    from movielens_env import DataFormatError, load_dataset

    folder = _ml25m_like(tmp_path / "ml-latest-small", ratings)
    with pytest.raises(DataFormatError, match=re.escape(message)):
        load_dataset("ml-latest-small", folder, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "prepared").exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda line: line[:-1] + "2",  # a flag that is neither 0 nor 1
        lambda line: line[:-1] + " 1",
        lambda line: line.rsplit("|", 3)[0],  # three fields short
    ],
)
def test_u_item_genre_flags_that_are_not_0_or_1_are_refused_by_line(tmp_path, damage):
    from movielens_env import load_dataset

    folder = tmp_path / "ml-100k"
    write_ml100k(folder)
    lines = (folder / "u.item").read_text(encoding="latin-1").splitlines()
    lines[2] = damage(lines[2])
    (folder / "u.item").write_text("\n".join(lines) + "\n", encoding="latin-1")
    with pytest.raises(ValueError, match=r"u.item:3: expected 24 fields .* each 0 or 1"):
        load_dataset("ml-100k", folder)


def test_a_duplicate_item_id_in_u_item_is_refused(tmp_path):
    from movielens_env import DataFormatError, load_dataset

    folder = tmp_path / "ml-100k"
    write_ml100k(folder)
    lines = (folder / "u.item").read_text(encoding="latin-1").splitlines()
    lines.append(lines[2].replace("Movie 3", "Another movie"))
    (folder / "u.item").write_text("\n".join(lines) + "\n", encoding="latin-1")
    with pytest.raises(
        DataFormatError, match=r"u.item:201: item 3 is listed twice \(lines 3 and 201\)"
    ):
        load_dataset("ml-100k", folder, cache_dir=tmp_path / "cache")


# --------------------------------------------------------------------------- caches
def test_a_grouplens_file_edited_in_place_is_parsed_again(tmp_path):
    import os

    from movielens_env import load_dataset

    folder = tmp_path / "ml-100k"
    write_ml100k(folder)
    ratings = folder / "u.data"
    before = load_dataset("ml-100k", folder, cache_dir=tmp_path / "cache")
    stat = ratings.stat()
    data = ratings.read_bytes()
    edited = data.replace(b"\t1\t", b"\t2\t", 1) if b"\t1\t" in data else data
    assert edited != data and len(edited) == len(data)
    ratings.write_bytes(edited)
    os.utime(ratings, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same time
    after = load_dataset("ml-100k", folder, cache_dir=tmp_path / "cache")
    assert not np.array_equal(before.ratings, after.ratings) or not np.array_equal(
        before.items, after.items
    )


def _rehashed(arrays: dict) -> dict:
    """``arrays`` with the digest of their (damaged) content, as the cache writer stores it."""
    return {**arrays, storage.DIGEST_KEY: np.array(storage.arrays_digest(arrays))}


def test_a_cache_edited_with_plausible_values_is_rebuilt(tmp_path, small_dataset):
    """Every value plausible (ratings mirrored within the scale, biases negated), so only the
    digest written with the cache tells the edit."""
    from movielens_env import MovieLensRecEnv, load_dataset
    from movielens_env.simulator import world as world_module

    first = load_dataset("synthetic", cache_dir=tmp_path)
    (path,) = (tmp_path / "prepared").glob("synthetic-100k-*.npz")
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    np.savez(path, **{**arrays, "ratings": (6 - arrays["ratings"]).astype(np.float32)})
    with pytest.warns(UserWarning, match="its content is not what was written"):
        again = load_dataset("synthetic", cache_dir=tmp_path)
    np.testing.assert_array_equal(again.ratings, first.ratings)
    kwargs = {"dataset": small_dataset, "cache_dir": tmp_path, "embedding_dim": 4,
              "mf_options": {"iterations": 2}}  # fmt: skip
    fitted = MovieLensRecEnv(**kwargs).world.mf.item_bias.copy()
    (path,) = (tmp_path / "embeddings").glob("mf-*.npz")
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    np.savez(path, **{**arrays, "item_bias": -arrays["item_bias"]})
    world_module._CACHE.clear()
    with pytest.warns(UserWarning, match="MF cache .* its content is not what was written"):
        env = MovieLensRecEnv(**kwargs)
    np.testing.assert_array_equal(env.world.mf.item_bias, fitted)


def test_a_cache_copied_onto_another_cache_s_name_is_rebuilt(tmp_path, small_dataset):
    """Each cache file is named by a hash of its key; a whole, valid file of another key put
    under that name (copied, renamed, restored from elsewhere) passes every value check, so the
    key it was built for is stored in it and compared."""
    from movielens_env import MovieLensRecEnv, load_dataset
    from movielens_env.simulator import world as world_module

    first, second = tmp_path / "a" / "ml-100k", tmp_path / "b" / "ml-100k"
    write_ml100k(first, seed=4)
    write_ml100k(second, seed=5)
    cache = tmp_path / "cache"
    a = load_dataset("ml-100k", first, cache_dir=cache)
    files = sorted((cache / "prepared").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    b = load_dataset("ml-100k", second, cache_dir=cache)
    (b_file,) = set((cache / "prepared").iterdir()) - set(files)
    b_file.write_bytes(files[0].read_bytes())  # a's parse under b's name
    with pytest.warns(UserWarning, match="built from other data or settings than its name says"):
        again = load_dataset("ml-100k", second, cache_dir=cache)
    np.testing.assert_array_equal(again.ratings, b.ratings)
    assert not np.array_equal(a.ratings[: len(b.ratings)], b.ratings[: len(a.ratings)])

    def mf(reg: float):
        world_module._CACHE.clear()
        return MovieLensRecEnv(
            dataset=small_dataset, cache_dir=tmp_path, embedding_dim=4,
            mf_options={"iterations": 2, "reg": reg},
        ).world.mf  # fmt: skip

    mf(0.1)
    (low,) = (tmp_path / "embeddings").glob("mf-*.npz")
    strong = mf(5.0)
    (high,) = set((tmp_path / "embeddings").glob("mf-*.npz")) - {low}
    high.write_bytes(low.read_bytes())  # the reg=0.1 fit under reg=5's name
    with pytest.warns(UserWarning, match="MF cache .* built from other data or settings"):
        refitted = mf(5.0)
    np.testing.assert_array_equal(refitted.item_factors, strong.item_factors)


def test_grouplens_files_edited_while_a_process_runs_are_read_again(tmp_path):
    """The process keeps the worlds it built; one from files since edited is not served."""
    from movielens_env import MovieLensRecEnv

    write_ml100k(tmp_path / "ml-100k", n_users=30)
    kwargs = {"dataset": "ml-100k", "data_dir": tmp_path / "ml-100k", "cache_dir": tmp_path,
              "embedding_dim": 4, "mf_options": {"iterations": 2}}  # fmt: skip
    before = MovieLensRecEnv(**kwargs).world.dataset
    lines = (tmp_path / "ml-100k" / "u.data").read_text().splitlines(keepends=True)
    (tmp_path / "ml-100k" / "u.data").write_text("".join(lines[: len(lines) // 2]))
    after = MovieLensRecEnv(**kwargs).world.dataset
    assert after.n_ratings == len(lines) // 2 < before.n_ratings


@pytest.mark.parametrize(
    "damage",
    [
        lambda a: {**a, "ratings": np.full_like(a["ratings"], np.nan)},
        lambda a: {**a, "item_ids": a["item_ids"][::-1].copy()},
        lambda a: {**a, "rating_scale": np.array([0.0, 10.0])},
        lambda a: {**a, "users": a["users"].astype(np.float64)},
        lambda a: {**a, "truth_thresholds": np.full(4, np.nan)},
    ],
)
def test_a_well_formed_prepared_cache_with_wrong_values_is_rebuilt(tmp_path, damage):
    from movielens_env import load_dataset

    first = load_dataset("synthetic", cache_dir=tmp_path)
    (path,) = (tmp_path / "prepared").glob("synthetic-100k-*.npz")
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    np.savez(path, **_rehashed(damage(arrays)))  # as a bug writing wrong values would
    with pytest.warns(UserWarning, match="ignoring unusable prepared dataset"):
        again = load_dataset("synthetic", cache_dir=tmp_path)
    np.testing.assert_array_equal(again.ratings, first.ratings)
    np.testing.assert_array_equal(again.item_ids, first.item_ids)


@pytest.mark.parametrize(
    "damage",
    [
        lambda a: {**a, "global_mean": np.float64(np.nan)},
        lambda a: {**a, "user_bias": a["user_bias"][:-1]},
        lambda a: {**a, "item_factors": a["item_factors"].astype(np.float64)},
    ],
)
def test_a_well_formed_mf_cache_with_wrong_values_is_refitted(tmp_path, small_dataset, damage):
    from movielens_env import MovieLensRecEnv

    kwargs = {"dataset": small_dataset, "cache_dir": tmp_path, "embedding_dim": 4,
              "mf_options": {"iterations": 2}}  # fmt: skip
    MovieLensRecEnv(**kwargs)
    (path,) = (tmp_path / "embeddings").glob("mf-*.npz")
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    np.savez(path, **_rehashed(damage(arrays)))
    from movielens_env.simulator import world as world_module

    world_module._CACHE.clear()
    with pytest.warns(UserWarning, match="ignoring MF cache"):
        env = MovieLensRecEnv(**kwargs)
    assert np.isfinite(env.world.mf.global_mean)


def test_a_cache_path_that_is_a_folder_names_the_folder(tmp_path, small_dataset, capsys):
    from movielens_env import MovieLensRecEnv
    from movielens_env.data.split import TRAIN_FRACTION
    from movielens_env.errors import CacheError
    from movielens_env.simulator.mf import MFConfig, mf_cache_path

    path = mf_cache_path(small_dataset.fingerprint(), TRAIN_FRACTION, MFConfig(dim=3), tmp_path)
    path.mkdir(parents=True)
    with pytest.raises(CacheError, match=r"is a folder where a file belongs; remove it \(rm -r"):
        MovieLensRecEnv(dataset=small_dataset, cache_dir=tmp_path, embedding_dim=3)


def test_a_nan_mf_option_is_refused_before_anything_is_fitted(tmp_path, small_dataset):
    from movielens_env import MovieLensRecEnv

    with pytest.raises(ValueError, match=r"MFConfig.reg must be a number in \[1e-06, .*got nan"):
        MovieLensRecEnv(dataset=small_dataset, cache_dir=tmp_path, mf_options={"reg": np.nan})
    assert not list(tmp_path.rglob("*.npz"))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"reg": 1e-300}, "MFConfig.reg must be a number in [1e-06, 10000], got 1e-300"),
        ({"iterations": 10**9}, "MFConfig.iterations must be an integer in [1, 1000]"),
        ({"init_scale": 1e300}, "MFConfig.init_scale must be a number in [1e-06, 10]"),
    ],
)
def test_mf_options_that_cannot_give_a_fit_are_refused(tmp_path, small_dataset, options, message):
    from movielens_env import MovieLensRecEnv

    with pytest.raises(ValueError, match=re.escape(message)):
        MovieLensRecEnv(dataset=small_dataset, cache_dir=tmp_path, mf_options=options)
    assert not list(tmp_path.rglob("*.npz"))


# --------------------------------------------------------------------------- env inputs
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"unrated_reward": "x"}, "unrated_reward must be a finite number, got 'x'"),
        ({"unrated_reward": None}, "unrated_reward must be a finite number, got None"),
        ({"data_dir": 1}, "data_dir must be a folder path or None, got 1"),
        ({"cache_dir": ["a"]}, "cache_dir must be a folder path or None, got ['a']"),
        ({"mf_options": 1}, "mf_options must be a dict of MFConfig fields or None, got 1"),
        ({"download": "no"}, "download must be True or False, got 'no'"),
        ({"dataset": 1}, "dataset must be a dataset name or a RatingsDataset, got 1"),
    ],
)
def test_env_arguments_of_the_wrong_type_are_named(kwargs, message):
    from movielens_env import MovieLensRecEnv

    with pytest.raises(ValueError, match=re.escape(message)):
        MovieLensRecEnv(**{"dataset": "synthetic", **kwargs})


@pytest.mark.parametrize(
    "options, message",
    [
        ({"user_id": 1.5}, "must be a raw user id (an integer), got 1.5"),
        ({"user_id": True}, "must be a raw user id (an integer), got True"),
        ({"user_id": "abc"}, "must be a raw user id (an integer), got 'abc'"),
        ({"user_id": 2**70}, "is not a user of"),
        ([1], "reset's options must be a dict (or None), got [1]"),
    ],
)
def test_reset_refuses_what_is_not_a_user(make_env, options, message):
    env = make_env()
    with pytest.raises(ValueError, match=re.escape(message)):
        env.reset(options=options)


def test_a_misspelt_reset_option_is_refused_not_ignored(make_env, small_dataset):
    import gymnasium as gym

    with pytest.raises(ValueError, match=r"unknown keys \['userid'\]; allowed: user_id"):
        make_env().reset(seed=0, options={"userid": 5})
    envs = gym.make_vec("MovieLensRec-v0", num_envs=2, dataset=small_dataset, embedding_dim=4)
    with pytest.raises(ValueError, match="allowed: user_id, reset_mask"):
        envs.reset(seed=0, options={"user": 5})


def test_a_zero_action_is_refused_rather_than_ranking_by_id(make_env):
    from movielens_env.errors import InvalidActionError

    env = make_env()
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="all zeros"):
        env.step(np.zeros(env.action_space.shape, np.float32))


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda rows: rows[:1] + [[r[0], r[1], str(int(r[2]) - 1)] for r in rows[1:]],
            "ranks start at 1",
        ),
        (lambda rows: [*rows[:2], [rows[1][0], "x", "2"]], "expected three integers"),
        (lambda rows: [*rows[:2], [rows[1][0], rows[2][1], rows[1][2]]], "has rank 1 twice"),
        (lambda rows: [*rows[:2], [rows[1][0], rows[1][1], "5"]], "twice (lines 2 and 3)"),
        (lambda rows: rows[1:], "expected the header 'user,item,rank'"),
        (lambda rows: rows[:1], "no recommendations below the header"),
        (lambda rows: [*rows[:1], [rows[1][0], rows[1][1], "1_0"]], "expected three integers"),
        (lambda rows: [*rows[:1], [rows[1][0], rows[1][1], "9" * 24]], "a number beyond 2**53"),
    ],
)
def test_a_recommendations_file_that_would_be_misread_is_refused_by_line(
    finished_run, tmp_path, edit, message
):
    from movielens_env import load_world
    from movielens_env.evaluation.exports import metrics_from_recommendations

    path = tmp_path / "recs.csv"
    argv = ["recommend", str(finished_run), "--all-test-users", "--k", "3", "--output", str(path)]
    assert main(argv) == 0
    rows = [line.split(",") for line in path.read_text().splitlines()]
    path.write_text("\n".join(",".join(row) for row in edit(rows)) + "\n")
    world = load_world(**load_agent(finished_run)[1])
    with pytest.raises(ValueError, match=re.escape(message)):
        metrics_from_recommendations(path, world)


# --------------------------------------------------------------------------- unclear errors
def test_the_cli_keeps_a_traceback_for_real_bugs(monkeypatch):
    # Deliberate errors are one line and exit 2; anything else is a bug and must show itself.
    from agents import cli

    def broken(args):
        raise ValueError("a bug, not a user's mistake")

    monkeypatch.setattr(cli, "_rollout", broken)
    with pytest.raises(ValueError, match="a bug"):
        main(["rollout"])


@pytest.mark.parametrize(
    "source, message",
    [
        (None, "--plugin nowhere_plugin: no module of that name"),
        (
            "raise RuntimeError('boom')\n",
            "--plugin bad_plugin failed on import: RuntimeError: boom",
        ),
        (
            "import missing_dependency_xyz\n",
            "it imports 'missing_dependency_xyz', which is missing",
        ),
        ("raise SystemExit(0)\n", "--plugin bad_plugin called sys.exit(0) on import"),
        (
            "from agents.registry import register_agent\nregister_agent('a,b', print, 'x')\n",
            "agent name 'a,b': letters, digits and '_.+-'",
        ),
    ],
)
def test_a_plugin_that_is_missing_or_fails_is_one_line(
    tmp_path, monkeypatch, capsys, source, message
):
    name = "nowhere_plugin" if source is None else "bad_plugin"
    if source is not None:
        (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["benchmark", "--plugin", name, "--out", str(tmp_path / "out")]) == 2
    assert message in _error(capsys)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["rollout", "--episodes", "-1"], "--episodes must be >= 1 and --seed >= 0, got -1"),
        (["rollout", "--seed", "-1"], "--seed >= 0, got 3 and -1"),
        (["rollout", "--seed", str(2**70)], "--seed must be an integer in [0, 4,294,967,295]"),
    ],
)
def test_rollout_options_out_of_range(capsys, argv, message):
    assert main(argv) == 2
    assert message in _error(capsys)


def test_a_user_id_beyond_int64_is_no_user(finished_run, capsys):
    assert main(["recommend", str(finished_run), "--user", str(2**70)]) == 2
    assert f"--user {2**70} is not a user of" in _error(capsys)


def test_a_policy_returning_text_is_named(make_env):
    from movielens_env.errors import AgentError
    from movielens_env.evaluation.policies import PolicyActor

    actor = PolicyActor(lambda obs: "abc", 9, "texty")
    with pytest.raises(AgentError, match="agent 'texty' returned an action that is not numbers"):
        actor([np.zeros(3)])


def test_train_refuses_a_negative_seed(tmp_path, capsys):
    assert main(_train(tmp_path / "run", "--seed", "-1")) == 2
    assert "seed must be an integer in [0, 4,294,967,295], got -1" in _error(capsys)


@pytest.mark.parametrize("command", ["train", "benchmark"])
def test_seeds_beyond_32_bits_are_refused(tmp_path, capsys, command):
    argv = _train(tmp_path / "run", "--seed", str(2**64))
    if command == "benchmark":
        argv = _bench(tmp_path / "bench", "unused", "--seeds", f"0,{2**64}")
    assert main(argv) == 2
    assert f"must be an integer in [0, 4,294,967,295], got {2**64}" in _error(capsys)


def test_a_plugin_whose_trainer_returns_no_agent_is_named(
    two_catalogues, tmp_path, monkeypatch, capsys
):
    (tmp_path / "none_plugin.py").write_text(
        "from agents.registry import register_agent\n"
        "register_agent('returns-none', lambda ctx: None, 'broken', is_rl=False)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = _bench(tmp_path / "out", two_catalogues[0], "--plugin", "none_plugin", "--agents",
                  "returns-none")  # fmt: skip
    try:
        assert main(argv) == 2
    finally:
        from agents.registry import AGENTS

        AGENTS.pop("returns-none", None)
    assert "agent 'returns-none': its trainer returned NoneType, not a TrainedAgent" in _error(
        capsys
    )


def test_a_file_where_a_run_folder_belongs_is_named(two_catalogues, tmp_path, capsys):
    out = tmp_path / "bench"
    (out / "runs").mkdir(parents=True)
    (out / "runs" / "random-seed0").write_text("not a folder")
    assert main(_bench(out, two_catalogues[0])) == 2
    err = _error(capsys)
    assert "runs/random-seed0 is a file" in err
    assert (out / "runs" / "random-seed0").read_text() == "not a folder"


def test_recommend_output_must_be_a_new_file_or_forced(finished_run, tmp_path, capsys):
    capsys.readouterr()
    argv = ["recommend", str(finished_run), "--all-test-users", "--k", "2", "--output"]
    assert main([*argv, str(tmp_path)]) == 2
    assert "is a folder; give the path of a CSV file" in _error(capsys)
    existing = tmp_path / "mine.csv"
    existing.write_text("keep me")
    assert main([*argv, str(existing)]) == 2
    assert "exists; pass --force to replace it" in _error(capsys)
    assert existing.read_text() == "keep me"
    assert main([*argv, str(existing), "--force"]) == 0
    assert existing.read_text().startswith("user,item,rank")


def test_a_binary_ratings_file_is_refused_before_it_is_read(tmp_path):
    from movielens_env import DataFormatError, load_dataset

    folder = tmp_path / "ml-100k"
    folder.mkdir()
    with open(folder / "u.data", "wb") as handle:
        handle.truncate(50 * 2**20)  # 50 MB of zeros, as a disk image would be
    with pytest.raises(DataFormatError, match=r"u.data:1: not a text file \(NUL bytes"):
        load_dataset("ml-100k", folder, cache_dir=tmp_path / "cache")


def test_a_zip_with_a_bad_crc_names_the_zip(tmp_path):
    import zipfile

    from movielens_env import DataFormatError, load_dataset

    folder = tmp_path / "src" / "ml-100k"
    write_ml100k(folder)
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        out.write(folder / "u.data", "ml-100k/u.data")
    data = bytearray(archive.read_bytes())
    offset = data.index(b"\t") + 1  # a byte of the stored u.data: its CRC no longer matches
    data[offset] ^= 0x01
    archive.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"ml-100k\.zip: damaged zip archive"):
        load_dataset("ml-100k", archive, cache_dir=tmp_path / "cache")


def test_a_written_file_gets_the_usual_mode_and_a_replaced_one_keeps_its_own(tmp_path):
    import os

    fresh, shared = tmp_path / "fresh.txt", tmp_path / "shared.txt"
    device = tmp_path / "device.txt"
    device.symlink_to("/dev/null")  # a link to a device (0666) is replaced by a usual file
    shared.write_text("old")
    shared.chmod(0o640)
    for path in (fresh, shared, device):
        storage.atomic_write(path, lambda tmp: tmp.write_text("new"))
    mask = os.umask(0o022)
    os.umask(mask)
    for path in (fresh, device):
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's private 0600
    assert shared.stat().st_mode & 0o777 == 0o640 and shared.read_text() == "new"


def test_temporaries_of_killed_writers_are_removed_on_the_next_write(tmp_path):
    import os
    import socket

    from movielens_env.storage import atomic_write

    target = tmp_path / "cache.json"
    host = socket.gethostname().replace(".", "_")
    dead = tmp_path / f".cache.json.{host}-{2**22 + 12345}.abcd.tmp.json"  # no such process
    live = tmp_path / f".cache.json.{host}-{os.getpid()}.efgh.tmp.json"  # this process: live
    other = tmp_path / ".other.json.x-1.ijkl.tmp.json"  # another target's
    mine = [tmp_path / ".cache.json.v1.tmp", tmp_path / ".cache.json.draft.tmp.txt"]  # a user's
    for path in (dead, live, other, *mine):
        path.write_text("half-written")
    for path in mine:  # old enough to be a killed writer's, were it one
        os.utime(path, (0, 0))
    atomic_write(target, lambda tmp: tmp.write_text("{}"), suffix=".json")
    assert target.read_text() == "{}"
    assert not dead.exists() and live.exists() and other.exists()
    assert all(path.read_text() == "half-written" for path in mine)


# --------------------------------------------------------------------------- sizes (hangs)
def test_sizes_beyond_what_the_machine_or_data_allow_fail_fast(small_dataset, monkeypatch):
    from movielens_env import MovieLensRecEnv, MovieLensRecVectorEnv
    from movielens_env.evaluation.references import BeamPlanner

    with pytest.raises(ValueError, match="embedding_dim=100000 is beyond 1024"):
        MovieLensRecEnv(dataset=small_dataset, embedding_dim=100_000)
    monkeypatch.setattr(storage, "available_memory", lambda: 10 * 2**20)
    with pytest.raises(ValueError, match=r"num_envs=100,000 .*needs .* use at most"):
        MovieLensRecVectorEnv(num_envs=100_000, dataset=small_dataset, embedding_dim=4)
    with pytest.raises(ValueError, match=r"width must be an integer in \[1, 4096\]"):
        BeamPlanner(width=10**6)
    # Each within its own bounds, together days of search or tens of GB.
    with pytest.raises(ValueError, match=r"width 4096 x 10000 episode steps = .* beyond"):
        BeamPlanner(width=4096).check_size(10_000, 1682)
    with pytest.raises(ValueError, match=r"4096 x 62,423 items .* use a width of at most 1,075"):
        BeamPlanner(width=4096).check_size(10, 62_423)
    # Slates fill each shortlisted item's slate from every item: 100 times the rows (5 GiB).
    BeamPlanner(width=4096).check_size(10, 1680)
    with pytest.raises(ValueError, match=r"shortlist 100 x 1,680 items .* slates of 2 .* at most"):
        BeamPlanner(width=4096).check_size(10, 1680, slate_size=2)


def test_a_planner_too_wide_for_the_episodes_fails_before_any_user_is_planned(
    two_catalogues, tmp_path, capsys
):
    out = tmp_path / "bench"
    long = [
        "--user-model",
        "boredom",
        "--planner-width",
        "4096",
        "--env-kwargs",
        '{"embedding_dim": 4, "mf_options": {"iterations": 2}, "max_episode_steps": 1000}',
    ]
    assert main(_bench(out, two_catalogues[0], *long)) == 2
    assert "planner width 4096 x 1000 episode steps" in _error(capsys)
    assert not (out / "references.json").exists()


def test_an_mf_fit_of_hours_is_refused_before_it_starts(small_dataset):
    from movielens_env import MovieLensRecEnv

    with pytest.raises(ValueError, match=r"dim=1024 with iterations=1000 .* beyond .* lower dim"):
        MovieLensRecEnv(dataset=small_dataset, embedding_dim=1024,
                        mf_options={"iterations": 1000}, cache_dir=None)  # fmt: skip


def test_a_drr_budget_shorter_than_an_episode_is_refused_before_any_work(
    two_catalogues, tmp_path, capsys
):
    # DRR trains whole episodes: 5 steps would have become one 10-step episode, keyed as 5.
    out = tmp_path / "bench"
    assert main(_bench(out, two_catalogues[0], "--agents", "drr-ave", "--timesteps", "5")) == 2
    assert "a DRR budget of 5 env steps is less than one 10-step episode" in _error(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--agent", "td3", "--timesteps", str(2**70)],
         "--timesteps must be an integer in [1, 1,000,000,000]"),
        (["train", "--episodes", "1180591620717411303424"], "--episodes must be an integer in"),
        (["tune", "--agent", "drr-ave", "--timesteps", str(2**70)],
         "--timesteps must be an integer in [1, 1,000,000,000]"),
        (["benchmark", "--agents", "random", "--timesteps", str(10**10)],
         "timesteps must be an integer in [1, 1,000,000,000]"),
    ],
)  # fmt: skip
def test_budgets_beyond_a_billion_steps_are_refused(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert message in _error(capsys)


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs FIFOs")
def test_fifos_and_endless_files_where_a_file_belongs_fail_fast(finished_run, tmp_path, capsys):
    import os

    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # nobody writes to it: a blocking read would wait forever
    for config in (fifo, Path("/dev/zero")):  # /dev/zero: an endless read took 21 GB
        assert main(_train(tmp_path / "run", "--config", str(config))) == 2
        assert "not a regular file" in _error(capsys)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert main(_train(tmp_path / "run", "--config", str(deep))) == 2
    assert "nested too deep" in _error(capsys)
    run = _copy(finished_run, tmp_path / "drr")
    (run / "run.json").unlink()
    os.mkfifo(run / "run.json")
    assert main(["evaluate", str(run)]) == 2
    assert "not a regular file" in _error(capsys)
    data = tmp_path / "ml-100k"
    write_ml100k(data, n_users=20)
    (data / "u.item").unlink()
    os.mkfifo(data / "u.item")
    with pytest.raises(ValueError, match=r"u.item: not a regular file"):
        from movielens_env import load_dataset

        load_dataset("ml-100k", data, cache_dir=tmp_path / "cache")


def test_a_data_file_larger_than_any_grouplens_file_is_refused_before_it_is_read(tmp_path):
    from movielens_env import load_dataset

    write_ml100k(tmp_path / "ml-100k", n_users=20)
    with open(tmp_path / "ml-100k" / "u.data", "r+b") as handle:
        handle.truncate(50 * 2**30)  # sparse: hashing it took minutes, parsing it GBs
    with pytest.raises(
        ValueError, match=r"u.data: 50.0 GiB, larger than any GroupLens file of its kind"
    ):
        load_dataset("ml-100k", tmp_path / "ml-100k", cache_dir=tmp_path / "cache")


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs FIFOs")
def test_a_tune_journal_that_is_no_file_is_named(tmp_path, capsys):
    import os

    argv = ["tune", "--agent", "td3", "--trials", "1", "--timesteps", "140", "--set",
            "learning_starts=100", "--env-kwargs", SMALL_ENV, "--no-progress"]  # fmt: skip
    for make in (os.mkfifo, os.mkdir):  # a FIFO blocked forever; a folder was a traceback
        out = tmp_path / make.__name__
        assert main([*argv, "--out", str(out)]) == 0  # a study
        (out / "study.journal").unlink()
        make(out / "study.journal")
        capsys.readouterr()
        assert main([*argv, "--out", str(out)]) == 2
        assert "study.journal: not a study's journal" in _error(capsys)


def test_a_data_line_beyond_the_csv_field_limit_is_named_by_line(tmp_path):
    from movielens_env import load_dataset

    write_ml100k(tmp_path / "ml-100k", n_users=20)
    items = tmp_path / "ml-100k" / "u.item"
    items.write_text("1|" + "x" * 200_000 + "\n" + items.read_text())
    with pytest.raises(ValueError, match=r"u.item:1: field larger than field limit"):
        load_dataset("ml-100k", tmp_path / "ml-100k", cache_dir=tmp_path / "cache")


def test_a_zip_that_would_expand_far_beyond_grouplens_files_is_refused(tmp_path):
    import zipfile

    from movielens_env import load_dataset
    from movielens_env.errors import UnsafeArchiveError

    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("ml-100k/u.data", b"\0" * (100 * 2**20))  # 100 MB of zeros, packed tiny
    with pytest.raises(UnsafeArchiveError, match=r"u.data' would expand to 0.1 GiB \(\d+ times"):
        load_dataset("ml-100k", archive, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "ml-100k").exists()


def test_a_zip_whose_members_together_would_fill_the_disk_is_refused(tmp_path, monkeypatch):
    import zipfile

    from movielens_env import load_dataset
    from movielens_env.data import sources
    from movielens_env.errors import UnsafeArchiveError

    monkeypatch.setattr(sources, "_MAX_MEMBER", 2**20)  # as 4 GiB, at the scale of a test
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for number in range(3):  # each member below the limit, together above it
            out.writestr(f"ml-100k/part{number}", b"1\t1\t5\t1\n" * (2**19 // 8))
    with pytest.raises(UnsafeArchiveError, match=r"members would expand to .* GiB in all"):
        load_dataset("ml-100k", archive, cache_dir=tmp_path / "cache")


def test_a_zip_of_many_small_members_packed_far_beyond_grouplens_is_refused(tmp_path):
    """64 members of 63 MiB of zeros each passed the per-member check and unpacked 4 GiB."""
    import zipfile

    from movielens_env import load_dataset
    from movielens_env.errors import UnsafeArchiveError

    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for number in range(3):
            out.writestr(f"ml-100k/part{number}", b"\0" * (30 * 2**20))
    with pytest.raises(UnsafeArchiveError, match=r"0.1 GiB in all, \d+ times their packed size"):
        load_dataset("ml-100k", archive, cache_dir=tmp_path / "cache")


# --------------------------------------------------------------------------- third pass: commands
def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_run(tmp_path, monkeypatch, capsys):
    from agents.drr import train as train_module

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill before the first checkpoint

    monkeypatch.setattr(train_module, "evaluate", killed)
    run = tmp_path / "killed"
    assert main(_train(run)) == 130  # Ctrl-C: one line, exit 130
    monkeypatch.undo()
    assert main(_train(run)) == 0  # nothing there to refuse or to resume


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--user", "1", "--all-test-users"], "give either --user RAW_ID or --all-test-users"),
        (["--user", "1", "--output", "x.csv"], "--output goes with --all-test-users"),
        (["--user", "99999"], "--user 99999 is not a user of"),
        (["--all-test-users", "--k", "1000000000", "--output", "big.csv"], "beyond the catalogue"),
        (["--all-test-users", "--output", ""], "--output '': the path is empty"),
        (["--all-test-users", "--output", " "], "--output ' ': the path is empty"),
    ],
)
def test_recommend_options_that_would_be_ignored_or_misread_are_refused(
    finished_run, tmp_path, capsys, extra, message
):
    capsys.readouterr()
    assert main(["recommend", str(finished_run), *extra]) == 2
    assert message in _error(capsys)
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "big.csv").exists()


def test_recommend_for_one_user_honours_the_protocol(finished_run, capsys):
    from movielens_env import MovieLensRecEnv

    _, env_kwargs = load_agent(finished_run)
    env = MovieLensRecEnv(**{**env_kwargs, "split": "test"})
    user = int(env.world.dataset.user_ids[env.eligible_users[0]])
    capsys.readouterr()
    assert main(["recommend", str(finished_run), "--user", str(user), "--protocol", "rerank"]) == 0
    printed = capsys.readouterr().out
    assert "items rated in the test split" in printed
    test_items = set(
        env.world.dataset.item_ids[
            env.world.split.test.row(int(env.world.dataset.user_index(user)))[0]
        ].tolist()
    )
    shown = [int(line.rsplit("(item ", 1)[1].rstrip(")")) for line in printed.splitlines()
             if "(item " in line]  # fmt: skip
    assert shown and set(shown) <= test_items


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "hidden=16", "--set", "hidden=32"], "--set hidden= is given twice"),
        (["--out", ""], "--out '': the path is empty"),
        (
            ["--env-kwargs", '{"obs_mode": "dict"}'],
            "reads obs_mode 'flat' observations, not 'dict'",
        ),
    ],
)
def test_train_settings_that_could_never_work_are_refused(tmp_path, capsys, extra, message):
    assert main([*_train(tmp_path / "run"), *extra]) == 2
    assert message in _error(capsys)
    assert not (tmp_path / "run").exists()


def test_a_replay_that_could_never_start_learning_is_refused():
    with pytest.raises(ConfigError, match=r"learning_starts \(20\) must be <= buffer_size \(10\)"):
        DRRConfig(buffer_size=10, learning_starts=20, batch_size=8)


def test_a_benchmark_of_rl_agents_on_dict_observations_fails_before_the_references(
    two_catalogues, tmp_path, capsys
):
    argv = _bench(tmp_path / "b", two_catalogues[0], "--agents", "random,td3", "--env-kwargs",
                  json.dumps({**json.loads(SMALL_ENV), "obs_mode": "dict"}))  # fmt: skip
    assert main(argv) == 2
    assert "agent 'td3' reads obs_mode 'flat'" in _error(capsys)
    assert not (tmp_path / "b" / "references.json").exists()
    assert main([*argv[:-6], "--out", "", *argv[-4:]]) == 2 and "--out '': the path is" in _error(
        capsys
    )


def test_a_plugin_config_that_is_not_json_is_refused_when_registered():
    from agents.registry import register_agent

    with pytest.raises(ValueError, match="agent 'set-config': its config must be JSON values"):
        register_agent("set-config", lambda ctx: None, "cfg", config={"a": {1, 2}})


# --------------------------------------------------------------------------- fourth pass
@pytest.mark.parametrize(
    "env_kwargs, message",
    [
        ('{"embedding_dim": 8, "embedding_dim": 16}', "key 'embedding_dim' given twice"),
        ('{"mf_options": {"iterations": 2, "iterations": 3}}', "key 'iterations' given twice"),
    ],
)
def test_a_key_given_twice_in_env_kwargs_is_refused(tmp_path, capsys, env_kwargs, message):
    argv = ["benchmark", "--agents", "random", "--out", str(tmp_path / "b"), "--env-kwargs",
            env_kwargs]  # fmt: skip
    assert main(argv) == 2
    assert message in _error(capsys)


def test_a_field_given_twice_in_a_config_file_is_refused(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text('{"hidden": 16, "hidden": 32}')
    assert main([*_train(tmp_path / "run"), "--config", str(config)]) == 2
    assert "key 'hidden' given twice" in _error(capsys)


def test_two_different_user_models_are_refused(tmp_path, capsys):
    argv = ["benchmark", "--agents", "random", "--out", str(tmp_path / "b"), "--user-model",
            "drift", "--env-kwargs", '{"user_model": "boredom"}']  # fmt: skip
    assert main(argv) == 2
    assert "--user-model 'drift' and --env-kwargs' user_model 'boredom' disagree" in _error(capsys)


def test_an_sb3_run_that_took_no_gradient_step_says_so(tmp_path, capsys):
    with pytest.warns(UserWarning, match="td3 took no gradient step in 60 timesteps"):
        assert main(_train_sb3(tmp_path / "run", "--set", "learning_starts=500")) == 0


def test_rated_items_missing_from_u_item_are_refused(tmp_path):
    from movielens_env import load_dataset

    folder = tmp_path / "ml-100k"
    write_ml100k(folder)
    lines = (folder / "u.item").read_text(encoding="latin-1").splitlines()
    (folder / "u.item").write_text("\n".join(lines[1:]) + "\n", encoding="latin-1")
    with pytest.raises(ValueError, match=r"u.item: no row for 1 of the .* rated items \(item 1"):
        load_dataset("ml-100k", folder)


@pytest.mark.parametrize("dtype", [complex, bool, str])
def test_actions_that_are_not_real_numbers_are_refused(make_env, small_dataset, dtype):
    import gymnasium as gym

    from movielens_env.errors import InvalidActionError

    env = make_env()
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="actions must be real numbers"):
        env.step(np.ones(env.action_space.shape, dtype=dtype))
    envs = gym.make_vec("MovieLensRec-v0", num_envs=2, dataset=small_dataset, embedding_dim=4)
    envs.reset(seed=0)
    with pytest.raises(InvalidActionError, match="actions must be real numbers"):
        envs.step(np.ones(envs.action_space.shape, dtype=dtype))


def test_force_removes_only_a_run_and_never_a_folder_s_other_files(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"my": "settings"}')
    assert main(_train_sb3(folder)) == 2
    assert "holds no run but config.json, which a run would overwrite" in _error(capsys)
    assert main([*_train_sb3(folder), "--force"]) == 0  # td3 writes no config.json
    assert (folder / "config.json").read_text() == '{"my": "settings"}'


def test_runs_and_results_do_not_share_a_folder(finished_run, two_catalogues, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "run")
    assert main(_bench(run, two_catalogues[0])) == 2
    assert "holds a training run" in _error(capsys)
    bench = tmp_path / "bench"
    assert main(_bench(bench, two_catalogues[0])) == 0
    capsys.readouterr()
    assert main(_train(bench)) == 2
    assert "is a benchmark's results folder" in _error(capsys)


def test_an_out_under_a_file_is_refused_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    assert main(_train(blocker / "run")) == 2
    assert "is a file, so no folder can be made there" in _error(capsys)


def test_sac_refuses_an_action_noise_it_would_ignore(tmp_path, capsys):
    noise = ("--set", "action_noise=0.3")
    argv = ["train", "--agent", "sac", "--out", str(tmp_path / "run"), *_tiny(TINY_SB3, noise),
            *noise]  # fmt: skip
    assert main(argv) == 2
    assert "action_noise=0.3 is for ddpg and td3" in _error(capsys)


def test_a_plugin_whose_code_changed_is_not_served_its_old_results(
    two_catalogues, tmp_path, monkeypatch, capsys
):
    from agents.registry import AGENTS

    plugin = tmp_path / "value_plugin.py"
    source = (
        "import numpy as np\n"
        "from agents.registry import TrainedAgent, register_agent\n"
        "register_agent('value', lambda ctx: TrainedAgent(lambda obs: np.full(9, VALUE)), 'v',"
        " is_rl=False, replace=True)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "bench"
    argv = _bench(out, two_catalogues[0], "--plugin", "value_plugin", "--agents", "value")
    try:
        plugin.write_text("VALUE = 1.0\n" + source)
        assert main(argv) == 0
        first = json.loads((out / "runs" / "value-seed0.json").read_text())
        plugin.write_text("VALUE = -1.0\n" + source)
        monkeypatch.delitem(__import__("sys").modules, "value_plugin")
        capsys.readouterr()
        assert main(argv) == 2  # another configuration: the agent's code
        assert "differs in agent_code" in _error(capsys)
        assert json.loads((out / "runs" / "value-seed0.json").read_text()) == first
    finally:
        AGENTS.pop("value", None)


def test_evaluate_says_when_a_run_stopped_early(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "early")
    _edit_run_json(run, episodes=40)
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    assert "the run stopped at 4 of its 40 episodes" in capsys.readouterr().out


def test_static_combined_with_a_component_is_named(make_env):
    with pytest.raises(ValueError, match="'static' means no user state and combines with nothing"):
        make_env(user_model="static+boredom")


def test_an_unrated_reward_the_reward_model_ignores_is_refused(make_env):
    with pytest.raises(ValueError, match=r"unrated_reward=0\.5 is used by reward_model='logged'"):
        make_env(unrated_reward=0.5)
    make_env(reward_model="logged", unrated_reward=0.5)  # where it is used, it is taken
    with pytest.raises(ValueError, match=r"unrated_reward must be in \[-1, 1\]"):
        make_env(reward_model="logged", unrated_reward=100.0)
    with pytest.raises(ValueError, match=r"patience_threshold=6.0 must lie in \(1, 5\]"):
        make_env(user_model="patience", patience_threshold=6.0)


def test_a_replacement_killed_before_it_writes_leaves_the_old_run(
    finished_run, tmp_path, monkeypatch
):
    from agents.drr import train as train_module

    run = _copy(finished_run, tmp_path / "kept")
    before = {p.name: p.read_bytes() for p in run.iterdir()}

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill before the new run's first checkpoint

    monkeypatch.setattr(train_module, "evaluate", killed)
    assert main([*_train(run), "--force"]) == 130  # Ctrl-C: one line, exit 130
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_run_is_not_trained_into_a_benchmark_s_results_folder(two_catalogues, tmp_path, capsys):
    bench = tmp_path / "bench"
    assert main(_bench(bench, two_catalogues[0])) == 0
    capsys.readouterr()
    assert main(_train(bench / "runs" / "random-seed0")) == 2
    assert "lies in a benchmark's results folder" in _error(capsys)


def test_a_recommendations_file_that_is_not_text_is_named_by_line(finished_run, tmp_path):
    from movielens_env import load_world
    from movielens_env.evaluation.exports import metrics_from_recommendations

    path = tmp_path / "bad.csv"
    path.write_bytes(b"user,item,rank\n1,\xff\xfe,1\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: a byte that is not plain text"):
        metrics_from_recommendations(path, load_world(**load_agent(finished_run)[1]))


def test_recommend_works_for_a_run_trained_under_a_user_model(tmp_path, capsys):
    run = tmp_path / "bored"
    assert main(_train(run, "--user-model", "boredom")) == 0
    capsys.readouterr()
    output = tmp_path / "recs.csv"
    argv = ["recommend", str(run), "--all-test-users", "--k", "2", "--output", str(output)]
    assert main(argv) == 0
    assert output.read_text().startswith("user,item,rank")


def test_recommend_does_not_write_into_a_run_or_results_folder(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "run")
    before = (run / "run.json").read_bytes()
    argv = ["recommend", str(run), "--all-test-users", "--output", str(run / "run.json"), "--force"]
    assert main(argv) == 2
    assert "lies in a run or a benchmark's results folder" in _error(capsys)
    assert (run / "run.json").read_bytes() == before


def test_recommend_keeps_an_output_file_made_while_it_ranked(
    finished_run, tmp_path, capsys, monkeypatch
):
    """The check that --output does not exist comes seconds before the file is written: a file
    another command made meanwhile is kept, not replaced (without --force)."""
    from agents import run_commands

    output = tmp_path / "recs.csv"
    rank = run_commands.evaluate_offline

    def slow(*args, **kwargs):
        output.write_text("theirs\n")  # another recommend, finished first
        return rank(*args, **kwargs)

    monkeypatch.setattr(run_commands, "evaluate_offline", slow)
    argv = ["recommend", str(finished_run), "--all-test-users", "--output", str(output)]
    assert main(argv) == 2
    assert "was created while recommendations were computed" in _error(capsys)
    assert output.read_text() == "theirs\n"
    assert [p.name for p in tmp_path.iterdir()] == ["recs.csv"]  # no temporary left
    assert main([*argv, "--force"]) == 0
    assert output.read_text().startswith("user,item,rank")


def test_a_user_model_in_env_kwargs_gets_its_horizon():
    import argparse

    from agents.env_options import env_options

    args = argparse.Namespace(user_model=None, env_kwargs='{"user_model": "boredom+drift"}')
    assert env_options(args)["max_episode_steps"] == 20
    # Spelled another way, the same model (it split results into another configuration).
    args = argparse.Namespace(user_model=None, env_kwargs='{"user_model": "drift + boredom"}')
    assert env_options(args) == {"user_model": "boredom+drift", "max_episode_steps": 20}


def test_a_benchmark_does_not_replace_a_run_it_did_not_make(
    finished_run, two_catalogues, tmp_path, capsys
):
    out = tmp_path / "project"
    mine = _copy(finished_run, (out / "runs").mkdir(parents=True) or out / "runs" / "random-seed0")
    before = {p.name: p.read_bytes() for p in mine.iterdir()}
    (out / "runs" / "random-seed0.json").write_text('{"note": "my eval"}')  # beside it: no record
    for extra in ((), ("--force",)):  # a train run is never another configuration's result
        assert main(_bench(out, two_catalogues[0], *extra)) == 2
        message = _error(capsys)
        assert "or links to runs elsewhere, in its runs/ (runs/random-seed0: train " in message
        assert {p.name: p.read_bytes() for p in mine.iterdir()} == before
        # A refused command changes nothing: the note is not moved aside as an invalid record.
        assert (out / "runs" / "random-seed0.json").read_text() == '{"note": "my eval"}'
        assert not (out / "runs" / "random-seed0.json.invalid").exists()


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_force_on_a_benchmark_run_with_a_damaged_run_json_keeps_other_models(
    two_catalogues, tmp_path
):
    out = tmp_path / "bench"
    assert main(_bench_td3(out, two_catalogues[0])) == 0
    run = out / "runs" / "td3-seed0"
    (run / "sac.zip").write_text("my sac model")
    (run / "run.json").write_text("{")
    assert main(_bench_td3(out, two_catalogues[0], "--timesteps", "30", "--force")) == 0
    assert (run / "sac.zip").read_text() == "my sac model"
    assert json.loads((run / "run.json").read_text())["timesteps"] == 30


# --------------------------------------------------------------------------- sixth pass
def _bench_td3(out, data_dir, *extra: str) -> list[str]:
    """A benchmark of one RL agent (a run folder beside its result), a few seconds long."""
    return _bench(out, data_dir, "--agents", "td3", "--timesteps", "20", *extra)


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_a_benchmark_says_when_a_stored_result_s_model_folder_is_gone(
    two_catalogues, tmp_path, capsys
):
    out = tmp_path / "bench"
    assert main(_bench_td3(out, two_catalogues[0])) == 0
    stored = (out / "runs" / "td3-seed0.json").read_bytes()
    run = out / "runs" / "td3-seed0"
    (run / "td3.zip").unlink()
    capsys.readouterr()
    assert main(_bench_td3(out, two_catalogues[0])) == 0  # the record is the result: reused
    err = capsys.readouterr().err
    assert (
        f"note: {run} (the trained model movielens-rec evaluate reads) is damaged (no td3.zip)"
        in err
    )
    assert "the stored result td3-seed0.json still counts" in err
    for path in run.iterdir():
        path.unlink()
    run.rmdir()
    assert main(_bench_td3(out, two_catalogues[0])) == 0
    assert f"note: {run} (the trained model movielens-rec evaluate reads) is missing" in (
        capsys.readouterr().err
    )
    assert (out / "runs" / "td3-seed0.json").read_bytes() == stored
    assert main(["evaluate", str(run)]) == 2
    assert "no such folder (the benchmark's stored result td3-seed0.json" in _error(capsys)
    assert main(_bench_td3(out, two_catalogues[0], "--agents", "popularity")) == 0
    assert "note:" not in capsys.readouterr().err  # a baseline has no model folder to miss


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_a_user_s_files_in_a_benchmark_run_folder_without_a_run_are_kept(
    two_catalogues, tmp_path, capsys
):
    out = tmp_path / "bench"
    (out / "runs" / "td3-seed0").mkdir(parents=True)
    (out / "runs" / "td3-seed0" / "learning_curve.csv").write_text("mine")
    for extra in ((), ("--force",)):
        assert main(_bench_td3(out, two_catalogues[0], *extra)) == 2
        assert "holds runs/td3-seed0/learning_curve.csv in run folders holding no run" in (
            _error(capsys)
        )
        assert (out / "runs" / "td3-seed0" / "learning_curve.csv").read_text() == "mine"


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_a_run_made_in_a_benchmark_s_run_folder_after_it_looked_is_kept(
    two_catalogues, finished_sb3_run, tmp_path
):
    from agents.benchmark.runner import BenchmarkConfig, run_one
    from agents.benchmark.stored import ResultsFolderError

    out = tmp_path / "bench"
    config = BenchmarkConfig(
        dataset="ml-100k", data_dir=str(two_catalogues[0]), agents=("td3",), seeds=(0,),
        timesteps=20, out_dir=out, env_options=json.loads(SMALL_ENV), references=False,
    )  # fmt: skip
    run = _copy(finished_sb3_run, (out / "runs").mkdir(parents=True) or out / "runs" / "td3-seed0")
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    with pytest.raises(ResultsFolderError, match="holds a run this benchmark did not make"):
        run_one(config, "td3", 0)  # a train finished there between the plan and the run
    # ... where the plan was to replace the benchmark's own run there, removed by --force in
    # the meantime (the folder was empty while the references were recomputed).
    with pytest.raises(ResultsFolderError, match="holds a run this benchmark did not make"):
        run_one(config, "td3", 0, replace=True)
    assert {path.name: path.read_bytes() for path in run.iterdir() if path.name in before} == (
        before
    )


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_a_benchmark_run_folder_holding_another_run_is_noted_and_a_stopped_run_redone(
    two_catalogues, finished_sb3_run, tmp_path, capsys
):
    out = tmp_path / "bench"
    assert main(_bench_td3(out, two_catalogues[0])) == 0
    run = out / "runs" / "td3-seed0"
    mark = json.loads((run / ".benchmark-run.json").read_text())
    # A benchmark stopped while training: its mark says it started the run, with this key.
    (out / "runs" / "td3-seed0.json").unlink()
    (run / ".benchmark-run.json").write_text(json.dumps({"key": mark["key"], "run": None}))
    assert main(_bench_td3(out, two_catalogues[0])) == 0  # redone without --force
    assert json.loads((run / ".benchmark-run.json").read_text())["run"] is not None
    for name in ("td3.zip", "run.json", "learning_curve.csv"):  # a train run copied in
        (run / name).write_bytes((finished_sb3_run / name).read_bytes())
    capsys.readouterr()
    assert main(_bench_td3(out, two_catalogues[0])) == 0
    assert "is replaced by another run (its run.json is not the one the benchmark wrote)" in (
        capsys.readouterr().err
    )


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_a_benchmark_notes_run_folders_swapped_between_seeds_and_untrained_rows(
    two_catalogues, tmp_path, capsys
):
    out = tmp_path / "bench"
    assert main(_bench_td3(out, two_catalogues[0], "--seeds", "0,1")) == 0
    err = capsys.readouterr().err  # 20 steps, learning starting at 500: untrained, and said
    assert "warning: td3 seed 0, td3 seed 1 took no gradient step in its budget" in err
    assert "td3 seed 0, td3 seed 1 took no gradient step" in (out / "leaderboard.md").read_text()
    runs = out / "runs"
    (runs / "td3-seed0").rename(runs / "swap")
    (runs / "td3-seed1").rename(runs / "td3-seed0")
    assert main(_bench_td3(out, two_catalogues[0], "--seeds", "0,1")) == 0
    err = capsys.readouterr().err
    assert f"note: {runs / 'td3-seed0'} (the trained model" in err
    assert "replaced by the run of seed 1" in err
    assert "td3 seed 0, td3 seed 1 took no gradient step" in err  # reused, and still said


def test_train_force_never_overwrites_files_that_are_not_the_old_run_s(
    finished_sb3_run, finished_run, tmp_path, capsys
):
    run = _copy(finished_sb3_run, tmp_path / "td3")
    (run / "config.json").write_text("my config")  # not a td3 run's file, but a DRR run's
    assert main([*_train(run), "--force"]) == 2
    assert "holds a run and config.json, which are not that run's" in _error(capsys)
    assert (run / "config.json").read_text() == "my config"
    # A damaged run.json cannot say whose files are there: only the new run's are replaced.
    drr = _copy(finished_run, tmp_path / "drr")
    (drr / "td3.zip").write_text("my model")
    (drr / "run.json").write_text("{")
    assert main([*_train(drr), "--force"]) == 0
    assert (drr / "td3.zip").read_text() == "my model"


def test_force_leaves_no_result_of_the_old_configuration_in_the_folder(
    two_catalogues, tmp_path, capsys
):
    out = tmp_path / "bench"
    assert main(_bench(out, two_catalogues[0], "--seeds", "0,1")) == 0
    kept = (out / "runs" / "random-seed1.json").read_bytes()
    assert main(_bench(out, two_catalogues[0], "--agents", "popularity")) == 0
    assert (out / "runs" / "random-seed1.json").read_bytes() == kept  # this config's: kept
    capsys.readouterr()
    other = ["--agents", "popularity", "--planner-width", "1"]  # only a part of the old grid
    assert main(_bench(out, two_catalogues[0], *other)) == 2
    err = _error(capsys)
    assert "holds results of another configuration" in err and "random-seed0.json" in err
    assert "--force to remove them" in err
    assert (out / "runs" / "random-seed1.json").read_bytes() == kept
    assert main(_bench(out, two_catalogues[0], *other, "--force")) == 0
    found = sorted(p.name for p in (out / "runs").iterdir())
    assert found == ["popularity-seed0", "popularity-seed0.json"]  # the random runs' removed
    record = json.loads((out / "runs" / "popularity-seed0.json").read_text())
    assert record["key"]["references"] == {"planner_width": 1}


@pytest.mark.parametrize(
    "files, plugin",
    [  # a plugin module with its helper beside it; a plugin package with its helper inside
        ({"value_plugin.py": "from value_helper import VALUE\n", "value_helper.py": ""},
         "value_plugin"),
        ({"valuepkg/__init__.py": "from .helper import VALUE\n", "valuepkg/helper.py": ""},
         "valuepkg"),
        # a helper imported by name; a data file a plugin package reads
        ({"value_plugin.py": "import importlib\n"
          "VALUE = importlib.import_module('value_helper').VALUE\n", "value_helper.py": ""},
         "value_plugin"),
        # ... under an alias, or with the name as a keyword (neither was followed)
        ({"value_plugin.py": "from importlib import import_module as im\n"
          "VALUE = im('value_helper').VALUE\n", "value_helper.py": ""},
         "value_plugin"),
        ({"value_plugin.py": "import importlib\n"
          "VALUE = importlib.import_module(name='value_helper').VALUE\n", "value_helper.py": ""},
         "value_plugin"),
        ({"valuepkg/__init__.py": "from pathlib import Path\n"
          "VALUE = float(Path(__file__).with_name('value.txt').read_text().split('=')[1])\n",
          "valuepkg/value.txt": ""}, "valuepkg"),
    ],
)  # fmt: skip
def test_a_plugin_whose_helper_module_changed_is_not_served_its_old_results(
    two_catalogues, tmp_path, monkeypatch, capsys, files, plugin
):
    import sys

    from agents.registry import AGENTS

    registers = (
        "import numpy as np\n"
        "from agents.registry import TrainedAgent, register_agent\n"
        "register_agent('value', lambda ctx: TrainedAgent(lambda obs: np.full(9, VALUE)), 'v',"
        " is_rl=False, replace=True)\n"
    )
    (code, first_text), (helper, _) = files.items()

    def write(value: float) -> None:
        for name in list(sys.modules):  # as a new process would import them
            if name.split(".")[0] in ("value_plugin", "value_helper", "valuepkg"):
                monkeypatch.delitem(sys.modules, name)
        (tmp_path / code).parent.mkdir(exist_ok=True)
        (tmp_path / code).write_text(first_text + registers)
        (tmp_path / helper).write_text(f"VALUE = {value}\n")

    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "bench"
    argv = _bench(out, two_catalogues[0], "--plugin", plugin, "--agents", "value")
    try:
        write(1.0)
        assert main(argv) == 0
        first = json.loads((out / "runs" / "value-seed0.json").read_text())
        write(1.0)
        assert main(argv) == 0  # the same code: reused
        assert json.loads((out / "runs" / "value-seed0.json").read_text()) == first
        write(-1.0)  # only the helper changed
        capsys.readouterr()
        assert main(argv) == 2
        assert "differs in agent_code" in _error(capsys)
        write(-1.0)  # a benchmark forgets the agents its plugins registered: a new import
        assert main([*argv, "--force"]) == 0
        recomputed = json.loads((out / "runs" / "value-seed0.json").read_text())
        assert recomputed["metrics"] != first["metrics"]
    finally:
        AGENTS.pop("value", None)


@pytest.mark.parametrize(
    "command, mine, message",
    [
        ("train", "learning_curve.csv", "holds no run but learning_curve.csv, which this run "
         "would write; --force replaces only a run's files"),
        ("train-td3", "td3.zip", "holds no run but td3.zip, which this run would write"),
        ("benchmark", "leaderboard.csv", "is not a benchmark's results folder but holds "
         "leaderboard.csv, which a benchmark would overwrite (--force replaces only a results "
         "folder's files)"),
    ],
)  # fmt: skip
def test_force_does_not_replace_a_user_s_file_in_a_folder_that_holds_no_run(
    two_catalogues, tmp_path, capsys, command, mine, message
):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / mine).write_text("my own file")
    argv = {
        "train": _train(folder, "--force"),
        "train-td3": [*_train_sb3(folder), "--force"],
        "benchmark": _bench(folder, two_catalogues[0], "--force"),
    }[command]
    assert main(argv) == 2
    assert message in _error(capsys)
    assert sorted(p.name for p in folder.iterdir()) == [mine]
    assert (folder / mine).read_text() == "my own file"


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
@pytest.mark.parametrize("damage", ["garbage", "{", '{"agent": "td3", "checksum": "0"}'])
def test_force_replaces_a_run_whose_run_json_is_damaged(finished_sb3_run, tmp_path, damage, capsys):
    run = _copy(finished_sb3_run, tmp_path / "damaged")
    (run / "run.json").write_text(damage)
    assert main(_train_sb3(run)) == 2  # still a run: kept without --force
    assert "already holds a run (run.json" in _error(capsys)
    assert main([*_train_sb3(run), "--force"]) == 0
    assert json.loads((run / "run.json").read_text())["agent"] == "td3"
    assert main(["evaluate", str(run)]) == 0


def test_an_empty_cache_dir_is_refused_not_read_as_the_current_folder(
    make_env, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"cache_dir is empty \('  '\), which would mean the curr"):
        make_env(cache_dir="  ")
    argv = ["benchmark", "--agents", "random", "--out", str(tmp_path / "b"), "--env-kwargs",
            '{"cache_dir": ""}']  # fmt: skip
    assert main(argv) == 2
    assert "cache_dir is empty ('')" in _error(capsys)
    assert list(tmp_path.iterdir()) == []  # nothing cached in the current folder


def test_a_metric_this_data_does_not_measure_is_refused(two_catalogues, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(_bench(out, two_catalogues[0], "--metrics", "online/return_oracle")) == 2
    err = _error(capsys)
    assert "--metrics online/return_oracle: not measured on this data" in err
    assert "online/return_mf" in err and not out.exists()


@pytest.mark.parametrize(
    ("config", "values", "message"),
    [
        ("nope=F", {}, "'nope' is not among the agents run"),
        ("drr-ave", {}, "expected AGENT=FILE.json"),
        ("drr-ave=F", {"state": "drr-u"}, "the config given for 'drr-ave' is a 'drr-u' config"),
        ("drr-ave=F", {"wings": 1}, "unknown DRRConfig keys ['wings']"),
        ("drr-ave=F", {"gamma": 1.5}, "DRRConfig.gamma"),
    ],
)
def test_a_benchmark_config_file_that_does_not_fit_is_refused(
    tmp_path, capsys, config, values, message
):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    out = tmp_path / "bench"
    argv = ["benchmark", "--agents", "drr-ave,random", "--out", str(out),
            "--config", config.replace("F", str(path))]  # fmt: skip
    assert main(argv) == 2
    assert message in _error(capsys)
    assert not out.exists()


# --------------------------------------------------------------------------- seventh pass
def test_a_benchmark_does_not_overwrite_a_leaderboard_beside_train_s_runs_folder(
    finished_sb3_run, two_catalogues, tmp_path, capsys
):
    project = tmp_path / "project"
    (project / "runs").mkdir(parents=True)
    _copy(finished_sb3_run, project / "runs" / "td3")  # as the README's train --out runs/td3
    mine = {"leaderboard.md": "# my own notes\n", "leaderboard.csv": "a,b\n", "metrics.png": "x"}
    for name, text in mine.items():
        (project / name).write_text(text)
    for force in ((), ("--force",)):
        assert main(_bench(project, two_catalogues[0], *force)) == 2
        assert (
            "is not a benchmark's results folder but holds leaderboard.md, leaderboard.csv, "
            "metrics.png, which a benchmark would overwrite" in _error(capsys)
        )
    assert {name: (project / name).read_text() for name in mine} == mine
    assert sorted(p.name for p in (project / "runs").iterdir()) == ["td3"]


def test_train_and_recommend_work_under_a_folder_that_merely_has_a_runs_folder(
    finished_sb3_run, tmp_path, monkeypatch, capsys
):
    project = tmp_path / "project"
    (project / "runs").mkdir(parents=True)
    monkeypatch.chdir(project)
    _copy(finished_sb3_run, project / "runs" / "td3")  # as the README's train --out runs/td3
    assert main(_train("runs/drr-ave")) == 0  # the README's next run, beside it
    recommend = ["recommend", "runs/td3", "--all-test-users", "--k", "2", "--output", "recs.csv"]
    assert main(recommend) == 0
    assert (project / "recs.csv").read_text().startswith("user,item,rank")
    home = tmp_path / "home"
    (home / "runs").mkdir(parents=True)  # an empty ~/runs blocks nothing below it
    (home / "work" / "exp").mkdir(parents=True)
    monkeypatch.chdir(home / "work" / "exp")
    assert main(_train("myrun")) == 0
    assert (home / "work" / "exp" / "myrun" / "run.json").is_file()


@pytest.mark.parametrize(
    "change",
    [
        "the plugin's source",
        "a bound argument read from a file",
        "a captured value read from a file",
    ],
)
def test_a_plugin_whose_trainer_lives_in_a_helper_is_not_served_its_old_results(
    two_catalogues, tmp_path, monkeypatch, capsys, change
):
    import sys

    from agents.registry import AGENTS

    (tmp_path / "const_helper.py").write_text(
        "import numpy as np\n"
        "from agents.registry import TrainedAgent\n"
        "def train(ctx, bias=0.0):\n"
        "    return TrainedAgent(policy=lambda obs: np.full(9, bias, np.float32))\n"
    )
    imports = (
        "from functools import partial\n"
        "from pathlib import Path\n"
        "import const_helper\n"
        "from agents.registry import register_agent\n"
    )
    registers = (
        "register_agent('const', partial(const_helper.train, bias=BIAS), 'c', is_rl=False,"
        " replace=True)\n"
    )

    def write(bias: float) -> None:
        for name in ("const_plugin", "const_helper"):  # as a new process would import them
            monkeypatch.delitem(sys.modules, name, raising=False)
        if change == "the plugin's source":
            bias_line = f"BIAS = {bias}\n"
        else:  # the same source; the value it binds (or its closure captures) is another
            (tmp_path / "const_bias.txt").write_text(str(bias))
            bias_line = "BIAS = float((Path(__file__).parent / 'const_bias.txt').read_text())\n"
        registering = registers
        if change == "a captured value read from a file":  # a closure's values were not keyed
            registering = (
                "def make(bias):\n"
                "    return lambda ctx: const_helper.train(ctx, bias=bias)\n"
                "register_agent('const', make(BIAS), 'c', is_rl=False, replace=True)\n"
            )
        (tmp_path / "const_plugin.py").write_text(imports + bias_line + registering)

    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "bench"
    argv = _bench(out, two_catalogues[0], "--plugin", "const_plugin", "--agents", "const")
    try:
        write(1.0)
        assert main(argv) == 0
        first = json.loads((out / "runs" / "const-seed0.json").read_text())
        write(1.0)
        assert main(argv) == 0  # the same code and values: reused
        assert json.loads((out / "runs" / "const-seed0.json").read_text()) == first
        write(-1.0)  # only the registering module or its bound value changed
        capsys.readouterr()
        assert main(argv) == 2
        assert "differs in agent_code" in _error(capsys)
        assert json.loads((out / "runs" / "const-seed0.json").read_text()) == first
    finally:
        AGENTS.pop("const", None)


@pytest.mark.parametrize("command", ["benchmark", "train", "tune"])
def test_an_episode_length_meant_as_no_limit_is_refused_at_once(tmp_path, capsys, command):
    import time

    env = json.dumps({**json.loads(SMALL_ENV), "max_episode_steps": 1_000_000_000})
    out = tmp_path / "out"
    argv = {
        "benchmark": ["benchmark", "--agents", "random", "--seeds", "0", "--no-progress"],
        "train": ["train", "--agent", "drr-ave", "--episodes", "1"],
        "tune": ["tune", "--agent", "drr-ave", "--trials", "1", "--timesteps", "200"],
    }[command] + ["--out", str(out), "--env-kwargs", env]
    started = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - started < 10
    assert "max_episode_steps must be an integer in [1, 10,000], got 1,000,000,000" in (
        _error(capsys)
    )
    assert not out.exists()


def test_an_episode_length_beyond_the_limit_is_refused_by_the_python_api(small_dataset):
    from movielens_env import MovieLensRecVectorEnv, load_world
    from movielens_env.evaluation.protocols import episode_steps

    message = r"max_episode_steps must be an integer in \[1, 10,000\], got 10,001"
    with pytest.raises(ValueError, match=message):
        episode_steps({"max_episode_steps": 10_001})
    with pytest.raises(ValueError, match=message):
        MovieLensRecVectorEnv(max_episode_steps=10_001, dataset=small_dataset, embedding_dim=4)
    with pytest.raises(ValueError, match=message):
        load_world(dataset=small_dataset, embedding_dim=4, max_episode_steps=10_001)
    assert episode_steps({"max_episode_steps": 10_000}) == 10_000


def test_drr_settings_that_would_take_hours_per_episode_are_refused(tmp_path, capsys):
    big = ("--set", "num_envs=1024", "--set", "updates_per_step=64")
    argv = ["train", "--episodes", "1", "--out", str(tmp_path / "run"), *_tiny(TINY_DRR, big),
            *big]  # fmt: skip
    assert main(argv) == 2
    assert (
        "DRRConfig.num_envs * updates_per_step (1024 * 64 = 65,536 gradient steps per collected "
        "batch) must be at most 1,024" in _error(capsys)
    )
    assert not (tmp_path / "run").exists()
    DRRConfig(num_envs=16, updates_per_step=64)  # at the limit: taken
    with pytest.raises(ConfigError, match=r"num_envs \* updates_per_step"):
        DRRConfig(num_envs=1024, updates_per_step=2)


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_a_benchmark_killed_before_it_stored_a_run_s_result_trains_that_run_again(
    two_catalogues, tmp_path, monkeypatch, capsys
):
    from agents.benchmark import runner

    out = tmp_path / "bench"
    argv = _bench_td3(out, two_catalogues[0], "--agents", "random,td3")
    write_record = runner.write_record

    def killed(path, record):
        if path.name == "td3-seed0.json":
            raise KeyboardInterrupt  # as a kill after the run's folder, before its record
        return write_record(path, record)

    monkeypatch.setattr(runner, "write_record", killed)
    assert main(argv) == 130  # Ctrl-C: one line, exit 130
    monkeypatch.undo()
    run = out / "runs" / "td3-seed0"
    assert (run / "run.json").is_file() and not (out / "runs" / "td3-seed0.json").exists()
    kept = (out / "runs" / "random-seed0.json").read_bytes()
    capsys.readouterr()
    assert main(argv) == 0  # resumed: the run trained again, the other result kept
    assert (out / "runs" / "random-seed0.json").read_bytes() == kept
    stored = json.loads((out / "runs" / "td3-seed0.json").read_text())
    assert main(["evaluate", str(run), "--data-dir", str(two_catalogues[0])]) == 0
    (out / "runs" / "td3-seed0.json").unlink()  # "deleting the record trains the run again"
    assert main(argv) == 0
    again = json.loads((out / "runs" / "td3-seed0.json").read_text())
    assert again["metrics"] == stored["metrics"]
    # A run folder of another config in that place is not this benchmark's: it is kept.
    (out / "runs" / "td3-seed0.json").unlink()
    other = tmp_path / "td3.json"
    other.write_text(json.dumps({"learning_rate": 0.01}))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main([*argv, "--config", f"td3={other}"]) == 2
    err = _error(capsys)
    assert "holds results of another configuration (runs/td3-seed0: a run no stored" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_benchmark_config_the_trainer_would_refuse_is_refused_before_any_run(
    two_catalogues, tmp_path, capsys
):
    tuned = tmp_path / "best_config.json"  # td3's tuned config, given to sac
    tuned.write_text(json.dumps({"learning_rate": 0.001, "action_noise": 0.39}))
    out = tmp_path / "bench"
    argv = _bench(out, two_catalogues[0], "--agents", "random,td3,sac", "--timesteps", "20",
                  "--config", f"sac={tuned}")  # fmt: skip
    assert main(argv) == 2
    assert "SB3Config.action_noise=0.39 is for ddpg and td3" in _error(capsys)
    assert not out.exists()  # no reference, run or empty run folder made first


def test_a_benchmark_config_for_an_agent_without_one_says_it_has_none(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text("{}")
    argv = ["benchmark", "--agents", "mf,random", "--out", str(tmp_path / "bench"), "--config",
            f"mf={path}"]  # fmt: skip
    assert main(argv) == 2
    err = _error(capsys)
    assert "agent 'mf' has no trained artefact to save and no config to set" in err
    assert "use it in movielens-rec benchmark" not in err


# --------------------------------------------------------------------------- eighth pass
@pytest.mark.parametrize(
    ("files", "command"),
    [
        ({"run.json": '{"experiment": "mine"}', "config.json": '{"my": "settings"}',
          "learning_curve.csv": "a,b\n"}, "train"),
        ({"checkpoint.pt": "my torch model", "config.json": '{"my": "settings"}'}, "train-td3"),
        ({"checkpoint.pt": "my torch model"}, "train"),
    ],
)  # fmt: skip
def test_force_does_not_take_a_user_s_run_json_or_checkpoint_for_a_run(
    tmp_path, capsys, files, command
):
    folder = tmp_path / "mine"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    for extra in ((), ("--force",)):
        argv = _train(folder, *extra) if command == "train" else [*_train_sb3(folder), *extra]
        assert main(argv) == 2
        err = _error(capsys)
        assert "that no run of movielens-rec wrote" in err and "never replaced" in err
        assert {p.name: p.read_text() for p in folder.iterdir()} == files
    # A PyTorch checkpoint of the user's own (a dict of tensors) is no DRR run either.
    torch.save({"weights": torch.zeros(2)}, folder / "checkpoint.pt")
    assert main(_train(folder, "--force")) == 2
    assert "checkpoint.pt that no run of movielens-rec wrote" in _error(capsys)


def test_a_run_json_whose_checksum_was_deleted_is_refused_as_edited(
    finished_sb3_run, tmp_path, capsys
):
    run = _copy(finished_sb3_run, tmp_path / "edited")
    info = json.loads((run / "run.json").read_text())
    del info["checksum"]
    (run / "run.json").write_text(
        json.dumps({**info, "env_kwargs": {**info["env_kwargs"], "max_episode_steps": 40}})
    )
    assert main(["evaluate", str(run)]) == 2
    assert "run.json was edited (it has no checksum" in _error(capsys)
    assert main(_train_sb3(run)) == 2  # still a run: kept without --force, replaced with it
    assert "already holds a run (run.json" in _error(capsys)


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_a_benchmark_does_not_take_a_train_run_of_the_same_settings_for_its_own(
    two_catalogues, tmp_path, capsys
):
    out = tmp_path / "project"
    run = out / "runs" / "td3-seed0"
    data = ["--dataset", "ml-100k", "--data-dir", str(two_catalogues[0])]
    assert main([*_train_sb3(run, "--timesteps", "40"), *data]) == 0  # another budget
    config = tmp_path / "td3.json"
    config.write_text(json.dumps({"learning_starts": 20, "batch_size": 16, "net_arch": [32],
                                  "buffer_size": 1000}))  # fmt: skip
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    bench = _bench_td3(out, two_catalogues[0], "--config", f"td3={config}")
    assert main(bench) == 2
    assert "holds runs no benchmark made, or links to runs elsewhere" in _error(capsys)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    # Of the same budget too: a train run is never the benchmark's own.
    assert main([*_train_sb3(run, "--timesteps", "20", "--force"), *data]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main(bench) == 2
    assert "holds runs no benchmark made, or links to runs elsewhere" in _error(capsys)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_force_never_removes_a_train_run_or_a_linked_run_outside_the_grid(
    finished_sb3_run, two_catalogues, tmp_path, capsys
):
    """``--force`` removes another configuration's results, in the grid or not: never a run no
    benchmark made, nor through a link the files of a run elsewhere."""
    data = two_catalogues[0]
    out, elsewhere = tmp_path / "bench", tmp_path / "elsewhere"
    assert main(_bench_td3(out, data)) == 0
    assert main(_bench_td3(elsewhere, data)) == 0
    run = out / "runs" / "td3-seed0"
    for path in run.iterdir():
        path.unlink()
    run.rmdir()
    _copy(finished_sb3_run, run)  # the user's train run, where seed 0's went
    linked = elsewhere / "runs" / "td3-seed0"
    kept = {folder: {p.name: p.read_bytes() for p in folder.iterdir()} for folder in (run, linked)}
    twin = tmp_path / "twin"
    (twin / "runs").mkdir(parents=True)
    (twin / "references.json").write_bytes((elsewhere / "references.json").read_bytes())
    (twin / "runs" / "td3-seed0.json").write_bytes((linked.with_suffix(".json")).read_bytes())
    (twin / "runs" / "td3-seed0").symlink_to(linked)
    capsys.readouterr()
    for folder in (out, twin):
        for seeds in ("0", "1"):  # in the grid, and outside it
            bench = _bench_td3(folder, data, "--seeds", seeds, "--timesteps", "30", "--force")
            assert main(bench) == 2
            assert "no benchmark made, or links to runs elsewhere" in _error(capsys)
    assert {f: {p.name: p.read_bytes() for p in f.iterdir()} for f in (run, linked)} == kept
    assert (twin / "runs" / "td3-seed0").is_symlink()


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
@pytest.mark.parametrize(
    "fixture, model, train",
    [("finished_sb3_run", "td3.zip", _train_sb3), ("finished_run", "checkpoint.pt", _train)],
)
def test_a_model_file_swapped_in_from_another_run_is_refused(
    request, tmp_path, capsys, fixture, model, train
):
    """A model of another seed fits the run's own config and env shapes: only the digest in
    run.json tells it (DRR's checkpoint as SB3's model)."""
    finished = request.getfixturevalue(fixture)
    other = tmp_path / "other"
    assert main(train(other, "--seed", "1")) == 0
    run = _copy(finished, tmp_path / "swapped")
    (run / model).write_bytes((other / model).read_bytes())
    capsys.readouterr()
    for command in (["evaluate", str(run)], ["recommend", str(run), "--user", "1"]):
        assert main(command) == 2
        assert f"{run / model} is not the model this run trained" in _error(capsys)
    # A run saved before run.json kept the model's digest still loads.
    legacy = _copy(finished, tmp_path / "legacy")
    info = json.loads((legacy / "run.json").read_text())
    del info["checksum"], info["model_sha256"]
    (legacy / "run.json").write_text(json.dumps({**info, "checksum": storage.checksum(info)}))
    assert main(["evaluate", str(legacy)]) == 0


def test_a_second_benchmark_on_a_folder_in_use_is_refused(two_catalogues, tmp_path, capsys):
    import fcntl

    out = tmp_path / "bench"
    out.mkdir()
    with open(out / LOCK_FILE, "w") as first:  # as a first benchmark, still running, holds it
        fcntl.flock(first, fcntl.LOCK_EX)
        assert main(_bench(out, two_catalogues[0], "--force")) == 2
        assert f"{out} is in use by another benchmark" in _error(capsys)
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]
    assert main(_bench(out, two_catalogues[0])) == 0  # once it ended
    assert not (out / LOCK_FILE).exists()


def test_a_second_tune_on_a_study_in_use_is_refused(tmp_path, capsys):
    import fcntl

    out = tmp_path / "study"
    out.mkdir()
    argv = ["tune", "--agent", "td3", "--trials", "1", "--timesteps", "40", "--out", str(out),
            "--env-kwargs", SMALL_ENV, "--no-progress"]  # fmt: skip
    with open(out / LOCK_FILE, "w") as first:  # a first tune, appending to the journal
        fcntl.flock(first, fcntl.LOCK_EX)
        assert main([*argv, "--force"]) == 2
        assert f"{out} is in use by another tune" in _error(capsys)
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]


def test_a_refusal_names_the_command_holding_the_folder(two_catalogues, tmp_path, capsys):
    out = tmp_path / "bench"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from pathlib import Path\n"
         "from agents.folder_lock import lock_folder\n"
         f"with lock_folder(Path({str(out)!r}), 'tune', RuntimeError):\n"
         "    print('held', flush=True)\n"
         "    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        assert main(_bench(out, two_catalogues[0])) == 2
        assert f"{out} is in use by tune (pid {holder.pid})" in _error(capsys)
    finally:
        holder.kill()
        holder.wait()


def test_a_user_s_lock_file_is_kept_and_a_lock_that_is_a_folder_is_named(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text("mine")
    assert main(_train(run)) == 0
    assert (run / ".lock").read_text() == "mine"
    capsys.readouterr()
    other = tmp_path / "other"
    (other / LOCK_FILE).mkdir(parents=True)
    assert main(_train(other)) == 2
    assert f"{other / LOCK_FILE} cannot be opened as train's lock: Is a directory" in _error(capsys)


def test_a_second_train_into_a_run_folder_in_use_is_refused(tmp_path, capsys):
    import fcntl

    run = tmp_path / "run"
    run.mkdir()
    with open(run / LOCK_FILE, "w") as first:
        fcntl.flock(first, fcntl.LOCK_EX)
        assert main(_train(run)) == 2
        assert f"{run} is in use by another train" in _error(capsys)
        assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc, where no folder is made")
@pytest.mark.parametrize("command", ["train", "train-td3", "benchmark", "tune", "recommend"])
def test_an_out_folder_that_cannot_be_made_is_refused_before_any_work(
    finished_run, two_catalogues, tmp_path, capsys, command
):
    out = Path("/proc/movielens-rec-test/out")
    argv = {
        "train": _train(out),
        "train-td3": _train_sb3(out),
        "benchmark": _bench(out, two_catalogues[0]),
        "tune": ["tune", "--agent", "td3", "--trials", "1", "--out", str(out)],
        "recommend": ["recommend", str(finished_run), "--all-test-users", "--output",
                      str(out / "r.csv")],
    }[command]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 2
    assert f"{out}: no folder can be made or written there" in _error(capsys)


def test_recommend_does_not_write_into_a_tune_study_s_folder(finished_run, tmp_path, capsys):
    study = tmp_path / "study"
    study.mkdir()
    for name in ("tune.json", "study.journal"):
        (study / name).write_text("the study's")
    argv = ["recommend", str(finished_run), "--all-test-users", "--output",
            str(study / "study.journal"), "--force"]  # fmt: skip
    assert main(argv) == 2
    assert "or a tune study's folder" in _error(capsys)
    assert (study / "study.journal").read_text() == "the study's"


def test_a_plugin_whose_helper_in_a_namespace_package_changed_is_not_served_its_old_results(
    two_catalogues, tmp_path, monkeypatch, capsys
):
    (tmp_path / "value_helper").mkdir()  # a helper folder without __init__.py
    files = {"value_plugin.py": "from value_helper.bonus import VALUE\n",
             "value_helper/bonus.py": ""}  # fmt: skip
    test_a_plugin_whose_helper_module_changed_is_not_served_its_old_results(
        two_catalogues, tmp_path, monkeypatch, capsys, files, "value_plugin"
    )


@pytest.mark.parametrize(
    ("setting", "message"),
    [({"history_len": 5000}, "history_len=5000 must be smaller than the catalogue"),
     ({"slate_size": 5000}, "slate_size=5000 is larger than the")],
)  # fmt: skip
def test_a_history_or_slate_beyond_the_catalogue_is_refused_before_the_mf_fit(
    tmp_path, setting, message
):
    from movielens_env.errors import ArgumentError
    from movielens_env.evaluation.protocols import heldout_env

    kwargs = {"dataset": "synthetic", "embedding_dim": 7, "cache_dir": str(tmp_path), **setting}
    with pytest.raises(ArgumentError, match=message):
        heldout_env(kwargs)
    assert not list(tmp_path.rglob("mf-*"))  # nothing fitted, nothing cached


def test_a_benchmark_config_cannot_train_on_the_test_split():
    from agents.benchmark.runner import BenchmarkConfig

    with pytest.raises(ValueError, match="may not set split: the dataset has its own fields"):
        BenchmarkConfig(env_options={"split": "test"})
    with pytest.raises(ValueError, match="may not set data_dir, dataset"):
        BenchmarkConfig(env_options={"dataset": "ml-100k", "data_dir": "x"})


# --------------------------------------------------------------------------- tenth pass
@pytest.mark.parametrize("cache", ["prepared", "embeddings"])
def test_a_fifo_at_a_cache_s_path_is_replaced_not_waited_on(tmp_path, cache):
    """Reading a FIFO no one writes to blocks for ever: every command hung on it."""
    import os

    from movielens_env import MovieLensRecEnv
    from movielens_env.simulator import world as world_module

    kwargs = {"dataset": "synthetic", "cache_dir": tmp_path, "embedding_dim": 4,
              "mf_options": {"iterations": 2}}  # fmt: skip
    first = MovieLensRecEnv(**kwargs).world
    (path,) = (tmp_path / cache).glob("*.npz")
    path.unlink()
    os.mkfifo(path)
    world_module._CACHE.clear()
    with pytest.warns(UserWarning, match="not a regular file"):
        again = MovieLensRecEnv(**kwargs).world
    np.testing.assert_array_equal(again.mf.item_factors, first.mf.item_factors)
    assert path.is_file()  # the cache was written again in its place


def test_a_recommendations_path_that_is_a_fifo_is_refused_not_waited_on(finished_run, tmp_path):
    import os

    from movielens_env import load_world
    from movielens_env.errors import DataFormatError
    from movielens_env.evaluation.exports import metrics_from_recommendations

    path = tmp_path / "recs.csv"
    os.mkfifo(path)
    world = load_world(**load_agent(finished_run)[1])
    with pytest.raises(DataFormatError, match="not a regular file"):
        metrics_from_recommendations(path, world)


def test_a_config_file_of_many_keys_is_refused_by_its_keys(tmp_path, capsys):
    """Each key was counted against all the others: 100,000 keys took 100 s to refuse."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({f"k{i}": 0 for i in range(200_000)}))
    assert main([*_train(tmp_path / "run"), "--config", str(config)]) == 2
    assert "unknown DRRConfig keys" in _error(capsys)


def test_a_number_of_thousands_of_digits_is_named_in_one_line(tmp_path, capsys):
    digits = "9" * 5000  # beyond what Python reads as an int (4,300 digits)
    assert main(_train(tmp_path / "run", "--set", f"hidden={digits}")) == 2
    assert "DRRConfig.hidden must be an integer, got '9999" in _error(capsys)
    config = tmp_path / "config.json"
    config.write_text(f'{{"hidden": {digits}}}')
    assert main([*_train(tmp_path / "run"), "--config", str(config)]) == 2
    assert "a number of thousands of digits" in _error(capsys)
    assert not (tmp_path / "run").exists()


def _bomb(path):
    """A zip of 96 MiB of zeros deflated to about 100 KB, as a crafted model or cache file."""
    import zipfile

    path.unlink(missing_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.pkl", bytes(96 * 2**20))


def test_a_model_or_cache_that_would_unpack_to_gigabytes_is_not_loaded(
    finished_run, finished_sb3_run, tmp_path, capsys
):
    """Loaders unpack a zip's members whole before any check: a 3 MB checkpoint took 3 GB."""
    from movielens_env import MovieLensRecEnv
    from movielens_env.simulator import world as world_module

    for run, model in ((finished_run, "checkpoint.pt"), (finished_sb3_run, "td3.zip")):
        crafted = _copy(run, tmp_path / model)
        _bomb(crafted / model)
        _reseal(crafted, model)
        capsys.readouterr()
        assert main(["evaluate", str(crafted)]) == 2
        assert "would unpack to 0.1 GiB" in _error(capsys)
    kwargs = {"dataset": "synthetic", "cache_dir": tmp_path / "cache", "embedding_dim": 4,
              "mf_options": {"iterations": 2}}  # fmt: skip
    first = MovieLensRecEnv(**kwargs).world
    for cache in ("prepared", "embeddings"):
        (path,) = (tmp_path / "cache" / cache).glob("*.npz")
        _bomb(path)
        world_module._CACHE.clear()
        with pytest.warns(UserWarning, match="would unpack to 0.1 GiB"):
            again = MovieLensRecEnv(**kwargs).world
        np.testing.assert_array_equal(again.mf.item_factors, first.mf.item_factors)


def test_one_long_title_costs_its_own_length_in_the_cache(tmp_path):
    """Titles were stored fixed-width: every item paid for the longest (a 336 KB u.item made a
    1.35 GB cache)."""
    from movielens_env import load_dataset

    folder = tmp_path / "ml-100k"
    write_ml100k(folder)
    lines = (folder / "u.item").read_text(encoding="latin-1").splitlines()
    fields = lines[1].split("|")
    fields[1] = "Ü" * 200_000
    lines[1] = "|".join(fields)
    (folder / "u.item").write_text("\n".join(lines) + "\n", encoding="latin-1")
    first = load_dataset("ml-100k", folder, cache_dir=tmp_path / "cache")
    (cache,) = (tmp_path / "cache" / "prepared").glob("*.npz")
    assert cache.stat().st_size < 2 * 2**20  # fixed-width: 200 items x 200,000 x 4 bytes
    again = load_dataset("ml-100k", folder, cache_dir=tmp_path / "cache")
    assert list(again.titles) == list(first.titles) and again.titles[1] == "Ü" * 200_000
    assert list(again.genres) == list(first.genres)


def test_ratings_replaced_while_a_benchmark_runs_are_not_stored_under_the_old_key(
    two_catalogues, tmp_path, capsys, monkeypatch
):
    """Each run reloads the ratings by name: a run done after the files were replaced was
    stored under the first data's key, and reused as such."""
    from agents.benchmark import runner

    data = tmp_path / "ml-100k"
    data.mkdir()
    for name in ("u.data", "u.item"):
        (data / name).write_bytes((two_catalogues[0] / name).read_bytes())
    run_one = runner.run_one

    def replaced_meanwhile(config, agent, *args):
        if agent == "random":  # the second agent's run reads the other ratings
            (data / "u.data").write_bytes((two_catalogues[1] / "u.data").read_bytes())
        return run_one(config, agent, *args)

    monkeypatch.setattr(runner, "run_one", replaced_meanwhile)
    out = tmp_path / "bench"
    # --jobs 1: the patch reaches this process only, not worker processes.
    assert main([*_bench(out, data), "--jobs", "1"]) == 2
    assert "random seed 0's result came (at least in part) from other data" in _error(capsys)
    assert sorted(p.name for p in (out / "runs").glob("*.json")) == ["popularity-seed0.json"]


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_a_run_folder_refilled_without_its_mark_is_noted(two_catalogues, tmp_path, capsys):
    out = tmp_path / "bench"
    bench = [*_bench_td3(out, two_catalogues[0]), "--seeds", "0,1"]
    assert main(bench) == 0
    seed0, seed1 = out / "runs" / "td3-seed0", out / "runs" / "td3-seed1"
    for path in seed0.iterdir():
        path.unlink()
    for path in seed1.iterdir():  # copied as `cp seed1/* seed0/` does: without the dot-file
        if not path.name.startswith("."):
            (seed0 / path.name).write_bytes(path.read_bytes())
    capsys.readouterr()
    assert main(bench) == 0
    assert (
        "td3-seed0 (the trained model movielens-rec evaluate reads) is replaced by the run "
        "of seed 1" in capsys.readouterr().err
    )


def test_metrics_at_a_k_deeper_than_the_exported_ranks_are_refused(finished_run, tmp_path):
    from movielens_env import load_world
    from movielens_env.errors import ArgumentError
    from movielens_env.evaluation.exports import metrics_from_recommendations

    path = tmp_path / "recs.csv"
    argv = ["recommend", str(finished_run), "--all-test-users", "--protocol", "full", "--k", "5",
            "--output", str(path)]  # fmt: skip
    assert main(argv) == 0
    world = load_world(**load_agent(finished_run)[1])
    with pytest.raises(ArgumentError, match="ranks at most 5 items per user: metrics @10"):
        metrics_from_recommendations(path, world)
    assert set(metrics_from_recommendations(path, world, ks=(5,))) >= {"precision@5"}


def test_files_at_the_cache_s_top_are_not_served_as_every_release(tmp_path, monkeypatch):
    from movielens_env import load_dataset
    from movielens_env.errors import DataNotFoundError

    write_ml100k(tmp_path)  # u.data and u.item at the top of the cache, not in ml-100k/
    monkeypatch.setenv("MOVIELENS_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError):
        load_dataset("ml-100k", download=False)
    assert load_dataset("ml-100k", tmp_path).n_users == 80  # given as the data: read


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_a_replacement_whose_files_cannot_be_written_leaves_the_old_run(
    finished_run, finished_sb3_run, tmp_path, monkeypatch, capsys
):
    """The old run was removed first, then the new model's write failed (a full disk): the
    folder held no run at all."""
    import errno

    import stable_baselines3.common.base_class as sb3_base

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    for run, saver, train in (
        (finished_run, (torch, "save"), _train),
        (finished_sb3_run, (sb3_base.BaseAlgorithm, "save"), _train_sb3),
    ):
        copy = _copy(run, tmp_path / run.name)
        before = _snapshot(copy)
        with monkeypatch.context() as patch:
            patch.setattr(*saver, full)
            capsys.readouterr()
            assert main(train(copy, "--seed", "1", "--force")) == 2
            err = capsys.readouterr().err  # after the progress bar
            assert re.search(
                r"error: No space left on device( writing \S+)?; what was being written was "
                "discarded",
                err,
            ), err
        assert _snapshot(copy) == before


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_force_refuses_what_its_runs_would_refuse_before_removing_anything(
    two_catalogues, tmp_path, capsys
):
    out = tmp_path / "bench"
    assert main(_bench_td3(out, two_catalogues[0])) == 0
    before = _snapshot(out)
    capsys.readouterr()
    config = tmp_path / "slow.json"
    config.write_text('{"gradient_steps": 1024, "batch_size": 4096}')
    for extra, message in (
        (["--planner-width", "5000"], "BeamPlanner width must be an integer in [1, 4096]"),
        (["--config", f"td3={config}"], "SB3Config: 1,024 gradient steps per collected batch"),
    ):
        assert main([*_bench_td3(out, two_catalogues[0]), *extra, "--force"]) == 2
        assert message in _error(capsys)
        assert _snapshot(out) == before


def test_a_results_folder_whose_runs_is_a_link_is_refused(two_catalogues, tmp_path, capsys):
    first, second = tmp_path / "a", tmp_path / "b"
    assert main(_bench(first, two_catalogues[0])) == 0
    before = _snapshot(first)
    second.mkdir()
    (second / "runs").symlink_to(first / "runs")
    capsys.readouterr()
    assert main([*_bench(second, two_catalogues[0]), "--seeds", "1", "--force"]) == 2
    assert f"{second / 'runs'} is a link" in _error(capsys)
    assert _snapshot(first) == before


def test_resume_refuses_a_checkpoint_swapped_in_from_another_run(finished_run, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(_train(other, "--seed", "1")) == 0
    run = _copy(finished_run, tmp_path / "swapped")
    (run / "checkpoint.pt").write_bytes((other / "checkpoint.pt").read_bytes())
    before = _snapshot(run)
    capsys.readouterr()
    assert main(["train", "--resume", "--episodes", "8", "--out", str(run)]) == 2
    assert f"{run / 'checkpoint.pt'} is not the model this run trained" in _error(capsys)
    assert _snapshot(run) == before


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_a_refusal_names_only_what_differs(two_catalogues, tmp_path, capsys):
    """An SB3 config's tuple compared unequal to its stored list: agent_config was named too."""
    out = tmp_path / "bench"
    assert main(_bench_td3(out, two_catalogues[0])) == 0
    capsys.readouterr()
    assert main([*_bench_td3(out, two_catalogues[0]), "--timesteps", "30"]) == 2
    assert "(differs in timesteps)" in _error(capsys)


@pytest.mark.parametrize("stage", ["before its rename", "after its rename"])
def test_a_run_stopped_while_its_checkpoint_is_replaced_stays_usable(
    finished_run, tmp_path, monkeypatch, stage
):
    """run.json records the checkpoint's digest: written after the new checkpoint took its
    name, a stop in between left a run refused as "not the model this run trained"."""
    from agents.drr import train as drr_train

    real = drr_train.write_run_info

    def stopped(run_dir, info):
        both = isinstance(info.get("model_sha256"), list)
        if stage == "before its rename" and both:
            real(run_dir, info)
            raise KeyboardInterrupt
        if stage == "after its rename" and not both:
            raise KeyboardInterrupt
        return real(run_dir, info)

    run = _copy(finished_run, tmp_path / "run")
    with monkeypatch.context() as patch:
        patch.setattr(drr_train, "write_run_info", stopped)
        assert (
            main(["train", "--resume", "--episodes", "8", "--out", str(run)]) == 130
        )  # Ctrl-C: one line, exit 130
    assert main(["evaluate", str(run)]) == 0
    assert main(["train", "--resume", "--episodes", "8", "--out", str(run)]) == 0


@pytest.mark.filterwarnings("ignore:DRR took no gradient step")
def test_a_benchmark_stopped_between_a_drr_checkpoint_and_its_record_resumes(
    two_catalogues, tmp_path
):
    """The checkpoint marks a run folder before run.json does: the rerun took that folder for
    another configuration's run and asked for --force."""
    out = tmp_path / "bench"
    bench = [*_bench(out, two_catalogues[0]), "--agents", "drr-ave", "--timesteps", "20"]
    assert main(bench) == 0
    run = out / "runs" / "drr-ave-seed0"
    (run / "run.json").unlink()
    (out / "runs" / "drr-ave-seed0.json").unlink()
    mark = json.loads((run / ".benchmark-run.json").read_text())
    (run / ".benchmark-run.json").write_text(json.dumps({**mark, "run": None}))
    assert main(bench) == 0
    assert json.loads((out / "runs" / "drr-ave-seed0.json").read_text())["agent"] == "drr-ave"


def test_resume_refuses_to_report_an_older_evaluation_as_the_run_s(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path / "run")
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    payload["curve"] = payload["curve"][:-1]  # as a run stopped between evaluations
    torch.save(payload, run / "checkpoint.pt")
    _reseal(run)
    capsys.readouterr()
    assert main(["train", "--resume", "--episodes", "4", "--out", str(run)]) == 2
    assert "already holds the 4 episodes asked, so nothing is trained" in _error(capsys)


@pytest.mark.parametrize("trick", ["shared lists", "a stride-0 tensor"])
def test_a_checkpoint_of_lists_shared_many_times_over_is_not_walked(
    finished_run, tmp_path, capsys, trick
):
    """Pickle keeps shared objects: 40 nested pairs of one list are a few hundred bytes on disk
    and 2**40 values in an error message; evaluate grew to GBs without end. A tensor viewing
    one stored value as 10**9 (stride 0) took GBs on resume."""
    run = _copy(finished_run, tmp_path / "run")
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    if trick == "shared lists":
        shared: list = [0]
        for _ in range(40):
            shared = [shared, shared]
        payload["config"]["state"] = shared
    else:
        payload["running"] = torch.zeros(1).expand(10**9)
    torch.save(payload, run / "checkpoint.pt")
    _reseal(run)
    capsys.readouterr()
    command = ["evaluate", str(run)] if trick == "shared lists" else [
        "train", "--resume", "--episodes", "8", "--out", str(run)]  # fmt: skip
    assert main(command) == 2
    assert "expanded, hold more than 100,000,000 values" in _error(capsys)


def test_an_item_file_of_thousands_of_genres_is_refused_at_its_line(tmp_path):
    from movielens_env import load_dataset
    from movielens_env.errors import DataFormatError

    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,10\n1,2,3.0,11\n")
    many = "|".join(f"g{j}" for j in range(2_000))
    (folder / "movies.csv").write_text(f"movieId,title,genres\n1,A (1995),Drama\n2,B,{many}\n")
    with pytest.raises(DataFormatError, match=r"movies.csv:3: more than 1,000 distinct genres"):
        load_dataset("ml-latest-small", folder, cache_dir=tmp_path / "cache")


def test_files_replaced_while_parsed_are_not_cached_under_the_old_key(tmp_path, monkeypatch):
    from movielens_env import load_dataset
    from movielens_env.data import load as load_module

    folder = tmp_path / "ml-100k"
    write_ml100k(folder, seed=4)
    other = tmp_path / "other"
    write_ml100k(other, seed=5)
    parse = load_module._parse

    def replaced_meanwhile(*args):
        dataset = parse(*args)  # what was read, then another process replaces the file
        (folder / "u.data").write_bytes((other / "u.data").read_bytes())
        return dataset

    monkeypatch.setattr(load_module, "_parse", replaced_meanwhile)
    with pytest.warns(UserWarning, match="files changed while they were read; this parse was"):
        load_dataset("ml-100k", folder, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache" / "prepared").glob("*.npz"))


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
@pytest.mark.filterwarnings("ignore:DRR took no gradient step")
@pytest.mark.parametrize(
    "agent, edit, note",
    [
        ("td3", lambda info: {"config": {**info["config"], "learning_rate": 0.5}},
         "replaced by a run of another agent config"),
        ("drr-ave", lambda info: {"episodes_done": 1},
         "replaced by an unfinished run (1 of its 2 episodes)"),
        ("drr-ave", lambda info: {"extended_from": 1},
         "replaced by a run extended from 1 episodes"),
    ],
)  # fmt: skip
def test_a_run_folder_refilled_by_hand_with_another_run_is_noted(
    two_catalogues, tmp_path, capsys, agent, edit, note
):
    """Refilled without its mark (cp skips dot-files) by a run of the same seed: another
    config, or the same planned total unfinished or extended, passed unnoted."""
    out = tmp_path / "bench"
    bench = [*_bench(out, two_catalogues[0]), "--agents", agent, "--timesteps", "20"]
    assert main(bench) == 0
    run = out / "runs" / f"{agent}-seed0"
    info = json.loads((run / "run.json").read_text())
    del info["checksum"]
    info.update(edit(info))
    (run / "run.json").write_text(json.dumps({**info, "checksum": storage.checksum(info)}))
    (run / ".benchmark-run.json").unlink()
    capsys.readouterr()
    assert main(bench) == 0
    assert note in capsys.readouterr().err


def test_only_the_state_representations_reading_pairs_hold_their_indices():
    """drr-ave held n (n - 1) / 2 index pairs per module: 1.8 GB each for 15,000 items."""
    from agents.drr.state import StateRepresentation

    assert StateRepresentation("drr-ave", 4, 20_000).pair_first.numel() == 0
    assert StateRepresentation("drr-u", 4, 5).pair_first.numel() == 10


def test_a_run_resumed_past_its_planned_total_says_so(finished_run, tmp_path):
    run = _copy(finished_run, tmp_path / "run")
    assert main(["train", "--resume", "--episodes", "6", "--out", str(run)]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["extended_from"] == 4 and info["episodes"] == 6


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
@pytest.mark.parametrize("kind", ["drr", "sb3"])
def test_ctrl_c_while_a_run_is_replaced_leaves_the_new_run_whole(
    finished_run, finished_sb3_run, tmp_path, monkeypatch, kind
):
    """A Ctrl-C between removing the old run and renaming the new files in lost both: the old
    was gone and the interrupted writer discarded the new one's temporaries."""
    import os
    import signal

    from agents.drr import train as drr_train
    from agents.sb3 import artefact as sb3_artefact

    module, run, train = {
        "drr": (drr_train, finished_run, _train),
        "sb3": (sb3_artefact, finished_sb3_run, _train_sb3),
    }[kind]
    copy = _copy(run, tmp_path / kind)
    remove = module.remove_run

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, right as the old run goes
        return remove(*args, **kwargs)

    monkeypatch.setattr(module, "remove_run", interrupted)
    assert main(train(copy, "--seed", "1", "--force")) == 130  # Ctrl-C: one line, exit 130
    monkeypatch.undo()
    assert json.loads((copy / "run.json").read_text())["seed"] == 1  # the new run, whole
    assert main(["evaluate", str(copy)]) == 0


def test_genre_fields_that_name_no_genre_read_as_none_and_line_breaks_are_refused(tmp_path):
    """A field of one space gave the genre "" on parsing and none from the cache, under one
    fingerprint; a line break inside a genre let two genre tables hash alike."""
    from movielens_env import load_dataset
    from movielens_env.errors import DataFormatError

    def release(name: str, genres: str):
        folder = tmp_path / name / "ml-latest-small"
        folder.mkdir(parents=True)
        (folder / "ratings.csv").write_text(
            "userId,movieId,rating,timestamp\n1,1,4.0,10\n1,2,3.0,11\n2,1,5.0,12\n"
        )
        (folder / "movies.csv").write_text(f"movieId,title,genres\n1,A,{genres}\n2,B,Drama\n")
        return folder

    cache = tmp_path / "cache"
    folder = release("spaces", " ")
    spaces = load_dataset("ml-latest-small", folder, cache_dir=cache)
    cached = load_dataset("ml-latest-small", folder, cache_dir=cache)  # from the prepared cache
    empty = load_dataset("ml-latest-small", release("empty", ""), cache_dir=cache)
    assert spaces.genres[0] == cached.genres[0] == empty.genres[0] == ()
    assert spaces.fingerprint() == cached.fingerprint() == empty.fingerprint()
    # A genre named twice is one genre: its satiation weight was halved as if two.
    twice = load_dataset(
        "ml-latest-small", release("twice", "Action|Drama|Action"), cache_dir=cache
    )
    once = load_dataset("ml-latest-small", release("once", "Action|Drama"), cache_dir=cache)
    assert twice.genres[0] == once.genres[0] == ("Action", "Drama")
    with pytest.raises(DataFormatError, match=r"movies.csv:2: the genre name 'Action\\nComedy'"):
        load_dataset("ml-latest-small", release("broken", '"Action\nComedy"'), cache_dir=cache)


def test_a_zip_of_thousands_of_members_is_refused_before_extracting(tmp_path):
    """Empty members pass every size check: a million took minutes of file creation."""
    import zipfile

    from movielens_env import load_dataset
    from movielens_env.errors import UnsafeArchiveError

    path = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml-100k/u.data", "1\t1\t5\t1\n")
        for i in range(10_001):
            archive.writestr(f"ml-100k/e/{i}", b"")
    with pytest.raises(UnsafeArchiveError, match="10,002 members, beyond 10,000"):
        load_dataset("ml-100k", path, cache_dir=tmp_path / "cache")


def test_a_genre_table_beyond_its_memory_bound_is_refused(small_dataset, monkeypatch):
    from movielens_env import MovieLensRecEnv
    from movielens_env.simulator import user_model

    monkeypatch.setattr(user_model, "MAX_GENRE_CELLS", 10)
    user_model.genre_table.cache_clear()
    with pytest.raises(ValueError, match=r"items x .* genres = .* satiation weights, beyond 10"):
        MovieLensRecEnv(dataset=small_dataset, user_model="boredom", embedding_dim=4)
    user_model.genre_table.cache_clear()


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
@pytest.mark.filterwarnings("ignore:DRR took no gradient step")
@pytest.mark.parametrize("files", ["another tool's run.json beside td3.zip", "a torch checkpoint"])
def test_force_never_takes_another_tool_s_files_for_a_run(tmp_path, capsys, files):
    """Any run.json beside a model file, or any checkpoint with a "config", was taken for this
    tool's (damaged) run, and --force replaced it."""
    folder = tmp_path / "mine"
    folder.mkdir()
    if files.startswith("another"):
        (folder / "run.json").write_text('{"experiment": "my own sb3 run"}')
        (folder / "td3.zip").write_bytes(b"PK my weights")
        argv = _train_sb3(folder, "--force")
    else:
        torch.save({"format_version": 1, "config": {"lr": 0.01}}, folder / "checkpoint.pt")
        (folder / "config.json").write_text('{"lr": 0.01}')
        argv = _train(folder, "--force")
    before = _snapshot(folder)
    capsys.readouterr()
    assert main(argv) == 2
    assert "movielens-rec: error:" in capsys.readouterr().err
    assert _snapshot(folder) == before


# --------------------------------------------------------------------------- fifteenth pass
@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_a_train_run_kept_in_a_baseline_s_run_folder_is_never_removed(
    two_catalogues, finished_sb3_run, tmp_path, capsys
):
    """Agents that save no model leave their folder's mark naming no run for good, and such a
    mark passed any run.json beside it as the benchmark's own: --force removed a train run."""
    out = tmp_path / "bench"
    assert main(_bench(out, two_catalogues[0])) == 0
    folder = out / "runs" / "popularity-seed0"
    for name in ("td3.zip", "run.json", "learning_curve.csv"):
        (folder / name).write_bytes((finished_sb3_run / name).read_bytes())
    before = _snapshot(folder)
    capsys.readouterr()
    other_env = json.dumps({**json.loads(SMALL_ENV), "max_episode_steps": 3})
    assert main([*_bench(out, two_catalogues[0]), "--env-kwargs", other_env, "--force"]) == 2
    assert "holds runs no benchmark made, or links to runs elsewhere" in _error(capsys)
    assert _snapshot(folder) == before


@pytest.mark.filterwarnings("ignore:DRR took no gradient step")
@pytest.mark.parametrize(
    "kept",
    ["a DRR train run", "one of the benchmark's config", "one of its settings on other ratings",
     "a damaged run.json"],
)  # fmt: skip
def test_a_train_run_kept_in_a_stopped_benchmark_s_run_folder_is_never_removed(
    two_catalogues, finished_run, tmp_path, capsys, kept
):
    """A benchmark stopped while training leaves a mark naming no run; a DRR train run of
    another budget and env put there passed as the benchmark's (DRR records episodes, not
    timesteps, and the env was not compared), and --force replaced it."""
    out = tmp_path / "bench"
    bench = [*_bench(out, two_catalogues[0]), "--agents", "drr-ave", "--timesteps", "20"]
    assert main(bench) == 0
    folder = out / "runs" / "drr-ave-seed0"
    mark = json.loads((folder / ".benchmark-run.json").read_text())
    for path in folder.iterdir():  # as the benchmark stopped while training leaves it
        if path.name != ".benchmark-run.json":
            path.unlink()
    (out / "runs" / "drr-ave-seed0.json").unlink()
    (folder / ".benchmark-run.json").write_text(json.dumps({**mark, "run": None}))
    run = finished_run
    if kept == "one of the benchmark's config":  # the default config, on other data and env
        run = tmp_path / "mine"
        argv = ["train", "--agent", "drr-ave", "--episodes", "1", "--out", str(run)]
        assert main([*argv, "--env-kwargs", SMALL_ENV]) == 0
    if kept == "one of its settings on other ratings":  # DRR's record held no data
        run = tmp_path / "mine"
        argv = ["train", "--agent", "drr-ave", "--episodes", "2", "--out", str(run),
                "--dataset", "ml-100k", "--data-dir", str(two_catalogues[1])]  # fmt: skip
        assert main([*argv, "--env-kwargs", SMALL_ENV]) == 0
    for path in run.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    if kept == "a damaged run.json":
        (folder / "run.json").write_text((folder / "run.json").read_text()[:-20])
    before = _snapshot(folder)
    capsys.readouterr()
    assert main([*bench, "--force"]) == 2
    assert "holds runs no benchmark made, or links to runs elsewhere" in _error(capsys)
    assert _snapshot(folder) == before


@pytest.mark.parametrize("name", ["u.data", "u.item"])
def test_a_data_file_of_more_lines_than_any_grouplens_file_is_refused_before_parsing(
    tmp_path, monkeypatch, name
):
    """A 2 GiB file in 8-byte lines was within the byte limit and took 18 GB to parse."""
    from movielens_env import load_dataset
    from movielens_env.data import parsing

    limit = 10
    monkeypatch.setattr(parsing, "MAX_RATING_LINES" if name == "u.data" else "MAX_ITEM_LINES", 10)
    write_ml100k(tmp_path / "ml-100k", n_users=20)  # more than 10 ratings and 10 items
    with pytest.raises(ValueError, match=rf"{name}: [\d,]+ lines, .* \(the limit is {limit}\)"):
        load_dataset("ml-100k", tmp_path / "ml-100k", cache_dir=tmp_path / "cache")


def test_an_item_file_larger_than_any_grouplens_item_file_is_refused(tmp_path):
    from movielens_env import load_dataset

    write_ml100k(tmp_path / "ml-100k", n_users=20)
    with open(tmp_path / "ml-100k" / "u.item", "r+b") as handle:
        handle.truncate(100 * 2**20)
    with pytest.raises(ValueError, match=r"u.item: 100 MiB, .* the limit for this file is 64 MiB"):
        load_dataset("ml-100k", tmp_path / "ml-100k", cache_dir=tmp_path / "cache")


def test_a_loop_of_links_where_a_path_is_given_is_named_in_one_line(
    finished_run, tmp_path, monkeypatch, capsys
):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    capsys.readouterr()
    argv = ["recommend", str(finished_run), "--all-test-users", "--output", str(loop)]
    assert main(argv) == 2
    assert f"--output {loop}: a loop of symbolic links" in _error(capsys)
    monkeypatch.setenv("MOVIELENS_DATA", str(loop))
    assert main(["rollout", "--episodes", "1"]) == 2
    assert f"{loop}: a loop of symbolic links" in _error(capsys)


def test_a_record_beside_a_mark_of_a_run_in_training_must_state_its_budget():
    """A plugin's run.json recording its budget as "steps" passed as any budget: a user's
    5,000-step run there was retrained over as the benchmark's own 200-step run."""
    from agents.benchmark.runner import _trained_under

    key = {"dataset": "synthetic", "env_options": {}, "data": "d", "timesteps": 200,
           "agent_config": {"scale": 1.0}}  # fmt: skip
    info = {"agent": "my-agent", "seed": 0, "config": {"scale": 1.0}, "data": "d",
            "env_kwargs": {"dataset": "synthetic"}}  # fmt: skip
    mark = {"key": key, "run": None}
    assert not _trained_under(mark, {**info, "steps": 5000}, "my-agent-seed0")
    assert _trained_under(mark, {**info, "timesteps": 200}, "my-agent-seed0")
    assert not _trained_under(mark, {**info, "timesteps": 5000}, "my-agent-seed0")
    assert not _trained_under(mark, {**info, "timesteps": 200}, "my-agent-seed1")


def test_recommend_for_one_user_takes_any_policy_a_plugin_s_model_may_be(
    finished_run, monkeypatch, capsys
):
    """A plugin artefact may load a plain obs -> action callable (evaluate and --all-test-users
    took it); one user's list called .predict on it."""
    from agents import run_commands

    real = run_commands._load
    assert main(["recommend", str(finished_run), "--user", "1", "--k", "3"]) == 0
    expected = capsys.readouterr().out

    def as_callable(args):
        agent, policy, env_kwargs = real(args)
        return agent, lambda obs: policy.predict(obs[None], deterministic=True)[0][0], env_kwargs

    monkeypatch.setattr(run_commands, "_load", as_callable)
    assert main(["recommend", str(finished_run), "--user", "1", "--k", "3"]) == 0
    assert capsys.readouterr().out == expected


@pytest.mark.parametrize("kind", ["symbolic link", "hard link", "fifo"])
def test_a_lock_file_that_is_a_link_is_never_written_through(tmp_path, capsys, kind):
    """The lock writes its holder's name into its file: a link at its name (a folder from a
    colleague's tarball) had the file it points to overwritten, by a refused command too."""
    import os

    run = tmp_path / "run"
    run.mkdir()
    target = tmp_path / "thesis.txt"
    target.write_text("my thesis")
    if kind == "symbolic link":
        (run / LOCK_FILE).symlink_to(target)
    elif kind == "hard link":
        os.link(target, run / LOCK_FILE)
    else:
        os.mkfifo(run / LOCK_FILE)
    capsys.readouterr()
    assert main(_train(run)) == 2
    assert "cannot be opened as train's lock" in _error(capsys) or kind != "symbolic link"
    assert target.read_text() == "my thesis"
    assert os.path.lexists(run / LOCK_FILE)  # left for the user to move away


def test_a_plugin_s_code_key_walks_no_folder_a_string_merely_names(tmp_path):
    """A string "env" beside a virtualenv called env made the key walk and hash every file in
    it (minutes, silently); a 300-letter string failed the import with ENAMETOOLONG."""
    from agents.registry import _plugin_sources

    (tmp_path / "env" / "lib").mkdir(parents=True)
    (tmp_path / "env" / "lib" / "site.py").write_text("x = 1\n")
    (tmp_path / "helper.py").write_text("y = 2\n")
    plugin = tmp_path / "plug.py"
    plugin.write_text(f"settings = {{'env': 1, 'banner': '{'Q' * 300}'}}\nH = 'helper'\n")
    assert [label for label, _ in _plugin_sources("plug", plugin)] == ["helper.py", "plug.py"]
    plugin.write_text("import env\n")  # imported, a namespace package is code
    assert "env/lib/site.py" in [label for label, _ in _plugin_sources("plug", plugin)]


def test_a_plugin_s_code_key_never_reads_a_huge_file_named_like_a_module_whole(tmp_path):
    """A string naming a 3 GB helper.py beside the plugin (never imported) made the key parse
    it: the whole file in memory (3.4 GB), or a MemoryError under `ulimit -v`."""
    (tmp_path / "plug.py").write_text("HELPER = 'bighelper'\n")
    with open(tmp_path / "bighelper.py", "wb") as big:
        big.truncate(3 * 2**30)  # sparse: no disk taken
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from agents.registry import _plugin_sources\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, resource.RLIM_INFINITY))\n"
        "print([label for label, _ in _plugin_sources('plug', Path(sys.argv[1]))])\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "plug.py")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['bighelper.py', 'plug.py']"  # hashed, not parsed


def test_the_memory_check_counts_the_process_s_own_limit():
    """Only MemAvailable was read: under `ulimit -v` (or a container's cgroup limit) a replay
    the machine could hold passed the check, then numpy's MemoryError came as a traceback."""
    script = (
        "import resource\n"
        "from movielens_env.storage import available_memory\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, resource.RLIM_INFINITY))\n"
        "print(available_memory() < 3 * 2**30)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


@pytest.mark.parametrize(
    "field, value", [("running", torch.zeros(3)), ("losses", [[1.0]]), ("episode_returns", [])]
)
def test_a_checkpoint_whose_training_state_has_another_shape_is_refused_on_resume(
    finished_run, tmp_path, capsys, field, value
):
    """Resume used the saved returns, losses and arrays as they came: a crafted, re-signed
    checkpoint ended in a raw broadcasting or type error deep in training."""
    run = _copy(finished_run, tmp_path / "run")
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    payload[field] = value
    torch.save(payload, run / "checkpoint.pt")
    _reseal(run)
    capsys.readouterr()
    assert main(["train", "--resume", "--episodes", "8", "--out", str(run)]) == 2
    assert f"checkpoint.pt: its {field} is not" in _error(capsys)


# --------------------------------------------------------------------------- pass 22
@pytest.mark.parametrize(
    "blocker",
    [
        "runs/random-seed0",
        "runs/random-seed0/.benchmark-run.json",
        "leaderboard.md",
        "runs/popularity-seed0/.movielens-rec.lock",
    ],
)
def test_force_removes_nothing_where_the_grid_s_paths_are_taken(
    two_catalogues, tmp_path, capsys, blocker
):
    """A file where a run folder goes (or a folder where the mark or the leaderboard goes) made
    benchmark --force remove the other configuration's records, run folders and leaderboard,
    then fail on that path (or end in a raw IsADirectoryError): nothing of either was left."""
    out = tmp_path / "bench"
    assert main(_bench(out, two_catalogues[0], "--agents", "popularity")) == 0
    kept = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    path = out / blocker
    if blocker == "leaderboard.md":
        path.unlink()
        path.mkdir()
        del kept[Path(blocker)]
    elif path.name.startswith("."):
        path.mkdir(parents=True)
    else:
        path.parent.mkdir(exist_ok=True)
        path.write_text("my notes")
    capsys.readouterr()
    assert main(_bench(out, two_catalogues[1], "--force")) == 2
    err = _error(capsys)
    assert "what a benchmark cannot write over" in err and Path(blocker).name in err
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()
            if p.relative_to(out) not in (Path(blocker),)} == kept  # fmt: skip


def test_an_out_path_through_dot_dot_never_removes_the_user_s_empty_folder(tmp_path, capsys):
    """`--out missing/../results`, results an empty folder of the user's: the path check made
    missing/, failed making missing/.. (it exists), then removed every folder of the path it
    found a folder at: results too."""
    from agents.run_folder import check_folder_path

    (tmp_path / "results").mkdir()
    check_folder_path(tmp_path / "missing" / ".." / "results", ValueError)
    assert (tmp_path / "results").is_dir() and not (tmp_path / "missing").exists()
    check_folder_path(tmp_path / "new" / ".." / "made" / "deep", ValueError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


@pytest.mark.parametrize("name", ["learning_curve.csv", "run.json"])
def test_train_force_refuses_a_folder_at_a_run_file_s_name_before_removing_the_run(
    finished_run, tmp_path, capsys, name
):
    """A folder where the curve goes: train --force removed the old run's checkpoint, config
    and run.json, then ended in a raw IsADirectoryError; no run was left."""
    run = _copy(finished_run, tmp_path / "run")
    (run / name).unlink(missing_ok=True)
    (run / name).mkdir()
    (run / name / "mine.txt").write_text("my notes")
    kept = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(_train(run, "--force")) == 2
    assert f"holds folders named {name}" in _error(capsys)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == kept


# --------------------------------------------------------------------------- pass 23
def test_the_folder_lock_never_removes_a_folder_it_did_not_make(tmp_path, capsys, monkeypatch):
    """`--out missing/../mine` does not exist as spelled: the lock took `mine` for a folder it
    made, and removed the user's empty `mine` when the command failed inside it."""
    from agents.folder_lock import lock_folder

    mine = tmp_path / "mine"
    mine.mkdir()
    with pytest.raises(RuntimeError), lock_folder(tmp_path / "missing" / ".." / "mine", "t",
                                                  ValueError):  # fmt: skip
        raise RuntimeError("the command failed before writing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # missing/ made, then removed
    with lock_folder(tmp_path / "a" / "b", "t", ValueError):
        assert (tmp_path / "a" / "b").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    monkeypatch.chdir(tmp_path)  # as the user typed it
    capsys.readouterr()
    assert (
        main(_train(Path("missing/../mine"), "--dataset", "ml-100k", "--data-dir", "nodata")) == 2
    )
    _error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_a_damaged_record_moved_aside_never_replaces_a_link_at_the_kept_name(
    two_catalogues, tmp_path
):
    """`NAME.invalid` was taken as free where a link pointing nowhere stood there: the user's
    link was replaced by the record."""
    out = tmp_path / "bench"
    assert main(_bench(out, two_catalogues[0], "--agents", "random")) == 0
    record = out / "runs" / "random-seed0.json"
    (out / "runs" / "random-seed0.json.invalid").symlink_to(tmp_path / "gone")
    record.write_text(record.read_text() + "\n{}")
    with pytest.warns(UserWarning, match="kept as random-seed0.json.invalid1"):
        assert main(_bench(out, two_catalogues[0], "--agents", "random")) == 0
    assert (out / "runs" / "random-seed0.json.invalid").is_symlink()


def test_a_measuring_script_stopped_by_ctrl_c_says_so_in_one_line(capsys):
    """headroom.py and throughput.py ended in a KeyboardInterrupt traceback."""
    from agents.benchmark.script_results import run_script

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert run_script(interrupted, "headroom.py") == 130
    assert capsys.readouterr().err == "\nheadroom.py: interrupted\n"


def _craft_sb3_optimizer_state(run, value) -> None:
    """Put ``value`` into the actor optimizer's state in the run's td3.zip, and reseal."""
    import io
    import zipfile

    original = (run / "td3.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(original)) as source, \
            zipfile.ZipFile(run / "td3.zip", "w", zipfile.ZIP_DEFLATED) as crafted:  # fmt: skip
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "actor.optimizer.pth":
                state = torch.load(io.BytesIO(data), weights_only=True)
                state["state"].setdefault(state["param_groups"][0]["params"][0], {})["x"] = value
                buffer = io.BytesIO()
                torch.save(state, buffer)
                data = buffer.getvalue()
            crafted.writestr(info, data)
    _reseal(run, "td3.zip")


@pytest.mark.parametrize("kind", ["shared lists", "stride-0 tensor"])
def test_a_crafted_sb3_zip_is_refused_before_its_optimizer_state_is_walked(
    finished_sb3_run, tmp_path, capsys, kind
):
    """60 nested pairs of one list in an optimizer's state (a file as small as the original)
    made torch's optimizer loading copy 2**60 lists: evaluate and recommend ran for ever,
    taking GBs; a stride-0 tensor of 10**9 values took GBs before any message."""
    nested: list = [0.0]
    for _ in range(60):
        nested = [nested, nested]
    value = nested if kind == "shared lists" else torch.zeros(1).expand(1_000_000_000)
    run = _copy(finished_sb3_run, tmp_path / "crafted")
    _craft_sb3_optimizer_state(run, value)
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    assert "td3.zip: its containers, expanded, hold more than" in _error(capsys)


@pytest.mark.parametrize("how", ["-c", "stdin"])
def test_an_agent_defined_without_a_source_file_is_never_served_another_session_s_results(how):
    """An agent registered from a notebook or `python -c` had the built-in agents' code key
    (None): a later session with edited code was served the old results. Fed on stdin, its
    registration ended in a raw FileNotFoundError ('<stdin>')."""
    script = (
        "import warnings\n"
        "from agents.registry import TrainedAgent, register_agent\n"
        "from agents.baselines import RandomRanker\n"
        "def train_mine(ctx):\n"
        "    return TrainedAgent(RandomRanker(ctx.seed))\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    first = register_agent('mine', train_mine, 'mine', is_rl=False).code\n"
        "    again = register_agent('mine', train_mine, 'mine', is_rl=False, replace=True).code\n"
        "said = 'reused only in this process' in str(caught[0].message)\n"
        "print(first, again, len(caught), said)\n"
    )

    def registered() -> list[str]:
        argv, given = ([sys.executable, "-c", script], None) if how == "-c" else (
            [sys.executable, "-"], script)  # fmt: skip
        done = subprocess.run(argv, input=given, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    first, again, warned, said = registered()
    assert first != "None" and first != again and (warned, said) == ("2", "True")
    assert registered()[0] != first  # another session: another key, so never reused


# --------------------------------------------------------------------------- pass 24
@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
@pytest.mark.parametrize(
    "blocker", ["user's checkpoint.pt", "hard-linked lock", "link to a folder"]
)
def test_force_removes_nothing_where_a_run_folder_would_refuse_its_training(
    two_catalogues, tmp_path, capsys, blocker
):
    """A user's checkpoint.pt beside a benchmark's run, a lock file hard-linked by a backup, or
    a link to a folder at the run's mark: --force removed the other configuration's records,
    runs and leaderboard, then the run refused (or failed on) its folder."""
    import os

    out = tmp_path / "bench"
    assert main(_bench_td3(out, two_catalogues[0], "--seeds", "0,1")) == 0
    run = out / "runs" / "td3-seed0"
    if blocker == "user's checkpoint.pt":
        (run / "checkpoint.pt").write_text("my notes")
    elif blocker == "hard-linked lock":
        (run / LOCK_FILE).write_text("")  # left by a killed command
        os.link(run / LOCK_FILE, tmp_path / "backup.lock")
    else:
        (tmp_path / "somewhere").mkdir()
        (out / "runs" / "td3-seed1" / ".benchmark-run.json").unlink()
        (out / "runs" / "td3-seed1" / ".benchmark-run.json").symlink_to(tmp_path / "somewhere")
    kept = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(_bench_td3(out, two_catalogues[1], "--seeds", "0,1", "--force")) == 2
    assert "(--force neither" in _error(capsys)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == kept


def test_the_api_s_overwrite_replaces_a_run_never_a_user_s_files(tmp_path):
    """train_drr(..., overwrite=True) into a folder holding no run replaced the user's
    config.json and learning_curve.csv (the command line refused it; the API did not)."""
    from agents.drr.config import DRRConfig
    from agents.drr.train import train_drr
    from agents.run_folder import RunFolderError

    (tmp_path / "config.json").write_text('{"mine": true}')
    config = DRRConfig(hidden=16, batch_size=8, learning_starts=8, buffer_size=200, num_envs=2)
    with pytest.raises(RunFolderError, match=r"holds no run but config\.json"):
        train_drr({"dataset": "synthetic"}, config, 2, 0, tmp_path, overwrite=True)
    assert (tmp_path / "config.json").read_text() == '{"mine": true}'


def _trainers(bias: float) -> dict[str, object]:
    """A trainer bound to ``bias`` in each way Python binds a value to code."""
    import functools
    import random
    import types

    import numpy as np
    import pandas

    values = np.zeros(5000)
    values[2500] = bias  # numpy's repr leaves the middle out

    class Trainer:
        def __init__(self, value: float) -> None:
            self.value = value

        def __call__(self, ctx):
            return self.value

        def train(self, ctx):
            return self.value

    def make(value: float):
        def inner():
            return value

        return lambda ctx: inner()

    def keyword_only(ctx, *, bias=bias):
        return bias

    class Static:
        @staticmethod
        def value():
            return bias

        @classmethod
        def of_class(cls):
            return bias

        @property
        def prop(self):
            return bias

    @functools.cache
    def cached():
        return bias

    class Slotted:
        __slots__ = ("value",)

        def __init__(self, value: float) -> None:
            self.value = value

        def __call__(self, ctx):
            return self.value

    tensor = torch.zeros(5000)
    tensor[2500] = bias
    objects = np.array(["drama"] * 3000, dtype=object)
    objects[1500] = str(bias)  # numpy's repr of an object array leaves the middle out too
    titles = pandas.Series(["Heat"] * 3000)
    titles[1500] = str(bias)
    generator = torch.Generator().manual_seed(int(bias * 10) + 100)
    return {"default": lambda ctx, bias=bias: bias, "keyword-only default": keyword_only,
            "callable object": Trainer(bias), "bound method": Trainer(bias).train,
            "nested closure": make(bias), "array": lambda ctx: values,
            "staticmethod": lambda ctx: Static.value(),
            "classmethod": lambda ctx: Static.of_class(),
            "property": lambda ctx: Static().prop, "functools.cache": lambda ctx: cached(),
            "namespace": types.SimpleNamespace(train=lambda ctx: bias), "slots": Slotted(bias),
            "tensor": lambda ctx: tensor, "precise tensor": lambda ctx: torch.tensor(bias / 1e5),
            "linear layer": _layer(bias),
            "numpy rng": np.random.default_rng(int(bias * 10) + 100),
            "random.Random": random.Random(bias), "torch generator": generator,
            "library factory": functools.partial(_library_closure(bias)),
            "object array": lambda ctx: objects, "pandas strings": lambda ctx: titles,
            "library object": _library_object(bias)}  # fmt: skip


def _layer(bias: float):
    layer = torch.nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.fill_(bias)
        layer.bias.fill_(bias)
    return layer


def _library_closure(bias: float):
    """A closure an installed library made (its values are the user's)."""
    import gymnasium.wrappers

    namespace = {"__name__": gymnasium.wrappers.__name__}
    exec("def make(b):\n    return lambda ctx: b\n", namespace)
    return namespace["make"](bias)


def _library_object(bias: float):
    import argparse

    return argparse.Namespace(bias=bias)


def test_a_trainer_s_values_bound_any_way_are_in_its_code_key():
    """Only a partial's arguments and a closure's cells were keyed: a trainer bound to another
    value by a default argument, an object's attribute, a nested closure, a global rebound in
    a sweep or the middle of an array was served the first value's results."""
    from agents.trainer_state import trainer_state

    one, other, again = _trainers(1.0), _trainers(-1.0), _trainers(1.0)
    for form, trainer in one.items():
        assert trainer_state(trainer) != trainer_state(other[form]), form
        assert trainer_state(trainer) == trainer_state(again[form]), form  # the same: reused
    namespace: dict = {"__name__": "sweep"}
    exec("BIAS = 1.0\ndef train(ctx):\n    return BIAS\n", namespace)
    first = trainer_state(namespace["train"])
    namespace["BIAS"] = -1.0  # a sweep rebinding the global the trainer reads
    assert trainer_state(namespace["train"]) != first


def test_a_trainer_reaching_too_much_state_is_keyed_by_its_registration(tmp_path, monkeypatch):
    from agents.registry import AGENTS, register_agent

    (tmp_path / "big_plugin.py").write_text(
        "from agents.registry import TrainedAgent\n"
        "DATA = list(range(200_000))\n"
        "def train(ctx):\n"
        "    return TrainedAgent(policy=lambda obs: DATA[:9])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import big_plugin

    try:
        with pytest.warns(UserWarning, match="reaches more than 100,000 values"):
            first = register_agent("big", big_plugin.train, "b", is_rl=False).code
        with pytest.warns(UserWarning):
            again = register_agent("big", big_plugin.train, "b", is_rl=False, replace=True).code
        assert first != again
    finally:
        AGENTS.pop("big", None)
        sys.modules.pop("big_plugin", None)


def test_a_record_named_dot_dot_json_is_no_run_s(two_catalogues, tmp_path):
    """`runs/...json` named the results folder itself as its run's folder: --force took it for
    another configuration's run and worked on the results folder."""
    import shutil

    out = tmp_path / "bench"
    assert main(_bench(out, two_catalogues[0], "--agents", "random")) == 0
    shutil.copy(out / "runs" / "random-seed0.json", out / "runs" / "...json")
    assert main(_bench(out, two_catalogues[1], "--agents", "random", "--force")) == 0
    assert (out / "runs" / "...json").is_file() and (out / "references.json").is_file()


def _hash_bomb() -> bytes:
    """A torch file of under 1 KB whose pickle makes a dict key of a tuple nested 40 levels,
    each holding the one below twice: 2**40 steps to hash, done while torch reads it."""
    return _crafted_torch_file(b"\x80\x02}K\x01\x85q\x00" + b"h\x00\x86q\x00" * 40 + b"K\x00s.")


@pytest.mark.parametrize("how", ["swapped in", "resealed", "a user's folder"])
def test_a_checkpoint_whose_pickle_hashes_for_ever_is_refused_at_once(
    finished_run, tmp_path, capsys, how
):
    """A swapped checkpoint.pt of 949 bytes made evaluate, recommend, train --resume, and train
    into a folder holding it, run for hours inside torch.load (hashing a shared nested tuple)."""
    if how == "a user's folder":
        run = tmp_path / "mine"
        run.mkdir()
        (run / "checkpoint.pt").write_bytes(_hash_bomb())
        capsys.readouterr()
        assert main(_train(run)) == 2
        assert "holds checkpoint.pt that no run of movielens-rec wrote" in _error(capsys)
        return
    run = _copy(finished_run, tmp_path / "run")
    (run / "checkpoint.pt").write_bytes(_hash_bomb())
    if how == "resealed":
        _reseal(run)
    capsys.readouterr()
    for argv in (["evaluate", str(run)], ["recommend", str(run), "--user", "1"],
                 ["train", "--resume", "--episodes", "8", "--out", str(run)]):  # fmt: skip
        assert main(argv) == 2
        err = _error(capsys)
        assert ("its pickle" if how == "resealed" else "SHA-256 differs") in err


def test_an_sb3_zip_whose_pickle_hashes_for_ever_is_refused_at_once(
    finished_sb3_run, tmp_path, capsys
):
    import io
    import zipfile

    run = _copy(finished_sb3_run, tmp_path / "crafted")
    with zipfile.ZipFile(io.BytesIO((run / "td3.zip").read_bytes())) as source, \
            zipfile.ZipFile(run / "td3.zip", "w") as target:  # fmt: skip
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info, _hash_bomb() if info.filename == "policy.pth" else data)
    _reseal(run, "td3.zip")
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    assert "td3.zip: policy.pth: its pickle " in _error(capsys)


def test_the_pickle_scan_passes_every_model_file_this_tool_writes(finished_run, finished_sb3_run):
    """The scan must never refuse a real checkpoint or SB3 zip (nor what torch writes)."""
    import zipfile

    from agents.pickle_scan import torch_file_problem

    assert torch_file_problem(finished_run / "checkpoint.pt") == ""
    with zipfile.ZipFile(finished_sb3_run / "td3.zip") as archive:
        members = [name for name in archive.namelist() if name.endswith(".pth")]
        assert members and all(torch_file_problem(archive.read(name)) == "" for name in members)


# --------------------------------------------------------------------------- pass 25
@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_force_removes_nothing_where_a_run_folder_is_another_benchmark_s_results(
    two_catalogues, tmp_path, capsys
):
    """A benchmark's references.json in a run folder of the grid (a benchmark once given that
    --out): --force removed the other configuration's results, then the trainer refused the
    folder as a results folder. A benchmark into another's run folder is now refused too."""
    import shutil

    out = tmp_path / "bench"
    assert main(_bench_td3(out, two_catalogues[0])) == 0
    capsys.readouterr()
    assert main(_bench(out / "runs" / "td3-seed1", two_catalogues[0])) == 2
    assert "lies in the benchmark results folder" in _error(capsys)
    shutil.copy(out / "references.json", out / "runs" / "td3-seed0" / "references.json")
    kept = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(_bench_td3(out, two_catalogues[1], "--force")) == 2
    assert "td3-seed0 is a benchmark's results folder" in _error(capsys)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == kept


def test_a_trainer_s_key_is_the_same_in_every_process_for_the_same_values():
    import os

    """A set of dataclass items (or enum members) was described in hash order: two identical
    processes made two keys, and the second refused the first's results."""
    script = (
        "import dataclasses, enum, sys\n"
        "from agents.trainer_state import trainer_state\n"
        "@dataclasses.dataclass(frozen=True)\n"
        "class Rule:\n"
        "    genre: str\n"
        "    weight: float\n"
        "class Genre(enum.Enum):\n"
        "    DRAMA = 1\n"
        "    COMEDY = 2\n"
        "RULES = frozenset({Rule('Drama', 1.0), Rule('Comedy', 0.5), Rule('Action', 0.2)})\n"
        "GENRES = {Genre.DRAMA, Genre.COMEDY}\n"
        "def train(ctx):\n"
        "    return RULES, GENRES\n"
        "sys.stdout.write(trainer_state(train))\n"
    )
    keys = set()
    for seed in ("1", "2", "3"):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed})  # fmt: skip
        assert done.returncode == 0, done.stderr
        keys.add(done.stdout)
    assert len(keys) == 1


def _crafted_torch_file(pickle: bytes) -> bytes:
    """A torch file (as torch.save writes it) whose data.pkl is ``pickle``."""
    import io
    import zipfile

    plain = io.BytesIO()
    torch.save({"a": 1}, plain)
    crafted = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(plain.getvalue())) as source, \
            zipfile.ZipFile(crafted, "w") as target:  # fmt: skip
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info, pickle if info.filename.endswith("data.pkl") else data)
    return crafted.getvalue()


_DEEP = b"N" + b"q\x00h\x00\x86" * 40  # t = (t, t), 40 levels


@pytest.mark.parametrize(
    "pickle",
    [
        b"\x80\x02cbuiltins\nset\n" + _DEEP + b"\x85\x85R.",
        b"\x80\x02ccollections\nOrderedDict\n" + _DEEP + b"K\x01\x86\x85\x85R.",
        b"\x80\x02ccollections\nOrderedDict\n)R]" + _DEEP + b"K\x01\x86ab.",
        b"\x80\x02}X\x03\x00\x00\x00padcbuiltins\nbytearray\n\x8a\x08"
        + (5 * 10**9).to_bytes(8, "little")
        + b"\x85Rs.",
        b"\x80\x02" + b"N" * 100_000 + b"(t" * 100_000 + b".",
    ],
    ids=["set(...)", "OrderedDict(...)", "OrderedDict BUILD", "bytearray(5e9)", "many marks"],
)
def test_the_pickle_scan_refuses_what_torch_s_unpickler_would_build_for_ever(pickle):
    """set(t), OrderedDict(pairs) and an OrderedDict's state hash their argument inside
    torch.load (hours at 40 shared levels); bytearray(5e9) took 5 GB from 828 bytes; 100,000
    marks over 100,000 values kept the scan itself busy (it copied the stack per mark)."""
    import time

    from agents.pickle_scan import torch_file_problem

    start = time.perf_counter()
    problem = torch_file_problem(_crafted_torch_file(pickle))
    assert time.perf_counter() - start < 30
    if pickle.endswith(b"(t" * 10 + b"."):
        assert problem == ""  # harmless once scanned in linear time: torch refuses it itself
    else:
        assert "its pickle" in problem


def test_a_trainer_s_key_survives_huge_integers_and_broadcast_arrays():
    """A global 10**5000 ended registration in a raw ValueError from JSON; a broadcast view of
    5 GB (8 bytes stored) was copied whole twice."""
    import numpy as np

    from agents.trainer_state import StateTooLarge, trainer_state

    namespace: dict = {"__name__": "plugin", "BIG": 10**5000, "np": np}
    exec("def train(ctx):\n    return BIG\n", namespace)
    assert "int " in trainer_state(namespace["train"])
    namespace["BIG"] = np.broadcast_to(np.float64(1), (25_000, 25_000))
    with pytest.raises(StateTooLarge):
        trainer_state(namespace["train"])


def test_the_pickle_scan_never_unpacks_a_bomb_inside_a_model_s_zip():
    """A .pth member of an SB3 zip holding a data.pkl of GBs of zeros (MBs deflated) was read
    whole by the scan: 6.6 GB, then a raw MemoryError."""
    import io
    import zipfile

    from agents.pickle_scan import MAX_PICKLE_BYTES, torch_file_problem

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("archive/data.pkl", "w", force_zip64=True) as member:  # fmt: skip
        for _ in range(MAX_PICKLE_BYTES // 2**24 + 1):
            member.write(bytes(2**24))
    assert "its pickle unpacks to more than" in torch_file_problem(bomb.getvalue())


# --------------------------------------------------------------------------- pass 26
@pytest.mark.parametrize("entry", ["train_drr", "train_model", "tune", "a run's record"])
def test_training_on_the_test_split_is_refused(finished_run, tmp_path, capsys, entry):
    """The API accepted env_kwargs {"split": "test"}: a DRR agent trained on the test split's
    episodes and held-out ratings, then was scored on them (evaluate too, from its run.json)."""
    from agents.drr.config import DRRConfig
    from agents.drr.train import train_drr
    from agents.sb3.train import train_model
    from agents.tune.study import tune

    env_kwargs = {"dataset": "synthetic", "split": "test"}
    if entry == "a run's record":
        run = _copy(finished_run, tmp_path / "run")
        info = json.loads((run / "run.json").read_text())
        payload = torch.load(run / "checkpoint.pt", weights_only=True)
        payload["env_kwargs"]["split"] = "test"
        torch.save(payload, run / "checkpoint.pt")
        _reseal(run)
        assert info["agent"] == "drr-ave"
        capsys.readouterr()
        assert main(["evaluate", str(run)]) == 2
        assert "split='test'" in _error(capsys)
        return
    calls = {
        "train_drr": lambda: train_drr(env_kwargs, DRRConfig(), 2, 0, tmp_path / "run"),
        "train_model": lambda: train_model("td3", env_kwargs, 0, 10),
        "tune": lambda: tune("drr-ave", env_kwargs, 200, 1, tmp_path / "study"),
    }
    with pytest.raises(ValueError, match="split='test': runs always train on the train split"):
        calls[entry]()
    assert not (tmp_path / "run").exists() and not (tmp_path / "study").exists()


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
@pytest.mark.parametrize("agent", ["drr-ave", "td3"])
def test_force_over_a_damaged_run_record_leaves_no_model_behind(two_catalogues, tmp_path, capsys,
                                                                agent):  # fmt: skip
    """A benchmark run whose run.json was edited: --force removed only run.json and the curve,
    left DRR's checkpoint.pt (then taken for a user's run: the benchmark refused its own folder,
    every time) or, without references, td3.zip (refused as a user's file)."""
    import dataclasses

    from agents.benchmark.runner import BenchmarkConfig, run_benchmark

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"hidden": 16, "batch_size": 8, "learning_starts": 8,
                                  "buffer_size": 200, "num_envs": 2}))  # fmt: skip
    out = tmp_path / "bench"
    if agent == "drr-ave":
        argv = _bench(out, two_catalogues[0], "--agents", agent, "--timesteps", "40",
                      "--config", f"drr-ave={config}")  # fmt: skip
        assert main(argv) == 0
    else:
        made = BenchmarkConfig(agents=(agent,), seeds=(0,), timesteps=20, out_dir=out,
                               references=False, env_options=json.loads(SMALL_ENV))  # fmt: skip
        run_benchmark(made, progress=False)
    record = out / "runs" / f"{agent}-seed0" / "run.json"
    record.write_text(record.read_text().replace("{", '{"note": "mine", ', 1))  # damaged
    if agent == "drr-ave":
        assert main([*argv[:-2], "--timesteps", "60", *argv[-2:], "--force"]) == 0
    else:
        run_benchmark(dataclasses.replace(made, timesteps=30), progress=False, force=True)
    assert json.loads((out / "runs" / f"{agent}-seed0.json").read_text())["key"]["timesteps"] in (
        30,
        60,
    )


def _long1(value: int) -> bytes:
    import pickle

    data = pickle.encode_long(value)
    return b"\x8a" + bytes([len(data)]) + data


def _unicode(text: str) -> bytes:
    import struct

    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


@pytest.mark.parametrize(
    "pickle",
    [
        b"\x80\x02}(" + b"".join(_long1(k * (2**61 - 1)) + b"N" for k in range(1, 2000)) + b"u.",
        b"\x80\x02}"
        + _unicode("x")
        + b"c_codecs\nencode\n"
        + _unicode("\u4e00" * 1000)
        + _unicode("punycode")
        + b"\x86Rs.",
        b"\x80\x02}" + _unicode("x") + b"cbuiltins\ncomplex\nK\x01\x85Rs.",
        b"\x80\x02ccollections\nOrderedDict\n]("
        + b"".join(_long1(k * (2**61 - 1) + 7) + b"K\x00\x86" for k in range(1, 50))
        + b"e\x85R.",
    ],
    ids=["keys whose hashes collide", "punycode", "another global", "OrderedDict(pairs)"],
)
def test_the_pickle_scan_refuses_what_no_model_file_of_this_tool_holds(pickle):
    """Int keys k * (2**61 - 1) all hash alike (a 1.9 MB file ran for hours in torch.load);
    _codecs.encode with punycode is quadratic (a 90 KB file took 130 s), with hex chained it
    doubles at each level (6.5 GB from 1 KB)."""
    from agents.pickle_scan import torch_file_problem

    assert "its pickle" in torch_file_problem(_crafted_torch_file(pickle))


# --------------------------------------------------------------------------- pass 27
@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_force_removes_nothing_where_a_damaged_run_sits_beside_another_agent_s_checkpoint(
    finished_run, two_catalogues, tmp_path, capsys
):
    """A DRR checkpoint.pt beside a td3 run whose run.json was edited counted as the td3 run's:
    --force removed the td3 result and run, left the checkpoint, then refused the folder."""
    out = tmp_path / "bench"
    assert main(_bench_td3(out, two_catalogues[0])) == 0
    run = out / "runs" / "td3-seed0"
    (run / "checkpoint.pt").write_bytes((finished_run / "checkpoint.pt").read_bytes())
    record = run / "run.json"
    record.write_text(record.read_text().replace("{", '{"note": "mine", ', 1))
    kept = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(_bench_td3(out, two_catalogues[1], "--force")) == 2
    assert "td3-seed0/checkpoint.pt is no run's" in _error(capsys)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == kept


@pytest.mark.parametrize("damage", ["rated twice", "off the scale", "ids out of order"])
def test_a_hand_built_dataset_gets_the_loaders_checks(damage):
    """A RatingsDataset built by hand skipped what every loader refuses: a pair rated twice
    (its test items counted by NDCG's ideal, never offered), ratings of 40 on a 1-5 scale."""
    import dataclasses

    import numpy as np

    from movielens_env import load_world
    from movielens_env.errors import DataFormatError

    data = load_world(dataset="synthetic").dataset
    if damage == "rated twice":
        data = dataclasses.replace(
            data, users=np.append(data.users, data.users[0]),
            items=np.append(data.items, data.items[0]),
            ratings=np.append(data.ratings, data.ratings[0]),
            timestamps=np.append(data.timestamps, data.timestamps.max() + 1),
        )  # fmt: skip
    elif damage == "off the scale":
        ratings = np.where(np.arange(data.n_ratings) == 3, 40.0, data.ratings)
        data = dataclasses.replace(data, ratings=ratings.astype(np.float32))
    else:
        data = dataclasses.replace(data, user_ids=data.user_ids[::-1].copy())
    said = {"rated twice": "twice", "off the scale": "outside", "ids out of order": "increasing"}
    with pytest.raises(DataFormatError, match=said[damage]):
        load_world(dataset=data)


def test_a_genre_named_twice_by_hand_satiates_once():
    import dataclasses

    import numpy as np

    from movielens_env import load_world
    from movielens_env.simulator.user_model import genre_table

    world = load_world(dataset="synthetic")
    genres = world.dataset.genres.copy()
    genres[0] = (genres[0][0], genres[0][0])
    twice = load_world(dataset=dataclasses.replace(world.dataset, genres=genres))
    _, weights = genre_table(twice)
    assert np.isclose(weights[0].sum(), 1.0) and weights[0].max() == 1.0


def test_a_patient_user_leaves_at_the_documented_step():
    """Budget 5 less 50 costs of 0.1 left 1e-15 in floating point: the user stayed 51 steps."""
    import numpy as np

    from movielens_env import load_world
    from movielens_env.simulator.user_model import UserModel, parse_user_model

    config = parse_user_model("patience", patience_threshold=1.5)
    model = UserModel(load_world(dataset="synthetic"), config, "mf", "test", 0.0)
    state = model.start(np.array([0]))
    slates, ratings = np.zeros((1, 1), dtype=np.int64), np.full((1, 1), 5.0)  # never short
    left = [bool(model.advance(state, slates, ratings)[0]) for _ in range(60)]
    assert left.index(True) + 1 == 50  # cost alone: 5 / 0.1 steps


# --------------------------------------------------------------------------- pass 28
@pytest.mark.parametrize(
    "twice", [["--env-kwargs", '{"drift_rate": 0.1}', "--env-kwargs", '{"max_episode_steps": 5}'],
              ["--user-model", "drift", "--user-model", "boredom"]],
)  # fmt: skip
def test_a_single_value_option_given_twice_is_refused(tmp_path, capsys, twice):
    """A second --env-kwargs dropped the first (drift_rate 0.1 trained and recorded as the
    default 0.7, exit 0); --seeds 0,1 --seeds 2 ran seed 2 only."""
    with pytest.raises(SystemExit) as exited:
        cli_main(["train", "--out", str(tmp_path / "run"), *twice])
    assert exited.value.code == 2
    assert f"{twice[0]} given twice; give it once" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    with pytest.raises(SystemExit):
        cli_main(["benchmark", "--seeds", "0,1", "--seeds", "2", "--out", str(tmp_path / "b")])
    assert "--seeds given twice" in capsys.readouterr().err


def test_a_script_s_option_given_twice_is_refused(tmp_path):
    script = Path(__file__).parents[1] / "benchmarks" / "headroom.py"
    out = tmp_path / "headroom"
    done = subprocess.run(
        [sys.executable, str(script), "--dataset", "synthetic", "--width", "2", "--width", "4",
         "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "--width given twice; give it once" in done.stderr
    assert not out.exists()


@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
@pytest.mark.parametrize(
    "same",
    [["--user-model", "static"],  # pass 28: the static grid's 35 trained runs removed
     ["--env-kwargs", json.dumps({"embedding_dim": 8, "satiation_strength": 1,  # pass 29
                                  "mf_options": {"iterations": 2, "reg": 0.1}})],
     ["--env-kwargs", json.dumps({"embedding_dim": 8, "mf_options": {"iterations": 2},
                                  "drift_rate": None})]],  # pass 30: None is the default
)  # fmt: skip
def test_the_default_env_spelled_out_is_the_same_benchmark(two_catalogues, tmp_path, capsys, same):
    """A grid stored without env arguments, rerun with them spelled out at their defaults (the
    same env: ``static``, an int for a float, MF options at theirs), was another
    configuration's, and --force removed its trained runs."""
    out = tmp_path / "bench"
    assert main(_bench_td3(out, two_catalogues[0])) == 0
    stored = (out / "runs" / "td3-seed0.json").read_bytes()
    capsys.readouterr()
    again = [*_bench_td3(out, two_catalogues[0]), *same]
    assert main(again) == 0
    assert "note:" not in capsys.readouterr().err  # its run folder still the result's
    assert (out / "runs" / "td3-seed0.json").read_bytes() == stored
    assert (out / "runs" / "td3-seed0" / "td3.zip").is_file()


# --------------------------------------------------------------------------- pass 29
def test_a_planner_of_slates_too_long_to_run_is_refused_before_any_user():
    """Slates of 10 under boredom+drift: each user's plan passed the checks, the references
    asked 15 hours (silent with --no-progress); slates of 2 over 512 steps, 3 minutes a user."""
    from movielens_env.errors import ArgumentError
    from movielens_env.evaluation.references import BeamPlanner

    planner = BeamPlanner()
    planner.check_total(20, 1682, 1, 824)  # the default on real ML-100K
    planner.check_total(50, 3706, 1, 6040)  # ML-1M's longest variant
    with pytest.raises(ArgumentError, match="use a planner width of at most 44"):
        planner.check_total(20, 1680, 10, 1848)
    with pytest.raises(ArgumentError, match=r"ratings per user is beyond"):
        planner.check_size(512, 1680, slate_size=2)
    planner.check_size(20, 1680, slate_size=2)


def test_a_benchmark_refuses_references_too_long_to_run(
    two_catalogues, tmp_path, capsys, monkeypatch
):
    """Its references are checked as a whole before any work (the limit lowered here: these
    65 users on 197 items are a few minutes)."""
    from movielens_env.evaluation import references

    monkeypatch.setattr(references, "MAX_PLANNER_TOTAL", 10**9)
    out = tmp_path / "bench"
    env = json.dumps({"embedding_dim": 8, "mf_options": {"iterations": 2}, "slate_size": 2})
    argv = _bench(out, two_catalogues[0], "--env-kwargs", env, "--planner-width", "128",
                  "--user-model", "boredom")  # fmt: skip
    assert main(argv) == 2
    assert "(many hours): use a planner width of at most" in _error(capsys)
    assert not out.exists()


def test_offline_cut_offs_beyond_the_catalogue_are_refused_before_any_ranking():
    """ks=(2_000_000,) allocated a users x 2,000,000 array (13.8 GiB on synthetic data)."""
    from agents.baselines import RandomRanker
    from movielens_env.errors import ArgumentError
    from movielens_env.evaluation.protocols import evaluate_offline

    with pytest.raises(ArgumentError, match="beyond the catalogue"):
        evaluate_offline(RandomRanker(0), {"dataset": "synthetic"}, ks=(10, 2_000_000))


# --------------------------------------------------------------------------- pass 30
@pytest.mark.parametrize("trainer", ["drr", "sb3"])
def test_the_training_api_refuses_a_run_folder_another_trainer_holds(tmp_path, trainer):
    """train_into / train_drr checked the folder empty, trained, then wrote over the run that
    `movielens-rec train` had finished there meanwhile (overwrite=False)."""
    from agents.drr.train import train_drr
    from agents.run_folder import RunFolderError

    run = tmp_path / "R"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
         "from agents.folder_lock import lock_folder\n"
         "with lock_folder(Path(sys.argv[1]), 'train', RuntimeError):\n"
         "    print('held', flush=True); time.sleep(60)", str(run)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1],
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(RunFolderError, match=r"in use by train \(pid"):
            if trainer == "drr":
                train_drr({"dataset": "synthetic"}, DRRConfig(), episodes=5, seed=0, run_dir=run)
            else:
                from agents.sb3.artefact import train_into
                from agents.sb3.config import SB3Config

                train_into(run, "td3", "td3", SB3Config(), {"dataset": "synthetic"}, 0, 50)
    finally:
        holder.kill()
        holder.wait()
    assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]  # the holder's, left by kill


def test_numpy_scalars_in_a_benchmark_s_env_options_are_their_values():
    """env_options={"item_bias": np.bool_(True)} was a raw TypeError (not JSON); np.int64(10)
    for history_len would key the same env as another configuration's."""
    from agents.benchmark.env_key import key_env_options

    given = {"item_bias": np.bool_(True), "history_len": np.int64(10),
             "mf_options": {"iterations": np.int64(2), "reg": np.float64(0.1)}}  # fmt: skip
    assert key_env_options(given) == {"mf_options": {"iterations": 2}}
    json.dumps(key_env_options({"drift_rate": np.float32(0.5)}))


# --------------------------------------------------------------------------- pass 31
def test_evaluate_online_refuses_users_that_are_no_internal_index():
    """users=[-1] was played as the last user, without a word; a bool mask as users 0, 1."""
    from movielens_env.errors import ArgumentError
    from movielens_env.evaluation.protocols import evaluate_online
    from movielens_env.evaluation.references import MyopicPolicy

    for users, message in (([-1], r"in \[0, 943\)"), ([943], r"in \[0, 943\)"),
                           ([True, False], "integers")):  # fmt: skip
        with pytest.raises(ArgumentError, match=message):
            evaluate_online(MyopicPolicy(), {"dataset": "synthetic"}, "mf", np.array(users))


def test_evaluate_online_refuses_a_planner_that_would_take_many_hours(monkeypatch):
    """evaluate_online(BeamPlanner(), ...) skipped the whole-evaluation bound: slates of 2 over
    150 steps planned silently for about 27 hours (the limit is lowered here)."""
    from movielens_env.errors import ArgumentError
    from movielens_env.evaluation import references
    from movielens_env.evaluation.protocols import evaluate_online

    monkeypatch.setattr(references, "MAX_PLANNER_TOTAL", 10**9)
    with pytest.raises(ArgumentError, match="many hours"):
        evaluate_online(references.BeamPlanner(), {"dataset": "synthetic", "user_model": "boredom"})


@pytest.mark.parametrize("trainer", ["drr", "sb3"])
def test_the_training_api_never_replaces_a_user_s_files_inside_a_results_folder(
    two_catalogues, tmp_path, trainer
):
    """A folder inside a benchmark's results folder (not one of its run folders) was exempt
    from the check: train_drr / train_into(overwrite=True) replaced the user's config.json."""
    from agents.run_folder import RunFolderError

    out = tmp_path / "bench"
    assert main(_bench(out, two_catalogues[0])) == 0
    notes = out / "notes"
    notes.mkdir()
    mine = "config.json" if trainer == "drr" else "learning_curve.csv"
    (notes / mine).write_text("mine")
    with pytest.raises(RunFolderError, match=f"holds no run but {mine}"):
        if trainer == "drr":
            from agents.drr.train import train_drr

            train_drr({"dataset": "synthetic"}, DRRConfig(), 3, 0, run_dir=notes, overwrite=True)
        else:
            from agents.sb3.artefact import train_into
            from agents.sb3.config import SB3Config

            train_into(notes, "td3", "td3", SB3Config(), {"dataset": "synthetic"}, 0, 50, True)
    assert (notes / mine).read_text() == "mine"


def test_one_satiation_decay_for_every_genre_is_keyed_as_that_value():
    from agents.benchmark.env_key import key_env_options

    assert key_env_options({"satiation_decay": [0.9] * 18}) == {"satiation_decay": 0.9}
    assert key_env_options({"satiation_decay": (0.9, 0.8)}) == {"satiation_decay": [0.9, 0.8]}


# --------------------------------------------------------------------------- pass 32
def test_evaluate_online_refuses_a_discount_outside_0_1():
    """discount=nan made every return NaN, -1 alternated signs, 5 gave returns of 2e6."""
    from movielens_env.errors import ArgumentError
    from movielens_env.evaluation.protocols import evaluate_online
    from movielens_env.evaluation.references import MyopicPolicy

    for discount in (float("nan"), -1.0, 5.0, True):
        with pytest.raises(ArgumentError, match="discount must be a number in"):
            evaluate_online(MyopicPolicy(), {"dataset": "synthetic"}, discount=discount)


# --------------------------------------------------------------------------- session 11
@pytest.mark.filterwarnings("ignore:td3 took no gradient step")
def test_a_grid_stored_before_keys_dropped_defaults_is_still_this_configuration_s(
    two_catalogues, tmp_path, capsys
):
    """The boredom grid was stored with ``"max_episode_steps": 10`` (the default, given by
    ``--user-model``) in its key; once keys dropped defaults, rerunning it was refused as another
    configuration's, and ``--force`` would have removed its 36 records and trained runs."""
    from agents.benchmark.stored import write_record
    from agents.run_folder import BENCHMARK_RUN_MARK

    out = tmp_path / "bench"
    argv = _bench_td3(out, two_catalogues[0], "--user-model", "boredom")
    assert main(argv) == 0
    path = out / "runs" / "td3-seed0.json"
    record = json.loads(path.read_text())
    record["key"]["env_options"]["max_episode_steps"] = 10  # as the older version wrote it
    del record["checksum"]
    stored = write_record(path, record)
    mark_path = out / "runs" / "td3-seed0" / BENCHMARK_RUN_MARK  # and the run folder's mark
    mark = json.loads(mark_path.read_text())
    mark["key"] = stored["key"]
    mark_path.write_text(json.dumps(mark))
    capsys.readouterr()
    assert main(argv) == 0  # without --force: refused before the fix
    assert "note:" not in capsys.readouterr().err
    assert json.loads(path.read_text()) == stored  # reused as it is, not retrained
    assert main([*argv, "--env-kwargs", '{"max_episode_steps": 11}', "--force"]) == 0
    assert json.loads(path.read_text())["key"]["env_options"]["max_episode_steps"] == 11
