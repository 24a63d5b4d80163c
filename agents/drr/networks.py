"""DRR's actor and critic, each with its own state representation module."""

from __future__ import annotations

from typing import Protocol

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


def unit(vectors: torch.Tensor) -> torch.Tensor:
    """Each row scaled to Euclidean norm 1 (a zero row stays zero)."""
    return vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-8)


class Actor(nn.Module):
    """State -> action, the item-vector direction to recommend (only its direction counts).

    The state is the representation module's output, followed by the observation's context
    (``context`` values: satiation and patience under the user models that have them). The
    head (``head``) turns the network's output ``v`` into the action:

    - ``tanh``: ``tanh(v)`` in ``[-1, 1]^dim`` (the paper's);
    - ``unit``: ``v / |v|``, a direction that cannot saturate;
    - ``user-residual``: ``unit(unit(u) + v)``, the observed user vector ``u`` plus a learned
      correction; ``v``'s last layer starts at zero, so the untrained actor ranks as MF does.
    """

    def __init__(
        self, kind: str, dim: int, history_len: int, hidden: int, context: int,
        head: str = "tanh",
    ) -> None:  # fmt: skip
        super().__init__()
        self.dim, self.history_len, self.head = dim, history_len, head
        self.state = StateRepresentation(kind, dim, history_len)
        self.body = _mlp(self.state.out_dim + context, hidden, dim)
        if head == "user-residual":
            last = self.body[-1]
            assert isinstance(last, nn.Linear)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions (batch, dim)."""
        user, history, context = split_observation(obs, self.dim, self.history_len)
        out = self.body(torch.cat([self.state(user, history), context], dim=1))
        if self.head == "tanh":
            return torch.tanh(out)
        if self.head == "unit":
            return unit(out)
        return unit(unit(user) + out)


class ActionFeatures(Protocol):
    """Features of a batch of (observation, action) pairs a critic reads besides them
    (``agents.drr.catalogue.RecommendedItem``); no gradient flows through them. ``items``,
    where the caller knows them, are the items the actions make the env recommend; with
    ``repeats`` > 1 each observation stands for that many consecutive actions."""

    width: int

    def __call__(
        self, obs: torch.Tensor, action: torch.Tensor, items: torch.Tensor | None = None,
        repeats: int = 1, /,
    ) -> torch.Tensor: ...  # fmt: skip


class Critic(nn.Module):
    """(state, action) -> Q value.

    With ``user_product``, the critic also reads the action's elementwise product with the
    observed user vector (its sum is the MF score of the action's direction); with
    ``features``, what they compute of the observation and action.

    With ``split_gamma``, the value is ``Q = r(s, a) + split_gamma * F(s, a)``, two heads on the
    same input: ``r`` the step's reward, ``F`` the value of the state it leads to
    (:meth:`heads`; the agent fits ``r`` to the observed rewards and ``F`` to the next state's
    bootstrapped value). Without it, one head is ``Q`` (the paper's).

    With ``wide``, the first head also adds a linear function of its input (Wide & Deep, Cheng
    et al. 2016): the reward is nearly linear in the recommended-item features (their sums are
    the MF score and the satiation penalty), which a linear part fits from few noisy rewards
    where the MLP alone needs many.
    """

    def __init__(
        self, kind: str, dim: int, history_len: int, hidden: int, context: int,
        user_product: bool = False, features: ActionFeatures | None = None,
        split_gamma: float | None = None, wide: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.dim, self.history_len, self.user_product = dim, history_len, user_product
        self.features, self.split_gamma = features, split_gamma
        self.state = StateRepresentation(kind, dim, history_len)
        actions = (2 * dim if user_product else dim) + (features.width if features else 0)
        inputs = self.state.out_dim + context + actions
        self.body = _mlp(inputs, hidden, 1)
        self.wide = nn.Linear(inputs, 1) if wide else None
        self.future = None
        if split_gamma is not None:
            self.future = _mlp(inputs, hidden, 1)

    def heads(
        self, obs: torch.Tensor, action: torch.Tensor, items: torch.Tensor | None = None,
        repeats: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:  # fmt: skip
        """``(batch,)`` the first head's values (``Q``, or the reward ``r`` with
        ``split_gamma``) and the future head's ``F`` (``None`` without ``split_gamma``).
        With ``repeats`` > 1, ``obs`` holds one observation per ``repeats`` consecutive
        actions (refinement's candidates): its state is computed once, not once per action."""
        user, history, context = split_observation(obs, self.dim, self.history_len)
        state = torch.cat([self.state(user, history), context], dim=1)
        if repeats > 1:
            state, user = state.repeat_interleave(repeats, 0), user.repeat_interleave(repeats, 0)
        parts = [state, action]
        if self.user_product:
            parts.append(user * action)
        if self.features is not None:
            parts.append(self.features(obs, action, items, repeats))
        inputs = torch.cat(parts, dim=1)
        future = None if self.future is None else self.future(inputs).squeeze(1)
        first = self.body(inputs)
        if self.wide is not None:
            first = first + self.wide(inputs)
        return first.squeeze(1), future

    def forward(
        self, obs: torch.Tensor, action: torch.Tensor, items: torch.Tensor | None = None,
        repeats: int = 1,
    ) -> torch.Tensor:  # fmt: skip
        """Q values (batch,); ``items``, where the caller knows them, are the ``(batch,)``
        items the actions make the env recommend (read by ``features`` only); ``repeats`` as
        in :meth:`heads`."""
        return self.value(*self.heads(obs, action, items, repeats))

    def value(self, first: torch.Tensor, future: torch.Tensor | None) -> torch.Tensor:
        """``Q`` from :meth:`heads`' output: the first head, or ``r + split_gamma * F``."""
        if future is None:
            return first
        assert self.split_gamma is not None
        return first + self.split_gamma * future
