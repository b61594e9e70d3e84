"""fnn.regularizers: L1/L2 penalties over a params pytree against numpy sums."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

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
