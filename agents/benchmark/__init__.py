"""The benchmark: runs of every (agent, seed) and the references (``runner``), stored results
and their keys (``stored``), the leaderboard, its intervals and plots (``leaderboard``,
``stats``, ``plots``), and what it records of the machine and the progress (``machine``,
``progress``)."""

from .runner import BenchmarkConfig, run_benchmark

__all__ = ["BenchmarkConfig", "run_benchmark"]
