"""Run folders, whoever trained them: what marks one, when training may write into it, and its
``run.json``.

A folder that already holds a run is never written over by accident: training refuses it
unless asked to continue the run (``resume``) or to replace it (``overwrite``). ``run.json``
names the agent that made the run, with its config, seed and env arguments; where the data and
caches live is the caller's business and is never recorded (nor followed if found).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym

from movielens_env import MovieLensRecEnv
from movielens_env.errors import ArgumentError, CacheError, MovieLensRecError
from movielens_env.storage import (
    atomic_write,
    checksum,
    file_sha256,
    make_folder,
    make_folders,
    read_json,
    remove_folders,
    unpack_problem,
)

from . import registry
from .pickle_scan import torch_file_problem

RUN_FILE = "run.json"
# Beside a run a benchmark trained: that run's key (budget and data included) and the checksum
# of the run.json it wrote, so that a train run put in its place (whose run.json differs) is
# never taken for the benchmark's own. run.json itself is checksummed, so the mark is apart.
# Written first with "run": null, before the trainer writes anything: what a stopped benchmark
# leaves there is its own, which it trains again, and a folder without it holds a user's files.
BENCHMARK_RUN_MARK = ".benchmark-run.json"
CURVE_FILE = "learning_curve.csv"
LOCATION_KEYS = ("data_dir", "cache_dir", "download")


class RunFolderError(MovieLensRecError, ValueError):
    """A run folder cannot be used as asked (it holds a run, holds none to resume or load, or
    its files are damaged or disagree with each other)."""


def run_files() -> tuple[str, ...]:
    """Every file name a registered agent's runs write, and ``run.json`` and the curve."""
    artefacts = [entry.artefact for entry in registry.AGENTS.values() if entry.artefact]
    names = [name for artefact in artefacts for name in artefact.files]
    own = [name for name in names if name not in (RUN_FILE, CURVE_FILE)]
    return tuple(dict.fromkeys([*own, RUN_FILE, CURVE_FILE]))


# The names that may mark a folder as holding a run: the record every run writes, or (for DRR
# folders written before run.json existed) a checkpoint. The names alone prove nothing: a user's
# own run.json or PyTorch checkpoint.pt is no run, and is never replaced (see holds_run).
RUN_MARKERS = (RUN_FILE, "checkpoint.pt")


def is_run_record(path: Path) -> bool:
    """Whether ``path`` is a ``run.json`` this tool wrote, intact: a JSON object naming an agent,
    whose checksum matches its content."""
    try:
        info = read_json(path)
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return (
        isinstance(info, dict)
        and isinstance(info.get("agent"), str)
        and info.get("checksum") == checksum(info)
    )


def is_drr_checkpoint(path: Path) -> bool:
    """Whether ``path`` loads (tensors only, no code run) as a DRR checkpoint of any format
    version: a dict with its ``format_version`` and ``config``."""
    if not path.is_file() or unpack_problem(path) is not None or torch_file_problem(path):
        return False
    import torch  # only where a checkpoint.pt is there to tell

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # damaged bytes raise anything from the unpickler: no checkpoint of ours
        return False
    # What every format version holds; a user's checkpoint with a "config" is not enough.
    return (
        isinstance(payload, dict)
        and {"format_version", "config", "agent", "seed"} <= set(payload)
        and isinstance(payload["config"], dict)
        and "state" in payload["config"]
    )


def _models(artefact: registry.Artefact) -> list[str]:
    """An artefact's model file names: its files less records, curves and plots."""
    return [name for name in artefact.files if not name.endswith((".json", ".csv", ".png"))]


def _holds_model(folder: Path, name: str) -> bool:
    if name == "checkpoint.pt":
        return is_drr_checkpoint(folder / name)
    return (folder / name).is_file()


def holds_run(folder: Path) -> bool:
    """Whether ``folder`` holds a run: an intact ``run.json`` this tool wrote, a DRR checkpoint,
    or a damaged (edited, truncated) ``run.json`` beside an agent's model file."""
    record = folder / RUN_FILE
    if is_run_record(record) or is_drr_checkpoint(folder / "checkpoint.pt"):
        return True
    entries = registry.AGENTS.values()
    models = {name for entry in entries if entry.artefact for name in _models(entry.artefact)}
    return _damaged_record(record) and any(_holds_model(folder, name) for name in models)


def _damaged_record(path: Path) -> bool:
    """Whether ``path`` is a ``run.json`` this tool wrote, damaged since: cut off (no JSON), or
    an object naming its agent and its checksum or model (edited: its checksum no longer holds,
    or was deleted). Another tool's record of that name (valid JSON without them) is a user's
    file."""
    try:
        record = read_json(path)
    except ValueError:  # cut off mid-write or mid-copy
        return True
    except OSError:
        return False
    if not isinstance(record, dict):
        return False
    return "agent" in record and bool({"checksum", "model"} & set(record))


def foreign_markers(folder: Path) -> list[str]:
    """The files of :data:`RUN_MARKERS`' names in ``folder`` where it holds no run: a user's
    own, which nothing here may replace."""
    if holds_run(folder):
        return []
    return [name for name in RUN_MARKERS if (folder / name).exists()]


def markers_not_its_own(folder: Path, files: tuple[str, ...]) -> list[str]:
    """The files of :data:`RUN_MARKERS`' names in ``folder`` that are not those of the run it
    holds (all of them where it holds none): a user's own, which would mark the folder as
    holding a run once that run is replaced. Where its ``run.json`` is missing or damaged, the
    run's files are ``files`` (those of the agent the folder is for): a DRR checkpoint beside
    an SB3 run whose record was edited is then no run's, as beside an intact one."""
    if not holds_run(folder):
        own: tuple[str, ...] = ()
    else:
        try:
            intact = read_run_info(folder) is not None
        except RunFolderError:
            intact = False
        own = _run_files_in(folder) if intact else files
    return [name for name in RUN_MARKERS if (folder / name).exists() and name not in own]


def is_results_folder(folder: Path) -> bool:
    """Whether ``folder`` is a benchmark's results folder: its ``references.json`` or one of
    its ``runs/*.json`` is a record a benchmark wrote. The names alone prove nothing: ``train``'s
    runs are kept in a ``runs/`` folder too (the README's own examples)."""
    if is_benchmark_record(folder / "references.json"):
        return True
    try:
        return any(is_benchmark_record(path) for path in (folder / "runs").glob("*.json"))
    except OSError:  # an unreadable runs/ is nothing a benchmark wrote that can be told
        return False


def is_benchmark_record(path: Path) -> bool:
    """Whether ``path`` holds a record a benchmark wrote (a JSON object with its key and
    checksum), whatever its configuration, and whether or not it is intact."""
    try:
        record = read_json(path)
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(record, dict) and isinstance(record.get("key"), dict) and "checksum" in record


def run_damage(run_dir: Path, agent: str) -> str:
    """Why ``run_dir`` does not hold a whole run of ``agent`` ("" if it does): no run there,
    a ``run.json`` that is unreadable, edited or names another agent, or a missing file of the
    agent's artefact."""
    if not run_dir.is_dir():
        return "missing"
    if not holds_run(run_dir):
        return "empty (no run.json, no checkpoint.pt)"
    try:
        info = read_run_info(run_dir) or {}
    except RunFolderError as exc:
        return f"damaged ({exc})"
    recorded = info.get("agent", agent)
    if recorded != agent:
        return f"damaged (its {RUN_FILE} names agent {recorded!r})"
    swapped = model_swapped(run_dir, info)
    if swapped:
        return f"damaged ({swapped})"
    entry = registry.AGENTS.get(agent)
    files = entry.artefact.files if entry is not None and entry.artefact else ()
    # Plots are drawn from the curve, by train only: no part of what is loaded.
    lost = [name for name in files if not name.endswith(".png") and not (run_dir / name).exists()]
    return f"damaged (no {', '.join(lost)})" if lost else ""


def results_folder_around(path: Path) -> Path | None:
    """The benchmark's results folder (:func:`is_results_folder`) that ``path`` is or lies
    in, or ``None``."""
    for folder in (path, *path.resolve().parents):
        if is_results_folder(folder):
            return folder
    return None


def check_run_dir(
    run_dir: Path,
    resume: bool,
    overwrite: bool,
    resume_from: str | None = None,
    files: tuple[str, ...] | None = None,
) -> None:
    """Check that training may write into ``run_dir`` (nothing is changed here).

    Raises:
        RunFolderError: ``run_dir`` is a file, lies under one, or is a benchmark's results
            folder; it holds a run and neither ``resume`` nor ``overwrite`` was asked, or
            files a run would overwrite (without ``overwrite``), or a ``run.json`` or
            ``checkpoint.pt`` that is no run's (with ``overwrite`` too); ``resume`` was asked and it
            holds no run (no ``resume_from`` where that is given); or both were asked; with
            ``overwrite`` and the ``files`` the run writes, :func:`check_replaceable`'s refusal.
    """
    if resume and overwrite:
        raise RunFolderError("resume and overwrite (--resume and --force) exclude each other")
    check_folder_path(run_dir, RunFolderError)
    taken = folders_at(run_dir, run_files())  # the lock is taken first: a folder there is named
    if taken:
        raise RunFolderError(
            f"{run_dir} holds folders named {', '.join(taken)}, where a run writes files (a "
            "run replaced by --force was removed before failing there): move them away"
        )
    if is_results_folder(run_dir):
        raise RunFolderError(f"{run_dir} is a benchmark's results folder; give a run its own --out")
    foreign = foreign_markers(run_dir)
    if foreign:
        raise RunFolderError(
            f"{run_dir} holds {', '.join(foreign)} that no run of movielens-rec wrote; they are "
            "never replaced (--force neither): use another --out, or move them away"
        )
    runs = [name for name in RUN_MARKERS if (run_dir / name).exists()]
    if resume and not (runs if resume_from is None else (run_dir / resume_from).exists()):
        raise RunFolderError(
            f"nothing to resume: {run_dir} holds no {resume_from or 'run'} (leave out --resume "
            "to start a new run there)"
        )
    if runs and not resume and not overwrite:
        raise RunFolderError(
            f"{run_dir} already holds a run ({', '.join(runs)}); pass --resume to continue it "
            "or --force to replace it"
        )
    clashing = [name for name in run_files() if (run_dir / name).exists()]
    if clashing and not runs and not overwrite:
        raise RunFolderError(
            f"{run_dir} holds no run but {', '.join(clashing)}, which a run would overwrite; "
            "use another --out, or move them away"
        )
    if overwrite and files is not None:
        check_replaceable(run_dir, files)


def folders_at(folder: Path, names: tuple[str, ...]) -> list[str]:
    """The ``names`` in ``folder`` taken by a folder (or a link to one), where a file goes."""
    return [name for name in names if (folder / name).is_dir()]


def check_replaceable(run_dir: Path, files: tuple[str, ...]) -> None:
    """Refuse to replace (``--force``) the ``files`` a run writes in ``run_dir`` unless it is
    recognisably a run's folder: it holds a run, or is a benchmark's run folder (marked, in a
    results folder; a folder merely inside one held a user's files the training API replaced).

    Raises:
        RunFolderError: ``run_dir`` is no run's folder but holds some of ``files`` (a user's
            own files of those names), named in the message.
    """
    if holds_run(run_dir):
        # A run of another agent: the files of this one's names that are not the old run's
        # are the user's, put beside it.
        old = _run_files_in(run_dir)
        theirs = [name for name in files if (run_dir / name).exists() and name not in old]
        if theirs:
            raise RunFolderError(
                f"{run_dir} holds a run and {', '.join(theirs)}, which are not that run's but "
                "this run would write; --force replaces only a run's files: move them away"
            )
        return
    if (run_dir / BENCHMARK_RUN_MARK).exists() and results_folder_around(run_dir) is not None:
        return  # a benchmark's own run folder: what is there is its run's (a damaged one)
    clashing = [name for name in files if (run_dir / name).exists()]
    if clashing:
        raise RunFolderError(
            f"{run_dir} holds no run but {', '.join(clashing)}, which this run would write; "
            "--force replaces only a run's files: use another --out, or move them away"
        )


def check_folder_path(folder: Path, error: type[Exception]) -> None:
    """Refuse, before any work, a folder path that is a file, lies under one, or cannot be
    created or written (no permission, a read-only or virtual file system): the folders it
    needs are made, then removed again, so that nothing is left where the work is refused."""
    for path in (folder, *folder.parents):
        if path.exists():
            if path == folder and not path.is_dir():
                raise error(f"{folder} is a file; a folder is needed there")
            if not path.is_dir():
                raise error(f"{folder}: {path} is a file, so no folder can be made there")
            break
    made: list[Path] = []
    try:
        made = make_folders(folder)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except (OSError, CacheError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise error(f"{folder}: no folder can be made or written there ({reason})") from None
    finally:
        remove_folders(made)  # nothing is left where the work is refused


def _run_files_in(run_dir: Path) -> tuple[str, ...]:
    """The files of the run ``run_dir`` holds: those of the agent its ``run.json`` names, or,
    where that is damaged or names no agent, of the agents whose model file is there."""
    try:
        agent = (read_run_info(run_dir) or {}).get("agent")
    except RunFolderError:
        agent = None
    entry = registry.AGENTS.get(agent) if isinstance(agent, str) else None
    if entry is not None and entry.artefact:
        return (*entry.artefact.files, RUN_FILE, CURVE_FILE)
    found = [
        entry.artefact.files
        for entry in registry.AGENTS.values()
        if entry.artefact and any(_holds_model(run_dir, m) for m in _models(entry.artefact))
    ]
    return (*(name for files in found for name in files), RUN_FILE, CURVE_FILE)


def remove_run(run_dir: Path, replaced_by: tuple[str, ...] | None = None) -> None:
    """Remove the files of the run ``run_dir`` holds (those of the agent its ``run.json``
    names); a folder without a run is left as it is. Where ``run.json`` is damaged, which run
    the files belong to cannot be told: then only those the new run writes (``replaced_by``,
    default: every run file) go, and any other model file stays."""
    if not holds_run(run_dir):
        return
    try:
        intact = read_run_info(run_dir) is not None
    except RunFolderError:  # a damaged record is replaced with the run, not in its way
        intact = False
    names = _run_files_in(run_dir)
    if not intact:
        names = tuple(
            n for n in names if n in (run_files() if replaced_by is None else replaced_by)
        )
    for name in (*names, RUN_FILE, CURVE_FILE):
        (run_dir / name).unlink(missing_ok=True)


def portable_env_kwargs(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The env arguments a run records: its dataset and env semantics, not where data lives.

    Raises:
        ArgumentError: they choose a ``split`` (see :func:`check_no_split`).
    """
    check_no_split(env_kwargs)
    return {k: v for k, v in env_kwargs.items() if k not in LOCATION_KEYS}


def check_no_split(env_kwargs: dict[str, Any]) -> None:
    """Refuse env arguments of a training run that choose the ``split``: a run trains on the
    train split and is evaluated on the test split's held-out ratings; one trained on the test
    split was scored on what it had learned from, without a word.

    Raises:
        ArgumentError: naming the split given.
    """
    if "split" in env_kwargs:
        raise ArgumentError(
            f"env argument split={env_kwargs['split']!r}: runs always train on the train split "
            "and are evaluated on the test split (the held-out ratings); leave split out"
        )


def json_env_kwargs(env_kwargs: dict[str, Any], who: str) -> dict[str, Any]:
    """:func:`portable_env_kwargs` as JSON values; ``who`` names the runs in the error.

    Raises:
        ArgumentError: an argument is an object (a dataset given as a ``RatingsDataset``).
    """
    try:
        return json.loads(json.dumps(portable_env_kwargs(env_kwargs)))
    except TypeError:
        raise ArgumentError(
            f"{who} runs are saved with a dataset given by name, not as an object"
        ) from None


def check_location(location: dict[str, Any], who: str) -> None:
    """Refuse loader arguments other than where data and caches live."""
    if set(location) - set(LOCATION_KEYS):
        raise ArgumentError(
            f"{who} takes only where data and caches live ({', '.join(LOCATION_KEYS)}), "
            f"got {sorted(location)}; the run's env arguments are its own"
        )


def write_run_info(run_dir: Path, info: dict[str, Any]) -> Path:
    """Write ``run_dir/run.json`` atomically."""
    make_folder(run_dir)
    path = run_dir / RUN_FILE
    info = {**info, "checksum": checksum(info)}
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(info, indent=1)), suffix=".json")
    return path


def read_run_info(run_dir: Path) -> dict[str, Any] | None:
    """The content of ``run_dir/run.json``, or ``None`` where there is none.

    Raises:
        RunFolderError: it is unreadable, not JSON, not a JSON object, or edited (its checksum
            missing or not matching).
    """
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        return None
    try:
        info = read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunFolderError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(info, dict):
        raise RunFolderError(f"{path}: not a JSON object, so not a run's record")
    if "checksum" not in info:
        raise RunFolderError(
            f"{path} was edited (it has no checksum, which every run's record is written with): "
            "a run's record is what it was trained with; restore it, or train the run again"
        )
    if info["checksum"] != checksum(info):
        raise RunFolderError(
            f"{path} was edited (its checksum no longer matches): a run's record is what it "
            "was trained with; restore it, or train the run again"
        )
    return info


def model_swapped(run_dir: Path, info: dict[str, Any]) -> str:
    """Why the model file a run's record ``info`` names is not the one it was trained into
    ("" if it is, or where the record predates digests: ``model_sha256`` absent)."""
    model, recorded = info.get("model"), info.get("model_sha256")
    if not isinstance(model, str) or recorded is None or not (run_dir / model).is_file():
        return ""
    # Two while a DRR checkpoint is being replaced by the next (either may be on disk).
    accepted = recorded if isinstance(recorded, list) else [recorded]
    if file_sha256(run_dir / model) not in accepted:
        return (
            f"{run_dir / model} is not the model this run trained (its SHA-256 differs from the "
            f"one {RUN_FILE} records): restore the run's own, or train the run again"
        )
    return ""


def env_shapes(env: MovieLensRecEnv) -> dict[str, int]:
    """What a trained network's input and output depend on: the action's length, the history's
    and the flat observation's."""
    return {
        "dim": gym.spaces.flatdim(env.action_space),
        "history_len": env.history_len,
        "obs_dim": gym.spaces.flatdim(env.observation_space),
    }


def check_trained_env(
    path: Path, env: MovieLensRecEnv, shapes: dict[str, int], data: str, error: type[Exception]
) -> None:
    """Refuse to run a trained agent on an env other than the one it was trained on: other
    shapes (``shapes``, as :func:`env_shapes` recorded them) or other ratings (``data``, the
    data's fingerprint); ``path`` (the run's record) and ``error`` make the message."""
    found = {key: value for key, value in env_shapes(env).items() if key in shapes}
    if found != shapes:
        raise error(
            f"{path}: the agent was trained for {shapes}, but its env arguments now give {found}"
        )
    if env.world.dataset.fingerprint() != data:
        raise error(
            f"{path}: the agent was trained on other ratings than those found now (data "
            f"fingerprint {data[:12]}, found {env.world.dataset.fingerprint()[:12]}); give the "
            "--data-dir of the data it was trained on"
        )
