"""What an agent with a trained artefact registers, so that ``movielens-rec train``, ``evaluate``
and ``recommend`` work for it: how to train a run into a folder and load it back.

A run folder holds ``run.json`` (which agent made it, its config, seed and env arguments, never
where the data lives) beside the agent's own files; :mod:`agents.run_folder` has the rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

# (policy, env kwargs): the trained policy and the env arguments it was trained with, plus the
# data location the caller gave.
Loaded = tuple[Any, dict[str, Any]]


@dataclass(frozen=True)
class RunRequest:
    """A training run the command line asks of an agent.

    Attributes:
        agent: the registry name.
        config: the agent's config (an instance of its :attr:`Artefact.config` type).
        env_kwargs: ``MovieLensRec-v0`` arguments, data location included (never recorded).
        seed: seed of the run.
        budget: episodes or environment steps in all (:attr:`Artefact.budget`).
        run_dir: the run folder to write.
        resume: continue the run ``run_dir`` holds (only where :attr:`Artefact.resume` is set).
        overwrite: replace the run ``run_dir`` holds.
        on_progress: call it with the budget spent so far and, where known, the last return.
    """

    agent: str
    config: Any
    env_kwargs: dict[str, Any]
    seed: int
    budget: int
    run_dir: Path
    resume: bool = False
    overwrite: bool = False
    on_progress: Callable[[int, float | None], None] = lambda done, episode_return: None


@dataclass(frozen=True)
class TrainedRun:
    """What a training run left: its test-split metrics and the files of its folder.

    Attributes:
        metrics: the evaluation (:func:`movielens_env.evaluation.protocols.evaluate`) after
            training, or at least its headline metrics.
        files: the names of the files it wrote in the run folder.
    """

    metrics: dict[str, float]
    files: tuple[str, ...]


@dataclass(frozen=True)
class Artefact:
    """How an agent's trained artefact is trained into a run folder and loaded from it.

    Attributes:
        config: the agent's default config; its dataclass's fields are what ``--set`` and
            ``--config`` may set, read by their types.
        budget: what the training budget counts: ``episodes`` or ``timesteps``.
        default_budget: the budget when none is given.
        files: the files its runs write (``run.json`` included), which mark a folder as
            holding a run and which ``--force`` removes.
        train: trains ``RunRequest.run_dir`` and writes ``run.json``; refuses a folder that
            holds a run unless ``overwrite`` (or ``resume``).
        load: ``load(run_dir, **location) -> (policy, env_kwargs)``, where ``location`` is only
            where data and caches live (``data_dir``, ``cache_dir``, ``download``); refuses a
            run whose env those arguments no longer give (other ratings, other shapes).
        resume: ``resume(run_dir) -> (config, seed, env_kwargs)`` of the run to continue, or
            ``None`` where runs cannot be continued exactly.
        check: ``check(config)`` raises the error the trainer would raise for a config it
            refuses beyond the config's own field checks (so that ``benchmark --config``
            refuses it before any work), or ``None`` where there is none.
        fits: ``fits(config, env_kwargs)`` raises the error the trainer would raise for
            ``config`` on the env those arguments make (networks too slow or large for the
            observation's length, a replay beyond the memory left), so that ``benchmark`` and
            ``tune`` refuse it before they remove anything; ``None`` where there is none.
    """

    config: Any
    budget: Literal["episodes", "timesteps"]
    default_budget: int
    files: tuple[str, ...]
    train: Callable[[RunRequest], TrainedRun]
    load: Callable[..., Loaded]
    resume: Callable[[Path], tuple[Any, int, dict[str, Any]]] | None = None
    check: Callable[[Any], None] | None = None
    fits: Callable[[Any, dict[str, Any]], None] | None = None
