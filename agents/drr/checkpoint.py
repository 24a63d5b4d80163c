"""DRR checkpoints: one ``torch.save`` file that loads with ``weights_only=True``, plus the config
as JSON beside it. Both are written atomically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from movielens_env.errors import MovieLensRecError
from movielens_env.storage import atomic_path, make_folder, read_json, unpack_problem

from ..pickle_scan import torch_file_problem
from ..tensor_payload import too_large
from .config import DRRConfig
from .run_dir import CHECKPOINT, CONFIG

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "CheckpointError",
    "load_checkpoint",
    "save_checkpoint",
    "to_numpy",
    "to_torch",
]
# 2: the vector env's state replaces the single env's generator; 3: item vectors with the bias
# (one more dimension), the user model's state, and the observation's length; 4: the data's
# fingerprint; 5: the TD errors since the last evaluation (learning diagnostics); 6: the
# actor's action head (DRRConfig.action_head).
FORMAT_VERSION = 6


class CheckpointError(MovieLensRecError, ValueError):
    """A checkpoint is missing, unreadable, corrupted or of another format."""


def save_checkpoint(
    run_dir: Path,
    payload: dict[str, Any],
    config: DRRConfig,
    before_publishing: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``run_dir/checkpoint.pt`` (payload + format version) and ``run_dir/config.json``;
    ``before_publishing(checkpoint_tmp)`` is called once both are whole on disk, just before
    they take their names (where a run being replaced is removed, never before its successor
    is written, and the record learns the new checkpoint's digest)."""
    make_folder(run_dir)
    path = run_dir / CHECKPOINT
    payload = {**payload, "format_version": FORMAT_VERSION, "config": config.to_dict()}
    with (
        atomic_path(path, suffix=".pt") as checkpoint_tmp,
        atomic_path(run_dir / CONFIG, suffix=".json") as config_tmp,
    ):
        # Through a Python file, a failed write is the OSError it is (a full disk, a size
        # limit), though torch may report it as a RuntimeError raised while closing its zip;
        # written to a path, only that opaque RuntimeError is left.
        try:
            with open(checkpoint_tmp, "wb") as handle:
                torch.save(payload, handle)
        except (OSError, RuntimeError) as exc:
            cause = exc if isinstance(exc, OSError) else exc.__context__
            if not isinstance(cause, OSError):
                raise
            raise OSError(cause.errno, cause.strerror, str(path)) from exc
        config_tmp.write_text(config.to_json())
        if before_publishing is not None:
            before_publishing(checkpoint_tmp)
    return path


def load_checkpoint(run_dir: Path) -> tuple[dict[str, Any], DRRConfig]:
    """Load ``run_dir/checkpoint.pt`` without executing any code from it.

    Raises:
        CheckpointError: the file is missing, truncated, corrupted, holds objects other than
            tensors and plain containers, or was written by another format version.
    """
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint (is {run_dir} a DRR run directory?)")
    problem = unpack_problem(path) or torch_file_problem(path)
    if problem:
        raise CheckpointError(f"{path}: {problem}; it is not loaded")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # Damaged bytes reach the unpickler's internals, which raise anything (KeyError,
        # IndexError, ...); whatever it is, the file is unusable and nothing of it ran.
        # torch's own message advises loading with code execution: never repeated here.
        raise CheckpointError(
            f"{path}: unreadable, corrupted, or holding objects other than tensors and plain "
            f"containers ({type(exc).__name__}); it is never loaded in a way that runs code"
        ) from None
    problem = too_large(payload)
    if problem:
        raise CheckpointError(f"{path}: {problem}: not loaded")
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a DRR checkpoint of format version {FORMAT_VERSION}")
    try:
        config = DRRConfig.from_dict(payload["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its config is invalid ({exc})") from None
    _check_config_copy(Path(run_dir) / CONFIG, config)
    return payload, config


def _check_config_copy(path: Path, config: DRRConfig) -> None:
    """``config.json`` is a readable copy of the checkpoint's config: it must agree with it."""
    if not path.exists():
        return
    try:
        copy = DRRConfig.from_dict(read_json(path))
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: unreadable ({exc}); it should be a copy of the config in {CHECKPOINT}"
        ) from None
    if copy != config:
        raise CheckpointError(
            f"{path} disagrees with the config stored in {CHECKPOINT} (was it edited?); the "
            "checkpoint's is the run's: restore the copy with its content or remove the file"
        )


def to_torch(value: Any) -> Any:
    """Numpy arrays (also inside dicts and lists) as tensors, which ``weights_only`` loads."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return {key: to_torch(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_torch(item) for item in value]
    return value


def to_numpy(value: Any) -> Any:
    """The inverse of :func:`to_torch`."""
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, dict):
        return {key: to_numpy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_numpy(item) for item in value]
    return value
