"""Input preprocessing: one-hot encoding and standardisation.

Standardisation follows the notes: the mean and variance come from the
*training* set and the same numbers are applied to the dev and test sets::

    >>> train = jnp.array([[0.0, 10.0], [2.0, 30.0]])
    >>> scaler = fnn.preprocessing.fit_standardizer(train)
    >>> scaler.transform(jnp.array([[1.0, 20.0]])).tolist()   # a dev example
    [[0.0000, 0.0000]]
"""

from __future__ import annotations

import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["one_hot", "check_labels", "Standardizer", "fit_standardizer", "standardize",
           "is_concrete"]


def is_concrete(x) -> bool:
    """True if ``x`` holds actual values (numpy/JAX array or Python data), not a tracer.

    Value checks (e.g. label ranges) are only possible on concrete inputs; under
    ``jit``/``vmap``/``grad`` the inputs are tracers and such checks are skipped.

    Args:
      x: anything.

    Returns:
      ``False`` for a JAX tracer, else ``True``.

    Examples:
      >>> fnn.preprocessing.is_concrete(jnp.ones(2)), jax.jit(fnn.preprocessing.is_concrete)(1.0)
      (True, Array(False, dtype=bool))
    """
    return not isinstance(x, jax.core.Tracer)


def one_hot(labels, num_classes: int, dtype=jnp.float32) -> jax.Array:
    """One-hot encode integer class labels.

    Equation: ``y[..., j] = 1`` if ``labels[...] == j`` else ``0``, for
    ``j = 0 .. num_classes - 1``.

    Args:
      labels: integer array of any shape, values in ``[0, num_classes)``.
      num_classes: the number of classes ``K`` (a Python int; static under jit).
      dtype: dtype of the result (default float32).

    Returns:
      array of shape ``labels.shape + (num_classes,)``.

    Raises:
      TypeError: ``labels`` are not integers, or ``num_classes`` is not an int.
      ValueError: a concrete label is outside ``[0, num_classes)``. Under
        ``jit`` labels are traced and cannot be checked: an out-of-range label
        then encodes as an all-zero row.

    Examples:
      >>> fnn.preprocessing.one_hot(jnp.array([0, 2]), 3).tolist()
      [[1.0000, 0.0000, 0.0000], [0.0000, 0.0000, 1.0000]]
    """
    try:
        num_classes = operator.index(num_classes)
    except TypeError:
        raise TypeError("one_hot: num_classes must be a Python int (static), got "
                        f"{type(num_classes).__name__}") from None
    if num_classes < 1:
        raise ValueError(f"one_hot: num_classes must be >= 1, got {num_classes}")
    labels = check_labels("one_hot", labels, num_classes)
    classes = jnp.arange(num_classes).reshape((1,) * labels.ndim + (num_classes,))
    return (labels[..., None] == classes).astype(dtype)


def check_labels(name: str, labels, num_classes: int | None = None) -> jax.Array:
    """Check integer class labels; return them as a JAX array.

    Args:
      name: the calling function, named in error messages.
      labels: integer labels (array, list, or a tracer under ``jit``).
      num_classes: if given, concrete labels must lie in ``[0, num_classes)``.

    Returns:
      ``labels`` as a JAX integer array.

    Raises:
      TypeError: the labels are not integers.
      ValueError: a concrete label is out of range (traced labels cannot be
        checked and pass unchanged).

    Examples:
      >>> fnn.preprocessing.check_labels("demo", [2, 0], 3).tolist()
      [2, 0]
    """
    if is_concrete(labels) and not isinstance(labels, (np.ndarray, jax.Array)):
        labels = np.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"{name}: labels must be integers, got dtype {labels.dtype}")
    if num_classes is not None and is_concrete(labels) and np.size(labels):
        values = np.asarray(labels)
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= num_classes:
            raise ValueError(f"{name}: labels must lie in [0, {num_classes}), got values "
                             f"from {low} to {high}")
    return jnp.asarray(labels)


class Standardizer(NamedTuple):
    """Per-feature mean and standard deviation fitted on the training set.

    A NamedTuple, hence a pytree: it can be passed through ``jit`` and saved
    like params. ``mean`` and ``std`` keep the reduced axes with size 1
    (shape ``(1, features)`` for 2-D data), so they broadcast against any
    batch of the same rank without rank promotion.

    Equations: ``transform(x) = (x - mean) / std`` and
    ``inverse_transform(x) = x * std + mean``.
    """

    mean: jax.Array
    std: jax.Array

    def _check(self, x: jax.Array, method: str) -> jax.Array:
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            x = x.astype(self.mean.dtype)
        ok = x.ndim == self.mean.ndim and all(
            m in (1, d) for m, d in zip(self.mean.shape, x.shape))
        if not ok:
            raise ValueError(f"Standardizer.{method}: fitted statistics have shape "
                             f"{self.mean.shape}; input of shape {x.shape} does not match "
                             "(same rank, same size on every non-reduced axis)")
        return x

    def transform(self, x: jax.Array) -> jax.Array:
        """Standardise ``x`` with the fitted statistics: ``(x - mean) / std``.

        Args:
          x: array of the same rank as the fitted data, same feature sizes.

        Returns:
          the standardised array, same shape as ``x``.

        Examples:
          >>> s = fnn.preprocessing.fit_standardizer(jnp.array([[1.0], [3.0]]))
          >>> s.transform(jnp.array([[5.0]])).tolist()
          [[3.0000]]
        """
        x = self._check(x, "transform")
        return (x - self.mean) / self.std

    def inverse_transform(self, x: jax.Array) -> jax.Array:
        """Undo `transform`: ``x * std + mean``.

        Args:
          x: standardised array.

        Returns:
          the array in the original units, same shape as ``x``.

        Examples:
          >>> s = fnn.preprocessing.fit_standardizer(jnp.array([[1.0], [3.0]]))
          >>> s.inverse_transform(jnp.array([[3.0]])).tolist()
          [[5.0000]]
        """
        x = self._check(x, "inverse_transform")
        return x * self.std + self.mean


def fit_standardizer(x: jax.Array, axis: int | tuple[int, ...] = 0,
                     eps: float = 1e-8) -> Standardizer:
    """Fit a `Standardizer` on training data.

    Equations (population statistics, ``1/m`` as in the notes):
    ``mean = (1/m) sum_i x_i``, ``var = (1/m) sum_i (x_i - mean)^2``,
    ``std = sqrt(var)``. The notes write ``X /= variance``; dividing by the
    standard deviation is what gives unit variance, so fnn does that. A
    feature whose ``std`` is below ``eps`` (constant on the training set) is
    left unscaled: its ``std`` is stored as 1, so no division by zero.

    Args:
      x: training data, e.g. shape ``(m, features)``; integer data is cast to
        float32.
      axis: the axis or axes to average over (default 0, the batch axis; use
        e.g. ``(0, 1, 2)`` for per-channel statistics of ``(m, h, w, c)`` images).
      eps: threshold below which a standard deviation counts as zero.

    Returns:
      ``Standardizer(mean, std)`` with the reduced axes kept as size 1.

    Examples:
      >>> s = fnn.preprocessing.fit_standardizer(jnp.array([[1.0, 5.0], [3.0, 5.0]]))
      >>> s.mean.tolist(), s.std.tolist()
      ([[2.0000, 5.0000]], [[1.0000, 1.0000]])
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.float32)
    if x.ndim == 0:
        raise ValueError("fit_standardizer: expected an array with a batch axis, got a scalar")
    mean = jnp.mean(x, axis=axis, keepdims=True)
    std = jnp.sqrt(jnp.mean(jnp.square(x - mean), axis=axis, keepdims=True))
    std = jnp.where(std < eps, jnp.ones_like(std), std)
    return Standardizer(mean, std)


def standardize(train: jax.Array, *others: jax.Array, axis: int | tuple[int, ...] = 0,
                eps: float = 1e-8) -> jax.Array | tuple[jax.Array, ...]:
    """Standardise the training set, and other sets with the *training* statistics.

    Shorthand for ``s = fit_standardizer(train, axis, eps)`` followed by
    ``s.transform`` of every array: ``x -> (x - mean_train) / std_train``, the
    notes' "use the same mean and variance to normalise the test set". Keep the
    `Standardizer` of `fit_standardizer` instead when later data
    (or predictions, with ``inverse_transform``) need the same statistics.

    Args:
      train: training data, e.g. shape ``(m, features)``.
      *others: dev / test sets, same rank and feature sizes as ``train``.
      axis: the axis or axes the statistics average over (see `fit_standardizer`).
      eps: a standard deviation below ``eps`` counts as 0 (the feature is only centred).

    Returns:
      the standardised ``train`` alone when no ``others`` are given; otherwise a tuple:
      the standardised ``train``, then each of ``others`` standardised.

    Examples:
      >>> train, test = fnn.preprocessing.standardize(jnp.array([[1.0], [3.0]]), jnp.array([[5.0]]))
      >>> train.tolist(), test.tolist()
      ([[-1.0000], [1.0000]], [[3.0000]])
      >>> fnn.preprocessing.standardize(jnp.array([[1.0], [3.0]])).tolist()   # one array
      [[-1.0000], [1.0000]]
    """
    scaler = fit_standardizer(train, axis, eps)
    if not others:
        return scaler.transform(train)
    return tuple(scaler.transform(x) for x in (train,) + others)
