"""Residual and Parallel: the equations against numpy, keys, state threading, errors, summary."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.errors import LayerTypeError, LayerValueError
from fnn.layers.base import Layer

KEY = jax.random.key(0)
X = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Counter(Layer):
    """A stateful test layer: y = x + c, and c counts the training calls."""

    def init(self, key, x):
        return {}, {"calls": jnp.zeros((), jnp.int32)}

    def apply(self, params, state, x, *, key=None, train=False):
        return x + state["calls"], {"calls": state["calls"] + int(train)}


def test_residual_is_x_plus_f_and_its_jacobian_is_identity_plus_df():
    block = fnn.Residual(fnn.Dense(4))
    params, state = block.init(KEY, X)
    w, b = np.asarray(params["layer"]["w"]), np.asarray(params["layer"]["b"])
    y, new_state = block.apply(params, state, X)
    np.testing.assert_allclose(y, X + (X @ w + b), rtol=1e-5, atol=1e-6)
    assert state == {} and new_state == {}
    # dy/dx = I + df/dx: the identity path carries the gradient back unchanged.
    jac = jax.jacobian(lambda v: block.apply(params, state, v[None])[0][0])(jnp.asarray(X[0]))
    np.testing.assert_allclose(jac, np.eye(4) + w.T, rtol=1e-5, atol=1e-6)


def test_residual_with_a_projection_shortcut_and_fold_in_keys():
    block = fnn.Residual(fnn.Dropout(0.5), shortcut=fnn.Dense(4, use_bias=False))
    params, state = block.init(KEY, X)
    assert sorted(params) == ["layer", "shortcut"] and params["layer"] == {}
    y, _ = block.apply(params, state, X, key=KEY, train=True)
    dropped, _ = fnn.Dropout(0.5).apply({}, {}, X, key=jax.random.fold_in(KEY, 0), train=True)
    np.testing.assert_allclose(y, X @ np.asarray(params["shortcut"]["w"]) + dropped, rtol=1e-5,
                               atol=1e-6)


def test_residual_shape_mismatch_is_a_layer_error_with_the_path_and_both_shapes():
    model = fnn.Sequential([fnn.Dense(4), fnn.Residual(fnn.Dense(3))])
    with pytest.raises(LayerValueError, match=r"Residual at path '1'.*\(3, 3\).*\(3, 4\).*shortcut"):
        model.init(KEY, X)
    params, state = fnn.Sequential([fnn.Dense(4), fnn.Residual(fnn.Dense(4))]).init(KEY, X)
    params["1"]["layer"] = {"w": jnp.zeros((4, 3)), "b": jnp.zeros(3)}   # a wrong-shape port
    with pytest.raises(LayerValueError, match="1"):
        model.apply(params, state, X)
    with pytest.raises(LayerTypeError, match="fnn layer"):
        fnn.Residual(jnp.tanh)
    with pytest.raises(LayerValueError, match="keys"):
        fnn.Residual(fnn.Dense(4)).apply({}, {}, X)


def test_parallel_outputs_params_and_keys_per_branch():
    heads = fnn.Parallel({"digit": fnn.Dense(3), "noisy": fnn.Dropout(0.5)})
    params, state = heads.init(KEY, X)
    assert sorted(params) == ["digit", "noisy"] and heads.branch("digit") == fnn.Dense(3)
    expected, _ = fnn.Dense(3).init(jax.random.fold_in(KEY, 0), X)
    jax.tree.map(np.testing.assert_array_equal, params["digit"], expected)
    y, _ = heads.apply(params, state, X, key=KEY, train=True)
    assert sorted(y) == ["digit", "noisy"]
    w, b = np.asarray(params["digit"]["w"]), np.asarray(params["digit"]["b"])
    np.testing.assert_allclose(y["digit"], X @ w + b, rtol=1e-5, atol=1e-6)
    dropped, _ = fnn.Dropout(0.5).apply({}, {}, X, key=jax.random.fold_in(KEY, 1), train=True)
    np.testing.assert_array_equal(y["noisy"], dropped)

    pair = fnn.Parallel([fnn.Dense(2), fnn.Activation("relu")])
    out, _ = pair.apply(*pair.init(KEY, X), X)
    assert isinstance(out, tuple) and [o.shape for o in out] == [(3, 2), (3, 4)]
    assert "Parallel({'digit': Dense(features=3)" in repr(heads)


def test_state_threads_through_residual_and_parallel_only_for_stateful_parts():
    model = fnn.Sequential([fnn.Residual(Counter()),
                            fnn.Parallel({"a": Counter(), "b": fnn.Dense(2)})])
    params, state = model.init(KEY, X)
    assert jax.tree.map(int, state) == {"0": {"layer": {"calls": 0}}, "1": {"a": {"calls": 0}}}
    for _ in range(2):
        y, state = model.apply(params, state, X, train=True)
    assert jax.tree.map(int, state) == {"0": {"layer": {"calls": 2}}, "1": {"a": {"calls": 2}}}
    y, same = model.apply(params, state, X, train=False)
    np.testing.assert_allclose(y["a"], (X + (X + 2)) + 2, rtol=1e-6)
    assert jax.tree.map(int, same) == jax.tree.map(int, state)


def test_parallel_bad_input():
    with pytest.raises(LayerValueError, match="at least one"):
        fnn.Parallel([])
    with pytest.raises(LayerTypeError, match="not a layer"):
        fnn.Parallel([fnn.Dense(2), "relu"])
    with pytest.raises(LayerValueError, match="without '/'"):
        fnn.Parallel({"a/b": fnn.Dense(2)})
    with pytest.raises(LayerTypeError, match="list of layers or a dict"):
        fnn.Parallel(fnn.Dense(2))
    heads = fnn.Parallel({"a": fnn.Dense(2), "b": fnn.Dense(1)})
    params, state = heads.init(KEY, X)
    with pytest.raises(LayerValueError, match=r"keys \['a', 'b'\]"):
        heads.apply({"a": params["a"]}, state, X)
    model = fnn.Sequential([fnn.Parallel({"a": fnn.Dense(2), "b": fnn.Residual(fnn.Dense(1))})])
    with pytest.raises(LayerValueError, match="path '0/b'"):
        model.init(KEY, X)


def test_summary_expands_branches_and_residual_parts():
    model = fnn.Sequential([
        fnn.Dense(4), fnn.Residual(fnn.Sequential([fnn.Dense(4), fnn.Activation("relu")])),
        fnn.Parallel({"digit": fnn.Dense(10), "parity": fnn.Dense(1)})])
    rows = fnn.summary_rows(model, jax.ShapeDtypeStruct((2, 3), jnp.float32))
    got = [(r.path, r.output_shape, r.params) for r in rows]
    assert got == [("0", (2, 4), 16), ("1/layer/0", (2, 4), 20), ("1/layer/1", (2, 4), 0),
                   ("1", (2, 4), 0), ("2/digit", (2, 10), 50), ("2/parity", (2, 1), 5)]
    assert "Residual: x + f(x)" in fnn.summary(model, jnp.zeros((2, 3)))
    assert fnn.count_params(model.init(KEY, jnp.zeros((2, 3)))[0]) == 16 + 20 + 50 + 5
