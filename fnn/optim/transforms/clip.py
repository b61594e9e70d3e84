"""Gradient clipping, the cure for exploding gradients.

Clipping never hides a NaN: a NaN gradient stays NaN (and an infinite global
norm turns the updates into NaN), so `fnn.optim.skip_nonfinite` or the
user sees it.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn.optim.base import GradientTransformation
from fnn.optim.validation import as_hyperparameter, check_hyperparameters


class ClipByValueState(NamedTuple):
    """State of `clip_by_value`: the float32 threshold ``clip_value``."""

    clip_value: jax.Array
    hyperparams = ("clip_value",)


def _clip_by_value_update(updates: Any, state: ClipByValueState, params: Any = None):
    del params
    c = state.clip_value
    return jax.tree.map(lambda u: jnp.clip(u, -c, c).astype(u.dtype), updates), state


def clip_by_value(clip_value: float) -> GradientTransformation:
    """Clip every element: ``u <- min(max(u, -c), c)`` with ``c = clip_value``.

    Args:
      clip_value: the threshold ``c >= 0``.

    Returns:
      A `GradientTransformation` with state `ClipByValueState`.

    Examples:
      >>> opt = fnn.optim.clip_by_value(1.0)
      >>> opt.update(jnp.array([-3.0, 0.5, 2.0]), opt.init(jnp.zeros(3)))[0].tolist()
      [-1.00, 0.500, 1.00]
    """
    check_hyperparameters("clip_by_value", clip_value=clip_value)

    def init(params: Any) -> ClipByValueState:
        del params
        return ClipByValueState(as_hyperparameter(clip_value))

    return GradientTransformation(init, _clip_by_value_update)


def global_norm(tree: Any) -> jax.Array:
    """The Euclidean norm of all leaves together: ``n = sqrt(sum_i sum(x_i^2))``.

    Computed without overflow as ``n = m sqrt(sum_i sum((x_i / m)^2))`` with
    ``m = max_i max |x_i|``: squaring a finite float32 value above ~1.8e19
    would give ``inf``, so a finite gradient of 1e20 would get an infinite
    norm. ``n`` is ``inf`` only when an element is, and NaN when one is NaN.

    Args:
      tree: a pytree of arrays.

    Returns:
      A scalar array, float32 or wider (0 for an empty tree).

    Examples:
      >>> float(fnn.optim.global_norm({"a": jnp.array([3.0]), "b": jnp.array([[4.0]])}))
      5.00
      >>> float(fnn.optim.global_norm(jnp.array([3e20, 4e20])))  # squares overflow float32
      5.00e+20
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros([], jnp.float32)
    dtype = jnp.promote_types(jnp.float32, jnp.result_type(*leaves))
    leaves = [x.astype(dtype) for x in leaves]
    largest = functools.reduce(jnp.maximum, [jnp.max(jnp.abs(x), initial=0.0) for x in leaves])
    # Divide by the largest magnitude only where it is a positive finite number.
    scale = jnp.where(jnp.isfinite(largest) & (largest > 0), largest, 1).astype(dtype)
    total = sum(jnp.sum(jnp.square(x / scale)) for x in leaves)
    return jnp.where(jnp.isinf(largest), largest, scale * jnp.sqrt(total))


class ClipByGlobalNormState(NamedTuple):
    """State of `clip_by_global_norm`: the float32 threshold ``max_norm``."""

    max_norm: jax.Array
    hyperparams = ("max_norm",)


def _clip_by_global_norm_update(updates: Any, state: ClipByGlobalNormState, params: Any = None):
    del params
    norm = global_norm(updates)
    max_norm = state.max_norm.astype(norm.dtype)
    # Dividing only where norm > max_norm keeps a zero gradient finite, and the
    # comparison is False for NaN, so a NaN norm passes through unchanged.
    factor = jnp.where(norm > max_norm, max_norm / jnp.where(norm > max_norm, norm, 1), 1)
    return jax.tree.map(lambda u: (u * factor).astype(u.dtype), updates), state


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Rescale all updates together so their global norm is at most ``max_norm``.

    ``n = sqrt(sum_i ||u_i||^2)``; ``u_i <- u_i * max_norm / n`` if ``n > max_norm``,
    else unchanged (Pascanu, Mikolov & Bengio 2013). The direction is kept.
    ``n`` is computed without overflow (`global_norm`), so a finite
    gradient of 1e20 is clipped to norm ``max_norm``, not zeroed; an infinite
    gradient gives NaN updates, which `fnn.optim.skip_nonfinite` counts
    and skips.

    Args:
      max_norm: the threshold, >= 0.

    Returns:
      A `GradientTransformation` with state `ClipByGlobalNormState`.

    Examples:
      >>> opt = fnn.optim.clip_by_global_norm(1.0)
      >>> u, _ = opt.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, opt.init(None))
      >>> [round(float(u["a"][0]), 4), round(float(u["b"][0]), 4)]
      [0.600, 0.800]
    """
    check_hyperparameters("clip_by_global_norm", max_norm=max_norm)

    def init(params: Any) -> ClipByGlobalNormState:
        del params
        return ClipByGlobalNormState(as_hyperparameter(max_norm))

    return GradientTransformation(init, _clip_by_global_norm_update)
