"""A CleanRL-style single-file TD3 on MovieLensRec-v0, then the project's evaluation.

Everything in one file, as CleanRL writes its algorithms: a Gymnasium vector env, a
deterministic actor and twin critics in plain PyTorch, a replay buffer of arrays, and the TD3
update (clipped double-Q targets, target-policy smoothing, delayed actor and target updates).
The vector env autoresets in the step that ends an episode (``autoreset_mode="SameStep"``), so
the last observation of an ended episode is ``info["final_obs"]``, the one the critic bootstraps
from; truncation (the 10-step horizon) still bootstraps, termination does not.

The trained actor is evaluated by :func:`movielens_env.evaluation.evaluate` as a callable
``obs -> action``, next to a random ranking, on the held-out users every agent is scored on.
The default budget is tiny so that it runs in seconds; a useful agent needs tens of thousands of
steps. Run it (offline, on the generated ``synthetic`` data)::

    python examples/cleanrl_td3.py
    python examples/cleanrl_td3.py --total-timesteps 20000 --learning-starts 1000
    python examples/cleanrl_td3.py --dataset ml-100k --data-dir ~/data/ml-100k \\
        --total-timesteps 20000
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import movielens_env
from agents.baselines import RandomRanker
from movielens_env.evaluation import names
from movielens_env.evaluation.protocols import evaluate

METRICS = names.AFTER_TRAINING


class Actor(nn.Module):
    """``obs -> action`` in the env's box (tanh, then scaled to its bounds)."""

    def __init__(self, obs_dim: int, space: gym.spaces.Box) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(obs_dim, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
            nn.Linear(256, space.shape[0]), nn.Tanh(),
        )  # fmt: skip
        self.register_buffer("scale", torch.as_tensor((space.high - space.low) / 2))
        self.register_buffer("bias", torch.as_tensor((space.high + space.low) / 2))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs) * self.scale + self.bias


class Critic(nn.Module):
    """``(obs, action) -> Q``."""

    def __init__(self, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(obs_dim + act_dim, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
            nn.Linear(256, 1),
        )  # fmt: skip

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], dim=1)).squeeze(1)


class Buffer:
    """A ring of transitions in NumPy arrays."""

    def __init__(self, size: int, obs_dim: int, act_dim: int) -> None:
        self.obs = np.zeros((size, obs_dim), np.float32)
        self.next_obs = np.zeros((size, obs_dim), np.float32)
        self.actions = np.zeros((size, act_dim), np.float32)
        self.rewards = np.zeros(size, np.float32)
        self.terminated = np.zeros(size, np.float32)
        self.size, self.count = size, 0

    def add(self, obs, next_obs, actions, rewards, terminated) -> None:
        for row in range(len(obs)):
            at = self.count % self.size
            self.obs[at], self.next_obs[at] = obs[row], next_obs[row]
            self.actions[at], self.rewards[at] = actions[row], rewards[row]
            self.terminated[at] = terminated[row]
            self.count += 1

    def sample(self, batch: int, rng: np.random.Generator) -> list[torch.Tensor]:
        rows = rng.integers(0, min(self.count, self.size), batch)
        parts = (self.obs, self.next_obs, self.actions, self.rewards, self.terminated)
        return [torch.as_tensor(part[rows]) for part in parts]


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Train TD3, evaluate it and a random ranking, print the metrics; return both summaries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic", choices=movielens_env.DATASET_NAMES)
    parser.add_argument("--data-dir", default=None, help="GroupLens folder or zip (real data)")
    parser.add_argument("--num-envs", type=int, default=2)
    parser.add_argument("--total-timesteps", type=int, default=600, help="steps of every env")
    parser.add_argument("--learning-starts", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--gamma", type=float, default=0.9)
    parser.add_argument("--tau", type=float, default=0.005)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--exploration-noise", type=float, default=0.1)
    parser.add_argument("--policy-noise", type=float, default=0.2)
    parser.add_argument("--noise-clip", type=float, default=0.5)
    parser.add_argument("--policy-frequency", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # small networks: one thread is as fast
    env_kwargs = {"dataset": args.dataset, "data_dir": args.data_dir}
    envs = gym.vector.SyncVectorEnv(
        [lambda: gym.make("MovieLensRec-v0", **env_kwargs)] * args.num_envs,
        autoreset_mode="SameStep",
    )
    space = envs.single_action_space
    obs_dim, act_dim = envs.single_observation_space.shape[0], space.shape[0]
    actor, critics = Actor(obs_dim, space), [Critic(obs_dim, act_dim) for _ in range(2)]
    actor_target, critic_targets = copy.deepcopy(actor), copy.deepcopy(critics)
    actor_optim = torch.optim.Adam(actor.parameters(), lr=args.lr)
    critic_optim = torch.optim.Adam([p for c in critics for p in c.parameters()], lr=args.lr)
    buffer = Buffer(args.total_timesteps * args.num_envs, obs_dim, act_dim)
    low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)

    obs, _ = envs.reset(seed=args.seed)
    envs.action_space.seed(args.seed)
    updates = 0
    for step in range(args.total_timesteps):
        if step < args.learning_starts:
            actions = envs.action_space.sample()
        else:
            with torch.no_grad():
                actions = actor(torch.as_tensor(obs)).numpy()
            noise = rng.normal(0, args.exploration_noise * space.high, actions.shape)
            actions = np.clip(actions + noise, space.low, space.high).astype(np.float32)
        next_obs, rewards, terminated, truncated, infos = envs.step(actions)
        real_next = next_obs.copy()  # an ended episode's own last observation, not the reset's
        for row in np.flatnonzero(terminated | truncated):
            real_next[row] = infos["final_obs"][row]
        buffer.add(obs, real_next, actions, rewards, terminated)
        obs = next_obs
        if step < args.learning_starts:
            continue

        b_obs, b_next, b_actions, b_rewards, b_terminated = buffer.sample(args.batch_size, rng)
        with torch.no_grad():
            smoothing = (torch.randn_like(b_actions) * args.policy_noise).clamp(
                -args.noise_clip, args.noise_clip
            ) * torch.as_tensor(space.high)
            next_actions = torch.max(torch.min(actor_target(b_next) + smoothing, high), low)
            next_q = torch.min(*(c(b_next, next_actions) for c in critic_targets))
            target = b_rewards + args.gamma * (1 - b_terminated) * next_q
        critic_loss = sum(F.mse_loss(c(b_obs, b_actions), target) for c in critics)
        critic_optim.zero_grad()
        critic_loss.backward()
        critic_optim.step()
        if step % args.policy_frequency == 0:
            actor_loss = -critics[0](b_obs, actor(b_obs)).mean()
            actor_optim.zero_grad()
            actor_loss.backward()
            actor_optim.step()
            pairs = [(actor, actor_target), *zip(critics, critic_targets, strict=True)]
            for net, net_target in pairs:  # the targets follow slowly (Polyak averaging)
                for p, p_target in zip(net.parameters(), net_target.parameters(), strict=True):
                    p_target.data.mul_(1 - args.tau).add_(args.tau * p.data)
        updates += 1
    envs.close()
    print(f"{updates} TD3 updates on {args.total_timesteps} steps of {args.num_envs} envs")

    def policy(observation: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return actor(torch.as_tensor(observation, dtype=torch.float32)).numpy()

    summaries = {
        "td3": evaluate(policy, env_kwargs, name="td3").summary(),
        "random": evaluate(RandomRanker(args.seed), env_kwargs, name="random").summary(),
    }
    print(f"Test split of {args.dataset}, CleanRL-style TD3 after {args.total_timesteps} steps:")
    for name, summary in summaries.items():
        shown = ", ".join(f"{metric} {summary[metric]:.4f}" for metric in METRICS)
        print(f"  {name:8s} {shown}")
    return summaries


if __name__ == "__main__":
    main()
