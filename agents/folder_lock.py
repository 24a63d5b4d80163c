"""An exclusive lock on a folder a command writes (a benchmark's results, a run), so that a
second command on the same folder is refused at once instead of replacing the first's files.

The lock is ``flock`` on ``FOLDER/.movielens-rec.lock`` (a name no user file has, since the file
is removed on release): the kernel drops the lock with its process, so a killed command leaves
no stale lock, only the file (naming the holder), which the next command locks again.
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from movielens_env.storage import make_folders, remove_folders

LOCK_FILE = ".movielens-rec.lock"

# The folders this process holds, so that a command locking its folder around an API call that
# locks it too does not refuse itself (flock conflicts between two opens in one process).
_HELD: set[Path] = set()


@contextmanager
def lock_folder(folder: Path, what: str, error: type[Exception]) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (created if missing, and removed again on release
    if it is then empty) while the block runs; ``what`` names the command in the message.

    Raises:
        error: another process holds the lock (another ``what`` writing into ``folder``).
    """
    key = Path(folder).resolve()
    if key in _HELD:
        yield
        return
    # Only the folders made here are removed on release (where the command was refused before
    # it wrote): "missing/../mine" does not exist as spelled, yet names the user's "mine".
    made = make_folders(folder)
    path = folder / LOCK_FILE
    try:
        handle = _open_lock(folder, path, what, error)
    except BaseException:
        remove_folders(made)
        raise
    # The holder says who it is, for the message of a command it refuses.
    os.ftruncate(handle, 0)
    os.pwrite(handle, f"{what} (pid {os.getpid()})".encode(), 0)
    _HELD.add(key)
    try:
        yield
    finally:
        _HELD.discard(key)
        try:
            if os.lstat(path).st_ino == os.fstat(handle).st_ino:  # only the lock's own file
                path.unlink()
        except FileNotFoundError:
            pass
        os.close(handle)
        remove_folders(made)  # only if empty: the command was refused before it wrote


def lock_problem(folder: Path) -> str:
    """Why the lock of ``folder`` could not be taken for what stands at its name ("" if it
    could): what :func:`lock_folder` refuses there, told before any work (nothing is opened)."""
    try:
        info = os.lstat(folder / LOCK_FILE)
    except OSError:
        return ""
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        return f"{LOCK_FILE} is not a lock file of this tool's (a link, a folder or a special file)"
    return ""


def _open_lock(folder: Path, path: Path, what: str, error: type[Exception]) -> int:
    """The descriptor of the lock file ``path``, opened and locked (see :func:`lock_folder`)."""
    try:
        # Never through a link, nor blocking on a FIFO: the lock writes into its file.
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
        handle = os.open(path, flags, 0o644)
    except OSError as exc:  # a folder or a link of that name, a folder we may not write
        raise error(f"{path} cannot be opened as {what}'s lock: {exc.strerror}") from None
    info = os.fstat(handle)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:  # a FIFO, a device, a hard link
        os.close(handle)
        raise error(
            f"{path} is not a lock file of this tool's (a special file, or a file linked "
            "elsewhere, which the lock would overwrite): move it away"
        )
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # A holder that released between our open and our flock removed the file we opened.
        if os.stat(path).st_ino != info.st_ino:
            raise BlockingIOError
    except (BlockingIOError, FileNotFoundError):
        holder = _holder(handle) or f"another {what}"
        os.close(handle)
        raise error(
            f"{folder} is in use by {holder} (it holds {path.name}'s lock); wait for it "
            "to end, or give this one another folder"
        ) from None
    return handle


def _holder(handle: int) -> str:
    """The command holding the lock, as it wrote itself there ("" if unsaid or unreadable)."""
    try:
        text = os.pread(handle, 100, 0).decode("ascii")
    except (OSError, UnicodeDecodeError):
        return ""
    return text if text.isprintable() else ""
