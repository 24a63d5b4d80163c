"""Choosing among refinement's candidates two steps deep, on a learned observation model."""

from __future__ import annotations

import numpy as np
import torch

from .model import ObservationModel
from .networks import Actor, Critic
from .refine import ItemRefiner, Scored

_ROWS = 64  # observations looked ahead at once: each holds k * k critic evaluations


class Lookahead:
    """Values each of the refinement's ``k`` candidates ``i`` in observation ``s`` by

    ``r(s, i) + d * max_j (r(s'_i, j) + gamma * F(s'_i, j))``

    with ``r`` the reward ``model`` predicts, ``s'_i`` the observation it predicts after ``i``,
    ``F`` the split critic's future head (``gamma`` its discount) and ``j`` among the ``k``
    candidates of the actor's action in ``s'_i``, outside the items recommended so far and
    ``i``: one step of planning on a learned model before the critic's estimate takes over.
    A candidate's effect on what the user will like next (satiation, drift) then reaches the
    choice through the model, fit by regression, rather than only through the bootstrapped
    future head, which ranks the candidates nearly as their one-step reward does
    (``benchmarks/results/refine-choice/two-step/``).

    Args:
        refiner: the agent's refinement (its candidates and catalogue).
        model: the fitted observation model.
        discount: ``d``, the expansion's weight on the next step.
        proposed: how many of the ``k`` candidates, at both steps, are the items the model's
            reward ranks highest in the whole catalogue (``DRRConfig.model_candidates``); the
            actor proposes the rest.
    """

    def __init__(
        self, refiner: ItemRefiner, model: ObservationModel, discount: float, proposed: int = 0
    ) -> None:
        self.refiner, self.model, self.discount = refiner, model, discount
        self.proposed = proposed

    def _scored(self, observations, protos, critic, shown) -> Scored:
        """The refiner's candidates, the model's ``proposed`` first, valued by ``critic``."""
        proposals = self.model.catalogue_rewards(observations) if self.proposed else None
        return self.refiner.scored(
            observations, protos, critic, shown, picks=True, proposals=proposals,
            proposed=self.proposed,
        )  # fmt: skip

    def values(
        self, observations: torch.Tensor, protos: torch.Tensor, actor: Actor, critic: Critic,
        shown: torch.Tensor | None = None,
    ) -> Scored:  # fmt: skip
        """Each row's candidates (as :meth:`ItemRefiner.scored`) with their two-step values
        (``-inf`` where fewer than ``k`` items were left)."""
        parts = [
            self._values(observations[rows], protos[rows], actor, critic,
                         None if shown is None else shown[rows])
            for rows in torch.arange(len(observations)).split(_ROWS)
        ]  # fmt: skip
        return Scored(*(torch.cat(part) for part in zip(*parts, strict=True)))

    def _values(self, observations, protos, actor, critic, shown) -> Scored:
        k, model = self.refiner.k, self.model

        def reward(obs, actions, items, repeats=1):
            return model.reward(obs, items, repeats)

        def value(obs, actions, items, repeats=1):
            _, future = critic.heads(obs, actions, items, repeats)
            assert future is not None and critic.split_gamma is not None  # DRRConfig's check
            return model.reward(obs, items, repeats) + critic.split_gamma * future

        with torch.no_grad():
            first = self._scored(observations, protos, reward, shown)
            assert first.items is not None
            items = first.items.reshape(-1)
            valid = first.values > -torch.inf
            rewards = torch.where(valid, first.values, 0.0).reshape(-1)
            repeated = observations.repeat_interleave(k, dim=0)
            after = model.predict(repeated, items, rewards)
            seen = self.refiner.catalogue.mask_of(items[:, None])
            if shown is not None:
                seen |= shown.repeat_interleave(k, dim=0)
            second = self._scored(after, actor(after), value, seen)
            best = second.values.max(dim=1).values
            best = torch.where(torch.isfinite(best), best, 0.0)  # nothing left: the end
            values = rewards + self.discount * best
            values = values.reshape(-1, k).masked_fill_(~valid, -torch.inf)
            return Scored(first.candidates, values, first.items)

    def choose(
        self, observations: torch.Tensor, protos: torch.Tensor, actor: Actor, critic: Critic,
        shown: torch.Tensor | None = None, explore: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """``(batch, dim)`` the played actions: as :meth:`ItemRefiner.choose`, each row's
        candidate of highest two-step value."""
        scored = self.values(observations, protos, actor, critic, shown)
        chosen = scored.values.argmax(dim=1)
        if explore > 0.0:
            chosen = self.refiner.explore(chosen, scored.values > -torch.inf, explore, rng)
        return self.refiner.play(scored, protos, chosen)
