"""GroupLens loaders, on small files written here in each release's exact layout.

No real MovieLens data is used (it may not be redistributed): every row below is invented.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import movielens_env
from movielens_env import (
    DATASET_NAMES,
    DataFormatError,
    DataNotFoundError,
    MovieLensRecError,
    load_dataset,
)
from movielens_env.data.formats import FORMATS
from tests.grouplens_files import (
    HALF_STAR_ROWS,
    MOVIES,
    WHOLE_STAR_ROWS,
    write_csv,
    write_dat,
    write_file,
    write_ml100k,
    zip_folder,
)


@dataclass(frozen=True)
class Case:
    name: str
    rows: list
    write: Callable[..., None]


def _ml1m(folder: Path, rows=WHOLE_STAR_ROWS, movies=MOVIES) -> None:
    write_dat(folder, rows, movies, whole=True, encoding="latin-1")


def _ml10m(folder: Path, rows=HALF_STAR_ROWS, movies=MOVIES) -> None:
    write_dat(folder, rows, movies, whole=False, encoding="utf-8")


CASES = [
    Case("ml-100k", WHOLE_STAR_ROWS, write_ml100k),
    Case("ml-1m", WHOLE_STAR_ROWS, _ml1m),
    Case("ml-10m", HALF_STAR_ROWS, _ml10m),
    Case("ml-20m", HALF_STAR_ROWS, write_csv),
    Case("ml-25m", HALF_STAR_ROWS, write_csv),
    Case("ml-latest-small", HALF_STAR_ROWS, write_csv),
]
CASE_IDS = [case.name for case in CASES]


@pytest.fixture(autouse=True)
def _empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never touch the user's cache: point it at an empty folder."""
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("MOVIELENS_DATA", str(cache))
    return cache


def _folder_for(root: Path, name: str) -> Path:
    """The dataset folder as the GroupLens zip names it (``ml-10M100K`` for ml-10m)."""
    return root / FORMATS[name].zip_folder


def check_dataset(dataset: movielens_env.RatingsDataset, name: str, rows, with_metadata: bool):
    raw_users = np.array([r[0] for r in rows])
    raw_items = np.array([r[1] for r in rows])
    assert dataset.name == name
    assert dataset.n_ratings == len(rows)
    assert dataset.rating_scale == FORMATS[name].rating_scale
    # Remapping: sorted raw ids, contiguous internal ids, consistent with every raw row.
    np.testing.assert_array_equal(dataset.user_ids, [3, 7, 42])
    np.testing.assert_array_equal(dataset.item_ids, [5, 10, 33, 100])
    assert dataset.n_users == 3
    assert dataset.n_items == 4
    assert set(dataset.users.tolist()) == set(range(3))
    assert set(dataset.items.tolist()) == set(range(4))
    np.testing.assert_array_equal(dataset.user_ids[dataset.users], raw_users)
    np.testing.assert_array_equal(dataset.item_ids[dataset.items], raw_items)
    np.testing.assert_array_equal(dataset.user_index(raw_users), dataset.users)
    np.testing.assert_array_equal(dataset.item_index(raw_items), dataset.items)
    assert dataset.user_index(999) == -1
    np.testing.assert_array_equal(dataset.ratings, np.array([r[2] for r in rows], np.float32))
    assert dataset.ratings.dtype == np.float32
    np.testing.assert_array_equal(dataset.timestamps, [r[3] for r in rows])
    assert dataset.timestamps.dtype == np.int64
    if not with_metadata:
        assert dataset.titles is None
        assert dataset.genres is None
        assert dataset.title(int(dataset.item_index(100))) == "item 100"
        return
    titles = dict(zip(dataset.item_ids.tolist(), dataset.titles.tolist(), strict=True))
    genres = dict(zip(dataset.item_ids.tolist(), dataset.genres.tolist(), strict=True))
    for item in (5, 10, 33, 100):
        assert titles[item] == MOVIES[item][0]
        assert genres[item] == MOVIES[item][1]
    assert 77 not in titles  # unrated items are dropped
    assert dataset.title(int(dataset.item_index(5))) == "Café (1995)"


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_loads_dataset_folder(tmp_path: Path, case: Case):
    folder = _folder_for(tmp_path / "data", case.name)
    case.write(folder)
    dataset = load_dataset(case.name, data_dir=folder, download=False)
    check_dataset(dataset, case.name, case.rows, with_metadata=True)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_loads_parent_folder(tmp_path: Path, case: Case):
    parent = tmp_path / "data"
    case.write(_folder_for(parent, case.name))
    dataset = load_dataset(case.name, data_dir=parent, download=False)
    check_dataset(dataset, case.name, case.rows, with_metadata=True)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_loads_grouplens_zip(tmp_path: Path, case: Case):
    folder = _folder_for(tmp_path / "src", case.name)
    case.write(folder)
    zip_path = zip_folder(folder, tmp_path / f"{case.name}.zip")
    dataset = load_dataset(case.name, data_dir=zip_path, download=False)
    check_dataset(dataset, case.name, case.rows, with_metadata=True)
    assert zip_path.is_file()  # the user's zip is left alone


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_ratings_alone_load(tmp_path: Path, case: Case):
    folder = _folder_for(tmp_path, case.name)
    case.write(folder, movies=None)
    assert [p.name for p in folder.iterdir()] == [FORMATS[case.name].ratings_file]
    dataset = load_dataset(case.name, data_dir=folder, download=False)
    check_dataset(dataset, case.name, case.rows, with_metadata=False)


def test_ml100k_item_file_is_latin1_with_genre_flags(tmp_path: Path):
    write_ml100k(tmp_path)
    raw = (tmp_path / "u.item").read_bytes()
    assert "Café".encode("latin-1") in raw  # not UTF-8: GroupLens wrote it in latin-1
    assert raw.splitlines()[0].count(b"|") == 5 + 19 - 1
    dataset = load_dataset("ml-100k", data_dir=tmp_path)
    toy = int(dataset.item_index(100))
    assert dataset.genres[toy] == ("Animation", "Children's", "Comedy")


def test_ml1m_movies_dat_is_latin1(tmp_path: Path):
    _ml1m(tmp_path)
    assert "Café".encode("latin-1") in (tmp_path / "movies.dat").read_bytes()
    dataset = load_dataset("ml-1m", data_dir=tmp_path)
    assert dataset.title(int(dataset.item_index(5))) == "Café (1995)"


def test_ml10m_zip_folder_name_and_half_stars(tmp_path: Path):
    assert FORMATS["ml-10m"].zip_folder == "ml-10M100K"
    _ml10m(tmp_path / "ml-10M100K")
    dataset = load_dataset("ml-10m", data_dir=tmp_path)
    assert sorted(set(dataset.ratings.tolist())) == [0.5, 1.5, 2.0, 3.0, 3.5, 4.5, 5.0]


def test_csv_title_with_comma_and_quotes(tmp_path: Path):
    movies = {**MOVIES, 10: ('Big "Quoted", Movie (2001)', ("(no genres listed)",))}
    write_csv(tmp_path, movies=movies)
    assert '"Big ""Quoted"", Movie (2001)"' in (tmp_path / "movies.csv").read_text()
    dataset = load_dataset("ml-25m", data_dir=tmp_path)
    assert dataset.title(int(dataset.item_index(10))) == 'Big "Quoted", Movie (2001)'
    assert dataset.title(int(dataset.item_index(33))) == "American President, The (1995)"
    assert dataset.genres[int(dataset.item_index(33))] == ("Comedy", "Drama", "Romance")


# --- missing files and names ---------------------------------------------------------------


def test_missing_ratings_file_in_data_dir(tmp_path: Path):
    folder = tmp_path / "ml-100k"
    write_ml100k(folder)
    (folder / "u.data").unlink()
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("ml-100k", data_dir=folder, download=False)
    message = str(err.value)
    assert str(folder) in message
    assert "u.data" in message
    assert isinstance(err.value, FileNotFoundError)


def test_data_dir_that_does_not_exist(tmp_path: Path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataNotFoundError, match="nowhere"):
        load_dataset("ml-1m", data_dir=missing, download=False)


def test_missing_ratings_without_data_dir_names_three_ways_out(_empty_cache: Path):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("ml-1m", download=False)
    message = str(err.value)
    assert "Three ways out" in message
    assert "data_dir=" in message
    assert str(_empty_cache / "ml-1m") in message
    assert "MOVIELENS_DATA" in message
    assert FORMATS["ml-1m"].url in message


def test_unknown_dataset_name_lists_valid_names():
    with pytest.raises(MovieLensRecError) as err:
        load_dataset("ml-7m")
    message = str(err.value)
    assert "ml-7m" in message
    for name in DATASET_NAMES:
        assert name in message


# --- malformed files -------------------------------------------------------------------------

# ratings file, the two lines before the bad one (a header counts as a line), a good last line
LAYOUTS = {
    "ml-100k": ("u.data", ["1\t10\t3\t881250949", "2\t10\t4\t891717742"], "8\t10\t2\t1"),
    "ml-1m": ("ratings.dat", ["1::10::3::978300760", "2::10::4::978302109"], "8::10::2::1"),
    "ml-25m": ("ratings.csv", ["userId,movieId,rating,timestamp", "1,10,3.5,11124"], "8,10,2,1"),
}
SEPARATORS = {"ml-100k": "\t", "ml-1m": "::", "ml-25m": ","}
BAD_ROWS = {
    "too many fields": (["3", "10", "4", "978300760", "99"], r"expected 4 fields"),
    "too few fields": (["3", "10", "4"], r"timestamp"),
    "non-numeric rating": (["3", "10", "good", "978300760"], r"rating must be a number.*good"),
    "non-numeric user": (["bob", "10", "4", "978300760"], r"user must be an integer.*bob"),
    "fractional item": (["3", "10.5", "4", "978300760"], r"item must be an integer"),
}


@pytest.mark.parametrize("bad", list(BAD_ROWS), ids=list(BAD_ROWS))
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_malformed_row_names_file_and_line(tmp_path: Path, name: str, bad: str):
    file_name, good, tail = LAYOUTS[name]
    fields, pattern = BAD_ROWS[bad]
    lines = [*good, SEPARATORS[name].join(fields), tail]
    path = write_file(tmp_path / file_name, "\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=pattern) as err:
        load_dataset(name, data_dir=tmp_path)
    assert f"{path}:3:" in str(err.value)  # the bad row is line 3 of the file, 1-based


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_too_many_fields_in_first_row(tmp_path: Path, name: str):
    """The first data row is special to pandas (it can become an index): it must still fail."""
    file_name, good, _ = LAYOUTS[name]
    sep = SEPARATORS[name]
    header = good[:1] if FORMATS[name].ratings_header else []
    line = len(header) + 1
    # Every row has one field too many: must not be read as a shifted but valid-looking table.
    rows = [sep.join(["1", "2", "3", "4", "5"]), sep.join(["2", "3", "4", "5", "6"])]
    path = write_file(tmp_path / file_name, "\n".join([*header, *rows]) + "\n")
    with pytest.raises(DataFormatError, match="expected 4 fields") as err:
        load_dataset(name, data_dir=tmp_path)
    assert f"{path}:{line}:" in str(err.value)


def test_blank_line_in_ratings_names_its_line(tmp_path: Path):
    path = write_file(tmp_path / "u.data", "1\t10\t3\t881250949\n\n2\t10\t4\t891717742\n")
    with pytest.raises(DataFormatError) as err:
        load_dataset("ml-100k", data_dir=tmp_path)
    assert f"{path}:2:" in str(err.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ml-100k", "6"),
        ("ml-100k", "0"),
        ("ml-100k", "3.5"),
        ("ml-1m", "4.5"),
        ("ml-10m", "5.5"),
        ("ml-25m", "0.25"),
        ("ml-25m", "0"),
        ("ml-latest-small", "5.5"),
    ],
)
def test_rating_outside_scale_names_file_and_line(tmp_path: Path, name: str, value: str):
    fmt = FORMATS[name]
    sep = fmt.ratings_sep
    lines = ["userId,movieId,rating,timestamp"] if fmt.ratings_header else []
    lines += [sep.join(["1", "10", "3", "881250949"]), sep.join(["1", "11", value, "881250950"])]
    path = write_file(tmp_path / fmt.ratings_file, "\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as err:
        load_dataset(name, data_dir=tmp_path)
    message = str(err.value)
    assert f"{path}:{len(lines)}:" in message
    assert "scale" in message
    assert name in message


@pytest.mark.parametrize(("name", "offset"), [("ml-100k", 0), ("ml-25m", 1)])
def test_duplicate_rating_is_refused(tmp_path: Path, name: str, offset: int):
    rows = [(1, 10, 3.0, 100), (2, 10, 4.0, 101), (1, 11, 2.0, 102), (1, 10, 5.0, 103)]
    if name == "ml-100k":
        write_ml100k(tmp_path, rows=rows, movies=None)
    else:
        write_csv(tmp_path, rows=rows, movies=None)
    path = tmp_path / FORMATS[name].ratings_file
    with pytest.raises(DataFormatError) as err:
        load_dataset(name, data_dir=tmp_path)
    message = str(err.value)
    assert "user 1 rated item 10 twice" in message
    assert str(path) in message
    # The two rows are lines 1 and 4 of u.data, lines 2 and 5 of ratings.csv (after its header).
    assert f"{path}:{1 + offset}:" in message
    assert f"{1 + offset} and {4 + offset}" in message


@pytest.mark.parametrize("name", ["ml-100k", "ml-1m", "ml-25m"])
def test_empty_ratings_file(tmp_path: Path, name: str):
    path = write_file(tmp_path / FORMATS[name].ratings_file, "")
    with pytest.raises(DataFormatError, match=r"no ratings|empty") as err:
        load_dataset(name, data_dir=tmp_path)
    assert str(path) in str(err.value)


def test_header_only_ratings_csv(tmp_path: Path):
    path = write_file(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n")
    with pytest.raises(DataFormatError, match=r"no ratings|empty") as err:
        load_dataset("ml-latest-small", data_dir=tmp_path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("index", [1, 2])
@pytest.mark.parametrize("name", ["ml-100k", "ml-1m", "ml-25m"])
def test_malformed_item_file_names_file_and_line(tmp_path: Path, name: str, index: int):
    folder = tmp_path / name
    if name == "ml-100k":
        write_ml100k(folder)
        bad = "9|Broken (1990)|01-Jan-1990||http://x|" + "|".join(["0"] * 20)  # 20 flags, not 19
    elif name == "ml-1m":
        _ml1m(folder)
        bad = "9::Broken (1990)::Drama::extra"
    else:
        write_csv(folder)
        bad = "9,Broken, unquoted (1990),Drama"
    items = folder / FORMATS[name].items_file
    lines = items.read_bytes().decode("latin-1").splitlines()
    lines.insert(index, bad)  # (in movies.csv, index 1 is the first row after the header)
    items.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    line = index + 1
    with pytest.raises(DataFormatError) as err:
        load_dataset(name, data_dir=folder)
    assert f"{items}:{line}:" in str(err.value)
