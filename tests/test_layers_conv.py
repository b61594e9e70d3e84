"""Convolutions against direct numpy loops of the formula, the notes' edge example and
parameter counts, output sizes, the transpose identity, and bad input."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.layers import conv_matmul

KEY = jax.random.key(0)
RNG = np.random.default_rng(0)


def conv_reference(x, w, b, stride, pads, dilation, groups):
    """y[n, i.., o] = b[o] + sum_{u.., c in o's group} xp[n, i s + u d .., c] w[u.., c, o]."""
    x = np.pad(np.asarray(x, np.float64), [(0, 0), *pads, (0, 0)])
    w = np.asarray(w, np.float64)
    rank = w.ndim - 2
    kernel, cin, cout = w.shape[:rank], w.shape[-2], w.shape[-1]
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    out = [(n - s_) // st + 1 for n, s_, st in zip(x.shape[1:-1], spans, stride)]
    y = np.zeros((x.shape[0], *out, cout))
    per_group = cout // groups
    for n, pos, o in itertools.product(range(x.shape[0]), itertools.product(*map(range, out)),
                                       range(cout)):
        g = o // per_group
        total = b[o]
        for u in itertools.product(*map(range, kernel)):
            idx = tuple(i * st + k * d for i, st, k, d in zip(pos, stride, u, dilation))
            total += x[(n, *idx, slice(g * cin, (g + 1) * cin))] @ w[(*u, slice(None), o)]
        y[(n, *pos, o)] = total
    return y


def transpose_reference(x, w, b, stride, crop, dilation):
    """Scatter: y_full[n, i s + u d .., o] += x[n, i.., c] w[u.., c, o], then crop each end."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    rank = w.ndim - 2
    kernel = w.shape[:rank]
    full = [(n - 1) * s + (k - 1) * d + 1 for n, k, s, d in zip(x.shape[1:-1], kernel, stride,
                                                               dilation)]
    extra = [max(-hi, 0) for _, hi in crop]            # negative crop: rows added at the end
    y = np.zeros((x.shape[0], *[f + e for f, e in zip(full, extra)], w.shape[-1]))
    for n, pos in itertools.product(range(x.shape[0]), itertools.product(*map(range,
                                                                             x.shape[1:-1]))):
        for u in itertools.product(*map(range, kernel)):
            idx = tuple(i * s + k * d for i, s, k, d in zip(pos, stride, u, dilation))
            y[(n, *idx)] += x[(n, *pos)] @ w[u]
    crop_slices = tuple(slice(lo, y.shape[1 + a] - max(hi, 0)) for a, (lo, hi) in enumerate(crop))
    return y[(slice(None), *crop_slices)] + b


CONV_CASES = {
    # name: (layer, input shape, explicit pads the reference uses)
    "1d_valid_stride2": (fnn.Conv1D(3, 3, stride=2), (2, 9, 2), [(0, 0)]),
    "1d_causal_dilated": (fnn.Conv1D(2, 3, padding="causal", dilation=2), (1, 7, 3), [(4, 0)]),
    "1d_same_stride3": (fnn.Conv1D(2, 4, stride=3, padding="same"), (1, 8, 1), [(1, 2)]),
    "2d_int_padding": (fnn.Conv2D(4, 3, padding=1), (2, 5, 4, 3), [(1, 1), (1, 1)]),
    "2d_same_stride2_rect": (fnn.Conv2D(3, (2, 3), stride=2, padding="same"), (1, 5, 6, 2),
                             [(0, 1), (0, 1)]),
    "2d_pairs_dilation_groups": (fnn.Conv2D(4, 2, padding=((2, 0), (0, 1)), dilation=(2, 1),
                                            groups=2), (1, 5, 5, 4), [(2, 0), (0, 1)]),
    "2d_depthwise": (fnn.Conv2D(6, 3, groups=3), (1, 5, 5, 3), [(0, 0), (0, 0)]),
    "3d_valid": (fnn.Conv3D(2, (2, 2, 1), stride=(1, 2, 1)), (1, 3, 5, 2, 2),
                 [(0, 0), (0, 0), (0, 0)]),
}


@pytest.fixture(params=["matmul", "xla"])
def implementation(request, monkeypatch):
    """Each convolution both ways: as fnn's matmul over shifted slices (CPU, groups 1) and as
    ``lax.conv_general_dilated`` (forced by a patches limit no input meets)."""
    if request.param == "xla":
        monkeypatch.setattr(conv_matmul, "PATCHES_LIMIT_BYTES", -1)
    elif jax.default_backend() != "cpu":
        pytest.skip("the matmul convolution is fnn's CPU path")
    return request.param


def uses_lax_conv(fn, *args):
    return "conv_general_dilated" in str(jax.make_jaxpr(fn)(*args))


@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_conv_values_and_gradients_match_numpy_loops(name, implementation):
    layer, shape, pads = CONV_CASES[name]
    x = RNG.normal(size=shape).astype(np.float32)
    params, _ = layer.init(KEY, x)
    params["b"] = jnp.asarray(RNG.normal(size=params["b"].shape), jnp.float32)
    expect_lax = implementation == "xla" or layer.groups > 1
    assert uses_lax_conv(layer.apply, params, {}, x) == expect_lax
    y, state = jax.jit(layer.apply)(params, {}, x)
    ref = conv_reference(x, params["w"], np.asarray(params["b"]), layer.stride, pads,
                         layer.dilation, layer.groups)
    assert state == {} and y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    # Gradients: the numpy formula is linear in x and in w, so the derivative of <y, r>
    # along a direction v is exactly the reference's <y(v), r> with the other input fixed.
    r = RNG.normal(size=ref.shape)
    gx, gw = jax.grad(lambda a, w: jnp.vdot(layer.apply({**params, "w": w}, {}, a)[0], r),
                      argnums=(0, 1))(jnp.asarray(x), params["w"])
    vx, vw = RNG.normal(size=x.shape), RNG.normal(size=params["w"].shape)
    zero = np.zeros(ref.shape[-1])
    args = (layer.stride, pads, layer.dilation, layer.groups)
    np.testing.assert_allclose(np.vdot(gx, vx), np.vdot(conv_reference(vx, params["w"], zero,
                                                                       *args), r), rtol=1e-4)
    np.testing.assert_allclose(np.vdot(gw, vw), np.vdot(conv_reference(x, vw, zero, *args), r),
                               rtol=1e-4)


TRANSPOSE_CASES = {
    "1d_valid_stride2": (fnn.ConvTranspose1D(2, 3, stride=2), (2, 4, 3), [(0, 0)]),
    "1d_int_padding_dilated": (fnn.ConvTranspose1D(1, 2, stride=3, padding=1, dilation=2),
                               (1, 3, 2), [(1, 1)]),
    # "same": the adjoint of the "same" conv, whose odd padding row is after (TF/Keras).
    "2d_same_stride2": (fnn.ConvTranspose2D(3, 3, stride=2, padding="same"), (1, 3, 4, 2),
                        [(0, 1), (0, 1)]),
    "2d_same_stride3_kernel2": (fnn.ConvTranspose2D(1, 2, stride=3, padding="same"),
                                (1, 2, 2, 1), [(0, -1), (0, -1)]),
    "2d_pairs": (fnn.ConvTranspose2D(2, (2, 3), stride=(1, 2), padding=((1, 0), (0, 2))),
                 (1, 3, 3, 2), [(1, 0), (0, 2)]),
}


@pytest.mark.parametrize("name", sorted(TRANSPOSE_CASES))
def test_conv_transpose_matches_the_numpy_scatter(name):
    layer, shape, crop = TRANSPOSE_CASES[name]
    x = RNG.normal(size=shape).astype(np.float32)
    params, _ = layer.init(KEY, x)
    params["b"] = jnp.asarray(RNG.normal(size=params["b"].shape), jnp.float32)
    y, _ = jax.jit(layer.apply)(params, {}, x)
    ref = transpose_reference(x, params["w"], np.asarray(params["b"]), layer.stride, crop,
                              layer.dilation)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    if layer.padding == "same":
        assert y.shape[1:-1] == tuple(n * s for n, s in zip(shape[1:-1], layer.stride))


def test_conv_transpose_is_the_adjoint_of_conv():
    # <conv(x; w), g> == <x, conv_transpose(g; w with in/out swapped)>, same stride/dilation.
    conv = fnn.Conv2D(3, (3, 2), stride=2, dilation=(1, 2), use_bias=False)
    back = fnn.ConvTranspose2D(2, (3, 2), stride=2, dilation=(1, 2), use_bias=False)
    x = jnp.asarray(RNG.normal(size=(2, 7, 7, 2)), jnp.float32)   # no row left over
    params, _ = conv.init(KEY, x)
    y, _ = conv.apply(params, {}, x)
    g = jnp.asarray(RNG.normal(size=y.shape), jnp.float32)
    xt, _ = back.apply({"w": jnp.swapaxes(params["w"], -1, -2)}, {}, g)
    assert xt.shape == x.shape
    np.testing.assert_allclose(jnp.vdot(y, g), jnp.vdot(x, xt), rtol=1e-4)


def test_the_notes_six_by_six_edge_example():
    columns = jnp.array([[0., 0., 0., 1., 1., 1.]] * 6)        # three dark, three bright
    horizontal = jnp.array([[1., 2., 1.], [0., 0., 0.], [-1., -2., -1.]])
    vertical = horizontal.T                                     # [[1, 0, -1], [2, 0, -2], ...]
    layer = fnn.Conv2D(1, (3, 3), use_bias=False)

    def run(image, kernel):
        return layer.apply({"w": kernel.reshape(3, 3, 1, 1)}, {}, image.reshape(1, 6, 6, 1))[0][
            0, :, :, 0]

    edge = np.array([0., -4., -4., 0.])
    np.testing.assert_array_equal(run(columns, vertical), np.tile(edge, (4, 1)))
    np.testing.assert_array_equal(run(columns.T, horizontal), np.tile(edge[:, None], (1, 4)))
    np.testing.assert_array_equal(run(columns, horizontal), np.zeros((4, 4)))


def test_the_notes_cnn_parameter_counts():
    # Conv2D(32, (3, 3)) on 32x32x3, Flatten, Dense(64), Dense(10), as in the notes' Keras code.
    model = fnn.Sequential([fnn.Conv2D(32, (3, 3)), fnn.Activation("relu"), fnn.Flatten(),
                            fnn.Dense(64), fnn.Activation("relu"), fnn.Dense(10)])
    rows = fnn.summary_rows(model, jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))
    counts = {r.path: (r.output_shape, r.params) for r in rows}
    assert counts["0"] == ((1, 30, 30, 32), 3 * 3 * 3 * 32 + 32)          # 896
    assert counts["2"] == ((1, 28800), 0)                                  # 30 * 30 * 32
    assert counts["3"] == ((1, 64), 28800 * 64 + 64)                       # 1,843,264
    assert counts["5"] == ((1, 10), 64 * 10 + 10)
    assert sum(r.params for r in rows) == 896 + 1843264 + 650


@pytest.mark.parametrize("n, k, s, p, d", [(6, 3, 1, 0, 1), (6, 3, 1, 1, 1), (7, 3, 2, 1, 1),
                                           (28, 5, 3, 2, 2), (5, 5, 1, 0, 1), (9, 2, 4, 3, 3)])
def test_output_size_is_the_notes_formula(n, k, s, p, d):
    struct = jax.ShapeDtypeStruct((1, n, n, 1), jnp.float32)
    span = (k - 1) * d + 1
    for padding, expected in ((p, (n + 2 * p - span) // s + 1), ("same", -(-n // s))):
        layer = fnn.Conv2D(1, k, stride=s, padding=padding, dilation=d)
        params, _ = jax.eval_shape(layer.init, KEY, struct)
        y, _ = jax.eval_shape(layer.apply, params, {}, struct)
        assert y.shape == (1, expected, expected, 1)
    for padding, expected in ((p, (n - 1) * s + span - 2 * p), ("same", n * s),
                              ("valid", (n - 1) * s + span)):
        layer = fnn.ConvTranspose2D(1, k, stride=s, padding=padding, dilation=d)
        params, _ = jax.eval_shape(layer.init, KEY, struct)
        y, _ = jax.eval_shape(layer.apply, params, {}, struct)
        assert y.shape == (1, expected, expected, 1)
    causal = fnn.Conv1D(1, k, padding="causal", dilation=d)
    c_struct = jax.ShapeDtypeStruct((1, n, 1), jnp.float32)
    params, _ = jax.eval_shape(causal.init, KEY, c_struct)
    assert jax.eval_shape(causal.apply, params, {}, c_struct)[0].shape == (1, n, 1)


def test_models_with_convolutions_train_and_only_grouped_ones_leave_scan_on_cpu():
    # groups=1 runs as a matmul on CPU, as fast inside lax.scan as outside; lax.conv (grouped
    # convolutions, transposed ones) is not, so fit steps such models one call at a time.
    grouped = fnn.Sequential([fnn.Conv2D(4, 3, groups=2), fnn.Flatten(), fnn.Dense(2)])
    assert fnn.train.prefers_unrolled(grouped, "cpu")
    assert fnn.train.prefers_unrolled(fnn.ConvTranspose2D(2, 3), "cpu")
    assert not fnn.train.prefers_unrolled(grouped, "gpu")
    model = fnn.Sequential([fnn.Conv2D(4, 3, padding="same", w_init="he_normal"),
                            fnn.Activation("relu"), fnn.MaxPool2D(2), fnn.Flatten(),
                            fnn.Dense(2)])
    assert not fnn.train.prefers_unrolled(model, "cpu")
    x = RNG.normal(size=(16, 6, 6, 1)).astype(np.float32)
    y = (x[:, :, :3].mean(axis=(1, 2, 3)) > x[:, :, 3:].mean(axis=(1, 2, 3))).astype(np.int32)
    result = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(0.05), (x, y),
                     epochs=15, batch_size=8, key=KEY, progress=False)
    assert result.history["loss"][-1] < 0.5 * result.history["loss"][0]


@pytest.mark.parametrize("layer, shape, match", [
    (fnn.Conv2D(2, 3), (4, 6, 6), r"Conv2D.*expected input of rank 4.*\(4, 6, 6\).*x\[\.\.\., None\]"),
    (fnn.Conv2D(2, 3), (4, 3, 32, 32), r"\(4, 3, 32, 32\) looks channels-first.*transpose\(0, 2, 3, 1\)"),
    (fnn.Conv2D(2, 3, groups=2), (1, 6, 6, 3), r"input channels \(3.*\(1, 6, 6, 3\).*groups \(2\)"),
    (fnn.Conv2D(2, 5), (1, 4, 6, 1), r"kernel_size \(5, 5\).*spans more than the padded input.*\(1, 4, 6, 1\)"),
    (fnn.Conv1D(2, 3, dilation=3), (1, 6, 1), r"spans more than the padded input"),
    (fnn.ConvTranspose1D(1, 2, padding=2), (1, 1, 1), r"crops the whole output.*\(1, 1, 1\)"),
])
def test_bad_input_is_a_layer_error_naming_the_shapes(layer, shape, match):
    with pytest.raises(fnn.errors.LayerValueError, match=match):
        layer.init(KEY, jax.ShapeDtypeStruct(shape, jnp.float32))


def test_bad_input_inside_a_model_names_the_path_and_types():
    model = fnn.Sequential([fnn.Dense(4), fnn.Sequential([fnn.Conv1D(2, 3)])])
    with pytest.raises(fnn.errors.LayerValueError, match=r"Conv1D at path '1/0'.*rank 3"):
        model.init(KEY, jax.ShapeDtypeStruct((2, 5), jnp.float32))
    with pytest.raises(fnn.errors.LayerTypeError, match="floating-point.*int32"):
        fnn.Conv1D(2, 3).init(KEY, jax.ShapeDtypeStruct((2, 5, 1), jnp.int32))
    params, _ = fnn.Conv2D(2, 3).init(KEY, jax.ShapeDtypeStruct((1, 5, 5, 3), jnp.float32))
    with pytest.raises(fnn.errors.LayerValueError, match=r"params\['w'\] must have shape "
                                                         r"\(3, 3, 1, 2\).*1 channels"):
        fnn.Conv2D(2, 3).apply(params, {}, jnp.zeros((1, 5, 5, 1)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(features=0, kernel_size=3), "features must be a positive int"),
    (dict(features=3, kernel_size=3, groups=2), r"features \(3\) must be divisible by groups"),
    (dict(features=2, kernel_size=(3, 0)), "kernel_size must be a positive int or a tuple of 2"),
    (dict(features=2, kernel_size=3, stride=1.5), "stride must be"),
    (dict(features=2, kernel_size=3, padding="causal"), r"padding must be one of \['valid', 'same'\]"),
    (dict(features=2, kernel_size=3, padding=(1, 2, 3)), "a tuple of 2 ints"),
    (dict(features=2, kernel_size=3, w_init="nope"), "w_init"),
])
def test_bad_hyperparameters_fail_at_construction(kwargs, match):
    with pytest.raises(fnn.errors.LayerValueError, match=match):
        fnn.Conv2D(**kwargs)
    with pytest.raises(fnn.errors.LayerValueError, match="groups must be 1"):
        fnn.ConvTranspose2D(2, 3, groups=2)


def test_summary_names_only_the_settings_that_differ_from_the_defaults():
    from fnn.layers.base import layer_repr

    assert layer_repr(fnn.Conv2D(32, 3, padding="same")) == (
        "Conv2D(features=32, kernel_size=(3, 3), padding='same')")
    assert layer_repr(fnn.Conv2D(8, 3, stride=(1, 2))) == (
        "Conv2D(features=8, kernel_size=(3, 3), stride=(1, 2))")
