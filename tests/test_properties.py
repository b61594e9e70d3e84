"""Property-based tests (hypothesis): invariants that hold for every input.

Shapes are fixed inside each test so that every example reuses one compiled
program; only the values vary.
"""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fnn

SETTINGS = settings(max_examples=30, deadline=None)
finite32 = st.floats(-1e4, 1e4, allow_nan=False, width=32)

softmax = jax.jit(fnn.activations.softmax)
log_softmax = jax.jit(fnn.activations.log_softmax)
sparse_ce = jax.jit(lambda z, y: fnn.losses.sparse_softmax_cross_entropy(z, y, reduction="none"))
dense_ce = jax.jit(lambda z, y: fnn.losses.softmax_cross_entropy(
    z, fnn.one_hot(y, 5), reduction="none"))
clip = fnn.optim.clip_by_global_norm(1.0)
clip_update = jax.jit(clip.update)


@SETTINGS
@given(hnp.arrays(np.float32, (4, 5), elements=finite32), hnp.arrays(np.float32, (4, 1), elements=finite32))
def test_softmax_is_a_distribution_and_shift_invariant(z, shift):
    p = np.asarray(softmax(z))
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-5)
    # Shifting a row by a constant changes nothing (up to rounding of z + c).
    np.testing.assert_allclose(np.asarray(softmax(z + shift)), p, atol=2e-3)
    np.testing.assert_allclose(np.exp(np.asarray(log_softmax(z), np.float64)), p, atol=1e-5)


@SETTINGS
@given(hnp.arrays(np.float32, (6, 5), elements=st.floats(-50, 50, width=32)),
       hnp.arrays(np.int32, (6,), elements=st.integers(0, 4)))
def test_sparse_and_one_hot_cross_entropy_agree(logits, labels):
    sparse, dense = np.asarray(sparse_ce(logits, labels)), np.asarray(dense_ce(logits, labels))
    assert np.all(sparse >= -1e-6)
    np.testing.assert_allclose(sparse, dense, rtol=1e-6, atol=1e-6)


@SETTINGS
@given(hnp.arrays(np.int32, (16,), elements=st.integers(0, 3)),
       hnp.arrays(np.int32, (16,), elements=st.integers(0, 3)))
def test_confusion_matrix_counts_and_accuracy_on_its_diagonal(pred, true):
    cm = np.asarray(fnn.metrics.confusion_matrix(pred, true, 4))
    assert cm.sum() == 16
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(true, minlength=4))  # rows = true class
    np.testing.assert_allclose(float(fnn.metrics.accuracy(pred, true)), np.trace(cm) / 16, rtol=1e-6)


@SETTINGS
@given(hnp.arrays(np.float32, (3, 2), elements=st.floats(-1e3, 1e3, width=32)),
       hnp.arrays(np.float32, (4,), elements=st.floats(-1e3, 1e3, width=32)))
def test_clip_by_global_norm_bounds_the_norm_and_keeps_the_direction(a, b):
    grads = {"a": a, "b": b}
    clipped, _ = clip_update(grads, clip.init(grads))
    flat = np.concatenate([np.ravel(a), b]).astype(np.float64)
    out = np.concatenate([np.ravel(clipped["a"]), np.asarray(clipped["b"])]).astype(np.float64)
    norm = np.linalg.norm(flat)
    assert np.linalg.norm(out) <= 1.0 + 1e-5
    expected = flat if norm <= 1.0 else flat / norm
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)


# A few sizes only: each new size compiles jax.random.permutation once.
SIZES = st.sampled_from([2, 7, 12, 25, 64])


@settings(max_examples=30, deadline=None)
@given(SIZES, st.integers(2, 10), st.integers(0, 2**31 - 1))
def test_kfold_validation_folds_partition_the_data(n, k, seed):
    k = min(k, n)
    folds = fnn.train.kfold_indices(n, k, key=jax.random.key(seed))
    assert len(folds) == k
    validation = np.concatenate([val for _, val in folds])
    np.testing.assert_array_equal(np.sort(validation), np.arange(n))
    for train, val in folds:
        assert len(np.intersect1d(train, val)) == 0
        assert len(train) + len(val) == n


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([10, 17, 33, 64]), st.integers(0, 2**31 - 1))
def test_train_dev_test_split_uses_every_example_once(n, seed):
    x = np.arange(n)
    train, dev, test = fnn.train.train_dev_test_split(x, fractions=(0.6, 0.2, 0.2),
                                                      key=jax.random.key(seed))
    np.testing.assert_array_equal(np.sort(np.concatenate([train, dev, test])), x)
    for part, fraction in ((train, 0.6), (dev, 0.2), (test, 0.2)):
        assert abs(len(part) - fraction * n) <= 1
