"""The evaluation every agent and benchmark uses: offline and online protocols
(``protocols``), ranking metrics (``metrics``), how agents plug in (``policies``), the
reference policies and the normalized score (``references``, ``headroom``), and exported
recommendations (``exports``)."""

from .protocols import (
    DEFAULT_KS,
    PROTOCOLS,
    EvaluationResult,
    evaluate,
    evaluate_offline,
    evaluate_online,
    heldout_env,
)

__all__ = [
    "DEFAULT_KS",
    "PROTOCOLS",
    "EvaluationResult",
    "evaluate",
    "evaluate_offline",
    "evaluate_online",
    "heldout_env",
]
