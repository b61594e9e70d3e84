"""Loss functions ``loss(predictions, targets, *, reduction="mean")``.

The notes distinguish the *loss* of one example from the *cost* of a batch
(``J = (1/m) sum_i L_i``). Every fnn loss first computes one value per
example and then reduces over the batch:

- ``reduction="mean"``: the cost ``(1/m) sum_i L_i`` (default),
- ``reduction="sum"``: ``sum_i L_i``,
- ``reduction="none"``: the per-example losses ``L_i``.

Per-example values:

- regression losses (mse, mae, huber) average over the non-batch axes, so
  ``mse(p, t)`` is the mean of all squared errors whatever the shape; for a
  1-D input every element is an example; the batch axis is axis 0.
- cross-entropies sum over the class axis (the last axis), which is part of
  their definition; every other axis is a batch axis. ``binary_cross_entropy*``
  sums over the non-batch axes (independent binary labels), batch axis 0.

Losses are computed in at least float32 (bf16/fp16 predictions of a
mixed-precision model are upcast). Predictions and targets must have the same
shape: ``(n,)`` against ``(n, 1)`` raises a ``ValueError`` instead of silently
broadcasting to ``(n, n)``.

Output activation + loss (the notes' table): binary -> sigmoid + binary
cross-entropy; multiclass -> softmax + (sparse) categorical cross-entropy;
regression -> linear + MSE/MAE/Huber/RMSE. Prefer the forms taking logits
(``*_with_logits``, ``softmax_cross_entropy``, ``sparse_softmax_cross_entropy``):
they stay exact where probabilities saturate to 0 or 1.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from fnn.activations import log_softmax
from fnn.naming import resolve
from fnn.preprocessing import check_labels, is_concrete

__all__ = [
    "mse", "mae", "rmse", "huber", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "categorical_cross_entropy",
    "softmax_cross_entropy", "sparse_softmax_cross_entropy", "get", "output_kind",
]

_REDUCTIONS = ("mean", "sum", "none")
EPSILON = 1e-7
"""Default clipping of probabilities in the probability-input cross-entropies."""


def _float(x) -> jax.Array:
    """At least float32: integers and half precision (bf16/fp16) are upcast."""
    x = jnp.asarray(x)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32)) if jnp.issubdtype(
        x.dtype, jnp.floating) else x.astype(jnp.float32)


def _check_reduction(name: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: unknown reduction {reduction!r}; expected one of "
                         f"{', '.join(map(repr, _REDUCTIONS))}")


def _prepare(name: str, predictions, targets, reduction: str, min_ndim: int = 0):
    """Check the reduction and shapes; return float predictions and targets."""
    _check_reduction(name, reduction)
    p, t = _float(predictions), _float(targets)
    if p.shape != t.shape:
        raise ValueError(f"{name}: predictions shape {p.shape} and targets shape {t.shape} "
                         "differ (no broadcasting; reshape one of them)")
    if p.ndim < min_ndim:
        raise ValueError(f"{name}: expected predictions with a class axis (ndim >= "
                         f"{min_ndim}), got shape {p.shape}")
    return p, t.astype(p.dtype)


def _per_example(x: jax.Array, how: Callable) -> jax.Array:
    """Reduce all axes but the first (axis 0 is the batch axis)."""
    return x if x.ndim <= 1 else how(x, axis=tuple(range(1, x.ndim)))


def _reduce(per_example: jax.Array, reduction: str) -> jax.Array:
    if reduction == "mean":
        return jnp.mean(per_example)
    if reduction == "sum":
        return jnp.sum(per_example)
    return per_example


def _mean_squared_error(name: str, predictions, targets, reduction: str) -> jax.Array:
    p, t = _prepare(name, predictions, targets, reduction)
    return _reduce(_per_example(jnp.square(p - t), jnp.mean), reduction)


def mse(predictions, targets, *, reduction: str = "mean") -> jax.Array:
    """Mean squared error.

    Equation: per example ``L_i = mean_j (yhat_ij - y_ij)^2`` (mean over the
    non-batch axes); cost ``J = (1/m) sum_i L_i``; ``dL/dyhat = 2 (yhat - y) / d``.
    (Some notes use ``1/2 (y - yhat)^2``: that is ``mse / 2``.)

    Args:
      predictions: predicted values ``yhat``, batch axis first.
      targets: true values ``y``, same shape.
      reduction: "mean" | "sum" | "none".

    Returns:
      a scalar, or shape ``(m,)`` for "none".

    Examples:
      >>> float(fnn.losses.mse(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0])))
      2.5000
    """
    return _mean_squared_error("mse", predictions, targets, reduction)


def mae(predictions, targets, *, reduction: str = "mean") -> jax.Array:
    """Mean absolute error (robust to outliers).

    Equation: per example ``L_i = mean_j |yhat_ij - y_ij|``; cost
    ``J = (1/m) sum_i L_i``; ``dL/dyhat = sign(yhat - y) / d`` (0 at equality).

    Args:
      predictions: predicted values, batch axis first.
      targets: true values, same shape.
      reduction: "mean" | "sum" | "none".

    Returns:
      a scalar, or shape ``(m,)`` for "none".

    Examples:
      >>> float(fnn.losses.mae(jnp.array([1.0, -3.0]), jnp.array([0.0, 0.0])))
      2.0000
    """
    p, t = _prepare("mae", predictions, targets, reduction)
    e = p - t
    return _reduce(_per_example(e * jnp.sign(e), jnp.mean), reduction)  # |e|, d/de = sign(e)


def rmse(predictions, targets, *, reduction: str = "mean") -> jax.Array:
    """Root mean squared error: the square root applied after the MSE reduction.

    Equation: ``rmse(reduction=r) = sqrt(mse(reduction=r))``. So "mean" gives
    the notes' cost ``sqrt((1/m) sum_i L_i)`` with ``L_i`` the per-example
    mean squared error, "none" gives the per-example ``sqrt(L_i)`` (for 1-D
    inputs ``|yhat_i - y_i|``) and "sum" gives ``sqrt(sum_i L_i)``. Note that
    "mean" is not the mean of the "none" values. Derivative
    ``d sqrt(s)/ds = 1 / (2 sqrt(s))``, taken as 0 where ``s == 0`` (a perfect
    fit) so the gradient is never NaN.

    Args:
      predictions: predicted values, batch axis first.
      targets: true values, same shape.
      reduction: "mean" | "sum" | "none".

    Returns:
      a scalar, or shape ``(m,)`` for "none".

    Examples:
      >>> float(fnn.losses.rmse(jnp.array([3.0, 4.0]), jnp.array([0.0, 0.0])))
      3.5355...
    """
    s = _mean_squared_error("rmse", predictions, targets, reduction)
    positive = s > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, s, jnp.ones_like(s))),
                     jnp.zeros_like(s))


def huber(predictions, targets, *, delta: float = 1.0, reduction: str = "mean") -> jax.Array:
    """Huber loss: quadratic for small errors, linear for large ones.

    Equation, with ``e = yhat - y``: ``h(e) = 1/2 e^2`` if ``|e| <= delta``
    else ``delta |e| - 1/2 delta^2``; per example ``L_i = mean_j h(e_ij)``;
    derivative ``h'(e) = e`` if ``|e| <= delta`` else ``delta sign(e)``.

    Args:
      predictions: predicted values, batch axis first.
      targets: true values, same shape.
      delta: the threshold between the quadratic and the linear part (> 0).
      reduction: "mean" | "sum" | "none".

    Returns:
      a scalar, or shape ``(m,)`` for "none".

    Raises:
      ValueError: ``delta <= 0`` (when it is a concrete number); shapes differ.

    Examples:
      >>> fnn.losses.huber(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none").tolist()
      [0.1250, 2.5000]
    """
    p, t = _prepare("huber", predictions, targets, reduction)
    if is_concrete(delta) and not np.all(np.asarray(delta) > 0):
        raise ValueError(f"huber: delta must be > 0, got {delta}")
    e = jnp.abs(p - t)
    h = jnp.where(e <= delta, 0.5 * jnp.square(e), delta * e - 0.5 * delta * delta)
    return _reduce(_per_example(h, jnp.mean), reduction)


def binary_cross_entropy(predictions, targets, *, reduction: str = "mean",
                         eps: float = EPSILON) -> jax.Array:
    """Binary cross-entropy of probabilities (log loss of logistic regression).

    Equation: ``L = -[y log(yhat) + (1 - y) log(1 - yhat)]`` with ``yhat``
    clipped to ``[eps, 1 - eps]`` (so ``log 0`` never occurs; the gradient is
    0 where ``yhat`` lies outside that range). Summed over the non-batch axes
    (e.g. the single column of an ``(m, 1)`` output). With
    ``yhat = sigmoid(z)``: ``dL/dz = yhat - y``. Prefer
    `binary_cross_entropy_with_logits` on logits: it needs no clipping.

    Args:
      predictions: probabilities ``yhat`` in ``[0, 1]``, batch axis first.
      targets: labels ``y`` in ``{0, 1}`` (or soft labels in ``[0, 1]``), same shape.
      reduction: "mean" | "sum" | "none".
      eps: the clipping margin (default 1e-7).

    Returns:
      a scalar, or shape ``(m,)`` for "none".

    Examples:
      >>> round(float(fnn.losses.binary_cross_entropy(jnp.array([0.5939]), jnp.array([1.0]))), 4)
      0.5210
    """
    p, t = _prepare("binary_cross_entropy", predictions, targets, reduction)
    p = jnp.clip(p, eps, 1.0 - eps)
    per = -(t * jnp.log(p) + (1.0 - t) * jnp.log1p(-p))
    return _reduce(_per_example(per, jnp.sum), reduction)


def binary_cross_entropy_with_logits(predictions, targets, *,
                                     reduction: str = "mean") -> jax.Array:
    """Binary cross-entropy of logits ``z`` (sigmoid folded in, numerically stable).

    Equation: ``L = -[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))]``
    ``= max(z, 0) - z y + log(1 + exp(-|z|))`` (computed as
    ``logaddexp(z, 0) - z y``, whose derivative is exact also at ``z = 0``);
    derivative ``dL/dz = sigmoid(z) - y``. Finite for any ``z`` (e.g. ``|z| = 1e4``).
    Summed over the non-batch axes.

    Args:
      predictions: logits ``z``, batch axis first.
      targets: labels ``y`` in ``{0, 1}`` (or soft labels), same shape.
      reduction: "mean" | "sum" | "none".

    Returns:
      a scalar, or shape ``(m,)`` for "none".

    Examples:
      >>> loss = fnn.losses.binary_cross_entropy_with_logits(jnp.array([0.38]), jnp.array([1.0]))
      >>> round(float(loss), 4)
      0.5210
    """
    z, y = _prepare("binary_cross_entropy_with_logits", predictions, targets, reduction)
    per = jnp.logaddexp(z, 0.0) - z * y   # logaddexp(z, 0) = max(z, 0) + log1p(exp(-|z|))
    return _reduce(_per_example(per, jnp.sum), reduction)


def categorical_cross_entropy(predictions, targets, *, reduction: str = "mean",
                              eps: float = EPSILON) -> jax.Array:
    """Categorical cross-entropy of class probabilities against one-hot targets.

    Equation: ``L_i = -sum_j y_ij log(yhat_ij)`` over the class axis (last),
    with ``yhat`` clipped to ``[eps, 1]``. With ``yhat = softmax(z)``:
    ``dL/dz = yhat - y``. Prefer `softmax_cross_entropy` on logits.

    Args:
      predictions: probabilities, shape ``(..., K)`` (e.g. softmax outputs).
      targets: one-hot (or soft) labels, same shape.
      reduction: "mean" | "sum" | "none".
      eps: the clipping margin (default 1e-7).

    Returns:
      a scalar, or shape ``predictions.shape[:-1]`` for "none".

    Examples:
      >>> round(float(fnn.losses.categorical_cross_entropy(
      ...     jnp.array([[0.2, 0.7, 0.1]]), jnp.array([[0.0, 1.0, 0.0]]))), 4)
      0.3567
    """
    p, t = _prepare("categorical_cross_entropy", predictions, targets, reduction, 1)
    per = -jnp.sum(t * jnp.log(jnp.clip(p, eps, 1.0)), axis=-1)
    return _reduce(per, reduction)


def softmax_cross_entropy(predictions, targets, *, reduction: str = "mean") -> jax.Array:
    """Cross-entropy of logits against one-hot targets (softmax folded in, stable).

    Equation: ``L_i = -sum_j y_ij log softmax(z_i)_j
    = logsumexp(z_i) - sum_j y_ij z_ij`` (for one-hot ``y``), computed with
    `fnn.activations.log_softmax`; derivative ``dL_i/dz_i = softmax(z_i) - y_i``
    (the notes' ``dZ = Yhat - Y``; divided by ``m`` for the mean).

    Args:
      predictions: logits, shape ``(..., K)``.
      targets: one-hot (or soft) labels, same shape.
      reduction: "mean" | "sum" | "none".

    Returns:
      a scalar, or shape ``predictions.shape[:-1]`` for "none".

    Examples:
      >>> round(float(fnn.losses.softmax_cross_entropy(
      ...     jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]]))), 4)
      0.6931
    """
    z, y = _prepare("softmax_cross_entropy", predictions, targets, reduction, 1)
    return _reduce(-jnp.sum(y * log_softmax(z, axis=-1), axis=-1), reduction)


def sparse_softmax_cross_entropy(predictions, targets, *, reduction: str = "mean") -> jax.Array:
    """Cross-entropy of logits against integer class labels (stable).

    Equation: ``L_i = -log softmax(z_i)_{y_i} = logsumexp(z_i) - z_{i, y_i}``;
    derivative ``dL_i/dz_i = softmax(z_i) - onehot(y_i)``. Same value as
    `softmax_cross_entropy` with ``one_hot(y)``, without building it.

    Labels are checked when they are concrete (numpy or JAX arrays, lists):
    an out-of-range label raises ``ValueError``. Under ``jit``/``vmap`` they are
    traced and cannot be checked; an out-of-range label then selects no class,
    so that example's loss and gradient are 0 (no NaN), while it still counts
    in the ``1/m`` of "mean".

    Args:
      predictions: logits, shape ``batch_shape + (K,)``.
      targets: integer labels in ``[0, K)``, shape ``batch_shape``.
      reduction: "mean" | "sum" | "none".

    Returns:
      a scalar, or shape ``batch_shape`` for "none".

    Raises:
      TypeError: labels are not integers.
      ValueError: label shape is not the logits' batch shape; a concrete label is
        out of range; unknown reduction.

    Examples:
      >>> round(float(fnn.losses.sparse_softmax_cross_entropy(
      ...     jnp.array([[0.0, 0.0]]), jnp.array([0]))), 4)
      0.6931
    """
    name = "sparse_softmax_cross_entropy"
    _check_reduction(name, reduction)
    z = _float(predictions)
    labels = check_labels(name, targets)  # integer dtype (TypeError otherwise)
    if z.ndim < 1 or labels.shape != z.shape[:-1]:
        raise ValueError(f"{name}: targets shape {labels.shape} must equal the predictions "
                         f"shape without its class axis; predictions shape {z.shape}")
    num_classes = z.shape[-1]
    labels = check_labels(name, targets, num_classes)
    classes = jnp.arange(num_classes).reshape((1,) * (z.ndim - 1) + (num_classes,))
    selected = labels[..., None] == classes
    per = -jnp.sum(jnp.where(selected, log_softmax(z, axis=-1), 0.0), axis=-1)
    return _reduce(per, reduction)


_REGISTRY = {
    "mse": mse, "mae": mae, "rmse": rmse, "huber": huber,
    "binary_cross_entropy": binary_cross_entropy,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "categorical_cross_entropy": categorical_cross_entropy,
    "softmax_cross_entropy": softmax_cross_entropy,
    "sparse_softmax_cross_entropy": sparse_softmax_cross_entropy,
}
_ALIASES = {
    "mean_squared_error": "mse", "mean_absolute_error": "mae",
    "root_mean_squared_error": "rmse", "huber_loss": "huber",
    "bce": "binary_cross_entropy", "binary_crossentropy": "binary_cross_entropy",
    "bce_with_logits": "binary_cross_entropy_with_logits",
    "categorical_crossentropy": "categorical_cross_entropy",
    "cce": "categorical_cross_entropy",
}


def is_builtin(loss: Any) -> bool:
    """Whether ``loss`` is one of fnn's own loss functions (not a user's callable).

    Examples:
      >>> fnn.losses.is_builtin(fnn.losses.mse), fnn.losses.is_builtin(lambda p, y: 0.0)
      (True, False)
    """
    return any(loss is fn for fn in _REGISTRY.values())


def get(name_or_callable) -> Callable[..., jax.Array]:
    """Resolve a loss name (or pass a callable through).

    Names are case-insensitive (``-`` and spaces count as ``_``): the function
    names of this module and aliases such as mean_squared_error, bce, cce.

    Args:
      name_or_callable: a name or a callable ``loss(predictions, targets)``.

    Returns:
      the loss function.

    Raises:
      ValueError: unknown name (the message lists the known names).
      TypeError: neither a string nor a callable.

    Examples:
      >>> fnn.losses.get("MSE") is fnn.losses.mse
      True
    """
    return resolve("losses", "loss", name_or_callable, _REGISTRY, _ALIASES)


_OUTPUT_KINDS = (
    (binary_cross_entropy_with_logits, "logits"), (softmax_cross_entropy, "logits"),
    (sparse_softmax_cross_entropy, "logits"),
    (binary_cross_entropy, "probabilities"), (categorical_cross_entropy, "probabilities"),
    (mse, None), (mae, None), (rmse, None), (huber, None),
)
_KINDS = ("logits", "probabilities", None)
_MISSING = object()


def output_kind(loss: Any) -> str | None:
    """What a loss expects as predictions: ``"logits"``, ``"probabilities"`` or ``None``.

    A training loop uses it to tell the classification metrics how to
    threshold binary outputs (`fnn.metrics.with_from_logits`: logits at
    0, probabilities at 0.5) instead of guessing from the values.

    - ``"logits"``: binary_cross_entropy_with_logits, softmax_cross_entropy,
      sparse_softmax_cross_entropy;
    - ``"probabilities"``: binary_cross_entropy, categorical_cross_entropy;
    - ``None``: the regression losses (mse, mae, rmse, huber) and any other
      callable, unless it declares its kind with an attribute
      ``output_kind = "logits"`` (or ``"probabilities"``, or ``None``).

    A ``functools.partial`` is looked through to the function it wraps (an
    ``output_kind`` attribute on the partial itself comes first).

    Args:
      loss: a loss name (resolved with `get`) or a callable.

    Returns:
      ``"logits"``, ``"probabilities"`` or ``None`` (unknown, or not a
      classification loss).

    Raises:
      ValueError: an unknown name; a declared ``output_kind`` that is not one
        of the three values.
      TypeError: neither a string nor a callable.

    Examples:
      >>> fnn.losses.output_kind("bce_with_logits"), fnn.losses.output_kind("bce")
      ('logits', 'probabilities')
      >>> print(fnn.losses.output_kind("mse"))
      None
      >>> def hinge(z, y):
      ...     return jnp.mean(jnp.maximum(0.0, 1.0 - (2 * y - 1) * z))
      >>> hinge.output_kind = "logits"
      >>> fnn.losses.output_kind(hinge)
      'logits'
    """
    fn = get(loss)
    layer = fn
    while True:
        declared = getattr(layer, "output_kind", _MISSING)
        if declared is not _MISSING:
            if not (declared is None or (isinstance(declared, str) and declared in _KINDS)):
                raise ValueError(
                    f"losses.output_kind: loss {getattr(layer, '__name__', type(layer).__name__)} "
                    f"declares output_kind={declared!r}; expected 'logits', 'probabilities' "
                    "or None")
            return declared
        for known, kind in _OUTPUT_KINDS:
            if layer is known:
                return kind
        if not isinstance(layer, functools.partial):
            return None
        layer = layer.func
