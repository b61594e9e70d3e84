"""fnn.Activation and fnn.PReLU against numpy, with the slope's gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.errors import LayerTypeError, LayerValueError

KEY = jax.random.key(0)
RNG = np.random.default_rng(1)
X = RNG.normal(size=(6, 4)).astype(np.float32)
C = RNG.normal(size=(6, 4))       # L = sum(f(x) * C), so dL/df = C


@pytest.mark.parametrize("fn,reference", [
    ("relu", lambda x: np.maximum(x, 0)),
    ("tanh", np.tanh),
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x))),
    (jnp.abs, np.abs),
])
def test_activation_matches_numpy(fn, reference):
    layer = fnn.Activation(fn)
    params, state = layer.init(KEY, X)
    assert params == {} and state == {}
    y, state = layer.apply(params, state, X)
    np.testing.assert_allclose(np.asarray(y), reference(X.astype(np.float64)), rtol=1e-5,
                               atol=1e-6)


def test_activation_softmax_rows_sum_to_one():
    y, _ = fnn.Activation("softmax").apply({}, {}, X)
    np.testing.assert_allclose(np.asarray(y).sum(axis=-1), 1.0, rtol=1e-6)


def test_activation_errors_and_hashing():
    with pytest.raises(LayerValueError, match=r"Activation \(top level\).*'rellu'.*known names"):
        fnn.Activation("rellu")
    with pytest.raises(LayerTypeError, match="Activation"):
        fnn.Activation(3)
    assert fnn.Activation("relu") == fnn.Activation("relu")
    assert hash(fnn.Activation("relu")) == hash(fnn.Activation("relu"))


def _prelu_np(x, a):
    return np.where(x > 0, x, a * x)


def test_prelu_forward_per_feature_and_shared():
    layer = fnn.PReLU()
    params, state = layer.init(KEY, X)
    np.testing.assert_array_equal(np.asarray(params["alpha"]), [0.25] * 4)
    a = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    y, state = layer.apply({"alpha": a}, state, X)
    np.testing.assert_allclose(np.asarray(y), _prelu_np(X, a), rtol=1e-6)
    assert state == {}
    shared = fnn.PReLU(init_slope=0.1, shared=True)
    params, _ = shared.init(KEY, X)
    assert params["alpha"].shape == () and float(params["alpha"]) == pytest.approx(0.1)
    y, _ = shared.apply(params, {}, X)
    np.testing.assert_allclose(np.asarray(y), _prelu_np(X, 0.1), rtol=1e-6)


def _loss(layer):
    def loss(params, x):
        y, _ = layer.apply(params, {}, x)
        return jnp.sum(y * C.astype(np.float32))
    return loss


def test_prelu_slope_gradient_matches_numpy_reference():
    a = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    grads, dx = jax.grad(_loss(fnn.PReLU()), argnums=(0, 1))({"alpha": a}, X)
    x = X.astype(np.float64)
    # dL/da_j = sum_n [x_nj <= 0] x_nj C_nj ; dL/dx = C if x > 0 else a C
    expected_a = np.sum(np.where(x > 0, 0.0, x) * C, axis=0)
    np.testing.assert_allclose(np.asarray(grads["alpha"]), expected_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dx), np.where(x > 0, 1.0, a) * C, rtol=1e-5,
                               atol=1e-6)
    grads = jax.grad(_loss(fnn.PReLU(shared=True)))({"alpha": jnp.float32(0.2)}, X)
    assert float(grads["alpha"]) == pytest.approx(np.sum(np.where(x > 0, 0.0, x) * C),
                                                  rel=1e-5)


def test_prelu_slope_gradient_matches_finite_differences():
    a = np.array([0.1, 0.2, 0.3, 0.4])
    g = np.asarray(jax.grad(_loss(fnn.PReLU()))({"alpha": a.astype(np.float32)}, X)["alpha"])
    eps = 1e-6
    fd = [(np.sum(_prelu_np(X.astype(np.float64), a + eps * e) * C)
           - np.sum(_prelu_np(X.astype(np.float64), a - eps * e) * C)) / (2 * eps)
          for e in np.eye(4)]
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-6)


def test_prelu_errors():
    layer = fnn.PReLU()
    with pytest.raises(LayerValueError, match=r"params\['alpha'\] has shape \(4,\).*\(6, 3\)"):
        layer.apply({"alpha": jnp.ones(4)}, {}, X[:, :3])
    with pytest.raises(LayerValueError, match=r"keys \['alpha'\], got \['a'\]"):
        layer.apply({"a": jnp.ones(4)}, {}, X)
    with pytest.raises(LayerValueError, match=r"PReLU \(top level\): expected input of rank >= 2 "
                                              r".*got shape \(4,\)"):
        layer.init(KEY, jnp.ones(4))
    with pytest.raises(LayerValueError, match="must be a scalar"):
        fnn.PReLU(shared=True).apply({"alpha": jnp.ones(4)}, {}, X)
