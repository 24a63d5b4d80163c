"""The results folder of a measuring script under ``benchmarks/`` (``results.json`` and
``results.md``): held for the whole run, and never replacing another command's results, or a
``results.md`` no run of the script wrote, without ``--force``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from movielens_env.errors import ArgumentError, MovieLensRecError
from movielens_env.storage import atomic_write, read_json

from ..folder_lock import lock_folder

RESULTS = ("results.json", "results.md")


@contextmanager
def script_results(out: Path, command: str, force: bool, script: str) -> Iterator[None]:
    """Hold ``out`` (a second command on it is refused) while the block measures, after
    checking that its results may be replaced by those of ``command``.

    Raises:
        ArgumentError: ``out`` holds another command's results or a ``results.md`` without
            the ``results.json`` a run writes beside it, and not ``force``; or another command
            holds ``out``.
    """
    with lock_folder(out, script, ArgumentError):
        if not force:
            _check_replaceable(out, command)
        yield


def run_script(main: Callable[[], int], script: str) -> int:
    """``main()``'s exit status, with Ctrl-C as the CLI has it: one line and 130 (the results
    are written whole or not at all), not a traceback."""
    try:
        return main()
    except KeyboardInterrupt:
        print(f"\n{script}: interrupted", file=sys.stderr)
        return 130


def _check_replaceable(out: Path, command: str) -> None:
    stored, report = out / RESULTS[0], out / RESULTS[1]
    if not stored.exists():
        if report.exists():
            raise ArgumentError(
                f"{report} is there without the results.json a run writes beside it (a file "
                "of yours?); give another --out, or pass --force to replace it"
            )
        return
    try:
        previous = read_json(stored).get("command")
    except (OSError, ValueError, AttributeError):
        previous = None
    if previous != command:
        raise ArgumentError(
            f"{stored} holds the results of another command ({previous!r}); give another "
            "--out, or pass --force to replace them"
        )


def write_script_results(out: Path, results_json: str, report: str) -> None:
    """Write ``results.json`` (the JSON text ``results_json``) and ``results.md`` (``report``),
    each whole."""
    atomic_write(out / RESULTS[0], lambda tmp: tmp.write_text(results_json))
    atomic_write(out / RESULTS[1], lambda tmp: tmp.write_text(report))


def write_measured(
    parser: argparse.ArgumentParser, out: Path, force: bool, argv: list[str] | None,
    script: str, measure: Callable[[], Any], markdown: Callable[[Any, str, str], str],
) -> int:  # fmt: skip
    """The body of a measuring script: hold ``out``, run ``measure()`` with one torch thread,
    write ``results.json`` (the command, the machine, the results) and ``markdown``'s report
    (of the results, the command and the machine), print the report; a
    :class:`~movielens_env.errors.MovieLensRecError` becomes ``parser.error``."""
    from ..threads import torch_threads
    from .machine import machine_description

    command = "python " + shlex.join([f"benchmarks/{script}", *(argv or sys.argv[1:])])
    machine = machine_description()
    try:
        with script_results(out, command, force, script), torch_threads(1):
            results = measure()
            report = markdown(results, command, machine)
            payload = {"command": command, "machine": machine, "results": results}
            write_script_results(out, json.dumps(payload, indent=1), report)
    except MovieLensRecError as exc:
        parser.error(str(exc))
    print(report)
    return 0


def add_data_options(parser: argparse.ArgumentParser, results: str) -> None:
    """The options every measuring script on a dataset takes: ``--dataset``, ``--data-dir``
    and ``--out`` (default ``benchmarks/results/RESULTS/DATASET``, resolved by the script)."""
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--data-dir", default=None, help="GroupLens folder or zip")
    parser.add_argument(
        "--out", type=Path, default=None, help=f"default: benchmarks/results/{results}/DATASET"
    )
