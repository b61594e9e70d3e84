"""fnn.activations against numpy float64 references, finite differences and the
notes' derivative formulas; stability at |x| = 1e4; get()."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import activations as A

SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805
_erf = np.vectorize(math.erf)


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


# numpy float64 references, written from the equations (not from fnn).
REFS = {
    "identity": lambda x: x,
    "sigmoid": _sig,
    "tanh": lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)),
    "relu": lambda x: np.maximum(0.0, x),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1.0),
    "selu": lambda x: SELU_S * np.where(x > 0, x, SELU_A * (np.exp(x) - 1.0)),
    "softplus": lambda x: np.log(1.0 + np.exp(x)),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
    "swish": lambda x: x * _sig(x),
    "silu": lambda x: x * _sig(x),
}
FUNCS = {name: A.get(name) for name in REFS if name != "gelu_tanh"}
FUNCS["gelu_tanh"] = lambda x: A.gelu(x, approximate=True)

# Limits of (value, derivative) at x = -1e4 and x = +1e4.
LIMITS = {
    "identity": ((-1e4, 1.0), (1e4, 1.0)), "sigmoid": ((0.0, 0.0), (1.0, 0.0)),
    "tanh": ((-1.0, 0.0), (1.0, 0.0)), "relu": ((0.0, 0.0), (1e4, 1.0)),
    "leaky_relu": ((-100.0, 0.01), (1e4, 1.0)), "elu": ((-1.0, 0.0), (1e4, 1.0)),
    "selu": ((-SELU_S * SELU_A, 0.0), (SELU_S * 1e4, SELU_S)),
    "softplus": ((0.0, 0.0), (1e4, 1.0)), "gelu": ((0.0, 0.0), (1e4, 1.0)),
    "gelu_tanh": ((0.0, 0.0), (1e4, 1.0)), "swish": ((0.0, 0.0), (1e4, 1.0)),
    "silu": ((0.0, 0.0), (1e4, 1.0)),
}
X = np.array([-3.0, -1.3, -0.2, 0.4, 1.7, 3.1])  # no kinks at 0


def _elementwise_grad(f, x):
    return jax.vmap(jax.grad(lambda v: f(v)))(jnp.asarray(x, jnp.float32))


@pytest.mark.parametrize("name", sorted(REFS))
def test_value_and_gradient_against_numpy(name):
    f, ref = FUNCS[name], REFS[name]
    y = f(jnp.asarray(X, jnp.float32))
    assert y.shape == X.shape and y.dtype == jnp.float32
    np.testing.assert_allclose(y, ref(X), rtol=1e-5, atol=1e-6)
    h = 1e-6
    fd = (ref(X + h) - ref(X - h)) / (2 * h)
    np.testing.assert_allclose(_elementwise_grad(f, X), fd, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_extreme_inputs_finite_with_right_limits(name):
    f = FUNCS[name]
    x = jnp.array([-1e4, 1e4], jnp.float32)
    y, g = f(x), _elementwise_grad(f, x)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(g))
    (v_lo, d_lo), (v_hi, d_hi) = LIMITS[name]
    np.testing.assert_allclose(y, [v_lo, v_hi], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g, [d_lo, d_hi], rtol=1e-6, atol=1e-6)


def test_notes_derivative_formulas():
    x = jnp.asarray(X, jnp.float32)
    s = _sig(X)
    np.testing.assert_allclose(_elementwise_grad(A.sigmoid, x), s * (1 - s), rtol=1e-5)
    t = np.tanh(X)
    np.testing.assert_allclose(_elementwise_grad(A.tanh, x), 1 - t**2, rtol=1e-5)
    np.testing.assert_allclose(_elementwise_grad(A.relu, x), (X > 0).astype(float))
    # sigmoid' lies in (0, 0.25]: the vanishing-gradient remark of the notes.
    assert float(jax.grad(A.sigmoid)(0.0)) == 0.25


def test_kinks_take_documented_one_sided_derivatives():
    assert float(jax.grad(A.relu)(0.0)) == 0.0
    assert float(jax.grad(A.leaky_relu)(0.0)) == 1.0
    assert float(jax.grad(A.elu)(0.0)) == 1.0
    assert float(jax.grad(lambda v: A.elu(v, 2.0))(0.0)) == 2.0


def test_leaky_relu_slope_and_elu_alpha():
    x = jnp.array([-2.0, 3.0])
    np.testing.assert_allclose(A.leaky_relu(x, negative_slope=0.2), [-0.4, 3.0], rtol=1e-6)
    np.testing.assert_allclose(A.elu(x, alpha=0.5), [0.5 * (np.exp(-2) - 1), 3.0], rtol=1e-6)
    np.testing.assert_allclose(A.swish(x, beta=2.0), np.array([-2.0, 3.0]) * _sig(2 * np.array([-2.0, 3.0])),
                               rtol=1e-6)


def _softmax_ref(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_softmax_and_log_softmax_against_numpy_and_jacobian():
    z = np.array([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]])
    p = _softmax_ref(z)
    np.testing.assert_allclose(A.softmax(jnp.asarray(z, jnp.float32)), p, rtol=1e-6)
    np.testing.assert_allclose(A.log_softmax(jnp.asarray(z, jnp.float32)), np.log(p), rtol=1e-5)
    np.testing.assert_allclose(A.softmax(jnp.asarray(z, jnp.float32), axis=0), _softmax_ref(z, 0),
                               rtol=1e-6)
    np.testing.assert_allclose(A.log_softmax(jnp.asarray(z, jnp.float32), axis=0),
                               np.log(_softmax_ref(z, 0)), rtol=1e-5)
    # Jacobians: dg_i/dz_j = g_i (delta_ij - g_j) and d log g_i / dz_j = delta_ij - g_j.
    v = z[0]
    g = _softmax_ref(v)
    np.testing.assert_allclose(jax.jacrev(A.softmax)(jnp.asarray(v, jnp.float32)),
                               np.diag(g) - np.outer(g, g), atol=1e-6)
    np.testing.assert_allclose(jax.jacrev(A.log_softmax)(jnp.asarray(v, jnp.float32)),
                               np.eye(3) - g[None, :], atol=1e-6)


def test_softmax_extreme_logits_finite():
    z = jnp.array([-1e4, 0.0, 1e4], jnp.float32)
    np.testing.assert_allclose(A.softmax(z), [0.0, 0.0, 1.0])
    np.testing.assert_allclose(A.log_softmax(z), [-2e4, -1e4, 0.0])
    for f in (A.softmax, A.log_softmax):
        jac = jax.jacrev(f)(z)
        assert np.all(np.isfinite(jac))
    np.testing.assert_allclose(jax.grad(lambda v: A.log_softmax(v)[0])(z), [1.0, 0.0, -1.0])


def test_softmax_two_classes_is_sigmoid_of_difference():
    z = jnp.array([[0.3, -1.2], [2.0, 5.0]])
    np.testing.assert_allclose(A.softmax(z)[:, 0], A.sigmoid(z[:, 0] - z[:, 1]), rtol=1e-6)


def test_prelu_per_feature_alpha_values_and_gradients():
    x = jnp.array([[-2.0, 3.0, -1.0], [1.0, -4.0, 0.5]])
    alpha = jnp.array([0.1, 0.2, 0.3])
    xn, an = np.asarray(x), np.asarray(alpha)
    np.testing.assert_allclose(A.prelu(x, alpha), np.where(xn >= 0, xn, an * xn), rtol=1e-6)
    np.testing.assert_allclose(A.prelu(x, 0.25), np.where(xn >= 0, xn, 0.25 * xn), rtol=1e-6)
    ga = jax.grad(lambda a: jnp.sum(A.prelu(x, a)))(alpha)
    np.testing.assert_allclose(ga, np.where(xn >= 0, 0.0, xn).sum(axis=0), rtol=1e-6)
    gx = jax.grad(lambda v: jnp.sum(A.prelu(v, alpha)))(x)
    np.testing.assert_allclose(gx, np.where(xn >= 0, 1.0, an * np.ones_like(xn)), rtol=1e-6)
    with pytest.raises(ValueError, match=r"prelu: alpha of shape \(4,\).*\(2, 3\)"):
        A.prelu(x, jnp.ones(4))


@pytest.mark.default_codegen
def test_jit_and_vmap_give_the_eager_values_without_recompiling():
    x = jnp.asarray(np.linspace(-3, 3, 8).reshape(2, 4), jnp.float32)
    traces = []

    @jax.jit
    def all_at_once(v):
        traces.append(1)
        return [f(v) for f in FUNCS.values()] + [A.softmax(v)]

    for got, f in zip(all_at_once(x), list(FUNCS.values()) + [A.softmax]):
        np.testing.assert_allclose(got, f(x), rtol=1e-6, atol=1e-7)
    all_at_once(x + 1.0)
    assert len(traces) == 1
    np.testing.assert_allclose(jax.vmap(A.softmax)(x), A.softmax(x), rtol=1e-6)


def test_get_names_aliases_and_errors():
    assert A.get("ReLU") is A.relu
    assert A.get(" leaky-relu ") is A.leaky_relu and A.get("LeakyReLU") is A.leaky_relu
    assert A.get("linear") is A.identity and A.get(None) is A.identity
    assert A.get("logistic") is A.sigmoid and A.get("SiLU") is A.silu
    assert A.get("log_softmax") is A.log_softmax and A.get("logsoftmax") is A.log_softmax
    fn = lambda x: x * 2  # noqa: E731
    assert A.get(fn) is fn
    with pytest.raises(ValueError, match="unknown activation 'relu6'.*known names:.*sigmoid.*tanh"):
        A.get("relu6")
    with pytest.raises(TypeError, match="activations.get"):
        A.get(3)
