"""Non-RL baselines: Rankers fitted on train ratings only (random, popularity, MF).

The MF ranker is the greedy reference of :mod:`movielens_env.evaluation.references`, imported here.
"""

from __future__ import annotations

import numpy as np

from movielens_env.evaluation.policies import top_k_by_score
from movielens_env.evaluation.references import MFRanker
from movielens_env.simulator.world import RecWorld

__all__ = ["MFRanker", "PopularityRanker", "RandomRanker"]


class RandomRanker:
    """Candidates in a uniformly random order (seeded)."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)

    def rank(self, user: int, candidates: np.ndarray, k: int) -> np.ndarray:
        """``k`` candidates drawn without replacement."""
        return self._rng.choice(candidates, size=min(k, len(candidates)), replace=False)


class PopularityRanker:
    """Candidates by their number of positive (>= 4) train ratings, the same for every user."""

    def __init__(self, world: RecWorld) -> None:
        self.counts = np.bincount(world.positives.items, minlength=world.dataset.n_items)

    def rank(self, user: int, candidates: np.ndarray, k: int) -> np.ndarray:
        """The ``k`` most popular candidates."""
        return top_k_by_score(self.counts[candidates].astype(np.float64), candidates, k)
