"""DRR's actor and critic, each with its own state representation module."""

from __future__ import annotations

import torch
from torch import nn

from .state import StateRepresentation


def split_observation(obs: torch.Tensor | dict, dim: int, history_len: int):
    """(user, history) from a flat MovieLensRec-v0 observation batch, or from its dict form."""
    if isinstance(obs, dict):
        return obs["user"], obs["history"]
    return obs[:, :dim], obs[:, dim:].reshape(-1, history_len, dim)


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, outputs),
    )  # fmt: skip


class Actor(nn.Module):
    """State -> action in [-1, 1]^dim (tanh), the item-embedding direction to recommend."""

    def __init__(self, kind: str, dim: int, history_len: int, hidden: int) -> None:
        super().__init__()
        self.dim, self.history_len = dim, history_len
        self.state = StateRepresentation(kind, dim, history_len)
        self.body = _mlp(self.state.out_dim, hidden, dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions (batch, dim)."""
        user, history = split_observation(obs, self.dim, self.history_len)
        return torch.tanh(self.body(self.state(user, history)))


class Critic(nn.Module):
    """(state, action) -> Q value."""

    def __init__(self, kind: str, dim: int, history_len: int, hidden: int) -> None:
        super().__init__()
        self.dim, self.history_len = dim, history_len
        self.state = StateRepresentation(kind, dim, history_len)
        self.body = _mlp(self.state.out_dim + dim, hidden, 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q values (batch,)."""
        user, history = split_observation(obs, self.dim, self.history_len)
        return self.body(torch.cat([self.state(user, history), action], dim=1)).squeeze(1)
