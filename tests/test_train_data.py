"""Splits and k-fold indices, checked with numpy counts (an independent reference)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.train.data import kfold_indices, split_indices, train_dev_test_split

KEY = jax.random.key(0)


def _labels(counts, seed=0):
    """Labels with ``counts[c]`` members of class ``c``, in a shuffled order."""
    y = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(y)


@pytest.mark.parametrize("n,fractions", [(10, (0.8, 0.1, 0.1)), (1797, (0.8, 0.1, 0.1)),
                                         (101, (0.7, 0.3)), (7, (0.5, 0.25, 0.25)),
                                         (1000, (0.6, 0.2, 0.1, 0.1))])
def test_split_is_a_partition_with_the_requested_sizes(n, fractions):
    splits = split_indices(n, fractions, key=KEY)
    assert len(splits) == len(fractions)
    everything = np.concatenate(splits)
    np.testing.assert_array_equal(np.sort(everything), np.arange(n))
    for idx, f in zip(splits, fractions):
        assert idx.dtype == np.int64
        assert abs(len(idx) - n * f) <= 1.0 + 1e-9


@pytest.mark.parametrize("counts,fractions", [
    ((178, 182, 177, 183, 181, 182, 181, 179, 174, 180), (0.8, 0.1, 0.1)),   # digits
    ((212, 357), (0.8, 0.1, 0.1)),                                            # breast cancer
    ((50, 500, 5), (0.7, 0.3)),
    ((30, 31, 29), (0.6, 0.2, 0.2)),
])
def test_stratified_split_keeps_class_proportions(counts, fractions):
    y = _labels(counts)
    n = len(y)
    splits = split_indices(n, fractions, key=KEY, stratify=y)
    tolerance = 1.0 if len(fractions) == 2 else 2.0
    for idx, f in zip(splits, fractions):
        assert abs(len(idx) - n * f) <= 1.0
        per_class = np.bincount(y[idx], minlength=len(counts))
        np.testing.assert_array_less(np.abs(per_class - np.asarray(counts) * f), tolerance)


def test_stratified_split_puts_a_rare_class_outside_train():
    y = np.zeros(200, dtype=np.int32)
    y[:4] = 1
    for seed in range(5):
        _, dev, test = split_indices(200, key=jax.random.key(seed), stratify=y)
        assert y[dev].sum() + y[test].sum() >= 1   # 4 * 0.2 = 0.8 expected


def test_split_is_deterministic_given_the_key_and_changes_with_it():
    a = split_indices(50, key=jax.random.key(3))
    b = split_indices(50, key=jax.random.key(3))
    c = split_indices(50, key=jax.random.key(4))
    for i, j in zip(a, b):
        np.testing.assert_array_equal(i, j)
    assert any(not np.array_equal(i, j) for i, j in zip(a, c))


def test_split_order_is_shuffled_not_grouped_by_class():
    y = _labels((100, 100))
    train, _, _ = split_indices(200, key=KEY, stratify=y)
    # If train were ordered class by class, its first 80 labels would all be equal.
    assert 0 < y[train[:80]].sum() < 80


def test_train_dev_test_split_keeps_rows_paired_and_arrays_types():
    x = np.arange(60.0).reshape(30, 2)
    y = np.arange(30)
    z = jnp.arange(30) * 10
    parts = train_dev_test_split(x, y, z, fractions=(0.5, 0.5), key=KEY)
    assert len(parts) == 2
    for xs, ys, zs in parts:
        np.testing.assert_array_equal(xs[:, 0], 2.0 * ys)
        np.testing.assert_array_equal(np.asarray(zs), 10 * ys)
        assert isinstance(xs, np.ndarray) and isinstance(zs, jax.Array)
    np.testing.assert_array_equal(np.sort(np.concatenate([p[1] for p in parts])), y)


def test_train_dev_test_split_single_array_returns_arrays():
    train, dev, test = train_dev_test_split(np.arange(20), key=KEY)
    assert (train.shape, dev.shape, test.shape) == ((16,), (2,), (2,))


def test_train_dev_test_split_matches_split_indices():
    x = np.arange(40)
    parts = train_dev_test_split(x, fractions=(0.6, 0.4), key=KEY)
    for part, idx in zip(parts, split_indices(40, (0.6, 0.4), key=KEY)):
        np.testing.assert_array_equal(part, x[idx])


@pytest.mark.parametrize("fractions,match", [((0.8, 0.1), "sum to 1"),
                                             ((0.5, 0.6, -0.1), "> 0"),
                                             ((1.0,), "at least 2")])
def test_bad_fractions_are_named(fractions, match):
    with pytest.raises(ValueError, match=f"train_dev_test_split: .*{match}"):
        train_dev_test_split(np.ones(10), fractions=fractions, key=KEY)
    with pytest.raises(ValueError, match="fractions"):
        split_indices(10, fractions, key=KEY)


def test_length_mismatch_and_bad_stratify_are_named():
    with pytest.raises(ValueError, match=r"first dimension.*\(10, 2\).*\(9,\)"):
        train_dev_test_split(np.ones((10, 2)), np.ones(9), key=KEY)
    with pytest.raises(ValueError, match="at least one array"):
        train_dev_test_split(key=KEY)
    with pytest.raises(ValueError, match=r"stratify.*10 labels.*\(9,\)"):
        train_dev_test_split(np.ones(10), key=KEY, stratify=np.ones(9))
    with pytest.raises(ValueError, match="kfold_indices: stratify"):
        kfold_indices(10, 2, key=KEY, stratify=np.ones((10, 1)))


@pytest.mark.parametrize("n,k", [(10, 2), (10, 3), (11, 5), (7, 7), (569, 10)])
def test_kfold_every_example_validated_exactly_once(n, k):
    folds = kfold_indices(n, k, key=KEY)
    assert len(folds) == k
    counts = np.zeros(n, dtype=int)
    for train, val in folds:
        counts[val] += 1
        assert len(np.intersect1d(train, val)) == 0
        np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(n))
        assert len(val) in (n // k, -(-n // k))
    np.testing.assert_array_equal(counts, np.ones(n))


def test_stratified_kfold_balances_every_class_in_every_fold():
    counts = (40, 13, 7)
    y = _labels(counts, seed=1)
    k = 5
    for train, val in kfold_indices(len(y), k, key=KEY, stratify=y):
        per_class = np.bincount(y[val], minlength=3)
        for c, n_c in enumerate(counts):
            assert per_class[c] in (n_c // k, -(-n_c // k))
        np.testing.assert_array_equal(np.bincount(y[train], minlength=3), np.asarray(counts) - per_class)


def test_kfold_is_deterministic_and_shuffled():
    a = kfold_indices(20, 4, key=jax.random.key(5))
    b = kfold_indices(20, 4, key=jax.random.key(5))
    for (ta, va), (tb, vb) in zip(a, b):
        np.testing.assert_array_equal(ta, tb)
        np.testing.assert_array_equal(va, vb)
    assert not np.array_equal(np.sort(a[0][1]), np.arange(5))   # not simply the first 5


@pytest.mark.parametrize("k", [1, 0, 11, 2.5, True])
def test_kfold_bad_k_is_named(k):
    with pytest.raises(ValueError, match=r"kfold_indices: k(=11 is larger than the number of examples n \(10\)| must be an int >= 2)"):
        kfold_indices(10, k, key=KEY)


def test_bad_n_is_named():
    with pytest.raises(ValueError, match="kfold_indices: n must be a positive int"):
        kfold_indices(0, 2, key=KEY)
    with pytest.raises(ValueError, match="split_indices: n must"):
        split_indices(-3, key=KEY)
