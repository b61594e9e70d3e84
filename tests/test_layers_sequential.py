"""fnn.Sequential: numpy MLP reference, fold_in keys, state threading, vmap, error paths."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.errors import LayerTypeError, LayerValueError

KEY = jax.random.key(0)
RNG = np.random.default_rng(2)
X = RNG.normal(size=(5, 3)).astype(np.float32)
MLP = fnn.Sequential([fnn.Dense(8), fnn.Activation("tanh"), fnn.Dense(2)])
PARAMS, STATE = MLP.init(KEY, X)


def _mlp_np(params, x):
    h = np.tanh(x.astype(np.float64) @ np.asarray(params["0"]["w"]) + np.asarray(params["0"]["b"]))
    return h @ np.asarray(params["2"]["w"]) + np.asarray(params["2"]["b"])


@jax.jit
def _forward(params, x):
    return MLP.apply(params, {}, x)[0]


def test_params_keys_and_forward_matches_numpy():
    assert set(PARAMS) == {"0", "1", "2"} and PARAMS["1"] == {} and STATE == {}
    assert PARAMS["0"]["w"].shape == (3, 8) and PARAMS["2"]["w"].shape == (8, 2)
    np.testing.assert_allclose(np.asarray(_forward(PARAMS, X)), _mlp_np(PARAMS, X),
                               rtol=1e-5, atol=1e-6)


def test_child_keys_are_fold_in_of_index():
    p0, _ = fnn.Dense(8).init(jax.random.fold_in(KEY, 0), X)
    np.testing.assert_array_equal(np.asarray(PARAMS["0"]["w"]), np.asarray(p0["w"]))


def test_adding_a_layer_at_the_end_keeps_earlier_init_and_masks():
    longer = fnn.Sequential(list(MLP.layers) + [fnn.Dense(1)])
    params, _ = longer.init(KEY, X)
    for name in ("0", "2"):
        np.testing.assert_array_equal(np.asarray(params[name]["w"]),
                                      np.asarray(PARAMS[name]["w"]))
    short = fnn.Sequential([fnn.Dropout(0.5)])
    long = fnn.Sequential([fnn.Dropout(0.5), fnn.Dropout(0.5)])
    x = jnp.ones((4, 50))
    y_short, _ = short.apply({"0": {}}, {}, x, key=KEY, train=True)
    y_first, _ = fnn.Dropout(0.5).apply({}, {}, x, key=jax.random.fold_in(KEY, 0), train=True)
    np.testing.assert_array_equal(np.asarray(y_short), np.asarray(y_first))
    y_long, _ = long.apply({"0": {}, "1": {}}, {}, x, key=KEY, train=True)
    assert np.all((np.asarray(y_long) != 0) <= (np.asarray(y_short) != 0))  # same first mask


def test_vmap_over_three_param_sets_equals_python_loop():
    keys = jax.random.split(KEY, 3)
    stacked = jax.vmap(lambda k: MLP.init(k, X)[0])(keys)
    assert stacked["0"]["w"].shape == (3, 3, 8)
    ys = jax.vmap(_forward, in_axes=(0, None))(stacked, X)
    for i in range(3):
        params_i = jax.tree.map(lambda a: a[i], stacked)
        np.testing.assert_allclose(np.asarray(ys[i]), _mlp_np(params_i, X), rtol=1e-5,
                                   atol=1e-6)


def test_grad_matches_finite_differences():
    def loss(params):
        return jnp.sum(_forward(params, X) ** 2)

    grads = jax.jit(jax.grad(loss))(PARAMS)
    assert jax.tree.structure(grads) == jax.tree.structure(PARAMS)
    w = np.asarray(PARAMS["0"]["w"], np.float64)
    eps = 1e-6
    for idx in [(0, 0), (1, 5), (2, 7)]:
        plus = jax.tree.map(lambda a: np.asarray(a, np.float64), PARAMS)
        minus = jax.tree.map(lambda a: np.asarray(a, np.float64), PARAMS)
        plus["0"]["w"] = w.copy()
        plus["0"]["w"][idx] += eps
        minus["0"]["w"] = w.copy()
        minus["0"]["w"][idx] -= eps
        fd = (np.sum(_mlp_np(plus, X) ** 2) - np.sum(_mlp_np(minus, X) ** 2)) / (2 * eps)
        assert float(grads["0"]["w"][idx]) == pytest.approx(fd, rel=1e-3, abs=1e-5)


@dataclasses.dataclass(frozen=True)
class Counter(fnn.Layer):
    """A stateful test layer: counts its calls in state and returns x unchanged."""

    def init(self, key, x):
        return {}, {"count": jnp.zeros((), jnp.int32)}

    def apply(self, params, state, x, *, key=None, train=False):
        return x, {"count": state["count"] + 1}


def test_state_is_threaded_and_only_stateful_children_appear():
    model = fnn.Sequential([fnn.Dense(2), Counter(), fnn.Sequential([Counter()])])
    params, state = model.init(KEY, X)
    assert jax.tree.map(int, state) == {"1": {"count": 0}, "2": {"0": {"count": 0}}}
    _, state = model.apply(params, state, X)
    _, state = model.apply(params, state, X)
    assert jax.tree.map(int, state) == {"1": {"count": 2}, "2": {"0": {"count": 2}}}


def test_init_on_shape_struct_matches_real_init_and_is_abstract():
    struct = jax.ShapeDtypeStruct(X.shape, X.dtype)
    abstract = jax.eval_shape(MLP.init, KEY, struct)
    assert jax.tree.map(lambda a: (a.shape, a.dtype), abstract) == \
        jax.tree.map(lambda a: (a.shape, a.dtype), (PARAMS, STATE))
    huge = fnn.Sequential([fnn.Dense(100_000), fnn.Activation("relu"), fnn.Dense(100_000)])
    params, _ = jax.eval_shape(huge.init, KEY, jax.ShapeDtypeStruct((2, 50_000), jnp.float32))
    assert params["2"]["w"].shape == (100_000, 100_000)


def test_layers_is_a_tuple_and_model_is_hashable_static_argument():
    assert isinstance(MLP.layers, tuple)
    same = fnn.Sequential((fnn.Dense(8), fnn.Activation("tanh"), fnn.Dense(2)))
    assert same == MLP and hash(same) == hash(MLP)
    y = jax.jit(lambda m, p, x: m.apply(p, {}, x)[0], static_argnums=0)(same, PARAMS, X)
    np.testing.assert_allclose(np.asarray(y), _mlp_np(PARAMS, X), rtol=1e-5, atol=1e-6)
    assert repr(MLP) == ("Sequential(layers=[Dense(features=8), Activation(fn='tanh'), "
                         "Dense(features=2)])")


NESTED = fnn.Sequential([fnn.Dense(4), fnn.Sequential([fnn.Dense(3), fnn.Dense(2)])])


def test_feature_size_error_deep_inside_names_path_and_shapes():
    # the inner block's params come from a model initialised on 6 features, not 4
    params, _ = NESTED.init(KEY, X)
    inner, _ = NESTED.layers[1].init(KEY, jnp.zeros((5, 6)))
    with pytest.raises(LayerValueError) as info:
        NESTED.apply({"0": params["0"], "1": inner}, {}, X)
    assert info.value.path == ("1", "0")
    message = str(info.value)
    assert message.startswith("Dense at path '1/0':")
    assert "(batch, ..., 6)" in message and "got (5, 4)" in message


def test_errors_inside_init_and_dropout_name_the_path():
    with pytest.raises(LayerTypeError, match=r"Dense at path '1/0': .*int32"):
        fnn.Sequential([fnn.Flatten(), fnn.Sequential([fnn.Dense(2)])]).init(
            KEY, jax.ShapeDtypeStruct((4, 2, 2), jnp.int32))
    model = fnn.Sequential([fnn.Dense(4), fnn.Sequential([fnn.Dense(3), fnn.Dropout(0.1)])])
    params, _ = model.init(KEY, X)
    with pytest.raises(LayerValueError, match=r"Dropout at path '1/1': train=True needs"):
        model.apply(params, {}, X, train=True)


def test_mismatched_params_tree_is_readable():
    params, _ = NESTED.init(KEY, X)
    with pytest.raises(LayerValueError, match=r"Sequential \(top level\): params has keys "
                                              r"\['0'\].*missing \['1'\]"):
        NESTED.apply({"0": params["0"]}, {}, X)
    broken = {"0": params["0"], "1": {"0": params["1"]["0"], "1": {"b": params["1"]["1"]["b"]}}}
    with pytest.raises(LayerValueError, match=r"Dense at path '1/1': params must be a dict "
                                              r"with keys \['b', 'w'\], got \['b'\]"):
        NESTED.apply(broken, {}, X)
    with pytest.raises(LayerValueError, match=r"state has keys \['7'\]"):
        NESTED.apply(params, {"7": {}}, X)


def test_non_layer_element_is_rejected_with_advice():
    with pytest.raises(LayerTypeError, match=r"element 1 .*fnn.Activation\(fn\)"):
        fnn.Sequential([fnn.Dense(2), jnp.tanh])
    with pytest.raises(LayerTypeError, match="expected a list of layers"):
        fnn.Sequential(fnn.Dense(2))


def named_model():
    body = fnn.Sequential({"hidden": fnn.Dense(6), "act": fnn.Activation("tanh")})
    return fnn.Sequential({"body": body, "head": fnn.Dense(2)})


def test_named_layers_key_params_by_name_with_the_same_weights_as_indices():
    x = jnp.ones((4, 3))
    named = named_model()
    plain = fnn.Sequential([fnn.Sequential([fnn.Dense(6), fnn.Activation("tanh")]),
                            fnn.Dense(2)])
    p_named, _ = named.init(jax.random.key(0), x)
    p_plain, _ = plain.init(jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, p_named) == {
        "body": {"hidden": {"b": (6,), "w": (3, 6)}, "act": {}},
        "head": {"b": (2,), "w": (6, 2)}}
    # keys follow positions, so the weights are those of the unnamed model
    np.testing.assert_array_equal(p_named["body"]["hidden"]["w"], p_plain["0"]["0"]["w"])
    np.testing.assert_array_equal(named.apply(p_named, {}, x)[0],
                                  plain.apply(p_plain, {}, x)[0])
    assert named.layer("head") == fnn.Dense(2) and named.child_names == ("body", "head")
    with pytest.raises(KeyError, match=r"no layer 'neck'; its layers are \['body', 'head'\]"):
        named.layer("neck")
    assert "body/hidden  Dense(features=6)" in fnn.summary(named, x)
    assert repr(named).startswith("Sequential({'body': Sequential({'hidden': Dense(")


def test_named_layer_errors_name_the_path_and_bad_names_are_refused():
    named = named_model()
    params, _ = named.init(jax.random.key(0), jnp.ones((4, 3)))
    with pytest.raises(fnn.LayerValueError, match="at path 'body/hidden'"):
        named.apply(params, {}, jnp.ones((4, 5)))
    for bad in ({"a/b": fnn.Dense(1)}, {"": fnn.Dense(1)}):
        with pytest.raises(fnn.LayerValueError, match="distinct non-empty strings"):
            fnn.Sequential(bad)
    with pytest.raises(fnn.LayerValueError, match=r"expects \['body', 'head'\]"):
        named.apply({"0": {}, "1": {}}, {}, jnp.ones((4, 3)))


def test_freeze_a_named_body_and_swap_the_head_keeping_the_body():
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    named = named_model()
    opt = fnn.optim.freeze("body", fnn.optim.adam(0.05))
    params, state = named.init(jax.random.key(1), x)
    trained = fnn.fit(named, "sparse_softmax_cross_entropy", opt, (x, y), epochs=2,
                      batch_size=16, key=jax.random.key(2), params=params, progress=False)
    jax.tree.map(np.testing.assert_array_equal, trained.params["body"], params["body"])
    assert not np.array_equal(trained.params["head"]["w"], params["head"]["w"])
    # a new head for 5 classes: plain dict surgery keeps the trained body
    swapped = fnn.Sequential({"body": named.layer("body"), "head": fnn.Dense(5)})
    new_params, _ = swapped.init(jax.random.key(3), x)
    new_params["body"] = trained.params["body"]
    assert swapped.apply(new_params, {}, x)[0].shape == (32, 5)
