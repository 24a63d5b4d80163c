"""The ``user-residual`` actor head for SB3's DDPG and TD3 (``SB3Config.action_head``).

SB3's MLP actor ends in ``tanh``; on MovieLensRec-v0 its actions sit near the corners of
``[-1, 1]^dim``, and a sign vector cannot point along the observed user vector, the action that
ranks as greedy MF does (the diagnosis DRR's ``user-residual`` head answered). This actor
outputs ``unit(unit(u) + residual_scale * v)``: the user vector ``u`` (the observation's first
``dim`` values) plus the correction ``v`` of SB3's own MLP without its squashing, whose last
layer starts at zero. Only the policy's actor differs from SB3's ``MlpPolicy``: its critics,
the algorithms' updates, their noise and clipping to the action space are SB3's, and the
parameters keep SB3's names, so a saved model loads with ``set_parameters`` as any other.
"""

from __future__ import annotations

from typing import Any

import torch
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import create_mlp
from stable_baselines3.td3.policies import Actor, TD3Policy
from torch import nn

from ..drr.networks import unit


class UserResidualActor(Actor):
    """SB3's TD3 actor with the user-residual head; its actions are unit vectors, inside the
    ``[-1, 1]^dim`` action space, so SB3's clipping of noisy actions keeps their direction
    unless the noise itself leaves the box.

    Args:
        residual_scale: the correction's weight (see ``SB3Config.residual_scale``).
        *args, **kwargs: SB3's :class:`~stable_baselines3.td3.policies.Actor` arguments.
    """

    def __init__(self, *args: Any, residual_scale: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.residual_scale = residual_scale
        self.dim = get_action_dim(self.action_space)
        layers = create_mlp(
            self.features_dim, self.dim, self.net_arch, self.activation_fn, squash_output=False
        )
        last = layers[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.mu = nn.Sequential(*layers)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "residual_scale": self.residual_scale}

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions (batch, dim), unit vectors."""
        features = self.extract_features(obs, self.features_extractor)
        user = features[:, : self.dim]
        return unit(unit(user) + self.residual_scale * self.mu(features))


class UserResidualPolicy(TD3Policy):
    """SB3's ``MlpPolicy`` of DDPG and TD3 with :class:`UserResidualActor` as its actor (and
    target actor); it reads the flat observation, whose first values are the user vector."""

    def __init__(self, *args: Any, residual_scale: float = 0.02, **kwargs: Any) -> None:
        self.residual_scale = residual_scale  # read by make_actor, which the base calls
        super().__init__(*args, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "residual_scale": self.residual_scale}

    def make_actor(self, features_extractor: Any = None) -> UserResidualActor:
        """The residual actor, built as SB3 builds its own."""
        kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return UserResidualActor(**kwargs, residual_scale=self.residual_scale).to(self.device)
