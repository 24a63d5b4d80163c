"""``movielens-rec train | evaluate | recommend``: every registered agent with a trained artefact
(DRR, the SB3 agents, a plugin's), driven from the agent registry.

``train`` writes a run folder through the agent's :class:`~agents.artefact.Artefact`;
``evaluate`` and ``recommend`` find the agent a folder's ``run.json`` names and load it with
that agent's loader, so they read the benchmark's ``runs/<agent>-seed<N>/`` folders too.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from movielens_env import MovieLensRecEnv
from movielens_env.checks import budget
from movielens_env.data.formats import DATASET_NAMES
from movielens_env.errors import ArgumentError
from movielens_env.evaluation import names
from movielens_env.evaluation.exports import export_recommendations
from movielens_env.evaluation.policies import PolicyActor, Ranker, checked_ranking
from movielens_env.evaluation.protocols import (
    PROTOCOLS,
    evaluate,
    evaluate_offline,
    heldout_env,
    protocol_candidates,
)
from movielens_env.simulator.scoring import rank_by_action
from movielens_env.storage import require_memory

from . import registry
from .artefact import Artefact, RunRequest
from .config_values import with_options
from .drr.run_dir import CHECKPOINT
from .env_options import add_env_options, env_options, nonempty
from .fields import check_seed
from .folder_lock import lock_folder
from .plugins import import_plugin
from .run_folder import (
    RUN_FILE,
    RunFolderError,
    check_folder_path,
    check_replaceable,
    check_run_dir,
    holds_run,
    read_run_info,
    results_folder_around,
)

DEFAULT_AGENT = "drr-ave"


def recorded_agent(run_dir: Path) -> str:
    """The agent that made the run in ``run_dir``, as its ``run.json`` names it.

    Raises:
        RunFolderError: no folder, no run in it, or it names an agent not registered here.
    """
    if not run_dir.is_dir():
        stored = run_dir.parent / f"{run_dir.name}.json"
        if run_dir.parent.name == "runs" and stored.is_file():
            raise RunFolderError(
                f"{run_dir}: no such folder (the benchmark's stored result {stored.name} keeps "
                "its metrics, but its trained model was deleted; delete the result and rerun "
                "the benchmark to train it again)"
            )
        raise RunFolderError(f"{run_dir}: no such folder")
    info = read_run_info(run_dir)
    if info is not None and "agent" in info:
        agent = info["agent"]
        if agent not in registry.AGENTS:
            raise RunFolderError(
                f"{run_dir / RUN_FILE} names agent {agent!r}, which is not registered here "
                "(a plugin's? pass --plugin MODULE)"
            )
        return agent
    if (run_dir / CHECKPOINT).is_file():  # DRR runs from before run.json named their agent
        from .drr.checkpoint import load_checkpoint

        return load_checkpoint(run_dir)[1].state
    raise RunFolderError(
        f"{run_dir} holds no run (no {RUN_FILE} naming its agent, no {CHECKPOINT}); give a "
        "folder written by movielens-rec train or benchmark"
    )


def _budget(args: argparse.Namespace, agent: str, artefact: Artefact) -> int:
    """The run's budget in the agent's own unit; the other unit is refused, not converted."""
    other = "timesteps" if artefact.budget == "episodes" else "episodes"
    if getattr(args, other) is not None:
        raise ArgumentError(f"{agent} trains for --{artefact.budget}, not --{other}")
    given = getattr(args, artefact.budget)
    return budget(f"--{artefact.budget}", artefact.default_budget if given is None else given)


def _train(args: argparse.Namespace) -> int:
    for module in args.plugin:
        import_plugin(module)
    out = Path(nonempty("--out", args.out)).expanduser()
    check_run_dir(out, args.resume, args.force)
    results = results_folder_around(out)
    if results is not None:  # a run there would stand for a result it did not make
        raise RunFolderError(
            f"{out} lies in a benchmark's results folder ({results}); give a run its own --out"
        )
    if args.resume:  # the run's own agent, config, seed and env; what is given must agree
        agent = recorded_agent(out)
        if args.agent is not None and args.agent != agent:
            raise RunFolderError(f"{out} holds a {agent} run; resume it as {agent} (no --agent)")
    else:
        agent = DEFAULT_AGENT if args.agent is None else args.agent
    artefact = registry.get_artefact(agent)
    if args.force:
        check_replaceable(out, artefact.files)
    if args.resume and artefact.resume is None:
        raise RunFolderError(
            f"{agent} runs cannot be resumed (Stable-Baselines3 saves no replay buffer with the "
            "model, so training would not continue as it would have); pass --force to replace "
            "the run instead"
        )
    budget = _budget(args, agent, artefact)
    if args.resume and artefact.resume is not None:
        config, seed, env_kwargs = artefact.resume(out)
    else:
        config, seed, env_kwargs = artefact.config, 0, {"dataset": "synthetic"}
    config = with_options(config, args.config, args.set)
    seed = check_seed("seed", seed if args.seed is None else args.seed)
    if args.dataset is not None:
        env_kwargs["dataset"] = args.dataset
    env_kwargs = {**env_kwargs, "data_dir": args.data_dir, **env_options(args)}
    registry.get_agent(agent).check_env(env_kwargs)
    bars: list[tqdm] = []  # the bar appears with the first progress, once every check passed

    def progress(done: int, episode_return: float | None) -> None:
        if not bars:
            unit = artefact.budget.removesuffix("s")
            bars.append(tqdm(total=budget, desc=f"{agent} seed {seed}", unit=unit))
        bars[0].update(done - bars[0].n)
        if episode_return is not None:
            bars[0].set_postfix_str(f"return {episode_return:+.2f}", refresh=False)

    request = RunRequest(
        agent, config, env_kwargs, seed, budget, out, args.resume, args.force, progress
    )
    try:
        with lock_folder(out, "train", RunFolderError):  # a second train there is refused
            trained = artefact.train(request)
    finally:
        for bar in bars:
            bar.close()
    print(f"\nTrained {agent} for {budget} {artefact.budget}; test split after training:")
    for name in names.AFTER_TRAINING:
        if name in trained.metrics:
            print(f"  {name}: {trained.metrics[name]:.4f}")
    print(f"Run directory: {out} ({', '.join(trained.files)})")
    return 0


def _load(args: argparse.Namespace) -> tuple[str, Any, dict[str, Any]]:
    """The agent a run folder names, its trained policy and its env arguments."""
    for module in args.plugin:
        import_plugin(module)
    run_dir = Path(args.run_dir)
    agent = recorded_agent(run_dir)
    policy, env_kwargs = registry.get_artefact(agent).load(run_dir, data_dir=args.data_dir)
    return agent, policy, env_kwargs


def _evaluate(args: argparse.Namespace) -> int:
    agent, policy, env_kwargs = _load(args)
    info = read_run_info(Path(args.run_dir)) or {}
    done, planned = info.get("episodes_done"), info.get("episodes")
    if isinstance(done, int) and isinstance(planned, int) and done < planned:
        print(f"Note: the run stopped at {done} of its {planned} episodes (--resume continues it)")
    summary = evaluate(policy, env_kwargs, name=agent).summary()
    print(f"{agent} from {args.run_dir} on {env_kwargs['dataset']} (test split)")
    for name, value in summary.items():
        print(f"  {name:24s} {value:.4f}")
    return 0


def _recommend(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise ArgumentError(f"--k must be >= 1, got {args.k}")
    if args.all_test_users == (args.user is not None):
        raise ArgumentError("give either --user RAW_ID or --all-test-users (not both)")
    output = None if args.output is None else Path(nonempty("--output", args.output)).expanduser()
    if args.all_test_users:
        if output is None:
            raise ArgumentError("--all-test-users needs --output FILE.csv")
        _check_output(output, args.force)
    elif output is not None:
        raise ArgumentError("--output goes with --all-test-users; one user's list is printed")
    agent, policy, env_kwargs = _load(args)
    env = heldout_env(env_kwargs)  # the test split, without the wrappers' max_episode_steps
    data = env.world.dataset
    if args.k > data.n_items:
        raise ArgumentError(f"--k {args.k} is beyond the catalogue ({data.n_items} items)")
    if output is not None:
        users = len(env.eligible_users)
        require_memory(
            users * args.k * 8, f"--k {args.k} for {users:,} test users",
            lambda available: available // (users * 8), ArgumentError,
        )  # fmt: skip
        result = evaluate_offline(policy, env_kwargs, (args.protocol,), (args.k,), agent)
        try:
            export_recommendations(result, env.world, args.protocol, output, args.force)
        except FileExistsError:  # made by another command while this one ranked
            raise ArgumentError(
                f"--output {output} was created while recommendations were computed (by "
                "another command?); it was kept: pass --force to replace it"
            ) from None
        shown = f"the top {args.k} ({args.protocol}) of {len(result.users)} test users"
        print(f"Wrote {shown} to {output}")
        return 0
    user = _test_user(env, args.user)
    obs, info = env.reset(options={"user_id": args.user})
    candidates = protocol_candidates(env.world, user, args.protocol)
    if isinstance(policy, Ranker):  # a plugin's model may rank, or be any policy evaluate takes
        top = checked_ranking(policy, user, candidates, args.k, agent)
    else:
        action = PolicyActor(policy, env.vectors.dim, agent)([obs])[0]
        top = rank_by_action(env.vectors, action, candidates, args.k)
    print(f"User {args.user}, who recently liked:")
    for item in data.item_index(info["history_item_ids"]):
        print(f"    {data.title(int(item))}")
    among = {"rerank": "items rated in the test split", "full": "items not rated in train"}
    print(f"Top {len(top)} recommendations of {agent} ({among[args.protocol]}):")
    for rank, item in enumerate(top, start=1):
        print(f"  {rank:2d}. {data.title(int(item))}  (item {data.item_ids[item]})")
    return 0


def _test_user(env: MovieLensRecEnv, raw_id: int) -> int:
    """The internal id of ``--user``, refused with the option's name where it cannot be served."""
    data = env.world.dataset
    user = int(data.user_index(raw_id))
    if user < 0:
        raise ArgumentError(f"--user {raw_id} is not a user of {data.name!r}")
    if user not in set(env.eligible_users.tolist()):
        raise ArgumentError(
            f"--user {raw_id} has fewer than history_len={env.history_len} positive train "
            "ratings, so no episode (and no recommendation) starts from them"
        )
    return user


def _check_output(path: Path, force: bool) -> None:
    """``--output`` must be a file path, and an existing file is replaced only with ``--force``."""
    if path.is_dir():
        raise ArgumentError(f"--output {path} is a folder; give the path of a CSV file")
    check_folder_path(path.parent, ArgumentError)
    from .tune.study import RECORD as TUNE_RECORD

    try:
        folder = path.resolve().parent
    except RuntimeError:  # Python 3.11's pathlib on a loop of links (later ones raise ELOOP)
        raise ArgumentError(f"--output {path}: a loop of symbolic links") from None
    tune_folder = (folder / TUNE_RECORD).exists()  # a study's journal is lost with its trials
    if holds_run(folder) or results_folder_around(folder) is not None or tune_folder:
        raise ArgumentError(
            f"--output {path} lies in a run or a benchmark's results folder, or a tune "
            "study's folder, whose files it could replace; write recommendations elsewhere"
        )
    if path.exists() and not force:
        raise ArgumentError(f"--output {path} exists; pass --force to replace it")


def _add_plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE",
        help="import MODULE first (it may register agents); repeatable",
    )  # fmt: skip


def add_commands(commands: Any) -> None:
    """Register ``train``, ``evaluate`` and ``recommend`` on the CLI's sub-parsers."""
    train = commands.add_parser("train", help="train an agent into a run folder")
    train.add_argument(
        "--agent", default=None,
        help="a registered agent with a trained artefact: DRR (drr-ave, drr-u, drr-p, drr-n) "
        "or SB3 (ddpg, td3, sac) (default: drr-ave; with --resume, the run's)",
    )  # fmt: skip
    train.add_argument("--dataset", default=None, choices=DATASET_NAMES,
                       help="default: synthetic")  # fmt: skip
    train.add_argument("--data-dir", default=None, help="GroupLens folder or zip")
    train.add_argument(
        "--episodes", type=int, default=None,
        help="DRR's budget (default 5000; with --resume, the run's new total)",
    )  # fmt: skip
    train.add_argument("--timesteps", type=int, default=None,
                       help="the SB3 agents' budget in env steps (default 10000)")  # fmt: skip
    train.add_argument("--seed", type=int, default=None, help="default: 0")
    train.add_argument("--out", required=True, help="run directory")
    train.add_argument(
        "--resume", action="store_true",
        help="continue the run in --out from its checkpoint (DRR), with its own agent, config, "
        "seed and env; --episodes is then the run's new total (at least the episodes it holds). "
        "An interrupted run continues exactly; a finished one extended to more episodes "
        "continues too, but its replay's importance-weight schedule (annealed over the total) "
        "differs from that of a run trained that long from the start",
    )  # fmt: skip
    train.add_argument(
        "--force", action="store_true",
        help="replace the run --out already holds, once the new run's files are whole (DRR: at "
        "its first checkpoint); without it, a folder holding a run is refused",
    )  # fmt: skip
    train.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a field of the agent's config (DRRConfig, SB3Config or SACConfig), read by "
        "its type and checked for range, e.g. --set actor_lr=3e-4 or --set net_arch=[64,64]",
    )  # fmt: skip
    train.add_argument("--config", default=None, metavar="FILE.json",
                       help="config fields as a JSON object (--set overrides them)")  # fmt: skip
    _add_plugin_option(train)
    add_env_options(train)
    train.set_defaults(run=_train)

    evaluate_cmd = commands.add_parser(
        "evaluate", help="offline metrics and online return of a run folder (train's, benchmark's)"
    )
    evaluate_cmd.add_argument("run_dir")
    evaluate_cmd.add_argument("--data-dir", default=None, help="if the data moved")
    _add_plugin_option(evaluate_cmd)
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
    _add_plugin_option(recommend)
    recommend.set_defaults(run=_recommend)
