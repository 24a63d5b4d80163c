"""The benchmark: every (agent, seed) trained and evaluated the same way, results kept per run.

Each run's result is written (atomically) as soon as it ends, under ``OUT/runs/``; a rerun with
the same settings skips the runs already there, so an interrupted benchmark loses at most the
run in progress.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from movielens_env.evaluation import evaluate
from movielens_env.storage import atomic_write

from .registry import TrainContext, get_agent

# 2: slates chosen by exact re-scoring of near-ties; DRR collects from 8 sub-envs.
RESULT_VERSION = 2


@dataclass(frozen=True)
class BenchmarkConfig:
    """What to run.

    Attributes:
        dataset: dataset name (``synthetic``, ``ml-100k``, ...).
        data_dir: GroupLens folder or zip, if not cached.
        agents: registered agent names.
        seeds: one run per agent and seed.
        timesteps: environment steps of each RL agent's training.
        out_dir: results folder (``runs/``, leaderboard, plots).
        env_options: other ``MovieLensRec-v0`` arguments (``embedding_dim``, ``history_len``...).
    """

    dataset: str = "synthetic"
    data_dir: str | None = None
    agents: tuple[str, ...] = ("random", "popularity", "mf", "ddpg", "td3", "sac")
    seeds: tuple[int, ...] = (0, 1, 2)
    timesteps: int = 10_000
    out_dir: Path = Path("runs/benchmark")
    env_options: dict[str, Any] = field(default_factory=dict)

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the training env."""
        return {"dataset": self.dataset, "data_dir": self.data_dir, **self.env_options}

    def run_key(self, agent: str) -> dict[str, Any]:
        """What must match for a stored run to be reused (paths excluded: they are local)."""
        is_rl = get_agent(agent).is_rl
        return {
            "version": RESULT_VERSION,
            "dataset": self.dataset,
            "env_options": self.env_options,
            "timesteps": self.timesteps if is_rl else None,
        }


def run_path(out_dir: Path, agent: str, seed: int) -> Path:
    """Where the result of one run is stored."""
    return out_dir / "runs" / f"{agent}-seed{seed}.json"


def _stored(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("key") == key else None


def run_one(config: BenchmarkConfig, agent: str, seed: int, on_step=lambda n: None) -> dict:
    """Train and evaluate one agent with one seed; return its result record."""
    entry = get_agent(agent)
    env_kwargs = config.env_kwargs()
    run_dir = config.out_dir / "runs" / f"{agent}-seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    trained = entry.train(TrainContext(env_kwargs, seed, config.timesteps, run_dir, on_step))
    trained_at = time.perf_counter()
    result = evaluate(trained.policy, env_kwargs, name=agent)
    return {
        "agent": agent,
        "seed": seed,
        "key": config.run_key(agent),
        "n_users": len(result.users),
        "metrics": result.summary(),
        "learning_curve": [[int(t), float(r)] for t, r in trained.learning_curve],
        "train_seconds": trained_at - started,
        "eval_seconds": time.perf_counter() - trained_at,
    }


def run_benchmark(config: BenchmarkConfig, progress: bool = True) -> list[dict[str, Any]]:
    """Run every (agent, seed) not already stored; return all records of this config."""
    for agent in config.agents:
        get_agent(agent)  # unknown names fail before any work
    records, todo = [], []
    for agent in config.agents:
        for seed in config.seeds:
            stored = _stored(run_path(config.out_dir, agent, seed), config.run_key(agent))
            if stored is None:
                todo.append((agent, seed))
            else:
                records.append(stored)
    rl_steps = sum(config.timesteps for agent, _ in todo if get_agent(agent).is_rl)
    with tqdm(
        total=rl_steps + len(todo), disable=not progress, unit="step", desc="benchmark"
    ) as bar:
        for agent, seed in todo:
            bar.set_postfix_str(f"{agent} seed {seed}")
            record = run_one(config, agent, seed, on_step=bar.update)
            record["config"] = {**asdict(config), "out_dir": str(config.out_dir)}
            record = json.loads(json.dumps(record))  # the record exactly as a rerun reads it
            atomic_write(
                run_path(config.out_dir, agent, seed),
                lambda tmp, record=record: tmp.write_text(json.dumps(record, indent=1)),
                suffix=".json",
            )
            records.append(record)
            bar.update(1)
    order = {agent: i for i, agent in enumerate(config.agents)}
    return sorted(records, key=lambda r: (order[r["agent"]], r["seed"]))
