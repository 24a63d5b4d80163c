"""A DRR run folder: the files it holds, and when training may write into it.

The general rules (a folder holding a run is refused unless resumed or replaced; ``run.json``;
data locations never recorded) are :mod:`agents.run_folder`'s. The checkpoint is a DRR run's
one source of truth; ``config.json`` and ``run.json`` are readable copies.
"""

from __future__ import annotations

from pathlib import Path

from ..run_folder import (
    CURVE_FILE,
    LOCATION_KEYS,
    RUN_FILE,
    RunFolderError,
    portable_env_kwargs,
    remove_run,
)
from ..run_folder import check_run_dir as _check_run_dir

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "CURVE_FILE",
    "LOCATION_KEYS",
    "PLOTS",
    "RUN_FILE",
    "RUN_FILES",
    "RunFolderError",
    "check_run_dir",
    "portable_env_kwargs",
    "remove_run",
]

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
PLOTS = ("precision.png", "return.png", "diagnostics.png")
RUN_FILES = (CHECKPOINT, CONFIG, RUN_FILE, CURVE_FILE, *PLOTS)


def check_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Check that DRR training may write into ``run_dir`` (nothing is changed here).

    Raises:
        RunFolderError: ``run_dir`` is a file; it holds a run (any agent's) and neither
            ``resume`` nor ``overwrite`` was asked; ``resume`` was asked and it holds no
            checkpoint; or both.
    """
    _check_run_dir(run_dir, resume, overwrite, resume_from=CHECKPOINT, files=RUN_FILES)
