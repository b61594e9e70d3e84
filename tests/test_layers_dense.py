"""fnn.Dense against numpy, finite differences, jit, and its input checks."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.errors import LayerTypeError, LayerValueError

KEY = jax.random.key(0)
RNG = np.random.default_rng(0)
X = RNG.normal(size=(5, 3)).astype(np.float32)
LAYER = fnn.Dense(4)
PARAMS, STATE = LAYER.init(KEY, X)


def test_params_layout_and_default_init():
    assert set(PARAMS) == {"w", "b"} and STATE == {}
    assert PARAMS["w"].shape == (3, 4) and PARAMS["b"].shape == (4,)
    assert PARAMS["w"].dtype == jnp.float32
    limit = math.sqrt(6 / (3 + 4))                    # glorot_uniform bound
    assert np.abs(np.asarray(PARAMS["w"])).max() <= limit
    np.testing.assert_array_equal(np.asarray(PARAMS["b"]), 0)


def test_matches_numpy_x_w_plus_b():
    params = {"w": RNG.normal(size=(3, 4)).astype(np.float32),
              "b": RNG.normal(size=(4,)).astype(np.float32)}
    y, state = LAYER.apply(params, {}, X)
    expected = X.astype(np.float64) @ params["w"] + params["b"]
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-6)
    assert state == {}


def test_rank3_input_applies_to_last_axis():
    x = RNG.normal(size=(2, 5, 3)).astype(np.float32)
    y, _ = LAYER.apply(PARAMS, {}, x)
    expected = np.einsum("bsi,ij->bsj", x, np.asarray(PARAMS["w"])) + np.asarray(PARAMS["b"])
    assert y.shape == (2, 5, 4)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-6)


def test_no_bias():
    layer = fnn.Dense(2, use_bias=False)
    params, _ = layer.init(KEY, X)
    assert set(params) == {"w"}
    y, _ = layer.apply(params, {}, X)
    np.testing.assert_allclose(np.asarray(y), X @ np.asarray(params["w"]), rtol=1e-5)


def test_initializer_names_and_dtype_promotion():
    layer = fnn.Dense(2, w_init="he_normal", b_init="ones")
    assert layer == fnn.Dense(2, w_init=fnn.initializers.he_normal(),
                              b_init=fnn.initializers.ones())
    params, _ = layer.init(KEY, jnp.zeros((1, 3), jnp.bfloat16))
    assert params["w"].dtype == jnp.float32        # params are at least float32
    np.testing.assert_array_equal(np.asarray(params["b"]), 1)


def test_gradient_matches_finite_differences_of_numpy_reference():
    c = RNG.normal(size=(5, 4))

    def loss_np(w, b):
        return float(np.sum(np.tanh(X.astype(np.float64) @ w + b) * c))

    def loss(params):
        y, _ = LAYER.apply(params, {}, X)
        return jnp.sum(jnp.tanh(y) * c.astype(np.float32))

    grads = jax.grad(loss)(PARAMS)
    w = np.asarray(PARAMS["w"], np.float64)
    b = np.asarray(PARAMS["b"], np.float64)
    eps = 1e-6
    fd_w = np.zeros_like(w)
    for idx in np.ndindex(w.shape):
        dw = np.zeros_like(w)
        dw[idx] = eps
        fd_w[idx] = (loss_np(w + dw, b) - loss_np(w - dw, b)) / (2 * eps)
    fd_b = np.array([(loss_np(w, b + eps * e) - loss_np(w, b - eps * e)) / (2 * eps)
                     for e in np.eye(4)])
    np.testing.assert_allclose(np.asarray(grads["w"]), fd_w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(grads["b"]), fd_b, rtol=1e-4, atol=1e-5)


def test_jit_static_layer_no_retrace():
    traces = []

    def forward(layer, params, x):
        traces.append(1)
        return layer.apply(params, {}, x)[0]

    jitted = jax.jit(forward, static_argnums=0)
    y1 = jitted(fnn.Dense(4), PARAMS, X)
    y2 = jitted(fnn.Dense(4), PARAMS, X + 1)            # an equal layer: same program
    assert len(traces) == 1
    np.testing.assert_allclose(np.asarray(y1), np.asarray(LAYER.apply(PARAMS, {}, X)[0]),
                               rtol=1e-6)
    assert y2.shape == (5, 4)


def test_huge_dense_init_under_eval_shape_allocates_nothing():
    x = jax.ShapeDtypeStruct((8, 100_000), jnp.float32)
    params, state = jax.eval_shape(fnn.Dense(100_000).init, KEY, x)   # 40 GB if real
    assert params["w"].shape == (100_000, 100_000) and state == {}
    assert fnn.count_params(params) == 100_000 * 100_000 + 100_000


@pytest.mark.parametrize("features", [0, -3, 2.5, True, "4"])
def test_bad_features_at_construction(features):
    with pytest.raises(LayerValueError, match=r"Dense \(top level\): features must be"):
        fnn.Dense(features)


def test_bad_initializer_name():
    with pytest.raises(LayerValueError, match="w_init: .*unknown initializer 'glorot'"):
        fnn.Dense(3, w_init="glorot")
    with pytest.raises(LayerTypeError, match="b_init"):
        fnn.Dense(3, b_init=0.0)


def test_wrong_rank():
    with pytest.raises(LayerValueError, match=r"Dense \(top level\): expected input of rank >= 2, "
                                              r"shape \(batch, \.\.\., 3\); got rank 1, shape \(3,\)"):
        LAYER.apply(PARAMS, {}, X[0])
    with pytest.raises(LayerValueError, match=r"Dense \(top level\): .*rank >= 2.*shape \(3,\)"):
        LAYER.init(KEY, jax.ShapeDtypeStruct((3,), jnp.float32))


def test_wrong_feature_size_names_both_shapes():
    with pytest.raises(LayerValueError, match=r"Dense \(top level\): expected input of shape "
                                              r"\(batch, \.\.\., 3\).*got \(5, 2\)"):
        LAYER.apply(PARAMS, {}, X[:, :2])


def test_non_float_input_is_type_error():
    with pytest.raises(TypeError, match=r"Dense \(top level\): expected a floating-point input, "
                                        r"got dtype int32 \(shape \(5, 3\)\)"):
        LAYER.apply(PARAMS, {}, jnp.ones((5, 3), jnp.int32))
    with pytest.raises(LayerTypeError, match="Dense.*int32"):
        LAYER.init(KEY, jax.ShapeDtypeStruct((5, 3), jnp.int32))


def test_mismatched_params_tree():
    with pytest.raises(LayerValueError, match=r"keys \['b', 'w'\], got \['b', 'kernel'\]"):
        LAYER.apply({"kernel": PARAMS["w"], "b": PARAMS["b"]}, {}, X)
    with pytest.raises(LayerValueError, match=r"params\['w'\] must have shape \(features_in, 4\)"):
        LAYER.apply({"w": PARAMS["w"][:, :2], "b": PARAMS["b"]}, {}, X)
    with pytest.raises(LayerValueError, match=r"params\['b'\] must have shape \(4,\)"):
        LAYER.apply({"w": PARAMS["w"], "b": PARAMS["b"][:2]}, {}, X)
    with pytest.raises(LayerValueError, match="got list"):
        LAYER.apply([PARAMS["w"]], {}, X)
