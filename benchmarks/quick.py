"""How long the README's first command, ``movielens-rec benchmark --quick``, takes, and how many
cores it keeps busy.

Each round is a whole ``movielens-rec benchmark --quick`` process into a fresh folder, timed
from outside: wall clock, and the CPU seconds of the process and its workers (their ratio is the
number of cores it used on average). The first round starts from an empty data cache, as on a
new machine (the synthetic data generated and its MF fitted); the others find them cached.

    python benchmarks/quick.py --rounds 2 --out benchmarks/results/quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _cpu_seconds() -> float:
    """CPU seconds (user and system) of this process's finished children so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _round(out: Path, cache: Path) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds and printed output of one ``benchmark --quick`` process."""
    command = [sys.executable, "-m", "agents.cli", "benchmark", "--quick", "--no-progress",
               "--out", str(out)]  # fmt: skip
    env = {**os.environ, "MOVIELENS_DATA": str(cache)}
    cpu, start = _cpu_seconds(), time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, _cpu_seconds() - cpu, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from agents.benchmark.machine import machine_description

    work = Path(tempfile.mkdtemp(prefix="quick-"))
    rounds: list[dict[str, Any]] = []
    try:
        for number in range(args.rounds):
            wall, cpu, printed = _round(work / f"round-{number}", work / "cache")
            rounds.append({"wall_seconds": wall, "cpu_seconds": cpu, "cores_used": cpu / wall})
            print(f"round {number + 1}: {wall:.1f} s wall, {cpu / wall:.2f} cores", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = printed[printed.index("What --quick shows") :].rstrip()
    result = {
        "command": "python " + shlex.join(["benchmarks/quick.py", *sys.argv[1:]]),
        "machine": machine_description(),
        "rounds": rounds,
        "summary": summary,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# `movielens-rec benchmark --quick`", "", f"Command: `{result['command']}`", "",
        f"Machine: {result['machine']}", "",
        "Whole `movielens-rec benchmark --quick` processes, each into a fresh folder; round 1 "
        "with an empty data cache (a new machine), the others with the data and MF fit cached. "
        "Cores used: CPU seconds of the process and its workers over wall seconds.", "",
        "| round | wall seconds | CPU seconds | cores used |", "|---|---|---|---|",
    ]  # fmt: skip
    for number, found in enumerate(rounds, 1):
        lines.append(
            f"| {number} | {found['wall_seconds']:.1f} | {found['cpu_seconds']:.1f} | "
            f"{found['cores_used']:.2f} |"
        )
    lines += ["", "What the last round printed at its end:", "", "```", summary, "```"]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
