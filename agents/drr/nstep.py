"""n-step transitions: each sub-env's last steps, folded into transitions that span ``n`` of them.

A transition of ``m`` steps (``m = n``, or fewer where the episode ended first) keeps its
first state and action, its first reward ``r_t``, the discounted rewards after it
(``later = r_{t+1} + gamma r_{t+2} + ... + gamma^(m-2) r_{t+m-1}``), the state ``m`` steps on
and whether the episode terminated there. The bootstrap target is then
``r_t + gamma * (later + gamma^(m-1) * Q'(s_{t+m}, a'))``: with ``m = 1`` the one-step target.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from movielens_env.errors import ArgumentError


class Transitions(NamedTuple):
    """n-step transitions ready for the replay (leading axis = transitions)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    dones: np.ndarray
    next_shown: np.ndarray | None
    later: np.ndarray
    steps: np.ndarray


class NStepWindows:
    """Per sub-env, the steps of its episode not yet folded into a transition (at most ``n - 1``
    between calls of :meth:`push`)."""

    def __init__(self, n: int, gamma: float, num_envs: int, obs_dim: int, action_dim: int):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ArgumentError(f"n-step windows need n >= 1 steps, got {n!r}")
        self.n, self.gamma = n, gamma
        self.observations = np.zeros((num_envs, n, obs_dim), dtype=np.float32)
        self.actions = np.zeros((num_envs, n, action_dim), dtype=np.float32)
        self.rewards = np.zeros((num_envs, n), dtype=np.float64)
        self.count = np.zeros(num_envs, dtype=np.int64)

    def push(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        ended: np.ndarray,
        next_shown: np.ndarray | None = None,
    ) -> Transitions:
        """Add one step of every sub-env; return the transitions it completes: the oldest
        step of each full window (``n`` steps), and every step of the windows whose episode
        ended now (``ended``: rows that terminated or were truncated; ``next_obs`` holds their
        final states, ``next_shown`` the items recommended up to ``next_obs``)."""
        rows = np.arange(len(rewards))
        slot = self.count.copy()
        self.observations[rows, slot] = obs
        self.actions[rows, slot] = actions
        self.rewards[rows, slot] = rewards
        self.count += 1
        done = np.zeros(len(rewards), dtype=bool)
        done[ended] = True
        starts: list[tuple[int, int]] = []  # (row, first step in its window)
        for row in range(len(rewards)):
            if done[row]:
                starts += [(row, first) for first in range(self.count[row])]
            elif self.count[row] == self.n:
                starts.append((row, 0))
        out = self._fold(starts, next_obs, terminated, next_shown)
        for row in range(len(rewards)):
            if done[row]:
                self.count[row] = 0
            elif self.count[row] == self.n:  # its oldest step is folded: the window moves on
                self.observations[row, :-1] = self.observations[row, 1:]
                self.actions[row, :-1] = self.actions[row, 1:]
                self.rewards[row, :-1] = self.rewards[row, 1:]
                self.count[row] -= 1
        return out

    def _fold(self, starts, next_obs, terminated, next_shown) -> Transitions:
        picked = np.array(starts, dtype=np.int64).reshape(-1, 2)
        rows, firsts = picked[:, 0], picked[:, 1]
        later = np.zeros(len(picked))
        for i, (row, first) in enumerate(starts):
            following = self.rewards[row, first + 1 : self.count[row]]
            later[i] = float(np.sum(following * self.gamma ** np.arange(len(following))))
        return Transitions(
            self.observations[rows, firsts].copy(), self.actions[rows, firsts].copy(),
            self.rewards[rows, firsts].astype(np.float32), next_obs[rows],
            terminated[rows].astype(np.float32),
            None if next_shown is None else next_shown[rows],
            later.astype(np.float32), self.count[rows] - firsts,
        )  # fmt: skip

    def state_dict(self) -> dict[str, np.ndarray]:
        """The pending steps, for an exact resume."""
        return {
            "observations": self.observations.copy(), "actions": self.actions.copy(),
            "rewards": self.rewards.copy(), "count": self.count.copy(),
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict`'s content, checking the shapes."""
        for name in ("observations", "actions", "rewards", "count"):
            array = np.asarray(state[name])
            if array.shape != getattr(self, name).shape:
                raise ArgumentError(
                    f"n-step windows' {name} has shape {array.shape}, expected "
                    f"{getattr(self, name).shape}"
                )
            getattr(self, name)[...] = array
