"""The env's item vectors as an agent sees them: which items an observation's history holds,
and which item an action makes the env recommend."""

from __future__ import annotations

import numpy as np
import torch

from .networks import split_observation, unit

_ROWS = 1024  # item rows per block when scoring the catalogue against itself


class ItemCatalogue:
    """The ``(n_items, dim)`` item vectors of an env (``env.unwrapped.vectors.items``).

    The flat observation holds the history's vectors, not their ids: they are found by value,
    through one random projection of every vector (a sorted key per item) and an exact
    comparison of the vectors whose keys match.

    The catalogue is read-only: copies (``copy.deepcopy`` of a critic that reads it, for its
    target) share it.

    Args:
        items: the env's item vectors.
        history_len: items in the observed history.
    """

    def __init__(self, items: np.ndarray, history_len: int) -> None:
        items = np.ascontiguousarray(items, dtype=np.float32)
        self.items = torch.from_numpy(items)
        self.n_items, self.dim = items.shape
        self.history_len = history_len
        probe = np.random.default_rng(0).standard_normal(self.dim)
        self._probe = torch.from_numpy(probe)
        keys = torch.from_numpy(items.astype(np.float64) @ probe)
        self._keys, self._order = keys.sort()
        self.playable = unit(self.items)  # the same ranking as the raw vector, inside the box
        self._rivalled: torch.Tensor | None = None

    def __deepcopy__(self, memo: dict) -> ItemCatalogue:
        return self

    def history_mask(self, observations: torch.Tensor) -> torch.Tensor:
        """``(batch, n_items)``: True for the items in each observation's history."""
        _, history, _ = split_observation(observations, self.dim, self.history_len)
        vectors = history.reshape(-1, self.dim)
        keys = vectors.double() @ self._probe
        right = torch.searchsorted(self._keys, keys).clamp(max=self.n_items - 1)
        left = (right - 1).clamp(min=0)
        nearer = (self._keys[left] - keys).abs() < (self._keys[right] - keys).abs()
        index = self._order[torch.where(nearer, left, right)]
        found = (self.items[index] == vectors).all(dim=1)
        rows = torch.arange(len(observations)).repeat_interleave(self.history_len)
        mask = torch.zeros((len(observations), self.n_items), dtype=torch.bool)
        mask[rows[found], index[found]] = True
        return mask

    def recommended(
        self, observations: torch.Tensor, actions: torch.Tensor,
        shown: torch.Tensor | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """``(batch,)`` the item each action scores highest outside its observation's history
        and the items ``shown`` ``(batch, n_items)`` marks: the env's recommendation, where
        ``shown`` holds the items recommended earlier in the episode (the env skips them, the
        observation does not show them)."""
        mask = self.history_mask(observations)
        if shown is not None:
            mask |= shown
        scores = actions @ self.items.T
        scores.masked_fill_(mask, -torch.inf)
        return scores.argmax(dim=1)

    def mask_of(self, ids: torch.Tensor) -> torch.Tensor:
        """``(batch, n_items)``: True for the items ``ids`` ``(batch, width)`` lists in each
        row (``-1`` pads a row)."""
        mask = torch.zeros((len(ids), self.n_items), dtype=torch.bool)
        rows, columns = (ids >= 0).nonzero(as_tuple=True)
        mask[rows, ids[rows, columns]] = True
        return mask

    def rivalled(self) -> torch.Tensor:
        """``(n_items,)`` True for the items whose own unit vector scores some other item at
        least as high as themselves, up to a margin far above float32 rounding: the only ones
        whose vector may make the env recommend another item. Computed once, when first
        asked for."""
        if self._rivalled is None:
            margin = 1e-4 * float(self.items.norm(dim=1).max())
            rivalled = torch.zeros(self.n_items, dtype=torch.bool)
            for start in range(0, self.n_items, _ROWS):
                rows = torch.arange(start, min(start + _ROWS, self.n_items))
                scores = self.playable[rows] @ self.items.T
                own = scores[torch.arange(len(rows)), rows]
                rivalled[rows] = (scores >= (own - margin)[:, None]).sum(dim=1) > 1
            self._rivalled = rivalled
        return self._rivalled

    def recommended_for_items(self, items: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(batch, k)`` what :meth:`recommended` gives for the unit vectors of ``items``
        ``(batch, k)``, outside the items ``mask`` ``(batch, n_items)`` marks (each row's
        history, from :meth:`history_mask`, and those shown): an item outside the mask whose
        vector has no rival is its own recommendation, so the catalogue is scored only for the
        others."""
        picks = items.clone()
        rows, cols = (self.rivalled()[items] | mask.gather(1, items)).nonzero(as_tuple=True)
        if len(rows):
            scores = self.playable[items[rows, cols]] @ self.items.T
            scores.masked_fill_(mask[rows], -torch.inf)
            picks[rows, cols] = scores.argmax(dim=1)
        return picks


class RecommendedItem:
    """A critic input: what the item an action makes the env recommend is to the observed user.

    For item ``i`` recommended to user vector ``u`` with per-genre satiation ``s``: ``u * v_i``,
    whose sum is MF's score of the item less the user's own terms (the global mean and user
    bias), so the items' order by MF's score (the action's direction loses the item vector's
    length, which is part of the score), then ``s * w_i`` with ``w_i`` the item's genre weights
    (``1 / |G(i)|`` for each of its genres), whose sum is the mean satiation over its genres:
    what ``boredom`` takes off the rating, per unit of satiation strength. Without ``boredom``
    the second part is empty.

    With ``item_features``, then the item's own vector ``v_i`` and genre weights ``w_i``: where
    recommending it moves the user's state (``drift`` pulls the tastes toward ``q_i``,
    ``boredom`` adds ``w_i`` to the satiation), which the next state's value depends on and
    the products above hide (a zero satiation zeroes ``s * w_i``).

    The genres are the dataset's own (GroupLens' ``u.item`` / ``movies.dat``), in the order of
    the observation's satiation (sorted by name): ``env.unwrapped.user_model.weights``.

    Args:
        catalogue: the env's items.
        weights: ``(n_items, n_genres)`` the items' genre weights (``n_genres`` may be 0).
        item_features: also read the item's own vector and genre weights.
    """

    def __init__(
        self, catalogue: ItemCatalogue, weights: np.ndarray, item_features: bool = False
    ) -> None:
        self.catalogue, self.item_features = catalogue, item_features
        self.weights = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32))
        self.width = (catalogue.dim + self.weights.shape[1]) * (2 if item_features else 1)
        self._start = (catalogue.history_len + 1) * catalogue.dim  # the satiation's slice

    def __call__(
        self, observations: torch.Tensor, actions: torch.Tensor,
        items: torch.Tensor | None = None, repeats: int = 1,
    ) -> torch.Tensor:  # fmt: skip
        """``(batch, width)`` for a batch of observations and actions; ``items``, where the
        caller knows them, are the ``(batch,)`` items the actions recommend; with ``repeats``
        > 1, each observation stands for that many consecutive actions."""
        with torch.no_grad():
            if items is None:
                if repeats > 1:
                    observations = observations.repeat_interleave(repeats, 0)
                    repeats = 1
                items = self.catalogue.recommended(observations, actions)
            user = observations[:, : self.catalogue.dim]
            end = self._start + self.weights.shape[1]
            satiation = observations[:, self._start : end]
            if repeats > 1:
                user = user.repeat_interleave(repeats, 0)
                satiation = satiation.repeat_interleave(repeats, 0)
            vectors, genres = self.catalogue.items[items], self.weights[items]
            parts = [user * vectors, satiation * genres]
            if self.item_features:
                parts += [vectors, genres]
            return torch.cat(parts, dim=1)
