"""One BLAS thread for the envs' and references' matrix products."""

from __future__ import annotations

import functools

from threadpoolctl import ThreadpoolController


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def single_threaded_blas():
    """A context in which BLAS runs on one thread.

    On a shared machine a threaded BLAS spins waiting for a busy core: with another process
    running, 4 to 16 sub-environments of the vector env stepped 100 to 200 times slower (370
    instead of ~70,000 steps/s on 2 cores). One thread loses at most a third on an idle machine.
    The controller is built once; entering its limit costs about 10 microseconds.
    """
    return _controller().limit(limits=1, user_api="blas")
