"""MovieLensRec as a native batched :class:`gymnasium.vector.VectorEnv`.

One numpy path steps every sub-environment at once: one matrix product scores the catalogue for
all users, a ``(num_envs, n_items)`` mask removes what each episode may no longer recommend,
logged ratings are found by binary search in the ratings sorted by (user, item), and histories
shift as one array. Each sub-environment keeps its own random generator, seeded as Gymnasium
seeds the sub-environments of a :class:`~gymnasium.vector.SyncVectorEnv` (``seed + i``), so its
trajectory equals, step for step, that of a single :class:`MovieLensRecEnv` with the same seed.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ..blas import single_threaded_blas
from ..checks import episode_length, positive_int
from ..errors import ArgumentError, InvalidActionError
from ..simulator.scoring import action_direction, best_slates, real_actions
from ..simulator.world import POSITIVE_RATING
from ..storage import require_memory
from .env import check_options
from .info import batch_info
from .observation import ObservationBuilder
from .setup import EnvConfig, EnvSetup, UsesSetup


def _autoreset_mode(value: AutoresetMode | str) -> AutoresetMode:
    try:
        return AutoresetMode(value)
    except ValueError:
        allowed = ", ".join(repr(mode.value) for mode in AutoresetMode)
        raise ArgumentError(
            f"autoreset_mode={value!r} is not valid; allowed values: {allowed}"
        ) from None


class MovieLensRecVectorEnv(VectorEnv, UsesSetup):
    """``num_envs`` independent MovieLensRec episodes stepped as one batch.

    ``gym.make_vec("MovieLensRec-v0", num_envs=N)`` returns it (the registered
    ``vector_entry_point``); every keyword of :class:`MovieLensRecEnv` is accepted, except
    ``render_mode``. The observation, action, reward, termination and info of sub-environment
    ``i`` are row ``i`` of the batched ones (infos are dicts of arrays with ``_key`` masks, as in
    Gymnasium's vector envs, with the single env's keys at reset and at every step:
    :mod:`movielens_env.envs.info`; rewards are float64).

    Args:
        num_envs: number of sub-environments (users stepped at once).
        max_episode_steps: truncate each episode after this many steps (``None``: never; the
            registered env uses 10, as ``gym.make`` does).
        autoreset_mode: ``"NextStep"`` (default, Gymnasium's default: the step after an episode
            ends resets that sub-environment, ignoring its action, with reward 0),
            ``"SameStep"`` (reset within the ending step; the last observation and info are in
            ``info["final_obs"]`` and ``info["final_info"]``) or ``"Disabled"`` (call
            ``reset(options={"reset_mask": mask})`` yourself).
        **env_kwargs: the single env's arguments (``dataset``, ``split``, ``history_len``, ...).

    ``reset(seed=s)`` seeds sub-environment ``i`` with ``s + i`` (or ``seed[i]`` for a list);
    ``options={"user_id": raw}`` starts every reset sub-environment with that user, or row ``i``
    of an array of ``num_envs`` raw ids; ``options={"reset_mask": mask}`` resets only some.
    """

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **env_kwargs: Any,
    ) -> None:
        num_envs = positive_int("num_envs", num_envs)
        if max_episode_steps is not None and (
            isinstance(max_episode_steps, bool)
            or not isinstance(max_episode_steps, (int, np.integer))
            or max_episode_steps < 1
        ):
            raise ArgumentError(
                f"max_episode_steps must be None or an integer >= 1, got {max_episode_steps!r}"
            )
        if max_episode_steps is not None:
            episode_length(max_episode_steps)
        if env_kwargs.get("render_mode") is not None:
            raise ArgumentError(
                "the vector env does not render; render a single env "
                "(gym.make('MovieLensRec-v0', render_mode='ansi'))"
            )
        setup = EnvSetup(EnvConfig.of(**env_kwargs))
        _check_fits(num_envs, setup)
        self._adopt(setup)
        self.num_envs = num_envs
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.metadata = {"autoreset_mode": self.autoreset_mode}
        self.single_observation_space = setup.observation_space
        self.single_action_space = setup.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        n, n_items = self.num_envs, self.world.dataset.n_items
        self._rngs: list[np.random.Generator | None] = [None] * n
        self._state = self.user_model.start(np.full(n, -1, dtype=np.int64))  # -1: not started
        self._history = np.zeros((n, self.history_len), dtype=np.int64)
        self._blocked = np.ones((n, n_items), dtype=bool)  # True: may not be recommended now
        self._n_available = np.zeros(n, dtype=np.int64)
        self._steps = np.zeros(n, dtype=np.int64)
        self._autoreset = np.zeros(n, dtype=bool)
        self._rows = np.arange(n)
        self._scores: np.ndarray | None = None

    @property
    def _users(self) -> np.ndarray:
        """Each sub-environment's internal user id (-1 before its first reset)."""
        return self._state.users

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every sub-environment (or those in ``options["reset_mask"]``)."""
        check_options(options, ("user_id", "reset_mask"))
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is None:
            rows = self._rows
        else:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_ or not mask.any():
                raise ArgumentError(
                    f"options['reset_mask'] must be a bool array of shape ({self.num_envs},) "
                    f"with at least one True, got {mask!r}"
                )
            rows = np.flatnonzero(mask)
        seeds = self._seeds(seed)
        for row in rows:
            if seeds[row] is not None or self._rngs[row] is None:
                self._rngs[row] = seeding.np_random(seeds[row])[0]
        users = self._chosen_users(rows, options.get("user_id"))
        info = self._start(rows, users)
        return self._observation(), info

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Recommend, for every sub-environment, the slate its action scores best."""
        actions = self._check_actions(actions)
        if self.autoreset_mode == AutoresetMode.DISABLED and self._autoreset.any():
            raise gym.error.ResetNeeded(
                f"sub-environments {np.flatnonzero(self._autoreset).tolist()} have ended and "
                "autoreset is disabled: call reset(options={'reset_mask': mask}) first"
            )
        rewards = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        resetting = self._autoreset if self.autoreset_mode == AutoresetMode.NEXT_STEP else None
        if resetting is not None and resetting.any():
            stepping = np.flatnonzero(~resetting)
            reset_rows = np.flatnonzero(resetting)
        else:
            stepping, reset_rows = self._rows, None
        info: dict[str, Any] = {}
        if len(stepping):
            info = self._step_rows(stepping, actions, rewards, terminated, truncated)
        if reset_rows is not None:
            _merge_info(info, self._start(reset_rows, self._chosen_users(reset_rows, None)))
        ended = terminated | truncated
        if self.autoreset_mode == AutoresetMode.SAME_STEP and ended.any():
            done = np.flatnonzero(ended)
            final_obs = np.full(self.num_envs, None, dtype=object)
            observations = self._observation()
            for row in done:
                final_obs[row] = ObservationBuilder.row(observations, int(row))
            final_info = {key: value.copy() for key, value in info.items()}
            # As in SyncVectorEnv: an ended row's step info moves to final_info, its top-level
            # info becomes that of the episode that starts in its place.
            for key in [k for k in info if k.startswith("_")]:
                final_info[key] &= ended
                info[key] &= ~ended
            info["final_obs"], info["_final_obs"] = final_obs, ended.copy()
            info["final_info"], info["_final_info"] = final_info, ended.copy()
            _merge_info(info, self._start(done, self._chosen_users(done, None)))
            ended = np.zeros_like(ended)  # those rows have already started a new episode
        self._autoreset = ended
        return self._observation(), rewards, terminated, truncated, info

    def state_dict(self) -> dict[str, Any]:
        """Every sub-environment's episode and random state, as arrays and plain values.

        With :meth:`load_state_dict`, a training run can stop and later continue exactly
        (the masks are bit-packed: a few KB per sub-environment even on ML-25M).
        """
        state = self._state
        return {
            "users": self._users.copy(),
            **{
                name: getattr(state, name).copy()
                for name in _STATE_ARRAYS
                if getattr(state, name) is not None
            },
            "history": self._history.copy(),
            "blocked": np.packbits(self._blocked, axis=1),
            "n_available": self._n_available.copy(),
            "steps": self._steps.copy(),
            "autoreset": self._autoreset.copy(),
            "rngs": [None if rng is None else rng.bit_generator.state for rng in self._rngs],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (from a vector env of the same shape)."""
        n, n_items = self._blocked.shape
        users = np.asarray(state["users"], dtype=np.int64)
        if users.shape != (n,) or len(state["rngs"]) != n:
            raise ArgumentError(
                f"the saved state holds {users.shape[0]} sub-environments, this env {n}"
            )
        blocked = np.unpackbits(np.asarray(state["blocked"], dtype=np.uint8), axis=1)
        if blocked.shape[1] < n_items or np.asarray(state["history"]).shape != self._history.shape:
            raise ArgumentError("the saved state was made with another catalogue or history_len")
        self._users[:] = users
        for name in _STATE_ARRAYS:
            mine = getattr(self._state, name)
            if (mine is None) != (name not in state):
                raise ArgumentError(f"the saved state was made with another user model ({name})")
            if mine is not None:
                mine[:] = state[name]
        self._history[:] = state["history"]
        self._blocked[:] = blocked[:, :n_items].astype(bool)
        self._n_available[:] = state["n_available"]
        self._steps[:] = state["steps"]
        self._autoreset[:] = state["autoreset"]
        self._rngs = [None if saved is None else _generator(saved) for saved in state["rngs"]]

    def close_extras(self, **kwargs: Any) -> None:
        """Nothing to release: the world is shared and lives as long as the process."""

    # ------------------------------------------------------------------ episodes
    def _seeds(self, seed: int | list[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer, list)):
            raise ArgumentError(
                f"seed must be an int, None or a list of {self.num_envs} seeds, got {seed!r}"
            )
        if isinstance(seed, (int, np.integer)):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ArgumentError(
                f"seed must be an int, None or a list of {self.num_envs} seeds, "
                f"got {len(seeds)} seeds"
            )
        return seeds

    def _chosen_users(self, rows: np.ndarray, raw_ids: Any) -> np.ndarray:
        if raw_ids is None:
            eligible = self.eligible_users
            # One draw per sub-environment from its own generator, as a single env draws.
            return np.array(
                [eligible[self._rngs[row].integers(len(eligible))] for row in rows], dtype=np.int64
            )
        raw = np.asarray(raw_ids, dtype=object)
        if raw.ndim == 0:
            raw = np.full(self.num_envs, raw)
        if raw.shape != (self.num_envs,):
            raise ArgumentError(
                f"options['user_id'] must be one raw id or {self.num_envs} of them, "
                f"got shape {raw.shape}"
            )
        return np.array([self.setup.user_from_raw(r) for r in raw[rows]], dtype=np.int64)

    def _start(self, rows: np.ndarray, users: np.ndarray) -> dict[str, Any]:
        """Begin new episodes in ``rows`` for ``users``; the reset info."""
        h = self.history_len
        history = self.setup.initial_history(users)
        self._state.assign(rows, self.user_model.start(users))
        self._history[rows] = history
        self._steps[rows] = 0
        self._autoreset[rows] = False
        blocked = self._blocked
        if self.candidates == "all":
            blocked[rows] = False
            self._n_available[rows] = self.world.dataset.n_items - h
        else:
            blocked[rows] = True
            pool = self.user_model.pool
            counts = pool.counts[users]
            starts = pool.indptr[users]
            owner = np.repeat(rows, counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            blocked[owner, pool.items[np.repeat(starts, counts) + offsets]] = False
            # In train the pool is the train row minus the history, which it contains.
            self._n_available[rows] = counts - (h if self.split == "train" else 0)
        blocked[rows[:, None], history] = True
        info = batch_info(self.world.dataset, users, history, slate_size=self.slate_size)
        return _row_info(self.num_envs, rows, info)

    def _step_rows(
        self,
        rows: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> dict[str, Any]:
        all_rows = len(rows) == self.num_envs
        act = actions if all_rows else actions[rows]
        blocked = self._blocked if all_rows else self._blocked[rows]
        users = self._users[rows]
        vectors = self.vectors
        with single_threaded_blas():
            coarse = np.matmul(act, vectors.items.T, out=self._scores_buffer(len(rows)))
        np.copyto(coarse, -np.inf, where=blocked)
        slates = best_slates(coarse, act, vectors.items64, self.slate_size, vectors.bound)
        state = self._state if all_rows else self._state.rows(rows)
        response = self.user_model.respond(state, slates)
        if not all_rows:
            self._state.assign(rows, state)
        ratings = response.ratings
        rewards[rows] = response.rewards
        self._blocked[rows[:, None], slates] = True
        self._n_available[rows] -= self.slate_size
        hits = ratings >= POSITIVE_RATING  # NaN (unrated) compares False
        self._push_history(rows, slates, hits)
        self._steps[rows] += 1
        terminated[rows] = (self._n_available[rows] < self.slate_size) | response.left
        if self.max_episode_steps is not None:
            truncated[rows] = self._steps[rows] >= self.max_episode_steps
        info = batch_info(
            self.world.dataset, users, self._history[rows], slates, ratings, response.logged
        )
        return _row_info(self.num_envs, rows, info)

    def _scores_buffer(self, n: int) -> np.ndarray:
        """Reused (n, n_items) float32 scores: allocating them every step costs page faults."""
        if self._scores is None or self._scores.shape[0] < n:
            self._scores = np.empty((self.num_envs, self.world.dataset.n_items), np.float32)
        return self._scores[:n]

    def _push_history(self, rows: np.ndarray, slates: np.ndarray, hits: np.ndarray) -> None:
        """Append each row's liked slate items to its history, first in, first out."""
        liked = hits.any(axis=1)
        if not liked.any():
            return
        rows, slates, hits = rows[liked], slates[liked], hits[liked]
        h = self.history_len
        combined = np.concatenate([self._history[rows], slates], axis=1)
        keep = np.concatenate([np.ones((len(rows), h), dtype=bool), hits], axis=1)
        # A stable sort moves the dropped entries to the front, keeping the order of the rest.
        order = np.argsort(keep, axis=1, kind="stable")[:, -h:]
        self._history[rows] = np.take_along_axis(combined, order, axis=1)

    # ------------------------------------------------------------------ helpers
    def _check_actions(self, actions: Any) -> np.ndarray:
        array = np.asarray(actions)
        if array.shape != self.action_space.shape:
            raise InvalidActionError(
                f"actions must have shape {self.action_space.shape} (num_envs, embedding_dim), "
                f"got {array.shape}"
            )
        array = real_actions(array)
        bad = ~np.isfinite(array).all(axis=1) | ~array.any(axis=1)
        if bad.any():
            raise InvalidActionError(
                f"actions of sub-environments {np.flatnonzero(bad).tolist()} contain NaN or inf, "
                "or are all zeros (no direction to rank by)"
            )
        if (self._users < 0).any():
            raise gym.error.ResetNeeded("call reset() before step(): no episode has started")
        return action_direction(array)

    def _observation(self) -> Any:
        return self.observe(self._state, self._history)


def _check_fits(num_envs: int, setup: EnvSetup) -> None:
    """Refuse more sub-environments than memory holds. Each keeps catalogue-wide masks and a row
    of float32 scores (8 bytes per item: 5 counted, 7 measured with a step's temporaries at
    num_envs=1,000,000), its observation (float32, about 4 copies in a step: history_len=50
    passed a 0.8 GB estimate at 5.8 GB) and its slate's exact re-scoring (float64 vectors of the
    shortlist, slate_size of them at least)."""
    n_items = setup.world.dataset.n_items
    obs = gym.spaces.flatdim(setup.observation_space)
    dim = setup.vectors.dim
    per_env = n_items * 8 + obs * 16 + setup.config.slate_size * dim * 16
    require_memory(
        num_envs * per_env, f"num_envs={num_envs:,} ({n_items:,} items, {obs:,}-float "
        f"observations, slates of {setup.config.slate_size} each)",
        lambda available: available // per_env, ArgumentError,
    )  # fmt: skip


# The user-state arrays a checkpoint of the vector env holds (those the user model uses).
_STATE_ARRAYS = ("satiation", "taste", "patience")


def _generator(state: dict[str, Any]) -> np.random.Generator:
    """A generator in the saved bit-generator state (PCG64, as Gymnasium seeds them)."""
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = state
    return rng


def _row_info(num_envs: int, rows: np.ndarray, values: dict[str, np.ndarray]) -> dict[str, Any]:
    """Gymnasium's vector info: each key an array over all sub-environments, plus its mask."""
    mask = np.zeros(num_envs, dtype=bool)
    mask[rows] = True
    info: dict[str, Any] = {}
    for key, value in values.items():
        if len(rows) == num_envs:
            full = value
        else:
            full = np.zeros((num_envs, *value.shape[1:]), dtype=value.dtype)
            full[rows] = value
        info[key], info[f"_{key}"] = full, mask.copy()
    return info


def _merge_info(info: dict[str, Any], other: dict[str, Any]) -> None:
    """Add the rows of ``other`` (disjoint from those already in ``info``) into ``info``."""
    for key, value in other.items():
        if key.startswith("_"):
            continue
        mask = other[f"_{key}"]
        if key not in info:
            info[key], info[f"_{key}"] = value, mask
            continue
        info[key][mask] = value[mask]
        info[f"_{key}"] = info[f"_{key}"] | mask
