"""The ``movielens-rec`` command line."""

from __future__ import annotations

import argparse
import errno
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np

import movielens_env
from movielens_env.checks import budget
from movielens_env.data.formats import DATASET_NAMES
from movielens_env.errors import ArgumentError
from movielens_env.evaluation import names
from movielens_env.evaluation.protocols import episode_steps, heldout_env, online_reward_models

from .benchmark.executors import EXECUTORS
from .benchmark.machine import machine_description
from .config_values import read_config_file, with_options
from .env_options import add_env_options, env_options, nonempty
from .fields import check_seed
from .options_once import parse_args
from .plugins import import_plugin
from .run_commands import add_commands as add_run_commands
from .threads import torch_threads

if TYPE_CHECKING:
    from movielens_env.envs.env import MovieLensRecEnv

    from .benchmark.executors import Executor
    from .benchmark.quick import Shown
    from .benchmark.runner import BenchmarkConfig


def _rollout(args: argparse.Namespace) -> int:
    """Run a few episodes of a uniformly random policy and print what happened."""
    if args.episodes < 1 or args.seed < 0:
        raise ArgumentError(
            f"--episodes must be >= 1 and --seed >= 0, got {args.episodes} and {args.seed}"
        )
    check_seed("--seed", args.seed)
    budget("--episodes", args.episodes)
    env = gym.make(
        movielens_env.ENV_ID, dataset=args.dataset, data_dir=args.data_dir, split=args.split,
        slate_size=args.slate_size, render_mode="ansi",
    )  # fmt: skip
    data = cast(movielens_env.MovieLensRecEnv, env.unwrapped).world.dataset
    print(
        f"MovieLensRec-v0 on {data.name}: {data.n_users} users, {data.n_items} items, "
        f"{data.n_ratings} ratings; observation {env.observation_space.shape}, "
        f"action {env.action_space.shape}"
    )
    env.action_space.seed(args.seed)
    returns, hits = [], 0
    for episode in range(args.episodes):
        _, info = env.reset(seed=args.seed + episode)
        print(f"\nEpisode {episode + 1}: user {info['user_id']}")
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, info = env.step(env.action_space.sample())
            total += float(reward)
            hits += int(np.sum(info["hits"]))
            for item, rating, logged in zip(
                info["item_ids"], info["ratings"], info["logged"], strict=True
            ):
                title = data.title(int(data.item_index(item)))
                source = "logged" if logged else "simulated"
                print(f"  recommended {title!r} (item {item}): rating {rating:.2f} ({source})")
            done = terminated or truncated
        returns.append(total)
        print(f"  return {total:+.3f}")
    print(
        f"\nRandom policy, {args.episodes} episodes: mean return {np.mean(returns):+.3f}, "
        f"{hits} recommendations rated >= 4"
    )
    env.close()
    return 0


def _csv_list(option: str, text: str) -> list[str]:
    """The comma-separated names of an option; none at all is an error, not "all"."""
    parts = [part.strip() for part in text.split(",")]
    if not any(parts) or not all(parts):
        raise ArgumentError(f"{option} {text!r}: give comma-separated names, none of them empty")
    return parts


def _seeds(text: str) -> list[int]:
    try:
        return [int(part) for part in _csv_list("--seeds", text)]
    except ValueError:
        raise ArgumentError(
            f"--seeds {text!r}: give comma-separated integers >= 0, e.g. 0,1,2"
        ) from None


def _configure_agents(specs: list[str], agents: list[str], configured: dict[str, Any]) -> None:
    """Apply each ``--config AGENT=FILE`` (the agent's config for this benchmark); the entries
    replaced are kept in ``configured``."""
    from .registry import AGENTS, configure_agent, get_artefact

    given: set[str] = set()
    for spec in specs:
        agent, _, path = spec.partition("=")
        if not agent or not path:
            raise ArgumentError(f"--config {spec!r}: expected AGENT=FILE.json")
        if agent not in agents:
            raise ArgumentError(f"--config {spec!r}: {agent!r} is not among the agents run")
        if agent in given:
            raise ArgumentError(f"--config gives {agent!r} twice; give each agent one file")
        given.add(agent)
        configured.setdefault(agent, AGENTS[agent])
        configure_agent(agent, read_config_file(type(get_artefact(agent).config), path))


def _check_online_metrics(metrics: list[str], models: list[str]) -> None:
    """Refuse online metrics of a reward model this data has none of (``oracle`` on real data)."""
    allowed = [m for m in names.ALL if not m.startswith("online/") or m.rsplit("_", 1)[1] in models]
    missing = [m for m in metrics if m not in allowed]
    if missing:
        raise ArgumentError(
            f"--metrics {', '.join(missing)}: not measured on this data (only synthetic data has "
            f"the true ratings, 'oracle'); valid here: {', '.join(allowed)}"
        )


def _benchmark(args: argparse.Namespace) -> int:
    """Train and evaluate agents over seeds; print and write the leaderboard and plots."""
    from .registry import AGENTS

    configured: dict[str, Any] = {}  # the entries --config replaced, as they were
    try:
        return _run_benchmark(args, configured)
    finally:  # --config applies to this benchmark only (main may be called again in-process)
        AGENTS.update(configured)


def _run_benchmark(args: argparse.Namespace, configured: dict[str, Any]) -> int:
    from .benchmark.quick import apply_quick_defaults, quick_parts, quick_summary

    for module in args.plugin:
        import_plugin(module)
    if not args.quick:
        _one_benchmark(args, configured)
        return 0
    apply_quick_defaults(args)
    parts = quick_parts(args)
    shown = [_one_benchmark(part, configured) for part in parts]
    users = shown[0].references["n_users"]  # the same test users under every user model
    print("\n" + quick_summary(shown, args.dataset, users, len(_seeds(args.seeds))))
    return 0


def _one_benchmark(args: argparse.Namespace, configured: dict[str, Any]) -> Shown:
    """One benchmark of the command line's settings: run, print and write its leaderboard."""
    from .benchmark.executors import make_executor
    from .benchmark.leaderboard import check_metrics
    from .benchmark.runner import BenchmarkConfig
    from .benchmark.stored import ResultsFolderError, check_results_folder
    from .folder_lock import lock_folder
    from .registry import agent_names, get_agent

    agents = agent_names() if args.agents is None else _csv_list("--agents", args.agents)
    for agent in agents:
        get_agent(agent)
    _configure_agents(args.config, agents, configured)
    metrics = None if args.metrics is None else check_metrics(_csv_list("--metrics", args.metrics))
    executor = make_executor(args.executor, args.jobs, args.ray_address)
    seeds = _seeds("0,1,2" if args.seeds is None else args.seeds)
    dataset = args.dataset or "synthetic"
    out = Path(f"runs/benchmark-{dataset}" if args.out is None else nonempty("--out", args.out))
    out = out.expanduser()
    config = BenchmarkConfig(
        dataset=dataset, data_dir=args.data_dir, agents=tuple(agents), seeds=tuple(seeds),
        timesteps=10_000 if args.timesteps is None else args.timesteps, out_dir=out,
        env_options=env_options(args),
        planner_width=128 if args.planner_width is None else args.planner_width,
    )  # fmt: skip
    check_results_folder(out)  # an --out that cannot be made, before the env's MF fit
    env = heldout_env(config.env_kwargs())  # refuses bad env arguments before any run
    if metrics is not None:
        _check_online_metrics(metrics, online_reward_models(env.world))
    # The leaderboard and plots are written under the run's lock too: a second benchmark
    # into this folder could otherwise replace the runs between storing them and reading them.
    with lock_folder(out, "benchmark", ResultsFolderError):
        return _write_benchmark(args, config, env, metrics, executor)


def _write_benchmark(
    args: argparse.Namespace,
    config: BenchmarkConfig,
    env: MovieLensRecEnv,
    metrics: list[str] | None,
    executor: Executor,
) -> Shown:
    """Run ``config``'s grid and write its leaderboard and plots (under the folder's lock)."""
    from .benchmark.leaderboard import (
        aggregate,
        baseline_comparison,
        few_users_warning,
        format_table,
        write_leaderboard,
    )
    from .benchmark.plots import plot_bars, plot_learning_curves
    from .benchmark.quick import Shown
    from .benchmark.runner import run_benchmark, stored_or_computed_references
    from .registry import get_agent

    out, dataset, seeds = config.out_dir, config.dataset, config.seeds
    records = run_benchmark(config, not args.no_progress, args.force, executor)
    references = stored_or_computed_references(config)
    table = aggregate(records)
    shown = metrics or [m for m in names.TABLE if any(m in v for v in table.values())]
    model = env.user_model.config.name
    title = (
        f"MovieLensRec-v0 leaderboard, {dataset}, user model {model!r}, "
        f"{episode_steps(config.env_kwargs())}-step episodes"
    )
    command = "movielens-rec " + shlex.join(sys.argv[1:] if args.argv is None else args.argv)
    data = env.world.dataset
    users = {record["n_users"] for record in records}
    described = (
        f"{data.name}, {data.n_users} users, {data.n_items} items, {data.n_ratings} ratings; "
        f"per-user temporal 80/20 split; {', '.join(map(str, sorted(users)))} test users evaluated"
        f"; env arguments {config.env_options or 'the defaults'}"
    )
    untrained = [f"{r['agent']} seed {r['seed']}" for r in records if r.get("untrained")]
    notes = [few_users_warning(min(users))]
    if untrained:
        notes.append(
            f"{', '.join(untrained)} took no gradient step in its budget: those rows are untrained "
            "networks (give more --timesteps or a lower learning_starts)"
        )
    for warning in filter(None, notes):
        described += f"\n\n**Warning: {warning}.**"
        print(f"warning: {warning}", file=sys.stderr)
    md_path, csv_path = write_leaderboard(
        table, out, title, command, machine_description(), described, references
    )
    for line in baseline_comparison(table):
        print(line.removeprefix("- "))
    bars = plot_bars(table, out / "metrics.png", title)
    curves = plot_learning_curves(records, out / "learning_curves.png", title)
    print(f"\n{title} ({len(seeds)} seeds, mean ± 95% interval)\n")
    print(format_table(table, shown))
    print(f"\nLeaderboard: {md_path} and {csv_path}")
    print(f"Plots: {bars}" + (f" and {curves}" if curves else ""))
    rl_agents = tuple(agent for agent in config.agents if get_agent(agent).is_rl)
    return Shown(
        model, episode_steps(config.env_kwargs()), table, rl_agents, references, md_path,
        (bars, *([curves] if curves else [])),
    )  # fmt: skip


def _tune(args: argparse.Namespace) -> int:
    """Search an agent's hyper-parameters on the validation split; save the best config."""
    from .registry import get_agent
    from .tune.space import check_tunable, default_config
    from .tune.study import BEST_CONFIG, TRIALS, tune

    for module in args.plugin:
        import_plugin(module)
    check_tunable(args.agent)  # an unknown or untunable agent is named before anything else
    dataset = args.dataset or "synthetic"
    out = Path(
        f"runs/tune-{args.agent}-{dataset}" if args.out is None else nonempty("--out", args.out)
    )
    base = None
    if args.config is not None or args.set:
        base = with_options(default_config(args.agent), args.config, args.set)
    env_kwargs = {"dataset": dataset, "data_dir": args.data_dir, **env_options(args)}
    get_agent(args.agent).check_env(env_kwargs)

    def report(number: int, value: float | None, why: str) -> None:
        if not args.no_progress:
            shown = f"pruned: {why}" if value is None else f"validation return {value:.4f}"
            print(f"trial {number}: {shown}", flush=True)

    result = tune(
        args.agent, env_kwargs, args.timesteps, args.trials, out, args.seed, args.force, base,
        on_trial=report, executor=args.executor, ray_address=args.ray_address,
    )  # fmt: skip
    print(
        f"\n{args.agent}: best validation return {result.best_value:.4f} after "
        f"{result.trials_done} trials; best config {out / BEST_CONFIG} (train --config and "
        f"benchmark --config read it), every trial in {out / TRIALS}"
    )
    return 0


def _add_ray_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ray-address", default=None, metavar="HOST:PORT",
        help="--executor ray: the cluster to run on (default: $RAY_ADDRESS, else a local Ray)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``movielens-rec``."""
    parser = argparse.ArgumentParser(prog="movielens-rec", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    rollout = commands.add_parser("rollout", help="run a random policy for a few episodes")
    rollout.add_argument("--dataset", default="synthetic", choices=DATASET_NAMES)
    rollout.add_argument("--data-dir", default=None, help="GroupLens folder or zip")
    rollout.add_argument("--split", default="train", choices=("train", "test"))
    rollout.add_argument("--slate-size", type=int, default=1)
    rollout.add_argument("--episodes", type=int, default=3)
    rollout.add_argument("--seed", type=int, default=0)
    rollout.set_defaults(run=_rollout)

    bench = commands.add_parser(
        "benchmark", help="train and evaluate agents over seeds; write the leaderboard and plots"
    )
    bench.add_argument("--dataset", default=None, choices=DATASET_NAMES, help="default: synthetic")
    bench.add_argument("--data-dir", default=None, help="GroupLens folder or zip")
    bench.add_argument("--agents", default=None, help="comma-separated names (default: all)")
    bench.add_argument("--seeds", default=None, help="comma-separated seeds (default: 0,1,2)")
    bench.add_argument("--timesteps", type=int, default=None, help="RL budget (default: 10000)")
    bench.add_argument(
        "--out", default=None, help="results folder (default: runs/benchmark-DATASET)"
    )
    bench.add_argument("--metrics", default=None, help="comma-separated metrics to print")
    bench.add_argument(
        "--quick", action="store_true",
        help="what the project is for, in about 2 minutes on 2 cores: random, popularity, MF "
        "and DRR-ave (3 seeds, 1500 steps) next to the reference policies on a small synthetic "
        "world, under the static user model and under boredom+drift (each in OUT/MODEL); "
        "options given explicitly override its settings",
    )  # fmt: skip
    bench.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE",
        help="import MODULE first (it may register agents); repeatable",
    )  # fmt: skip
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench.add_argument(
        "--executor", default="local", choices=EXECUTORS,
        help="where runs execute: local worker processes (default), or Ray tasks (an embedded "
        "local Ray, or the cluster at --ray-address; needs the 'ray' extra)",
    )  # fmt: skip
    bench.add_argument(
        "--jobs", type=int, default=None, metavar="N",
        help="--executor local: runs at a time, each in a worker process (default: one per "
        "core; 1 runs them in this process)",
    )  # fmt: skip
    _add_ray_address(bench)
    bench.add_argument(
        "--config", action="append", default=[], metavar="AGENT=FILE.json",
        help="train AGENT with the config fields in FILE (e.g. tune's best_config.json); its "
        "runs are keyed by it; repeatable, one per agent",
    )  # fmt: skip
    bench.add_argument(
        "--force", action="store_true",
        help="replace results of another configuration in --out (without it they are refused; "
        "results of this configuration are always reused)",
    )  # fmt: skip
    add_env_options(bench)
    bench.add_argument(
        "--planner-width", type=int, default=None, metavar="N",
        help="beam width of the planner reference, the top of the normalized score (default "
        "128; --quick: 32)",
    )  # fmt: skip
    bench.set_defaults(run=_benchmark)

    tune = commands.add_parser(
        "tune",
        help="search an agent's hyper-parameters (Optuna) on a validation split carved from train",
        description="Each trial trains the agent on each user's train ratings less their last "
        "part in time, and is scored by the online return of that held-out part (never the "
        "test ratings). Every agent gets the same budget: --trials trials of --timesteps env "
        "steps. The study lives in --out: run the same command again to continue an "
        "interrupted study (or to add trials by raising --trials).",
    )  # fmt: skip
    tune.add_argument("--agent", required=True, help="drr-ave, drr-u, drr-p, drr-n, ddpg, td3, sac")
    tune.add_argument("--trials", type=int, default=20, help="trials in all (default 20)")
    tune.add_argument(
        "--timesteps", type=int, default=10_000,
        help="env steps per trial (DRR: that / horizon episodes; default 10000)",
    )  # fmt: skip
    tune.add_argument("--dataset", default=None, choices=DATASET_NAMES, help="default: synthetic")
    tune.add_argument("--data-dir", default=None, help="GroupLens folder or zip")
    tune.add_argument("--seed", type=int, default=0, help="seeds the sampler and every trial")
    tune.add_argument("--out", default=None, help="study folder (default runs/tune-AGENT-DATASET)")
    tune.add_argument("--force", action="store_true",
                      help="remove a study of other settings in --out, before the new "
                           "study's first trial, and start anew")  # fmt: skip
    tune.add_argument(
        "--config", default=None, metavar="FILE.json",
        help="the config the search starts from (fields it does not search)",
    )  # fmt: skip
    tune.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override a field of that config (as train's --set)")  # fmt: skip
    tune.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE",
        help="import MODULE first; repeatable",
    )  # fmt: skip
    tune.add_argument("--no-progress", action="store_true", help="no line per trial")
    tune.add_argument(
        "--executor", default="local", choices=EXECUTORS,
        help="where trials run: one after another in this process (default), or as Ray Tune "
        "trials side by side (a local Ray, or the cluster at --ray-address; the 'ray' extra)",
    )  # fmt: skip
    _add_ray_address(tune)
    add_env_options(tune)
    tune.set_defaults(run=_tune)
    add_run_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``movielens-rec`` console script."""
    args = parse_args(build_parser(), argv)
    args.argv = None if argv is None else list(argv)
    try:
        # One torch thread for every command: a threaded torch waiting for a busy core made the
        # same work up to 100 times slower on shared machines (see agents/threads.py).
        with torch_threads(1):
            return args.run(args)
    except (
        movielens_env.MovieLensRecError
    ) as exc:  # deliberate errors only: bugs keep their traceback
        print(f"movielens-rec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: what was written whole is kept, nothing half-written
        print("\nmovielens-rec: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a path the user gave, or $MOVIELENS_DATA, loops
            print(
                f"movielens-rec: error: {exc.filename}: a loop of symbolic links", file=sys.stderr
            )
            return 2
        if exc.errno not in _FULL:
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        print(
            f"movielens-rec: error: {exc.strerror}{where}; what was being written was discarded "
            "(files are written whole or not at all)",
            file=sys.stderr,
        )
        return 2


# Write failures of the machine, not of this code: a full disk or quota, a file-size limit, a
# read-only file system.
_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}


if __name__ == "__main__":
    sys.exit(main())
