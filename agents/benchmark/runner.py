"""The benchmark: every (agent, seed) trained and evaluated the same way, results kept per run.

Each run's result is written (atomically) as soon as it ends, under ``OUT/runs/``; a rerun with
the same settings skips the runs already there, so an interrupted benchmark loses at most the
run in progress. The reference policies (greedy, myopic, planner, and a random policy) are played
once per configuration, before the runs, and kept in ``OUT/references.json``: every run's record
holds its normalized score, ``100 * (R - R_random) / (R_planner - R_random)``.

The record is the result: it is reused even where the run's folder (``OUT/runs/<agent>-seed<N>/``,
the trained model ``movielens-rec evaluate`` reads) was deleted or damaged, which the benchmark
then says on stderr; deleting the record trains the run again.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from movielens_env import load_world
from movielens_env.checks import budget, positive_int
from movielens_env.errors import AgentError, ArgumentError, MovieLensRecError
from movielens_env.evaluation import names
from movielens_env.evaluation.headroom import REFERENCE_NAMES, normalized_score
from movielens_env.evaluation.protocols import (
    episode_steps,
    evaluate,
    evaluation_users,
    heldout_env,
    online_reward_models,
)
from movielens_env.evaluation.references import BeamPlanner
from movielens_env.storage import atomic_write, make_folder, read_json

from ..drr.config import budget_episodes
from ..fields import check_seed
from ..folder_lock import lock_folder, lock_problem
from ..plugins import import_plugin
from ..registry import (
    AGENTS,
    TrainContext,
    TrainedAgent,
    agent_names,
    check_agent_fits,
    configure_agent,
    get_agent,
)
from ..run_folder import (
    BENCHMARK_RUN_MARK,
    RunFolderError,
    folders_at,
    holds_run,
    is_results_folder,
    json_env_kwargs,
    markers_not_its_own,
    read_run_info,
    run_damage,
    run_files,
)
from .env_key import key_env_options
from .executors import Executor, LocalExecutor, RunJob, RunsFailedError, SerialExecutor
from .reference_play import episodes_per_model, play_references
from .stored import (
    MAX_RESULT_BYTES,
    OUTPUT_FILES,
    ResultsFolderError,
    canonical_key,
    check_results_folder,
    check_run,
    classify_record,
    read_record,
    refuse_other_configs,
    remove_other_configs,
    report_invalid,
    run_name_parts,
    write_record,
)

# 2: slates chosen by exact re-scoring of near-ties; DRR collects from 8 sub-envs.
# 3: item vectors carry the MF bias; offline rankings by exact scoring; user models; references
#    and normalized scores.
RESULT_VERSION = 3


@dataclass(frozen=True)
class BenchmarkConfig:
    """What to run.

    Attributes:
        dataset: dataset name (``synthetic``, ``ml-100k``, ...).
        data_dir: GroupLens folder or zip, if not cached.
        agents: registered agent names.
        seeds: one run per agent and seed.
        timesteps: environment steps of each RL agent's training.
        out_dir: results folder (``runs/``, leaderboard, plots).
        env_options: other ``MovieLensRec-v0`` arguments (``user_model``, ``history_len``,
            ``max_episode_steps`` (the episode length, 10 if absent), ...).
        references: play the reference policies first and give every run its normalized
            score (a few seconds to minutes, once per configuration; the CLI always does).
        planner_width: the planner's beam width (its cost grows linearly; wider raises the
            bar the normalized score measures against).
    """

    dataset: str = "synthetic"
    data_dir: str | None = None
    agents: tuple[str, ...] = ("random", "popularity", "mf", "ddpg", "td3", "sac")
    seeds: tuple[int, ...] = (0, 1, 2)
    timesteps: int = 10_000
    out_dir: Path = Path("runs/benchmark")
    env_options: dict[str, Any] = field(default_factory=dict)
    references: bool = True
    planner_width: int = 128

    def __post_init__(self) -> None:
        _check_names("agents", self.agents, str)
        _check_names("seeds", self.seeds, int)
        for seed in self.seeds:
            check_seed("each of seeds", seed)
        budget("timesteps", self.timesteps)
        positive_int("planner_width", self.planner_width)
        chosen_here = sorted(set(self.env_options) & {"dataset", "data_dir", "split"})
        if chosen_here:  # the benchmark trains on train and evaluates on test, itself
            raise ArgumentError(
                f"BenchmarkConfig.env_options may not set {', '.join(chosen_here)}: the dataset "
                "has its own fields, and the benchmark trains on the train split and evaluates "
                "on the test split itself"
            )

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the training env."""
        return {"dataset": self.dataset, "data_dir": self.data_dir, **self.env_options}

    def data_fingerprint(self) -> str:
        """The content of the ratings this configuration reads (not where they lie)."""
        return load_world(**self.env_kwargs()).dataset.fingerprint()

    def run_key(self, agent: str, data: str) -> dict[str, Any]:
        """What must match for a stored run to be reused: everything that changes a result
        (the data's fingerprint ``data``, env arguments, the agent's config, the budget, the
        result version); not paths, which are local."""
        entry = get_agent(agent)
        return {
            **self.shared_key(data),
            "agent_config": entry.config,
            "agent_code": entry.code,
            "timesteps": self.timesteps if entry.is_rl else None,
        }

    def shared_key(self, data: str) -> dict[str, Any]:
        """The part of :meth:`run_key` that is the same for every agent."""
        return {
            "version": RESULT_VERSION,
            "dataset": self.dataset,
            "data": data,
            "env_options": key_env_options(self.env_options),
            # Normalized scores are measured against the planner of this width.
            "references": {"planner_width": self.planner_width} if self.references else None,
        }


def _check_names(label: str, values: Any, kind: type) -> None:
    """A non-empty tuple of distinct values of ``kind``: a repeat would count one run twice."""
    if not isinstance(values, tuple) or not values:
        raise ArgumentError(f"{label} must name at least one, got {values!r}")
    if not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
        raise ArgumentError(f"{label} must be {kind.__name__}s, got {list(values)}")
    repeated = sorted({v for v in values if values.count(v) > 1}, key=str)
    if repeated:
        raise ArgumentError(f"{label} name {repeated} more than once: each run would count twice")


def run_path(out_dir: Path, agent: str, seed: int) -> Path:
    """Where the result of one run is stored."""
    return out_dir / "runs" / f"{agent}-seed{seed}.json"


def references_key(config: BenchmarkConfig, data: str) -> dict[str, Any]:
    """What must match for stored references to be reused."""
    return {
        "version": RESULT_VERSION,
        "dataset": config.dataset,
        "data": data,
        "env_options": key_env_options(config.env_options),
        "planner_width": config.planner_width,
        # Stored references without one added since are recomputed (with --force).
        "references": list(REFERENCE_NAMES),
    }


def compute_references(
    config: BenchmarkConfig, data: str, progress: bool = False, workers: int = 1
) -> dict[str, Any]:
    """Every reference's online return (mean, 95% interval over users) per reward model, with a
    seeded random policy as the normalized score's zero; ``progress`` shows a bar over users
    (the planner, the slow part, can take minutes on a real catalogue); the reward models are
    played side by side in up to ``workers`` processes (the same returns)."""
    env_kwargs = config.env_kwargs()
    env = heldout_env(env_kwargs)
    users = evaluation_users(env.world, env.history_len, env.eligible_users)
    _checked_planner(config)  # refused here, before any worker starts
    reward_models = online_reward_models(env.world)
    total = episodes_per_model(len(users)) * len(reward_models)
    with tqdm(total=total, disable=not progress, unit="user", desc="references") as bar:
        models, seconds = play_references(
            env_kwargs, reward_models, users, config.planner_width, workers, bar.update
        )
    return {"key": references_key(config, data), "n_users": len(users), "returns": models,
            "seconds": seconds}  # fmt: skip


def references_path(out_dir: Path) -> Path:
    """Where the references of a results folder are stored."""
    return out_dir / "references.json"


def stored_or_computed_references(
    config: BenchmarkConfig, force: bool = False, progress: bool = False, workers: int = 1
) -> dict[str, Any]:
    """The references of ``config``: stored in ``OUT/references.json``, else computed (with a
    progress bar if ``progress``, in up to ``workers`` processes) and stored (another
    configuration's are replaced only with ``force``)."""
    data = config.data_fingerprint()
    path = references_path(config.out_dir)
    found = read_record(path, references_key(config, data))
    if found.status == "reuse" and found.record is not None:
        return found.record
    if found.status == "other" and not force:
        refuse_other_configs([(path, found.reason)], config.out_dir)
    if found.status == "invalid":
        report_invalid(path, found.reason)
    computed = compute_references(config, data, progress, workers)
    _check_data_unchanged(config, data, "the references")
    return write_record(path, computed)


def normalized_metrics(metrics: dict[str, float], references: dict[str, Any]) -> dict[str, float]:
    """``online/normalized_<model>`` for each ``online/return_<model>`` the references cover."""
    out = {}
    for model, refs in references["returns"].items():
        value = metrics.get(names.online_return(model))
        if value is not None:
            score = normalized_score(value, refs["random"][0], refs["planner"][0])
            out[names.normalized(model)] = score
    return out


def run_one(
    config: BenchmarkConfig,
    agent: str,
    seed: int,
    on_step=lambda n: None,
    references: dict[str, Any] | None = None,
    data: str | None = None,
    replace: bool = False,
) -> dict:
    """Train and evaluate one agent with one seed; return its result record (with normalized
    scores where ``references`` are given; ``data``: the data's fingerprint, computed if
    ``None``). A run already in the run's folder is replaced only if ``replace``.

    Raises:
        ResultsFolderError: the run's folder is in use (a ``train`` into it), or holds a run
            and ``replace`` was not given (one made there since the benchmark looked).
    """
    entry = get_agent(agent)
    env_kwargs = config.env_kwargs()
    run_dir = config.out_dir / "runs" / f"{agent}-seed{seed}"
    key = config.run_key(agent, data or config.data_fingerprint())
    make_folder(run_dir)
    # Held while training: a train into the same folder, started before or during, is refused.
    with lock_folder(run_dir, "benchmark", ResultsFolderError):
        # Replaced only if still the benchmark's: a train run made there since the plan (while
        # --force's removal left the folder empty, say) is someone else's.
        if holds_run(run_dir) and (not replace or _foreign(run_dir, True)):
            raise ResultsFolderError(
                f"{run_dir} holds a run this benchmark did not make (made there since it "
                "started?); it is kept: move it away, or give the benchmark another --out"
            )
        _mark_started(run_dir, key)
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trained = entry.train(
                TrainContext(env_kwargs, seed, config.timesteps, run_dir, on_step, entry.config)
            )
        for warning in caught:  # said as they would have been, and kept in the record below
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
        if not isinstance(trained, TrainedAgent):
            raise AgentError(
                f"agent {agent!r}: its trainer returned {type(trained).__name__}, not a "
                "TrainedAgent"
            )
        trained_at = time.perf_counter()
        _mark_own_run(run_dir, key)
    result = evaluate(trained.policy, env_kwargs, name=agent)
    metrics = result.summary()
    if references is not None:
        metrics.update(normalized_metrics(metrics, references))
    return {
        "agent": agent,
        "seed": seed,
        "key": key,
        # Whether the trainer left a run (the model evaluate reads) beside the result.
        "saved_run": holds_run(run_dir),
        # An agent that never took a gradient step is its random initialisation: the
        # leaderboard says so whenever it shows the result, not only when it was trained.
        "untrained": any(UNTRAINED in str(warning.message) for warning in caught),
        "n_users": len(result.users),
        "metrics": metrics,
        "learning_curve": _thinned([[int(t), float(r)] for t, r in trained.learning_curve]),
        "train_seconds": trained_at - started,
        "eval_seconds": time.perf_counter() - trained_at,
    }


def execute_job(job: RunJob, on_step: Callable[[int], None] = lambda n: None) -> dict[str, Any]:
    """Run ``job`` in this process (a worker's or the benchmark's own) and return its record:
    the agent registered as in the benchmark's process (its plugin imported, its ``--config``
    applied), else an error saying why it cannot be."""
    if job.agent not in agent_names() and job.module is not None:
        import_plugin(job.module)
    if job.agent not in agent_names():
        raise ArgumentError(
            f"agent {job.agent!r} is not registered in this worker process: it was registered "
            "by a script, which a worker cannot import; register it in a module (given as "
            "--plugin MODULE, or imported by the script), or run the grid with --jobs 1"
        )
    entry = get_agent(job.agent)
    if entry.config != job.agent_config and entry.artefact is not None:
        entry = configure_agent(job.agent, job.agent_config)
    if entry.config != job.agent_config or entry.code != job.agent_code:
        raise ArgumentError(
            f"agent {job.agent!r} is registered in the worker process with another config or "
            "code than in the benchmark's: do not edit a plugin while its grid runs"
        )
    return run_one(job.config, job.agent, job.seed, on_step, job.references, job.data, job.replace)


# A record keeps at most this many points of its learning curve (the plot bins them in 20), so
# that a record of a long run stays far below MAX_RESULT_BYTES.
MAX_CURVE_POINTS = 10_000


def _thinned(curve: list[list[Any]]) -> list[list[Any]]:
    """``curve`` with at most :data:`MAX_CURVE_POINTS` points, evenly spaced, the last kept."""
    if len(curve) <= MAX_CURVE_POINTS:
        return curve
    keep = np.unique(np.linspace(0, len(curve) - 1, MAX_CURVE_POINTS).round().astype(int))
    return [curve[i] for i in keep]


def _other_runs_outside_the_grid(config: BenchmarkConfig, data: str) -> list[tuple[Path, str]]:
    """The stored runs of agents or seeds outside ``config``'s grid that another configuration
    made, with why (their key as this configuration would make it differs)."""
    grid = {
        run_path(config.out_dir, agent, seed) for agent in config.agents for seed in config.seeds
    }
    found = []
    for path in sorted((config.out_dir / "runs").glob("*.json")):
        if path in grid or path.stem in (".", ".."):  # no run's name: its folder would be runs/
            continue  # or the results folder itself
        try:  # read once: a folder of many records outside the grid is read before any work
            record = read_json(path, MAX_RESULT_BYTES)
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # not a record: nobody's result, and nothing a benchmark reads
        agent = record.get("agent") if isinstance(record, dict) else None
        if not isinstance(agent, str) or not isinstance(record.get("key"), dict):
            continue
        if agent in AGENTS:
            key = config.run_key(agent, data)
        else:  # a plugin not loaded now: judged by what does not depend on the agent
            key = {**record["key"], **config.shared_key(data)}
            if record["key"].get("timesteps") is not None:
                key["timesteps"] = config.timesteps
        if record["key"] == json.loads(json.dumps(key)):
            continue  # this configuration's: kept as it is, so its checksum is not needed
        stored = classify_record(record, key)
        if stored.status == "other":
            found.append((path, stored.reason))
    return found


# Config fields a benchmark's trainer sets itself, whatever the agent's config says: DRR's
# runs evaluate and checkpoint once, at their end. Neither changes what is learned.
_SET_BY_THE_BENCHMARK = ("eval_every", "checkpoint_every")


# What DRR's and the SB3 trainers warn when no gradient step was taken.
UNTRAINED = "took no gradient step"


def _mark_started(run_dir: Path, key: dict[str, Any]) -> None:
    """Mark ``run_dir`` as this benchmark's before its trainer writes there: files a killed
    run leaves (a model without its ``run.json``) are then known as the benchmark's, which it
    may replace, and never taken for a user's."""
    mark = json.dumps({"key": key, "run": None}, indent=1)
    atomic_write(run_dir / BENCHMARK_RUN_MARK, lambda tmp: tmp.write_text(mark), suffix=".json")


def _foreign(run_dir: Path, has_run: bool) -> bool:
    """Whether ``run_dir`` is not the benchmark's to replace: a link (to a run elsewhere, whose
    files would go through it) or a run no benchmark made there."""
    return run_dir.is_symlink() or (has_run and not _benchmark_made(run_dir))


def _benchmark_made(run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` is a benchmark's: its mark is there, and names this run.json
    (or none, the benchmark having stopped while training; or the run.json is damaged, which
    the benchmark then replaces, with ``--force`` if it is of another configuration)."""
    try:
        mark = read_json(run_dir / BENCHMARK_RUN_MARK)
    except (OSError, ValueError):
        return False
    if not isinstance(mark, dict):
        return False
    try:
        info = read_run_info(run_dir) or {}
    except RunFolderError:
        # A run.json is written whole: damaged, it is the benchmark's only if the benchmark
        # finished writing it (its mark names it), not beside a mark of a run in training.
        return mark.get("run") is not None
    if mark.get("run") is None:
        return _trained_under(mark, info, run_dir.name)
    return mark.get("run") == info.get("checksum")


def _trained_under(mark: dict[str, Any], info: dict[str, Any], folder: str) -> bool:
    """Whether ``info``, the ``run.json`` in benchmark run folder ``folder`` whose mark names no
    run, is what the run the mark started wrote before the benchmark stopped: of the folder's
    agent and seed, and of the mark's data (stated in the record), env, budget and agent config,
    finished. Agents that save no model leave that mark for good, and a stopped benchmark
    leaves it: a train run put beside it is a user's, never the benchmark's to remove."""
    if not info:
        return True  # stopped after the model's first file, before its run.json
    agent, seed = run_name_parts(folder)
    key = mark.get("key")
    if (
        not isinstance(key, dict)
        or not isinstance(key.get("env_options"), dict)
        or not seed.isdigit()
        or info.get("agent") != agent
        or info.get("seed") != int(seed)
        or "config" not in info
        # Stated, and the same: a record without its data (DRR's, before it held it) or, for an
        # RL agent, without its budget (a plugin's "steps") is not taken for the benchmark's.
        or info.get("data") != key.get("data")
        or (key.get("timesteps") is not None and not {"timesteps", "episodes"} & set(info))
    ):
        return False
    env_kwargs = {"dataset": key.get("dataset"), **key["env_options"]}
    return not _unlike(info, env_kwargs, agent, int(seed), key)


def _config_fields(values: Any) -> Any:
    """An agent config as a run's record and a mark compare it: without the fields a
    benchmark's trainer sets itself, as JSON reads it back."""
    if not isinstance(values, dict):
        return values
    kept = {k: v for k, v in values.items() if k not in _SET_BY_THE_BENCHMARK}
    return json.loads(json.dumps(kept))


def _users_files(run_dir: Path, agent: str) -> list[str]:
    """The files of ``agent``'s run names in ``run_dir``, a folder holding no run, where no
    benchmark started one there: a user's own, which training would overwrite."""
    artefact = get_agent(agent).artefact
    if artefact is None or (run_dir / BENCHMARK_RUN_MARK).exists():
        return []
    return [name for name in artefact.files if (run_dir / name).exists()]


def _mark_own_run(run_dir: Path, key: dict[str, Any]) -> None:
    """Mark the run just trained in ``run_dir`` (if its trainer left one) as this benchmark's."""
    try:
        info = read_run_info(run_dir)
    except RunFolderError:
        return
    if info is None:
        return
    mark = json.dumps({"key": key, "run": info["checksum"]}, indent=1)
    atomic_write(run_dir / BENCHMARK_RUN_MARK, lambda tmp: tmp.write_text(mark), suffix=".json")


def _own_run(config: BenchmarkConfig, agent: str, seed: int, run_dir: Path, data: str) -> bool:
    """Whether ``run_dir``, a run no stored result accounts for, is what this configuration's
    run of ``agent`` and ``seed`` trains: a benchmark marked it
    (:data:`~agents.run_folder.BENCHMARK_RUN_MARK`) with this run's key (its budget and data
    too) and its ``run.json`` as written then, which names that agent, seed, config and env
    arguments. A benchmark interrupted between saving the run and
    storing its result leaves one, as does deleting the result; training it again replaces it
    with the same. A train run there is never this benchmark's, whatever its settings."""
    try:
        info = read_run_info(run_dir)
        mark = read_json(run_dir / BENCHMARK_RUN_MARK)
    except (RunFolderError, OSError, UnicodeDecodeError, ValueError):
        return False
    if not isinstance(mark, dict):
        return False
    key = json.loads(json.dumps(config.run_key(agent, data)))
    if info is None:  # stopped after its first model file, before its run.json: its own
        return mark.get("run") is None and canonical_key(mark.get("key")) == key
    if not isinstance(info.get("config"), dict):
        return False
    # A mark without a run: the benchmark was stopped while training this run.
    if mark.get("run") not in (None, info["checksum"]) or canonical_key(mark.get("key")) != key:
        return False
    env_kwargs = json_env_kwargs(config.env_kwargs(), "")
    return info.get("agent") == agent and not _unlike(info, env_kwargs, agent, seed, key)


def _replaced(run_dir: Path, record: dict[str, Any], config: BenchmarkConfig) -> str:
    """Why the run in ``run_dir`` is not the one that made ``record`` ("" if it is, or if
    nothing tells): a run.json the benchmark did not write, a run of another configuration (its
    mark's key) or of another seed. Without a mark (folders of benchmarks before the marks, or
    a folder refilled by hand), what its ``run.json`` says is compared: seed, data, budget."""
    try:
        info = read_run_info(run_dir) or {}
    except RunFolderError:
        return ""
    try:
        mark = read_json(run_dir / BENCHMARK_RUN_MARK)
    except (OSError, UnicodeDecodeError, ValueError):
        mark = None
    if not isinstance(mark, dict):
        env_kwargs = json_env_kwargs(config.env_kwargs(), "")
        return _unlike(info, env_kwargs, record["agent"], record["seed"], record["key"])
    if mark.get("run") != info.get("checksum"):
        return "replaced by another run (its run.json is not the one the benchmark wrote)"
    if canonical_key(mark.get("key")) != canonical_key(json.loads(json.dumps(record["key"]))):
        return "replaced by a run of another configuration (its mark holds another key)"
    if info.get("seed", record["seed"]) != record["seed"]:
        return f"replaced by the run of seed {info.get('seed')}"
    return ""


def _same_env(stated: Any, env_kwargs: dict[str, Any]) -> bool:
    """Whether a run.json's ``env_kwargs`` (``stated``) give the env ``env_kwargs`` give,
    however spelled (``user_model="static"`` or left out)."""
    try:
        return isinstance(stated, dict) and key_env_options(stated) == key_env_options(env_kwargs)
    except MovieLensRecError:  # a split chosen: never a benchmark's run
        return False


def _unlike(
    info: dict[str, Any], env_kwargs: dict[str, Any], agent: str, seed: int, key: dict[str, Any]
) -> str:
    """How the run whose ``run.json`` is ``info`` differs from the run of ``agent`` and ``seed``
    keyed ``key`` (its data, budget and agent config) on the env ``env_kwargs`` (as a run.json
    records them), by what ``run.json`` states: "" where they agree, or where it does not say."""
    if not info:
        return ""
    if info.get("seed", seed) != seed:
        return f"replaced by the run of seed {info.get('seed')}"
    if info.get("data", key.get("data")) != key.get("data"):
        return "replaced by a run on other data (its run.json's data fingerprint differs)"
    stated = info.get("env_kwargs")
    if stated is not None and not _same_env(stated, env_kwargs):
        return "replaced by a run of other env arguments (its run.json's env_kwargs differ)"
    budget = key.get("timesteps")
    if budget is not None and "timesteps" in info and info["timesteps"] != budget:
        return f"replaced by a run of another budget ({info['timesteps']} timesteps)"
    if budget is not None and "episodes" in info:
        episodes = budget_episodes(budget, episode_steps(env_kwargs))
        if info["episodes"] != episodes:
            return f"replaced by a run of another budget ({info['episodes']} episodes)"
    done, planned = info.get("episodes_done"), info.get("episodes")
    if isinstance(done, int) and isinstance(planned, int) and done < planned:
        return f"replaced by an unfinished run ({done} of its {planned} episodes)"
    if "extended_from" in info:
        return f"replaced by a run extended from {info['extended_from']} episodes"

    if "config" in info and _config_fields(info["config"]) != _config_fields(
        key.get("agent_config")
    ):
        return "replaced by a run of another agent config (its run.json's config differs)"
    return ""


def _note_lost_run(path: Path, record: dict[str, Any], config: BenchmarkConfig) -> None:
    """Say (on stderr) that a reused result's run folder, the trained model ``movielens-rec
    evaluate`` reads, is missing or damaged: the stored record is the result and still counts
    (its number does not depend on the folder), but the model is gone."""
    agent = record["agent"]
    # Records from before "saved_run" existed: runs of agents with an artefact saved one.
    if not record.get("saved_run", get_agent(agent).artefact is not None):
        return
    run_dir = path.with_suffix("")
    damage = run_damage(run_dir, agent) or _replaced(run_dir, record, config)
    if damage:
        print(
            f"note: {run_dir} (the trained model movielens-rec evaluate reads) is {damage}; "
            f"the stored result {path.name} still counts (delete it to train the run again)",
            file=sys.stderr,
        )


def run_benchmark(
    config: BenchmarkConfig,
    progress: bool = True,
    force: bool = False,
    executor: Executor | None = None,
) -> list[dict[str, Any]]:
    """Play the references (unless stored), then run every (agent, seed) not already stored;
    return all run records of this config (:func:`stored_or_computed_references` then reads
    the references back).

    Stored runs are reused only when valid and made by this configuration; invalid ones are
    reported and recomputed. Runs or references of another configuration in ``out_dir``, of
    this grid's runs or not, are refused before any work, unless ``force``: then they are
    removed first (with their run folders and the old leaderboard and plots), so that the
    folder never mixes configurations. A run folder without its result is trained again where
    its ``run.json`` shows it is this configuration's (a benchmark stopped before it stored the
    result, or the result deleted) and marked it as its own; a train run there, or one of another
    configuration or agent, counts as another configuration's.

    ``executor`` runs the runs still to do (:mod:`~agents.benchmark.executors`; default: one
    after another in this process); each result is stored as soon as its run ends.

    Raises:
        RunsFailedError: runs failed in worker processes (the others were stored).
    """
    for agent in config.agents:
        entry = get_agent(agent)
        entry.check_env(config.env_kwargs())  # before any work
        if entry.artefact is not None and entry.artefact.budget == "episodes":  # DRR's
            budget_episodes(config.timesteps, episode_steps(config.env_kwargs()))
    check_results_folder(config.out_dir)
    # Held to the end: a second benchmark on this folder, of another configuration, would pass
    # the checks below before this one stored anything, then replace its results.
    with lock_folder(config.out_dir, "benchmark", ResultsFolderError):
        return _run_benchmark(config, progress, force, executor)


def _workers(executor: Executor | None) -> int:
    """Processes the references may use: the local executor's (a Ray cluster's workers are
    not this machine's cores; its references are played here)."""
    return executor.jobs if isinstance(executor, LocalExecutor) else 1


def _checked_planner(config: BenchmarkConfig) -> BeamPlanner:
    """The planner reference of ``config``, refused here if too wide for its episodes and
    catalogue (before the first user rather than at it)."""
    env_kwargs = config.env_kwargs()
    env = heldout_env(env_kwargs)
    planner = BeamPlanner(config.planner_width)
    if not planner.returns_myopic(env):
        users = evaluation_users(env.world, env.history_len, env.eligible_users)
        episodes = len(users) * len(online_reward_models(env.world))
        planner.check_plans(env, episode_steps(env_kwargs), episodes)
    return planner


def _check_what_runs_would_refuse(config: BenchmarkConfig) -> None:
    """Refuse, before anything is removed (``--force``) or computed, what the references or a
    trainer would refuse later: a planner too wide, networks or a replay too large for the
    observations of this env."""
    if config.references:
        _checked_planner(config)
    for agent in config.agents:
        check_agent_fits(agent, config.env_kwargs())


def _check_paths_free(config: BenchmarkConfig, todo: list[tuple[str, int]]) -> None:
    """Refuse, before anything is removed (``--force``) or computed, what training the runs
    ``todo`` would fail on later: a file (or a broken link) where the benchmark makes a folder
    (``runs/``, a run's folder), a folder where it writes a file (the leaderboard and plots, a
    run's mark and files), a run folder's lock name that is no lock file, or a user's
    ``run.json`` / ``checkpoint.pt`` that is no run. It failed there only after ``--force`` had
    removed the stored results."""
    out = config.out_dir
    folders = [out / "runs"]
    blocked = [f"{name} is a folder" for name in folders_at(out, OUTPUT_FILES)]
    for agent, seed in todo:
        artefact = get_agent(agent).artefact
        folder = run_path(out, agent, seed).with_suffix("")
        folders.append(folder)
        where = folder.relative_to(out)
        taken = folders_at(folder, (BENCHMARK_RUN_MARK, *(run_files() if artefact else ())))
        blocked += [f"{where / name} is a folder" for name in taken]
        lock = lock_problem(folder)
        if lock:
            blocked.append(f"{where}: {lock}")
        if artefact is not None:
            theirs = markers_not_its_own(folder, artefact.files)
            blocked += [f"{where / name} is no run's" for name in theirs]
            if is_results_folder(folder):  # a trainer gives a run no results folder
                blocked.append(f"{where} is a benchmark's results folder")
    for folder in folders:
        if folder.is_symlink() and not folder.exists():
            blocked.append(f"{folder.relative_to(out)} is a broken link")
        elif folder.exists() and not folder.is_dir():
            blocked.append(f"{folder.relative_to(out)} is a file")
    if blocked:
        raise ResultsFolderError(
            f"{out} holds what a benchmark cannot write over ({'; '.join(blocked[:3])}"
            f"{' and more' if len(blocked) > 3 else ''}): a file where it makes a folder, a "
            "folder where it writes a file, a lock that is no lock file, a user's run.json / "
            "checkpoint.pt, or another benchmark's results; move them away (--force neither "
            "removes nor replaces them)"
        )


class DataChangedError(MovieLensRecError):
    """The ratings a benchmark reads changed while it ran."""


def _check_data_unchanged(config: BenchmarkConfig, data: str, what: str) -> None:
    """Refuse to store ``what`` where the ratings are no longer those of fingerprint ``data``,
    which keys it: each run reloads them by name, and files replaced meanwhile are read again
    (cheap where nothing changed: the files' identity is checked, not their content).

    Raises:
        DataChangedError: naming what was not stored.
    """
    if config.data_fingerprint() != data:
        raise DataChangedError(
            f"the ratings changed while the benchmark ran: {what} came (at least in part) from "
            "other data than its key names and was not stored; run the benchmark again once "
            "the data stays put"
        )


def _run_benchmark(
    config: BenchmarkConfig, progress: bool, force: bool, executor: Executor | None
) -> list[dict[str, Any]]:
    """:func:`run_benchmark`, under the lock of its folder."""
    data = config.data_fingerprint()
    records, todo, others, users, foreign, invalid = [], [], [], [], [], []
    for agent in config.agents:
        for seed in config.seeds:
            path = run_path(config.out_dir, agent, seed)
            folder = path.with_suffix("")
            # Once per folder: without an intact run.json it loads the whole checkpoint.
            has_run = holds_run(folder)
            if not has_run:
                users += [folder / name for name in _users_files(folder, agent)]
            found = read_record(
                path, config.run_key(agent, data), lambda r, a=agent, s=seed: check_run(r, a, s)
            )
            if found.status == "reuse" and found.record is not None:
                records.append(found.record)
                continue
            if found.status == "other":
                others.append((path, found.reason))
            elif found.status == "invalid":
                invalid.append((path, found.reason))  # moved aside once nothing is refused
            if _foreign(folder, has_run):
                foreign.append(folder)  # a train run put there (or linked): never replaced
            elif (
                found.status != "other"
                and has_run
                and not _own_run(config, agent, seed, folder, data)
            ):
                # A benchmark's run no stored result accounts for, of another configuration.
                others.append((folder, "a run no stored result accounts for"))
            # Only a run there now may be replaced: one made there later is someone else's.
            todo.append((agent, seed, has_run))
    outside = _other_runs_outside_the_grid(config, data)
    # --force removes those: only where they are a benchmark's own, as in the grid.
    foreign += [
        path.with_suffix("")
        for path, _ in outside
        if _foreign(path.with_suffix(""), holds_run(path.with_suffix("")))
    ]
    if foreign:
        shown = ", ".join(str(path.relative_to(config.out_dir)) for path in foreign[:3])
        raise ResultsFolderError(
            f"{config.out_dir} holds runs no benchmark made, or links to runs elsewhere, in "
            f"its runs/ ({shown}{' and more' if len(foreign) > 3 else ''}: train runs?); they "
            "are never replaced or removed (--force neither): move them away, or give the "
            "benchmark another --out"
        )
    if users:
        shown = ", ".join(str(path.relative_to(config.out_dir)) for path in users[:3])
        raise ResultsFolderError(
            f"{config.out_dir} holds {shown}{' and more' if len(users) > 3 else ''} in run "
            "folders holding no run: files no benchmark wrote, which training would overwrite "
            "(--force neither): move them away"
        )
    others += outside
    if config.references:
        path = references_path(config.out_dir)
        found = read_record(path, references_key(config, data))
        if found.status == "other":
            others.append((path, found.reason))
    _check_what_runs_would_refuse(config)
    _check_paths_free(config, [(agent, seed) for agent, seed, _ in todo])
    if not force:
        refuse_other_configs(others, config.out_dir)
    for path, reason in invalid:
        report_invalid(path, reason)
    remove_other_configs([path for path, _ in others if path.suffix == ".json"], config.out_dir)
    for record in records:
        _note_lost_run(run_path(config.out_dir, record["agent"], record["seed"]), record, config)
    references = (
        stored_or_computed_references(config, True, progress, _workers(executor))
        if config.references
        else None
    )
    rl_steps = sum(config.timesteps for agent, _, _ in todo if get_agent(agent).is_rl)
    jobs = [
        RunJob(config, agent, seed, entry.config, entry.code, entry.module, references, data,
               replace)
        for agent, seed, replace in todo
        for entry in [get_agent(agent)]
    ]  # fmt: skip
    # The RL runs (the long ones) first: workers then end on short runs, not one on a long one.
    jobs.sort(key=lambda job: not get_agent(job.agent).is_rl)
    with tqdm(
        total=rl_steps + len(todo), disable=not progress, unit="step", desc="benchmark"
    ) as bar:

        def store(job: RunJob, record: dict[str, Any]) -> None:
            _check_data_unchanged(config, data, f"{job.name}'s result")
            record["config"] = {**asdict(config), "out_dir": str(config.out_dir)}
            records.append(write_record(run_path(config.out_dir, job.agent, job.seed), record))
            bar.set_postfix_str(f"{job.name} done")
            bar.update(1)

        failures = (executor or SerialExecutor()).run(execute_job, jobs, store, bar.update)
    if failures:
        raise RunsFailedError(failures)
    order = {agent: i for i, agent in enumerate(config.agents)}
    return sorted(records, key=lambda r: (order[r["agent"]], r["seed"]))
