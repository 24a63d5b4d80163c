"""DRR's hyper-parameters, saved as JSON beside the weights so a checkpoint can rebuild itself."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from movielens_env.errors import ArgumentError

from ..fields import Bound, ConfigError, check_choice, check_fields, check_training_cost

STATE_REPRESENTATIONS = ("drr-ave", "drr-u", "drr-p", "drr-n")
ACTION_HEADS = ("tanh", "unit", "user-residual")
REFINE_TARGETS = ("target", "double")
REFINE_EXCLUDES = ("history", "history+shown")
CRITIC_HEADS = ("q", "reward+future")
CRITIC_INPUTS = (
    "action",
    "action+user-product",
    "action+user-product+recommended-item",
    "action+user-product+recommended-item+item-features",
)
_BIG = 1_000_000_000
# Hard limits, wider than the typical ranges in the docstring: beyond them a value is a slip
# (num_envs=100000 meant 100,000 gradient steps per collected batch: a run that seemed hung).
BOUNDS = {
    "hidden": Bound(int, 1, 8192),
    "actor_lr": Bound(float, 0.0, 1.0, low_open=True),
    "critic_lr": Bound(float, 0.0, 1.0, low_open=True),
    "weight_decay": Bound(float, 0.0, 1.0),
    "gamma": Bound(float, 0.0, 1.0, high_open=True),
    "tau": Bound(float, 0.0, 1.0, low_open=True),
    "batch_size": Bound(int, 1, 65_536),
    "buffer_size": Bound(int, 1, 10_000_000),
    "learning_starts": Bound(int, 1, _BIG),
    "updates_per_step": Bound(int, 1, 64),
    "num_envs": Bound(int, 1, 1024),
    "per_alpha": Bound(float, 0.0, 1.0),
    "per_beta": Bound(float, 0.0, 1.0),
    "per_eps": Bound(float, 0.0, 1.0, low_open=True),
    "noise_std": Bound(float, 0.0, 10.0),
    "noise_decay": Bound(float, 0.0, 1.0, low_open=True),
    "noise_floor": Bound(float, 0.0, 10.0),
    "refine_k": Bound(int, 0, 1024),
    "n_step": Bound(int, 1, 64),
    "refine_explore": Bound(float, 0.0, 1.0),
    "lookahead": Bound(float, 0.0, 1.0),
    "model_candidates": Bound(int, 0, 1024),
    "actor_imitation": Bound(float, 0.0, 100.0),
    "eval_every": Bound(int, 0, _BIG),
    "checkpoint_every": Bound(int, 0, _BIG),
}
# Gradient steps per collected batch (num_envs * updates_per_step): each field in its bounds
# still allowed 1024 * 64 = 65,536 of them, half an hour for one episode.
MAX_UPDATES_PER_BATCH = 1024
# Fields added after results were first stored: DRRConfig.to_dict leaves each out at its
# default, so the stored results keep their keys.
LATER_FIELDS = (
    "refine_k", "refine_explore", "refine_target", "refine_exclude", "critic_input",
    "critic_heads", "critic_wide", "n_step", "lookahead", "model_candidates", "actor_imitation",
)  # fmt: skip


@dataclass(frozen=True)
class DRRConfig:
    """Every DRR hyper-parameter, with its effect and typical range.

    Attributes:
        state: state representation: ``drr-ave`` (weighted average pooling, then
            [u, u * pooled, pooled]), ``drr-u`` (user-item and item-item products), ``drr-p``
            (items and item-item products), ``drr-n`` (items concatenated).
        action_head: how the actor's output becomes the action: ``tanh`` (the paper's, in
            ``[-1, 1]^D``; it saturates to the box's corners), ``unit`` (a unit vector), or
            ``user-residual`` (the observed user vector plus a learned correction, as a unit
            vector; it starts out ranking as MF does). See the README's DRR section.
        hidden: width of the two hidden layers of actor and critic (64 to 512).
        actor_lr: Adam step size of the actor and its state module (1e-5 to 1e-3; the paper's
            head learns at 1e-4, the residual head keeps closer to MF at 1e-5).
        critic_lr: Adam step size of the critic and its state module (1e-4 to 1e-2).
        weight_decay: L2 penalty of both optimisers (0 to 1e-4).
        gamma: discount; episodes last 10 steps in the paper, so 0.9 looks ~10 steps ahead.
        tau: soft target-update rate per gradient step (0.001 to 0.01).
        batch_size: transitions per gradient step (32 to 256).
        buffer_size: replay capacity in transitions; each stores two observations.
        learning_starts: transitions collected before the first update (>= batch_size).
        updates_per_step: gradient steps per collected transition (1 is usual).
        num_envs: users stepped at once by the native vector env while collecting (1 to 64);
            it speeds up collection, not learning, and changes which users are drawn.
        per_alpha: how strongly priorities shape sampling (0 uniform, 1 proportional; ~0.6).
        per_beta: initial importance-sampling exponent, annealed to 1 over training (0.4).
        per_eps: added to |TD error| so no transition gets priority 0 (1e-6 to 1e-2).
        noise_std: initial std of the Gaussian exploration noise on the action (0.1 to 0.5): per
            component with the ``tanh`` head; with the unit heads the noise vector's typical
            length relative to the unit action (``noise_std / sqrt(D)`` per component).
        noise_decay: multiplicative decay of the noise std per episode (0.99 to 0.9999).
        noise_floor: smallest noise std, kept to the end (0 to 0.05).
        eval_every: episodes between evaluations on the test split during training.
        checkpoint_every: episodes between checkpoints (0: only at the end).
        refine_k: Wolpertinger refinement (``agents.drr.refine``): 0 plays the actor's action
            (the paper's); ``k`` > 0 re-scores the ``k`` items the actor's action ranks highest
            with the critic and plays the best one's vector (10 to 50; each action and each
            bootstrap target then costs ``k`` critic evaluations). Left out of ``to_dict`` at
            0, so configs without it keep their keys.
        refine_explore: with ``refine_k``, the probability that an exploring step plays one
            of the ``k`` candidates drawn uniformly instead of the critic's choice (0 to 0.3).
            The proto-action's noise rarely changes which candidate the critic picks, so
            without it the critic learns the other candidates' values only by generalising
            from the items it chose (epsilon-greedy over the candidates, as Dulac-Arnold et
            al.'s exploration in item space). Left out of ``to_dict`` at 0.
        refine_target: which critic chooses the item in the bootstrap target with
            ``refine_k``: ``target`` (Dulac-Arnold et al.'s: the target critic chooses and
            values it) or ``double`` (the online critic chooses, the target critic values it,
            as double Q-learning: a maximum over ``k`` noisy values overestimates). Left out of
            ``to_dict`` at ``target``.
        refine_exclude: the items refinement never chooses: ``history`` (the observed
            history's) or ``history+shown`` (also those the agent recommended earlier in the
            episode, which the env never recommends twice but the observation does not show:
            the agent remembers them, through SB3's ``predict`` ``state`` in evaluation, from
            the env's ``info`` in training, and per transition in the replay, so that the
            bootstrap target skips them too). Left out of ``to_dict`` at ``history``.
        critic_input: what the critic reads of the action besides the state: ``action`` (the
            paper's); ``action+user-product``, the action and its elementwise product with
            the observed user vector, whose sum is the MF score of the action (the user-item
            interaction DRR's state modules model, applied to the action); or
            ``action+user-product+recommended-item``, those and what the item the action
            makes the env recommend is to the user: its vector times the user's (their sum
            its MF score) and its genre weights times the observed satiation
            (``agents.drr.catalogue.RecommendedItem``; the agent needs the env's items and
            their genres); or ``action+user-product+recommended-item+item-features``, also
            the item's own vector and genre weights: where it moves the user's state (drift
            pulls the tastes toward its vector, boredom satiates its genres), which the
            value of the next state depends on. Left out of ``to_dict`` at ``action``.
        critic_heads: how the critic values an action: ``q``, one head fit to the bootstrapped
            target ``r + gamma * Q'`` (the paper's); or ``reward+future``,
            ``Q = r(s, a) + gamma * F(s, a)``, two heads on the same input, ``r`` fit by
            regression to the step's observed reward and ``F`` to the next state's value
            ``Q'(s', a')`` (zero at the end): the same fixed point, but the reward, most of
            what tells the items apart, is learned without the bootstrap's noise. Left out of
            ``to_dict`` at ``q``.
        critic_wide: the critic's first head (``Q``, or the reward with ``reward+future``)
            plus a linear function of the critic's input (Wide & Deep, Cheng et al. 2016): the
            reward is nearly linear in the ``recommended-item`` features, whose sums are the
            item's MF score and its satiation penalty. Left out of ``to_dict`` at ``False``.
        n_step: the rewards each bootstrap target sums before it bootstraps (1 to 10; 1 is
            the paper's one-step target): ``r_t + gamma r_{t+1} + ... + gamma^(n-1)
            r_{t+n-1} + gamma^n Q'(s_{t+n}, a')``, fewer where the episode ends first. Longer
            sums lean less on the critic's own (biased) estimate of what follows, at the cost
            of the rewards the exploring policy earned (Sutton & Barto, ch. 7; Rainbow). With
            ``reward+future`` the future head's target is that sum from ``r_{t+1}``. Left
            out of ``to_dict`` at 1.
        lookahead: 0 (the default) chooses among the candidates by the critic's ``Q``; ``d``
            > 0, with ``refine_k`` and ``reward+future``, by one step of planning on a learned
            model of the observation and reward (``agents.drr.lookahead``,
            ``agents.drr.model``): the model's reward of the item plus ``d`` times the value
            of the best candidate in the observation the model predicts after it (its model
            reward plus the critic's discounted future head), where the critic alone reads
            what follows the item from its bootstrapped future head. ``d`` is the expansion's
            own discount (the critic keeps ``gamma``; 1 weighs the next step as the
            undiscounted return does). Costs ``k`` times the critic evaluations of an action;
            the bootstrap target is unchanged. Left out of ``to_dict`` at 0.
        model_candidates: with ``lookahead``, how many of the ``refine_k`` candidates (at both
            of its steps) are the items the model's reward ranks highest over the whole
            catalogue, the actor's action proposing the rest (0, the default: the actor
            proposes all). The actor's ``k`` items are those nearest one direction in
            item-vector space, and under ``boredom`` the items the state calls for are not
            (the genres to avoid are not a direction): the model, linear in the item's MF
            score and satiation penalty, ranks every item in one matrix product. From 0 to
            ``refine_k``. Left out of ``to_dict`` at 0.
        actor_imitation: with ``refine_k``, the weight ``beta`` of a behaviour-cloning term
            in the actor's loss, ``-Q(s, mu(s)) + beta * |mu(s) - a|^2``, with ``a`` the
            replayed action: the vector of the item the agent chose among its candidates (as
            TD3+BC, Fujimoto and Gu 2021, and the policy targets of expert iteration). Where
            the critic's choice, or the lookahead's, or the model's candidates pick the items,
            the actor's gradient alone follows the critic into directions it never played;
            this pulls the actor toward the items that were chosen, so that its own
            candidates hold them (0 to 10; 0, the default, is the deterministic policy
            gradient alone, the paper's). Left out of ``to_dict`` at 0.
    """

    state: str = "drr-ave"
    action_head: str = "user-residual"
    hidden: int = 256
    actor_lr: float = 1e-5
    critic_lr: float = 1e-3
    weight_decay: float = 0.0
    gamma: float = 0.9
    tau: float = 0.01
    batch_size: int = 64
    buffer_size: int = 20_000
    learning_starts: int = 500
    updates_per_step: int = 1
    num_envs: int = 8
    per_alpha: float = 0.6
    per_beta: float = 0.4
    per_eps: float = 1e-3
    noise_std: float = 0.3
    noise_decay: float = 0.999
    noise_floor: float = 0.02
    eval_every: int = 500
    checkpoint_every: int = 500
    refine_k: int = 0
    refine_explore: float = 0.0
    refine_target: str = "target"
    refine_exclude: str = "history"
    critic_input: str = "action"
    critic_heads: str = "q"
    critic_wide: bool = False
    n_step: int = 1
    lookahead: float = 0.0
    model_candidates: int = 0
    actor_imitation: float = 0.0

    def __post_init__(self) -> None:
        check_choice(self, "state", STATE_REPRESENTATIONS)
        check_choice(self, "action_head", ACTION_HEADS)
        check_choice(self, "critic_input", CRITIC_INPUTS)
        check_choice(self, "critic_heads", CRITIC_HEADS)
        check_choice(self, "refine_target", REFINE_TARGETS)
        check_choice(self, "refine_exclude", REFINE_EXCLUDES)
        check_fields(self, BOUNDS)
        if not isinstance(self.critic_wide, bool):
            raise ConfigError(
                f"DRRConfig.critic_wide must be true or false, got {self.critic_wide!r}"
            )
        if self.lookahead and not (self.refine_k and self.critic_heads == "reward+future"):
            raise ConfigError(
                f"DRRConfig.lookahead ({self.lookahead}) plans among refine_k candidates up to "
                "the critic's future head: "
                f"it needs refine_k > 0 and critic_heads 'reward+future' (got refine_k "
                f"{self.refine_k}, critic_heads {self.critic_heads!r})"
            )
        if self.model_candidates and not (
            self.lookahead and self.model_candidates <= self.refine_k
        ):
            raise ConfigError(
                f"DRRConfig.model_candidates ({self.model_candidates}) are candidates of the "
                "lookahead's model: it needs lookahead > 0 and at most refine_k of them (got "
                f"lookahead {self.lookahead}, refine_k {self.refine_k})"
            )
        if self.actor_imitation and not self.refine_k:
            raise ConfigError(
                f"DRRConfig.actor_imitation ({self.actor_imitation}) pulls the actor toward "
                "the items refinement chose: it needs refine_k > 0 (without it the replayed "
                "action is the actor's own, plus noise)"
            )
        if self.num_envs * self.updates_per_step > MAX_UPDATES_PER_BATCH:
            raise ConfigError(
                f"DRRConfig.num_envs * updates_per_step ({self.num_envs} * "
                f"{self.updates_per_step} = {self.num_envs * self.updates_per_step:,} gradient "
                f"steps per collected batch) must be at most {MAX_UPDATES_PER_BATCH:,}"
            )
        check_training_cost(
            "DRRConfig", "hidden, num_envs or updates_per_step", self.batch_size,
            (self.hidden, self.hidden), 0, self.num_envs * self.updates_per_step,
        )  # fmt: skip
        if self.refine_explore and not self.refine_k:
            raise ConfigError(
                f"DRRConfig.refine_explore ({self.refine_explore}) draws among refine_k "
                "candidates: it needs refine_k > 0 (it would be ignored at 0)"
            )
        if self.learning_starts < self.batch_size:
            raise ConfigError(
                f"DRRConfig.learning_starts ({self.learning_starts}) must be >= batch_size "
                f"({self.batch_size})"
            )
        if self.learning_starts > self.buffer_size:  # the replay would never hold enough
            raise ConfigError(
                f"DRRConfig.learning_starts ({self.learning_starts}) must be <= buffer_size "
                f"({self.buffer_size}): learning would never start"
            )

    @property
    def remembers_shown(self) -> bool:
        """Whether refinement skips the items recommended earlier in the episode."""
        return bool(self.refine_k) and self.refine_exclude == "history+shown"

    @property
    def critic_user_product(self) -> bool:
        """Whether the critic also reads the action's product with the user vector."""
        return self.critic_input.startswith("action+user-product")

    @property
    def critic_recommended_item(self) -> bool:
        """Whether the critic also reads what the recommended item is to the user."""
        return "+recommended-item" in self.critic_input

    @property
    def critic_item_features(self) -> bool:
        """Whether the critic also reads the recommended item's own vector and genres."""
        return self.critic_input.endswith("+item-features")

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON values (as ``SB3Config.to_dict``); the fields added after
        results were first stored (``LATER_FIELDS``) only when not at their defaults, so those
        results keep their keys."""
        values = dataclasses.asdict(self)
        defaults = {field.name: field.default for field in dataclasses.fields(self)}
        for name in LATER_FIELDS:
            if values[name] == defaults[name]:
                del values[name]
        return values

    def to_json(self) -> str:
        """The config as JSON text."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DRRConfig:
        """Rebuild from :meth:`to_json`'s content; unknown keys are an error naming them."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ConfigError(f"unknown DRRConfig keys {unknown}; valid: {sorted(fields)}")
        return cls(**values)


def budget_episodes(timesteps: int, horizon: int) -> int:
    """The episodes a budget of ``timesteps`` env steps buys DRR, which trains by episodes of
    ``horizon`` steps: whole ones only, so never more steps than the budget.

    Raises:
        ArgumentError: the budget is shorter than one episode.
    """
    if timesteps < horizon:
        raise ArgumentError(
            f"a DRR budget of {timesteps} env steps is less than one {horizon}-step episode: "
            f"give --timesteps >= {horizon}"
        )
    return timesteps // horizon
