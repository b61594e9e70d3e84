"""Offline loaders: shapes, dtypes, scaling, and the error without scikit-learn."""

import sys

import numpy as np
import pytest

import fnn
from fnn import datasets

sklearn_datasets = pytest.importorskip("sklearn.datasets")


def test_digits_flat_and_images():
    x, y = datasets.load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int32
    assert x.min() == 0.0 and x.max() == 1.0
    raw = sklearn_datasets.load_digits()
    np.testing.assert_allclose(x * 16.0, raw.data)
    np.testing.assert_array_equal(y, raw.target)
    images, y2 = datasets.load_digits(images=True)
    assert images.shape == (1797, 8, 8, 1) and images.dtype == np.float32
    np.testing.assert_array_equal(images[5, :, :, 0], raw.images[5] / 16.0)
    np.testing.assert_array_equal(y2, y)
    assert sorted(np.unique(y).tolist()) == list(range(10))


def test_breast_cancer():
    x, y = datasets.load_breast_cancer()
    assert x.shape == (569, 30) and x.dtype == np.float32
    assert y.shape == (569,) and y.dtype == np.int32
    assert np.bincount(y).tolist() == [212, 357]
    np.testing.assert_allclose(x, sklearn_datasets.load_breast_cancer().data, rtol=1e-6)


def test_diabetes_scaled_and_raw():
    x, y = datasets.load_diabetes()
    assert x.shape == (442, 10) and x.dtype == np.float32
    assert y.shape == (442,) and y.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(x, axis=0), 1.0, rtol=1e-5)
    raw, y_raw = datasets.load_diabetes(scaled=False)
    assert raw[:, 0].max() > 10          # age in years
    np.testing.assert_array_equal(y_raw, y)
    assert 25 <= y.min() and y.max() <= 346


def test_loaders_are_reachable_from_fnn():
    assert fnn.datasets.load_digits is datasets.load_digits


@pytest.mark.parametrize("loader", ["load_digits", "load_breast_cancer", "load_diabetes"])
def test_missing_scikit_learn_names_the_extra(monkeypatch, loader):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=rf'{loader} needs scikit-learn.*pip install "fnn\[examples\]"'):
        getattr(datasets, loader)()
