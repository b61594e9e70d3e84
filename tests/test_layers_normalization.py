"""BatchNorm, LayerNorm, GroupNorm and RMSNorm against float64 numpy references, and their checks."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.errors import LayerTypeError, LayerValueError

KEY = jax.random.key(0)
RNG = np.random.default_rng(0)
EPS = 1e-5


def f32(*shape, loc=0.0, scale=1.0):
    return (loc + scale * RNG.normal(size=shape)).astype(np.float32)


def bn_reference(x, scale, bias, keep, mean=None, var=None, eps=EPS):
    """The notes' z_norm = (z - mu) / sqrt(var + eps), z_tilde = gamma z_norm + beta, float64.

    Batch statistics (biased variance) over every axis not in ``keep`` unless ``mean``/``var``
    (the running statistics) are given. Returns ``(z_tilde, mu, var)`` (statistics squeezed).
    """
    x = np.asarray(x, np.float64)
    reduced = tuple(a for a in range(x.ndim) if a not in keep)
    shape = [x.shape[a] if a in keep else 1 for a in range(x.ndim)]
    if mean is None:
        mu = x.mean(reduced, keepdims=True)
        var = ((x - mu) ** 2).sum(reduced, keepdims=True) / np.prod([x.shape[a] for a in reduced])
    else:
        mu, var = np.reshape(mean, shape), np.reshape(var, shape)
    z_norm = (x - mu) / np.sqrt(var + eps)
    z_tilde = np.reshape(scale, shape) * z_norm + np.reshape(bias, shape)
    return z_tilde, mu.reshape([x.shape[a] for a in keep]), var.reshape([x.shape[a] for a in keep])


def random_affine(shape):
    return {"scale": f32(*shape, loc=1.0, scale=0.5), "bias": f32(*shape)}


def allclose(a, b, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol,
                               atol=atol)


# --- BatchNorm --------------------------------------------------------------------------------

CASES = {  # name -> (layer, input shape, kept axes)
    "dense": (fnn.BatchNorm(momentum=0.9), (6, 3), (1,)),
    "image": (fnn.BatchNorm(momentum=0.9), (2, 3, 3, 4), (3,)),
    "tuple_axis": (fnn.BatchNorm(momentum=0.9, axis=(1, -1)), (3, 2, 2, 4), (1, 3)),
}


@functools.lru_cache(maxsize=None)
def jitted(layer, train):
    return jax.jit(functools.partial(layer.apply, train=train))


def test_batch_norm_layout():
    layer, shape, _ = CASES["image"]
    params, state = layer.init(KEY, jax.ShapeDtypeStruct(shape, jnp.float32))
    assert jax.tree.map(jnp.shape, (params, state)) == (
        {"scale": (4,), "bias": (4,)}, {"mean": (4,), "var": (4,)})
    np.testing.assert_array_equal(params["scale"], 1.0)
    np.testing.assert_array_equal(params["bias"], 0.0)
    np.testing.assert_array_equal(state["mean"], 0.0)
    np.testing.assert_array_equal(state["var"], 1.0)
    params, state = fnn.BatchNorm(use_scale=False, use_bias=False).init(KEY, jnp.ones((2, 3)))
    assert params == {} and set(state) == {"mean", "var"}
    params, _ = fnn.BatchNorm(scale_init="zeros", bias_init="ones").init(KEY, jnp.ones((2, 3)))
    np.testing.assert_array_equal(params["scale"], 0.0)
    np.testing.assert_array_equal(params["bias"], 1.0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_batch_norm_train_then_eval_match_numpy(case):
    layer, shape, keep = CASES[case]
    features = tuple(shape[a] for a in keep)
    params = random_affine(features)
    _, state = layer.init(KEY, jnp.zeros(shape))
    x = f32(*shape, loc=2.0, scale=3.0)

    y, new_state = jitted(layer, True)(params, state, x)
    expected, mu, var = bn_reference(x, params["scale"], params["bias"], keep)
    allclose(y, expected)
    allclose(new_state["mean"], 0.9 * 0.0 + 0.1 * mu)
    allclose(new_state["var"], 0.9 * 1.0 + 0.1 * var)

    # Evaluation: the running statistics replace the batch's, the state comes back as it was.
    x_dev = f32(*shape)
    y_eval, same = layer.apply(params, new_state, x_dev)   # eager, train=False by default
    assert same is new_state
    expected, _, _ = bn_reference(x_dev, params["scale"], params["bias"], keep,
                                  new_state["mean"], new_state["var"])
    allclose(y_eval, expected)
    allclose(jitted(layer, False)(params, new_state, x_dev)[0], expected)


def test_running_statistics_follow_the_recurrence():
    layer, shape, keep = CASES["dense"]
    params, state = layer.init(KEY, jnp.zeros(shape))
    mean, var = np.zeros(3), np.ones(3)
    for step in range(4):
        x = f32(*shape, loc=step, scale=1.0 + step)
        _, state = jitted(layer, True)(params, state, x)
        mu = x.astype(np.float64).mean(0)
        biased = ((x - mu) ** 2).mean(0)
        mean = 0.9 * mean + (1 - 0.9) * mu          # running = momentum running + (1-m) batch
        var = 0.9 * var + (1 - 0.9) * biased
        allclose(state["mean"], mean)
        allclose(state["var"], var)
    assert state["mean"].dtype == jnp.float32


def closed_form_backward(x, gamma, dy, eps=EPS):
    """The standard batch-norm backward pass for a (m, C) batch, float64."""
    x, gamma, dy = (np.asarray(a, np.float64) for a in (x, gamma, dy))
    m = x.shape[0]
    mu = x.mean(0)
    sigma = np.sqrt(((x - mu) ** 2).mean(0) + eps)
    x_hat = (x - mu) / sigma
    d_hat = dy * gamma
    dx = (m * d_hat - d_hat.sum(0) - x_hat * (d_hat * x_hat).sum(0)) / (m * sigma)
    return dx, (dy * x_hat).sum(0), dy.sum(0)


@pytest.mark.parametrize("case", ["dense", "image"])
def test_gradients_match_closed_form_backward(case):
    layer, shape, _ = CASES[case]
    channels = shape[-1]
    params = random_affine((channels,))
    _, state = layer.init(KEY, jnp.zeros(shape))
    x, w = f32(*shape, loc=1.0, scale=2.0), f32(*shape)

    @jax.jit
    def grads(params, x):
        return jax.grad(lambda p, x: jnp.sum(layer.apply(p, state, x, train=True)[0] * w),
                        argnums=(0, 1))(params, x)

    g_params, g_x = grads(params, x)
    # Channels-last with statistics over all other axes: batch norm of x.reshape(-1, C).
    dx, dgamma, dbeta = closed_form_backward(x.reshape(-1, channels), params["scale"],
                                             w.reshape(-1, channels))
    allclose(g_x, dx.reshape(shape), rtol=1e-4, atol=1e-5)
    allclose(g_params["scale"], dgamma, rtol=1e-4, atol=1e-5)
    allclose(g_params["bias"], dbeta, rtol=1e-4, atol=1e-5)


def test_closed_form_backward_matches_finite_differences():
    # The reference itself, checked with central differences of the numpy forward pass.
    x, gamma, dy = RNG.normal(size=(5, 2)), RNG.normal(size=2), RNG.normal(size=(5, 2))
    dx, dgamma, _ = closed_form_backward(x, gamma, dy)

    def loss(x, gamma):
        return np.sum(bn_reference(x, gamma, np.zeros(2), (1,))[0] * dy)

    h = 1e-6
    for idx in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        assert abs((loss(x + e, gamma) - loss(x - e, gamma)) / (2 * h) - dx[idx]) < 1e-6
    for j in range(2):
        e = np.zeros(2)
        e[j] = h
        assert abs((loss(x, gamma + e) - loss(x, gamma - e)) / (2 * h) - dgamma[j]) < 1e-6


def test_axis_name_under_vmap_equals_whole_batch():
    whole = fnn.BatchNorm(momentum=0.9)
    sharded = fnn.BatchNorm(momentum=0.9, axis_name="b")
    x = f32(8, 3, loc=1.0, scale=2.0)
    w = f32(8, 3)
    params = random_affine((3,))
    _, state = whole.init(KEY, x)

    def loss_whole(p, x):
        y, s = whole.apply(p, state, x, train=True)
        return jnp.sum(y * w), (y, s)

    def loss_sharded(p, x, per_shard):
        xs = x.reshape(-1, per_shard, 3)
        ys, ss = jax.vmap(lambda xb: sharded.apply(p, state, xb, train=True),
                          axis_name="b")(xs)
        return jnp.sum(ys.reshape(8, 3) * w), (ys.reshape(8, 3), ss)

    grad_whole = jax.jit(jax.grad(loss_whole, argnums=(0, 1), has_aux=True))
    (gp, gx), (y, s) = grad_whole(params, x)
    for per_shard in (2, 1):       # shards of one example are fine: the statistics are global
        grad_sharded = jax.jit(jax.grad(functools.partial(loss_sharded, per_shard=per_shard),
                                        argnums=(0, 1), has_aux=True))
        (gp_s, gx_s), (y_s, s_s) = grad_sharded(params, x)
        allclose(y_s, y)
        for name in ("mean", "var"):
            assert s_s[name].shape == (8 // per_shard, 3)   # every shard holds the same stats
            allclose(s_s[name], np.broadcast_to(s[name], s_s[name].shape))
        allclose(gx_s, gx, rtol=1e-4)
        jax.tree.map(lambda a, b: allclose(a, b, rtol=1e-4), gp_s, gp)


def test_bfloat16_input_computes_in_float32():
    layer = fnn.BatchNorm(momentum=0.9)
    x = f32(6, 3, loc=100.0, scale=0.5)      # a large mean: bf16 statistics would lose it
    params, state = layer.init(KEY, jnp.asarray(x, jnp.bfloat16))
    assert params["scale"].dtype == jnp.float32 and state["mean"].dtype == jnp.float32
    xb = jnp.asarray(x, jnp.bfloat16)
    y, new_state = jitted(layer, True)(params, state, xb)
    assert y.dtype == jnp.bfloat16 and new_state["var"].dtype == jnp.float32
    expected, mu, var = bn_reference(np.asarray(xb, np.float64), params["scale"],
                                     params["bias"], (1,))
    allclose(y, expected, rtol=2e-2, atol=2e-2)
    allclose(new_state["mean"], 0.1 * mu, rtol=1e-5)
    allclose(new_state["var"], 0.9 + 0.1 * var, rtol=1e-5)


def test_batch_norm_input_checks():
    layer = fnn.BatchNorm()
    params, state = layer.init(KEY, jnp.zeros((4, 3)))
    with pytest.raises(LayerValueError, match=r"BatchNorm \(top level\): training needs at "
                       r"least 2 elements.*\(1, 3\).*batch of one"):
        layer.apply(params, state, jnp.ones((1, 3)), train=True)
    layer.apply(params, state, jnp.ones((1, 3)))                          # evaluation: fine
    layer.apply(params, state, jnp.ones((1, 2, 3)), train=True)   # 2 positions per feature
    with pytest.raises(LayerValueError, match=r"params\['scale'\] has shape \(3,\) but the "
                       r"input's feature axes \(1,\) \(input shape \(4, 5\)\) has shape \(5,\)"):
        layer.apply(params, state, jnp.ones((4, 5)), train=True)
    with pytest.raises(LayerValueError, match=r"keys \['mean', 'var'\], got \['mean'\]"):
        layer.apply(params, {"mean": state["mean"]}, jnp.ones((4, 3)))
    with pytest.raises(LayerValueError, match=r"params\['var'\] has shape \(2,\)"):
        layer.apply(params, {"mean": state["mean"], "var": jnp.ones(2)}, jnp.ones((4, 3)))
    with pytest.raises(LayerValueError, match=r"rank >= 2.*got rank 1, shape \(3,\)"):
        layer.apply(params, state, jnp.ones(3))
    with pytest.raises(LayerValueError, match=r"axis=2 is out of range.*rank 2"):
        fnn.BatchNorm(axis=2).init(KEY, jnp.ones((4, 3)))
    with pytest.raises(LayerValueError, match="batch axis 0"):
        fnn.BatchNorm(axis=(0, 1)).init(KEY, jnp.ones((4, 3)))
    with pytest.raises(LayerTypeError, match="floating-point"):
        layer.apply(params, state, jnp.ones((4, 3), jnp.int32))
    with pytest.raises(LayerValueError, match=r"axis_name='b' is not bound"):
        fnn.BatchNorm(axis_name="b").apply(params, state, jnp.ones((4, 3)), train=True)


@pytest.mark.parametrize("kwargs, match", [
    ({"momentum": 1.0}, r"momentum .* must be in \[0, 1\), got 1.0"),
    ({"momentum": -0.1}, "momentum"),
    ({"momentum": True}, "momentum"),
    ({"eps": 0.0}, "eps must be a positive number"),
    ({"eps": -1e-3}, "eps"),
    ({"axis": "last"}, "axis must be an int or a non-empty tuple of ints"),
    ({"axis": ()}, "axis must be"),
    ({"axis_name": ["b"]}, "axis_name must be None or a hashable"),
    ({"scale_init": "no_such_init"}, "scale_init"),
])
def test_batch_norm_bad_hyperparameters(kwargs, match):
    with pytest.raises(LayerValueError, match=match):
        fnn.BatchNorm(**kwargs)


def test_error_path_inside_sequential():
    model = fnn.Sequential([fnn.Dense(4), fnn.BatchNorm(), fnn.Activation("relu")])
    params, state = model.init(KEY, jnp.ones((1, 3)))        # init traces evaluation mode
    assert set(state) == {"1"}
    with pytest.raises(LayerValueError, match=r"BatchNorm at path '1': training needs .*batch "
                       r"of one"):
        jax.jit(functools.partial(model.apply, train=True))(params, state, jnp.ones((1, 3)))
    inner = fnn.Sequential([fnn.Dense(4), fnn.Sequential([fnn.GroupNorm(3)])])
    with pytest.raises(LayerValueError, match=r"GroupNorm at path '1/0': the 4 channels .* do "
                       r"not split into 3 equal groups"):
        inner.init(KEY, jnp.ones((2, 3)))


# --- LayerNorm, GroupNorm, RMSNorm ------------------------------------------------------------

def layer_norm_reference(x, axes, scale, bias, eps=EPS):
    x = np.asarray(x, np.float64)
    mu = x.mean(axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axes, keepdims=True)
    shape = [x.shape[a] if a in axes else 1 for a in range(x.ndim)]
    scale, bias = (np.broadcast_to(v, [x.shape[a] for a in axes]).reshape(shape)
                   for v in (scale, bias))
    return (x - mu) / np.sqrt(var + eps) * scale + bias


@pytest.mark.parametrize("axis, shape, axes", [(-1, (3, 4), (1,)), ((1, 2), (2, 3, 4), (1, 2)),
                                               (1, (2, 3, 4), (1,))])
def test_layer_norm_matches_numpy(axis, shape, axes):
    layer = fnn.LayerNorm(axis=axis)
    features = tuple(shape[a] for a in axes)
    params, state = layer.init(KEY, jnp.zeros(shape))
    assert jax.tree.map(jnp.shape, params) == {"scale": features, "bias": features}
    assert state == {}
    params = random_affine(features)
    x = f32(*shape, loc=3.0, scale=2.0)
    y, out_state = jax.jit(layer.apply)(params, state, x)
    allclose(y, layer_norm_reference(x, axes, params["scale"], params["bias"]))
    assert out_state == {}
    y_train, _ = layer.apply(params, state, x[:1], train=True)   # per example: batch of one ok
    allclose(y_train, layer_norm_reference(x[:1], axes, params["scale"], params["bias"]))


def test_layer_norm_without_affine_and_bfloat16():
    layer = fnn.LayerNorm(use_scale=False, use_bias=False)
    x = f32(3, 8, loc=50.0)
    params, _ = layer.init(KEY, x)
    assert params == {}
    y, _ = layer.apply(params, {}, jnp.asarray(x, jnp.bfloat16))
    assert y.dtype == jnp.bfloat16
    xb = np.asarray(jnp.asarray(x, jnp.bfloat16), np.float64)
    allclose(y, layer_norm_reference(xb, (1,), 1.0, 0.0), rtol=2e-2, atol=2e-2)


def group_norm_reference(x, groups, scale, bias, eps=EPS):
    """Loops over examples and groups; statistics over spatial positions and a group's channels."""
    x = np.asarray(x, np.float64)
    y = np.empty_like(x)
    size = x.shape[-1] // groups
    for n in range(x.shape[0]):
        for g in range(groups):
            block = x[n, ..., g * size:(g + 1) * size]
            y[n, ..., g * size:(g + 1) * size] = (block - block.mean()) / np.sqrt(
                block.var() + eps)
    return y * scale + bias


@pytest.mark.parametrize("groups, shape", [(2, (2, 3, 3, 4)), (3, (3, 6)), (4, (2, 5, 4))])
def test_group_norm_matches_numpy(groups, shape):
    layer = fnn.GroupNorm(groups)
    params, state = layer.init(KEY, jnp.zeros(shape))
    assert jax.tree.map(jnp.shape, params) == {"scale": shape[-1:], "bias": shape[-1:]}
    params = random_affine(shape[-1:])
    x = f32(*shape, loc=-1.0, scale=2.0)
    y, out_state = jax.jit(layer.apply)(params, state, x)
    allclose(y, group_norm_reference(x, groups, params["scale"], params["bias"]))
    assert out_state == {} and y.shape == shape


def test_group_norm_of_one_group_is_layer_norm_over_the_example():
    x = f32(2, 3, 4)
    gn, ln = fnn.GroupNorm(1, use_scale=False, use_bias=False), fnn.LayerNorm(
        axis=(1, 2), use_scale=False, use_bias=False)
    allclose(gn.apply({}, {}, x)[0], ln.apply({}, {}, x)[0])


def test_rms_norm_matches_numpy():
    layer = fnn.RMSNorm()
    params, state = layer.init(KEY, jnp.zeros((3, 5)))
    assert jax.tree.map(jnp.shape, params) == {"scale": (5,)} and state == {}
    params = {"scale": f32(5, loc=1.0)}
    x = f32(3, 5, loc=1.0)
    y, _ = jax.jit(layer.apply)(params, state, x)
    x64 = x.astype(np.float64)
    expected = x64 / np.sqrt((x64 ** 2).mean(1, keepdims=True) + 1e-6) * params["scale"]
    allclose(y, expected)
    assert fnn.RMSNorm(use_scale=False).init(KEY, x)[0] == {}


def test_norm_input_checks():
    with pytest.raises(LayerValueError, match=r"LayerNorm \(top level\): params\['scale'\] has "
                       r"shape \(4,\) but the input's axes \(1,\) .*has shape \(5,\)"):
        fnn.LayerNorm().apply({"scale": jnp.ones(4), "bias": jnp.ones(4)}, {}, jnp.ones((2, 5)))
    with pytest.raises(LayerValueError, match="names an axis twice"):
        fnn.LayerNorm(axis=(1, -1)).init(KEY, jnp.ones((2, 3)))
    with pytest.raises(LayerValueError, match="batch axis 0"):
        fnn.RMSNorm(axis=0).init(KEY, jnp.ones((2, 3)))
    with pytest.raises(LayerValueError, match=r"keys \['scale'\], got \['bias', 'scale'\]"):
        fnn.RMSNorm().apply({"scale": jnp.ones(3), "bias": jnp.ones(3)}, {}, jnp.ones((2, 3)))
    with pytest.raises(LayerValueError, match=r"the 6 channels \(last axis of the input of shape "
                       r"\(2, 6\)\) do not split into 4 equal groups"):
        fnn.GroupNorm(4).init(KEY, jnp.ones((2, 6)))
    with pytest.raises(LayerValueError, match="groups must be a positive int"):
        fnn.GroupNorm(0)
    with pytest.raises(LayerValueError, match="eps must be a positive"):
        fnn.RMSNorm(eps=0)
    with pytest.raises(LayerTypeError, match="floating-point"):
        fnn.GroupNorm(2).init(KEY, jnp.ones((2, 4), jnp.int32))
    with pytest.raises(LayerValueError, match="rank >= 2"):
        fnn.LayerNorm().init(KEY, jnp.ones(4))


def test_fit_threads_batch_norm_state_and_evaluation_uses_running_statistics():
    # lr = 0: the dense layers never change, so every batch's statistics and the running
    # ones after each step follow from numpy alone (shuffle=False: contiguous batches).
    model = fnn.Sequential([fnn.Dense(3), fnn.BatchNorm(momentum=0.5), fnn.Dense(2)])
    x = f32(12, 4, loc=1.0, scale=2.0)
    y = (np.arange(12) % 2).astype(np.int32)
    params, state = model.init(KEY, x)
    result = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.sgd(0.0), (x, y),
                     epochs=2, batch_size=4, key=KEY, params=params, state=state,
                     shuffle=False, progress=False)
    z = np.asarray(x, np.float64) @ np.asarray(params["0"]["w"]) + np.asarray(params["0"]["b"])
    mean, var = np.zeros(3), np.ones(3)
    for _ in range(2):
        for i in range(0, 12, 4):
            batch = z[i:i + 4]
            mean = 0.5 * mean + 0.5 * batch.mean(0)
            var = 0.5 * var + 0.5 * batch.var(0)
    allclose(result.state["1"]["mean"], mean, rtol=1e-5, atol=1e-6)
    allclose(result.state["1"]["var"], var, rtol=1e-5, atol=1e-6)
    # Evaluation normalises with the running statistics, not the evaluated batch's.
    bn = params["1"]
    h = (z - mean) / np.sqrt(var + EPS) * np.asarray(bn["scale"]) + np.asarray(bn["bias"])
    logits = h @ np.asarray(params["2"]["w"]) + np.asarray(params["2"]["b"])
    allclose(fnn.predict(model, result.params, result.state, x), logits, rtol=1e-4, atol=1e-5)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    scores = fnn.evaluate(model, result.params, result.state, (x, y),
                          loss="sparse_softmax_cross_entropy")
    allclose(scores["loss"], -log_p[np.arange(12), y].mean(), rtol=1e-4)
