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
from typing import NamedTuple

import numpy as np
import torch

from .catalogue import ItemCatalogue


class Scored(NamedTuple):
    """Each row's ``k`` candidates: their ``(batch, k, dim)`` playable vectors, the critic's
    ``(batch, k)`` values (``-inf`` where fewer than ``k`` items were left) and, where asked
    for, the ``(batch, k)`` items they make the env recommend."""

    candidates: torch.Tensor
    values: torch.Tensor
    items: torch.Tensor | None


class ItemRefiner:
    """Turns proto-actions into the unit vector of the item the critic values most among the
    ``k`` the proto-action scores highest (the observed history's items excluded: the env never
    recommends them).

    Args:
        catalogue: the env's items.
        k: candidates re-scored per action (at most the catalogue).
        tell_items: pass the critic, as its third argument, the item each candidate's vector
            makes the env recommend (a critic that reads it need not find it in the catalogue
            again for each of the ``k`` candidates).

    The critic is called as ``critic(observations, actions, items, k)``: ``(batch, ...)``
    observations, each standing for its ``k`` consecutive rows of the ``(batch * k, dim)``
    actions (as :meth:`~agents.drr.networks.Critic.forward`'s ``repeats``, which computes each
    observation's state once), and the ``(batch * k,)`` items or ``None``.
    """

    def __init__(self, catalogue: ItemCatalogue, k: int, tell_items: bool = False) -> None:
        self.catalogue, self.tell_items = catalogue, tell_items
        self.k, self.dim = min(k, catalogue.n_items), catalogue.dim

    def choose(
        self, observations: torch.Tensor, protos: torch.Tensor,
        critic: Callable[..., torch.Tensor], shown: torch.Tensor | None = None,
        explore: float = 0.0, rng: np.random.Generator | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """``(batch, dim)`` the played actions for ``protos`` in ``observations``, never one of
        the items ``shown`` ``(batch, n_items)`` marks (those recommended earlier in the
        episode); a row whose best item has an all-zero vector keeps its proto-action. With
        ``explore`` > 0, each row plays, with that probability, one of its candidates drawn
        uniformly by ``rng`` instead of the critic's choice (``rng`` is not drawn from at 0)."""
        with torch.no_grad():
            scored = self.scored(observations, protos, critic, shown)
            chosen = scored.values.argmax(dim=1)
            if explore > 0.0:
                chosen = self.explore(chosen, scored.values > -torch.inf, explore, rng)
            return self.play(scored, protos, chosen)

    def scored(
        self, observations: torch.Tensor, protos: torch.Tensor,
        critic: Callable[..., torch.Tensor], shown: torch.Tensor | None = None,
        picks: bool = False, proposals: torch.Tensor | None = None, proposed: int = 0,
    ) -> Scored:  # fmt: skip
        """The candidates of ``protos`` in ``observations`` (as :meth:`choose`, or as
        :meth:`candidates` with ``proposals``) and the ``critic``'s value of each; with
        ``picks`` (or ``tell_items``), also the item each candidate's vector makes the env
        recommend, which the critic is then told."""
        with torch.no_grad():
            top, best_scores, mask = self.candidates(
                observations, protos, shown, proposals, proposed
            )
            candidates = self.catalogue.playable[top]  # (batch, k, dim)
            flat = candidates.reshape(-1, self.dim)
            items = None
            if self.tell_items or picks:
                items = self.catalogue.recommended_for_items(top, mask)
            told = None if items is None else items.reshape(-1)
            values = critic(observations, flat, told, self.k).reshape(-1, self.k)
            # With fewer than k items outside the history, history items fill the top k.
            values.masked_fill_(best_scores == -torch.inf, -torch.inf)
            return Scored(candidates, values, items)

    @staticmethod
    def play(scored: Scored, protos: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        """``(batch, dim)`` the vectors of the ``chosen`` ``(batch,)`` candidates; a row whose
        chosen item has an all-zero vector keeps its proto-action."""
        best = scored.candidates[torch.arange(len(chosen)), chosen]
        empty = best.abs().sum(dim=1) == 0
        return torch.where(empty[:, None], protos, best)

    def candidates(
        self, observations: torch.Tensor, protos: torch.Tensor, shown: torch.Tensor | None = None,
        proposals: torch.Tensor | None = None, proposed: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """``(top, scores, mask)``: the ``(batch, k)`` items ``protos`` score highest outside
        each row's history and the items ``shown`` marks, their scores (``-inf`` where fewer
        than ``k`` items are left), and the ``(batch, n_items)`` mask of the excluded items.

        With ``proposals`` ``(batch, n_items)``, another ranking's scores of every item (a
        model's rewards), the ``proposed`` items it ranks highest come first and ``protos``
        propose the other ``k - proposed``; the scores are each ranking's own."""
        with torch.no_grad():
            mask = self.catalogue.history_mask(observations)
            if shown is not None:
                mask |= shown
            scores = protos @ self.catalogue.items.T
            scores.masked_fill_(mask, -torch.inf)
            if proposals is None or not proposed:
                best_scores, top = scores.topk(self.k, dim=1)
                return top, best_scores, mask
            ranked = proposals.masked_fill(mask, -torch.inf)
            first_scores, first = ranked.topk(min(proposed, self.k), dim=1)
            scores.scatter_(1, first, -torch.inf)  # each item proposed once
            rest_scores, rest = scores.topk(self.k - first.shape[1], dim=1)
            return torch.cat([first, rest], 1), torch.cat([first_scores, rest_scores], 1), mask

    @staticmethod
    def explore(
        chosen: torch.Tensor, valid: torch.Tensor, explore: float,
        rng: np.random.Generator | None,
    ) -> torch.Tensor:  # fmt: skip
        """``chosen`` with each row replaced, with probability ``explore``, by one of its
        ``valid`` ``(batch, k)`` candidates drawn uniformly."""
        if rng is None:
            raise ValueError("ItemRefiner.choose: explore > 0 draws candidates: give it rng")
        rows = len(chosen)
        draws = rng.random(rows) < explore
        # A uniform pick among each row's valid candidates: the largest of random keys.
        keys = torch.as_tensor(rng.random(valid.shape)).masked_fill_(~valid, -1.0)
        return torch.where(torch.as_tensor(draws), keys.argmax(dim=1), chosen)
