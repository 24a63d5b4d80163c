"""The hyper-parameters of the Stable-Baselines3 agents (importing it loads no SB3 or torch)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SB3Config:
    """Hyper-parameters shared by the SB3 baselines.

    Attributes:
        learning_rate: Adam step size of actor and critic (1e-4 to 1e-3).
        buffer_size: replay capacity in transitions.
        learning_starts: random-action steps before the first update (a few hundred to 10k).
        batch_size: transitions per gradient step (64 to 256).
        tau: soft target-update rate (0.001 to 0.01).
        gamma: discount; episodes are 10 steps, as in the DRR paper (0.9).
        train_freq: environment steps between updates.
        gradient_steps: updates per ``train_freq`` steps.
        net_arch: hidden layers of actor and critic.
        action_noise: std of the Gaussian exploration noise of DDPG and TD3 (0.05 to 0.3);
            SAC explores through its entropy bonus instead.
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
