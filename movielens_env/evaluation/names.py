"""The evaluation's metric names, defined once for everything that writes or reads them.

Offline: ``<protocol>/<metric>@<k>`` (``rerank`` or ``full``; ``precision``, ``ndcg``,
``hit_rate``, ``coverage``; ``k`` in :data:`DEFAULT_KS`). Online: ``online/return_<model>``,
the mean return under a reward model, and ``online/normalized_<model>``, that return placed
between random (0) and the planner (1).
"""

from __future__ import annotations

PROTOCOLS = ("rerank", "full")
DEFAULT_KS = (5, 10)
METRICS = ("precision", "ndcg", "hit_rate", "coverage")
ONLINE_MODELS = ("mf", "oracle")


def at_k(metric: str, k: int) -> str:
    """``precision@10`` and the like: a metric at a cut-off, whatever ranked the items."""
    return f"{metric}@{k}"


def offline(protocol: str, metric: str, k: int) -> str:
    """``rerank/precision@10`` and the like."""
    return f"{protocol}/{at_k(metric, k)}"


def online_return(model: str) -> str:
    """``online/return_mf`` and the like: the mean return under reward model ``model``."""
    return f"online/return_{model}"


def normalized(model: str) -> str:
    """``online/normalized_mf`` and the like: the return of ``model`` between random and the
    planner."""
    return f"online/normalized_{model}"


# Every name, in the order tables list them: protocols, then online.
ALL = (
    *(offline(p, m, k) for p in PROTOCOLS for m in METRICS for k in DEFAULT_KS),
    *(name for model in ONLINE_MODELS for name in (online_return(model), normalized(model))),
)
# Offline precision and NDCG of both protocols: what an agent must beat the baselines on.
RANKING = tuple(
    offline(p, m, k) for p in PROTOCOLS for m in ("precision", "ndcg") for k in DEFAULT_KS
)
# The leaderboard's printed columns.
TABLE = (
    offline("rerank", "precision", 5),
    offline("rerank", "precision", 10),
    offline("rerank", "ndcg", 10),
    offline("full", "precision", 10),
    offline("full", "ndcg", 10),
    online_return("mf"),
    normalized("mf"),
)
# The benchmark's bar plots.
PLOTTED = (*TABLE[1:5], online_return("mf"), online_return("oracle"))
# A DRR run's learning curve, evaluated every ``eval_every`` episodes.
TRAINING_CURVE = (
    *(
        offline(p, m, k)
        for p in PROTOCOLS
        for m, k in (("precision", 5), ("precision", 10), ("ndcg", 10))
    ),
    online_return("mf"),
)
# What a command prints after training.
AFTER_TRAINING = (
    offline("rerank", "precision", 10),
    offline("full", "precision", 10),
    online_return("mf"),
)
