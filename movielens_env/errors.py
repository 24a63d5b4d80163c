"""Exceptions raised by movielens_env, each naming what was wrong and where."""

from __future__ import annotations


class MovieLensRecError(Exception):
    """Base class of every error this package raises on purpose."""


class ArgumentError(MovieLensRecError, ValueError):
    """An argument (of a function, the env or a command) is invalid: the message names it and
    what is allowed."""


class DataFormatError(MovieLensRecError, ValueError):
    """A data file is malformed: the message names the file and the line."""


class DataNotFoundError(MovieLensRecError, FileNotFoundError):
    """A dataset is neither in ``data_dir``, nor cached, nor downloadable."""


class ChecksumError(MovieLensRecError, ValueError):
    """A downloaded file does not match its pinned SHA-256; nothing was cached."""


class CacheError(MovieLensRecError, OSError):
    """A cache or output path cannot be written (a folder where a file belongs, ...)."""


class InvalidActionError(MovieLensRecError, ValueError):
    """An action that scores nothing: wrong shape, NaN or inf. The message names it."""


class UnsafeArchiveError(MovieLensRecError, ValueError):
    """A zip member would be written outside the folder it is extracted to."""


class AgentError(MovieLensRecError, ValueError):
    """An agent broke its contract (an unusable action or ranking, a trainer that returned no
    agent); the message names the agent."""
