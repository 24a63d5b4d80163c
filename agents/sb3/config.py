"""The hyper-parameters of the Stable-Baselines3 agents (importing it loads no SB3 or torch)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..config_values import values_from_dict
from ..fields import (
    Bound,
    ConfigError,
    TupleBound,
    check_choice,
    check_fields,
    check_training_cost,
)

_BIG = 1_000_000_000
# Hard limits, wider than the typical ranges in the docstring, as DRRConfig's: beyond them a
# value is a slip. buffer_size is also checked against the memory left once the observation's
# length is known (agents.sb3.train).
BOUNDS: dict[str, Bound | TupleBound] = {
    "learning_rate": Bound(float, 0.0, 1.0, low_open=True),
    "buffer_size": Bound(int, 1, 10_000_000),
    "learning_starts": Bound(int, 0, _BIG),
    "batch_size": Bound(int, 1, 65_536),
    "tau": Bound(float, 0.0, 1.0, low_open=True),
    "gamma": Bound(float, 0.0, 1.0, high_open=True),
    "train_freq": Bound(int, 1, 1_000_000),
    "gradient_steps": Bound(int, 1, 1024),
    "net_arch": TupleBound(Bound(int, 1, 8192), 1, 16),
    "action_noise": Bound(float, 0.0, 10.0),
    "residual_scale": Bound(float, 0.0, 10.0, low_open=True),
}

# How the actor's output becomes the action (ddpg and td3; SAC's squashed Gaussian is its own).
ACTION_HEADS = ("tanh", "user-residual")
# Fields that act only with the user-residual head: left out of the config's JSON (and so of
# a benchmark's keys, which results stored before the head existed share) under SB3's own head.
_RESIDUAL_FIELDS = ("action_head", "residual_scale")


@dataclass(frozen=True)
class SB3Config:
    """Hyper-parameters shared by the SB3 baselines; every field is checked for type and range.

    Attributes:
        learning_rate: Adam step size of actor and critic (1e-4 to 1e-3).
        buffer_size: replay capacity in transitions.
        learning_starts: random-action steps before the first update (a few hundred to 10k).
        batch_size: transitions per gradient step (64 to 256).
        tau: soft target-update rate (0.001 to 0.01).
        gamma: discount; episodes are 10 steps, as in the DRR paper (0.9).
        train_freq: environment steps between updates.
        gradient_steps: updates per ``train_freq`` steps.
        net_arch: hidden layers of actor and critic (a list is read as the tuple).
        action_noise: std of the Gaussian exploration noise of DDPG and TD3 (0.05 to 0.3;
            with the ``user-residual`` head, whose actions are unit vectors, 0.01 to 0.1);
            SAC explores through its entropy bonus instead.
        action_head: the actor's output (ddpg and td3): ``tanh``, SB3's own MLP policy, whose
            last layer is squashed into ``[-1, 1]^dim``; ``user-residual``, the observed user
            vector ``u`` plus a learned correction ``v``, as a unit vector
            (``unit(unit(u) + residual_scale * v)``, ``v``'s last layer starting at zero), so
            that the untrained actor ranks as MF does (DRR's default head, see its config).
        residual_scale: the correction's weight (``user-residual`` only). Adam's step is about
            ``learning_rate`` whatever the gradient's scale, so this sets how far one actor
            step moves the action: 0.02 makes it 50 times smaller than the critic's.
    """

    learning_rate: float = 1e-3
    buffer_size: int = 100_000
    learning_starts: int = 500
    batch_size: int = 128
    tau: float = 0.005
    gamma: float = 0.9
    train_freq: int = 1
    gradient_steps: int = 1
    net_arch: tuple[int, ...] = (256, 256)
    action_noise: float = 0.1
    action_head: str = "tanh"
    residual_scale: float = 0.02

    def __post_init__(self) -> None:
        if isinstance(self.net_arch, list):  # as JSON and Python callers write it
            object.__setattr__(self, "net_arch", tuple(self.net_arch))
        check_choice(self, "action_head", ACTION_HEADS)
        check_fields(self, BOUNDS)
        if self.action_head == "tanh" and self.residual_scale != SB3Config.residual_scale:
            raise ConfigError(
                f"{type(self).__name__}.residual_scale={self.residual_scale} is for "
                "action_head='user-residual'; the tanh head would ignore it"
            )
        check_training_cost(
            "SB3Config", "net_arch or gradient_steps", self.batch_size, self.net_arch, 0,
            self.gradient_steps,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON values; the user-residual head's fields only where it is chosen
        (what SB3's own head reads is what its configs, and results, always held)."""
        values = {**dataclasses.asdict(self), "net_arch": list(self.net_arch)}
        if self.action_head == "tanh":
            for name in _RESIDUAL_FIELDS:
                del values[name]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SB3Config:
        """Rebuild from :meth:`to_dict`'s content (fields it lacks take their defaults); unknown
        keys are an error naming them."""
        return cls(**values_from_dict(cls, values, cls.__name__))


# SAC's own fields; ``None`` (SB3's "auto") is checked apart, as no bound admits it.
SAC_BOUNDS: dict[str, Bound] = {
    "ent_coef": Bound(float, 0.0, 10.0),
    "target_entropy": Bound(float, -1_000_000.0, 1_000_000.0),
}


@dataclass(frozen=True)
class SACConfig(SB3Config):
    """:class:`SB3Config` and SAC's entropy bonus (the fields SB3's ``SAC`` calls ``ent_coef``
    and ``target_entropy``); ``action_noise`` stays at its default, SAC has no use for it.

    Attributes:
        ent_coef: the entropy bonus's weight, held fixed (0.001 to 0.3); ``None`` (SB3's
            ``"auto"``, the default): learned from 1.0 so that the policy's entropy tracks
            ``target_entropy``.
        target_entropy: the entropy a learned weight aims for; ``None``: minus the action's
            length (SB3's default). Only with ``ent_coef=None``, which alone reads it.
    """

    ent_coef: float | None = None
    target_entropy: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        given = {
            name: bound for name, bound in SAC_BOUNDS.items() if getattr(self, name) is not None
        }
        check_fields(self, given)
        if self.ent_coef is not None and self.target_entropy is not None:
            raise ConfigError(
                f"SACConfig.target_entropy={self.target_entropy} is for a learned entropy weight "
                f"(ent_coef=None); with ent_coef={self.ent_coef} it would be ignored"
            )


def config_class(algorithm: str) -> type[SB3Config]:
    """The config type of an SB3 ``algorithm``: :class:`SACConfig` for sac."""
    return SACConfig if algorithm == "sac" else SB3Config


def check_algorithm_config(algorithm: str, config: SB3Config) -> None:
    """Refuse a config that ``algorithm`` would partly ignore (an ``action_noise`` for sac, which
    explores through its entropy bonus; SAC's entropy fields for ddpg and td3); the trainer
    and ``benchmark --config`` both ask it.

    Raises:
        ConfigError: naming the field, its value and the algorithms it is for.
    """
    if algorithm != "sac" and isinstance(config, SACConfig):
        set_here = [
            f"{name}={getattr(config, name)}"
            for name in SAC_BOUNDS
            if getattr(config, name) is not None
        ]
        if set_here:
            raise ConfigError(
                f"SACConfig.{', '.join(set_here)} is for sac; {algorithm} has no entropy bonus"
            )
    if algorithm == "sac" and config.action_head != "tanh":
        raise ConfigError(
            f"SB3Config.action_head={config.action_head!r} is for ddpg and td3; sac's actor is "
            "a squashed Gaussian of its own"
        )
    if algorithm == "sac" and config.action_noise != SB3Config.action_noise:
        raise ConfigError(
            f"SB3Config.action_noise={config.action_noise} is for ddpg and td3; sac explores "
            "through its entropy bonus and would ignore it"
        )
