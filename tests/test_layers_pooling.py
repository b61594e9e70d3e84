"""Pooling layers against explicit numpy float64 windows (values and gradients), their tie
rule, the Keras "same" averaging, global pooling and the input checks."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import fnn
from fnn.errors import LayerTypeError, LayerValueError
from fnn.layers.pooling import _pool

RNG = np.random.default_rng(0)
CLASSES = {("max", 1): fnn.MaxPool1D, ("max", 2): fnn.MaxPool2D, ("min", 1): fnn.MinPool1D,
           ("min", 2): fnn.MinPool2D, ("avg", 1): fnn.AvgPool1D, ("avg", 2): fnn.AvgPool2D}


def reference(x, g, kind, window, strides, padding):
    """Pooling of ``x`` and the gradient of ``sum(y * g)``, window by window in float64.

    Each window lists its real (not padded) positions in row-major order; max/min take the
    first extreme one (np.argmax / np.argmin) and send it the whole gradient, avg divides by
    the number of real positions."""
    x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
    spatial = x.shape[1:-1]
    if padding == "same":
        out = [-(-n // s) for n, s in zip(spatial, strides)]
        lo = [max((o - 1) * s + k - n, 0) // 2 for o, s, k, n in zip(out, strides, window, spatial)]
    else:
        out, lo = [(n - k) // s + 1 for n, k, s in zip(spatial, window, strides)], [0] * len(spatial)
    y = np.zeros((x.shape[0], *out, x.shape[-1]))
    dx = np.zeros_like(x)
    for o in itertools.product(*map(range, out)):
        ranges = [range(i * s - l, i * s - l + k) for i, s, l, k in zip(o, strides, lo, window)]
        positions = [p for p in itertools.product(*ranges)
                     if all(0 <= q < n for q, n in zip(p, spatial))]
        at = lambda p: (slice(None), *p, slice(None))  # noqa: E731
        values = np.stack([x[at(p)] for p in positions], axis=1)       # (batch, m, channels)
        if kind == "avg":
            y[at(o)] = values.mean(axis=1)
            for p in positions:
                dx[at(p)] += g[at(o)] / len(positions)
        else:
            pick = (np.argmax if kind == "max" else np.argmin)(values, axis=1)
            y[at(o)] = np.take_along_axis(values, pick[:, None], axis=1)[:, 0]
            for j, p in enumerate(positions):
                dx[at(p)] += g[at(o)] * (pick == j)
    return y, dx


def _value_and_vjp(layer):
    @jax.jit
    def run(x, g):
        y, vjp = jax.vjp(lambda x: layer.apply({}, {}, x)[0], x)
        return y, vjp(g)[0]
    return run


# (window, stride, padding, 1-D input length, 2-D input H x W); the 2-D windows are
# anisotropic where given as tuples, to catch mixed-up axes.
CONFIGS = {
    "non-overlapping, remainder dropped": (2, None, "valid", 7, (7, 5)),
    "non-overlapping 2x3": ((2, 3), None, "valid", 8, (5, 7)),
    "overlapping": (3, 1, "valid", 6, (5, 6)),
    "overlapping 3x2 stride 2x1": ((3, 2), (2, 1), "valid", 7, (7, 5)),
    "stride > window": (2, 3, "valid", 8, (8, 7)),
    "same, non-overlapping, odd": (2, None, "same", 7, (5, 7)),
    "same, overlapping": (3, 2, "same", 7, (6, 5)),
    "same, stride > window": ((1, 2), 3, "same", 8, (7, 8)),
}


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("kind", ["max", "min", "avg"])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_values_and_gradients_match_numpy_windows(kind, rank, config):
    window, stride, padding, length, hw = CONFIGS[config]
    if rank == 1:
        window = window if isinstance(window, int) else window[1]
        stride = stride if stride is None or isinstance(stride, int) else stride[0]
    layer = CLASSES[kind, rank](window, stride, padding)
    shape = (2, length, 3) if rank == 1 else (2, *hw, 3)
    x = RNG.normal(size=shape).astype(np.float32)          # continuous: no ties
    out_shape = jax.eval_shape(layer.apply, {}, {}, x)[0].shape
    g = RNG.normal(size=out_shape).astype(np.float32)
    y_ref, dx_ref = reference(x, g, kind, layer.window, layer.stride, padding)
    y, dx = _value_and_vjp(layer)(x, g)
    assert y.shape == y_ref.shape and y.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(y), y_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dx), dx_ref, rtol=1e-6, atol=1e-6)


def test_textbook_4x4_max_pool_example():
    # The notes describe max pooling ("the o/p cell only focuses on the biggest number")
    # without numbers; this is the usual 4x4 -> 2x2 picture, and the notes' output size
    # ceil((n + 2p - f + 1) / s) with p = 0 equals floor((n - f) / s) + 1.
    x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], np.float32)
    y, state = fnn.MaxPool2D(2, 2).apply({}, {}, x[None, :, :, None])
    np.testing.assert_array_equal(np.asarray(y)[0, :, :, 0], [[6, 8], [3, 4]])
    assert state == {}
    for n, f, s in itertools.product(range(1, 9), range(1, 5), range(1, 4)):
        if f <= n:
            notes = int(np.ceil((n + 2 * 0 - f + 1) / s))
            shape = jax.eval_shape(fnn.MaxPool1D(f, s).apply, {}, {},
                                   jax.ShapeDtypeStruct((1, n, 1), jnp.float32))[0].shape
            assert shape == (1, notes, 1) == (1, (n - f) // s + 1, 1)


def test_avg_same_divides_by_real_elements_only():
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    layer = fnn.AvgPool2D(3, stride=1, padding="same")
    y, _ = layer.apply({}, {}, x)
    assert y.shape == (1, 4, 4, 1)
    assert float(y[0, 0, 0, 0]) == pytest.approx((0 + 1 + 4 + 5) / 4)        # corner: 4 real
    assert float(y[0, 0, 1, 0]) == pytest.approx((0 + 1 + 2 + 4 + 5 + 6) / 6)  # edge: 6 real
    assert float(y[0, 1, 1, 0]) == pytest.approx(np.mean([0, 1, 2, 4, 5, 6, 8, 9, 10]))
    # d sum(y) / d x[0, 0]: the windows around (0,0), (0,1), (1,0), (1,1) hold it.
    grad = jax.grad(lambda x: jnp.sum(layer.apply({}, {}, x)[0]))(x)
    assert float(grad[0, 0, 0, 0]) == pytest.approx(1 / 4 + 1 / 6 + 1 / 6 + 1 / 9)
    # Non-overlapping "same": a 5-long row pooled by 2 ends with a window of one real element.
    y1, _ = fnn.AvgPool1D(2, padding="same").apply({}, {}, jnp.array([[[1.], [3.], [2.], [4.], [7.]]]))
    np.testing.assert_allclose(np.asarray(y1)[0, :, 0], [2, 3, 7])


def _grads(f, x):
    """The gradient of ``sum(f(x) * [1, 2, 3, ...])``: each output's weight is its number."""
    def weighted(x):
        y = f(x)
        return jnp.sum(y * jnp.arange(1.0, 1.0 + y.size).reshape(y.shape))
    return np.asarray(jax.jit(jax.grad(weighted))(x))


@pytest.mark.parametrize("kind", ["max", "min"])
def test_ties_send_the_gradient_to_the_first_element_in_row_major_order(kind):
    # Ones everywhere: every element ties. Each window's gradient goes to its top-left
    # element, in the reshape path, the strided-slice path and XLA's reduce_window alike.
    x = jnp.ones((1, 4, 4, 1))
    fast = _grads(lambda x: _pool(x, kind, (2, 2), (2, 2), "valid"), x)
    slow = _grads(lambda x: _pool(x, kind, (2, 2), (2, 2), "valid", fast=False), x)
    op, init = (lax.max, -jnp.inf) if kind == "max" else (lax.min, jnp.inf)
    xla = _grads(lambda x: lax.reduce_window(x, init, op, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"), x)
    expected = np.zeros((4, 4))
    expected[::2, ::2] = [[1, 2], [3, 4]]
    for got in (fast, slow, xla):
        np.testing.assert_array_equal(got[0, :, :, 0], expected)
    # A tie between the 2nd and 3rd elements of a window (row-major): the 2nd wins.
    sign = 1 if kind == "max" else -1
    x2 = sign * jnp.array([[1., 5.], [5., 2.]]).reshape(1, 2, 2, 1)
    for fast_path in (True, False):
        g = jax.grad(lambda x: jnp.sum(_pool(x, kind, (2, 2), (2, 2), "valid", fast_path)))(x2)
        np.testing.assert_array_equal(np.asarray(g)[0, :, :, 0], [[0, 1], [0, 0]])
    # Overlapping windows: each window picks its own first element.
    g = jax.grad(lambda x: jnp.sum(_pool(x, kind, (2, 2), (1, 1), "valid")))(jnp.ones((1, 3, 3, 1)))
    np.testing.assert_array_equal(np.asarray(g)[0, :, :, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    _, ref = reference(np.ones((1, 3, 3, 1)), np.ones((1, 2, 2, 1)), kind, (2, 2), (1, 1), "valid")
    np.testing.assert_array_equal(np.asarray(g), ref)


@pytest.mark.parametrize("kind", ["max", "min", "avg"])
def test_reshape_path_slice_path_and_reduce_window_agree(kind):
    x = jnp.asarray(RNG.normal(size=(2, 9, 7, 3)), jnp.float32)
    op, init = {"max": (lax.max, -jnp.inf), "min": (lax.min, jnp.inf), "avg": (lax.add, 0.)}[kind]

    def xla(x):
        y = lax.reduce_window(x, init, op, (1, 3, 2, 1), (1, 3, 2, 1), "VALID")
        return y / 6 if kind == "avg" else y

    for padding in ("valid", "same"):
        fast = lambda x: _pool(x, kind, (3, 2), (3, 2), padding)  # noqa: E731
        slow = lambda x: _pool(x, kind, (3, 2), (3, 2), padding, fast=False)  # noqa: E731
        np.testing.assert_allclose(jax.jit(fast)(x), jax.jit(slow)(x), rtol=1e-6)
        np.testing.assert_allclose(_grads(fast, x), _grads(slow, x), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(fast)(x[:, :, :6]), jax.jit(xla)(x[:, :, :6]), rtol=1e-6)
    np.testing.assert_allclose(_grads(fast, x[:, :, :6]), _grads(xla, x[:, :, :6]), rtol=1e-6)


def test_integer_max_and_min_pooling_with_padding_that_never_wins():
    x = jnp.array([[-5, -7, -3, -9, -1]], jnp.int32)[..., None]
    y, _ = fnn.MaxPool1D(2, padding="same").apply({}, {}, x)
    assert y.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(y)[0, :, 0], [-5, -3, -1])
    y, _ = fnn.MinPool1D(3, stride=2, padding="same").apply({}, {}, -x)
    np.testing.assert_array_equal(np.asarray(y)[0, :, 0], [5, 3, 1])
    y, _ = fnn.GlobalMaxPool().apply({}, {}, x)
    np.testing.assert_array_equal(np.asarray(y), [[-1]])


def test_low_precision_dtype_is_kept():
    x = jnp.asarray(RNG.normal(size=(2, 6, 6, 3)), jnp.bfloat16)
    for layer in (fnn.MaxPool2D(2), fnn.AvgPool2D(3, 2, "same"), fnn.GlobalAvgPool()):
        assert layer.apply({}, {}, x)[0].dtype == jnp.bfloat16


@pytest.mark.parametrize("shape", [(2, 5, 3), (2, 4, 5, 3), (2, 3, 2, 4, 3)])
def test_global_pooling_shapes_values_and_first_tie(shape):
    x = RNG.normal(size=shape).astype(np.float32)
    axes = tuple(range(1, len(shape) - 1))
    for layer, ref in ((fnn.GlobalAvgPool(), x.mean(axes)), (fnn.GlobalMaxPool(), x.max(axes))):
        y, state = layer.apply({}, {}, x)
        np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-6)
        assert y.shape == (2, 3) and state == {}
        kept, _ = type(layer)(keepdims=True).apply({}, {}, x)
        assert kept.shape == (2,) + (1,) * len(axes) + (3,)
        np.testing.assert_allclose(np.asarray(kept).reshape(2, 3), ref, rtol=1e-6)
    grad = jax.grad(lambda x: jnp.sum(fnn.GlobalAvgPool().apply({}, {}, x)[0]))(x)
    np.testing.assert_allclose(np.asarray(grad), 1 / np.prod(shape[1:-1]), rtol=1e-6)
    ties = jnp.ones(shape).at[(1,) + (-1,) * (len(shape) - 1)].set(2.0)
    grad = np.asarray(jax.grad(lambda x: jnp.sum(fnn.GlobalMaxPool().apply({}, {}, x)[0]))(ties))
    expected = np.zeros(shape)
    expected[(0,) + (0,) * len(axes)] = 1             # batch 0: all tie -> the first position
    expected[(1,) + (0,) * len(axes) + (slice(0, 2),)] = 1
    expected[(1,) + (-1,) * len(axes) + (-1,)] = 1    # batch 1, channel 2: the unique max
    np.testing.assert_array_equal(grad, expected)


def test_constructor_normalises_and_validates():
    assert fnn.MaxPool2D(2) == fnn.MaxPool2D((2, 2), stride=2) == fnn.MaxPool2D([2, 2], None)
    assert fnn.MaxPool2D(2, padding="SAME").padding == "same"
    assert fnn.MaxPool2D(2) != fnn.AvgPool2D(2) and hash(fnn.MaxPool1D(3)) == hash(fnn.MaxPool1D(3))
    assert fnn.MaxPool2D((2, 3)).stride == (2, 3)
    for kwargs in ({"window": 0}, {"window": -1}, {"window": (2, 2, 2)}, {"window": 2.0},
                   {"window": True}, {"window": (2, 0)}, {"window": 2, "stride": (1,)},
                   {"window": 2, "stride": 0}, {"window": 2, "padding": "full"},
                   {"window": 2, "padding": 1}):
        with pytest.raises(LayerValueError, match="MaxPool2D"):
            fnn.MaxPool2D(**kwargs)
    with pytest.raises(LayerValueError, match="keepdims"):
        fnn.GlobalAvgPool(keepdims=1)


def test_bad_inputs_fail_at_trace_time_naming_shapes():
    with pytest.raises(LayerValueError, match=r"rank 4.*\(batch, height, width, channels\).*"
                       r"\(2, 6, 6\).*x\[\.\.\., None\]"):
        jax.eval_shape(fnn.MaxPool2D(2).apply, {}, {}, jnp.zeros((2, 6, 6)))
    with pytest.raises(LayerValueError, match=r"got rank 2, shape \(2, 6\)"):
        fnn.AvgPool2D(2).apply({}, {}, jnp.zeros((2, 6)))
    with pytest.raises(LayerValueError, match=r"rank 3.*\(batch, length, channels\)"):
        fnn.MaxPool1D(2).apply({}, {}, jnp.zeros((2, 6, 6, 1)))
    with pytest.raises(LayerValueError, match=r"window \(3, 3\) is larger.*\(2, 5\).*'same'"):
        fnn.MaxPool2D(3).apply({}, {}, jnp.zeros((1, 2, 5, 1)))
    assert fnn.MaxPool2D(3, padding="same").apply({}, {}, jnp.zeros((1, 2, 5, 1)))[0].shape \
        == (1, 1, 2, 1)
    with pytest.raises(LayerTypeError, match=r"floating-point.*int32"):
        fnn.AvgPool1D(2).apply({}, {}, jnp.zeros((1, 4, 1), jnp.int32))
    with pytest.raises(LayerTypeError, match=r"floating-point.*int32"):
        fnn.GlobalAvgPool().apply({}, {}, jnp.zeros((1, 4, 1), jnp.int32))
    with pytest.raises(LayerTypeError, match="bool"):
        fnn.MaxPool1D(2).apply({}, {}, jnp.zeros((1, 4, 1), bool))
    with pytest.raises(LayerValueError, match=r"rank >= 3.*\(4, 3\)"):
        fnn.GlobalMaxPool().apply({}, {}, jnp.zeros((4, 3)))
    model = fnn.Sequential([fnn.Flatten(), fnn.MaxPool1D(2)])
    with pytest.raises(LayerValueError, match=r"MaxPool1D at path '1'.*\(3, 8\)"):
        model.init(jax.random.key(0), jnp.zeros((3, 2, 4)))
