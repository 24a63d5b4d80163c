"""DRR runs from the command line: train one into a folder (episodes, ``--resume``, checkpoints,
plots), continue one, load one back. Registered as the DRR agents' artefact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from movielens_env.errors import ArgumentError

from ..artefact import RunRequest, TrainedRun
from ..benchmark.plots import plot_training
from ..run_folder import RunFolderError, read_run_info
from .agent import DRRAgent
from .checkpoint import load_checkpoint
from .config import DRRConfig
from .run_dir import CHECKPOINT, CONFIG, CURVE_FILE, RUN_FILE
from .train import check_own_checkpoint, load_agent, train_drr


def train_run(request: RunRequest) -> TrainedRun:
    """Train (or continue) the DRR run ``request`` asks for, with its curve and plots."""
    config: DRRConfig = request.config
    if config.state != request.agent:
        raise ArgumentError(
            f"--set state={config.state} contradicts the agent, {request.agent}: choose the "
            f"state representation with --agent {config.state}"
        )
    result = train_drr(
        request.env_kwargs, config, request.budget, request.seed, request.run_dir,
        request.resume, request.on_progress, request.overwrite,
    )  # fmt: skip
    title = f"{config.state} on {request.env_kwargs['dataset']}, seed {request.seed}"
    plots = plot_training(result.curve, request.run_dir, title)
    files = (CHECKPOINT, CONFIG, RUN_FILE, CURVE_FILE, *(path.name for path in plots))
    return TrainedRun(dict(result.curve[-1]), files)


def resumed(run_dir: Path) -> tuple[DRRConfig, int, dict[str, Any]]:
    """The config, seed and env arguments of the run to continue: the checkpoint's own."""
    check_own_checkpoint(run_dir)  # before the file is read: a crafted one may not load at all
    payload, config = load_checkpoint(run_dir)
    return config, int(payload["seed"]), dict(payload["env_kwargs"])


def load_run(run_dir: Path, **location: Any) -> tuple[DRRAgent, dict[str, Any]]:
    """:func:`~agents.drr.train.load_agent`, refusing a ``run.json`` that names another agent
    than the checkpoint's (the checkpoint is the run's; ``run.json`` a readable copy)."""
    check_own_checkpoint(Path(run_dir))  # before the file is read, as for a resume
    agent, env_kwargs = load_agent(Path(run_dir), **location)
    info = read_run_info(Path(run_dir)) or {}
    recorded = info.get("agent", agent.config.state)
    if recorded != agent.config.state:
        raise RunFolderError(
            f"{Path(run_dir) / RUN_FILE} names agent {recorded!r}, but {CHECKPOINT} holds a "
            f"{agent.config.state} agent (was it edited?)"
        )
    return agent, env_kwargs
