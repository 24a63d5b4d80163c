"""Speedup of the benchmark's executors: one grid, run one after another in one process, in two
local worker processes, and as Ray tasks on a local Ray started by the command.

The grid: ``--agents`` x ``--seeds`` on the synthetic data under the static user model,
``--timesteps`` steps per RL run. Its references are computed once beforehand and copied into
every timed folder, so that each timing covers the runs (and the command's start-up, the same
for all). Each configuration runs as a whole ``movielens-rec benchmark`` process, timed from
outside (wall clock); the configurations take turns (serial, local, ray, serial, ...) so that a
drift of the machine's speed hits them alike, and the speedups are medians of the per-round
ratios.

    python benchmarks/executors.py --rounds 3 --out benchmarks/results/executors
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CONFIGS = {
    "serial": ["--jobs", "1"],
    "local, 2 workers": ["--jobs", "2"],
    "ray, local": ["--executor", "ray"],
}


def _benchmark(out: Path, args: argparse.Namespace, extra: list[str]) -> float:
    """Seconds one ``movielens-rec benchmark`` process takes on the grid, into ``out``."""
    command = [
        sys.executable, "-m", "agents.cli", "benchmark", "--dataset", "synthetic",
        "--agents", args.agents, "--seeds", args.seeds, "--timesteps", str(args.timesteps),
        "--no-progress", "--out", str(out), *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="td3,drr-ave")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--timesteps", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from agents.benchmark.machine import machine_description

    work = Path(tempfile.mkdtemp(prefix="executors-"))
    try:
        template = work / "template"  # the references, played once
        subprocess.run(
            [sys.executable, "-m", "agents.cli", "benchmark", "--dataset", "synthetic",
             "--agents", "random", "--seeds", "0", "--no-progress", "--out", str(template)],
            check=True, capture_output=True,
        )  # fmt: skip
        seconds: dict[str, list[float]] = {name: [] for name in CONFIGS}
        for round_ in range(args.rounds):
            for name, extra in CONFIGS.items():
                out = work / f"{round_}-{name.split(',')[0]}"
                out.mkdir()
                shutil.copy(template / "references.json", out / "references.json")
                seconds[name].append(_benchmark(out, args, extra))
                print(f"round {round_ + 1} {name}: {seconds[name][-1]:.1f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    serial = seconds["serial"]
    result: dict[str, Any] = {
        "command": "python " + shlex.join(["benchmarks/executors.py", *sys.argv[1:]]),
        "machine": machine_description(),
        "grid": {"agents": args.agents, "seeds": args.seeds, "timesteps": args.timesteps},
        "seconds": seconds,
        "median_seconds": {name: statistics.median(values) for name, values in seconds.items()},
        "speedup_over_serial": {
            name: statistics.median(s / v for s, v in zip(serial, values, strict=True))
            for name, values in seconds.items()
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# Executors", "", f"Command: `{result['command']}`", "", f"Machine: {result['machine']}",
        "", f"Grid: agents {args.agents} x seeds {args.seeds}, {args.timesteps} steps per run, "
        "synthetic data, static user model; references played beforehand. Whole "
        "`movielens-rec benchmark` processes, taking turns, "
        f"{args.rounds} rounds.", "",
        "| executor | median seconds | speedup over serial (median of the rounds' ratios) |",
        "|---|---|---|",
    ]  # fmt: skip
    for name in CONFIGS:
        lines.append(
            f"| {name} | {result['median_seconds'][name]:.1f} | "
            f"{result['speedup_over_serial'][name]:.2f}x |"
        )
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
