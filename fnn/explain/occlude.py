"""Occlusion (Zeiler and Fergus 2014): how much the score drops when a window is hidden.

Equation: a window ``W`` (a box of ``window`` features, moved by ``stride``
over the example's feature axes) is replaced by the baseline, and every
feature in it is credited with the drop ``S(x) - S(x with W replaced)``;
a feature's attribution is the mean of the drops of the windows that cover
it. With a window of one feature and a zero baseline, a linear model gets
``w_j x_j``. The windows start at ``0, s, 2s, ...`` on each axis, plus one
flush with the end when the stride does not reach it, so every feature is
covered.

Needs forward passes only (one per window and example), so it works for
any model, differentiable or not; its cost grows with the number of windows.
"""

from __future__ import annotations

import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn.caching import memoize
from fnn.explain import rows as rows_module
from fnn.explain import targets
from fnn.explain.gradients import explained_classes
from fnn.validation import check_int


def window_starts(size: int, window: int, stride: int) -> tuple[int, ...]:
    """The starts of the windows on one axis (the last one flush with the end).

    Examples:
      >>> fnn.explain.occlude.window_starts(7, 3, 3)
      (0, 3, 4)
    """
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] + window < size:
        starts.append(size - window)
    return tuple(starts)


def _per_axis(value: Any, shape: tuple[int, ...], name: str, where: str) -> tuple[int, ...]:
    values = (value,) * len(shape) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != len(shape) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
            for v in values):
        raise ValueError(f"{where}: {name} must be a positive int or one per feature axis of "
                         f"the example shape {shape} ({len(shape)} values), got {value!r}")
    values = tuple(int(v) for v in values)
    if name == "window" and any(w > s for w, s in zip(values, shape)):
        raise ValueError(f"{where}: window {values} is larger than the example shape {shape}")
    return values


@memoize
def _function(model: Any, spec: targets.Target, starts: tuple, window: tuple,
              batch_size: int | None):
    grid = np.array(list(itertools.product(*starts)), np.int32)        # (windows, axes)
    count = np.ones((), np.float32)
    for axis, (axis_starts, w) in enumerate(zip(starts, window)):
        covered = np.zeros(max(s + w for s in axis_starts), np.float32)
        for s in axis_starts:
            covered[s:s + w] += 1
        count = np.multiply.outer(count, covered)

    def run(params, state, x, baseline, classes):
        classes = explained_classes(model, spec, params, state, x, classes)
        n, features = x.shape[0], x.shape[1:]
        clean = targets.scores(targets.forward(model, params, state, x, spec), classes, spec)
        axes = [jax.lax.broadcasted_iota(jnp.int32, features, d) for d in range(len(features))]

        def add(total, index, valid):
            k, i = index // n, index % n
            start = jnp.asarray(grid)[k]                                  # (rows, axes)
            inside = jnp.ones((index.shape[0],) + features, bool)
            for d, w in enumerate(window):
                s = start[:, d].reshape((-1,) + (1,) * len(features))
                inside = inside & (axes[d][None] >= s) & (axes[d][None] < s + w)
            hidden = jnp.where(inside, baseline[i], x[i])
            drop = clean[i] - targets.scores(targets.forward(model, params, state, hidden, spec),
                                             classes[i], spec)
            return rows_module.scatter_add(total, i, inside.astype(x.dtype),
                                           jnp.where(valid, drop, 0.0))

        total = rows_module.over_rows(add, jnp.zeros_like(x), len(grid) * n, batch_size,
                                      "occlusion")
        return total / jnp.asarray(count, x.dtype)[None]
    return jax.jit(run)


def occlusion(model: Any, params: Any, state: Any, x: jax.Array, *, window: Any,
              target: Any = None, stride: Any = None, baseline: Any = 0.0,
              batch_size: int | None = None, output: Any = None) -> jax.Array:
    """Attributions from hiding sliding windows of the input (see `fnn.explain.occlude`).

    Args:
      model, params, state, target, output: as for `fnn.explain.saliency`.
      x: a batch, one array ``(batch, *features)``.
      window: the window's size on each feature axis (an int for every axis,
        e.g. ``(4, 4, 1)`` for 4x4 patches of one channel of ``(h, w, c)`` images).
      stride: the step between windows (default: ``window``, no overlap).
      baseline: what a hidden feature becomes: a number, one example's shape,
        or the batch's shape.
      batch_size: occluded copies per model call (``None``: all at once).

    Returns:
      Attributions shaped like ``x``.

    Raises:
      ValueError: a window or stride that is not one positive int per feature
        axis, a window larger than the input, a baseline of the wrong shape,
        a target out of range.

    Examples:
      >>> model = fnn.Dense(1)
      >>> params = {"w": jnp.array([[2.0], [-1.0]]), "b": jnp.array([0.5])}
      >>> fnn.explain.occlusion(model, params, {}, jnp.array([[1.0, 3.0]]), window=1).tolist()
      [[2.0, -3.0]]
    """
    where = "occlusion"
    if not hasattr(x, "shape") or getattr(x, "ndim", 0) < 2:
        raise ValueError(f"{where}: x must be one array (batch, *features), got "
                         f"{type(x).__name__} {getattr(x, 'shape', '')}")
    x = jnp.asarray(x)
    features = tuple(x.shape[1:])
    window = _per_axis(window, features, "window", where)
    stride = window if stride is None else _per_axis(stride, features, "stride", where)
    starts = tuple(window_starts(s, w, t) for s, w, t in zip(features, window, stride))
    check_int(where, "batch_size", batch_size, allow_none=True)
    spec, classes, k = targets.resolve(model, params, state, x, target, output, where)
    if k is not None:
        raise ValueError(f"{where}: one target per example (an int or (batch,)); explain "
                         "several classes one call each")
    b = jnp.asarray(baseline, x.dtype)
    if b.shape not in ((), features, x.shape):
        raise ValueError(f"{where}: baseline of shape {b.shape} for an input of shape "
                         f"{x.shape}: give a number, one example's shape {features} or the "
                         f"batch's shape {x.shape}")
    b = jnp.broadcast_to(b, x.shape)
    return _function(model, spec, starts, window, batch_size)(params, state, x, b, classes)
