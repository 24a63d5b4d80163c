"""The GroupLens file formats: one table drives every MovieLens loader."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import MovieLensRecError

_BASE_URL = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class GroupLensFormat:
    """How one MovieLens release lays out its files.

    Attributes:
        name: dataset name used throughout the package (``"ml-1m"``).
        url: the official zip.
        sha256: pinned SHA-256 of that zip; a download that differs is refused.
        zip_folder: the folder the zip extracts to (``ml-10m.zip`` holds ``ml-10M100K/``).
        ratings_file: ratings file inside that folder.
        ratings_sep: field separator of the ratings file.
        ratings_header: the column names of the ratings file's header line (empty: no header).
        items_file: item metadata file (titles, genres), optional at load time.
        items_sep: field separator of the items file.
        items_header: the column names of the items file's header line (empty: no header).
        items_encoding: text encoding of the items file (GroupLens wrote older ones in latin-1).
        genres_as_flags: genres are 19 0/1 columns (ml-100k) rather than a ``|``-joined field.
        rating_scale: smallest and largest rating.
        rating_step: ratings are multiples of this (1 or 0.5 stars).
    """

    name: str
    url: str
    sha256: str
    zip_folder: str
    ratings_file: str
    ratings_sep: str
    ratings_header: tuple[str, ...]
    items_file: str
    items_sep: str
    items_header: tuple[str, ...]
    items_encoding: str
    genres_as_flags: bool
    rating_scale: tuple[float, float]
    rating_step: float


ML_100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)


def _dat(
    name: str, sha256: str, folder: str, encoding: str, scale: tuple[float, float], step: float
):
    return GroupLensFormat(
        name=name,
        url=f"{_BASE_URL}/{name}.zip",
        sha256=sha256,
        zip_folder=folder,
        ratings_file="ratings.dat",
        ratings_sep="::",
        ratings_header=(),
        items_file="movies.dat",
        items_sep="::",
        items_header=(),
        items_encoding=encoding,
        genres_as_flags=False,
        rating_scale=scale,
        rating_step=step,
    )


def _csv(name: str, sha256: str):
    return GroupLensFormat(
        name=name,
        url=f"{_BASE_URL}/{name}.zip",
        sha256=sha256,
        zip_folder=name,
        ratings_file="ratings.csv",
        ratings_sep=",",
        ratings_header=("userId", "movieId", "rating", "timestamp"),
        items_file="movies.csv",
        items_sep=",",
        items_header=("movieId", "title", "genres"),
        items_encoding="utf-8",
        genres_as_flags=False,
        rating_scale=(0.5, 5.0),
        rating_step=0.5,
    )


# SHA-256 values as published alongside the GroupLens zips (cross-checked against their MD5s).
FORMATS: dict[str, GroupLensFormat] = {
    "ml-100k": GroupLensFormat(
        name="ml-100k",
        url=f"{_BASE_URL}/ml-100k.zip",
        sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        zip_folder="ml-100k",
        ratings_file="u.data",
        ratings_sep="\t",
        ratings_header=(),
        items_file="u.item",
        items_sep="|",
        items_header=(),
        items_encoding="latin-1",
        genres_as_flags=True,
        rating_scale=(1.0, 5.0),
        rating_step=1.0,
    ),
    "ml-1m": _dat(
        "ml-1m",
        "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        "ml-1m",
        "latin-1",
        (1.0, 5.0),
        1.0,
    ),
    "ml-10m": _dat(
        "ml-10m",
        "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862",
        "ml-10M100K",
        "utf-8",
        (0.5, 5.0),
        0.5,
    ),
    "ml-20m": _csv("ml-20m", "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3"),
    "ml-25m": _csv("ml-25m", "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa"),
    "ml-latest-small": _csv(
        "ml-latest-small", "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436"
    ),
}

SYNTHETIC_NAMES = (
    "synthetic",
    "synthetic-small",
    "synthetic-100k",
    "synthetic-1m",
    "synthetic-25m",
)
DATASET_NAMES = (*FORMATS, *SYNTHETIC_NAMES)


def get_format(name: str) -> GroupLensFormat:
    """The format of a GroupLens dataset, or an error listing the valid names."""
    try:
        return FORMATS[name]
    except KeyError:
        raise MovieLensRecError(
            f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}"
        ) from None


def valid_genre(name: str) -> bool:
    """Whether ``name`` can be a genre: not empty, no ``|`` (GroupLens' separator) and no
    control character (a newline would let two genre tables hash alike)."""
    return bool(name) and "|" not in name and all(ord(c) >= 32 for c in name)
