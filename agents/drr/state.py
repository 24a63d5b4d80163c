"""DRR's state representation module (Liu et al., section 3.3), in its four variants.

Inputs are the user's embedding ``u`` (batch, dim) and the history item embeddings ``h``
(batch, n, dim). Every variant but DRR-n holds trainable per-position weights ``w_a`` and is
trained with the network it belongs to; it is saved in the same state dict.
"""

from __future__ import annotations

import torch
from torch import nn


class StateRepresentation(nn.Module):
    """Maps (user, history) embeddings to the state vector the actor and critic read.

    - ``drr-n``: ``[h_1, ..., h_n]``.
    - ``drr-p``: ``[h_1, ..., h_n] + [w_a h_a * w_b h_b for a < b]``.
    - ``drr-u``: ``[u * w_a h_a for a] + [w_a h_a * w_b h_b for a < b]``.
    - ``drr-ave``: ``p = sum_a w_a h_a`` (weighted average pooling, ``w`` starting at 1/n),
      then ``[u, u * p, p]``.
    """

    pair_first: torch.Tensor  # buffers: the index pairs a < b of the history
    pair_second: torch.Tensor

    def __init__(self, kind: str, dim: int, history_len: int) -> None:
        super().__init__()
        self.kind, self.dim, self.history_len = kind, dim, history_len
        start = 1.0 / history_len if kind == "drr-ave" else 1.0
        if kind != "drr-n":
            self.weights = nn.Parameter(torch.full((history_len,), start))
        # n (n - 1) / 2 pairs: only the representations that read them hold them (a 15,000-item
        # history made drr-ave's modules hold 1.8 GB of indices each, counted by no check).
        n = history_len if kind in ("drr-u", "drr-p") else 0
        first, second = torch.triu_indices(n, n, offset=1)
        self.register_buffer("pair_first", first, persistent=False)
        self.register_buffer("pair_second", second, persistent=False)

    @property
    def out_dim(self) -> int:
        """Length of the state vector."""
        return state_dim(self.kind, self.dim, self.history_len)

    def _pairs(self, weighted: torch.Tensor) -> torch.Tensor:
        return (weighted[:, self.pair_first] * weighted[:, self.pair_second]).flatten(1)

    def forward(self, user: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        """State vectors (batch, out_dim)."""
        if self.kind == "drr-n":
            return history.flatten(1)
        weighted = history * self.weights[None, :, None]
        if self.kind == "drr-p":
            return torch.cat([history.flatten(1), self._pairs(weighted)], dim=1)
        if self.kind == "drr-u":
            return torch.cat(
                [(user[:, None, :] * weighted).flatten(1), self._pairs(weighted)], dim=1
            )
        pooled = weighted.sum(dim=1)
        return torch.cat([user, user * pooled, pooled], dim=1)


def state_dim(kind: str, dim: int, history_len: int) -> int:
    """Length of the state vector of representation ``kind`` (known before building one)."""
    n = history_len
    pairs = n * (n - 1) // 2
    return {"drr-n": n * dim, "drr-p": (n + pairs) * dim, "drr-u": (n + pairs) * dim}.get(
        kind, 3 * dim
    )
