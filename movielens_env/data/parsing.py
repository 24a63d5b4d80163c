"""Parsers for GroupLens ratings and item files, with errors that name the file and the line."""

from __future__ import annotations

import csv
import io
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import DataFormatError, DataNotFoundError
from .formats import ML_100K_GENRES, GroupLensFormat, valid_genre

RATING_COLUMNS = ("user", "item", "rating", "timestamp")
_EXACT = 2.0**53  # integers read through float64 are exact below this
_INTEGER_KIND = {
    "user": "an integer in [0, 2**53)",
    "item": "an integer in [0, 2**53)",
    "timestamp": "an integer in (-2**53, 2**53)",
}


@dataclass(frozen=True, eq=False)
class RawRatings:
    """Ratings as read from disk, with GroupLens' own (raw) user and item ids."""

    users: np.ndarray  # int64 raw user ids
    items: np.ndarray  # int64 raw item ids
    ratings: np.ndarray  # float32
    timestamps: np.ndarray  # int64 seconds


@dataclass(frozen=True, eq=False)
class ItemMetadata:
    """Titles and genres by raw item id."""

    item_ids: np.ndarray  # int64 raw ids
    titles: np.ndarray  # object (str)
    genres: np.ndarray  # object (tuple[str, ...])


# Beyond any GroupLens file (ML-25M's ratings.csv: 0.65 GiB): a larger one is not the release,
# and hashing, then parsing it whole would take minutes and its size in memory several times.
MAX_SOURCE_BYTES = 2 * 2**30


# Parsed, a line takes about 70 bytes whatever its length: a file of 2 GiB in 8-byte lines took
# 18 GB. GroupLens' largest release (ML-32M) has 32,000,204 ratings and 87,585 movies, whose
# movies.csv is 4 MB.
MAX_RATING_LINES = 50_000_000
MAX_ITEM_LINES = 1_000_000
MAX_ITEM_BYTES = 64 * 2**20


def check_source_size(path: Path, limit: int = MAX_SOURCE_BYTES) -> None:
    """Refuse a data file larger than any GroupLens file (``limit`` bytes), naming it."""
    size = path.stat().st_size
    if size > limit:
        raise DataFormatError(
            f"{path}: {_size(size)}, larger than any GroupLens file of its kind (ML-25M's "
            f"ratings.csv is 0.65 GiB, its movies.csv 3 MiB; the limit for this file is "
            f"{_size(limit)}): is it the GroupLens file?"
        )


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.0f} MiB"


def _read_bytes(path: Path, max_bytes: int, max_lines: int) -> bytes:
    """The file's bytes, once its start shows text and its size and line count are within
    the limits: a binary file (a disk image, zeros) or one far larger than any GroupLens file is
    refused before it is handed to the parser."""
    try:
        # Without blocking: a FIFO no one writes to would wait forever.
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NONBLOCK)) as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise DataFormatError(f"{path}: not a regular file (a FIFO, a device or a folder)")
            check_source_size(path, max_bytes)
            if b"\x00" in handle.read(1 << 16):
                raise DataFormatError(
                    f"{path}:1: not a text file (NUL bytes in its first 64 KiB); is it the "
                    "GroupLens file?"
                )
            handle.seek(0)
            data = handle.read()
    except FileNotFoundError:
        raise DataNotFoundError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataNotFoundError(f"{path}: cannot read ({exc.strerror or exc})") from None
    lines = data.count(b"\n") + (not data.endswith(b"\n"))
    if lines > max_lines:
        raise DataFormatError(
            f"{path}: {lines:,} lines, more than any GroupLens file of its kind holds (the "
            f"limit is {max_lines:,}): is it the GroupLens file?"
        )
    return data


def _table(
    path: Path,
    fmt_sep: str,
    header: tuple[str, ...],
    names: tuple[str, ...],
    encoding: str,
    dtype: type | None,
    max_bytes: int,
    max_lines: int,
) -> pd.DataFrame:
    """Read a separated file into strings or numbers, rewrapping parser errors with file:line.

    A file with a ``header`` must start with exactly those column names: a missing header would
    otherwise swallow the first row.
    """
    data = _read_bytes(path, max_bytes, max_lines)
    if header:
        found = data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace").lstrip("\ufeff")
        if [f.strip() for f in found.split(fmt_sep)] != list(header):
            raise DataFormatError(
                f"{path}:1: expected the header {fmt_sep.join(header)!r}, found {found[:80]!r}"
            )
    sep = fmt_sep
    if sep == "::":
        # Multi-character separators force pandas' slow Python engine; no field contains a tab.
        data, sep = data.replace(b"::", b"\t"), "\t"
    quoting: Literal[0, 3] = csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE
    # pandas turns the extra leading fields of a too-long *first* row into an index (or, with
    # index_col=False, drops them), so that row is counted here; later rows raise ParserError.
    first_line = 2 if header else 1
    lines = data.split(b"\n", first_line)
    if len(lines) >= first_line:
        row = lines[first_line - 1].rstrip(b"\r").decode("latin-1")
        try:
            fields = next(csv.reader([row], delimiter=sep, quoting=quoting), [])
        except csv.Error as exc:  # a field beyond csv's limit: no GroupLens line is that long
            raise DataFormatError(f"{path}:{first_line}: {exc}") from None
        if len(fields) > len(names):
            raise DataFormatError(
                f"{path}:{first_line}: expected {len(names)} fields separated by {fmt_sep!r}, "
                f"found {len(fields)}"
            )
    try:
        return pd.read_csv(
            io.BytesIO(data),
            sep=sep,
            header=0 if header else None,
            names=list(names),
            index_col=False,
            encoding=encoding,
            encoding_errors="replace",
            skip_blank_lines=False,
            quoting=quoting,
            dtype=dtype,
            on_bad_lines="error",
        )
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            want, line, saw = match.groups()
            raise DataFormatError(
                f"{path}:{line}: expected {want} fields separated by {fmt_sep!r}, found {saw}"
            ) from None
        raise DataFormatError(f"{path}: cannot parse ({exc})") from None
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path}: file is empty") from None


def read_ratings(path: Path, fmt: GroupLensFormat) -> RawRatings:
    """Parse a ratings file (``u.data``, ``ratings.dat`` or ``ratings.csv``).

    Raises:
        DataNotFoundError: the file is missing or unreadable.
        DataFormatError: a row is malformed or a rating is off the dataset's scale; the message
            gives ``file:line``.
    """
    frame = _table(
        path, fmt.ratings_sep, fmt.ratings_header, RATING_COLUMNS, "ascii", None,
        MAX_SOURCE_BYTES, MAX_RATING_LINES,
    )  # fmt: skip
    first_line = 2 if fmt.ratings_header else 1
    if len(frame) == 0:
        raise DataFormatError(f"{path}: no ratings in file")
    columns = {}
    for name in RATING_COLUMNS:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if name != "rating":
            # Beyond 2**53 a number no longer reads back exactly (and beyond 2**63 it wraps).
            low = -_EXACT if name == "timestamp" else 0
            bad |= (values != np.round(values)) | (values < low) | (values >= _EXACT)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value = frame[name].iloc[row]
            found = "nothing (too few fields?)" if pd.isna(value) else repr(value)
            kind = "a number" if name == "rating" else _INTEGER_KIND[name]
            raise DataFormatError(f"{path}:{row + first_line}: {name} must be {kind}, got {found}")
        columns[name] = values
    low, high = fmt.rating_scale
    rating = columns["rating"]
    off_scale = (
        (rating < low)
        | (rating > high)
        | (np.round(rating / fmt.rating_step) * fmt.rating_step != rating)
    )
    if off_scale.any():
        row = int(np.flatnonzero(off_scale)[0])
        raise DataFormatError(
            f"{path}:{row + first_line}: rating {rating[row]:g} is outside {fmt.name}'s scale "
            f"({low:g} to {high:g} in steps of {fmt.rating_step:g})"
        )
    return RawRatings(
        users=columns["user"].astype(np.int64),
        items=columns["item"].astype(np.int64),
        ratings=rating.astype(np.float32),
        timestamps=columns["timestamp"].astype(np.int64),
    )


# GroupLens releases list at most 20 genres; the boredom model keeps one satiation per genre, in
# dense (items x genres) tables, so 100,000 genres from one long line took minutes and GBs.
MAX_GENRES = 1_000


def _check_genre_count(path: Path, genres: list[tuple[str, ...]], first_line: int) -> None:
    """Refuse an item file naming more than :data:`MAX_GENRES` distinct genres, at the line
    where the count passes it."""
    seen: set[str] = set()
    for row, item_genres in enumerate(genres):
        seen.update(item_genres)
        if len(seen) > MAX_GENRES:
            raise DataFormatError(
                f"{path}:{row + first_line}: more than {MAX_GENRES:,} distinct genres by this "
                "line (GroupLens releases have at most 20)"
            )


def read_items(path: Path, fmt: GroupLensFormat) -> ItemMetadata | None:
    """Parse the item file (``u.item``, ``movies.dat``, ``movies.csv``); ``None`` if absent.

    Metadata is optional: a missing file returns ``None``, but a present, malformed one raises
    :class:`DataFormatError` with ``file:line``.
    """
    if not path.exists():
        return None
    n_fields = 5 + len(ML_100K_GENRES) if fmt.genres_as_flags else 3
    names = tuple(f"f{i}" for i in range(n_fields))
    frame = _table(
        path, fmt.items_sep, fmt.items_header, names, fmt.items_encoding, str,
        MAX_ITEM_BYTES, MAX_ITEM_LINES,
    )  # fmt: skip
    first_line = 2 if fmt.items_header else 1
    ids = pd.to_numeric(frame["f0"], errors="coerce").to_numpy(dtype=np.float64)
    missing = ~np.isfinite(ids) | frame["f1"].isna().to_numpy()
    missing |= (ids != np.round(ids)) | (ids < 0) | (ids >= _EXACT)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataFormatError(
            f"{path}:{row + first_line}: expected an item id (an integer in [0, 2**53)) and a title"
        )
    order = np.argsort(ids, kind="stable")
    repeats = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if len(repeats):
        first, second = sorted(order[repeats[0] : repeats[0] + 2])
        raise DataFormatError(
            f"{path}:{second + first_line}: item {int(ids[first])} is listed twice (lines "
            f"{first + first_line} and {second + first_line})"
        )
    titles = frame["f1"].to_numpy(dtype=object)
    if fmt.genres_as_flags:
        raw_flags = frame[list(names[5:])].to_numpy(dtype=object)
        bad = ~np.isin(raw_flags, ["0", "1"]).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataFormatError(
                f"{path}:{row + first_line}: expected {n_fields} fields separated by "
                f"{fmt.items_sep!r}, the last {len(ML_100K_GENRES)} genre flags each 0 or 1; "
                f"found flags {[str(f) for f in raw_flags[row]]}"
            )
        flags = raw_flags == "1"
        genres = [
            tuple(g for g, on in zip(ML_100K_GENRES, row, strict=True) if on) for row in flags
        ]
    else:
        genres = [  # a field of spaces, or "A||B", names no genre there, as an empty field;
            # a genre named twice is one genre (its satiation was split as if two)
            tuple(dict.fromkeys(n for n in (name.strip() for name in g.split("|")) if n))
            if isinstance(g, str) else ()
            for g in frame["f2"]
        ]  # fmt: skip
        _check_genre_count(path, genres, first_line)
        for row, item_genres in enumerate(genres):
            invalid = [name for name in item_genres if not valid_genre(name)]
            if invalid:
                raise DataFormatError(
                    f"{path}:{row + first_line}: the genre name {invalid[0]!r} holds a control "
                    "character (a line break inside a quoted field?)"
                )
    genre_array = np.empty(len(genres), dtype=object)
    for row, item_genres in enumerate(genres):
        genre_array[row] = item_genres
    return ItemMetadata(item_ids=ids.astype(np.int64), titles=titles, genres=genre_array)
