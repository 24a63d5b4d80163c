"""How any agent plugs into the evaluation: rankers, SB3-style models, and plain callables."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import AgentError
from ..simulator.scoring import top_k_per_row


@runtime_checkable
class Ranker(Protocol):
    """An agent that orders candidate items itself (popularity, MF, third-party rankers)."""

    def rank(self, user: int, candidates: np.ndarray, k: int) -> np.ndarray:
        """The best ``k`` (or fewer) of ``candidates`` (internal item ids), best first."""
        ...


@runtime_checkable
class Predictor(Protocol):
    """An agent that outputs actions for a batch of observations, with SB3's ``predict``."""

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> Any:
        """The actions of a batch of observations (or ``(actions, state)``, as SB3 returns);
        the evaluation asks with ``deterministic=True``."""
        ...


# What the evaluation accepts as an agent: a ranker, an SB3-style model, or a plain callable
# from one observation to its action.
Agent = Ranker | Predictor | Callable[[Any], np.ndarray]


def top_k_by_score(scores: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best candidates (ascending ids) by score, ties to the lower item id."""
    k = min(k, len(candidates))
    if k == 0:
        return candidates[:0]
    return candidates[top_k_per_row(np.asarray(scores, dtype=np.float64)[None], k)[0]]


def checked_ranking(
    agent: Ranker, user: int, candidates: np.ndarray, k: int, name: str
) -> np.ndarray:
    """``agent.rank(...)``, refused unless it is ``min(k, len(candidates))`` distinct candidates."""
    ranking = np.asarray(agent.rank(user, candidates, k), dtype=np.int64).reshape(-1)
    if len(ranking) > k or len(np.unique(ranking)) != len(ranking):
        raise AgentError(f"agent {name!r} must rank at most {k} distinct items, got {ranking}")
    if not np.isin(ranking, candidates).all():
        raise AgentError(f"agent {name!r} ranked items that are not candidates: {ranking}")
    if len(ranking) < min(k, len(candidates)):
        raise AgentError(f"agent {name!r} ranked {len(ranking)} of {len(candidates)} candidates")
    return ranking


def _stack(observations: list[Any]) -> Any:
    if isinstance(observations[0], dict):
        return {key: np.stack([obs[key] for obs in observations]) for key in observations[0]}
    return np.stack(observations)


def _takes_state(predict: Callable[..., Any]) -> bool:
    """Whether ``predict`` accepts SB3's ``state`` and ``episode_start`` keywords."""
    try:
        parameters = inspect.signature(predict).parameters
    except (TypeError, ValueError):  # a builtin or C extension without a signature
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return True
    return {"state", "episode_start"} <= set(parameters)


class PolicyActor:
    """Actions of an action-based agent for a batch of observations, checked.

    An object with ``predict(obs, deterministic=True)`` (SB3's signature) is asked for the whole
    batch at once, as SB3 models are: it must return one action per observation. Where its
    ``predict`` takes SB3's ``state`` and ``episode_start``, they are passed as SB3's
    ``evaluate_policy`` passes them: the state it returned for the batch's previous step, and
    which rows begin an episode (so a policy with a memory, a recurrent one, keeps it through
    the episode). A plain callable ``obs -> action`` is asked one observation at a time.
    """

    def __init__(self, agent: Predictor | Callable[[Any], np.ndarray], dim: int, name: str) -> None:
        if not (hasattr(agent, "predict") or callable(agent)):
            raise AgentError(
                f"agent {name!r} is neither a Ranker (rank), an SB3-style model (predict) "
                "nor a callable obs -> action"
            )
        self.agent, self.dim, self.name = agent, dim, name
        self.stateful = isinstance(agent, Predictor) and _takes_state(agent.predict)
        self.state: Any = None

    def __call__(
        self, observations: list[Any], episode_start: np.ndarray | None = None
    ) -> np.ndarray:
        """A (len(observations), dim) float64 array of actions (float64: a finite action beyond
        float32's range is valid, only its direction counts). ``episode_start``: which rows
        begin an episode (default: all, each observation on its own)."""
        if isinstance(self.agent, Predictor):
            batch = _stack(observations)
            if self.stateful:
                starts = np.ones(len(observations), dtype=bool)
                if episode_start is not None:
                    starts = np.asarray(episode_start, dtype=bool)
                state = None if starts.all() else self.state
                action = self.agent.predict(
                    batch, state=state, episode_start=starts, deterministic=True
                )
                self.state = action[1] if isinstance(action, tuple) and len(action) == 2 else None
            else:
                action = self.agent.predict(batch, deterministic=True)
            actions = self._numbers(action[0] if isinstance(action, tuple) else action)
            expected = (len(observations), self.dim)
            if actions.shape != expected:
                raise AgentError(
                    f"agent {self.name!r}: predict on a batch of {len(observations)} "
                    f"observations returned shape {actions.shape}, not {expected} (it must "
                    "accept a batch, as SB3 models do; or give a callable obs -> action)"
                )
        else:
            actions = np.stack([self._check(self._numbers(self.agent(o))) for o in observations])
        if not np.isfinite(actions).all():
            raise AgentError(f"agent {self.name!r} returned an action with NaN or inf")
        return actions

    def _numbers(self, action: Any) -> np.ndarray:
        """``action`` as float64, or :class:`AgentError` naming the agent (text, objects)."""
        try:
            return np.asarray(action, np.float64)
        except (TypeError, ValueError) as exc:
            raise AgentError(
                f"agent {self.name!r} returned an action that is not numbers ({exc})"
            ) from None

    def _check(self, action: np.ndarray) -> np.ndarray:
        if action.shape != (self.dim,):
            raise AgentError(
                f"agent {self.name!r} returned an action of shape {action.shape}, not ({self.dim},)"
            )
        return action
