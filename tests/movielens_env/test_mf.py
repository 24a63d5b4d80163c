"""Matrix factorisation: accuracy, determinism, train-only fitting, and its disk cache."""

from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pytest

from movielens_env import temporal_split
from movielens_env.data.load import load_dataset
from movielens_env.simulator import mf as mf_module
from movielens_env.simulator.mf import MFConfig, fit_mf, load_or_fit_mf, mf_cache_path, rmse


def test_mf_beats_the_global_mean_on_held_out_ratings():
    split = temporal_split(load_dataset("synthetic"))
    model = fit_mf(split.train, MFConfig())
    baseline = float(np.sqrt(np.mean((split.test.ratings - split.train.ratings.mean()) ** 2)))
    held_out = rmse(model, split.test, clip=(1.0, 5.0))
    assert held_out < 0.9 * baseline, (held_out, baseline)
    assert rmse(model, split.train) < held_out  # fitted on train


def test_fit_is_deterministic_under_a_seed(small_dataset):
    train = temporal_split(small_dataset).train
    config = MFConfig(dim=8, iterations=3, seed=5)
    first, second = fit_mf(train, config), fit_mf(train, config)
    np.testing.assert_array_equal(first.item_factors, second.item_factors)
    np.testing.assert_array_equal(first.user_bias, second.user_bias)
    other = fit_mf(train, dataclasses.replace(config, seed=6))
    assert not np.array_equal(first.item_factors, other.item_factors)


def test_batched_solves_match_row_by_row_and_stay_within_their_memory_bound(monkeypatch):
    # Many one-rating rows at a wide dim: the padded batch is tiny but, built for the whole batch
    # at once, their Gram matrices took rows x width**2 floats (30 GiB at dim 1024 on ML-25M).
    rng = np.random.default_rng(0)
    n_rows, width, chunk = 2000, 101, 100_000
    indptr = np.arange(n_rows + 1)
    cols = rng.integers(0, 50, n_rows)
    targets = rng.normal(size=n_rows)
    other = rng.normal(size=(50, width))
    monkeypatch.setattr(mf_module, "_CHUNK_ELEMENTS", chunk)
    tracemalloc.start()
    try:
        solved = mf_module._solve_rows(indptr, cols, targets, other, reg=0.1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The whole batch's Gram matrices would be n_rows * width**2 * 8 bytes = 163 MB here.
    assert peak < 20 * chunk * 8, peak
    for row in (0, 999, 1999):
        x = other[cols[row : row + 1]]
        expected = np.linalg.solve(x.T @ x + 0.1 * np.eye(width), x.T @ targets[row : row + 1])
        np.testing.assert_allclose(solved[row], expected, rtol=1e-9, atol=1e-12)


def test_fit_never_sees_test_ratings(small_dataset):
    split = temporal_split(small_dataset)
    n_items = small_dataset.n_items
    test_keys = split.test.user_of_each_rating().astype(np.int64) * n_items + split.test.items
    is_test = np.isin(
        small_dataset.users.astype(np.int64) * n_items + small_dataset.items, test_keys
    )
    # Flip every test rating: a model fitted on train only cannot change.
    flipped = small_dataset.ratings.copy()
    flipped[is_test] = 6.0 - flipped[is_test]
    changed_split = temporal_split(dataclasses.replace(small_dataset, ratings=flipped))
    assert not np.array_equal(changed_split.test.ratings, split.test.ratings)
    config = MFConfig(dim=8, iterations=3)
    np.testing.assert_array_equal(
        fit_mf(split.train, config).item_factors, fit_mf(changed_split.train, config).item_factors
    )


def test_users_and_items_without_train_ratings_get_finite_factors(small_dataset):
    train = temporal_split(small_dataset).train
    empty_user = dataclasses.replace(
        train, indptr=np.concatenate([train.indptr, [train.indptr[-1]]])
    )  # one more user, with no ratings
    model = fit_mf(empty_user, MFConfig(dim=4, iterations=2))
    assert np.isfinite(model.user_factors).all() and np.isfinite(model.item_factors).all()
    assert model.predict(empty_user.n_users - 1, 0) == pytest.approx(
        model.global_mean + model.item_bias[0] + model.user_bias[-1], abs=1e-5
    )


def test_cache_is_reused_and_keyed_by_hyper_parameters(small_dataset, tmp_path, monkeypatch):
    train = temporal_split(small_dataset).train
    config = MFConfig(dim=4, iterations=2)
    fitted = load_or_fit_mf(train, config, "fp", 0.8, cache_dir=tmp_path)
    path = mf_cache_path("fp", 0.8, config, tmp_path)
    assert path.exists() and not list(path.parent.glob(".*tmp*"))

    def refuse(*args, **kwargs):
        raise AssertionError("should have been read from the cache")

    monkeypatch.setattr(mf_module, "fit_mf", refuse)
    cached = load_or_fit_mf(train, config, "fp", 0.8, cache_dir=tmp_path)
    np.testing.assert_array_equal(cached.item_factors, fitted.item_factors)
    assert mf_cache_path("fp", 0.8, dataclasses.replace(config, reg=0.2), tmp_path) != path
    assert mf_cache_path("other", 0.8, config, tmp_path) != path
    assert mf_cache_path("fp", 0.7, config, tmp_path) != path


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_shape"])
def test_corrupted_cache_is_detected_and_rebuilt(small_dataset, tmp_path, damage):
    train = temporal_split(small_dataset).train
    config = MFConfig(dim=4, iterations=2)
    fitted = load_or_fit_mf(train, config, "fp", 0.8, cache_dir=tmp_path)
    path = mf_cache_path("fp", 0.8, config, tmp_path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"not a numpy file")
    else:
        np.savez(path, user_factors=np.zeros((2, 4)), item_factors=np.zeros((2, 4)),
                 user_bias=np.zeros(2), item_bias=np.zeros(2), global_mean=3.0)  # fmt: skip
    with pytest.warns(UserWarning, match="MF cache"):
        rebuilt = load_or_fit_mf(train, config, "fp", 0.8, cache_dir=tmp_path)
    np.testing.assert_array_equal(rebuilt.item_factors, fitted.item_factors)
    np.testing.assert_array_equal(
        load_or_fit_mf(train, config, "fp", 0.8, cache_dir=tmp_path).item_factors,
        fitted.item_factors,
    )


def test_interrupted_cache_write_leaves_nothing(small_dataset, tmp_path, monkeypatch):
    train = temporal_split(small_dataset).train
    config = MFConfig(dim=4, iterations=2)

    def interrupted(file, **arrays):
        with open(file, "wb") as handle:
            handle.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(mf_module.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_or_fit_mf(train, config, "fp", 0.8, cache_dir=tmp_path)
    assert not list((tmp_path / "embeddings").iterdir())


@pytest.mark.parametrize("field, value", [("dim", 0), ("reg", 0.0), ("iterations", 0)])
def test_impossible_mf_config_is_refused(field, value):
    with pytest.raises(ValueError, match=f"MFConfig.{field}"):
        MFConfig(**{field: value})


def test_numpy_scalars_are_the_numbers_they_equal(small_dataset, tmp_path):
    """np.int64(3) passed the checks, then the cache key's JSON raised a raw TypeError."""
    config = MFConfig(dim=np.int64(4), reg=np.float32(0.5), iterations=np.int32(2))
    assert config == MFConfig(dim=4, reg=0.5, iterations=2)
    assert type(config.dim) is int and type(config.reg) is float
    train = temporal_split(small_dataset).train
    load_or_fit_mf(train, config, "fp", 0.8, cache_dir=tmp_path)
