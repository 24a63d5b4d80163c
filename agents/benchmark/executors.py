"""Where a benchmark's runs execute: in this process, in local worker processes, or on Ray.

A run (one agent, one seed) depends on nothing but its job: the benchmark's configuration, the
agent's name, config and code, the plugins that registered it. So the runs of a grid can go to
any process that has the package installed, and come back as the same records. An executor
hands each finished record to the benchmark as soon as it arrives (which stores it at once, so
an interrupted grid resumes); a run that fails, or whose worker dies, fails alone: the others
finish and are stored, and the failures are reported together at the end.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from movielens_env.errors import ArgumentError, MovieLensRecError

EXECUTORS = ("local", "ray")

# Seconds a worker collects step counts before sending them (a progress bar needs no more).
_STEP_REPORT_SECONDS = 0.5
# Seconds to reach a Ray address before giving up on it.
_CONNECT_SECONDS = 5.0
# Seconds to wait for a worker whose pipe broke to be reaped.
_REAP_SECONDS = 5.0


@dataclass(frozen=True)
class RunJob:
    """One run of a benchmark, as a worker process needs it.

    Attributes:
        config: the benchmark's configuration (a ``BenchmarkConfig``).
        agent: the agent's registered name.
        seed: the run's seed.
        agent_config: the agent's config in the benchmark's process (``--config`` applied).
        agent_code: its plugin source digest there (``None`` for built-ins).
        module: the module whose import registers the agent (``AgentEntry.module``).
        references: the references of the configuration (for normalized scores), or ``None``.
        data: the data's fingerprint.
        replace: whether a run already in the run's folder may be replaced.
    """

    config: Any
    agent: str
    seed: int
    agent_config: dict[str, Any]
    agent_code: str | None
    module: str | None
    references: dict[str, Any] | None
    data: str
    replace: bool

    @property
    def name(self) -> str:
        """``AGENT seed N``, as messages name a run."""
        return f"{self.agent} seed {self.seed}"


@dataclass(frozen=True)
class RunFailure:
    """A run that produced no record, and why (the error, or how its worker died)."""

    job: RunJob
    why: str
    error: BaseException | None = None


class RunsFailedError(MovieLensRecError):
    """Runs of a grid failed; the others were stored."""

    def __init__(self, failures: list[RunFailure]) -> None:
        self.failures = failures
        lines = "; ".join(f"{f.job.name}: {f.why}" for f in failures)
        super().__init__(
            f"{len(failures)} run(s) failed ({lines}); the grid's other runs finished and are "
            "stored: run the benchmark again to train only the failed ones"
        )


class Executor(Protocol):
    """Runs a grid's jobs; see :class:`SerialExecutor`, :class:`LocalExecutor`,
    :class:`RayExecutor`."""

    def run(
        self, work: Work, jobs: list[RunJob], on_record: OnRecord, on_step: OnStep
    ) -> list[RunFailure]:
        """Run each of ``jobs`` with ``work``, handing each record to ``on_record`` as its run
        ends and step counts to ``on_step``; return the runs that failed (the others were
        handed on)."""
        ...


OnRecord = Callable[[RunJob, dict[str, Any]], None]
OnStep = Callable[[int], None]
# What runs one job where it lands: a module-level function (workers import it by name).
Work = Callable[[RunJob, OnStep], dict[str, Any]]


class SerialExecutor:
    """Every run in this process, one after another; a failure stops the grid at once (the
    runs before it are stored). What ``--jobs 1`` runs, and what tests patch in-process."""

    def run(
        self, work: Work, jobs: list[RunJob], on_record: OnRecord, on_step: OnStep
    ) -> list[RunFailure]:
        """Run ``jobs``, handing each record to ``on_record``; nothing fails silently."""
        for job in jobs:
            on_record(job, work(job, on_step))
        return []


class LocalExecutor:
    """Runs in up to ``jobs`` worker processes of this machine (spawned, one thread each for
    torch and BLAS, so ``jobs`` workers use ``jobs`` cores). A worker takes run after run; one
    that dies (killed, out of memory) fails its run only and is replaced."""

    def __init__(self, jobs: int) -> None:
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ArgumentError(f"--jobs must be a whole number of at least 1, got {jobs!r}")
        self.jobs = jobs

    def run(
        self, work: Work, jobs: list[RunJob], on_record: OnRecord, on_step: OnStep
    ) -> list[RunFailure]:
        """Run ``jobs`` in worker processes, handing each record to ``on_record`` as it comes
        (a single job, or ``jobs=1``, runs in this process: :class:`SerialExecutor`)."""
        if self.jobs == 1 or len(jobs) <= 1:
            return SerialExecutor().run(work, jobs, on_record, on_step)
        pending = list(reversed(jobs))
        failures: list[RunFailure] = []
        workers: list[_Worker] = []
        try:
            while pending or any(w.job is not None for w in workers):
                for gone in [w for w in workers if not w.alive()]:
                    if gone.job is not None:  # died since the last wait: its run fails here
                        gone.collect(on_record, on_step, failures)
                    gone.stop()
                    workers.remove(gone)
                while pending and len(workers) < self.jobs:
                    workers.append(_Worker(work))
                for worker in workers:
                    # One that died between runs keeps none: it is replaced on the next pass.
                    if worker.job is None and pending and worker.give(pending[-1]):
                        pending.pop()
                busy = [w for w in workers if w.job is not None]
                if not busy:
                    continue
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                for worker in busy:
                    if worker.conn in ready or worker.process.sentinel in ready:
                        worker.collect(on_record, on_step, failures)
        finally:
            for worker in workers:
                worker.stop()
        return failures


class _Worker:
    """One spawned worker process and the run it is doing."""

    def __init__(self, work: Work) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(work, theirs), daemon=True)
        self.process.start()
        theirs.close()
        self.job: RunJob | None = None
        self.closed = False  # its pipe broke: it takes no more runs

    def alive(self) -> bool:
        return not self.closed and self.process.is_alive()

    def give(self, job: RunJob) -> bool:
        """Send ``job``; False (and the job not taken) if the worker is already gone."""
        try:
            self.conn.send(job)
        except OSError:
            self.closed = True
            return False
        self.job = job
        return True

    def collect(self, on_record: OnRecord, on_step: OnStep, failures: list[RunFailure]) -> None:
        """Read what the worker sent; a worker gone without its result fails its run."""
        assert self.job is not None
        while True:
            try:
                if not self.conn.poll():
                    if self.process.is_alive():
                        return
                    self.process.join()
                    raise EOFError
                kind, value = self.conn.recv()
            except (EOFError, OSError):
                # Its end of the pipe closes a moment before the process is reaped: wait for
                # that, so the exit code is known and the worker is not given another run.
                self.closed = True
                self.process.join(_REAP_SECONDS)
                failures.append(RunFailure(self.job, _death(self.process.exitcode)))
                self.job = None
                return
            if kind == "steps":
                on_step(value)
                continue
            job, self.job = self.job, None
            if kind == "record":
                on_record(job, value)
            else:
                why, error = value
                failures.append(RunFailure(job, why, _unpickled(error)))
            return

    def stop(self) -> None:
        if self.process.is_alive() and self.job is None:
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _death(exitcode: int | None) -> str:
    """How a worker process that sent no result ended."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else ""
        return f"its worker process was killed by signal {-exitcode} {name}".rstrip()
    return f"its worker process ended (exit code {exitcode}) without a result"


def _worker_main(work: Work, conn: Connection) -> None:
    """A worker: take jobs until told to stop, send back step counts and each run's record."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the benchmark's process stops its workers
    one_thread()
    while True:
        job = conn.recv()
        if job is None:
            return
        steps, sent = 0, time.monotonic()

        def on_step(n: int) -> None:
            nonlocal steps, sent
            steps += n
            if time.monotonic() - sent > _STEP_REPORT_SECONDS:
                conn.send(("steps", steps))
                steps, sent = 0, time.monotonic()

        try:
            record = work(job, on_step)
        except BaseException as exc:  # the run's failure, reported; the worker goes on
            conn.send(("failed", (_why(exc), _picklable(exc))))
            continue
        if steps:
            conn.send(("steps", steps))
        conn.send(("record", record))


def one_thread() -> None:
    """One torch thread and one BLAS thread in this (worker) process: N workers then use N
    cores."""
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    torch.set_num_threads(1)


def _why(exc: BaseException) -> str:
    """One line naming ``exc``, with where it was raised."""
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    at = f" (at {where[0].filename}:{where[0].lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{at}"


def _picklable(exc: BaseException) -> bytes | None:
    """``exc`` pickled, or ``None`` where it cannot be (its text is sent either way)."""
    try:
        return pickle.dumps(exc.with_traceback(None))
    except Exception:
        return None


def _unpickled(data: bytes | None) -> BaseException | None:
    try:
        return None if data is None else pickle.loads(data)
    except Exception:
        return None


class RayExecutor:
    """Each run as a Ray task (one CPU each): on a local Ray started here (no ``address``) or
    on the cluster at ``address`` (``host:port``, or ``RAY_ADDRESS``). The cluster's workers
    need this package (and any ``--plugin`` module) installed, and the data where
    ``--data-dir`` says, or in their cache."""

    def __init__(self, address: str | None = None) -> None:
        self.address = checked_ray_address(address)  # now, not after the references are played

    def run(
        self, work: Work, jobs: list[RunJob], on_record: OnRecord, on_step: OnStep
    ) -> list[RunFailure]:
        """Run ``jobs`` as Ray tasks, handing each record to ``on_record`` as it comes."""
        failures: list[RunFailure] = []
        with ray_session(self.address) as ray:
            task = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
            running = {task.remote(work, job): job for job in jobs}
            while running:
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    job = running.pop(ref)
                    try:
                        record = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        cause = exc.cause if isinstance(exc.cause, BaseException) else None
                        why = _why(cause) if cause is not None else str(exc).splitlines()[0]
                        failures.append(RunFailure(job, why, cause))
                        continue
                    except ray.exceptions.RayError as exc:  # the worker died
                        failures.append(
                            RunFailure(job, f"its Ray worker died ({type(exc).__name__})")
                        )
                        continue
                    on_step(job.config.timesteps)
                    on_record(job, record)
        return failures


@contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """The ``ray`` module, connected to the cluster at ``address`` (``None``: a local Ray
    started here) unless this process already is; a Ray started here is shut down after."""
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False
        )
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def _ray_task(work: Work, job: RunJob) -> dict[str, Any]:
    one_thread()
    return work(job, lambda n: None)


def import_ray() -> Any:
    """The ``ray`` module, or an error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ArgumentError(
            "--executor ray needs Ray, which is not installed: pip install -e '.[ray]' (or "
            "pip install 'movielens-rec[ray]')"
        ) from None
    return ray


def checked_ray_address(address: str | None) -> str | None:
    """The cluster a Ray session will join (``address``, else ``$RAY_ADDRESS``; ``None``: a
    local Ray), once Ray is found installed and the cluster answers."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    import_ray()
    if address is not None:
        check_reachable(address)
    return address


def check_reachable(address: str) -> None:
    """Refuse, within seconds, a Ray address nothing answers at (``ray.init`` would wait)."""
    if address in ("auto", "local"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ArgumentError(
            f"--ray-address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=_CONNECT_SECONDS):
            pass
    except OSError as exc:
        raise ArgumentError(
            f"--ray-address {address!r}: no Ray cluster answers there ({exc}); start one "
            "(ray start --head) or leave the address out for a local Ray"
        ) from None


def make_executor(
    executor: str = "local", jobs: int | None = None, address: str | None = None
) -> SerialExecutor | LocalExecutor | RayExecutor:
    """The executor ``--executor``, ``--jobs`` and ``--ray-address`` ask for (``jobs``
    defaults to the cores this process may use)."""
    if executor not in EXECUTORS:
        raise ArgumentError(f"--executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    if executor == "ray":
        if jobs is not None:
            raise ArgumentError("--jobs applies to --executor local; Ray gives each run a CPU")
        return RayExecutor(address)
    if address is not None:
        raise ArgumentError("--ray-address applies to --executor ray")
    return LocalExecutor(default_jobs() if jobs is None else jobs)


def default_jobs() -> int:
    """One job per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
