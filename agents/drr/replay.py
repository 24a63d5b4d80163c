"""Prioritized experience replay (Schaul et al. 2016) on a vectorised sum tree.

Transitions are sampled with probability proportional to ``(|TD error| + eps) ** alpha`` and
corrected with importance weights ``(N * P(i)) ** -beta``; sampling and updates touch whole
batches at once, with no Python loop over the batch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from movielens_env.errors import ArgumentError


class SumTree:
    """Binary tree whose internal nodes hold the sum of their leaves' priorities."""

    def __init__(self, capacity: int) -> None:
        self.leaves = 1 << max(0, (capacity - 1).bit_length())
        self.nodes = np.zeros(2 * self.leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        """Sum of every priority."""
        return float(self.nodes[1])

    def priorities(self, indices: np.ndarray) -> np.ndarray:
        """Priorities of the given leaves."""
        return self.nodes[self.leaves + indices]

    def update(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set leaf priorities and refresh the sums above them, one tree level at a time."""
        nodes = self.leaves + np.asarray(indices)
        self.nodes[nodes] = priorities
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)

    def find(self, values: np.ndarray) -> np.ndarray:
        """Leaves whose cumulative-priority interval holds each value in [0, total)."""
        nodes = np.ones(len(values), dtype=np.int64)
        values = values.astype(np.float64).copy()
        while nodes[0] < self.leaves:
            left = 2 * nodes
            go_right = values >= self.nodes[left]
            values = np.where(go_right, values - self.nodes[left], values)
            nodes = left + go_right
        return nodes - self.leaves


class ReplayBatch(NamedTuple):
    """A sampled batch; ``weights`` are the normalised importance weights; ``next_shown``
    (where the replay keeps it) the items recommended in each transition's episode up to its
    next state (item indices, -1 padded); ``later`` and ``steps`` (where the replay keeps
    n-step transitions) the discounted rewards after the first, ``r_{t+1} + gamma r_{t+2} +
    ...``, and how many rewards the transition spans (its next state is that many steps on)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    dones: np.ndarray
    weights: np.ndarray
    indices: np.ndarray
    next_shown: np.ndarray | None = None
    later: np.ndarray | None = None
    steps: np.ndarray | None = None


class PrioritizedReplay:
    """A ring buffer of transitions with proportional prioritized sampling.

    With ``shown_width`` > 0 it also keeps, per transition, up to that many items recommended
    in its episode up to its next state (what refinement that remembers skips there). With
    ``multi_step`` it keeps n-step transitions: each also holds its ``later`` rewards and its
    ``steps`` (see :class:`ReplayBatch`).
    """

    def __init__(
        self, capacity: int, obs_dim: int, action_dim: int, alpha: float, eps: float,
        shown_width: int = 0, multi_step: bool = False,
    ) -> None:  # fmt: skip
        self.capacity, self.alpha, self.eps = capacity, alpha, eps
        self.observations = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_observations = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, action_dim), dtype=np.float32)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.dones = np.zeros(capacity, dtype=np.float32)
        self.next_shown = np.full((capacity, shown_width), -1, dtype=np.int64)
        self.multi_step = multi_step
        self.later = np.zeros(capacity if multi_step else 0, dtype=np.float32)
        self.steps = np.ones(capacity if multi_step else 0, dtype=np.int64)
        self.tree = SumTree(capacity)
        self.position, self.size, self.max_priority = 0, 0, 1.0

    def __len__(self) -> int:
        return self.size

    def add(
        self, obs, actions, rewards, next_obs, dones, next_shown=None, later=None, steps=None
    ) -> None:
        """Store a batch of transitions (leading axis = transitions) at the highest priority;
        ``next_shown`` ``(count, shown_width)`` where the replay keeps it, ``later`` and
        ``steps`` ``(count,)`` where it keeps n-step transitions."""
        count = len(rewards)
        if (next_shown is None) != (self.next_shown.shape[1] == 0):
            raise ArgumentError(
                f"this replay keeps {self.next_shown.shape[1]} shown items per transition: "
                "give next_shown exactly when it keeps some"
            )
        if (later is None or steps is None) == self.multi_step:
            raise ArgumentError(
                f"this replay {'keeps' if self.multi_step else 'keeps no'} n-step transitions: "
                "give later and steps exactly when it keeps them"
            )
        if count == 0:  # n-step windows complete none in their first steps
            return
        slots = (self.position + np.arange(count)) % self.capacity
        self.observations[slots] = obs
        self.actions[slots] = actions
        self.rewards[slots] = rewards
        self.next_observations[slots] = next_obs
        self.dones[slots] = dones
        if next_shown is not None:
            self.next_shown[slots] = next_shown
        if self.multi_step:
            self.later[slots], self.steps[slots] = later, steps
        self.tree.update(slots, np.full(count, self.max_priority))
        self.position = int((self.position + count) % self.capacity)
        self.size = min(self.capacity, self.size + count)

    def sample(self, batch_size: int, beta: float, rng: np.random.Generator) -> ReplayBatch:
        """A stratified sample: one draw in each of ``batch_size`` equal slices of the total."""
        if self.size == 0:
            raise ArgumentError("cannot sample from an empty replay buffer")
        segment = self.tree.total / batch_size
        values = (np.arange(batch_size) + rng.random(batch_size)) * segment
        indices = np.minimum(
            self.tree.find(np.minimum(values, np.nextafter(self.tree.total, 0))), self.size - 1
        )
        probabilities = self.tree.priorities(indices) / self.tree.total
        weights = (self.size * probabilities) ** -beta
        return ReplayBatch(
            self.observations[indices], self.actions[indices], self.rewards[indices],
            self.next_observations[indices], self.dones[indices],
            (weights / weights.max()).astype(np.float32), indices,
            self.next_shown[indices] if self.next_shown.shape[1] else None,
            *((self.later[indices], self.steps[indices]) if self.multi_step else ()),
        )  # fmt: skip

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Priorities from the absolute TD errors of the sampled transitions."""
        priorities = (np.abs(td_errors) + self.eps) ** self.alpha
        self.tree.update(indices, priorities)
        self.max_priority = max(self.max_priority, float(priorities.max()))

    def state_dict(self) -> dict:
        """Filled contents and counters, as arrays and numbers (for ``weights_only`` loading)."""
        filled = slice(0, self.size)
        return {
            "observations": self.observations[filled], "actions": self.actions[filled],
            "rewards": self.rewards[filled], "next_observations": self.next_observations[filled],
            "dones": self.dones[filled], "tree": self.tree.nodes, "position": self.position,
            "size": self.size, "max_priority": self.max_priority,
            **({"next_shown": self.next_shown[filled]} if self.next_shown.shape[1] else {}),
            **({"later": self.later[filled], "steps": self.steps[filled]}
               if self.multi_step else {}),
        }  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned, checking the shapes."""
        size = int(state["size"])
        if not 0 <= size <= self.capacity or len(state["tree"]) != len(self.tree.nodes):
            raise ArgumentError(
                f"replay state of size {size} does not fit capacity {self.capacity}"
            )
        names = ["observations", "actions", "rewards", "next_observations", "dones"]
        if self.next_shown.shape[1]:
            names.append("next_shown")
        if self.multi_step:
            names += ["later", "steps"]
        for name in names:
            if name not in state:
                raise ArgumentError(f"replay state has no {name!r}")
            array = np.asarray(state[name])
            expected = (size, *getattr(self, name).shape[1:])
            if array.shape != expected:
                raise ArgumentError(f"replay {name} has shape {array.shape}, expected {expected}")
            getattr(self, name)[:size] = array
        self.tree.nodes = np.asarray(state["tree"], dtype=np.float64).copy()
        self.position, self.size = int(state["position"]), size
        self.max_priority = float(state["max_priority"])
