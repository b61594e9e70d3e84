"""fnn.preprocessing: one_hot and train-fitted standardisation against numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import preprocessing as P

RNG = np.random.default_rng(2)
TRAIN = RNG.normal(3.0, 2.0, size=(20, 3)).astype(np.float32)
TEST = RNG.normal(3.0, 2.0, size=(5, 3)).astype(np.float32)


def test_one_hot_against_numpy_eye():
    labels = np.array([[0, 3], [2, 1]])
    out = P.one_hot(labels, 4)
    assert out.shape == (2, 2, 4) and out.dtype == jnp.float32
    np.testing.assert_array_equal(out, np.eye(4)[labels])
    assert P.one_hot(jnp.array([1]), 2, dtype=jnp.int32).dtype == jnp.int32
    assert fnn.one_hot is P.one_hot


def test_one_hot_errors():
    with pytest.raises(ValueError, match=r"one_hot: labels must lie in \[0, 3\), got values from 0 to 3"):
        P.one_hot(jnp.array([0, 3]), 3)
    with pytest.raises(ValueError, match=r"one_hot: labels must lie in \[0, 3\), got values from -1"):
        P.one_hot([-1, 0], 3)
    with pytest.raises(TypeError, match="one_hot: labels must be integers, got dtype float32"):
        P.one_hot(jnp.array([0.0, 1.0]), 3)
    with pytest.raises(TypeError, match="one_hot: num_classes must be a Python int"):
        P.one_hot(jnp.array([0]), 2.5)


def test_one_hot_under_jit_and_vmap():
    f = jax.jit(P.one_hot, static_argnums=1)
    # Traced labels cannot be range-checked: out-of-range labels encode as zero rows.
    np.testing.assert_array_equal(f(jnp.array([1, 7, -1]), 3), [[0, 1, 0], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(jax.vmap(lambda y: P.one_hot(y, 3))(jnp.array([2, 0])), np.eye(3)[[2, 0]])


def test_standardizer_uses_train_statistics_for_other_splits():
    s = P.fit_standardizer(TRAIN)
    mean, std = TRAIN.mean(0, keepdims=True), TRAIN.std(0, keepdims=True)  # population std (1/m)
    np.testing.assert_allclose(s.mean, mean, rtol=1e-5)
    np.testing.assert_allclose(s.std, std, rtol=1e-5)
    train_z = s.transform(TRAIN)
    np.testing.assert_allclose(train_z.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train_z.std(0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(s.transform(TEST), (TEST - mean) / std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.inverse_transform(s.transform(TEST)), TEST, rtol=1e-5, atol=1e-5)


def test_standardize_fits_on_train_only():
    dev = TEST + 10.0
    train_z, test_z, dev_z = P.standardize(TRAIN, TEST, dev)
    mean, std = TRAIN.mean(0), TRAIN.std(0)
    for got, x in ((train_z, TRAIN), (test_z, TEST), (dev_z, dev)):
        np.testing.assert_allclose(got, (x - mean) / std, rtol=1e-5, atol=1e-5)
    alone = P.standardize(TRAIN)           # one array in, one array out (not a 1-tuple)
    assert not isinstance(alone, tuple)
    np.testing.assert_allclose(alone, train_z, rtol=1e-6)
    with pytest.raises(ValueError, match=r"Standardizer.transform: .*input of shape \(5, 2\)"):
        P.standardize(TRAIN, TEST[:, :2])


def test_standardizer_axes_constant_features_and_integer_input():
    images = RNG.integers(0, 256, size=(6, 4, 4, 3))
    s = P.fit_standardizer(images, axis=(0, 1, 2))
    assert s.mean.shape == (1, 1, 1, 3) and s.mean.dtype == jnp.float32
    np.testing.assert_allclose(s.std[0, 0, 0], images.reshape(-1, 3).std(0), rtol=1e-5)
    const = np.stack([np.arange(4.0), np.full(4, 7.0)], axis=1)
    sc = P.fit_standardizer(const)
    np.testing.assert_allclose(sc.std, [[np.arange(4.0).std(), 1.0]], rtol=1e-6)
    assert np.all(np.isfinite(sc.transform(const + 1.0)))


def test_standardizer_is_a_pytree_usable_under_jit():
    s = P.fit_standardizer(TRAIN)
    out = jax.jit(lambda st, x: st.transform(x))(s, TEST)
    np.testing.assert_allclose(out, s.transform(TEST), rtol=1e-6)
    assert len(jax.tree.leaves(s)) == 2
    fitted = jax.jit(P.fit_standardizer)(TRAIN)
    np.testing.assert_allclose(fitted.std, s.std, rtol=1e-6)


def test_standardizer_shape_errors():
    s = P.fit_standardizer(TRAIN)
    with pytest.raises(ValueError, match=r"Standardizer.transform: fitted statistics have shape \(1, 3\); "
                                         r"input of shape \(3,\)"):
        s.transform(TEST[0])
    with pytest.raises(ValueError, match=r"Standardizer.inverse_transform: .*\(5, 4\)"):
        s.inverse_transform(np.zeros((5, 4)))
    with pytest.raises(ValueError, match="fit_standardizer: expected an array with a batch axis"):
        P.fit_standardizer(jnp.float32(1.0))


def test_check_labels_and_is_concrete():
    assert P.is_concrete(jnp.ones(2)) and P.is_concrete(np.ones(2))
    seen = []
    jax.jit(lambda x: seen.append(P.is_concrete(x)) or x)(jnp.ones(1))
    assert seen == [False]
    with pytest.raises(ValueError, match="mine: labels must lie"):
        P.check_labels("mine", [0, 5], 5)
    assert P.check_labels("mine", [0, 5]).dtype == jnp.int32
