"""Stored benchmark results (``OUT/runs/*.json``, ``OUT/references.json``): when to trust one.

A stored record is reused only if it is well-formed, was made by the same configuration (its
key), names the agent and seed of its file, holds metrics that are numbers in their ranges, and
still matches the checksum written with it. A record of another configuration is someone's
result: it is never replaced without being asked (``force``). Anything else (unreadable, edited,
forged, of another agent) is reported and recomputed, never aggregated.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from movielens_env.errors import MovieLensRecError
from movielens_env.evaluation import names
from movielens_env.storage import atomic_write, checksum, read_json

from ..registry import AGENTS
from ..run_folder import (
    BENCHMARK_RUN_MARK,
    check_folder_path,
    holds_run,
    is_benchmark_record,
    is_results_folder,
    remove_run,
    results_folder_around,
)
from .env_key import key_env_options

# Metrics that are shares, hence in [0, 1]; the rest (returns, normalized scores) are free.
_SHARES = tuple(f"{metric}@" for metric in names.METRICS)


class ResultsFolderError(MovieLensRecError, ValueError):
    """A results folder holds results of another configuration, which would be replaced."""


class InvalidRecordWarning(UserWarning):
    """A stored record could not be trusted and is recomputed."""


@dataclass(frozen=True)
class Stored:
    """What was found at a path: ``status`` is ``"missing"``, ``"reuse"``, ``"other"`` (valid,
    another configuration's) or ``"invalid"``; ``reason`` says why for the last two."""

    status: str
    record: dict[str, Any] | None = None
    reason: str = ""


def write_record(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Store ``record`` with its checksum, atomically; return it exactly as a reader sees it."""
    record = json.loads(json.dumps(record))
    record["checksum"] = checksum(record)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(record, indent=1)), suffix=".json")
    return record


def read_record(path: Path, key: dict[str, Any], check=lambda record: "") -> Stored:
    """Classify the record at ``path`` against ``key``; ``check`` returns a reason a record
    with the right key is still unusable ("" if none)."""
    if not path.exists():
        return Stored("missing")
    try:
        record = read_json(path, MAX_RESULT_BYTES)
    except (OSError, ValueError) as exc:
        return Stored("invalid", reason=f"unreadable ({exc})")
    return classify_record(record, key, check)


# A result record is a few hundred kB (its metrics and binned learning curve): one of 8 MiB is
# not a result, and reading thousands of larger ones took minutes before any work.
MAX_RESULT_BYTES = 8 << 20


def classify_record(record: Any, key: dict[str, Any], check=lambda record: "") -> Stored:
    """:func:`read_record` of a record already read."""
    if not isinstance(record, dict) or not isinstance(record.get("key"), dict):
        return Stored("invalid", reason="not a result record (no key)")
    if record.get("checksum") != checksum(record):
        return Stored("invalid", reason="its content does not match its checksum (edited?)")
    key = json.loads(json.dumps(key))  # as stored: tuples are lists there
    stored = canonical_key(record["key"])
    if stored != key:
        differ = sorted(k for k in {*key, *stored} if stored.get(k) != key.get(k))
        return Stored("other", record, f"another configuration (differs in {', '.join(differ)})")
    reason = check(record)
    return Stored("invalid", reason=reason) if reason else Stored("reuse", record)


def canonical_key(key: Any) -> Any:
    """A stored key (a record's, a run mark's) with its env options spelled as keys are made
    now: results stored before keys dropped default arguments (the ``boredom`` grid's
    ``"max_episode_steps": 10``) are this configuration's, not another's that ``--force``
    would remove. Anything else is returned as it is."""
    if not isinstance(key, dict):
        return key
    options = key.get("env_options")
    if not isinstance(options, dict):
        return key
    try:
        canonical = json.loads(json.dumps(key_env_options(options)))
    except (MovieLensRecError, TypeError, ValueError):
        return key  # not options any env takes: compared as written, hence another's
    return {**key, "env_options": canonical}


def check_run(record: dict[str, Any], agent: str, seed: int) -> str:
    """Why a run record with the right key cannot be used for ``agent``'s ``seed`` ("" if ok)."""
    if record.get("agent") != agent or record.get("seed") != seed:
        return f"it names agent {record.get('agent')!r} seed {record.get('seed')!r}"
    metrics = record.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        return "it holds no metrics"
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"metric {name} is {value!r}, not a number"
        if math.isnan(value) and "/normalized_" not in name:  # normalized: NaN if no scale
            return f"metric {name} is NaN"
        if any(share in name for share in _SHARES) and not 0.0 <= value <= 1.0:
            return f"metric {name} = {value} is outside [0, 1]"
        if math.isinf(value):
            return f"metric {name} is infinite"
    if not isinstance(record.get("n_users"), int) or record["n_users"] < 1:
        return "it holds no user count"
    return ""


def report_invalid(path: Path, reason: str) -> None:
    """Say that a stored record is ignored and recomputed, and move it aside first
    (``NAME.invalid``): it may be a user's own file of that name, which is never overwritten."""
    kept = path.with_name(f"{path.name}.invalid")
    number = 1
    while os.path.lexists(kept):  # a link pointing nowhere is a user's name too
        kept, number = path.with_name(f"{path.name}.invalid{number}"), number + 1
    path.rename(kept)
    warnings.warn(
        f"ignoring {path}: {reason}; recomputing it (the file is kept as {kept.name})",
        InvalidRecordWarning,
        stacklevel=3,
    )


def refuse_other_configs(found: list[tuple[Path, str]], out_dir: Path) -> None:
    """Raise :class:`ResultsFolderError` naming the results another configuration stored."""
    if found:
        shown = "; ".join(f"{path.relative_to(out_dir)}: {reason}" for path, reason in found[:3])
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        raise ResultsFolderError(
            f"{out_dir} holds results of another configuration ({shown}{more}); use another "
            "--out, or pass --force to remove them"
        )


def remove_other_configs(paths: list[Path], out_dir: Path) -> None:
    """Remove the records at ``paths`` (another configuration's, replaced as ``--force``
    asked), each run's folder before its record, and, if any, the leaderboard and plots they
    made: the folder then holds nothing of another configuration, even if this benchmark is
    interrupted."""
    for path in paths:
        run_dir = path.with_suffix("")
        if path.parent.name == "runs" and run_dir.is_dir() and not run_dir.is_symlink():
            # Where its run.json is damaged, which files are the run's cannot be told from it:
            # those of the agent the folder is named after go (a model left behind would be
            # taken for a user's run, and the benchmark would refuse its own folder).
            remove_run(run_dir, replaced_by=_named_agent_files(run_dir))
            (run_dir / BENCHMARK_RUN_MARK).unlink(missing_ok=True)
            if not any(run_dir.iterdir()):
                run_dir.rmdir()
        path.unlink(missing_ok=True)
    if paths:
        for name in OUTPUT_FILES:
            (out_dir / name).unlink(missing_ok=True)


def run_name_parts(name: str) -> tuple[str, str]:
    """The agent and the seed (as written) a run's name ``<agent>-seed<N>`` holds."""
    agent, _, seed = name.rpartition("-seed")
    return agent, seed


def _named_agent_files(run_dir: Path) -> tuple[str, ...]:
    """The files a run of the agent ``run_dir`` (``<agent>-seed<N>``) is named after writes;
    none for an agent not registered here."""
    entry = AGENTS.get(run_name_parts(run_dir.name)[0])
    return entry.artefact.files if entry is not None and entry.artefact is not None else ()


# What a benchmark writes at the top of its results folder, besides references.json and runs/.
OUTPUT_FILES = ("leaderboard.md", "leaderboard.csv", "metrics.png", "learning_curves.png")


def check_results_folder(out_dir: Path) -> None:
    """Refuse an ``out_dir`` whose files a benchmark would overwrite although it is not a
    results folder (no record of a benchmark in ``references.json`` or ``runs/*.json``; a
    ``runs/`` folder of ``train``'s runs does not make one): ``--force`` replaces only a
    results folder's files."""
    check_folder_path(out_dir, ResultsFolderError)
    around = results_folder_around(out_dir.parent)
    if around is not None:  # its run folders, or runs/ itself: the outer one's to replace
        raise ResultsFolderError(
            f"{out_dir} lies in the benchmark results folder {around}, whose runs a benchmark "
            "there would replace; give this one a folder of its own"
        )
    if (out_dir / "runs").is_symlink():
        raise ResultsFolderError(
            f"{out_dir / 'runs'} is a link (to {os.readlink(out_dir / 'runs')}): a benchmark "
            "writes and removes results there under its own folder's lock only, so those of "
            "another results folder would go; give it a folder of its own"
        )
    if holds_run(out_dir):
        raise ResultsFolderError(
            f"{out_dir} holds a training run (run.json or checkpoint.pt); give the benchmark "
            "its own --out"
        )
    references = out_dir / "references.json"
    clashing = [name for name in OUTPUT_FILES if (out_dir / name).exists()]
    if references.exists() and not is_benchmark_record(references):
        clashing.append(references.name)
    if clashing and not is_results_folder(out_dir):
        raise ResultsFolderError(
            f"{out_dir} is not a benchmark's results folder but holds {', '.join(clashing)}, "
            "which a benchmark would overwrite (--force replaces only a results folder's "
            "files); use another --out, or move them away"
        )
