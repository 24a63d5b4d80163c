"""The prepared-dataset cache: reused when valid, rebuilt when damaged or out of date."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from movielens_env import load_dataset, storage
from movielens_env.data import load as load_module
from tests.grouplens_files import WHOLE_STAR_ROWS, write_ml100k, zip_folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("MOVIELENS_DATA", str(folder))
    return folder


def _refuse(*_args, **_kwargs):
    raise AssertionError("the prepared cache should have been used")


def _same(a, b) -> None:
    assert a.fingerprint() == b.fingerprint()
    np.testing.assert_array_equal(a.titles, b.titles)
    if a.truth is not None:
        np.testing.assert_array_equal(a.truth.thresholds, b.truth.thresholds)
        np.testing.assert_array_equal(a.truth.item_factors, b.truth.item_factors)


def test_synthetic_data_is_generated_once(cache: Path, monkeypatch: pytest.MonkeyPatch):
    first = load_dataset("synthetic")
    assert len(list((cache / "prepared").glob("synthetic-100k-*.npz"))) == 1
    monkeypatch.setattr(load_module, "generate_synthetic", _refuse)
    second = load_dataset("synthetic")
    _same(first, second)
    rating = second.truth.true_rating(np.array([0, 1]), np.array([2, 3]))
    np.testing.assert_array_equal(
        rating, first.truth.true_rating(np.array([0, 1]), np.array([2, 3]))
    )


def test_damaged_prepared_file_is_rebuilt_with_a_warning(cache: Path):
    first = load_dataset("synthetic")
    (path,) = (cache / "prepared").glob("*.npz")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="ignoring unusable prepared dataset"):
        second = load_dataset("synthetic")
    _same(first, second)
    third = load_dataset("synthetic")  # the rebuilt file is whole again: no warning
    _same(first, third)


def test_inconsistent_prepared_file_is_not_trusted(cache: Path):
    load_dataset("synthetic")
    (path,) = (cache / "prepared").glob("*.npz")
    with np.load(path) as data:
        arrays = dict(data)
    arrays["items"] = arrays["items"] + 10_000  # indices beyond the catalogue
    # With the digest of that content, as a writer with a bug would store it: the values are
    # checked, not only the digest.
    arrays[storage.DIGEST_KEY] = np.array(storage.arrays_digest(arrays))
    np.savez(path, **arrays)
    with pytest.warns(UserWarning, match="out of range"):
        dataset = load_dataset("synthetic")
    assert dataset.items.max() < dataset.n_items


def test_grouplens_folder_is_parsed_once_until_it_changes(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = tmp_path / "ml-100k"
    write_ml100k(folder)
    first = load_dataset("ml-100k", folder)
    with monkeypatch.context() as patch:
        patch.setattr(load_module, "read_ratings", _refuse)
        _same(first, load_dataset("ml-100k", folder))
    write_ml100k(folder, rows=WHOLE_STAR_ROWS[:-1])  # the user replaced the file
    assert load_dataset("ml-100k", folder).n_ratings == len(WHOLE_STAR_ROWS) - 1


def test_zip_extracted_for_one_call_is_not_cached(tmp_path: Path, cache: Path):
    folder = tmp_path / "src" / "ml-100k"
    write_ml100k(folder)
    dataset = load_dataset("ml-100k", zip_folder(folder, tmp_path / "ml-100k.zip"))
    assert dataset.n_ratings == len(WHOLE_STAR_ROWS)
    assert not list(cache.glob("prepared/ml-100k-*.npz"))
