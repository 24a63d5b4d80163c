"""``movielens-rec tune``: an Optuna study of one agent's hyper-parameters on a validation split.

Every trial trains the agent on the **validation** dataset (each user's train ratings; its own
temporal split holds out the last part of them, :func:`movielens_env.data.split.
validation_dataset`) and scores it by the online return of the validation users under the
``mf`` simulator, the same return the leaderboard reports on test. Test ratings are never read.
The first trial is the config the search starts from (the agent's default, or ``--config``),
so a study never ends below it; each trial is evaluated four times during training, the
Optuna ``MedianPruner`` stops a trial whose intermediate score falls below the median of
earlier trials at the same point, and the ``TPESampler`` proposes the next values (after a
third of the trials, at most 10, drawn at random). Every agent is given the same budget:
``--trials`` trials of ``--timesteps`` environment steps each (DRR: ``timesteps // horizon``
episodes).

The output folder holds the study (Optuna's journal, ``study.journal``), so a tuning run
interrupted and started again with the same command continues it; ``tune.json`` (what was
tuned, on what, and the best trial so far), ``trials.csv`` and ``best_config.json`` (the best
trial's config, which ``train --config`` and ``benchmark --config`` read). A folder that holds
another study is refused unless ``force``; a folder that holds something else always is.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import gymnasium as gym

from movielens_env import ENV_ID
from movielens_env.checks import budget, positive_int
from movielens_env.data.load import load_dataset
from movielens_env.data.split import validation_dataset
from movielens_env.errors import ArgumentError, MovieLensRecError
from movielens_env.evaluation.protocols import heldout_env
from movielens_env.storage import (
    atomic_write,
    checksum,
    make_folder,
    read_json,
    read_small_bytes,
)

from ..benchmark.executors import EXECUTORS, checked_ray_address
from ..fields import check_seed
from ..folder_lock import LOCK_FILE, lock_folder
from ..registry import check_agent_config, check_agent_fits
from ..run_folder import (
    LOCATION_KEYS,
    check_folder_path,
    check_no_split,
    folders_at,
    json_env_kwargs,
)
from .space import base_params, check_tunable, default_config, trial_config
from .trial import OBJECTIVE, changed_fields, import_optuna, score_trial

RECORD = "tune.json"
JOURNAL = "study.journal"
BEST_CONFIG = "best_config.json"
TRIALS = "trials.csv"
FILES = (RECORD, JOURNAL, f"{JOURNAL}.lock", BEST_CONFIG, TRIALS)
FORMAT_VERSION = 1


class TuneFolderError(MovieLensRecError, ValueError):
    """The output folder holds another study, something else, or a damaged record."""


@dataclass(frozen=True)
class TuneResult:
    """What a tuning run left: the best config, its validation score, and the trials done."""

    best_config: Any
    best_value: float
    trials_done: int
    folder: Path


def _write_json(path: Path, value: Any) -> None:
    text = json.dumps(value, indent=1, sort_keys=True) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text), suffix=".json")


def _journal_bytes(path: Path) -> bytes:
    """The journal's bytes (none if absent), or :class:`TuneFolderError` where it is not a
    journal file (a FIFO would block, a folder or a file of GB is nobody's journal)."""
    if not path.exists():
        return b""
    try:
        return read_small_bytes(path, MAX_JOURNAL_BYTES)
    except OSError as exc:
        raise TuneFolderError(f"{path}: not a study's journal ({exc.strerror or exc})") from None


# Far beyond a journal of MAX_TRIALS trials (each a few kB), which Optuna replays at about 4 MB
# a second.
MAX_JOURNAL_BYTES = 256 << 20
MAX_TRIALS = 10_000
# A trial of this tool writes about 16 lines (its creation, parameters, EVALUATIONS intermediate
# values, attributes, its end); Optuna replays a trial's lines in time quadratic in their number.
MAX_LINES_PER_TRIAL = 64
MAX_JOURNAL_LINES = MAX_LINES_PER_TRIAL * (MAX_TRIALS + 1)
# The search spaces name about 10 parameters; Optuna looks a new name up in every earlier trial,
# and trials.csv has a column per name.
MAX_PARAM_NAMES = 64
# Optuna's lines are under a few kB; each access to a study's trials deep-copies them all.
MAX_LINE_BYTES = 64 << 10
_CREATE_TRIAL = 4  # Optuna's journal operation that creates a trial


def _read_record(folder: Path) -> dict[str, Any] | None:
    path = folder / RECORD
    if not path.exists():
        return None
    try:
        record = read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TuneFolderError(
            f"{path}: unreadable ({type(exc).__name__}), so nothing says this folder is a "
            "study; remove it yourself if it is one"
        ) from None
    if not isinstance(record, dict) or record.get("checksum") != checksum(record):
        raise TuneFolderError(
            f"{path} is damaged or was edited, so nothing says this folder is a study (--force "
            "replaces only an intact study); remove it yourself if it is one"
        )
    return record


def _journal_mark(path: Path) -> dict[str, Any]:
    """The journal's length and SHA-256, as ``tune.json`` records them after each trial."""
    data = _journal_bytes(path)
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _restore_journal(folder: Path, record: dict[str, Any]) -> None:
    """Check the journal against the mark ``tune.json`` holds; cut what an interrupted trial
    appended after it (that trial is run again), so a cut-off last line never blocks a study.

    Raises:
        TuneFolderError: the journal's recorded part differs (edited, swapped, cut, deleted).
    """
    path = folder / JOURNAL
    data = _journal_bytes(path)
    mark = record.get("journal")
    size = mark.get("bytes") if isinstance(mark, dict) else None
    if (
        not isinstance(size, int)
        or len(data) < size
        or hashlib.sha256(data[:size]).hexdigest() != mark.get("sha256")  # type: ignore[union-attr]
    ):
        raise TuneFolderError(
            f"{path} is not the journal {RECORD} records (edited, swapped, cut or deleted): its "
            "trials cannot be trusted; pass --force to start the study anew"
        )
    _check_operations(path, data[:size])
    if len(data) > size:
        atomic_write(path, lambda tmp: tmp.write_bytes(data[:size]))


def _check_operations(path: Path, journal: bytes) -> None:
    """Refuse a journal Optuna would take minutes or more to replay, read line by line as
    Optuna reads it (JSON objects; a key given twice is refused, where JSON keeps the last):
    more than :data:`MAX_TRIALS` trials, :data:`MAX_JOURNAL_LINES` lines,
    :data:`MAX_LINES_PER_TRIAL` lines of one trial, :data:`MAX_PARAM_NAMES` parameter names, or a
    line beyond :data:`MAX_LINE_BYTES`."""

    def refuse(what: str) -> NoReturn:
        raise TuneFolderError(
            f"{path}{what}: not a study of this tool's (replaying it would take many minutes, or "
            "mean something else); pass --force to start anew"
        )

    lines = journal.count(b"\n")
    if lines > MAX_JOURNAL_LINES:
        refuse(f" holds {lines:,} lines, more than {MAX_TRIALS:,} trials write")
    trials, per_trial, params = 0, Counter[int](), set[str]()
    for number, line in enumerate(journal.split(b"\n")[:lines], 1):
        if len(line) > MAX_LINE_BYTES:
            refuse(f":{number}: a line of {len(line):,} bytes, beyond {MAX_LINE_BYTES:,}")
        try:
            entry = json.loads(line, object_pairs_hook=_unique_keys)
        except (ValueError, UnicodeDecodeError, RecursionError):
            refuse(f":{number}: not a JSON object of distinct keys")
        operation = entry.get("op_code") if isinstance(entry, dict) else None
        if isinstance(operation, bool) or not isinstance(operation, int):
            refuse(f":{number}: no operation (op_code)")
        trials += operation == _CREATE_TRIAL
        # A trial created whole carries its values and attributes inline: each counts as the
        # line it would have been.
        inline = sum(
            len(entry[field])
            for field in ("intermediate_values", "user_attrs", "system_attrs", "params")
            if isinstance(entry.get(field), dict)
        )
        if inline > MAX_LINES_PER_TRIAL:
            refuse(f":{number}: more than {MAX_LINES_PER_TRIAL} values of one trial")
        for field in ("params", "distributions"):
            if isinstance(entry.get(field), dict):
                params.update(map(str, entry[field]))
        if isinstance(entry.get("param_name"), str):
            params.add(entry["param_name"])
        if len(params) > MAX_PARAM_NAMES:
            refuse(f":{number}: more than {MAX_PARAM_NAMES} parameter names")
        trial = entry.get("trial_id")
        if isinstance(trial, int) and not isinstance(trial, bool):
            per_trial[trial] += 1
            if per_trial[trial] > MAX_LINES_PER_TRIAL:
                refuse(f":{number}: more than {MAX_LINES_PER_TRIAL} lines of trial {trial}")
    if trials > MAX_TRIALS:
        refuse(f" holds {trials:,} trials, more than tune runs ({MAX_TRIALS:,})")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key given twice")
    return dict(pairs)


def _prepare_folder(folder: Path, settings: dict[str, Any], force: bool) -> None:
    """Refuse a folder of another study (unless ``force``, which removes it) or of anything
    else; a folder of this study is continued. Only an intact ``tune.json`` (its checksum
    holds) marks a study as this tool's: a damaged one is refused even with ``force``."""
    if not folder.exists():
        return
    if (folder / JOURNAL).is_symlink():
        raise TuneFolderError(
            f"{folder / JOURNAL} is a link: tune appends each trial to its journal, which would "
            "write into the file it points to (another study's?); put a copy there instead"
        )
    record = _read_record(folder)
    if record is None:
        others = sorted(p.name for p in folder.iterdir() if p.name != LOCK_FILE)
        if others:
            raise TuneFolderError(
                f"{folder} holds {', '.join(others[:5])}{', ...' if len(others) > 5 else ''} "
                "and no study (no tune.json): give an empty or new folder"
            )
        return
    if record.get("settings") != settings:
        if not force:
            raise TuneFolderError(
                f"{folder} holds a study of other settings ({record.get('settings')}); use "
                "another --out, or pass --force to replace it"
            )
    else:
        try:
            _restore_journal(folder, record)
            return
        except TuneFolderError:
            if not force:
                raise
    _check_files_not_folders(folder)
    for name in FILES:
        (folder / name).unlink(missing_ok=True)


def _check_files_not_folders(folder: Path) -> None:
    """Refuse a study folder where a folder stands at one of its files' names, before anything
    is removed or opened (a study half-removed, then a raw ``IsADirectoryError``)."""
    folders = folders_at(folder, FILES)
    if folders:
        raise TuneFolderError(
            f"{folder} holds a folder named {', '.join(folders)}, where tune keeps a file: "
            "move it away"
        )


def tune(
    agent: str,
    env_kwargs: dict[str, Any],
    timesteps: int,
    trials: int,
    out: Path,
    seed: int = 0,
    force: bool = False,
    base_config: Any | None = None,
    on_trial: Callable[[int, float | None, str], None] = lambda number, value, why: None,
    executor: str = "local",
    ray_address: str | None = None,
) -> TuneResult:
    """Tune ``agent`` for ``trials`` trials in all (those ``out`` already holds count).

    Args:
        agent: a tunable registered agent (DRR's states, SB3's ddpg, td3, sac).
        env_kwargs: the env arguments (dataset by name, user model, ...); the trials run on
            the dataset's validation split, never its test ratings.
        timesteps: environment steps per trial.
        trials: the study's total number of finished trials.
        out: the study's folder.
        seed: seeds the sampler and every trial's training.
        force: replace a study of other settings in ``out``.
        base_config: the config the search fills (default: the agent's default config).
        on_trial: called after each trial with its number, its value (``None``: pruned) and
            why it was pruned (empty if it was not).
        executor: ``local`` (one trial after another in this process) or ``ray`` (trials as
            Ray Tune trials, side by side: :mod:`~agents.tune.on_ray`).
        ray_address: the Ray cluster (default ``$RAY_ADDRESS``, else a local Ray).
    """
    check_tunable(agent)
    if trials < 1 or timesteps < 1:
        raise ArgumentError(f"--trials and --timesteps must be >= 1, got {trials} and {timesteps}")
    budget("--timesteps", timesteps)
    positive_int("--trials", trials, MAX_TRIALS)
    check_seed("seed", seed)
    check_no_split(env_kwargs)  # trials train on train less validation, scored on validation
    if not isinstance(env_kwargs.get("dataset", "ml-1m"), str):
        raise ArgumentError("tune takes the dataset by name (its validation split is carved here)")
    if executor not in EXECUTORS:
        raise ArgumentError(f"--executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    if executor == "ray":
        ray_address = checked_ray_address(ray_address)
    elif ray_address is not None:
        raise ArgumentError("--ray-address applies to --executor ray")
    out = Path(out).expanduser()
    check_folder_path(out, TuneFolderError)  # before the data's MF fit
    optuna = import_optuna()
    base = base_config or default_config(agent)
    check_agent_config(agent, base)  # what the trainer would refuse, before any work
    first = base_params(agent, base)  # before any work: a base outside the space is refused
    location = {k: env_kwargs[k] for k in LOCATION_KEYS if k in env_kwargs}
    dataset = validation_dataset(
        load_dataset(env_kwargs.get("dataset", "ml-1m"), location.get("data_dir"),
                     cache_dir=location.get("cache_dir"), download=location.get("download", True))
    )  # fmt: skip
    trial_kwargs = {**env_kwargs, "dataset": dataset}
    trial_kwargs.pop("data_dir", None)
    trial_kwargs.pop("download", None)
    # Env arguments the env refuses fail here, before the folder is made.
    gym.make(ENV_ID, **trial_kwargs).close()
    heldout_env(trial_kwargs)
    # What trial 0 would refuse (networks or a replay too large for these observations), before
    # --force removes a finished study for a study that cannot run.
    check_agent_fits(agent, trial_kwargs, base)
    settings = {
        "format_version": FORMAT_VERSION, "agent": agent, "timesteps": timesteps, "seed": seed,
        "env_kwargs": json_env_kwargs(env_kwargs, "tune"), "data": dataset.fingerprint(),
        "base_config": base.to_dict(), "objective": OBJECTIVE,
    }  # fmt: skip
    # Held to the end: a second tune on this folder would rewrite the journal this one appends
    # to, and each would then trust the other's trials.
    with lock_folder(out, "tune", TuneFolderError):
        _prepare_folder(out, settings, force)
        if not (out / RECORD).exists():  # the record first: it marks the folder as this study's
            make_folder(out)
            _save_record(out, settings, 0, None)
        # Optuna's own lock of the journal, left behind by a tune killed while appending: it
        # waits on it forever (busily where the link dangles). Under the folder's lock no other
        # tune uses the journal, so a lock there is stale.
        _check_files_not_folders(out)
        (out / f"{JOURNAL}.lock").unlink(missing_ok=True)
        try:  # the storage replays the journal
            storage = optuna.storages.JournalStorage(
                optuna.storages.journal.JournalFileBackend(str((out / JOURNAL).absolute()))
            )
            study = optuna.create_study(
                study_name="tune",
                storage=storage,
                direction="maximize",
                load_if_exists=True,
                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
            )
        except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a line Optuna misreads
            raise TuneFolderError(
                f"{out / JOURNAL}: Optuna cannot replay it ({type(exc).__name__}: {exc}): not a "
                "study of this tool's; pass --force to start anew"
            ) from None
        # Seeded by the trials already made, so a continued study does not repeat the proposals
        # it started with. TPE's default of 10 random trials first would leave a small budget
        # random search.
        study.sampler = optuna.samplers.TPESampler(
            seed=seed + len(study.trials), n_startup_trials=max(2, min(10, trials // 3))
        )
        if not study.trials:  # the config the search starts from is its first trial
            study.enqueue_trial(first)
        _run_again_interrupted(study, optuna)
        _write_record(out, settings, study, optuna, base)

        def ended(trial: Any) -> None:
            value = trial.value if trial.state.name == "COMPLETE" else None
            on_trial(trial.number, value, str(trial.user_attrs.get("pruned", "")))
            _write_record(out, settings, study, optuna, base)

        if executor == "ray":
            if _finished(study, optuna) < trials:
                from .on_ray import run_on_ray

                run_on_ray(
                    agent=agent, base=base, env_kwargs=trial_kwargs, timesteps=timesteps,
                    seed=seed, trials=trials - _finished(study, optuna), study=study,
                    storage=storage, optuna=optuna, address=ray_address, on_trial=ended,
                )  # fmt: skip
        else:
            objective = _objective(agent, base, trial_kwargs, timesteps, seed, optuna)
            while _finished(study, optuna) < trials:
                study.optimize(objective, n_trials=1, catch=())
                ended(study.trials[-1])
        return _result(out, study, optuna, base, _finished(study, optuna))


def _run_again_interrupted(study: Any, optuna: Any) -> None:
    """Fail the trials a study interrupted while running left behind (under the folder's
    lock no other tune is running them), and queue their parameters to be trained again.

    Trials running side by side (``--executor ray``) are in the journal's recorded part while
    another one ends; a single trial's lines are cut from it (:func:`_restore_journal`)."""
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        if trial.params:  # drawn (Ray's searcher draws them as it starts the trial)
            study.enqueue_trial(trial.params)


def _finished(study: Any, optuna: Any) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _best(study: Any, optuna: Any) -> Any | None:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return max(complete, key=lambda t: t.value, default=None)


def _result(out: Path, study: Any, optuna: Any, base: Any, done: int) -> TuneResult:
    best = _best(study, optuna)
    if best is None:
        raise ArgumentError(
            f"every trial of the study in {out} was pruned or failed: no config to keep"
        )
    return TuneResult(_config_of(best, base), float(best.value), done, out)


def _config_of(trial: Any, base: Any) -> Any:
    """The config a trial trained: ``base`` with the fields the trial changed.

    Raises:
        TuneFolderError: the trial holds no such fields, or fields ``base`` lacks (a journal
            this tool did not write).
    """
    try:
        return dataclasses.replace(base, **trial.user_attrs["config_fields"])
    except (KeyError, TypeError) as exc:
        raise TuneFolderError(
            f"trial {trial.number} of the study holds no config this tool wrote ({exc!r}): not "
            "a study of this tool's; pass --force to start anew"
        ) from None


def _save_record(
    out: Path, settings: dict[str, Any], finished: int, best: dict[str, Any] | None
) -> None:
    """``tune.json``: the settings, the trials finished, the best so far and the journal's
    mark, checksummed."""
    record = {
        "settings": settings, "trials_finished": finished, "best": best,
        "journal": _journal_mark(out / JOURNAL),
    }  # fmt: skip
    _write_json(out / RECORD, {**record, "checksum": checksum(record)})


def _write_record(out: Path, settings: dict[str, Any], study: Any, optuna: Any, base: Any) -> None:
    """tune.json, trials.csv and best_config.json as the study stands."""
    best = _best(study, optuna)
    summary = None
    if best is not None:
        config = _config_of(best, base).to_dict()
        summary = {"trial": best.number, "value": best.value, "config": config}
        _write_json(out / BEST_CONFIG, config)
    _save_record(out, settings, _finished(study, optuna), summary)
    params = sorted({key for t in study.trials for key in t.params})

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["trial", "state", "value", *params])
            for t in study.trials:
                value = "" if t.value is None else repr(t.value)
                row = [t.number, t.state.name, value, *(t.params.get(p, "") for p in params)]
                writer.writerow(row)

    atomic_write(out / TRIALS, write, suffix=".csv")


def _objective(
    agent: str, base: Any, env_kwargs: dict[str, Any], timesteps: int, seed: int, optuna: Any
) -> Callable[[Any], float]:
    def objective(trial: Any) -> float:
        config = trial_config(agent, trial, base)
        trial.set_user_attr("config_fields", changed_fields(config, base))
        return score_trial(agent, config, env_kwargs, timesteps, seed, trial, optuna)

    return objective
