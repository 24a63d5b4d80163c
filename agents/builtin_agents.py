"""The agents that ship with the project, registered in one place (:func:`register_builtin_agents`,
which importing :mod:`agents` calls). Their trainers import torch and SB3 only when they run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial

import numpy as np

from movielens_env.evaluation.protocols import episode_steps

from .baselines import MFRanker, PopularityRanker, RandomRanker
from .drr.config import STATE_REPRESENTATIONS, DRRConfig
from .registry import AGENTS, TrainContext, TrainedAgent, register_agent
from .sb3.config import SB3Config


def _random(ctx: TrainContext) -> TrainedAgent:
    return TrainedAgent(RandomRanker(ctx.seed))


def _popularity(ctx: TrainContext) -> TrainedAgent:
    return TrainedAgent(PopularityRanker(ctx.world()))


def _mf(ctx: TrainContext) -> TrainedAgent:
    return TrainedAgent(MFRanker(ctx.world()))


def _sb3(algorithm: str, ctx: TrainContext) -> TrainedAgent:
    from .benchmark.progress import StepCallback
    from .sb3.train import train_model

    save_to = None if ctx.run_dir is None else ctx.run_dir / f"{algorithm}.zip"
    model, curve = train_model(
        algorithm, ctx.env_kwargs, ctx.seed, ctx.timesteps, save_to=save_to,
        callback=StepCallback(ctx.on_step),
    )  # fmt: skip
    return TrainedAgent(model, curve)


def _drr(state: str, ctx: TrainContext) -> TrainedAgent:
    from .drr.train import train_drr

    horizon = episode_steps(ctx.env_kwargs)
    episodes = max(1, ctx.timesteps // horizon)
    config = DRRConfig(state=state, eval_every=episodes, checkpoint_every=0)
    result = train_drr(
        ctx.env_kwargs, config, episodes, ctx.seed, ctx.run_dir,
        on_episode=lambda episode, ret: ctx.on_step(horizon), overwrite=True,
    )  # fmt: skip
    steps = horizon * np.arange(1, len(result.episode_returns) + 1)
    return TrainedAgent(
        result.agent, list(zip(steps.tolist(), result.episode_returns, strict=True))
    )


def register_builtin_agents() -> None:
    """Register the built-in agents (those already registered are left as they are)."""
    for name, train, description, is_rl, config in _builtins():
        if name not in AGENTS:
            register_agent(name, train, description, is_rl=is_rl, config=config)


def _builtins() -> list[tuple[str, Callable[[TrainContext], TrainedAgent], str, bool, dict]]:
    sb3 = dataclasses.asdict(SB3Config())
    return [
        ("random", _random, "uniformly random ranking", False, {}),
        ("popularity", _popularity, "most positive train ratings first", False, {}),
        ("mf", _mf, "highest MF-predicted rating first (the simulator itself)", False, {}),
        ("ddpg", partial(_sb3, "ddpg"), "Stable-Baselines3 DDPG, MLP policy", True, sb3),
        ("td3", partial(_sb3, "td3"), "Stable-Baselines3 TD3, MLP policy", True, sb3),
        ("sac", partial(_sb3, "sac"), "Stable-Baselines3 SAC, MLP policy", True, sb3),
        *(
            (state, partial(_drr, state), f"DRR actor-critic, {state} state representation", True,
             dataclasses.asdict(DRRConfig(state=state)))
            for state in STATE_REPRESENTATIONS
        ),
    ]  # fmt: skip
