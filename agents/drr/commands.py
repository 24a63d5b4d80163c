"""``movielens-rec train | evaluate | recommend``: DRR from the command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from tqdm.auto import tqdm

from movielens_env import MovieLensRecEnv
from movielens_env.data.formats import DATASET_NAMES
from movielens_env.errors import ArgumentError
from movielens_env.evaluation.exports import export_recommendations
from movielens_env.evaluation.protocols import (
    PROTOCOLS,
    evaluate,
    evaluate_offline,
    protocol_candidates,
)
from movielens_env.simulator.scoring import rank_by_action

from ..benchmark.plots import plot_training
from ..env_options import add_env_options, env_options
from .checkpoint import load_checkpoint
from .config import STATE_REPRESENTATIONS, DRRConfig
from .run_dir import check_run_dir
from .train import load_agent, train_drr


def _overrides(pairs: list[str]) -> dict:
    fields = {f.name: f.type for f in dataclasses.fields(DRRConfig)}
    values = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        if key not in fields or not text:
            raise ArgumentError(
                f"--set {pair!r}: expected KEY=VALUE with KEY one of {sorted(fields)}"
            )
        try:
            values[key] = json.loads(text) if fields[key] != "str" else text
        except json.JSONDecodeError:
            raise ArgumentError(
                f"--set {pair!r}: {text!r} is not a number or JSON value for {key}"
            ) from None
    return values


def _train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    check_run_dir(out, args.resume, args.force)
    if args.resume:  # the run's own config, seed and env; what is given must agree with them
        payload, config = load_checkpoint(out)
        seed, env_kwargs = int(payload["seed"]), dict(payload["env_kwargs"])
    else:
        config, seed, env_kwargs = DRRConfig(), 0, {"dataset": "synthetic"}
    if args.agent is not None:
        config = dataclasses.replace(config, state=args.agent)
    config = dataclasses.replace(config, **_overrides(args.set))
    seed = seed if args.seed is None else args.seed
    if args.dataset is not None:
        env_kwargs["dataset"] = args.dataset
    env_kwargs = {**env_kwargs, "data_dir": args.data_dir, **env_options(args)}
    bars: list[tqdm] = []  # the bar appears with the first episode, once every check passed

    def progress(episode: int, episode_return: float) -> None:
        if not bars:
            bars.append(
                tqdm(total=args.episodes, desc=f"{config.state} seed {seed}", unit="episode")
            )
        bars[0].n = episode
        bars[0].set_postfix_str(f"return {episode_return:+.2f}")
        bars[0].refresh()

    try:
        result = train_drr(
            env_kwargs, config, args.episodes, seed, out, args.resume, progress, args.force
        )
    finally:
        for bar in bars:
            bar.close()
    title = f"{config.state} on {env_kwargs['dataset']}, seed {seed}"
    plots = plot_training(result.curve, out, title)
    last = result.curve[-1]
    print(f"\nTrained {config.state} for {args.episodes} episodes; test split after training:")
    for name in ("rerank/precision@10", "full/precision@10", "online/return_mf"):
        print(f"  {name}: {last[name]:.4f}")
    print(f"Run directory: {out} (checkpoint.pt, config.json, learning_curve.csv)")
    print("Plots: " + ", ".join(str(p) for p in plots))
    return 0


def _load(args: argparse.Namespace):
    return load_agent(Path(args.run_dir), data_dir=args.data_dir)


def _evaluate(args: argparse.Namespace) -> int:
    agent, env_kwargs = _load(args)
    summary = evaluate(agent, env_kwargs, name=agent.config.state).summary()
    print(f"{agent.config.state} from {args.run_dir} on {env_kwargs['dataset']} (test split)")
    for name, value in summary.items():
        print(f"  {name:24s} {value:.4f}")
    return 0


def _recommend(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise ArgumentError(f"--k must be >= 1, got {args.k}")
    agent, env_kwargs = _load(args)
    if args.all_test_users:
        if args.output is not None:
            _check_output(Path(args.output), args.force)
        if args.output is None:
            raise ArgumentError("--all-test-users needs --output FILE.csv")
        result = evaluate_offline(
            agent, env_kwargs, (args.protocol,), (args.k,), agent.config.state
        )
        world = MovieLensRecEnv(**env_kwargs).world
        export_recommendations(result, world, args.protocol, args.output)
        users = len(result.users)
        print(f"Wrote the top {args.k} ({args.protocol}) of {users} test users to {args.output}")
        return 0
    if args.user is None:
        raise ArgumentError("give --user RAW_ID or --all-test-users")
    env = MovieLensRecEnv(**{**env_kwargs, "split": "test"})
    data = env.world.dataset
    obs, info = env.reset(options={"user_id": args.user})
    action, _ = agent.predict(obs, deterministic=True)
    candidates = protocol_candidates(env.world, int(data.user_index(args.user)), "full")
    top = rank_by_action(env.vectors, action, candidates, args.k)
    print(f"User {args.user}, who recently liked:")
    for item in data.item_index(info["history_item_ids"]):
        print(f"    {data.title(int(item))}")
    print(f"Top {args.k} recommendations of {agent.config.state} (items not rated in train):")
    for rank, item in enumerate(top, start=1):
        print(f"  {rank:2d}. {data.title(int(item))}  (item {data.item_ids[item]})")
    return 0


def _check_output(path: Path, force: bool) -> None:
    """``--output`` must be a file path, and an existing file is replaced only with ``--force``."""
    if path.is_dir():
        raise ArgumentError(f"--output {path} is a folder; give the path of a CSV file")
    if path.exists() and not force:
        raise ArgumentError(f"--output {path} exists; pass --force to replace it")


def add_commands(commands) -> None:
    """Register ``train``, ``evaluate`` and ``recommend`` on the CLI's sub-parsers."""
    train = commands.add_parser("train", help="train a DRR agent")
    train.add_argument("--agent", default=None, choices=STATE_REPRESENTATIONS,
                       help="state representation (default: drr-ave)")  # fmt: skip
    train.add_argument("--dataset", default=None, choices=DATASET_NAMES,
                       help="default: synthetic")  # fmt: skip
    train.add_argument("--data-dir", default=None, help="GroupLens folder or zip")
    train.add_argument("--episodes", type=int, default=5000,
                       help="episodes in all (with --resume, the run's new total)")  # fmt: skip
    train.add_argument("--seed", type=int, default=None, help="default: 0")
    train.add_argument("--out", required=True, help="run directory")
    train.add_argument(
        "--resume", action="store_true",
        help="continue the run in --out from its checkpoint, with its own --set values, seed and "
        "env; --episodes is then the run's new total (at least the episodes it holds)",
    )  # fmt: skip
    train.add_argument(
        "--force", action="store_true",
        help="replace the run --out already holds (without it, a folder holding a run is refused)",
    )  # fmt: skip
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a DRRConfig field, e.g. --set actor_lr=3e-4")  # fmt: skip
    add_env_options(train)
    train.set_defaults(run=_train)

    evaluate_cmd = commands.add_parser(
        "evaluate", help="offline metrics and online return of a run"
    )
    evaluate_cmd.add_argument("run_dir")
    evaluate_cmd.add_argument("--data-dir", default=None, help="if the data moved")
    evaluate_cmd.set_defaults(run=_evaluate)

    recommend = commands.add_parser("recommend", help="recommendations of a trained run")
    recommend.add_argument("run_dir")
    recommend.add_argument("--user", type=int, default=None, help="raw user id")
    recommend.add_argument("--all-test-users", action="store_true")
    recommend.add_argument("--protocol", default="full", choices=PROTOCOLS)
    recommend.add_argument("--k", type=int, default=10)
    recommend.add_argument("--output", default=None, help="CSV user,item,rank (raw ids)")
    recommend.add_argument("--force", action="store_true", help="replace an existing --output")
    recommend.add_argument("--data-dir", default=None, help="if the data moved")
    recommend.set_defaults(run=_recommend)
