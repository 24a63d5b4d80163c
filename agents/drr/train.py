"""DRR training, top to bottom: collect an episode, learn from replay, evaluate, checkpoint.

Seeded end to end: the env's user draws, the network initialisation, the exploration noise and
the replay sampling all derive from ``seed``, so the same seed gives the same agent; a run
resumed from its checkpoint continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from movielens_env import ENV_ID
from movielens_env.evaluation import evaluate
from movielens_env.storage import atomic_write

from ..threads import torch_threads
from .agent import DRRAgent
from .checkpoint import load_checkpoint, save_checkpoint
from .config import DRRConfig

CURVE_FILE = "learning_curve.csv"
RUN_FILE = "run.json"
CURVE_METRICS = (
    "rerank/precision@5",
    "rerank/precision@10",
    "rerank/ndcg@10",
    "full/precision@5",
    "full/precision@10",
    "full/ndcg@10",
    "online/return_mf",
)


@dataclass
class TrainResult:
    """The trained agent, its evaluation rows and its per-episode training returns."""

    agent: DRRAgent
    curve: list[dict[str, float]] = field(default_factory=list)
    episode_returns: list[float] = field(default_factory=list)


def _json_env_kwargs(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(json.dumps(env_kwargs))
    except TypeError:
        raise ValueError(
            "DRR runs are saved with a dataset given by name, not as an object"
        ) from None


def train_drr(
    env_kwargs: dict[str, Any],
    config: DRRConfig,
    episodes: int,
    seed: int,
    run_dir: Path | None = None,
    resume: bool = False,
    on_episode: Callable[[int, float], None] = lambda episode, ret: None,
) -> TrainResult:
    """Train DRR for ``episodes`` episodes of ``MovieLensRec-v0`` (train split).

    Every ``config.eval_every`` episodes (and at the end) the agent is evaluated on the test
    split; every ``config.checkpoint_every`` episodes (and at the end) the run is checkpointed
    into ``run_dir``. With ``resume``, training continues from ``run_dir``'s checkpoint.
    """
    with torch_threads(1):
        return _train(env_kwargs, config, episodes, seed, run_dir, resume, on_episode)


def _train(env_kwargs, config, episodes, seed, run_dir, resume, on_episode) -> TrainResult:
    # --- set-up: env, agent, and (when resuming) everything the checkpoint restores
    env = gym.make(ENV_ID, **env_kwargs)
    dim, history_len = env.action_space.shape[0], env.unwrapped.history_len
    agent = DRRAgent(config, dim, history_len, seed)
    result, start = TrainResult(agent), 0
    if resume and run_dir is not None and (run_dir / "checkpoint.pt").exists():
        payload, saved_config = load_checkpoint(run_dir)
        if saved_config != config or payload["seed"] != seed:
            raise ValueError(f"{run_dir}: the checkpoint was made with another config or seed")
        agent.load_state_dict(payload["agent"])
        env.unwrapped.np_random = np.random.default_rng()
        env.unwrapped.np_random.bit_generator.state = payload["env_rng"]
        result.curve, result.episode_returns = payload["curve"], payload["episode_returns"]
        start = agent.episodes
    if run_dir is not None:
        run_info = {"env_kwargs": _json_env_kwargs(env_kwargs), "episodes": episodes, "seed": seed}
        atomic_write(
            run_dir / RUN_FILE,
            lambda tmp: tmp.write_text(json.dumps(run_info, indent=1)),
            suffix=".json",
        )

    for episode in range(start, episodes):
        # --- collect one episode with exploration noise, learning after every step
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        done, episode_return, losses = False, 0.0, []
        beta = config.per_beta + (1.0 - config.per_beta) * episode / max(episodes - 1, 1)
        while not done:
            action = agent.act(obs[None], explore=True)[0]
            next_obs, reward, terminated, truncated, _ = env.step(action)
            agent.replay.add(obs[None], action[None], [reward], next_obs[None], [float(terminated)])
            if len(agent.replay) >= config.learning_starts:
                for _ in range(config.updates_per_step):
                    losses.append(agent.update(beta).critic_loss)
            obs, done = next_obs, terminated or truncated
            episode_return += reward
        agent.end_episode()
        result.episode_returns.append(episode_return)
        on_episode(episode + 1, episode_return)

        # --- evaluate on the test split, and checkpoint
        last = episode + 1 == episodes
        if (episode + 1) % config.eval_every == 0 or last:
            metrics = evaluate(agent, env_kwargs, name=config.state).summary()
            recent = result.episode_returns[-config.eval_every :]
            row = {"episode": episode + 1, "train_return": float(np.mean(recent)),
                   "critic_loss": float(np.mean(losses)) if losses else float("nan")}  # fmt: skip
            result.curve.append({**row, **{m: metrics[m] for m in CURVE_METRICS}})
        if run_dir is not None and (
            last or (config.checkpoint_every and (episode + 1) % config.checkpoint_every == 0)
        ):
            payload = {
                "agent": agent.state_dict(), "env_rng": env.unwrapped.np_random.bit_generator.state,
                "curve": result.curve, "episode_returns": result.episode_returns, "seed": seed,
                "dim": dim, "history_len": history_len, "env_kwargs": _json_env_kwargs(env_kwargs),
            }  # fmt: skip
            save_checkpoint(run_dir, payload, config)
    if run_dir is not None and result.curve:
        write_curve(run_dir / CURVE_FILE, result.curve)
    return result


def write_curve(path: Path, rows: list[dict[str, float]]) -> None:
    """The evaluation rows as CSV, atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write, suffix=".csv")


def load_agent(run_dir: Path) -> tuple[DRRAgent, dict[str, Any]]:
    """The trained agent of a run directory and the env kwargs it was trained with."""
    payload, config = load_checkpoint(run_dir)
    agent = DRRAgent(config, int(payload["dim"]), int(payload["history_len"]), int(payload["seed"]))
    agent.load_state_dict(payload["agent"])
    return agent, payload["env_kwargs"]
