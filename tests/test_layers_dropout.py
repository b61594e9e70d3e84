"""fnn.Dropout: inverted dropout, rate = the probability of dropping a unit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.errors import LayerValueError

KEY = jax.random.key(0)
X = jnp.ones((200, 500))          # 100,000 units
RATE = 0.3
LAYER = fnn.Dropout(RATE)


@jax.jit
def _train(x, key):
    return LAYER.apply({}, {}, x, key=key, train=True)[0]


def test_eval_is_identity_without_key():
    x = jnp.arange(12.0).reshape(3, 4)
    y, state = LAYER.apply({}, {}, x)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
    assert state == {} and LAYER.init(KEY, x) == ({}, {})


def test_training_keeps_one_minus_rate_and_scales_kept_units():
    y = np.asarray(_train(X, KEY), np.float64)
    kept = y != 0
    # fraction kept ~ Binomial(1e5, 0.7) / 1e5: std 0.0014
    assert kept.mean() == pytest.approx(1 - RATE, abs=0.01)
    np.testing.assert_allclose(y[kept], 1 / (1 - RATE), rtol=1e-6)
    assert y.mean() == pytest.approx(1.0, abs=0.02)            # expectation preserved


def test_same_key_same_mask_other_key_other_mask():
    a, b = _train(X, KEY), _train(X, KEY)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    c = _train(X, jax.random.key(1))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_gradient_is_mask_over_keep_probability():
    x = jnp.linspace(-1.0, 1.0, 40).reshape(4, 10)
    g = jax.grad(lambda x: jnp.sum(_train(x, KEY)))(x)
    mask = np.asarray(_train(jnp.ones_like(x), KEY)) != 0
    np.testing.assert_allclose(np.asarray(g), mask / (1 - RATE), rtol=1e-6)


def test_training_without_key_raises():
    with pytest.raises(LayerValueError,
                       match=r"Dropout \(top level\): train=True needs a PRNG key"):
        LAYER.apply({}, {}, X, train=True)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.5", True])
def test_rate_outside_unit_interval_raises_at_construction(rate):
    with pytest.raises(LayerValueError, match=r"Dropout \(top level\): rate .*got"):
        fnn.Dropout(rate)


def test_rate_zero_is_identity_in_training():
    x = jnp.arange(6.0).reshape(2, 3)
    y, _ = fnn.Dropout(0.0).apply({}, {}, x, key=KEY, train=True)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))

