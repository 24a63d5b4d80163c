"""The DRR agent: actor-critic with explicit user-item state representations (DDPG-style)."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from movielens_env import ENV_ID, MovieLensRecEnv
from movielens_env.errors import ArgumentError
from movielens_env.storage import require_memory

from ..fields import ConfigError, check_training_cost
from ..run_folder import env_shapes
from .catalogue import ItemCatalogue, RecommendedItem
from .checkpoint import to_numpy, to_torch
from .config import DRRConfig
from .lookahead import Lookahead
from .model import ObservationModel
from .networks import Actor, Critic, unit
from .refine import ItemRefiner
from .replay import PrioritizedReplay
from .state import state_dim

MODEL_EVERY = 250  # gradient steps between fits of the lookahead's observation model
MODEL_ROWS = 5_000  # the latest transitions each fit reads (the dynamics do not change)


@dataclass(frozen=True)
class UpdateStats:
    """What one gradient step did."""

    critic_loss: float
    actor_loss: float
    mean_q: float
    td_error: float  # mean absolute TD error of the batch


def _soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t.mul_(1.0 - tau).add_(s, alpha=tau)


def _check_replay_fits(capacity: int, obs_dim: int, dim: int) -> None:
    """Refuse a replay buffer larger than the memory left, before it fills up and the process is
    killed hours into a run (numpy reserves its arrays lazily)."""
    needed = capacity * (2 * obs_dim + dim + 2) * 4 + 2 * 2 * capacity * 8  # arrays + sum tree
    require_memory(
        needed, f"DRRConfig.buffer_size={capacity:,} (observations of {obs_dim} floats)",
        lambda available: int(capacity * available / needed), ConfigError,
    )  # fmt: skip


def check_fits(config: DRRConfig, dim: int, history_len: int, obs_dim: int) -> None:
    """Refuse networks too slow or large to train, and a replay beyond the memory left, for
    observations of ``obs_dim`` floats holding the user and ``history_len`` vectors of ``dim``.

    Raises:
        ArgumentError: ``obs_dim`` too short for those vectors.
        ConfigError: as :func:`~agents.fields.check_training_cost`, or the replay's memory.
    """
    context = obs_dim - (history_len + 1) * dim
    if context < 0:
        raise ArgumentError(
            f"obs_dim={obs_dim} is shorter than the user and {history_len} history vectors "
            f"of length {dim}"
        )
    actions = 2 * dim if config.critic_user_product else dim
    if config.critic_recommended_item:  # genres: <= context
        actions += (dim + context) * (2 if config.critic_item_features else 1)
    check_training_cost(
        "DRRConfig", "hidden, num_envs or updates_per_step", config.batch_size,
        (config.hidden, config.hidden),
        state_dim(config.state, dim, history_len) + context + actions,
        config.num_envs * config.updates_per_step,
    )  # fmt: skip
    _check_replay_fits(config.buffer_size, obs_dim, dim)


def check_env_fits(config: DRRConfig, env_kwargs: dict[str, Any]) -> None:
    """:func:`check_fits` on the env ``env_kwargs`` make (the artefact's ``fits``)."""
    env = gym.make(ENV_ID, **env_kwargs)
    try:
        shapes = env_shapes(cast(MovieLensRecEnv, env.unwrapped))
    finally:
        env.close()
    check_fits(config, shapes["dim"], shapes["history_len"], shapes["obs_dim"])


def _catalogue(
    config: DRRConfig, items: np.ndarray | None, dim: int, history_len: int
) -> ItemCatalogue | None:
    """The env's items where ``config`` reads them (refinement, the recommended-item critic),
    refused, with the field named, without them; ``None`` where nothing reads them."""
    readers = []
    if config.refine_k:
        readers.append(f"DRRConfig.refine_k={config.refine_k} chooses among the env's item vectors")
    if config.critic_recommended_item:
        readers.append(
            f"DRRConfig.critic_input={config.critic_input!r} reads the item each action recommends"
        )
    if not readers:
        return None
    if items is None or np.shape(items)[1:] != (dim,):
        raise ArgumentError(
            f"{' and '.join(readers)}: give DRRAgent items=env.unwrapped.vectors.items, "
            f"(n_items, {dim})"
        )
    return ItemCatalogue(items, history_len)


def _genres(
    where: str, does: str, catalogue: ItemCatalogue, genres: np.ndarray | None, context: int
) -> np.ndarray:
    """``genres`` for the field ``where``, which ``does`` something with them: refused
    unless ``(n_items, n_genres)`` (none without boredom) with a satiation in the observation
    as long as the genres (the ``context`` values after the vectors)."""
    if genres is None or np.ndim(genres) != 2 or len(genres) != catalogue.n_items:
        raise ArgumentError(
            f"{where} {does}: give DRRAgent item_genres=env.unwrapped.user_model.weights, "
            f"({catalogue.n_items}, n_genres); got {None if genres is None else np.shape(genres)}"
        )
    if np.shape(genres)[1] > context:
        raise ArgumentError(
            f"{where} weighs {np.shape(genres)[1]} genres by the observed satiation, but the "
            f"observations have {context} values after the vectors: a user model with boredom "
            "has one per genre"
        )
    return genres


def _recommended_item(
    config: DRRConfig, catalogue: ItemCatalogue, genres: np.ndarray | None, context: int
) -> RecommendedItem:
    """The critic's recommended-item input, refused without fitting genres (:func:`_genres`)."""
    where = f"DRRConfig.critic_input={config.critic_input!r}"
    does = "reads the genres of the item each action recommends"
    genres = _genres(where, does, catalogue, genres, context)
    return RecommendedItem(catalogue, genres, config.critic_item_features)


def _observation_model(
    catalogue: ItemCatalogue, genres: np.ndarray | None, context: int
) -> ObservationModel:
    """The lookahead's model of the next observation, refused without fitting genres."""
    does = "predicts the satiation each item leaves"
    genres = _genres("DRRConfig.lookahead", does, catalogue, genres, context)
    weights = torch.from_numpy(np.ascontiguousarray(genres, dtype=np.float32))
    return ObservationModel(catalogue.items, weights, catalogue.history_len, context)


class DRRAgent:
    """Actor, critic, their targets, optimisers, replay and exploration noise.

    Args:
        config: hyper-parameters.
        dim: length of the env's vectors (the action's length).
        history_len: items in the observed history.
        seed: seeds network initialisation (torch), exploration noise and replay sampling.
        obs_dim: length of the flat observation; what follows the user and history vectors
            (the user's satiation and patience) is read as context. Default: nothing follows.
        items: ``(n_items, dim)`` the env's item vectors; needed (only) with
            ``config.refine_k``, which chooses among them, and with the critic input
            ``recommended-item``.
        item_genres: ``(n_items, n_genres)`` the items' genre weights
            (``env.unwrapped.user_model.weights``; no columns without ``boredom``); needed
            (only) with the critic input ``recommended-item`` and with ``config.lookahead``.
        episode_items: the most items an episode recommends (its steps times the slate
            size); needed (only) with ``config.refine_exclude="history+shown"``, whose replay
            keeps them per transition, so that the bootstrap target skips them too.
    """

    def __init__(
        self, config: DRRConfig, dim: int, history_len: int, seed: int,
        obs_dim: int | None = None, items: np.ndarray | None = None,
        item_genres: np.ndarray | None = None, episode_items: int = 0,
    ) -> None:  # fmt: skip
        self.config, self.dim, self.history_len = config, dim, history_len
        obs_dim = (history_len + 1) * dim if obs_dim is None else obs_dim
        # Before any network is built: one too large would take the memory it is refused for.
        check_fits(config, dim, history_len, obs_dim)
        self.obs_dim = obs_dim
        context = obs_dim - (history_len + 1) * dim
        torch.manual_seed(seed)
        self.actor = Actor(
            config.state, dim, history_len, config.hidden, context, config.action_head
        )
        catalogue = _catalogue(config, items, dim, history_len)
        features = None
        if catalogue is not None and config.critic_recommended_item:
            features = _recommended_item(config, catalogue, item_genres, context)
        self.critic = Critic(
            config.state, dim, history_len, config.hidden, context, config.critic_user_product,
            features, config.gamma if config.critic_heads == "reward+future" else None,
            config.critic_wide,
        )  # fmt: skip
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optimizer = torch.optim.Adam(
            self.actor.parameters(), lr=config.actor_lr, weight_decay=config.weight_decay
        )
        self.critic_optimizer = torch.optim.Adam(
            self.critic.parameters(), lr=config.critic_lr, weight_decay=config.weight_decay
        )
        if config.remembers_shown and episode_items < 1:
            raise ArgumentError(
                f"DRRConfig.refine_exclude={config.refine_exclude!r} keeps the items each "
                "episode recommended: give DRRAgent episode_items=max_episode_steps * "
                f"slate_size, got {episode_items}"
            )
        self.replay = PrioritizedReplay(
            config.buffer_size, self.obs_dim, dim, config.per_alpha, config.per_eps,
            episode_items if config.remembers_shown else 0, config.n_step > 1,
        )  # fmt: skip
        self.refiner: ItemRefiner | None = None
        if catalogue is not None and config.refine_k:
            self.refiner = ItemRefiner(catalogue, config.refine_k, features is not None)
        self.item_genres = item_genres
        self.lookahead: Lookahead | None = None
        if config.lookahead:
            self.lookahead = self._lookahead(config.lookahead)
        self.rng = np.random.default_rng(seed)
        self.noise_std = config.noise_std
        self.episodes = 0
        self.updates = 0

    # ------------------------------------------------------------------ acting
    def act(
        self, observations: np.ndarray, explore: bool, shown: np.ndarray | None = None
    ) -> np.ndarray:
        """Actions for a batch of flat observations; with ``explore``, plus decaying noise
        (per component with the ``tanh`` head; with the unit heads, of typical length
        ``noise_std`` relative to the unit action, and the noisy action is a unit vector too, so
        the critic only ever reads directions). With ``refine_k``, the noisy action is the
        proto-action the critic's choice of item starts from, and ``shown``
        ``(batch, n_items)``, where ``config.refine_exclude`` asks for it, marks the items
        each row's episode has recommended, which it never chooses; with ``explore`` and
        ``config.refine_explore``, some rows play a random one of the candidates instead."""
        obs = torch.as_tensor(observations, dtype=torch.float32)
        with torch.no_grad():
            actions = self.actor(obs)
        if explore:
            unit_head = self.config.action_head != "tanh"
            std = self.noise_std / np.sqrt(self.dim) if unit_head else self.noise_std
            noise = torch.as_tensor(self.rng.normal(0.0, std, tuple(actions.shape)))
            actions = actions + noise.to(actions.dtype)
            if unit_head:
                actions = unit(actions)
        if self.refiner is not None:
            mask = None
            if shown is not None and self.config.remembers_shown:
                mask = torch.as_tensor(shown, dtype=torch.bool)
            explore_items = self.config.refine_explore if explore else 0.0
            if self.lookahead is not None and self.lookahead.model.fitted:
                actions = self.lookahead.choose(
                    obs, actions, self.actor, self.critic, mask, explore_items, self.rng
                )
            else:
                actions = self.refiner.choose(
                    obs, actions, self.critic, mask, explore_items, self.rng
                )
        return np.clip(actions.numpy(), -1.0, 1.0).astype(np.float32)

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True):
        """SB3's signature: ``(action, state)`` for one observation or a batch of them.

        The state is ``None``, except with ``config.refine_exclude="history+shown"``: a
        ``(batch, n_items)`` bool array of the items the agent recommended in each row's
        episode so far, to pass back with the next step's observations (as SB3's recurrent
        policies' state); ``episode_start`` rows (all, without a state) begin anew.
        """
        obs = np.asarray(observation, dtype=np.float32)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        shown = self._shown(state, episode_start, len(batch))
        actions = self.act(batch, explore=not deterministic, shown=shown)
        if shown is not None:
            assert self.refiner is not None  # remembers_shown implies refine_k
            played = self.refiner.catalogue.recommended(
                torch.as_tensor(batch), torch.as_tensor(actions), torch.as_tensor(shown)
            )
            shown[np.arange(len(batch)), played.numpy()] = True
        return (actions[0] if single else actions), shown

    def _shown(self, state: Any, episode_start: Any, rows: int) -> np.ndarray | None:
        """The items each row's episode has recommended, from ``predict``'s ``state``."""
        if not self.config.remembers_shown:
            return None
        assert self.refiner is not None
        n_items = self.refiner.catalogue.n_items
        if state is None:
            return np.zeros((rows, n_items), dtype=bool)
        shown = np.array(state, dtype=bool)  # a copy: the caller's state is left as it was
        if shown.shape != (rows, n_items):
            raise ArgumentError(
                f"DRRAgent.predict: state must be the (batch, n_items) = ({rows}, {n_items}) "
                f"array a previous predict returned for this batch, got shape {shown.shape}"
            )
        if episode_start is not None:
            shown[np.asarray(episode_start, dtype=bool).reshape(rows)] = False
        return shown

    def end_episode(self) -> None:
        """Decay the exploration noise towards its floor."""
        self.episodes += 1
        self.noise_std = max(self.config.noise_floor, self.noise_std * self.config.noise_decay)

    # ------------------------------------------------------------------ learning
    def _critic_loss(self, batch, weights: torch.Tensor):
        obs = torch.as_tensor(batch.observations)
        with torch.no_grad():
            next_obs = torch.as_tensor(batch.next_observations)
            next_actions = self.actor_target(next_obs)
            if self.refiner is not None:  # the action the target policy would play
                double = self.config.refine_target == "double"
                chooser = self.critic if double else self.critic_target
                shown = None
                if batch.next_shown is not None:
                    shown = self.refiner.catalogue.mask_of(torch.as_tensor(batch.next_shown))
                next_actions = self.refiner.choose(next_obs, next_actions, chooser, shown)
            rewards = torch.as_tensor(batch.rewards)
            next_value = (1.0 - torch.as_tensor(batch.dones)) * self.critic_target(
                next_obs, next_actions
            )
            if batch.later is not None and batch.steps is not None:  # n-step transitions
                spanned = torch.as_tensor(batch.steps - 1, dtype=next_value.dtype)
                next_value = torch.as_tensor(batch.later) + self.config.gamma**spanned * next_value
            target = rewards + self.config.gamma * next_value
        first, future = self.critic.heads(obs, torch.as_tensor(batch.actions))
        if future is None:
            td_error = target - first
            return (weights * td_error.pow(2)).mean(), td_error.detach(), first.detach()
        # Each head against its own part of the target; their sum's error sets the priority.
        q = self.critic.value(first, future)
        loss = (weights * ((rewards - first).pow(2) + (next_value - future).pow(2))).mean()
        return loss, (target - q).detach(), q.detach()

    def _actor_loss(self, obs: torch.Tensor, replayed: torch.Tensor) -> torch.Tensor:
        # The deterministic policy gradient is taken at the actor's own action mu(s), never at
        # the replayed (noisy, stale) action; only the imitation term reads that one.
        actions = self.actor(obs)
        loss = -self.critic(obs, actions).mean()
        if self.config.actor_imitation:
            loss = loss + self.config.actor_imitation * (actions - replayed).pow(2).sum(1).mean()
        return loss

    def update(self, beta: float) -> UpdateStats:
        """One gradient step of critic and actor on a prioritized batch; soft target updates;
        with ``config.lookahead``, every ``MODEL_EVERY`` steps (the first included) a fit of
        the observation model to the latest transitions."""
        if self.lookahead is not None and self.updates % MODEL_EVERY == 0:
            self._fit_model()
        batch = self.replay.sample(self.config.batch_size, beta, self.rng)
        weights = torch.as_tensor(batch.weights)
        critic_loss, td_error, q = self._critic_loss(batch, weights)
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()

        actor_loss = self._actor_loss(
            torch.as_tensor(batch.observations), torch.as_tensor(batch.actions)
        )
        self.actor_optimizer.zero_grad()
        actor_loss.backward()
        self.actor_optimizer.step()

        _soft_update(self.critic_target, self.critic, self.config.tau)
        _soft_update(self.actor_target, self.actor, self.config.tau)
        self.replay.update_priorities(batch.indices, td_error.numpy())
        self.updates += 1
        return UpdateStats(
            critic_loss.item(), actor_loss.item(), q.mean().item(), td_error.abs().mean().item()
        )

    def _lookahead(self, discount: float) -> Lookahead:
        assert self.refiner is not None  # DRRConfig refuses a lookahead without refine_k
        context = self.obs_dim - (self.history_len + 1) * self.dim
        model = _observation_model(self.refiner.catalogue, self.item_genres, context)
        return Lookahead(self.refiner, model, discount, self.config.model_candidates)

    def plan_ahead(self, discount: float, model_candidates: int | None = None) -> None:
        """Choose by the lookahead at ``discount`` from now on (``config.lookahead``; 0: by the
        critic's ``Q`` again), its model fit to the replay now: how a run trained without the
        lookahead decides with it. ``model_candidates`` sets ``config.model_candidates`` (by
        default the config's; always 0 at ``discount`` 0).

        Raises:
            ConfigError: the config cannot look ahead (it needs ``refine_k`` and the
                ``reward+future`` critic), ``discount`` is outside [0, 1], or
                ``model_candidates`` outside [0, ``refine_k``].
        """
        proposed = self.config.model_candidates if model_candidates is None else model_candidates
        self.config = dataclasses.replace(
            self.config, lookahead=discount, model_candidates=proposed if discount else 0
        )
        self.lookahead = self._lookahead(discount) if discount else None
        if self.lookahead is not None:
            self._fit_model()

    def _fit_model(self) -> None:
        """Fit the lookahead's model to the replay's latest ``MODEL_ROWS`` transitions."""
        assert self.lookahead is not None
        replay, catalogue = self.replay, self.lookahead.refiner.catalogue
        count = min(len(replay), MODEL_ROWS)
        rows = (replay.position - count + np.arange(count)) % replay.capacity
        obs = replay.observations[rows]
        picks = np.concatenate([
            catalogue.recommended(torch.as_tensor(part), torch.as_tensor(acted)).numpy()
            for part, acted in zip(
                np.array_split(obs, max(1, count // 1024)),
                np.array_split(replay.actions[rows], max(1, count // 1024)), strict=True,
            )
        ])  # fmt: skip
        self.lookahead.model.fit(obs, picks, replay.rewards[rows], replay.next_observations[rows])

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict:
        """Everything needed to resume exactly: weights, optimisers, replay, noise, RNG states."""
        replay = to_torch(self.replay.state_dict())
        state = {
            "actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "replay": replay, "noise_std": self.noise_std, "episodes": self.episodes,
            "updates": self.updates, "numpy_rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }  # fmt: skip
        if self.lookahead is not None:
            state["model"] = self.lookahead.model.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s content (shapes are checked by torch and the replay)."""
        for name in ("actor", "critic", "actor_target", "critic_target"):
            getattr(self, name).load_state_dict(state[name])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.replay.load_state_dict(to_numpy(state["replay"]))
        self.noise_std, self.episodes = float(state["noise_std"]), int(state["episodes"])
        self.updates = int(state["updates"])
        self.rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        if self.lookahead is not None:
            self.lookahead.model.load_state_dict(state["model"])
