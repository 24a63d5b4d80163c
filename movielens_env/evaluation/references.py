"""Reference policies: how well a policy can do, from the simulator's own knowledge.

They are privileged (they read the user model and its state, which no agent sees), so they
are shown beside the agents, never as agents:

- ``greedy``: the MF ranking (the ``mf`` baseline), blind to the user's state;
- ``myopic``: each step, the slate with the best rewards now under the true user model
  (logged ratings, satiation, drifted tastes included);
- ``myopic-mf``: the same on MF's predicted ratings instead of the log, knowing how the user's
  state (which the observation shows) shifts them but not the held-out ratings, which no agent
  ever sees; the most an agent that does not plan can be expected to reach;
- ``planner``: a beam search over sequences of slates, replaying copies of the user model; its
  return is the best known for each user, the top of the normalized score;
- ``planner-mf``: the same search on MF's predicted ratings in the user's state: what planning
  reaches knowing what an agent can know (the headroom an agent that plans can aim at);
- the static ceiling: the sum of the user's ``T`` best static rewards, what a user without a
  state would give.

Every simulator here is deterministic, so a reference plans a whole episode from its first
state, and the evaluation then plays the plan in the env: the return reported is the env's.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ..blas import single_threaded_blas
from ..errors import ArgumentError
from ..simulator.scoring import rank_by_action, top_k_per_row
from ..simulator.user_model import UserModel, UserState
from ..simulator.world import RecWorld

if TYPE_CHECKING:
    from ..envs.env import MovieLensRecEnv

REFERENCES = ("greedy", "myopic", "myopic-mf", "planner", "planner-mf")

# The planner's work per user grows with width * episode steps (each step re-rates every kept
# episode and carries every plan), its memory with width * catalogue size (the ratings of every
# kept episode at once). The defaults use 128 * 20 = 2,560 and, on ML-25M, 8 M floats; the
# limits (25x and 8x those) keep one user's plan within minutes and a few GB, where larger
# products looked like a hang.
MAX_PLANNER_WORK = 65_536
MAX_PLANNER_RATINGS = 64 * 2**20
# Ratings computed to plan every episode of an evaluation. The default planner on real ML-100K
# under boredom+drift+patience computes 9e9 (10 minutes on 2 cores), on ML-1M about 1.4e11;
# slates of 10 under boredom+drift on a catalogue of ML-100K's size asked 8e11 (15 hours,
# silent with --no-progress) while each user's plan passed the checks above.
MAX_PLANNER_TOTAL = 2**38
# Ratings computed for one user's plan: slates of 2 over 512 steps passed the checks above and
# took 3 minutes per user (2**34 ratings); the default's is about 2**22.
MAX_PLANNER_USER = 2**32


@runtime_checkable
class Reference(Protocol):
    """A privileged policy: plans a whole episode from the env's current (fresh) state."""

    name: str

    def plan(self, env: MovieLensRecEnv, horizon: int) -> np.ndarray:
        """``(steps, slate_size)`` internal item ids, at most ``horizon`` steps, to play in
        order with ``env.step_items`` (fewer where the episode would end sooner)."""
        ...


class MFRanker:
    """The greedy reference and the ``mf`` baseline: candidates by MF's predicted rating.

    It ranks by the action ``[p_u, 1]`` on the vectors ``[q_i, b_i]``, through the env's own
    exact scoring, so it recommends what the policy "the observation's user vector" recommends.
    It sees the fitted tastes only: no satiation, no drift.
    """

    name = "greedy"

    def __init__(self, world: RecWorld) -> None:
        self.world, self.mf = world, world.mf
        self.vectors = world.vectors(item_bias=True)

    def rank(self, user: int, candidates: np.ndarray, k: int) -> np.ndarray:
        """The ``k`` candidates with the highest predicted rating, best first."""
        action = self.vectors.fitted_users[user]
        return rank_by_action(self.vectors, action, candidates, k)


class _Lookahead:
    """A copy of one env's episode that references can play forward without touching it."""

    def __init__(
        self, env: MovieLensRecEnv, mf_ratings: bool = False, clip: bool | None = None
    ) -> None:
        self.model: UserModel = env.user_model
        self.k = env.slate_size
        n_items = env.world.dataset.n_items
        self.state: UserState = env.user_state.rows(np.array([0]))
        self.available = np.zeros((1, n_items), dtype=bool)
        self.available[0, env.candidate_items()] = True
        # The user's static ratings of the whole catalogue: drift and boredom only shift them.
        # ``mf_ratings``: MF's predictions, where the log is not known.
        users, items = self.state.users[:, None], np.arange(n_items)[None]
        # MF's predictions are ranked unclipped, as greedy ranks them: clipped, every item
        # predicted above the scale would tie. A planner sums them, so it clips (``clip``).
        self.clip = not mf_ratings if clip is None else clip
        if mf_ratings:
            self.static = env.world.mf.predict(users, items).astype(np.float64)
        else:
            self.static, _ = self.model.static_ratings(users, items)

    def ratings(self) -> np.ndarray:
        """``(rows, n_items)`` ratings of every item in each row's current state."""
        static = np.broadcast_to(self.static, (len(self.state.users), self.static.shape[1]))
        return self.model.adjust(self.state, static, clip=self.clip)

    def rewards(self, ratings: np.ndarray) -> np.ndarray:
        """Per-item rewards, ``-inf`` where an item may not be recommended."""
        return np.where(self.available, self.model.rewards(ratings), -np.inf)

    def copy(self) -> _Lookahead:
        """An independent copy (its state and available items), sharing the static ratings."""
        other = copy.copy(self)
        other.state = self.state.rows(np.arange(len(self.state.users)))
        other.available = self.available.copy()
        return other


def step_rewards(env: MovieLensRecEnv, mf_ratings: bool = False) -> np.ndarray:
    """``(n_items,)`` the reward each item would bring if recommended now, from the env's
    current state under the true user model (with ``mf_ratings``, on MF's predicted ratings, as
    ``myopic-mf`` sees them); ``-inf`` where an item may not be recommended."""
    look = _Lookahead(env, mf_ratings)
    return look.rewards(look.ratings())[0]


def two_step_rewards(
    env: MovieLensRecEnv, items: np.ndarray, mf_ratings: bool = False
) -> np.ndarray:
    """``(len(items),)`` each item's reward if recommended now plus the best reward the next
    step can bring after it: a search two steps deep from the env's current state (true user
    model; with ``mf_ratings``, on MF's predicted ratings), ratings clipped as a planner sums
    them; ``-inf`` for an item that may not be recommended now."""
    items = np.asarray(items, dtype=np.int64)
    look = _Lookahead(env, mf_ratings, clip=True)
    ratings = look.ratings()
    now = look.rewards(ratings)[0, items]
    rows = np.arange(len(items))
    state = look.state.rows(np.zeros(len(items), dtype=np.int64))
    available = np.repeat(look.available, len(items), axis=0)
    available[rows, items] = False
    look.model.advance(state, items[:, None], ratings[0, items][:, None])
    static = np.broadcast_to(look.static, (len(items), look.static.shape[1]))
    later = look.model.rewards(look.model.adjust(state, static, clip=True))
    best_next = np.where(available, later, -np.inf).max(axis=1)
    best_next = np.where(np.isfinite(best_next), best_next, 0.0)  # nothing left to recommend
    return np.where(np.isfinite(now), now + best_next, -np.inf)


class MyopicPolicy:
    """Each step, the ``slate_size`` items with the best rewards now (the true user model).

    With ``mf_ratings``, the best by MF's predicted ratings in the user's current state
    (``myopic-mf``): the rewards the env then pays are still the true ones.
    """

    def __init__(self, mf_ratings: bool = False) -> None:
        self.mf_ratings = mf_ratings
        self.name = "myopic-mf" if mf_ratings else "myopic"

    def plan(self, env: MovieLensRecEnv, horizon: int) -> np.ndarray:
        """The myopic episode from the env's current state."""
        look = _Lookahead(env, self.mf_ratings)
        slates = []
        for _ in range(horizon):
            if look.available.sum() < look.k:
                break
            ratings = look.ratings()
            slate = top_k_per_row(look.rewards(ratings), look.k)
            slates.append(slate[0])
            look.available[0, slate[0]] = False
            left = look.model.advance(look.state, slate, ratings[:, slate[0]])[0]
            # On MF's ratings a predicted leaving is only a guess: the env, rating truly, says
            # when the user leaves, so the plan runs to the horizon.
            if left and not self.mf_ratings:
                break
        return np.array(slates, dtype=np.int64).reshape(-1, look.k)


class BeamPlanner:
    """Beam search over episodes: the best-known return for a user under the true user model.

    At every step each of the ``width`` best partial episodes (by return so far) is extended
    by each of its ``shortlist`` best items now (for slates, each such item leads a slate filled
    with the best others); the extensions are replayed on copies of the user's state and the
    ``width`` best are kept. The myopic episode is always a candidate, so the planner's return
    is never below myopic's; with a width that covers every sequence it is exhaustive search.

    Under a ``"static"`` user model the myopic episode is optimal (rewards do not depend on
    what came before and no item is recommended twice, so the best episode is the best
    ``T * slate_size`` items), and the planner returns it without searching unless
    ``search_static`` (the headroom table searches there too, as a control of the search).

    With ``mf_ratings`` (``planner-mf``), it plans on MF's predicted ratings in the user's
    state instead of the log, clipped to the scale as the env clips, and starts from
    ``myopic-mf``'s episode: what planning reaches knowing what an agent can know (the state
    the observation shows, MF's fit, not the held-out ratings). The env pays the true rewards.

    With ``depth``, it plans with a receding horizon: each step it searches only ``depth``
    steps ahead, plays the first, and searches again from the state reached; how far ahead a
    policy must look to reach the full search's return (``depth`` 1 is myopic).

    Args:
        width: partial episodes kept per step (16 to 256; the cost grows linearly). On
            ML-100K under ``"boredom+drift"`` with ``drift_rate=0.5`` (40 users) the return
            over myopic's grew from 4.9% at width 16 to 6.3% at 64, 6.7% at 128 and 7.4% at
            256.
        shortlist: items tried per partial episode and step (60 to 300; 100 was as good as
            300 at width 64).
        search_static: search even where the myopic episode is known to be optimal.
        mf_ratings: plan on MF's predicted ratings (``planner-mf``).
        depth: steps each search looks ahead, replanning every step (``None``: the whole
            episode at once; each step then costs a search of ``depth`` steps).
    """

    def __init__(
        self, width: int = 128, shortlist: int = 100, search_static: bool = False,
        mf_ratings: bool = False, depth: int | None = None,
    ) -> None:  # fmt: skip
        for label, value in (("width", width), ("shortlist", shortlist), ("depth", depth)):
            if label == "depth" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
                raise ArgumentError(
                    f"BeamPlanner {label} must be an integer in [1, 4096], got {value!r}"
                )
        self.width, self.shortlist, self.search_static = width, shortlist, search_static
        self.mf_ratings, self.depth = mf_ratings, depth
        self.name = "planner-mf" if mf_ratings else "planner"
        if depth is not None:
            self.name += f"-depth{depth}"

    def returns_myopic(self, env: MovieLensRecEnv) -> bool:
        """Whether this planner plays the myopic episode in ``env`` without searching."""
        return env.user_model.config.is_static and not self.search_static

    def plan(self, env: MovieLensRecEnv, horizon: int) -> np.ndarray:
        """The best episode found from the env's current state."""
        myopic = MyopicPolicy(self.mf_ratings).plan(env, horizon)
        if self.returns_myopic(env):
            return myopic
        self.check_size(horizon, env.world.dataset.n_items, env.slate_size)
        look = _Lookahead(env, self.mf_ratings, clip=True)
        with single_threaded_blas():
            if self.depth is None or self.depth >= horizon:
                beam_plan, beam_return = self._search(look, horizon)
            else:
                beam_plan = self._receding(look, horizon, self.depth)
                beam_return = _planned_return(env, beam_plan, self.mf_ratings)
        if _planned_return(env, myopic, self.mf_ratings) > beam_return:
            return myopic
        return beam_plan

    def check_size(self, horizon: int, n_items: int, slate_size: int = 1) -> None:
        """Refuse a search of ``horizon`` steps over ``n_items`` items, in slates of
        ``slate_size``, this planner could not finish in reasonable time and memory.

        Raises:
            ArgumentError: naming the width, the product and its limit.
        """
        if slate_size > 1:  # each partial episode's shortlist fills its slates from every item
            held = self.width * self.shortlist * n_items
            if held > MAX_PLANNER_RATINGS:
                raise ArgumentError(
                    f"planner width {self.width} x shortlist {self.shortlist} x {n_items:,} "
                    f"items = {held:,} ratings held at once for slates of {slate_size} is "
                    f"beyond {MAX_PLANNER_RATINGS:,}: use a width of at most "
                    f"{max(MAX_PLANNER_RATINGS // (self.shortlist * n_items), 1):,}"
                )
        if self.width * horizon > MAX_PLANNER_WORK:
            raise ArgumentError(
                f"planner width {self.width} x {horizon} episode steps = "
                f"{self.width * horizon:,} is beyond {MAX_PLANNER_WORK:,} (the planner's work "
                "per user grows with both): use a smaller width for episodes this long"
            )
        shortlist = self.shortlist if slate_size > 1 else 1
        per_user = self.width * self._searched_steps(horizon) * n_items * shortlist
        if per_user > MAX_PLANNER_USER:
            slates = f" x shortlist {shortlist} (slates of {slate_size})" if shortlist > 1 else ""
            raise ArgumentError(
                f"planner width {self.width} x {self._searched_steps(horizon)} searched steps"
                f" x {n_items:,} items"
                f"{slates} = {per_user:.2g} ratings per user is beyond {MAX_PLANNER_USER:.2g} "
                "(minutes per user): use a smaller width, shorter episodes or smaller slates"
            )
        if self.width * n_items > MAX_PLANNER_RATINGS:
            raise ArgumentError(
                f"planner width {self.width} x {n_items:,} items = {self.width * n_items:,} "
                f"ratings held at once is beyond {MAX_PLANNER_RATINGS:,}: use a width of at "
                f"most {MAX_PLANNER_RATINGS // n_items:,} for this catalogue"
            )

    def check_plans(self, env: MovieLensRecEnv, horizon: int, episodes: int) -> None:
        """:meth:`check_size` and :meth:`check_total` for ``episodes`` plans of ``horizon``
        steps in ``env``'s catalogue and slates, before the first: hours of planning refused."""
        n_items = env.world.dataset.n_items
        self.check_size(horizon, n_items, env.slate_size)
        self.check_total(horizon, n_items, env.slate_size, episodes)

    def check_total(self, horizon: int, n_items: int, slate_size: int, episodes: int) -> None:
        """Refuse planning ``episodes`` episodes (users times reward models) of ``horizon``
        steps that would take many hours: each step rates every item for each kept episode,
        and for slates of two or more, for each of its ``shortlist`` extensions.

        Raises:
            ArgumentError: naming the sizes, the ratings to compute and the widest that fits.
        """
        per_width = (
            self._searched_steps(horizon)
            * n_items
            * (self.shortlist if slate_size > 1 else 1)
            * episodes
        )
        if self.width * per_width > MAX_PLANNER_TOTAL:
            slates = f" in slates of {slate_size}" if slate_size > 1 else ""
            raise ArgumentError(
                f"planning {episodes:,} episodes of {horizon} steps over {n_items:,} items"
                f"{slates} at planner width {self.width} rates {self.width * per_width:.2g} "
                f"items, beyond {MAX_PLANNER_TOTAL:.2g} (many hours): use a planner width of at "
                f"most {max(MAX_PLANNER_TOTAL // per_width, 1):,}"
                + (
                    ", or smaller slates or shorter episodes"
                    if per_width > MAX_PLANNER_TOTAL
                    else ""
                )
            )

    def _searched_steps(self, horizon: int) -> int:
        """Steps searched to plan an episode of ``horizon`` steps (with ``depth``, a search of
        up to ``depth`` steps for each step)."""
        if self.depth is None or self.depth >= horizon:
            return horizon
        return horizon * self.depth

    def _receding(self, look: _Lookahead, horizon: int, depth: int) -> np.ndarray:
        """Each step, the first slate of a ``depth``-step search from the state reached."""
        slates: list[np.ndarray] = []
        while len(slates) < horizon and look.available.sum() >= look.k:
            plan, _ = self._search(look.copy(), min(depth, horizon - len(slates)))
            if not len(plan):
                break
            slate = plan[0]
            chosen = look.ratings()[:, slate]
            look.available[0, slate] = False
            slates.append(slate)
            left = look.model.advance(look.state, slate[None], chosen)[0]
            if left and not self.mf_ratings:  # as myopic: on MF's ratings leaving is a guess
                break
        return np.array(slates, dtype=np.int64).reshape(-1, look.k)

    def _search(self, look: _Lookahead, horizon: int) -> tuple[np.ndarray, float]:
        k = look.k
        totals = np.zeros(1)
        alive = np.ones(1, dtype=bool)
        plans = np.zeros((1, 0, k), dtype=np.int64)
        for _ in range(horizon):
            alive &= look.available.sum(axis=1) >= k
            if not alive.any():
                break
            ratings = look.ratings()
            rewards = look.rewards(ratings)
            parents, slates, values = self._extensions(rewards, totals, alive, k)
            keep = np.lexsort((np.arange(len(values)), -values))[: self.width]
            parents, slates = parents[keep], slates[keep]
            grown = slates[:, 0] >= 0  # -1: a finished episode carried over unchanged
            look.state = look.state.rows(parents)
            look.available = look.available[parents]
            totals, alive = values[keep], alive[parents] & grown
            rows = np.flatnonzero(grown)
            if len(rows):
                step = look.state.rows(rows)
                chosen = ratings[parents[rows, None], slates[rows]]
                left = look.model.advance(step, slates[rows], chosen)
                look.state.assign(rows, step)
                look.available[rows[:, None], slates[rows]] = False
                alive[rows] &= ~left
            plans = np.concatenate([plans[parents], slates[:, None, :]], axis=1)
        best = int(np.argmax(totals))
        plan = plans[best]
        return plan[plan[:, 0] >= 0], float(totals[best])

    def _extensions(
        self, rewards: np.ndarray, totals: np.ndarray, alive: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (parent, slate, value) to choose from: each live row extended by its shortlist
        (each item leading a slate of the best others), each finished row carried as it is."""
        fewest = int(np.isfinite(rewards[alive]).sum(axis=1).min())
        width = max(k, min(self.shortlist, fewest))
        leads = top_k_per_row(rewards, width)  # (rows, width)
        rows = np.flatnonzero(alive)
        parents = np.repeat(rows, width)
        lead = leads[rows].ravel()
        if k == 1:
            slates = lead[:, None]
        else:
            masked = rewards[parents]
            masked[np.arange(len(parents)), lead] = -np.inf
            slates = np.concatenate([lead[:, None], top_k_per_row(masked, k - 1)], axis=1)
        values = totals[parents] + rewards[parents[:, None], slates].sum(axis=1)
        done = np.flatnonzero(~alive)
        return (
            np.concatenate([parents, done]),
            np.concatenate([slates, np.full((len(done), k), -1)]),
            np.concatenate([values, totals[done]]),
        )


def _planned_return(env: MovieLensRecEnv, plan: np.ndarray, mf_ratings: bool = False) -> float:
    """The return of playing ``plan`` on a copy of the env's current state (with
    ``mf_ratings``, as the user would rate on MF's predictions, clipped)."""
    look = _Lookahead(env, mf_ratings, clip=True)
    total = 0.0
    for slate in plan:
        if mf_ratings:
            ratings = look.ratings()[:, slate]
        else:
            ratings, _ = look.model.rate(look.state, slate[None])
        total += float(look.model.rewards(ratings).sum())
        if look.model.advance(look.state, slate[None], ratings)[0]:
            break
    return total


def static_ceiling(env: MovieLensRecEnv, horizon: int) -> float:
    """The sum of the ``horizon * slate_size`` best static rewards among the candidates: the
    return of a user without a state who is shown their favourites."""
    look = _Lookahead(env)  # a fresh state: no satiation or drift yet, so static ratings
    best = np.sort(look.rewards(look.ratings())[0])[::-1][: horizon * look.k]
    return float(best[np.isfinite(best)].sum())
