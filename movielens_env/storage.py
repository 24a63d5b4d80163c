"""Where cached files live, and how they are written so that none is ever half-written."""

from __future__ import annotations

import contextlib
import errno
import functools
import glob
import hashlib
import json
import os
import re
import signal
import socket
import stat
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from .errors import CacheError

CACHE_ENV_VAR = "MOVIELENS_DATA"
# What reading a damaged or foreign .npz file can raise; anything else is a bug to surface.
# MemoryError: a damaged array header can declare terabytes.
UNREADABLE = (OSError, ValueError, KeyError, EOFError, MemoryError, zipfile.BadZipFile)


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``cache_dir`` if given, else ``$MOVIELENS_DATA``, else the user cache dir.

    The user cache dir is ``~/.cache/movielens`` on Linux, the folder that GroupLens-layout
    helper scripts write to, so data fetched by hand is found without configuration.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("movielens", appauthor=False))


def available_memory() -> int | None:
    """Bytes of memory this process can still get, or ``None`` if unknown: the least of what
    the system can still give (``MemAvailable``), what the process's address-space limit
    (``ulimit -v``) leaves, and what its cgroup's limit (a container's) leaves."""
    found = [_mem_available(), _address_space_left(), _cgroup_left()]
    known = [value for value in found if value is not None]
    return min(known) if known else None


def _mem_available() -> int | None:
    with contextlib.suppress(OSError, ValueError, StopIteration, IndexError):
        with open("/proc/meminfo") as meminfo:
            line = next(line for line in meminfo if line.startswith("MemAvailable"))
        return int(line.split()[1]) * 1024
    return None


def _address_space_left() -> int | None:
    import resource

    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit == resource.RLIM_INFINITY:
        return None
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/statm") as statm:
            used = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        return max(0, limit - used)
    return None


def _cgroup_left() -> int | None:
    """What the cgroup (v2, else v1) of this process may still use, where it has a limit."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        with contextlib.suppress(OSError, ValueError):
            with open(limit_file) as handle:
                text = handle.read().strip()
            if text == "max" or int(text) >= 2**60:  # no limit (v1 writes a huge number)
                return None
            with open(usage_file) as handle:
                return max(0, int(text) - int(handle.read().strip()))
    return None


def require_memory(
    needed: int, what: str, largest: Callable[[int], int], error: type[Exception] = CacheError
) -> None:
    """Refuse, before any work, what needs more memory than the system can still give (numpy
    reserves large arrays lazily, so the process would otherwise be killed deep into a run).

    Args:
        needed: bytes ``what`` would need.
        what: the setting that asks for it, as the user wrote it (e.g. ``num_envs=4096``).
        largest: from the bytes available, the largest value of that setting that fits.
        error: the exception to raise (the caller's kind of error).
    """
    available = available_memory()
    if available is not None and needed > available:
        raise error(
            f"{what} needs {needed / 2**30:.1f} GiB and {available / 2**30:.1f} GiB of memory "
            f"is available; use at most {largest(available):,}"
        )


def writable_file(path: str | os.PathLike[str]) -> Path:
    """``path``, refused with :class:`CacheError` if a folder stands where the file belongs.

    Checked before long work whose result goes there (an MF fit, a parse), not after it.
    """
    target = Path(path)
    if target.is_dir():
        raise CacheError(
            f"{target} is a folder where a file belongs; remove it (rm -r '{target}') and run again"
        )
    return target


def make_folder(path: str | os.PathLike[str]) -> Path:
    """Create the folder ``path`` (and its parents) unless it exists; :class:`CacheError` if a
    file stands where it or one of its parents belongs."""
    make_folders(path)
    return Path(path)


def make_folders(path: str | os.PathLike[str]) -> list[Path]:
    """Create the folder ``path`` and its missing parents; the folders this call made, outermost
    first, for :func:`remove_folders` to remove again. A path through ``..`` names folders that
    exist under another spelling (``missing/../mine`` is ``mine`` once ``missing`` is made):
    only a ``mkdir`` that succeeded counts. Where it fails, what it made is removed first.

    Raises:
        CacheError: a file stands where the folder or one of its parents belongs.
        OSError: a folder cannot be made (no permission, a read-only file system).
    """
    folder = Path(path)
    made: list[Path] = []
    try:
        for part in [*reversed(folder.parents), folder]:
            if part.is_dir():
                continue
            try:
                part.mkdir()
            except FileExistsError:
                if part.is_dir():
                    continue  # made meanwhile by someone else: theirs
                _raise_if_loop(part)
                raise
            made.append(part)
    except (FileExistsError, NotADirectoryError):
        remove_folders(made)
        raise CacheError(
            f"cannot create the folder {folder}: it or part of its path is a file"
        ) from None
    except OSError:
        remove_folders(made)
        raise
    return made


def _raise_if_loop(path: Path) -> None:
    """Raise ``ELOOP`` where ``path`` is a loop of symbolic links (which the CLI names as one)."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise


def remove_folders(made: list[Path]) -> None:
    """Remove the folders :func:`make_folders` made, innermost first, while they are empty (one
    holding something, written there meanwhile, is kept, and so are those around it)."""
    for part in reversed(made):
        try:
            part.rmdir()
        except OSError:
            return


# Temporary files carry their writer (host and process id), so that those of a killed writer
# can be told from those of a live one and removed later.
_OWNER = f"{socket.gethostname().replace('.', '_')}-{os.getpid()}"
_STALE_SECONDS = 86_400


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(target: Path) -> None:
    """Remove the temporaries that killed writers left beside ``target``: those of a process on
    this host that no longer runs, and any older than a day (never a live writer's)."""
    if not target.parent.is_dir():
        return
    host = _OWNER.rsplit("-", 1)[0]
    # Only the names atomic_path gives (the writer's host and pid, then mkstemp's random
    # characters): a user's own ".NAME.v1.tmp" beside it is never taken for one.
    ours = re.compile(
        rf"\.{re.escape(target.name)}\.(?P<host>[^.]+)-(?P<pid>\d+)\.[a-z0-9_]+\.tmp(\.\w+)?"
    )
    for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp*"):
        match = ours.fullmatch(tmp.name)
        if match is None:
            continue
        writer_host, pid = match["host"], match["pid"]
        with contextlib.suppress(OSError):
            dead = writer_host == host and pid.isdigit() and not _alive(int(pid))
            if dead or time.time() - tmp.stat().st_mtime > _STALE_SECONDS:
                tmp.unlink()


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], suffix: str = "", exclusive: bool = False
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    An interrupted or failing writer leaves no file at ``path`` (and removes its temporary), so a
    later run never trusts a half-written cache. ``suffix`` keeps extensions that writers such as
    ``np.savez`` insist on. With ``exclusive``, a file at ``path`` is never replaced, not even
    one made while the writer ran (by another process): ``FileExistsError`` instead.
    """
    target = writable_file(path)
    make_folder(target.parent)
    remove_stale_temps(target)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.{_OWNER}.", suffix=f".tmp{suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600): give it the mode a plain open() would, or
        # that of the file it replaces (not of a device a link there points to: /dev/null's
        # 0666 made a recommendations file writable by anyone).
        mode = 0o666 & ~_umask()
        try:
            replaced = target.stat().st_mode
            if stat.S_ISREG(replaced):
                mode = replaced & 0o7777
        except OSError:
            pass
        os.chmod(tmp, mode)
        if exclusive:
            _publish_new(tmp, target)
        else:
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _publish_new(tmp: Path, target: Path) -> None:
    """Give the finished ``tmp`` the name ``target`` only if no file has it: a hard link is
    made or refused in one step (a check, then a rename, lets another writer in between)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: claim the name, then fill it
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.replace(tmp, target)


class SignalsHeld:
    """A with-block in which, from :meth:`hold` on, Ctrl-C (SIGINT) and SIGTERM wait until the
    block ends: steps that must finish together (a run's files replaced by its successor's,
    then its record) are not stopped between them. Only in the main thread, where Python
    handles signals; elsewhere it holds nothing."""

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> SignalsHeld:
        self._handlers: dict[int, Any] | None = None
        self._received: list[int] = []
        return self

    def hold(self) -> None:
        """Hold the signals from now until the block ends."""
        if self._handlers is not None or threading.current_thread() is not threading.main_thread():
            return
        self._handlers = {
            number: signal.signal(number, lambda got, _frame: self._received.append(got))
            for number in self._SIGNALS
        }

    def __exit__(self, *exc: object) -> None:
        if self._handlers is None:
            return
        for number, handler in self._handlers.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(self._received):  # delivered now, as they would have been
            signal.raise_signal(number)


@functools.cache
def _umask() -> int:
    """The process's umask (reading it means setting it: set back at once, and only once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[Path], object],
    suffix: str = "",
    exclusive: bool = False,
) -> None:
    """Call ``write(tmp)`` and move the finished file onto ``path`` in one rename (never onto
    an existing file with ``exclusive``: see :func:`atomic_path`)."""
    with atomic_path(path, suffix=suffix, exclusive=exclusive) as tmp:
        write(tmp)


def checksum(record: dict[str, Any]) -> str:
    """SHA-256 of a JSON record's canonical form, without its own ``checksum`` field: written
    into records so that an edited or damaged one is told from a valid one."""
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# The name under which a cache of arrays stores the digest of the others.
DIGEST_KEY = "content_sha256"


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of named arrays (names, dtypes, shapes and bytes): stored in a cache beside them
    (under :data:`DIGEST_KEY`), so that a cache edited after it was written is told from one
    as written, even where every value is plausible."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        if name == DIGEST_KEY:
            continue
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


# The name under which a cache of arrays stores the key it was built for (its file is named by a
# hash of that key, so a file copied or renamed onto another key's name is told by it).
CACHE_KEY = "cache_key"


def sealed(arrays: dict[str, Any], key: str) -> dict[str, Any]:
    """``arrays`` as a cache stores them: with the ``key`` they were built for and the digest of
    everything (:func:`cache_problem` checks both on load)."""
    arrays = {**arrays, CACHE_KEY: np.array(key)}
    arrays[DIGEST_KEY] = np.array(arrays_digest(arrays))
    return arrays


def read_cache(path: str | os.PathLike[str], key: str) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` cache ``path`` written for ``key`` (by :func:`sealed`).

    Raises:
        ValueError: not a regular file (a FIFO would block), a zip that would unpack to many
            times its size, or arrays other than written for ``key`` (:func:`cache_problem`).
        OSError, KeyError, EOFError, zipfile.BadZipFile: unreadable (see :data:`UNREADABLE`).
    """
    if not is_regular_file(path):
        raise ValueError("not a regular file (a FIFO would block every load)")
    problem = unpack_problem(path)
    if problem is not None:
        raise ValueError(problem)
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    problem = cache_problem(arrays, key)
    if problem is not None:
        raise ValueError(problem)
    return arrays


def cache_problem(arrays: dict[str, np.ndarray], key: str) -> str | None:
    """Why ``arrays`` (as loaded from a cache expected to hold ``key``'s content) cannot be
    trusted, or ``None``: content changed since written, or written for another key."""
    stored = arrays.get(DIGEST_KEY)
    if stored is None or str(stored) != arrays_digest(arrays) or CACHE_KEY not in arrays:
        return "its content is not what was written (edited, or from an older version)"
    if str(arrays[CACHE_KEY]) != key:
        return (
            "it was built from other data or settings than its name says (a cache file copied "
            "or renamed onto this one)"
        )
    return None


# Far beyond any record or config this project writes (a benchmark record of a million-step
# run holds about 3 MB of learning curve): a larger file is no record, and reading it whole
# (a 2 GB file, /dev/zero) would take the machine's memory.
MAX_RECORD_BYTES = 64 * 2**20


def read_small_bytes(path: str | os.PathLike[str], limit: int = MAX_RECORD_BYTES) -> bytes:
    """The bytes of the regular file ``path``, of at most ``limit`` bytes.

    Raises:
        OSError: it is missing or unreadable, not a regular file (a FIFO, which would block, a
            device, a folder), or larger than ``limit``.
    """
    with open(path, "rb", opener=_nonblocking) as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, a device or a folder)")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit:,} bytes, so no record or config")
    return data


def read_small_text(path: str | os.PathLike[str], limit: int = MAX_RECORD_BYTES) -> str:
    """The text of the regular file ``path`` (see :func:`read_small_bytes`).

    Raises:
        OSError: as :func:`read_small_bytes`.
        UnicodeDecodeError: it is not UTF-8 text.
    """
    return read_small_bytes(path, limit).decode()


def is_regular_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is (or links to) a regular file: not a FIFO, whose reading would block
    until someone writes to it, nor a device or a folder."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


# Model files and caches are zip archives: torch and numpy store their members, SB3 deflates
# its own (weights pack little). One many times its size on disk is a bomb, which the loaders
# would unpack whole before any check (3 MB asked for 3 GB).
MAX_UNPACK_RATIO = 20
_UNPACK_CHECKED_FROM = 64 * 2**20


def unpack_problem(path: str | os.PathLike[str]) -> str | None:
    """Why the zip archive ``path`` (a checkpoint, an SB3 model, an ``.npz`` cache) must not be
    loaded: its members would unpack to beyond :data:`MAX_UNPACK_RATIO` times its size (and
    64 MiB). ``None`` where it would not, or where it is no zip (its loader says what it is)."""
    try:
        size = os.stat(path).st_size
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    if total > _UNPACK_CHECKED_FROM and total > MAX_UNPACK_RATIO * max(size, 1):
        return (
            f"its members would unpack to {total / 2**30:.1f} GiB, {total / max(size, 1):,.0f} "
            "times its size on disk (no model or cache packs so well: a damaged or crafted file)"
        )
    return None


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of the file at ``path``, read in blocks (never whole into memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _nonblocking(path: str, flags: int) -> int:
    """Open without blocking: opening a FIFO no one writes to would wait forever."""
    return os.open(path, flags | os.O_NONBLOCK)


def read_json(path: str | os.PathLike[str], limit: int = MAX_RECORD_BYTES) -> Any:
    """The JSON content of the record or config ``path`` (see :func:`read_small_text`).

    Raises:
        OSError: as :func:`read_small_text`.
        ValueError: not UTF-8, not JSON, or nested too deep to parse.
    """
    text = read_small_text(path, limit)
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deep to be a record or config") from None
