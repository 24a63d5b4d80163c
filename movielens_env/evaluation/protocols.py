"""The evaluation every agent and benchmark uses: offline ranking on held-out ratings and online
return under the simulator.

Offline, each test user (at least ``history_len`` positive train ratings, so that the test-split
observation exists, and at least one positive test rating) is seen once, through the test-split
observation, and the agent ranks candidates; a candidate is relevant when its test rating is
>= 4. ``rerank`` ranks the user's test-rated items (the paper's offline protocol); ``full`` ranks
every item the user did not rate in train. Online, each test user plays one episode of the
test-split env and the return is recorded.

Any agent plugs in: an object with SB3's ``predict(obs, deterministic=True)``, a callable
``obs -> action``, or a :class:`Ranker` that orders candidates itself. Reference policies
(:mod:`movielens_env.evaluation.references`) are evaluated online only: they read the simulator.

The env keyword arguments may hold ``max_episode_steps`` (as ``gym.make`` takes it): the
length of the online episodes, 10 if absent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..checks import episode_length, positive_int
from ..envs.env import MovieLensRecEnv
from ..envs.setup import load_world
from ..envs.vector_env import MovieLensRecVectorEnv
from ..errors import ArgumentError
from ..simulator.scoring import rank_by_action
from ..simulator.world import POSITIVE_RATING, RecWorld
from . import names
from .metrics import coverage_at_k, per_user_metrics
from .names import DEFAULT_KS, PROTOCOLS
from .policies import Agent, PolicyActor, Ranker, checked_ranking
from .references import BeamPlanner, Reference

EPISODE_STEPS = 10
_LOCKSTEP = 256  # users whose online episodes run side by side


@dataclass
class EvaluationResult:
    """Per-user results of one agent, so that any interval can be computed from them.

    Attributes:
        agent: the agent's name.
        users: internal ids of the test users, in evaluation order.
        per_user: ``"<protocol>/<metric>@k"`` and ``"online/<reward model>"`` -> value per user.
        coverage: ``"<protocol>/coverage@k"`` -> share of the catalogue recommended.
        top_items: protocol -> (users, max k) internal item ids, best first, -1 padded.
    """

    agent: str
    users: np.ndarray
    per_user: dict[str, np.ndarray] = field(default_factory=dict)
    coverage: dict[str, float] = field(default_factory=dict)
    top_items: dict[str, np.ndarray] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """Mean of every per-user metric, plus coverage."""
        out = {name: float(np.mean(values)) for name, values in self.per_user.items()}
        return {**out, **self.coverage}


def evaluation_users(
    world: RecWorld, history_len: int, eligible: np.ndarray | None = None
) -> np.ndarray:
    """Users with a test-split observation and at least one positive test rating; of those,
    only the ``eligible`` ones where given (a test-split env's ``eligible_users``: with
    ``candidates="rated"``, the users whose test ratings fill a slate)."""
    positives_in_test = np.bincount(
        world.split.test.user_of_each_rating()[world.split.test.ratings >= POSITIVE_RATING],
        minlength=world.dataset.n_users,
    )
    users = np.flatnonzero((world.positives.counts >= history_len) & (positives_in_test > 0))
    return users if eligible is None else users[np.isin(users, eligible)]


def relevant_items(world: RecWorld, users: np.ndarray) -> list[np.ndarray]:
    """Each user's positive test items: the only relevance labels any protocol uses."""
    relevant = []
    for user in users:
        items, ratings = world.split.test.row(user)
        relevant.append(items[ratings >= POSITIVE_RATING])
    return relevant


def episode_steps(env_kwargs: dict[str, Any]) -> int:
    """The online episode length: ``env_kwargs["max_episode_steps"]``, else 10 (at most
    :data:`~movielens_env.checks.MAX_EPISODE_STEPS_LIMIT`)."""
    return episode_length(env_kwargs.get("max_episode_steps", EPISODE_STEPS))


def online_reward_models(world: RecWorld) -> list[str]:
    """The simulators online returns are measured under: ``mf``, and ``oracle`` where the
    data's true ratings are known."""
    return ["mf"] if world.dataset.truth is None else ["mf", "oracle"]


def heldout_kwargs(env_kwargs: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """Arguments of the test-split env for ``env_kwargs`` (the horizon is the caller's)."""
    kwargs = {**env_kwargs, "split": "test", "render_mode": None, **overrides}
    kwargs.pop("max_episode_steps", None)
    if kwargs.get("reward_model", "mf") != "logged":  # an env trained under "logged" is also
        kwargs.pop("unrated_reward", None)  # evaluated under "mf", which has no unrated item
    return kwargs


def heldout_env(env_kwargs: dict[str, Any], **overrides: Any) -> MovieLensRecEnv:
    """The test-split env of ``env_kwargs``, unwrapped (the evaluation steps it itself)."""
    return MovieLensRecEnv(**heldout_kwargs(env_kwargs, **overrides))


def protocol_candidates(world: RecWorld, user: int, protocol: str) -> np.ndarray:
    """What a protocol ranks for a user: test-rated items (``rerank``) or every item the user did
    not rate in train (``full``), ascending internal ids."""
    if protocol == "rerank":
        return np.sort(world.split.test.row(user)[0]).astype(np.int64)
    available = np.ones(world.dataset.n_items, dtype=bool)
    available[world.split.train.row(user)[0]] = False
    return np.flatnonzero(available)


def check_ks(ks: Any) -> None:
    """Refuse cut-offs that are not a non-empty sequence of integers >= 1."""
    if (
        isinstance(ks, str | bytes)
        or not hasattr(ks, "__len__")
        or not ks
        or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks)
    ):
        raise ArgumentError(f"ks must be integers >= 1 (cut-offs of the rankings), got {ks!r}")


def evaluate_offline(
    agent: Agent,
    env_kwargs: dict[str, Any],
    protocols: tuple[str, ...] = PROTOCOLS,
    ks: tuple[int, ...] = DEFAULT_KS,
    name: str = "agent",
) -> EvaluationResult:
    """Rank candidates for every test user under each protocol and score the rankings."""
    for protocol in protocols:
        if protocol not in PROTOCOLS:
            raise ArgumentError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    check_ks(ks)
    env = heldout_env(env_kwargs)
    world, depth = env.world, max(ks)
    if depth > world.dataset.n_items:  # a (users x k) array of nothing but misses, GBs of it
        raise ArgumentError(
            f"ks={tuple(ks)}: a cut-off beyond the catalogue ({world.dataset.n_items:,} items) "
            "ranks nothing more; give cut-offs of at most the catalogue's size"
        )
    users = evaluation_users(world, env.history_len, env.eligible_users)
    rank: Callable[[int, int, np.ndarray], np.ndarray]
    if isinstance(agent, Ranker):
        ranker = agent

        def rank(row: int, user: int, candidates: np.ndarray) -> np.ndarray:
            return checked_ranking(ranker, user, candidates, depth, name)
    else:
        actor = PolicyActor(agent, env.vectors.dim, name)
        observations = [env.reset(options={"user_id": world.dataset.user_ids[u]})[0] for u in users]
        actions = actor(observations)

        def rank(row: int, user: int, candidates: np.ndarray) -> np.ndarray:
            return rank_by_action(env.vectors, actions[row], candidates, depth)

    result = EvaluationResult(agent=name, users=users)
    relevant = relevant_items(world, users)
    for protocol in protocols:
        top = np.full((len(users), depth), -1, dtype=np.int64)
        for row, user in enumerate(users):
            ranking = rank(row, int(user), protocol_candidates(world, int(user), protocol))
            top[row, : len(ranking)] = ranking
        result.top_items[protocol] = top
        for (metric, k), values in per_user_metrics(top, relevant, ks).items():
            result.per_user[names.offline(protocol, metric, k)] = values
        for k in ks:
            result.coverage[names.offline(protocol, "coverage", k)] = coverage_at_k(
                top, k, world.dataset.n_items
            )
    return result


def _rows(obs: Any, lanes: int) -> list[Any]:
    """A vector env's batched observation as one observation per lane (a dict per lane where
    observations are dicts: ``list`` of a dict is its keys)."""
    if isinstance(obs, dict):
        return [{key: value[row] for key, value in obs.items()} for row in range(lanes)]
    return list(obs)


def checked_users(users: Any, n_users: int) -> np.ndarray:
    """``users`` as an array of internal user indices, refused unless integers in
    ``[0, n_users)``: -1 was played as the last user, a bool mask as users 0 and 1.

    Raises:
        ArgumentError: naming what is wrong.
    """
    array = np.asarray(users)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise ArgumentError(
            f"users must be a 1-d array of internal user indices (integers), got "
            f"{array.ndim}-d {array.dtype}"
        )
    if array.size and (array.min() < 0 or array.max() >= n_users):
        wrong = array[(array < 0) | (array >= n_users)][:5].tolist()
        raise ArgumentError(
            f"users must be internal indices in [0, {n_users}) (not raw MovieLens ids), got {wrong}"
        )
    return array


def evaluate_online(
    agent: Agent | Reference,
    env_kwargs: dict[str, Any],
    reward_model: str = "mf",
    users: np.ndarray | None = None,
    max_steps: int | None = None,
    name: str = "agent",
    progress: Callable[[int], None] = lambda users: None,
    discount: float = 1.0,
) -> np.ndarray:
    """Return of one test-split episode (at most ``max_steps``, by default the episode length
    of ``env_kwargs``) per test user, the reward of step ``t`` weighted by ``discount ** t``
    (1: the plain sum); ``progress(n)`` is told each time ``n`` more users are done (planners
    can take minutes).

    Episodes run side by side, a batch of users at a time, so that a policy that accepts
    batches (any SB3 model) is asked once per step for the whole batch: in the native vector
    env for policies that output actions, in single envs stepped in lockstep for rankers. A
    :class:`~movielens_env.evaluation.references.Reference` plans each user's episode and the
    plan is played in the env.
    """
    if max_steps is None:
        max_steps = episode_steps(env_kwargs)
    max_steps = positive_int("max_steps", max_steps)
    if (
        isinstance(discount, bool)
        or not isinstance(discount, int | float)
        or not 0 <= discount <= 1
    ):
        raise ArgumentError(f"discount must be a number in [0, 1], got {discount!r}")
    first = heldout_env(env_kwargs, reward_model=reward_model)
    world = first.world
    if users is None:
        users = evaluation_users(world, first.history_len, first.eligible_users)
    users = checked_users(users, world.dataset.n_users)
    if isinstance(agent, BeamPlanner) and not agent.returns_myopic(first):
        agent.check_plans(first, max_steps, len(users))
    if isinstance(agent, Reference):
        return _online_reference(agent, first, users, max_steps, progress, discount)
    if not isinstance(agent, Ranker):
        actor = PolicyActor(agent, first.vectors.dim, name)
        return _online_actions(
            actor, env_kwargs, reward_model, users, max_steps, progress, discount
        )
    lanes = min(len(users), _LOCKSTEP)
    envs = [first] + [heldout_env(env_kwargs, reward_model=reward_model) for _ in range(lanes - 1)]
    returns = np.zeros(len(users))
    for start in range(0, len(users), lanes):
        batch = users[start : start + lanes]
        for lane, user in enumerate(batch):
            envs[lane].reset(options={"user_id": world.dataset.user_ids[user]})
        running = list(range(len(batch)))
        for step in range(max_steps):
            if not running:
                break
            still = []
            for lane in running:
                env, user = envs[lane], int(batch[lane])
                slate = checked_ranking(agent, user, env.candidate_items(), env.slate_size, name)
                _, reward, terminated, _, _ = env.step_items(slate)
                returns[start + lane] += discount**step * reward
                if not terminated:
                    still.append(lane)
            running = still
        progress(len(batch))
    return returns


def _online_reference(
    reference: Reference,
    env: MovieLensRecEnv,
    users: np.ndarray,
    max_steps: int,
    progress: Callable[[int], None],
    discount: float,
) -> np.ndarray:
    """Each user's planned episode, played in the env (the return is the env's, not the
    plan's own estimate)."""
    returns = np.zeros(len(users))
    raw_ids = env.world.dataset.user_ids
    for row, user in enumerate(users):
        env.reset(options={"user_id": raw_ids[user]})
        for step, slate in enumerate(reference.plan(env, max_steps)[:max_steps]):
            _, reward, terminated, _, _ = env.step_items(slate)
            returns[row] += discount**step * reward
            if terminated:
                break
        progress(1)
    return returns


def _online_actions(
    actor: PolicyActor,
    env_kwargs: dict[str, Any],
    reward_model: str,
    users: np.ndarray,
    max_steps: int,
    progress: Callable[[int], None],
    discount: float,
) -> np.ndarray:
    lanes = max(1, min(len(users), _LOCKSTEP))
    kwargs = heldout_kwargs(env_kwargs, reward_model=reward_model)
    envs = MovieLensRecVectorEnv(num_envs=lanes, **kwargs)
    raw_ids = envs.world.dataset.user_ids
    returns = np.zeros(len(users))
    for start in range(0, len(users), lanes):
        batch = users[start : start + lanes]
        # The last batch is padded with its first user; the padding's returns are dropped.
        padded = np.concatenate([batch, np.full(lanes - len(batch), batch[0])])
        obs, _ = envs.reset(options={"user_id": raw_ids[padded]})
        alive = np.ones(lanes, dtype=bool)
        starts = np.ones(lanes, dtype=bool)
        for step in range(max_steps):
            actions = actor(_rows(obs, lanes), starts)
            # An ended row is reset on the next step (ignoring its action); it no longer counts.
            obs, rewards, terminated, truncated, _ = envs.step(actions)
            starts = terminated | truncated
            returns[start : start + len(batch)] += discount**step * (rewards * alive)[: len(batch)]
            alive &= ~terminated
            if not alive.any():
                break
        progress(len(batch))
    return returns


def evaluate(
    agent: Agent,
    env_kwargs: dict[str, Any],
    ks: tuple[int, ...] = DEFAULT_KS,
    name: str = "agent",
    online: bool = True,
) -> EvaluationResult:
    """Both offline protocols, and the online return under ``mf`` (and ``oracle`` when known).

    A :class:`~movielens_env.evaluation.references.Reference` is evaluated online only: it reads the
    simulator, so ranking held-out ratings with it would measure nothing.
    """
    if isinstance(agent, Reference):
        env = heldout_env(env_kwargs)
        users = evaluation_users(env.world, env.history_len, env.eligible_users)
        result = EvaluationResult(name, users)
    else:
        result = evaluate_offline(agent, env_kwargs, PROTOCOLS, ks, name)
    if online:
        for model in online_reward_models(load_world(**env_kwargs)):
            returns = evaluate_online(agent, env_kwargs, model, result.users, name=name)
            result.per_user[names.online_return(model)] = returns
    return result
