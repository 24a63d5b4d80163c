"""Executors: a grid run in this process, in local worker processes or on Ray stores the same
runs; a run that fails or whose worker dies fails alone; bad executor arguments are refused."""

from __future__ import annotations

import json
import time
from multiprocessing.connection import wait
from pathlib import Path

import pytest

from agents import registry
from agents.benchmark.executors import (
    LocalExecutor,
    RayExecutor,
    RunsFailedError,
    SerialExecutor,
    _Worker,
    check_reachable,
    import_ray,
    make_executor,
)
from agents.benchmark.leaderboard import aggregate
from agents.benchmark.runner import BenchmarkConfig, execute_job, run_benchmark, run_path
from agents.cli import main
from agents.plugins import import_plugin
from agents.registry import configure_agent

TINY_ENV = {"embedding_dim": 8, "mf_options": {"iterations": 2}}
# TD3 that takes gradient steps within 60 timesteps: the workers must train with this config.
TINY_TD3 = {"learning_starts": 20, "batch_size": 16, "net_arch": [32], "buffer_size": 1000}
# What differs between two runs of the same job wherever they ran.
UNSTABLE = ("train_seconds", "eval_seconds", "checksum")


@pytest.fixture
def scratch_registry(monkeypatch):
    """Agents registered or configured by a test disappear after it."""
    registry.agent_names()
    monkeypatch.setattr(registry, "AGENTS", dict(registry.AGENTS))


def _grid(out: Path, executor, agents=("random", "td3"), seeds=(0, 1)) -> list[dict]:
    config = BenchmarkConfig(
        dataset="synthetic", agents=agents, seeds=seeds, timesteps=60, out_dir=out,
        env_options=TINY_ENV, references=True,
    )  # fmt: skip
    return run_benchmark(config, progress=False, executor=executor)


def _stored(out: Path) -> dict[str, dict]:
    """Every stored record of ``out``, without what changes from one run of a job to the next
    (timings, the checksum over them, and the results folder's path)."""
    found = {}
    for path in sorted((out / "runs").glob("*.json")):
        record = json.loads(path.read_text())
        for name in UNSTABLE:
            record.pop(name)
        record["config"].pop("out_dir")
        found[path.name] = record
    return found


@pytest.fixture
def in_process(tmp_path, scratch_registry) -> dict[str, dict]:
    """The records of the 2-agent x 2-seed grid run in this process (td3 configured)."""
    configure_agent("td3", TINY_TD3)
    _grid(tmp_path / "serial", SerialExecutor())
    stored = _stored(tmp_path / "serial")
    assert len(stored) == 4 and not any(r["untrained"] for r in stored.values())
    return stored


def test_local_workers_store_what_this_process_stores(tmp_path, in_process):
    records = _grid(tmp_path / "local", LocalExecutor(2))
    assert _stored(tmp_path / "local") == in_process
    assert [(r["agent"], r["seed"]) for r in records] == [
        ("random", 0), ("random", 1), ("td3", 0), ("td3", 1)
    ]  # fmt: skip
    # The leaderboard is made of the records: the same table.
    serial = [json.loads(run_path(tmp_path / "serial", r["agent"], r["seed"]).read_text())
              for r in records]  # fmt: skip
    assert aggregate(records) == aggregate(serial)


def test_ray_stores_what_this_process_stores(tmp_path, in_process):
    pytest.importorskip("ray", reason="the 'ray' extra is not installed (pip install -e '.[ray]')")
    _grid(tmp_path / "ray", RayExecutor())
    assert _stored(tmp_path / "ray") == in_process


FRAGILE = """
import os
import pathlib
import signal

from agents.baselines import RandomRanker
from agents.registry import TrainedAgent, register_agent

HERE = pathlib.Path(__file__).parent


def train(ctx):
    if ctx.seed == 1 and (HERE / "kill").exists():
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would
    if ctx.seed == 2 and (HERE / "fail").exists():
        raise ValueError("seed 2 refuses")
    return TrainedAgent(RandomRanker(ctx.seed))


register_agent("fragile", train, "dies or fails on some seeds", is_rl=False, replace=True)
"""


def test_a_killed_worker_fails_its_run_only_and_a_rerun_completes_the_grid(
    tmp_path, scratch_registry, monkeypatch
):
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "fragile_plugin.py").write_text(FRAGILE)
    (plugin / "kill").touch()
    (plugin / "fail").touch()
    monkeypatch.syspath_prepend(str(plugin))
    import_plugin("fragile_plugin")  # as --plugin does: the workers import it too
    out = tmp_path / "out"
    with pytest.raises(RunsFailedError) as failed:
        _grid(out, LocalExecutor(2), agents=("fragile",), seeds=(0, 1, 2, 3))
    message = str(failed.value)
    assert "2 run(s) failed" in message
    assert "fragile seed 1: its worker process was killed by signal 9 SIGKILL" in message
    assert "fragile seed 2: ValueError: seed 2 refuses (at " in message
    assert isinstance(failed.value.failures[1].error, ValueError)
    assert "the grid's other runs finished and are stored" in message
    kept = {seed: run_path(out, "fragile", seed) for seed in (0, 3)}
    assert all(path.exists() for path in kept.values())
    assert not run_path(out, "fragile", 1).exists() and not run_path(out, "fragile", 2).exists()
    before = {seed: path.stat().st_mtime_ns for seed, path in kept.items()}

    (plugin / "kill").unlink()
    (plugin / "fail").unlink()
    records = _grid(out, LocalExecutor(2), agents=("fragile",), seeds=(0, 1, 2, 3))
    assert [r["seed"] for r in records] == [0, 1, 2, 3]
    assert {seed: path.stat().st_mtime_ns for seed, path in kept.items()} == before  # reused


def test_a_worker_dead_between_runs_takes_no_run_and_one_killed_in_a_run_is_reaped():
    """A worker can die after its last record is read: the next run is not lost to its broken
    pipe (it stays pending, for a new worker); one killed in a run fails it with its signal."""
    idle = _Worker(execute_job)
    idle.process.kill()
    idle.process.join()
    assert not idle.give("a run") and idle.job is None and not idle.alive()
    idle.stop()

    busy = _Worker(execute_job)
    assert busy.give("a run") and busy.job == "a run"
    busy.process.kill()
    wait([busy.conn])  # as the executor does: its end of the pipe closes (before it is reaped)
    failures: list = []
    busy.collect(lambda job, record: None, lambda n: None, failures)
    assert [(f.job, f.why) for f in failures] == [
        ("a run", "its worker process was killed by signal 9 SIGKILL")
    ]
    assert busy.job is None and not busy.alive()
    busy.stop()


DIES_WHILE_ANOTHER_IS_READ = """
import os
import pathlib
import signal
import time

HERE = pathlib.Path(__file__).parent


def work(job, on_step):
    if job == "dies":
        while not (HERE / "go").exists():
            time.sleep(0.01)
        (HERE / "dying").touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return {"job": job}
"""


def test_a_worker_that_dies_while_another_run_is_stored_fails_its_run(tmp_path, monkeypatch):
    """A worker can die after the executor's wait returned for another one: its run is failed
    on the next pass, not dropped with the worker."""
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "dying_work.py").write_text(DIES_WHILE_ANOTHER_IS_READ)
    monkeypatch.syspath_prepend(str(plugin))
    from dying_work import work  # a module the spawned workers import by name

    stored = []

    def on_record(job, record):
        stored.append(record["job"])
        (plugin / "go").touch()  # the other worker dies now, while this record is stored
        while not (plugin / "dying").exists():
            time.sleep(0.01)
        time.sleep(0.2)

    failures = LocalExecutor(2).run(work, ["lives", "dies"], on_record, lambda n: None)
    assert stored == ["lives"]
    assert [(f.job, f.why) for f in failures] == [
        ("dies", "its worker process was killed by signal 9 SIGKILL")
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("local", 0), "--jobs must be a whole number of at least 1, got 0"),
        (("local", -2), "--jobs must be a whole number of at least 1, got -2"),
        (("local", None, "1.2.3.4:6379"), "--ray-address applies to --executor ray"),
        (("dask",), "--executor 'dask': expected one of local, ray"),
    ],
)
def test_bad_executor_arguments_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        make_executor(*args)


def test_cli_refuses_jobs_zero_before_any_work(tmp_path, capsys):
    argv = ["benchmark", "--agents", "random", "--jobs", "0", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "--jobs must be a whole number of at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_ray_without_the_extra_names_it(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if not installed
    with pytest.raises(
        ValueError, match=r"needs Ray, which is not installed: pip install -e '\.\[ray\]'"
    ):
        import_ray()


def test_an_unreachable_ray_address_fails_within_seconds_naming_it():
    started = time.monotonic()
    with pytest.raises(ValueError, match=r"--ray-address .127\.0\.0\.1:9.: no Ray cluster answers"):
        check_reachable("127.0.0.1:9")  # the discard port: nothing listens there
    assert time.monotonic() - started < 10
    with pytest.raises(ValueError, match="expected HOST:PORT, ray://HOST:PORT or auto"):
        check_reachable("nowhere")
