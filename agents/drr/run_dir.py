"""A DRR run folder: what it holds, and when training may write into it.

A folder that already holds a run is never written over by accident: training refuses it
unless asked to continue the run (``resume``) or to replace it (``overwrite``). The checkpoint
is the run's one source of truth; ``config.json`` and ``run.json`` are readable copies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from movielens_env.errors import MovieLensRecError

from .checkpoint import CHECKPOINT, CONFIG

CURVE_FILE = "learning_curve.csv"
RUN_FILE = "run.json"
PLOTS = ("precision.png", "return.png")
RUN_FILES = (CHECKPOINT, CONFIG, RUN_FILE, CURVE_FILE, *PLOTS)
# Where data and caches live is the caller's business, never a run's: a checkpoint names its
# dataset and env semantics only.
LOCATION_KEYS = ("data_dir", "cache_dir", "download")


class RunFolderError(MovieLensRecError, ValueError):
    """A run folder cannot be used as asked (it holds a run, or holds none to resume)."""


def check_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Check that training may write into ``run_dir`` (nothing is changed here).

    Raises:
        RunFolderError: ``run_dir`` is a file; it holds a run and neither ``resume`` nor
            ``overwrite`` was asked; ``resume`` was asked and it holds no checkpoint; or both.
    """
    if resume and overwrite:
        raise RunFolderError("resume and overwrite (--resume and --force) exclude each other")
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"{run_dir} is a file; a run needs a folder")
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if resume and not (run_dir / CHECKPOINT).exists():
        raise RunFolderError(
            f"nothing to resume: {run_dir} holds no {CHECKPOINT} (leave out --resume to start a "
            "new run there)"
        )
    if found and not resume and not overwrite:
        raise RunFolderError(
            f"{run_dir} already holds a run ({', '.join(found)}); pass --resume to continue it "
            "or --force to replace it"
        )


def remove_run(run_dir: Path) -> None:
    """Remove the files of the run in ``run_dir`` (only those a run writes)."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)


def portable_env_kwargs(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The env arguments a run records: its dataset and env semantics, not where data lives."""
    return {k: v for k, v in env_kwargs.items() if k not in LOCATION_KEYS}
