"""Progress reporting from inside SB3 training."""

from __future__ import annotations

from collections.abc import Callable

from stable_baselines3.common.callbacks import BaseCallback


class StepCallback(BaseCallback):
    """Calls ``on_step(1)`` after every environment step, e.g. to advance a progress bar."""

    def __init__(self, on_step: Callable[[int], None]) -> None:
        super().__init__()
        self._on_step_fn = on_step

    def _on_step(self) -> bool:
        self._on_step_fn(1)
        return True
