"""Skipping steps whose gradients are NaN or infinite, and counting them.

fnn never replaces a NaN or inf gradient silently: without this wrapper a bad
gradient reaches the parameters and shows in the loss. With it, the step is
skipped (zero update, inner state unchanged) and counted, and the count is in
the state for a training loop or the user to read.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn.optim.base import GradientTransformation
from fnn.caching import memoize


class SkipNonfiniteState(NamedTuple):
    """State of `skip_nonfinite`.

    Attributes:
      skipped: int32, how many steps were skipped so far.
      inner_state: the wrapped transformation's state.
    """

    skipped: jax.Array
    inner_state: Any


def all_finite(tree: Any) -> jax.Array:
    """Whether every element of every leaf is finite (no NaN, no inf).

    Args:
      tree: a pytree of arrays.

    Returns:
      A bool scalar array (True for an empty tree).

    Examples:
      >>> bool(fnn.optim.all_finite({"a": jnp.array([1.0, jnp.inf])}))
      False
    """
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.array(True)


def update_unless_nonfinite(inner_update: Any, grads: Any, inner_state: Any,
                            params: Any = None) -> tuple[Any, Any, jax.Array]:
    """Run ``inner_update``, or skip the step when anything is not finite.

    If ``grads`` and the updates ``inner_update`` makes from them are all
    finite, return those updates and the new inner state; otherwise return
    updates of ``-0.0`` (``p + (-0.0) == p`` bit for bit) and the old state.

    Args:
      inner_update: an ``update(grads, state, params)`` function.
      grads: the gradients.
      inner_state: the state ``inner_update`` takes.
      params: the parameters, passed through.

    Returns:
      ``(updates, inner_state, ok)``, ``ok`` a bool scalar array (False: skipped).
    """
    new_updates, new_inner = inner_update(grads, inner_state, params)
    ok = jnp.logical_and(all_finite(grads), all_finite(new_updates))
    out = jax.tree.map(lambda u: jnp.where(ok, u, jnp.full_like(u, -0.0)), new_updates)
    inner = jax.tree.map(lambda new, old: jnp.where(ok, new, old), new_inner, inner_state)
    return out, inner, ok


@memoize
def _skip_update(inner_update):
    def update(updates: Any, state: SkipNonfiniteState, params: Any = None):
        out, inner, ok = update_unless_nonfinite(inner_update, updates, state.inner_state, params)
        skipped = state.skipped + jnp.where(ok, 0, 1).astype(state.skipped.dtype)
        return out, SkipNonfiniteState(skipped, inner)

    return update


def skip_nonfinite(inner: GradientTransformation) -> GradientTransformation:
    """Run ``inner`` but skip steps with a non-finite gradient or update.

    If every element of the gradients ``g`` and of ``inner``'s updates is
    finite: ``(u, s) <- inner(g, s)``. Otherwise: ``u <- 0``, ``s`` unchanged,
    ``skipped <- skipped + 1``. Both branches are computed and selected with
    ``jnp.where``, so it works under ``jit`` and ``vmap``.

    Args:
      inner: the transformation to protect (usually the whole optimizer).

    Returns:
      A `GradientTransformation` with state `SkipNonfiniteState`.

    Examples:
      >>> opt = fnn.optim.skip_nonfinite(fnn.optim.adam(0.1))
      >>> state = opt.init(jnp.zeros(2))
      >>> u, state = opt.update(jnp.array([1.0, jnp.nan]), state)
      >>> bool(jnp.all(u == 0)), int(state.skipped)
      (True, 1)
    """
    inner = GradientTransformation(*inner)

    def init(params: Any) -> SkipNonfiniteState:
        return SkipNonfiniteState(jnp.zeros([], jnp.int32), inner.init(params))

    return GradientTransformation(init, _skip_update(inner.update))
