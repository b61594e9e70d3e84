"""fnn.regularizers: L1/L2 penalties over a params pytree against numpy sums."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import regularizers as R


class OptState(NamedTuple):
    count: jax.Array


PARAMS = {
    "0": {"w": jnp.array([[1.0, -2.0], [0.5, 0.0]]), "b": jnp.array([3.0, -4.0])},
    "1": {"w": jnp.array([[-1.5], [2.5]]), "b": jnp.array([10.0])},
    "head": [jnp.array([0.25, -0.75])],
}


def _leaves(include_bias=True):
    out = [np.asarray(PARAMS["0"]["w"]), np.asarray(PARAMS["1"]["w"]), np.asarray(PARAMS["head"][0])]
    if include_bias:
        out += [np.asarray(PARAMS["0"]["b"]), np.asarray(PARAMS["1"]["b"])]
    return out


def test_l1_and_l2_equal_the_notes_sums():
    lam = 0.01
    np.testing.assert_allclose(R.l1(PARAMS, lam), lam * sum(np.abs(w).sum() for w in _leaves()), rtol=1e-6)
    np.testing.assert_allclose(R.l2(PARAMS, lam), lam * sum((w**2).sum() for w in _leaves()), rtol=1e-6)


def test_weights_only_skips_biases():
    lam = 0.5
    np.testing.assert_allclose(R.l2(PARAMS, lam, include=R.weights_only),
                               lam * sum((w**2).sum() for w in _leaves(False)), rtol=1e-6)
    np.testing.assert_allclose(R.l1(PARAMS, lam, include=R.weights_only),
                               lam * sum(np.abs(w).sum() for w in _leaves(False)), rtol=1e-6)
    assert R.weights_only(("layer", "bias"), None) is False
    assert R.weights_only(("0", "w"), None) is True


def test_include_predicate_sees_string_key_paths():
    seen = []

    def only_head(path, leaf):
        seen.append(path)
        return path[0] == "head"

    np.testing.assert_allclose(R.l2(PARAMS, 1.0, include=only_head), 0.25**2 + 0.75**2, rtol=1e-6)
    assert sorted(seen) == [("0", "b"), ("0", "w"), ("1", "b"), ("1", "w"), ("head", "0")]


def test_gradients_are_2_lambda_w_and_lambda_sign_w():
    lam = 0.1
    g2 = jax.grad(R.l2)(PARAMS, lam)
    g1 = jax.grad(R.l1)(PARAMS, lam)
    for path in (("0", "w"), ("1", "b")):
        w = np.asarray(PARAMS[path[0]][path[1]])
        np.testing.assert_allclose(g2[path[0]][path[1]], 2 * lam * w, rtol=1e-6)
        np.testing.assert_allclose(g1[path[0]][path[1]], lam * np.sign(w), rtol=1e-6)  # 0 at w = 0
    gb = jax.grad(R.l2)(PARAMS, lam, include=R.weights_only)
    assert np.all(np.asarray(gb["0"]["b"]) == 0)


def test_ng_convention_lambda_over_2m():
    lam, m = 0.7, 32
    w = PARAMS["0"]["w"]
    grads = jax.grad(lambda p: R.l2(p, lam / (2 * m)))({"w": w})
    np.testing.assert_allclose(grads["w"], lam / m * np.asarray(w), rtol=1e-6)


def test_jit_with_traced_scale_empty_tree_and_dtype():
    traces = []

    @jax.jit
    def penalty(params, scale):
        traces.append(1)
        return R.l2(params, scale)

    a, b = penalty(PARAMS, 0.1), penalty(PARAMS, 0.2)
    np.testing.assert_allclose(b, 2 * a, rtol=1e-6)
    assert len(traces) == 1
    assert float(R.l1({}, 1.0)) == 0.0
    assert R.l2({"w": jnp.ones(3, jnp.bfloat16)}, 1.0).dtype == jnp.float32


def test_vmap_over_stacked_models():
    stacked = jax.tree.map(lambda x: jnp.stack([x, 2 * x]), PARAMS)
    out = jax.vmap(R.l2, in_axes=(0, None))(stacked, 1.0)
    np.testing.assert_allclose(out[1], 4 * out[0], rtol=1e-6)


def test_key_path_handles_lists_and_attributes():
    assert R.key_path(jax.tree_util.tree_flatten_with_path([{"a": 1}])[0][0][0]) == ("0", "a")
    state = OptState(count=jnp.zeros(()))
    assert R.key_path(jax.tree_util.tree_flatten_with_path(state)[0][0][0]) == ("count",)


def test_penalty_objects_compute_the_notes_equation_on_chosen_leaves():
    params = {"0": {"w": jnp.array([[1.0, -2.0]]), "b": jnp.array([3.0, 4.0])},
              "1": {"w": jnp.array([[0.5], [-1.5]]), "b": jnp.array([7.0])}}
    w = np.array([1.0, -2.0, 0.5, -1.5])
    R = fnn.regularizers
    np.testing.assert_allclose(R.l2(0.1)(params), 0.1 * np.sum(w ** 2), rtol=1e-6)
    np.testing.assert_allclose(R.l1(0.1)(params), 0.1 * np.sum(np.abs(w)), rtol=1e-6)
    np.testing.assert_allclose(R.elastic_net(0.1, 0.01)(params),
                               0.1 * np.sum(np.abs(w)) + 0.01 * np.sum(w ** 2), rtol=1e-6)
    np.testing.assert_allclose(R.l2(1.0, on="1/*")(params), 0.25 + 2.25 + 49.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"pattern '2/\*' in on= matches no parameter; the "
                                         r"parameter paths are: 0/b, 0/w, 1/b, 1/w"):
        R.l2(1.0, on="2/*")(params)
    for bad in (-1.0, float("nan"), "0.1"):
        with pytest.raises((ValueError, TypeError)):
            R.Penalty(l2=bad)
    assert hash(R.l2(1e-3, on="*/w")) == hash(R.l2(1e-3, on=["*/w"]))   # a cache key


def test_fit_adds_the_penalty_to_the_loss_and_reports_both():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32))
    model = fnn.Sequential([fnn.Dense(4), fnn.Activation("tanh"), fnn.Dense(1)])
    lam, lr = 0.05, 0.1
    key = jax.random.key(0)
    penalty = fnn.regularizers.l2(lam, on="*/w")
    result = fnn.fit(model, "mse", fnn.optim.sgd(lr), (x, y), epochs=1, batch_size=None,
                     key=key, penalty=penalty, progress=False)
    params, _ = model.init(jax.random.split(key)[0], x)

    def objective(p):        # the notes' J, written out by hand
        y_hat = model.apply(p, {}, x)[0]
        return jnp.mean((y_hat - y) ** 2) + lam * (jnp.sum(p["0"]["w"] ** 2)
                                                   + jnp.sum(p["2"]["w"] ** 2))
    grads = jax.grad(objective)(params)
    expected = jax.tree.map(lambda p, g: p - lr * g, params, grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 result.params, expected)
    data_loss = float(jnp.mean((model.apply(params, {}, x)[0] - y) ** 2))
    np.testing.assert_allclose(result.history["loss"], [data_loss], rtol=1e-5)
    np.testing.assert_allclose(result.history["penalty"], [float(penalty(params))], rtol=1e-5)
    assert list(result.history)[:2] == ["loss", "penalty"]


def test_a_bad_penalty_pattern_fails_before_compiling():
    x, y = np.ones((4, 2), np.float32), np.ones((4, 1), np.float32)
    with pytest.raises(ValueError, match="pattern 'head/w' in on= matches no parameter"):
        fnn.fit(fnn.Dense(1), "mse", fnn.optim.sgd(0.1), (x, y), epochs=1, batch_size=2,
                key=jax.random.key(0), penalty=fnn.regularizers.l2(0.1, on="head/w"),
                progress=False)
    with pytest.raises(TypeError, match="penalty must be a weight penalty"):
        fnn.fit(fnn.Dense(1), "mse", fnn.optim.sgd(0.1), (x, y), epochs=1, batch_size=2,
                key=jax.random.key(0), penalty=0.1, progress=False)


def test_the_function_form_without_a_scale_says_how_to_call_it():
    with pytest.raises(TypeError, match=r"l2: give the scale, l2\(params, scale\)"):
        fnn.regularizers.l2({"w": jnp.ones(2)})
