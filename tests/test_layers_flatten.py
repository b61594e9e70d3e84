"""fnn.Flatten: keeps the batch axis, flattens the rest (numpy reshape reference)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.errors import LayerValueError

KEY = jax.random.key(0)


def test_flatten_keeps_batch_axis():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    y, state = fnn.Flatten().apply({}, {}, x)
    np.testing.assert_array_equal(np.asarray(y), x.reshape(2, 60))
    assert state == {} and fnn.Flatten().init(KEY, x) == ({}, {})
    assert fnn.Flatten().apply({}, {}, jnp.ones(7))[0].shape == (7, 1)
    with pytest.raises(LayerValueError, match=r"Flatten.*batch axis, got shape \(\)"):
        fnn.Flatten().apply({}, {}, jnp.float32(1.0))


def test_reshape_and_permute_against_numpy():
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(fnn.Reshape((4, 3)).apply({}, {}, x)[0], x.reshape(2, 4, 3))
    np.testing.assert_array_equal(fnn.Reshape((-1,)).apply({}, {}, x)[0], x.reshape(2, 12))
    np.testing.assert_array_equal(fnn.Permute((2, 1)).apply({}, {}, x)[0],
                                  x.transpose(0, 2, 1))
    model = fnn.Sequential([fnn.Reshape((12,)), fnn.Dense(2)])
    params, _ = model.init(jax.random.key(0), x)
    shapes = jax.eval_shape(lambda v: model.apply(params, {}, v)[0], jax.ShapeDtypeStruct(
        (5, 3, 4), jnp.float32))
    assert shapes.shape == (5, 2)
    with pytest.raises(fnn.LayerValueError, match="at path '0'.*cannot reshape examples"):
        model.apply(params, {}, np.zeros((2, 5), np.float32))
    with pytest.raises(fnn.LayerValueError, match="permutation of \\(1, 2\\)"):
        fnn.Permute((1, 3)).apply({}, {}, x)
    with pytest.raises(fnn.LayerValueError, match="at most one -1"):
        fnn.Reshape((-1, -1))
