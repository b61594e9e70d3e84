"""L1 and L2 weight penalties over a params pytree.

Add the penalty to the loss (the notes' "modified loss function")::

    def objective(params, x, y):
        y_hat, _ = model.apply(params, {}, x)
        return fnn.losses.mse(y_hat, y) + fnn.regularizers.l2(params, 1e-4)

Which leaves are penalised is chosen with ``include``, a predicate
``include(path, leaf) -> bool`` on the leaf's key path (a tuple of strings,
e.g. ``("0", "w")``). :func:`weights_only` skips biases (keys ``"b"`` or
``"bias"``), the usual choice; the default penalises every leaf.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

__all__ = ["l1", "l2", "weights_only", "key_path"]

Predicate = Callable[[tuple[str, ...], jax.Array], bool]


def key_path(path) -> tuple[str, ...]:
    """A JAX key path (from ``jax.tree_util.tree_flatten_with_path``) as strings.

    Args:
      path: a tuple of JAX key entries (dict keys, sequence indices, attribute names).

    Returns:
      the entries' keys / indices / names as a tuple of strings.

    Example:
      >>> path, _ = jax.tree_util.tree_flatten_with_path({"0": {"w": 1}})[0][0]
      >>> fnn.regularizers.key_path(path)
      ('0', 'w')
    """
    names = []
    for entry in path:
        for attr in ("key", "idx", "name"):
            if hasattr(entry, attr):
                names.append(str(getattr(entry, attr)))
                break
        else:
            names.append(str(entry))
    return tuple(names)


def weights_only(path: tuple[str, ...], leaf: Any) -> bool:
    """Predicate for ``include``: True unless the leaf is a bias (last key "b" or "bias").

    Args:
      path: the leaf's key path as strings (see :func:`key_path`).
      leaf: the leaf (unused).

    Returns:
      whether to penalise the leaf.

    Example:
      >>> R = fnn.regularizers
      >>> R.weights_only(("0", "b"), None), R.weights_only(("0", "w"), None)
      (False, True)
    """
    del leaf
    return not path or path[-1] not in ("b", "bias")


def _penalty(params, scale, include: Predicate | None, term: Callable) -> jax.Array:
    total = jnp.zeros((), jnp.float32)
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if include is not None and not include(key_path(path), leaf):
            continue
        total = total + jnp.sum(term(jnp.asarray(leaf).astype(jnp.float32)))
    return scale * total


def l1(params, scale, *, include: Predicate | None = None) -> jax.Array:
    """L1 penalty (lasso): pushes weights to exactly zero.

    Equation: ``Omega(w) = lambda * sum_i |w_i|`` over all included leaves,
    ``lambda = scale``; derivative ``lambda * sign(w_i)`` (0 at ``w_i = 0``).

    Args:
      params: a params pytree (nested dicts of arrays).
      scale: ``lambda`` (a float or a traced scalar).
      include: optional predicate ``(path, leaf) -> bool`` choosing the leaves,
        e.g. :func:`weights_only`; default: every leaf.

    Returns:
      a float32 scalar (0 for an empty pytree).

    Example:
      >>> float(fnn.regularizers.l1({"w": jnp.array([1.0, -2.0]), "b": jnp.array([5.0])}, 0.5,
      ...                           include=fnn.regularizers.weights_only))
      1.5000
    """
    return _penalty(params, scale, include, lambda w: w * jnp.sign(w))


def l2(params, scale, *, include: Predicate | None = None) -> jax.Array:
    """L2 penalty (weight decay): keeps weights small.

    Equation (first notes): ``Omega(w) = lambda * sum_i w_i^2`` over all
    included leaves, ``lambda = scale``; derivative ``2 lambda w_i``. The
    other notes write ``(lambda / 2m) * sum_l ||W[l]||_F^2`` with gradient
    ``(lambda / m) W``: pass ``scale = lambda / (2 * m)`` for that convention.

    Args:
      params: a params pytree (nested dicts of arrays).
      scale: ``lambda`` (a float or a traced scalar).
      include: optional predicate ``(path, leaf) -> bool`` choosing the leaves,
        e.g. :func:`weights_only`; default: every leaf.

    Returns:
      a float32 scalar (0 for an empty pytree).

    Example:
      >>> float(fnn.regularizers.l2({"w": jnp.array([1.0, -2.0])}, 0.001))
      0.0050
    """
    return _penalty(params, scale, include, jnp.square)
