"""Throughput of MovieLensRec: env steps per second, build time, peak memory, DRR speed.

Measures, on the synthetic data shaped like ML-1M and ML-25M (offline, nothing to download):

- steps per second of the single env as ``gym.make`` returns it, of Gymnasium's
  ``SyncVectorEnv`` over such envs, and of the native vector env, at several ``num_envs``;
- the time to build an env with a cold cache (generate data, split, fit MF) and a warm one;
- the peak resident memory of each measuring process;
- DRR-ave gradient updates per second, and the wall time of a full DRR-ave training run;
- the single env and the native vector env of each registered user-model variant (boredom,
  drift, patience), beside the static env;
- with ``--baseline CHECKOUT`` (another checkout of the project, e.g. a ``git worktree`` of an
  earlier commit), the static env's single, native and sync speeds of both code versions,
  measured alternately (three times each; medians), as ratios.

Every measurement runs in its own process (so memory peaks and caches do not mix), one after
the other, with random uniform actions. Speeds measured in one run are comparable as ratios;
absolute numbers depend on the machine, which the results record.

    python benchmarks/throughput.py --out benchmarks/results/throughput
    python benchmarks/throughput.py --baseline ../before --out benchmarks/results/throughput

``--quick`` runs a reduced set (ml-1m-sized only, short timings) to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SHAPES = {"ml-1m-sized": "synthetic-1m", "ml-25m-sized": "synthetic-25m"}
NUM_ENVS = (1, 4, 16, 64, 256, 1024)
SYNC_NUM_ENVS = (1, 4, 16, 64, 256)
TARGETS = {
    "single_ml1m_steps_per_s": 15_000,
    "native_ml1m_steps_per_s": 80_000,
    "native_over_sync": 5.0,
    "warm_build_ml25m_s": 60.0,
    "peak_memory_ml25m_gb": 4.0,
    "drr_5000_episodes_ml1m_min": 15.0,
    "static_over_baseline": 0.9,  # the user-dynamics issue: within 10% of the speed before it
    "single_over_bare": 0.5,  # the architecture issue: a lean step, half the bare limit
}


# ---------------------------------------------------------------------- measuring processes
def _peak_memory_gb() -> float:
    """Peak resident set size of this process (VmHWM), in GiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def _rate(step, batch: int, seconds: float) -> float:
    """Steps per second of ``step()`` (``batch`` env steps per call), over about ``seconds``."""
    for _ in range(3):
        step()
    calls, start = 0, time.perf_counter()
    while True:
        step()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and calls >= 5:
            return calls * batch / elapsed


def _work_build(dataset: str) -> dict[str, Any]:
    import gymnasium as gym

    import movielens_env  # noqa: F401  (registers the env)

    start = time.perf_counter()
    env = gym.make("MovieLensRec-v0", dataset=dataset)
    env.reset(seed=0)
    return {"seconds": time.perf_counter() - start, "peak_memory_gb": _peak_memory_gb()}


def _work_steps(
    dataset: str, kind: str, num_envs: int, seconds: float, env_id: str = "MovieLensRec-v0"
) -> dict[str, Any]:
    import gymnasium as gym
    import numpy as np

    import movielens_env  # noqa: F401

    rng = np.random.default_rng(0)
    if kind == "single":
        env = gym.make(env_id, dataset=dataset)
        env.reset(seed=0)
        actions = rng.uniform(-1, 1, (64, *env.action_space.shape)).astype(np.float32)
        counter = [0]

        def step() -> None:
            counter[0] += 1
            _, _, terminated, truncated, _ = env.step(actions[counter[0] % 64])
            if terminated or truncated:
                env.reset()

        rate = _rate(step, 1, seconds)
    else:
        mode = "sync" if kind == "sync" else "vector_entry_point"
        envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, dataset=dataset)
        envs.reset(seed=0)
        actions = rng.uniform(-1, 1, (8, *envs.action_space.shape)).astype(np.float32)
        counter = [0]

        def step() -> None:
            counter[0] += 1
            envs.step(actions[counter[0] % 8])  # both autoreset on the next step

        rate = _rate(step, num_envs, seconds)
    return {"steps_per_s": rate, "peak_memory_gb": _peak_memory_gb()}


def _work_bare(dataset: str, seconds: float) -> dict[str, Any]:
    """The bare limit of one single-env step: score the catalogue (the same float32 product),
    mask the few items already shown, take the argmax; nothing else."""
    import gymnasium as gym
    import numpy as np

    import movielens_env  # noqa: F401

    env = gym.make("MovieLensRec-v0", dataset=dataset).unwrapped
    items = env.vectors.items
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (64, items.shape[1])).astype(np.float32)
    shown = np.arange(0, 2 * env.history_len, 2)  # as many as an episode masks
    counter = [0]

    def step() -> None:
        counter[0] += 1
        scores = items @ actions[counter[0] % 64]
        scores[shown] = -np.inf
        int(scores.argmax())

    return {"steps_per_s": _rate(step, 1, seconds), "peak_memory_gb": _peak_memory_gb()}


def _work_drr_updates(dataset: str, seconds: float) -> dict[str, Any]:
    import numpy as np

    from agents.drr.agent import DRRAgent
    from agents.drr.config import DRRConfig
    from agents.drr.train import training_envs
    from agents.threads import torch_threads

    config = DRRConfig()
    envs = training_envs({"dataset": dataset}, config.num_envs)
    agent = DRRAgent(
        config, envs.single_action_space.shape[0], envs.history_len, seed=0,
        obs_dim=envs.single_observation_space.shape[0],
    )  # fmt: skip
    obs, _ = envs.reset(seed=0)
    while len(agent.replay) < 2 * config.learning_starts:
        actions = agent.act(obs, explore=True)
        next_obs, rewards, terminated, _, _ = envs.step(actions)
        agent.replay.add(obs, actions, rewards, next_obs, terminated.astype(np.float32))
        obs = next_obs
    with torch_threads(1):
        rate = _rate(lambda: agent.update(0.5), 1, seconds)
    return {"updates_per_s": rate, "peak_memory_gb": _peak_memory_gb()}


def _work_drr_train(dataset: str, episodes: int) -> dict[str, Any]:
    from agents.drr.config import DRRConfig
    from agents.drr.train import train_drr
    from movielens_env.evaluation.protocols import evaluate

    config = DRRConfig()
    start = time.perf_counter()
    result = train_drr({"dataset": dataset}, config, episodes, seed=0)
    total = time.perf_counter() - start
    start = time.perf_counter()
    evaluate(result.agent, {"dataset": dataset}, name="drr-ave")
    one_evaluation = time.perf_counter() - start
    return {
        "seconds": total,
        "evaluations": len(result.curve),
        "seconds_per_evaluation": one_evaluation,
        "final": result.curve[-1],
        "peak_memory_gb": _peak_memory_gb(),
    }


WORK = {
    "build": _work_build,
    "steps": _work_steps,
    "bare": _work_bare,
    "drr_updates": _work_drr_updates,
    "drr_train": _work_drr_train,
}


def _measure(task: str, cache: Path, checkout: Path | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run one measurement in a fresh process with ``cache`` as its data cache; with
    ``checkout``, with that checkout's code (its own copy of this script and its packages)."""
    env = {**os.environ, "MOVIELENS_DATA": str(cache)}
    script = Path(__file__)
    if checkout is not None:
        script = checkout / "benchmarks" / "throughput.py"
        env["PYTHONPATH"] = os.pathsep.join([str(checkout), env.get("PYTHONPATH", "")])
    command = [sys.executable, str(script), "--work", task, json.dumps(kwargs)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{task} {kwargs} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    label = "" if checkout is None else " [baseline]"
    print(f"  {task} {kwargs}{label}: {_short(result)}", flush=True)
    return result


def _short(result: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in result.items()
        if k != "final"
    )


# ---------------------------------------------------------------------- the run
VARIANT_STEPS = (("single", 1), ("native", 256))
BASELINE_STEPS = (("single", 1), ("native", 256), ("sync", 64))
BASELINE_REPEATS = 3


def _variants(cache: Path, seconds: float) -> dict[str, Any]:
    """Steps per second of every registered variant, beside the static env (ml-1m-sized)."""
    import movielens_env

    results: dict[str, Any] = {}
    for env_id in ["MovieLensRec-v0", *movielens_env.VARIANTS]:
        results[env_id] = {
            f"{kind}:{n}": _measure("steps", cache, dataset=SHAPES["ml-1m-sized"], kind=kind,
                                    num_envs=n, seconds=seconds, env_id=env_id)["steps_per_s"]
            for kind, n in VARIANT_STEPS
        }  # fmt: skip
    return results


def _against_baseline(cache: Path, checkout: Path, seconds: float) -> dict[str, Any]:
    """The static env's speeds with this code and with ``checkout``'s, measured alternately."""
    commit = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    results: dict[str, Any] = {"checkout": str(checkout), "commit": commit}
    for kind, n in BASELINE_STEPS:
        runs: dict[str, list[float]] = {"current": [], "baseline": []}
        for _ in range(BASELINE_REPEATS):
            for label, where in (("current", None), ("baseline", checkout)):
                found = _measure("steps", cache, where, dataset=SHAPES["ml-1m-sized"],
                                 kind=kind, num_envs=n, seconds=seconds)  # fmt: skip
                runs[label].append(found["steps_per_s"])
        medians = {label: float(sorted(v)[len(v) // 2]) for label, v in runs.items()}
        results[f"{kind}:{n}"] = {**runs, "median_ratio": medians["current"] / medians["baseline"]}
    return results


def run(
    quick: bool, drr_episodes: int, cache_dir: Path | None, baseline: Path | None = None
) -> dict[str, Any]:
    """Every measurement, as a dict.

    With ``cache_dir=None`` the data cache starts empty, so the first build of each shape is a
    cold one; with a given cache, builds that find their data there are reported as warm only.
    """
    seconds = 0.5 if quick else 3.0
    shapes = {"ml-1m-sized": SHAPES["ml-1m-sized"]} if quick else SHAPES
    results: dict[str, Any] = {"build": {}, "steps": {}, "drr": {}}
    with tempfile.TemporaryDirectory(prefix="movielens-throughput-") as tmp:
        cache = cache_dir or Path(tmp)
        for shape, dataset in shapes.items():
            print(f"{shape} ({dataset}):", flush=True)
            build = results["build"][shape] = {}
            if not list(cache.glob(f"prepared/{dataset}-*.npz")):
                build["cold"] = _measure("build", cache, dataset=dataset)
            build["warm"] = _measure("build", cache, dataset=dataset)
            steps = results["steps"][shape] = {"single": {}, "sync": {}, "native": {}}
            steps["single"]["1"] = _measure(
                "steps", cache, dataset=dataset, kind="single", num_envs=1, seconds=seconds
            )
            steps["bare"] = {"1": _measure("bare", cache, dataset=dataset, seconds=seconds)}
            for n in NUM_ENVS[:3] if quick else NUM_ENVS:
                steps["native"][str(n)] = _measure(
                    "steps", cache, dataset=dataset, kind="native", num_envs=n, seconds=seconds
                )
            for n in SYNC_NUM_ENVS[:3] if quick else SYNC_NUM_ENVS:
                steps["sync"][str(n)] = _measure(
                    "steps", cache, dataset=dataset, kind="sync", num_envs=n, seconds=seconds
                )
        ml1m = SHAPES["ml-1m-sized"]
        results["drr"]["updates"] = _measure("drr_updates", cache, dataset=ml1m, seconds=seconds)
        if drr_episodes:
            results["drr"]["train"] = _measure(
                "drr_train", cache, dataset=ml1m, episodes=drr_episodes
            )
            results["drr"]["train"]["episodes"] = drr_episodes
        print("user-model variants (ml-1m-sized):", flush=True)
        results["variants"] = _variants(cache, seconds)
        if baseline is not None:
            print(f"against {baseline} (ml-1m-sized, static):", flush=True)
            results["baseline"] = _against_baseline(cache, baseline, seconds)
    return results


def verdicts(results: dict[str, Any]) -> list[str]:
    """Each target of the speed-and-scale issue, met or missed, with the measurement."""
    lines = []

    def check(name: str, value: float, target: float, smaller_is_better: bool, unit: str) -> None:
        met = value <= target if smaller_is_better else value >= target
        relation = "<=" if smaller_is_better else ">="
        ratio = value / target
        lines.append(
            f"- {'MET' if met else 'MISSED'}: {name}: {value:,.2f}{unit} "
            f"(target {relation} {target:,.2f}{unit}; {ratio:.2f}x the target)"
        )

    steps = results["steps"].get("ml-1m-sized")
    if steps:
        check("ml-1m-sized single env steps/s", steps["single"]["1"]["steps_per_s"],
              TARGETS["single_ml1m_steps_per_s"], False, "")  # fmt: skip
        if "bare" in steps:
            check("ml-1m-sized single env / the bare limit (score + mask + argmax, same run)",
                  steps["single"]["1"]["steps_per_s"] / steps["bare"]["1"]["steps_per_s"],
                  TARGETS["single_over_bare"], False, "x")  # fmt: skip
        native = {int(n): r["steps_per_s"] for n, r in steps["native"].items()}
        best = max(native, key=native.get)
        check(f"ml-1m-sized native vector env steps/s (best, num_envs={best})", native[best],
              TARGETS["native_ml1m_steps_per_s"], False, "")  # fmt: skip
        sync = {int(n): r["steps_per_s"] for n, r in steps["sync"].items()}
        common = [n for n in sync if n in native]
        ratios = {n: native[n] / sync[n] for n in common}
        at = best if best in ratios else max(common)
        check(f"ml-1m-sized native / SyncVectorEnv at num_envs={at}", ratios[at],
              TARGETS["native_over_sync"], False, "x")  # fmt: skip
    build = results["build"].get("ml-25m-sized")
    if build:
        check("ml-25m-sized build from a warm cache", build["warm"]["seconds"],
              TARGETS["warm_build_ml25m_s"], True, " s")  # fmt: skip
        peaks = [build["warm"]["peak_memory_gb"]]
        peaks += [r["peak_memory_gb"] for kind in results["steps"]["ml-25m-sized"].values()
                  for r in kind.values()]  # fmt: skip
        check("ml-25m-sized peak memory (warm build, then stepping; worst process)", max(peaks),
              TARGETS["peak_memory_ml25m_gb"], True, " GiB")  # fmt: skip
    for key, found in results.get("baseline", {}).items():
        if isinstance(found, dict):
            check(f"static {key} speed of this code / the baseline's (median of "
                  f"{BASELINE_REPEATS}, alternating)", found["median_ratio"],
                  TARGETS["static_over_baseline"], False, "x")  # fmt: skip
    train = results["drr"].get("train")
    if train:
        scaled = train["seconds"] / 60 * 5000 / train["episodes"]
        check(f"DRR-ave 5,000 episodes on ml-1m-sized (measured {train['episodes']})", scaled,
              TARGETS["drr_5000_episodes_ml1m_min"], True, " min")  # fmt: skip
    return lines


def markdown(results: dict[str, Any], command: str, machine: str) -> str:
    """The results as a Markdown report."""
    lines = ["# Throughput", "", f"Command: `{command}`", "", f"Machine: {machine}", ""]
    lines += ["## Targets", "", *verdicts(results), ""]
    lines += ["## Steps per second", "",
              "Random uniform actions, full-catalogue scoring, `max_episode_steps=10`; "
              "`single` is `gym.make` (with its wrappers), `sync` Gymnasium's `SyncVectorEnv` "
              "over such envs, `native` the registered vector env; `bare` is the bare limit of "
              "a single step, measured in the same run: the catalogue's float32 scores, a mask "
              "and an argmax, nothing else.", ""]  # fmt: skip
    for shape, kinds in results["steps"].items():
        counts = sorted({int(n) for kind in kinds.values() for n in kind})
        lines += [f"### {shape}", "", "| num_envs | " + " | ".join(map(str, counts)) + " |"]
        lines.append("|---" * (len(counts) + 1) + "|")
        for kind, by_n in kinds.items():
            cells = [
                f"{by_n[str(n)]['steps_per_s']:,.0f}" if str(n) in by_n else "" for n in counts
            ]
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
        sync, native = kinds["sync"], kinds["native"]
        ratios = [f"{native[str(n)]['steps_per_s'] / sync[str(n)]['steps_per_s']:.1f}x"
                  if str(n) in sync and str(n) in native else "" for n in counts]  # fmt: skip
        lines += ["| native / sync | " + " | ".join(ratios) + " |", ""]
        peaks = [r["peak_memory_gb"] for kind in kinds.values() for r in kind.values()]
        lines += [f"Peak memory of a stepping process: {max(peaks):.2f} GiB.", ""]
    lines += ["## Building an env", "",
              "`gym.make` then `reset`, in a new process: cold = generate the data, split, fit "
              "MF (dim 100, 15 sweeps) and cache both; warm = read them back, split.", "",
              "| data | cache | seconds | peak memory (GiB) |",
              "|---|---|---|---|"]  # fmt: skip
    for shape, builds in results["build"].items():
        for cache, r in builds.items():
            lines.append(f"| {shape} | {cache} | {r['seconds']:.1f} | {r['peak_memory_gb']:.2f} |")
    if "variants" in results:
        lines += ["", "## User-model variants (ml-1m-sized)", "",
                  "Steps per second of each registered id: `single` is `gym.make`, "
                  "`native:256` the vector env with 256 users.", "",
                  "| env id | " + " | ".join(f"{k}:{n}" for k, n in VARIANT_STEPS) + " |",
                  "|---" * (len(VARIANT_STEPS) + 1) + "|"]  # fmt: skip
        for env_id, speeds in results["variants"].items():
            lines.append(
                f"| `{env_id}` | " + " | ".join(f"{v:,.0f}" for v in speeds.values()) + " |"
            )
    baseline = results.get("baseline")
    if baseline:
        lines += ["", f"## Against the code before (`{baseline['commit']}`), static env, "
                  "ml-1m-sized", "",
                  f"Each speed measured {BASELINE_REPEATS} times per code version, alternating "
                  "(this code, then the baseline's), each in a fresh process.", "",
                  "| | this code (steps/s) | baseline (steps/s) | median ratio |",
                  "|---|---|---|---|"]  # fmt: skip
        for key, found in baseline.items():
            if isinstance(found, dict):
                mine = ", ".join(f"{v:,.0f}" for v in found["current"])
                theirs = ", ".join(f"{v:,.0f}" for v in found["baseline"])
                lines.append(f"| {key} | {mine} | {theirs} | {found['median_ratio']:.3f} |")
    lines += ["", "## DRR-ave (ml-1m-sized)", ""]
    updates = results["drr"]["updates"]
    lines.append(
        f"- Gradient updates per second (batch 64, hidden 256, one torch thread): "
        f"{updates['updates_per_s']:,.0f}"
    )
    train = results["drr"].get("train")
    if train:
        lines.append(
            f"- Training {train['episodes']:,} episodes with the default config (8 sub-envs, "
            f"one update per transition, {train['evaluations']} test-split evaluations): "
            f"{train['seconds'] / 60:.1f} min; one evaluation takes "
            f"{train['seconds_per_evaluation']:.1f} s"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its report and write ``results.json`` and ``results.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=None,
        help="default: benchmarks/results/throughput, or throughput-quick with --quick",
    )  # fmt: skip
    parser.add_argument(
        "--force", action="store_true", help="replace results another command wrote in --out"
    )
    parser.add_argument("--quick", action="store_true", help="ml-1m-sized only, short timings")
    parser.add_argument("--drr-episodes", type=int, default=5000,
                        help="episodes of the timed DRR-ave run (0: skip it)")  # fmt: skip
    parser.add_argument("--cache", type=Path, default=None,
                        help="data cache (default: a new, empty one)")  # fmt: skip
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout to compare the static env's speed with")  # fmt: skip
    parser.add_argument("--work", nargs=2, help=argparse.SUPPRESS)
    if args_work := parser.parse_known_args(argv)[0].work:
        # The internal timing worker, also run inside a --baseline checkout that may predate
        # agents.options_once.
        task, kwargs = args_work
        print(json.dumps(WORK[task](**json.loads(kwargs))), flush=True)
        return 0
    from agents.options_once import parse_args

    args = parse_args(parser, argv)

    from agents.benchmark.machine import machine_description
    from agents.benchmark.script_results import script_results, write_script_results
    from movielens_env.errors import MovieLensRecError

    command = "python " + shlex.join(["benchmarks/throughput.py", *(argv or sys.argv[1:])])
    default = "throughput-quick" if args.quick else "throughput"
    out = args.out or Path("benchmarks/results") / default
    try:
        with script_results(out, command, args.force, "throughput.py"):
            results = run(args.quick, args.drr_episodes, args.cache, args.baseline)
            machine = machine_description()
            report = markdown(results, command, machine)
            payload = {"command": command, "machine": machine, "results": results}
            write_script_results(out, json.dumps(payload, indent=1) + "\n", report)
    except MovieLensRecError as exc:
        parser.error(str(exc))
    print(report)
    return 0


if __name__ == "__main__":
    from agents.benchmark.script_results import run_script

    sys.exit(run_script(main, "throughput.py"))
