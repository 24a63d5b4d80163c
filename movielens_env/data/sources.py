"""Where a GroupLens dataset's files come from: ``data_dir``, then the cache, then a download."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from ..errors import ChecksumError, DataFormatError, DataNotFoundError, UnsafeArchiveError
from ..storage import CACHE_ENV_VAR, cache_root, make_folder
from .formats import FORMATS, GroupLensFormat


def _dataset_folder(root: Path, fmt: GroupLensFormat, itself: bool = True) -> Path | None:
    """``root`` (only where ``itself``: a folder given as the data, not the cache holding every
    release, where files at its top would be served under every release's name), or its
    sub-folder named after the dataset or its zip, if it holds the ratings."""
    for folder in ((root,) if itself else ()) + (root / fmt.name, root / fmt.zip_folder):
        if (folder / fmt.ratings_file).is_file():
            return folder
    return None


def source_signature(
    name: str,
    data_dir: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple:
    """A cheap identity of the files GroupLens dataset ``name`` would be read from (``data_dir``
    or the cache): each file's path, size, modification and change times and inode. Any write
    changes the change time, which no user can set, so an edited file is told apart without
    reading it; empty where nothing is found (or ``name`` is not a GroupLens dataset)."""
    fmt = FORMATS.get(name)
    if fmt is None:
        return ()
    if data_dir is not None:
        given = Path(data_dir).expanduser()
        folder = _dataset_folder(given, fmt) if given.is_dir() else None
        files = [given] if given.is_file() else []
    else:
        folder = _dataset_folder(cache_root(cache_dir), fmt, itself=False)
        files = []
    if folder is not None:
        files += [folder / fmt.ratings_file, folder / fmt.items_file]
    found = []
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        found.append((str(file), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino))
    return tuple(found)


# Far beyond any GroupLens release (ML-25M's ratings.csv: 0.65 GiB, packed about 4 times), so
# that a damaged or hostile archive is refused before it fills the disk.
_MAX_MEMBER = 4 * 2**30
_RATIO_CHECKED_FROM = 64 * 2**20
_MAX_RATIO = 50
# Extracting a million empty members took minutes of file creation, silently.
_MAX_MEMBERS = 10_000


def _check_members(archive: zipfile.ZipFile, zip_path: Path) -> None:
    if len(archive.infolist()) > _MAX_MEMBERS:  # empty members pass every size check
        raise UnsafeArchiveError(
            f"{zip_path}: {len(archive.infolist()):,} members, beyond {_MAX_MEMBERS:,} (a "
            "GroupLens release has under 30): refusing it"
        )
    total = sum(info.file_size for info in archive.infolist())
    if total > _MAX_MEMBER:  # many members, each small enough, together filling the disk
        raise UnsafeArchiveError(
            f"{zip_path}: its members would expand to {total / 2**30:.1f} GiB in all; a GroupLens "
            "release is at most about 1.2 GiB: refusing it"
        )
    for info in archive.infolist():
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]) or is_link:
            raise UnsafeArchiveError(
                f"{zip_path}: member {name!r} would extract outside its folder; "
                "refusing the archive"
            )
        if info.file_size > _MAX_MEMBER or (
            info.file_size > _RATIO_CHECKED_FROM
            and info.file_size > _MAX_RATIO * max(info.compress_size, 1)
        ):
            raise UnsafeArchiveError(
                f"{zip_path}: member {name!r} would expand to {info.file_size / 2**30:.1f} GiB "
                f"({info.file_size / max(info.compress_size, 1):.0f} times its packed size); "
                "GroupLens files are at most about 0.7 GiB and pack 3 to 5 times: refusing it"
            )
    # Many members, each below the size whose ratio is checked, that together still unpack
    # GBs of next to nothing (a minute of writing on every load).
    packed = max(sum(info.compress_size for info in archive.infolist()), 1)
    if total > _RATIO_CHECKED_FROM and total > _MAX_RATIO * packed:
        raise UnsafeArchiveError(
            f"{zip_path}: its members would expand to {total / 2**30:.1f} GiB in all, "
            f"{total / packed:.0f} times their packed size; GroupLens releases pack 3 to 5 "
            "times: refusing it"
        )


def safe_extract(zip_path: Path, dest: Path) -> None:
    """Extract ``zip_path`` into ``dest`` (which must not exist) all at once or not at all.

    Every member is checked first: absolute paths, ``..`` components, drive letters and symlinks
    are refused with :class:`UnsafeArchiveError`. Files go to a temporary sibling folder that is
    renamed onto ``dest`` only once extraction finished.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataNotFoundError(f"{zip_path}: not a readable zip archive ({exc})") from None
    with archive:
        _check_members(archive, zip_path)
        make_folder(dest.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            try:
                archive.extractall(tmp)
            except (zipfile.BadZipFile, EOFError, zlib.error) as exc:  # a bad CRC, a cut file
                raise DataFormatError(f"{zip_path}: damaged zip archive ({exc})") from None
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _from_zip(zip_path: Path, fmt: GroupLensFormat, dest: Path) -> Path:
    """Extract a GroupLens zip and move its dataset folder onto ``dest``."""
    staging = Path(tempfile.mkdtemp(prefix=f".{fmt.name}.zip.", dir=dest.parent))
    try:
        safe_extract(zip_path, staging / "x")
        found = _dataset_folder(staging / "x", fmt)
        if found is None:
            raise DataNotFoundError(
                f"{zip_path}: no {fmt.ratings_file} at the top or in {fmt.zip_folder}/; "
                f"is this the {fmt.name} zip?"
            )
        os.replace(found, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


# Seconds to wait for the server to connect or send (a silent network would otherwise hang).
_TIMEOUT_SECONDS = 30


def _remove_if_empty(folders: Iterable[Path]) -> None:
    """Remove each of ``folders`` that is empty (those a failed download made)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (or gone): neither it nor its parents are ours to remove


def _download(fmt: GroupLensFormat, root: Path) -> Path:
    import pooch  # imported lazily: most runs never download

    downloads = root / "downloads"
    made = [folder for folder in (root, downloads) if not folder.exists()]
    make_folder(downloads)
    try:
        # pooch writes to a temporary file and keeps it only if the hash matches.
        zip_name = pooch.retrieve(
            fmt.url,
            known_hash=f"sha256:{fmt.sha256}",
            fname=f"{fmt.name}.zip",
            path=downloads,
            downloader=pooch.HTTPDownloader(progressbar=True, timeout=_TIMEOUT_SECONDS),
        )
    except BaseException as exc:
        _remove_if_empty(reversed(made))  # offline: nothing left behind
        if isinstance(exc, ValueError) and "hash" in str(exc).lower():
            raise ChecksumError(
                f"download of {fmt.url} does not match its pinned SHA-256 {fmt.sha256}; "
                "the file was deleted and nothing was cached"
            ) from exc
        raise
    zip_path = Path(zip_name)
    try:
        return _from_zip(zip_path, fmt, root / fmt.name)
    finally:
        zip_path.unlink(missing_ok=True)  # extracted, or refused: either way it is not kept


def locate_dataset(
    fmt: GroupLensFormat,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    """Find the folder holding ``fmt``'s files, in the order ``data_dir``, cache, download.

    ``data_dir`` may be the dataset folder, a folder containing it, or the GroupLens zip (which is
    extracted safely to a temporary folder; the returned handle deletes it when closed).

    Returns:
        The folder and the temporary directory to clean up (``None`` unless ``data_dir`` is a zip).
    """
    if data_dir is not None:
        given = Path(data_dir).expanduser()
        if given.is_file() and zipfile.is_zipfile(given):
            tmp = tempfile.TemporaryDirectory(prefix=f"{fmt.name}-")
            try:
                return _from_zip(given, fmt, Path(tmp.name) / fmt.name), tmp
            except BaseException:
                tmp.cleanup()
                raise
        folder = _dataset_folder(given, fmt) if given.is_dir() else None
        if folder is None:
            raise DataNotFoundError(
                f"data_dir={str(given)!r} holds no {fmt.ratings_file} as a file (looked in it "
                f"and in its {' and '.join(sorted({f'{fmt.name}/', f'{fmt.zip_folder}/'}))} "
                "sub-folders) and is not a zip archive"
            )
        return folder, None
    root = cache_root(cache_dir)
    folder = _dataset_folder(root, fmt, itself=False)
    if folder is not None:
        return folder, None
    if download:
        try:
            return _download(fmt, root), None
        except (ChecksumError, UnsafeArchiveError):
            raise
        except Exception as exc:
            reason = f"download failed: {type(exc).__name__}: {exc}"
    else:
        reason = "downloads are disabled (download=False)"
    raise DataNotFoundError(
        f"{fmt.name} is not available ({reason}). Three ways out: pass data_dir= pointing at the "
        f"{fmt.name} folder or its zip; put the extracted folder in the cache as "
        f"{root / fmt.name} (set ${CACHE_ENV_VAR} to move the cache); or connect to the network "
        f"so that {fmt.url} can be downloaded"
    )
