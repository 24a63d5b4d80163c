"""The prioritized replay buffer and its sum tree."""

from __future__ import annotations

import numpy as np
import pytest

from agents.drr.replay import PrioritizedReplay, SumTree


def test_sum_tree_sums_and_finds():
    tree = SumTree(5)
    tree.update(np.arange(5), np.array([1.0, 2.0, 3.0, 4.0, 0.5]))
    assert tree.total == pytest.approx(10.5)
    # Cumulative intervals: [0,1) [1,3) [3,6) [6,10) [10,10.5)
    values = np.array([0.0, 0.99, 1.0, 2.9, 3.0, 6.5, 10.2])
    np.testing.assert_array_equal(tree.find(values), [0, 0, 1, 1, 2, 3, 4])
    tree.update(np.array([1]), np.array([0.0]))
    assert tree.total == pytest.approx(8.5)


def _buffer(priorities: np.ndarray) -> PrioritizedReplay:
    replay = PrioritizedReplay(len(priorities), obs_dim=2, action_dim=1, alpha=1.0, eps=0.0)
    n = len(priorities)
    obs = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
    replay.add(obs, np.zeros((n, 1)), np.arange(n), obs, np.zeros(n))
    replay.update_priorities(np.arange(n), priorities)
    return replay


def test_sampling_frequencies_follow_priorities():
    priorities = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    replay = _buffer(priorities)
    rng = np.random.default_rng(0)
    counts = np.zeros(5)
    for _ in range(2000):
        counts += np.bincount(replay.sample(32, beta=0.4, rng=rng).indices, minlength=5)
    np.testing.assert_allclose(counts / counts.sum(), priorities / priorities.sum(), atol=0.01)


def test_importance_weights_and_alpha():
    replay = _buffer(np.array([1.0, 3.0]))
    batch = replay.sample(64, beta=1.0, rng=np.random.default_rng(1))
    # P = (0.25, 0.75): w = (N P)^-1 = (2, 2/3), normalised by the largest.
    expected = np.where(batch.indices == 0, 1.0, (2 / 3) / 2)
    np.testing.assert_allclose(batch.weights, expected, rtol=1e-6)
    np.testing.assert_array_equal(batch.rewards, batch.indices)  # rows stay aligned
    squashed = PrioritizedReplay(2, 1, 1, alpha=0.5, eps=0.01)
    squashed.add(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros(2), np.zeros((2, 1)), np.zeros(2))
    squashed.update_priorities(np.array([0, 1]), np.array([-3.99, 0.0]))
    np.testing.assert_allclose(squashed.tree.priorities(np.array([0, 1])), [2.0, 0.1])


def test_ring_buffer_overwrites_oldest_and_new_items_get_max_priority():
    replay = PrioritizedReplay(3, 1, 1, alpha=1.0, eps=0.0)
    for value in range(5):
        replay.add(np.full((1, 1), value), np.zeros((1, 1)), [value], np.zeros((1, 1)), [0.0])
    assert len(replay) == 3 and sorted(replay.rewards.tolist()) == [2.0, 3.0, 4.0]
    replay.update_priorities(np.array([0]), np.array([7.0]))
    replay.add(np.zeros((1, 1)), np.zeros((1, 1)), [9.0], np.zeros((1, 1)), [0.0])
    assert replay.tree.priorities(np.array([2]))[0] == 7.0


def test_state_round_trip_keeps_contents_and_counters():
    replay = _buffer(np.array([1.0, 2.0, 5.0]))
    clone = PrioritizedReplay(3, 2, 1, alpha=1.0, eps=0.0)
    clone.load_state_dict(replay.state_dict())
    first = replay.sample(8, 0.5, np.random.default_rng(3))
    second = clone.sample(8, 0.5, np.random.default_rng(3))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="does not fit capacity"):
        PrioritizedReplay(2, 2, 1, 1.0, 0.0).load_state_dict(replay.state_dict())
