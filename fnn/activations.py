"""Activation functions g(z), element-wise (softmax / log_softmax along an axis).

Every function is pure, works under ``jit``, ``grad`` and ``vmap``, and is
numerically stable: values and gradients stay finite (no NaN, no inf) for
inputs as large as ``|z| = 1e4`` in float32, with the right limits
(e.g. ``sigmoid(1e4) == 1`` with derivative ``0``).

Resolve a name to a function with `get`::

    >>> fnn.activations.get("ReLU") is fnn.activations.relu
    True
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from fnn.naming import resolve

__all__ = [
    "identity", "linear", "sigmoid", "tanh", "relu", "leaky_relu", "prelu",
    "elu", "selu", "softplus", "gelu", "swish", "silu", "softmax",
    "log_softmax", "get",
]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def identity(x: jax.Array) -> jax.Array:
    """Linear (identity) activation, the output activation for regression.

    Equation: ``g(z) = z``; derivative ``g'(z) = 1``.

    Args:
      x: input array.

    Returns:
      ``x`` as a JAX array.

    Examples:
      >>> fnn.activations.identity(jnp.array([-2.0, 3.0])).tolist()
      [-2.0000, 3.0000]
    """
    return jnp.asarray(x)


linear = identity


def sigmoid(x: jax.Array) -> jax.Array:
    """Logistic sigmoid, the output activation for binary classification.

    Equation: ``g(z) = 1 / (1 + exp(-z))``; derivative ``g'(z) = g(z) (1 - g(z))``.
    Computed with ``lax.logistic`` (stable: never evaluates ``exp`` of a large
    positive number), so ``sigmoid(-1e4) == 0`` and ``sigmoid(1e4) == 1``.

    Args:
      x: input array (logits).

    Returns:
      values in ``[0, 1]``, same shape as ``x``.

    Examples:
      >>> round(float(fnn.activations.sigmoid(0.38)), 4)
      0.5939
    """
    return jax.nn.sigmoid(x)


def tanh(x: jax.Array) -> jax.Array:
    """Hyperbolic tangent.

    Equation: ``g(z) = (e^z - e^-z) / (e^z + e^-z)``; derivative ``g'(z) = 1 - g(z)^2``.

    Args:
      x: input array.

    Returns:
      values in ``[-1, 1]``, same shape as ``x``.

    Examples:
      >>> round(float(fnn.activations.tanh(0.5)), 4)
      0.4621
    """
    return jnp.tanh(x)


def relu(x: jax.Array) -> jax.Array:
    """Rectified linear unit.

    Equation: ``g(z) = max(0, z)``; derivative ``g'(z) = 1`` if ``z > 0`` else ``0``
    (the derivative at exactly 0 is taken as 0).

    Args:
      x: input array.

    Returns:
      same shape as ``x``.

    Examples:
      >>> fnn.activations.relu(jnp.array([-1.0, 0.0, 2.0])).tolist()
      [0.0000, 0.0000, 2.0000]
    """
    x = jnp.asarray(x)
    return jnp.where(x > 0, x, jnp.zeros_like(x))


def leaky_relu(x: jax.Array, negative_slope: float = 0.01) -> jax.Array:
    """Leaky ReLU: a small slope for negative inputs so the unit never dies.

    Equation: ``g(z) = z`` if ``z >= 0`` else ``a z`` with ``a = negative_slope``;
    derivative ``g'(z) = 1`` if ``z >= 0`` else ``a``.

    Args:
      x: input array.
      negative_slope: the slope ``a`` for ``z < 0`` (default 0.01).

    Returns:
      same shape as ``x``.

    Examples:
      >>> fnn.activations.leaky_relu(jnp.array([-2.0, 3.0]), 0.1).tolist()
      [-0.2000, 3.0000]
    """
    x = jnp.asarray(x)
    return jnp.where(x >= 0, x, negative_slope * x)


def prelu(x: jax.Array, alpha: jax.Array) -> jax.Array:
    """Parametric ReLU (functional form): leaky ReLU with a given (learnable) slope.

    Equation: ``g(z) = z`` if ``z >= 0`` else ``alpha z``; derivatives
    ``dg/dz = 1`` if ``z >= 0`` else ``alpha`` and ``dg/dalpha = 0`` if ``z >= 0``
    else ``z``. The learnable layer is `fnn.PReLU`.

    Args:
      x: input array of shape ``(..., d1, ..., dk)``.
      alpha: slope(s): a scalar, or an array matching the trailing axes of ``x``
        (e.g. shape ``(features,)`` for a per-feature slope). It is broadcast
        explicitly against the trailing axes.

    Returns:
      same shape as ``x``.

    Raises:
      ValueError: ``alpha`` has more axes than ``x`` or its shape does not
        match the trailing axes of ``x``.

    Examples:
      >>> fnn.activations.prelu(jnp.array([[-2.0, -2.0]]), jnp.array([0.5, 0.25])).tolist()
      [[-1.0000, -0.5000]]
    """
    x = jnp.asarray(x)
    alpha = jnp.asarray(alpha)
    if alpha.ndim > x.ndim or (alpha.ndim and any(
            a not in (1, d) for a, d in zip(alpha.shape, x.shape[x.ndim - alpha.ndim:]))):
        raise ValueError(
            f"prelu: alpha of shape {alpha.shape} must be a scalar or match the trailing "
            f"axes of x, got x of shape {x.shape}")
    alpha = jnp.reshape(alpha, (1,) * (x.ndim - alpha.ndim) + alpha.shape)
    return jnp.where(x >= 0, x, alpha * x)


def elu(x: jax.Array, alpha: float = 1.0) -> jax.Array:
    """Exponential linear unit.

    Equation: ``g(z) = z`` if ``z > 0`` else ``alpha (e^z - 1)``; derivative
    ``g'(z) = 1`` if ``z > 0`` else ``alpha e^z`` (= ``g(z) + alpha``).
    The exponential is evaluated on ``z`` masked to 0 where ``z > 0``, so large
    ``z`` never overflows (and the derivative at 0 is the left one, ``alpha``).

    Args:
      x: input array.
      alpha: saturation value ``-alpha`` for ``z -> -inf`` (default 1.0).

    Returns:
      same shape as ``x``.

    Examples:
      >>> round(float(fnn.activations.elu(-1.0)), 4)
      -0.6321
    """
    x = jnp.asarray(x)
    return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.where(x > 0, jnp.zeros_like(x), x)))


def selu(x: jax.Array) -> jax.Array:
    """Scaled ELU (self-normalising networks, Klambauer et al. 2017).

    Equation: ``g(z) = s z`` if ``z > 0`` else ``s a (e^z - 1)`` with
    ``s = 1.0507009873554805`` and ``a = 1.6732632423543772``; derivative
    ``g'(z) = s`` if ``z > 0`` else ``s a e^z``.

    Args:
      x: input array.

    Returns:
      same shape as ``x``.

    Examples:
      >>> round(float(fnn.activations.selu(1.0)), 4)
      1.0507
    """
    return SELU_SCALE * elu(x, SELU_ALPHA)


def softplus(x: jax.Array) -> jax.Array:
    """Softplus, a smooth ReLU.

    Equation: ``g(z) = log(1 + e^z)``; derivative ``g'(z) = sigmoid(z)``.
    Computed as ``logaddexp(z, 0)`` so ``softplus(1e4) == 1e4`` (no overflow).

    Args:
      x: input array.

    Returns:
      positive values, same shape as ``x``.

    Examples:
      >>> round(float(fnn.activations.softplus(0.0)), 4)
      0.6931
    """
    return jnp.logaddexp(x, 0.0)


def gelu(x: jax.Array, approximate: bool = False) -> jax.Array:
    """Gaussian error linear unit (Hendrycks & Gimpel 2016).

    Exact form (default, ``approximate=False``, as in PyTorch; note that
    ``jax.nn.gelu`` defaults to the tanh form):
    ``g(z) = z Phi(z) = z/2 (1 + erf(z / sqrt(2)))``, derivative
    ``g'(z) = Phi(z) + z phi(z)`` with ``phi(z) = exp(-z^2/2) / sqrt(2 pi)``.
    Tanh form (``approximate=True``):
    ``g(z) = z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))``.

    Args:
      x: input array.
      approximate: use the tanh approximation.

    Returns:
      same shape as ``x``.

    Examples:
      >>> round(float(fnn.activations.gelu(1.0)), 4)
      0.8413
    """
    x = jnp.asarray(x)
    if approximate:
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + jnp.tanh(inner))
    return 0.5 * x * (1.0 + jax.lax.erf(x / math.sqrt(2.0)))


def swish(x: jax.Array, beta: float = 1.0) -> jax.Array:
    """Swish; with ``beta = 1`` it is SiLU (sigmoid-weighted linear unit).

    Equation: ``g(z) = z sigmoid(beta z)``; derivative
    ``g'(z) = sigmoid(beta z) + beta z sigmoid(beta z) (1 - sigmoid(beta z))``.

    Args:
      x: input array.
      beta: slope inside the sigmoid (default 1.0).

    Returns:
      same shape as ``x``.

    Examples:
      >>> round(float(fnn.activations.swish(1.0)), 4)
      0.7311
    """
    x = jnp.asarray(x)
    return x * jax.nn.sigmoid(beta * x)


def silu(x: jax.Array) -> jax.Array:
    """SiLU, ``swish`` with ``beta = 1``: ``g(z) = z sigmoid(z)``.

    Derivative ``g'(z) = sigmoid(z) (1 + z (1 - sigmoid(z)))``.

    Args:
      x: input array.

    Returns:
      same shape as ``x``.

    Examples:
      >>> round(float(fnn.activations.silu(-1.0)), 4)
      -0.2689
    """
    return swish(x, 1.0)


def softmax(x: jax.Array, axis: int = -1) -> jax.Array:
    """Softmax along ``axis``, the output activation for multiclass problems.

    Equation: ``g(z)_i = exp(z_i) / sum_j exp(z_j)``; Jacobian
    ``dg_i/dz_j = g_i (delta_ij - g_j)``. Computed as ``exp(z - max z)`` over
    its sum, so it never overflows; for two classes
    ``softmax([z1, z2])_1 = sigmoid(z1 - z2)``.

    Args:
      x: logits.
      axis: the class axis (default the last).

    Returns:
      probabilities summing to 1 along ``axis``, same shape as ``x``.

    Examples:
      >>> fnn.activations.softmax(jnp.array([0.0, 0.0])).tolist()
      [0.5000, 0.5000]
    """
    x = jnp.asarray(x)
    shifted = x - jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    e = jnp.exp(shifted)
    return e / jnp.sum(e, axis=axis, keepdims=True)


def log_softmax(x: jax.Array, axis: int = -1) -> jax.Array:
    """Logarithm of `softmax`, computed stably.

    Equation: ``g(z)_i = z_i - log sum_j exp(z_j)``
    ``= (z_i - m) - log sum_j exp(z_j - m)`` with ``m = max_j z_j``;
    Jacobian ``dg_i/dz_j = delta_ij - softmax(z)_j``.

    Args:
      x: logits.
      axis: the class axis (default the last).

    Returns:
      log-probabilities (all ``<= 0``), same shape as ``x``.

    Examples:
      >>> round(float(fnn.activations.log_softmax(jnp.array([0.0, 0.0]))[0]), 4)
      -0.6931
    """
    x = jnp.asarray(x)
    shifted = x - jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


_REGISTRY: dict[str, Callable[..., jax.Array]] = {
    "identity": identity, "linear": linear, "sigmoid": sigmoid, "tanh": tanh,
    "relu": relu, "leaky_relu": leaky_relu, "elu": elu, "selu": selu,
    "softplus": softplus, "gelu": gelu, "swish": swish, "silu": silu,
    "softmax": softmax, "log_softmax": log_softmax,
}
_ALIASES = {"logistic": "sigmoid", "leakyrelu": "leaky_relu", "logsoftmax": "log_softmax",
            "none": "identity"}


def get(name_or_callable: str | Callable[..., jax.Array] | None) -> Callable[..., jax.Array]:
    """Resolve an activation name (or pass a callable through).

    Names are case-insensitive; ``-`` and spaces count as ``_``. Known names:
    identity, linear, none, sigmoid, logistic, tanh, relu, leaky_relu
    (leakyrelu), elu, selu, softplus, gelu, swish, silu, softmax, log_softmax
    (logsoftmax). ``None`` gives `identity`. ``prelu`` is not listed
    because it needs its ``alpha`` argument: use `fnn.PReLU`.

    Args:
      name_or_callable: a name, ``None``, or any callable (returned unchanged).

    Returns:
      the activation function.

    Raises:
      ValueError: unknown name (the message lists the known names).
      TypeError: neither a string, ``None`` nor a callable.

    Examples:
      >>> fnn.activations.get("Leaky-ReLU") is fnn.activations.leaky_relu
      True
    """
    if name_or_callable is None:
        return identity
    return resolve("activations", "activation", name_or_callable, _REGISTRY, _ALIASES)
