"""Gradient clipping against numpy, and a global norm that does not overflow."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import optim


def test_clip_by_global_norm_matches_numpy():
    tree = {"a": jnp.array([3.0, -4.0]), "b": (jnp.array([[1.0, 2.0]]), jnp.float32(-2.0))}
    flat = np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])
    norm = np.sqrt(np.sum(flat**2))  # sqrt(34)
    assert float(optim.global_norm(tree)) == pytest.approx(norm, rel=1e-6)
    for max_norm in (1.0, 5.0, 10.0):
        opt = optim.clip_by_global_norm(max_norm)
        clipped, _ = jax.jit(opt.update)(tree, opt.init(tree))
        expected = flat * (max_norm / norm if norm > max_norm else 1.0)
        got = np.concatenate([np.ravel(x) for x in jax.tree.leaves(clipped)])
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    zeros, _ = opt.update(jax.tree.map(jnp.zeros_like, tree), opt.init(tree))
    assert all(np.all(x == 0) for x in jax.tree.leaves(zeros))
    with_nan, _ = opt.update({"a": jnp.array([jnp.nan, 1.0])}, opt.init(None))
    assert np.isnan(with_nan["a"][0])  # never silently swallowed


def test_global_norm_of_huge_finite_gradients_does_not_overflow():
    # float32 squares overflow above ~1.8e19: a naive norm of 1e20 is inf and clipping gave 0.
    huge = {"a": jnp.array([3e20, -4e20], jnp.float32), "b": jnp.array([0.0], jnp.float32)}
    assert float(optim.global_norm(huge)) == pytest.approx(5e20, rel=1e-6)
    opt = optim.clip_by_global_norm(1.0)
    clipped, _ = jax.jit(opt.update)(huge, opt.init(None))
    np.testing.assert_allclose(clipped["a"], [0.6, -0.8], rtol=1e-6)
    tiny = {"a": jnp.array([3e-30, 4e-30], jnp.float32)}  # squares underflow to 0 without scaling
    assert float(optim.global_norm(tiny)) == pytest.approx(5e-30, rel=1e-5)
    assert float(optim.global_norm({"a": jnp.array([jnp.inf, 1.0])})) == np.inf
    assert np.isnan(float(optim.global_norm({"a": jnp.array([jnp.nan, 1.0])})))
    with_inf, _ = opt.update({"a": jnp.array([jnp.inf, 1.0])}, opt.init(None))
    assert not bool(optim.all_finite(with_inf))  # skip_nonfinite sees and counts it


def test_clip_by_value_matches_numpy():
    x = jnp.array([-3.0, -0.5, 0.0, 0.7, 9.0])
    opt = optim.clip_by_value(0.6)
    np.testing.assert_array_equal(opt.update(x, opt.init(x))[0], np.clip(np.asarray(x), -0.6, 0.6))
