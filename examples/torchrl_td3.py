"""TorchRL's TD3 on the native vector env of MovieLensRec-v0, then the project's evaluation.

TorchRL wraps a Gymnasium vector env as one batched env (``GymWrapper``) and wants its resets
within the step that ends an episode: ``gym.make_vec(..., vectorization_mode=
"vector_entry_point", autoreset_mode="SameStep")`` gives the package's native vector env (all
users stepped at once in NumPy) in that mode. Every info key is there at reset and at every step
with a fixed dtype and shape, so TorchRL's info reader stacks ``user_id``, ``item_ids``,
``ratings``, ... into the collected tensordicts across autoresets.

A ``Collector`` runs the exploration policy (the actor plus Gaussian noise), a replay
buffer keeps the transitions, and ``TD3Loss`` (twin critics, delayed and smoothed target
policy) updates the networks; the trained actor is then evaluated by
:func:`movielens_env.evaluation.evaluate` as a callable ``obs -> action``, next to a random
ranking, on the held-out users every agent of the project is scored on.

Needs the ``clients`` extra (``pip install -e ".[clients]"``). The default budget is tiny so that
it runs in seconds (a few hundred updates); a useful agent needs tens of thousands of steps.
Run it (offline, on the generated ``synthetic`` data)::

    python examples/torchrl_td3.py
    python examples/torchrl_td3.py --frames 20000 --envs 8
    python examples/torchrl_td3.py --dataset ml-100k --data-dir ~/data/ml-100k --frames 20000
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from tensordict.nn import TensorDictSequential
from torchrl.collectors import Collector
from torchrl.data import LazyTensorStorage, ReplayBuffer
from torchrl.envs import GymWrapper
from torchrl.modules import MLP, Actor, AdditiveGaussianModule, TanhModule, ValueOperator
from torchrl.objectives import SoftUpdate, TD3Loss

import movielens_env
from agents.baselines import RandomRanker
from movielens_env.evaluation import names
from movielens_env.evaluation.protocols import evaluate

ENV_ID = "movielens_env:MovieLensRec-v0"
METRICS = names.AFTER_TRAINING


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Train TD3 with TorchRL, evaluate it and a random ranking; return both summaries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic", choices=movielens_env.DATASET_NAMES)
    parser.add_argument("--data-dir", default=None, help="GroupLens folder or zip (real data)")
    parser.add_argument("--envs", type=int, default=4, help="users stepped at once")
    parser.add_argument("--frames", type=int, default=800, help="environment steps in all")
    parser.add_argument("--random-frames", type=int, default=200, help="random steps first")
    parser.add_argument("--updates-per-batch", type=int, default=20, help="per 10 steps of all")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # small networks: one thread is as fast, and never oversubscribes
    env_kwargs = {"dataset": args.dataset, "data_dir": args.data_dir}
    vector_env = gym.make_vec(
        ENV_ID, num_envs=args.envs, vectorization_mode="vector_entry_point",
        autoreset_mode="SameStep", **env_kwargs,
    )  # fmt: skip
    env = GymWrapper(vector_env)
    env.set_seed(args.seed)
    obs_dim = env.observation_spec["observation"].shape[-1]
    spec = env.action_spec_unbatched  # one user's (the env's is batched by --envs)
    act_dim = spec.shape[-1]

    actor = TensorDictSequential(
        Actor(MLP(in_features=obs_dim, out_features=act_dim, num_cells=[256, 256]),
              out_keys=["param"]),
        TanhModule(in_keys=["param"], out_keys=["action"], spec=spec),
    )  # fmt: skip
    critic = ValueOperator(
        MLP(in_features=obs_dim + act_dim, out_features=1, num_cells=[256, 256]),
        in_keys=["observation", "action"],
    )
    exploring = TensorDictSequential(
        actor, AdditiveGaussianModule(spec=spec, sigma_init=0.1, sigma_end=0.1)
    )
    loss = TD3Loss(actor, critic, action_spec=spec, num_qvalue_nets=2, delay_actor=True)
    loss.make_value_estimator(gamma=0.9)  # 10-step episodes
    target = SoftUpdate(loss, tau=0.005)
    actor_optim = torch.optim.Adam(loss.actor_network_params.values(True, True), lr=1e-3)
    critic_optim = torch.optim.Adam(loss.qvalue_network_params.values(True, True), lr=1e-3)

    collector = Collector(
        env, exploring, frames_per_batch=args.envs * 10, total_frames=args.frames,
        init_random_frames=args.random_frames, auto_register_policy_transforms=False,
    )  # fmt: skip
    buffer = ReplayBuffer(storage=LazyTensorStorage(args.frames), batch_size=128)
    updates = 0
    for batch in collector:
        buffer.extend(batch.reshape(-1))
        if len(buffer) < args.random_frames:
            continue
        for _ in range(args.updates_per_batch):
            sample = buffer.sample()
            critic_loss, _ = loss.value_loss(sample)
            critic_optim.zero_grad()
            critic_loss.backward()
            critic_optim.step()
            if updates % 2 == 0:  # TD3's delayed actor update, on the updated critics
                actor_loss, _ = loss.actor_loss(sample)
                actor_optim.zero_grad()
                actor_loss.backward()
                actor_optim.step()
                target.step()
            updates += 1
    collector.shutdown()
    print(f"{updates} TD3 updates on {args.frames} frames of {args.envs} users at a time")

    network = actor.eval()

    def policy(obs: np.ndarray) -> np.ndarray:
        from tensordict import TensorDict

        with torch.no_grad():
            td = TensorDict({"observation": torch.as_tensor(obs, dtype=torch.float32)})
            return network(td)["action"].numpy()

    summaries = {
        "td3": evaluate(policy, env_kwargs, name="td3").summary(),
        "random": evaluate(RandomRanker(args.seed), env_kwargs, name="random").summary(),
    }
    print(f"Test split of {args.dataset}, TorchRL TD3 after {args.frames} frames:")
    for name, summary in summaries.items():
        shown = ", ".join(f"{metric} {summary[metric]:.4f}" for metric in METRICS)
        print(f"  {name:8s} {shown}")
    return summaries


if __name__ == "__main__":
    main()
