"""fnn.FunctionLayer / fnn.as_layer: a plain apply(params, x) trains like a layer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.errors import LayerTypeError, LayerValueError

KEY = jax.random.key(0)
RNG = np.random.default_rng(3)
X = RNG.normal(size=(64, 3)).astype(np.float32)
TRUE_W = np.array([[1.5], [-2.0], [0.5]], np.float32)
Y = X @ TRUE_W + 0.25


def linear(params, x):
    return x @ params["w"] + params["b"]          # b is a scalar: no rank promotion


def linear_init(key, x):
    return {"w": 0.01 * jax.random.normal(key, (x.shape[-1], 1)), "b": jnp.zeros(())}


MODEL = fnn.FunctionLayer(linear, linear_init)


def test_plain_function_trains_to_least_squares_solution():
    params, state = MODEL.init(KEY, X)

    @jax.jit
    def step(params, state):
        def loss(p):
            y, s = MODEL.apply(p, state, X)
            return jnp.mean((y - Y) ** 2), s
        grads, state = jax.grad(loss, has_aux=True)(params)
        return jax.tree.map(lambda p, g: p - 0.1 * g, params, grads), state

    for _ in range(300):
        params, state = step(params, state)
    design = np.hstack([X, np.ones((64, 1), np.float32)]).astype(np.float64)
    solution = np.linalg.lstsq(design, Y.astype(np.float64), rcond=None)[0]
    np.testing.assert_allclose(np.asarray(params["w"]), solution[:3], atol=1e-3)
    assert float(params["b"]) == pytest.approx(float(solution[3, 0]), abs=1e-3)
    assert state == {}


def test_init_fn_gets_shape_struct_inside_sequential_and_eval_shape():
    model = fnn.Sequential([fnn.Dense(4), MODEL])
    params, _ = jax.eval_shape(model.init, KEY, jax.ShapeDtypeStruct((2, 3), jnp.float32))
    assert params["1"]["w"].shape == (4, 1)
    real, _ = model.init(KEY, X)
    y, _ = model.apply(real, {}, X)
    assert y.shape == (64, 1)


def test_without_init_fn_init_raises_and_apply_works_with_own_params():
    layer = fnn.FunctionLayer(linear)
    with pytest.raises(LayerValueError, match=r"FunctionLayer.*has no init_fn: pass your own "
                                              r"params"):
        layer.init(KEY, X)
    y, state = layer.apply({"w": TRUE_W, "b": jnp.float32(0.25)}, {}, X)
    np.testing.assert_allclose(np.asarray(y), Y, rtol=1e-5, atol=1e-6)


def test_errors_from_the_function_name_the_path():
    model = fnn.Sequential([fnn.Dense(4), fnn.FunctionLayer(linear)])
    params, _ = fnn.Sequential([fnn.Dense(4)]).init(KEY, X)
    params = {"0": params["0"], "1": {"w": jnp.ones((5, 1)), "b": jnp.float32(0.0)}}
    with pytest.raises(TypeError, match=r"FunctionLayer at path '1': apply_fn linear raised "
                                        r"TypeError: .*dot_general") as info:
        model.apply(params, {}, X)
    assert isinstance(info.value, LayerTypeError)


def test_as_layer():
    dense = fnn.Dense(2)
    assert fnn.as_layer(dense) is dense
    wrapped = fnn.as_layer(linear)
    assert isinstance(wrapped, fnn.FunctionLayer) and wrapped.apply_fn is linear
    with pytest.raises(LayerTypeError, match="as_layer.*got int"):
        fnn.as_layer(3)
    with pytest.raises(LayerTypeError, match="apply_fn must be a function"):
        fnn.FunctionLayer("linear")
