"""DRR's actor and critic, each with its own state representation module."""

from __future__ import annotations

import torch
from torch import nn

from .state import StateRepresentation


def split_observation(obs: torch.Tensor, dim: int, history_len: int):
    """(user, history, context) from a flat MovieLensRec-v0 observation batch; the context is
    what follows the history (the user's satiation and patience, where the user model has them;
    empty otherwise)."""
    end = (history_len + 1) * dim
    return obs[:, :dim], obs[:, dim:end].reshape(-1, history_len, dim), obs[:, end:]


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, outputs),
    )  # fmt: skip


class Actor(nn.Module):
    """State -> action in [-1, 1]^dim (tanh), the item-vector direction to recommend.

    The state is the representation module's output, followed by the observation's context
    (``context`` values: satiation and patience under the user models that have them).
    """

    def __init__(self, kind: str, dim: int, history_len: int, hidden: int, context: int) -> None:
        super().__init__()
        self.dim, self.history_len = dim, history_len
        self.state = StateRepresentation(kind, dim, history_len)
        self.body = _mlp(self.state.out_dim + context, hidden, dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions (batch, dim)."""
        user, history, context = split_observation(obs, self.dim, self.history_len)
        return torch.tanh(self.body(torch.cat([self.state(user, history), context], dim=1)))


class Critic(nn.Module):
    """(state, action) -> Q value."""

    def __init__(self, kind: str, dim: int, history_len: int, hidden: int, context: int) -> None:
        super().__init__()
        self.dim, self.history_len = dim, history_len
        self.state = StateRepresentation(kind, dim, history_len)
        self.body = _mlp(self.state.out_dim + context + dim, hidden, 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q values (batch,)."""
        user, history, context = split_observation(obs, self.dim, self.history_len)
        state = torch.cat([self.state(user, history), context, action], dim=1)
        return self.body(state).squeeze(1)
