"""Tianshou's TD3 on MovieLensRec-v0 through its vector envs, then the project's evaluation.

Tianshou steps several copies of the env in its own vector env (``DummyVectorEnv`` here;
``SubprocVectorEnv`` takes the same factories, with ``"movielens_env:MovieLensRec-v0"`` so that
the worker processes register the env), collects into a ``VectorReplayBuffer`` and trains with
its off-policy trainer. The env needs nothing special: its info has the same numpy keys at reset
and at every step, which Tianshou's collector stacks into its batches.

The trained actor is then evaluated by :func:`movielens_env.evaluation.evaluate` as a callable
``obs -> action``, next to a random ranking, on the held-out users every agent is scored on.

Needs the ``tianshou`` extra (``pip install -e ".[tianshou]"``; Tianshou 2.0 pins pandas < 3,
so the tests run it in an environment of its own). The default budget is tiny so that it runs
in seconds; a useful agent needs tens of thousands of steps. Run it (offline, on the generated
``synthetic`` data)::

    python examples/tianshou_td3.py
    python examples/tianshou_td3.py --epochs 20 --epoch-steps 1000
    python examples/tianshou_td3.py --dataset ml-100k --data-dir ~/data/ml-100k --epochs 20
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from tianshou.algorithm import TD3
from tianshou.algorithm.modelfree.ddpg import ContinuousDeterministicPolicy
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.data import Collector, CollectStats, VectorReplayBuffer
from tianshou.env import DummyVectorEnv
from tianshou.exploration import GaussianNoise
from tianshou.trainer import OffPolicyTrainerParams
from tianshou.utils.net.common import Net
from tianshou.utils.net.continuous import ContinuousActorDeterministic, ContinuousCritic

import movielens_env
from agents.baselines import RandomRanker
from movielens_env.evaluation import names
from movielens_env.evaluation.protocols import evaluate

ENV_ID = "movielens_env:MovieLensRec-v0"
METRICS = names.AFTER_TRAINING


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Train TD3 with Tianshou, evaluate it and a random ranking; return both summaries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic", choices=movielens_env.DATASET_NAMES)
    parser.add_argument("--data-dir", default=None, help="GroupLens folder or zip (real data)")
    parser.add_argument("--envs", type=int, default=2, help="env copies stepped side by side")
    parser.add_argument("--random-steps", type=int, default=200, help="random steps first")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--epoch-steps", type=int, default=200, help="env steps per epoch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    np.random.seed(args.seed)  # noqa: NPY002 (Tianshou's random steps and noise draw from it)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # small networks: one thread is as fast
    env_kwargs = {"dataset": args.dataset, "data_dir": args.data_dir}
    env = gym.make(ENV_ID, **env_kwargs)
    train_envs = DummyVectorEnv([lambda: gym.make(ENV_ID, **env_kwargs)] * args.envs)
    train_envs.seed(args.seed)
    obs_shape, action_shape = env.observation_space.shape, env.action_space.shape
    max_action = float(env.action_space.high[0])

    actor = ContinuousActorDeterministic(
        preprocess_net=Net(state_shape=obs_shape, hidden_sizes=[256, 256]),
        action_shape=action_shape, max_action=max_action,
    )  # fmt: skip
    critics = [
        ContinuousCritic(
            preprocess_net=Net(
                state_shape=obs_shape,
                action_shape=action_shape,
                hidden_sizes=[256, 256],
                concat=True,
            )
        )
        for _ in range(2)
    ]
    policy = ContinuousDeterministicPolicy(
        actor=actor, exploration_noise=GaussianNoise(sigma=0.1 * max_action),
        action_space=env.action_space,
    )  # fmt: skip
    algorithm = TD3(
        policy=policy, policy_optim=AdamOptimizerFactory(lr=1e-3),
        critic=critics[0], critic_optim=AdamOptimizerFactory(lr=1e-3),
        critic2=critics[1], critic2_optim=AdamOptimizerFactory(lr=1e-3),
        gamma=0.9,  # 10-step episodes
    )  # fmt: skip
    buffer = VectorReplayBuffer(args.random_steps + args.epochs * args.epoch_steps, args.envs)
    collector = Collector[CollectStats](algorithm, train_envs, buffer, exploration_noise=True)
    collector.reset()
    collector.collect(n_step=args.random_steps, random=True)
    result = algorithm.run_training(
        OffPolicyTrainerParams(
            training_collector=collector, max_epochs=args.epochs,
            epoch_num_steps=args.epoch_steps, collection_step_num_env_steps=args.envs,
            batch_size=128, update_step_num_gradient_steps_per_sample=1.0, show_progress=False,
        )
    )  # fmt: skip
    print(f"{result.update_step} TD3 update steps on {len(buffer)} transitions")

    network = actor.eval()

    def act(observation: np.ndarray) -> np.ndarray:
        batch = np.atleast_2d(np.asarray(observation, dtype=np.float32))  # Tianshou's nets batch
        with torch.no_grad():
            return network(batch)[0].numpy().reshape(*np.shape(observation)[:-1], -1)

    summaries = {
        "td3": evaluate(act, env_kwargs, name="td3").summary(),
        "random": evaluate(RandomRanker(args.seed), env_kwargs, name="random").summary(),
    }
    print(f"Test split of {args.dataset}, Tianshou TD3 after {args.epochs} epoch(s):")
    for name, summary in summaries.items():
        shown = ", ".join(f"{metric} {summary[metric]:.4f}" for metric in METRICS)
        print(f"  {name:8s} {shown}")
    return summaries


if __name__ == "__main__":
    main()
