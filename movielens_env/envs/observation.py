"""The observation: its space and its values, for one user or a batch of users.

Flat layout (``obs_mode="flat"``), float32: the user vector, the history item vectors (oldest
first), then, where the user model has them, the per-genre satiation and the remaining patience.
``obs_mode="dict"`` holds the same parts under their own keys, plus the internal ids (int64
boxes, which flatten to the ids themselves).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from ..simulator.user_model import UserModel, UserState
from ..simulator.world import ItemVectors

# A flat float32 vector, or a dict of named float32 arrays (obs_mode="dict").
Observation = np.ndarray | dict[str, np.ndarray]
OBS_MODES = ("flat", "dict")


class ObservationBuilder:
    """Builds the observation space and the observations of one env configuration.

    Args:
        vectors: the item vectors (with or without the bias) the observation shows.
        model: the user model (whose state adds satiation and patience).
        history_len: items in the history.
        slate_size: items per step (bounds the satiation).
        obs_mode: ``"flat"`` or ``"dict"``.
        n_users: number of users (the range of ``user_id``).
    """

    def __init__(
        self,
        vectors: ItemVectors,
        model: UserModel,
        history_len: int,
        slate_size: int,
        obs_mode: str,
        n_users: int,
    ) -> None:
        self.vectors, self.model = vectors, model
        self.history_len, self.obs_mode = history_len, obs_mode
        config = model.config
        bound = np.float32(vectors.bound or 1.0)
        dim, n_items = vectors.dim, len(vectors.items)
        parts: dict[str, spaces.Box] = {
            "user": spaces.Box(-bound, bound, (dim,), np.float32),
            "history": spaces.Box(-bound, bound, (history_len, dim), np.float32),
        }
        if config.boredom:
            most = np.float32(slate_size * model.satiation_bound)
            parts["satiation"] = spaces.Box(0.0, most, (len(model.genres),), np.float32)
        if config.patience:
            parts["patience"] = spaces.Box(
                0.0, np.float32(config.patience_budget), (1,), np.float32
            )
        self.parts = parts
        if obs_mode == "flat":
            low = np.concatenate([box.low.ravel() for box in parts.values()])
            high = np.concatenate([box.high.ravel() for box in parts.values()])
            self.space: spaces.Space = spaces.Box(low, high, dtype=np.float32)
        else:
            # Ids as integer boxes, not Discrete/MultiDiscrete: those flatten (FlattenObservation,
            # SB3's MultiInputPolicy) to one-hot vectors as long as the catalogue, per item.
            self.space = spaces.Dict(
                {
                    "user_id": spaces.Box(0, n_users - 1, (1,), np.int64),
                    "history_ids": spaces.Box(0, n_items - 1, (history_len,), np.int64),
                    **parts,
                }
            )

    def __call__(self, state: UserState, history: np.ndarray) -> Any:
        """Observations of a batch: ``(n, obs_dim)`` float32, or a dict of batched arrays."""
        vectors, n = self.vectors, len(history)
        user = (
            vectors.fitted_users[state.users] if state.taste is None else vectors.users(state.taste)
        )
        items = vectors.items[history]
        if self.obs_mode == "flat":
            parts = [user, items.reshape(n, -1), *self._state_parts(state).values()]
            return np.concatenate(parts, axis=1)
        return {
            "user_id": state.users[:, None].copy(),
            "history_ids": history.copy(),
            "user": user,
            "history": items,
            **self._state_parts(state),
        }

    def _state_parts(self, state: UserState) -> dict[str, np.ndarray]:
        """The observed parts of the user's state, as ``(n, size)`` float32 arrays."""
        parts = {}
        if state.satiation is not None:
            parts["satiation"] = state.satiation.astype(np.float32)
        if state.patience is not None:
            budget = self.model.config.patience_budget
            parts["patience"] = np.clip(state.patience, 0.0, budget).astype(np.float32)[:, None]
        return parts

    @staticmethod
    def row(observation: Any, row: int) -> Any:
        """One observation of a batch, as a single env returns it."""
        if isinstance(observation, dict):
            return {key: value[row] for key, value in observation.items()}
        return observation[row]
