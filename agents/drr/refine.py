"""Wolpertinger refinement (Dulac-Arnold et al., 2015): the actor's action as a proto-item,
the items it scores highest re-scored by the critic, and the best one played by its own vector.

A policy acts on MovieLensRec-v0 through a direction only: the env recommends the candidate
whose vector has the largest inner product with the action. A smooth actor cannot point
exactly at the item a user's state calls for (under ``boredom`` the genres to avoid are not
a direction in item-vector space), but an item's own vector picks that item almost always
(99% of myopic-mf's choices on ML-100K, ``benchmarks/results/action-space/``). So the agent
takes the ``k`` items the actor's action ranks highest, asks the critic for the value of each
played by its vector, and plays the best one's: the critic learns on the actions it then
chooses among.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .catalogue import ItemCatalogue
from .networks import unit


class ItemRefiner:
    """Turns proto-actions into the unit vector of the item the critic values most among the
    ``k`` the proto-action scores highest (the observed history's items excluded: the env never
    recommends them).

    Args:
        items: ``(n_items, dim)`` the env's item vectors (``env.unwrapped.vectors.items``).
        k: candidates re-scored per action (at most the catalogue).
        history_len: items in the observed history.
    """

    def __init__(self, items: np.ndarray, k: int, history_len: int) -> None:
        self.catalogue = ItemCatalogue(items, history_len)
        self.items = self.catalogue.items
        self.playable = unit(self.items)  # the same ranking as the raw vector, inside the box
        self.k, self.dim = min(k, len(self.items)), self.catalogue.dim

    def choose(
        self, observations: torch.Tensor, protos: torch.Tensor,
        critic: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:  # fmt: skip
        """``(batch, dim)`` the played actions for ``protos`` in ``observations``; a row whose
        best item has an all-zero vector keeps its proto-action."""
        with torch.no_grad():
            scores = protos @ self.items.T
            scores.masked_fill_(self.catalogue.history_mask(observations), -torch.inf)
            best_scores, top = scores.topk(self.k, dim=1)
            candidates = self.playable[top]  # (batch, k, dim)
            repeated = observations.repeat_interleave(self.k, dim=0)
            values = critic(repeated, candidates.reshape(-1, self.dim)).reshape(-1, self.k)
            # With fewer than k items outside the history, history items fill the top k.
            values.masked_fill_(best_scores == -torch.inf, -torch.inf)
            best = candidates[torch.arange(len(top)), values.argmax(dim=1)]
            empty = best.abs().sum(dim=1) == 0
            return torch.where(empty[:, None], protos, best)
