"""RLlib's PPO on MovieLensRec-v0 with remote env runners, then the project's evaluation.

RLlib collects experience in env-runner processes (Ray actors) that have not imported this
package, so the env is given by its **module-qualified id**, which imports the package (and
registers the env) wherever it is made::

    config.environment("movielens_env:MovieLensRec-v0", env_config={"dataset": "synthetic"})

(the plain ``"MovieLensRec-v0"`` is unknown in a worker: ``NameNotFound``). ``env_config``
holds ``gym.make``'s keyword arguments. After training, the algorithm's RL module is wrapped as
a callable ``obs -> action`` (its Gaussian's mean, mapped from RLlib's normalised action space
back to the env's) and evaluated by :func:`movielens_env.evaluation.evaluate`, next to a random
ranking, on the same held-out users as every other agent of the project.

Needs the ``rllib`` extra (``pip install -e ".[rllib]"``). The default budget is one small
training iteration, so that it runs in about a minute; PPO needs far more (``--iterations 200``)
to learn anything on this env. Run it (offline, on the generated ``synthetic`` data)::

    python examples/rllib_ppo.py
    python examples/rllib_ppo.py --iterations 50 --env-runners 2
    python examples/rllib_ppo.py --dataset ml-100k --data-dir ~/data/ml-100k --iterations 200
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

import movielens_env
from agents.baselines import RandomRanker
from movielens_env.evaluation import names
from movielens_env.evaluation.protocols import evaluate

# What a worker process needs: the module before the colon is imported there first.
ENV_ID = "movielens_env:MovieLensRec-v0"
METRICS = names.AFTER_TRAINING


def greedy_policy(module: Any, action_space: gym.spaces.Box) -> Callable[[np.ndarray], np.ndarray]:
    """The RL module's deterministic action for one observation: its Gaussian's mean, which
    RLlib (``normalize_actions``) reads in [-1, 1] and maps onto the env's bounds."""
    import torch

    dim = action_space.shape[0]
    low, high = action_space.low, action_space.high

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            batch = {"obs": torch.as_tensor(np.asarray(obs, np.float32)[None])}
            inputs = module.forward_inference(batch)["action_dist_inputs"][0].numpy()
        mean = np.clip(inputs[:dim], -1.0, 1.0)  # the rest are the log standard deviations
        return low + (mean + 1.0) * (high - low) / 2.0

    return act


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Train PPO on RLlib, evaluate it and a random ranking, print the metrics; return both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic", choices=movielens_env.DATASET_NAMES)
    parser.add_argument("--data-dir", default=None, help="GroupLens folder or zip (real data)")
    parser.add_argument("--iterations", type=int, default=1, help="PPO training iterations")
    parser.add_argument("--batch", type=int, default=400, help="env steps per iteration")
    parser.add_argument("--env-runners", type=int, default=1, help="remote env-runner actors")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import ray
    from ray.rllib.algorithms.ppo import PPOConfig

    env_kwargs = {"dataset": args.dataset, "data_dir": args.data_dir}
    ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        config = (
            PPOConfig()
            .environment(ENV_ID, env_config=env_kwargs)
            .env_runners(num_env_runners=args.env_runners, num_envs_per_env_runner=1,
                         num_cpus_per_env_runner=1)
            .training(train_batch_size_per_learner=args.batch, minibatch_size=min(100, args.batch),
                      num_epochs=2, gamma=0.9, lr=3e-4)
            .rl_module(model_config={"fcnet_hiddens": [64, 64]})
            .debugging(seed=args.seed)
        )  # fmt: skip
        algo = config.build_algo()
        for iteration in range(1, args.iterations + 1):
            result = algo.train()
            steps = result["num_env_steps_sampled_lifetime"]
            print(f"iteration {iteration}: {steps} env steps sampled")
        policy = greedy_policy(algo.get_module(), gym.make(ENV_ID, **env_kwargs).action_space)
        summaries = {
            "ppo": evaluate(policy, env_kwargs, name="ppo").summary(),
            "random": evaluate(RandomRanker(args.seed), env_kwargs, name="random").summary(),
        }
        algo.stop()
    finally:
        ray.shutdown()
    print(f"Test split of {args.dataset}, RLlib PPO after {args.iterations} iteration(s):")
    for name, summary in summaries.items():
        shown = ", ".join(f"{metric} {summary[metric]:.4f}" for metric in METRICS)
        print(f"  {name:8s} {shown}")
    return summaries


if __name__ == "__main__":
    main()
