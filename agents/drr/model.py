"""A learned one-step model of MovieLensRec-v0's flat observation, for looking ahead.

Where the user has a state (``boredom``, ``drift``), recommending an item changes what the
next items are worth, and the one-step value a critic learns from noisy bootstrapped targets
ranks items nearly by their reward alone (``benchmarks/results/refine-choice/two-step/``).
Planning on a model of the next observation (model-based RL: Dyna, Sutton 1990; value
expansion, Feinberg et al. 2018) gets that effect from a model fit by plain regression.

Each part of the observation is modelled on its own, linearly, from the agent's transitions:
the user vector (drift moves it toward the recommended item's vector), the context after the
vectors (satiation gains the item's genre weights and decays; patience moves with the
rating), and the history, which takes the item (first in, first out) when the user liked it:
when its reward reaches a threshold fit to the transitions. So is the reward: linear in the
item's MF score for the observed user (the user vector times the item's, the action space's
own inner product) and in its satiation penalty (the observed satiation times the item's genre
weights), the two sums the critic's ``recommended-item`` input is made of: three weights,
where the critic's reward head fits thousands to the same noisy rewards.
"""

from __future__ import annotations

import numpy as np
import torch

from .networks import split_observation

_RIDGE = 1e-6  # keeps the least squares well posed before every direction has been seen


def _least_squares(inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``W`` minimising ``|inputs W - targets|^2 + ridge |W|^2`` (float64)."""
    gram = inputs.T @ inputs
    gram[np.diag_indices_from(gram)] += _RIDGE * max(1.0, float(np.trace(gram)) / len(gram))
    return np.linalg.solve(gram, inputs.T @ targets)


def _threshold(rewards: np.ndarray, entered: np.ndarray) -> float:
    """The reward that best separates the transitions whose history took the item
    (``entered``) from the others: fewest misclassified, just above the highest reward said
    not to enter (liking is "rated at least", and a rating exactly at the bound, such as a
    logged 4 stars, may be missing from the transitions while those just above it are not)."""
    order = np.argsort(rewards, kind="stable")
    ranked, took = rewards[order], entered[order]
    # Errors when the first c transitions (by reward) are said not to enter: c = 0 .. n.
    errors = np.concatenate([[0], np.cumsum(took)]) + (
        (~took).sum() - np.concatenate([[0], np.cumsum(~took)])
    )
    cut = int(np.argmin(errors))
    if cut == 0:
        return -np.inf
    if cut == len(ranked):
        return np.inf
    return float(np.nextafter(ranked[cut - 1], np.inf))


class ObservationModel:
    """Predicts the flat observation after an item is recommended in an observation.

    - user vector ``u' = [u, v_i, 1] W_user``;
    - context ``c' = [c, g_i, r, 1] W_context`` (``g_i`` the item's genre weights, ``r`` its
      reward);
    - history: ``v_i`` appended (the oldest dropped) when ``r`` is at least ``threshold``;
    - reward ``r = [u . v_i, s . g_i, 1] w`` (``s`` the satiation, the context's first
      ``n_genres`` values).

    Args:
        items: ``(n_items, dim)`` the env's item vectors, as the observation shows them.
        genres: ``(n_items, n_genres)`` the items' genre weights (no columns without boredom).
        history_len: items in the observed history.
        context: values after the history in the flat observation.
    """

    def __init__(
        self, items: torch.Tensor, genres: torch.Tensor, history_len: int, context: int
    ) -> None:
        self.items, self.genres = items, genres
        self.dim, self.history_len, self.context = items.shape[1], history_len, context
        self.user_weights = torch.zeros((2 * self.dim + 1, self.dim))
        self.context_weights = torch.zeros((context + genres.shape[1] + 2, context))
        self.reward_weights = torch.zeros(3)
        self.threshold = float("inf")
        self.fits = 0

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` has run (before, :meth:`predict` is refused)."""
        return self.fits > 0

    def _context_inputs(self, context, picks, rewards):
        ones = torch.ones_like(rewards)[:, None]
        return torch.cat([context, self.genres[picks], rewards[:, None], ones], dim=1)

    def _reward_inputs(self, observations: torch.Tensor, picks: torch.Tensor, repeats: int = 1):
        user, _, context = split_observation(observations, self.dim, self.history_len)
        satiation = context[:, : self.genres.shape[1]]
        if repeats > 1:
            user = user.repeat_interleave(repeats, 0)
            satiation = satiation.repeat_interleave(repeats, 0)
        vectors, genres = self.items[picks].to(user.dtype), self.genres[picks].to(user.dtype)
        score = (user * vectors).sum(dim=1, keepdim=True)
        penalty = (satiation * genres).sum(dim=1, keepdim=True)
        return torch.cat([score, penalty, torch.ones_like(score)], dim=1)

    def reward(
        self, observations: torch.Tensor, picks: torch.Tensor, repeats: int = 1
    ) -> torch.Tensor:
        """``(batch * repeats,)`` the predicted rewards of recommending ``picks``
        ``(batch * repeats,)`` in ``observations`` ``(batch, obs_dim)``, each observation
        standing for ``repeats`` consecutive picks."""
        if not self.fitted:
            raise RuntimeError("ObservationModel.reward: fit the model first")
        return self._reward_inputs(observations, picks, repeats) @ self.reward_weights

    def catalogue_rewards(self, observations: torch.Tensor) -> torch.Tensor:
        """``(batch, n_items)`` the predicted reward of recommending each item of the catalogue
        in ``observations`` ``(batch, obs_dim)``: :meth:`reward` for every item at once."""
        if not self.fitted:
            raise RuntimeError("ObservationModel.catalogue_rewards: fit the model first")
        user, _, context = split_observation(observations, self.dim, self.history_len)
        satiation = context[:, : self.genres.shape[1]]
        w = self.reward_weights.to(user.dtype)
        score = user @ self.items.T.to(user.dtype)
        penalty = satiation @ self.genres.T.to(user.dtype)
        return w[0] * score + w[1] * penalty + w[2]

    def fit(
        self, observations: np.ndarray, picks: np.ndarray, rewards: np.ndarray,
        next_observations: np.ndarray,
    ) -> None:  # fmt: skip
        """Fit every part to transitions: ``(n, obs_dim)`` observations, the ``(n,)`` items
        recommended in them, their rewards and the next observations."""
        obs, nxt = torch.as_tensor(observations), torch.as_tensor(next_observations)
        user, _, context = split_observation(obs.double(), self.dim, self.history_len)
        next_user, next_history, next_context = split_observation(
            nxt.double(), self.dim, self.history_len
        )
        index = torch.as_tensor(picks)
        vectors = self.items[index].double()
        ones = torch.ones((len(obs), 1), dtype=torch.float64)
        user_inputs = torch.cat([user, vectors, ones], dim=1).numpy()
        self.user_weights = torch.from_numpy(
            _least_squares(user_inputs, next_user.numpy()).astype(np.float32)
        )
        r = torch.as_tensor(rewards, dtype=torch.float64)
        context_inputs = self._context_inputs(context, index, r).double().numpy()
        self.context_weights = torch.from_numpy(
            _least_squares(context_inputs, next_context.numpy()).astype(np.float32)
        )
        reward_inputs = self._reward_inputs(obs.double(), index).numpy()
        self.reward_weights = torch.from_numpy(
            _least_squares(reward_inputs, r.numpy()[:, None])[:, 0].astype(np.float32)
        )
        entered = (next_history[:, -1] == vectors).all(dim=1).numpy()
        self.threshold = _threshold(np.asarray(rewards, dtype=np.float64), entered)
        self.fits += 1

    def predict(
        self, observations: torch.Tensor, picks: torch.Tensor, rewards: torch.Tensor
    ) -> torch.Tensor:
        """``(batch, obs_dim)`` the next observations after recommending ``picks``
        ``(batch,)`` in ``observations``, rewarded ``rewards`` ``(batch,)``."""
        if not self.fitted:
            raise RuntimeError("ObservationModel.predict: fit the model first")
        user, history, context = split_observation(observations, self.dim, self.history_len)
        vectors = self.items[picks]
        ones = torch.ones((len(observations), 1), dtype=observations.dtype)
        next_user = torch.cat([user, vectors, ones], dim=1) @ self.user_weights
        next_context = self._context_inputs(context, picks, rewards) @ self.context_weights
        shifted = torch.cat([history[:, 1:], vectors[:, None]], dim=1)
        enters = (rewards >= self.threshold)[:, None, None]
        next_history = torch.where(enters, shifted, history)
        return torch.cat([next_user, next_history.flatten(1), next_context], dim=1)

    def state_dict(self) -> dict:
        """The fitted parameters (a checkpoint's part)."""
        return {
            "user_weights": self.user_weights, "context_weights": self.context_weights,
            "reward_weights": self.reward_weights, "threshold": self.threshold,
            "fits": self.fits,
        }  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s content."""
        self.user_weights = torch.as_tensor(state["user_weights"]).clone()
        self.context_weights = torch.as_tensor(state["context_weights"]).clone()
        self.reward_weights = torch.as_tensor(state["reward_weights"]).clone()
        self.threshold, self.fits = float(state["threshold"]), int(state["fits"])
