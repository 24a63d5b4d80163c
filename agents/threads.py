"""Torch thread limits for small networks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(count: int = 1) -> Iterator[None]:
    """Run the block with ``count`` torch threads, then restore the previous setting.

    The agents' networks are small: one thread does their matrix products as fast as two, and
    threads that wait on each other are what make training crawl when another process (a second
    benchmark, the test suite) shares the cores.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
