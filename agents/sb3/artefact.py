"""SB3 runs in a folder: ``<algorithm>.zip`` (SB3's own format), ``learning_curve.csv`` and
``run.json`` (agent, algorithm, config, seed, budget, env arguments without the data location,
the data's fingerprint and the env's shapes). The benchmark's ``runs/<agent>-seed<N>/`` folders
and ``movielens-rec train``'s are the same.

Loading never runs code from the folder: the model is rebuilt from ``run.json`` and only its
weights are read from the zip (SB3's ``set_parameters``, which loads tensors with
``weights_only``); the pickled objects the zip also holds are never unpickled.
"""

from __future__ import annotations

import csv
import dataclasses
import zipfile
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.save_util import load_from_zip_file

from movielens_env.checks import budget
from movielens_env.evaluation.protocols import evaluate, heldout_env
from movielens_env.storage import SignalsHeld, atomic_path, make_folder, unpack_problem

from ..artefact import RunRequest, TrainedRun
from ..benchmark.progress import StepCallback
from ..fields import check_seed
from ..folder_lock import lock_folder
from ..pickle_scan import torch_file_problem
from ..run_folder import (
    CURVE_FILE,
    RUN_FILE,
    RunFolderError,
    check_location,
    check_run_dir,
    check_trained_env,
    env_shapes,
    file_sha256,
    json_env_kwargs,
    model_swapped,
    portable_env_kwargs,
    read_run_info,
    remove_run,
    write_run_info,
)
from ..tensor_payload import too_large
from ..threads import torch_threads
from .config import SB3Config, config_class
from .train import ALGORITHMS, make_model, train_model

# 1: the first format (run.json beside the zip).
FORMAT_VERSION = 1


def model_file(algorithm: str) -> str:
    """The name of an algorithm's model in a run folder, e.g. ``td3.zip``."""
    return f"{algorithm}.zip"


def train_into(
    run_dir: Path,
    agent: str,
    algorithm: str,
    config: SB3Config,
    env_kwargs: dict[str, Any],
    seed: int,
    timesteps: int,
    overwrite: bool = False,
    callback: BaseCallback | None = None,
) -> tuple[BaseAlgorithm, list[tuple[int, float]]]:
    """Train ``algorithm`` and save it as a run of ``agent`` in ``run_dir``; return the model
    and its learning curve (environment steps so far, episode return).

    A folder holding a run is refused unless ``overwrite``; the old run is removed only once
    the new one is trained, and ``run.json`` is written last, so a folder with one holds a
    whole run.
    """
    check_seed("seed", seed)
    budget("timesteps", timesteps)
    recorded = json_env_kwargs(env_kwargs, "SB3")  # a dataset object refused before the folder
    # Held while checked and trained into: a second trainer there (the CLI, another notebook)
    # would find it empty too, then one run would replace the other's without a word.
    with lock_folder(run_dir, "train", RunFolderError):
        name = model_file(algorithm)
        check_run_dir(
            run_dir, resume=False, overwrite=overwrite, files=(name, RUN_FILE, CURVE_FILE)
        )
        env = heldout_env(env_kwargs)  # bad env arguments or missing data fail here, first
        model, curve = train_model(
            algorithm, env_kwargs, seed, timesteps, config, callback=callback
        )
        make_folder(run_dir)
        # The old run goes only once the new one's files are whole on disk (a disk filling up
        # while they are written leaves the old run as it was), just before they take its place.
        with (
            SignalsHeld() as held,  # entered first, so it ends last: after the renames
            atomic_path(run_dir / name, suffix=".zip") as model_tmp,
            atomic_path(run_dir / CURVE_FILE, suffix=".csv") as curve_tmp,
        ):
            model.save(model_tmp)
            _write_curve(curve_tmp, curve)
            digest = file_sha256(model_tmp)
            # From here the old run's removal, the record and the renames finish together: a
            # Ctrl-C there would lose the old run and discard the new one's files.
            held.hold()
            if overwrite:
                remove_run(run_dir, (name, RUN_FILE, CURVE_FILE))
            # run.json before the files it names take their names: a stop in between leaves this
            # tool's record of a run missing its model (which --force replaces), never the tool's
            # model without a record (refused as a user's file, --force too).
            write_run_info(run_dir, {
                "format_version": FORMAT_VERSION, "agent": agent, "algorithm": algorithm,
                "model": name, "config": config.to_dict(), "seed": seed, "timesteps": timesteps,
                "env_kwargs": recorded, "data": env.world.dataset.fingerprint(), **env_shapes(env),
                "model_sha256": digest,
            })  # fmt: skip
        return model, curve


def _write_curve(path: Path, curve: list[tuple[int, float]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timesteps", "episode_return"])
        writer.writerows(curve)


def train_run(algorithm: str, request: RunRequest) -> TrainedRun:
    """Train the run ``request`` asks for (``movielens-rec train``), then evaluate it."""
    if request.resume:
        raise RunFolderError(
            f"{request.agent} runs cannot be resumed: SB3 saves no replay buffer with the model"
        )
    steps = [0]

    def step(count: int) -> None:
        steps[0] += count
        request.on_progress(steps[0], None)

    model, _ = train_into(
        request.run_dir, request.agent, algorithm, request.config, request.env_kwargs,
        request.seed, request.budget, request.overwrite, StepCallback(step),
    )  # fmt: skip
    with torch_threads(1):
        metrics = evaluate(model, request.env_kwargs, name=request.agent).summary()
    return TrainedRun(metrics, (model_file(algorithm), RUN_FILE, CURVE_FILE))


def load_run(run_dir: Path, **location: Any) -> tuple[BaseAlgorithm, dict[str, Any]]:
    """The trained model of an SB3 run folder and the env kwargs it was trained with: its
    dataset and env semantics, plus ``location`` (``data_dir``, ``cache_dir``, ``download``).

    Raises:
        RunFolderError: ``run.json`` is missing, damaged or incomplete; the model file is
            missing or its weights do not fit the run's config; or the env those arguments make
            is not the one it was trained on (other ratings, other observation or action length).
    """
    check_location(location, "load_run")
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    path = run_dir / RUN_FILE
    if info is None:
        raise RunFolderError(f"{run_dir}: no {RUN_FILE} (is it a run folder?)")
    try:
        if info["format_version"] != FORMAT_VERSION:
            raise ValueError(f"format version {info['format_version']}, not {FORMAT_VERSION}")
        algorithm = info["algorithm"]
        if algorithm not in ALGORITHMS or info["model"] != model_file(algorithm):
            raise ValueError(f"algorithm {algorithm!r} with model {info['model']!r}")
        config = config_class(algorithm).from_dict(info["config"])
        seed = check_seed("seed", info["seed"])
        dims = {key: int(info[key]) for key in ("dim", "obs_dim")}
        env_kwargs = {**portable_env_kwargs(dict(info["env_kwargs"])), **location}
        data = str(info["data"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFolderError(
            f"{path}: not a run of an SB3 agent of format {FORMAT_VERSION}, or incomplete "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None
    env = heldout_env(env_kwargs)
    check_trained_env(path, env, dims, data, RunFolderError)
    weights = run_dir / info["model"]
    if not weights.is_file():
        raise RunFolderError(f"{weights}: missing; {path} names it as the run's model")
    problem = unpack_problem(weights)
    if problem is not None:
        raise RunFolderError(f"{weights}: {problem}; it is not loaded")
    swapped = model_swapped(run_dir, info)  # runs saved before the digest was kept: none
    if swapped:  # before anything of the file is read: a crafted zip may not load at all
        raise RunFolderError(swapped)
    params = _load_weights(weights, algorithm)
    # The replay buffer plays no part in acting: one slot, not the run's capacity.
    model = make_model(algorithm, env, seed, dataclasses.replace(config, buffer_size=1))
    try:
        model.set_parameters(params, exact_match=True, device="cpu")
    except Exception as exc:
        raise RunFolderError(
            f"{weights}: not the weights of this run's {algorithm} ({type(exc).__name__}); "
            "only its tensors are read, never code"
        ) from None
    return model, env_kwargs


def _load_weights(weights: Path, algorithm: str) -> dict[str, Any]:
    """The state dicts in the SB3 zip ``weights`` (its ``.pth`` members, read with torch's
    ``weights_only``; the pickled ``data`` member is never read), checked before torch's
    optimizer loading walks them: shared lists or a stride-0 tensor there took GBs and hours.

    Raises:
        RunFolderError: the zip is unreadable or damaged, or its payload too large once walked.
    """
    problem = _members_problem(weights)
    if problem:
        raise RunFolderError(f"{weights}: {problem}; it is not loaded")
    try:
        _, params, _ = load_from_zip_file(weights, load_data=False, device="cpu")
    except Exception as exc:
        # Damaged bytes reach the zip reader and torch's unpickler, which raise anything;
        # whatever it is, the file is unusable and nothing of it ran.
        raise RunFolderError(
            f"{weights}: unreadable, damaged, or not the weights of this run's {algorithm} "
            f"({type(exc).__name__}); only its tensors are read, never code"
        ) from None
    problem = too_large(params)
    if problem:
        raise RunFolderError(f"{weights}: {problem}; it is not loaded")
    return params


def _members_problem(weights: Path) -> str:
    """Why one of the torch files in the SB3 zip ``weights`` is refused before torch reads it
    (:func:`~agents.pickle_scan.torch_file_problem`; "" if none is)."""
    try:
        with zipfile.ZipFile(weights) as archive:
            for name in archive.namelist():
                if name.endswith(".pth"):
                    problem = torch_file_problem(archive.read(name))
                    if problem:
                        return f"{name}: {problem}"
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return ""  # damaged: SB3's own reading says so
    return ""
