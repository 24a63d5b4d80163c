"""The agents that ship with the project, registered in one place (:func:`register_builtin_agents`,
which importing :mod:`agents` calls). Their trainers and loaders import torch and SB3 only when
they run. DRR and the SB3 agents have a trained artefact (a run folder), the baselines none."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from movielens_env.envs.observation import OBS_MODES
from movielens_env.evaluation.protocols import episode_steps

from .artefact import Artefact
from .baselines import MFRanker, PopularityRanker, RandomRanker
from .drr.config import STATE_REPRESENTATIONS, DRRConfig, budget_episodes
from .drr.run_dir import RUN_FILES as DRR_FILES
from .registry import AGENTS, TrainContext, TrainedAgent, register_agent
from .run_folder import CURVE_FILE, RUN_FILE
from .sb3.config import check_algorithm_config, config_class


def _random(ctx: TrainContext) -> TrainedAgent:
    return TrainedAgent(RandomRanker(ctx.seed))


def _popularity(ctx: TrainContext) -> TrainedAgent:
    return TrainedAgent(PopularityRanker(ctx.world()))


def _mf(ctx: TrainContext) -> TrainedAgent:
    return TrainedAgent(MFRanker(ctx.world()))


def _lazy(module: str, name: str) -> Callable[..., Any]:
    """``module.name``, imported when first called (torch and SB3 load slowly)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module, __package__), name)(*args, **kwargs)

    return call


def _sb3(algorithm: str, ctx: TrainContext) -> TrainedAgent:
    from .benchmark.progress import StepCallback

    callback = StepCallback(ctx.on_step)
    kind = config_class(algorithm)
    config = kind.from_dict(ctx.config) if ctx.config else kind()
    if ctx.run_dir is None:
        from .sb3.train import train_model

        model, curve = train_model(
            algorithm, ctx.env_kwargs, ctx.seed, ctx.timesteps, config, callback=callback
        )
    else:  # a whole run folder, which movielens-rec evaluate and recommend read
        from .sb3.artefact import train_into

        model, curve = train_into(
            ctx.run_dir, algorithm, algorithm, config, ctx.env_kwargs, ctx.seed,
            ctx.timesteps, overwrite=True, callback=callback,
        )  # fmt: skip
    return TrainedAgent(model, curve)


def _sb3_artefact(algorithm: str) -> Artefact:
    return Artefact(
        config=config_class(algorithm)(), budget="timesteps", default_budget=10_000,
        files=(f"{algorithm}.zip", RUN_FILE, CURVE_FILE),
        train=partial(_lazy(".sb3.artefact", "train_run"), algorithm),
        load=_lazy(".sb3.artefact", "load_run"), check=partial(check_algorithm_config, algorithm),
        fits=_lazy(".sb3.train", "check_env_fits"),
    )  # fmt: skip


def _drr_artefact(state: str) -> Artefact:
    return Artefact(
        config=DRRConfig(state=state), budget="episodes", default_budget=5000, files=DRR_FILES,
        train=_lazy(".drr.artefact", "train_run"), load=_lazy(".drr.artefact", "load_run"),
        resume=_lazy(".drr.artefact", "resumed"), fits=_lazy(".drr.agent", "check_env_fits"),
    )  # fmt: skip


def _drr(state: str, ctx: TrainContext) -> TrainedAgent:
    from .drr.train import train_drr

    horizon = episode_steps(ctx.env_kwargs)
    episodes = budget_episodes(ctx.timesteps, horizon)
    values = {**(ctx.config or DRRConfig(state=state).to_dict()), "state": state}
    config = DRRConfig.from_dict({**values, "eval_every": episodes, "checkpoint_every": 0})
    result = train_drr(
        ctx.env_kwargs, config, episodes, ctx.seed, ctx.run_dir,
        on_episode=lambda episode, ret: ctx.on_step(horizon), overwrite=True,
    )  # fmt: skip
    # The steps its finished episodes took (with one env, as SB3 counts them, the steps at
    # each episode's end; the episodes other sub-envs had under way are not counted yet).
    steps = np.cumsum(result.episode_lengths, dtype=np.int64)
    return TrainedAgent(
        result.agent, list(zip(steps.tolist(), result.episode_returns, strict=True))
    )


def register_builtin_agents() -> None:
    """Register the built-in agents (those already registered are left as they are)."""
    for name, train, description, is_rl, config, artefact in _builtins():
        if name not in AGENTS:
            # The RL agents' networks read the flat observation; the rankers read none.
            modes = ("flat",) if is_rl else OBS_MODES
            register_agent(
                name, train, description, is_rl=is_rl, config=config, artefact=artefact,
                obs_modes=modes,
            )  # fmt: skip


_Builtin = tuple[str, Callable[[TrainContext], TrainedAgent], str, bool, dict, Artefact | None]


def _builtins() -> list[_Builtin]:
    return [
        ("random", _random, "uniformly random ranking", False, {}, None),
        ("popularity", _popularity, "most positive train ratings first", False, {}, None),
        ("mf", _mf, "highest MF-predicted rating first (the simulator itself)", False, {}, None),
        *(
            (algorithm, partial(_sb3, algorithm), f"Stable-Baselines3 {algorithm.upper()}, MLP "
             "policy", True, config_class(algorithm)().to_dict(),
             _sb3_artefact(algorithm))
            for algorithm in ("ddpg", "td3", "sac")
        ),
        *(
            (state, partial(_drr, state), f"DRR actor-critic, {state} state representation", True,
             DRRConfig(state=state).to_dict(), _drr_artefact(state))
            for state in STATE_REPRESENTATIONS
        ),
    ]  # fmt: skip
