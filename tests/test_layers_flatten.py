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
