"""L1, L2 and elastic-net weight penalties over a params pytree.

Two ways to use them. In ``fnn.fit``, pass a penalty object: it is added to
the loss of every step (the notes' "modified loss function"), and the history
reports the data loss (``"loss"``) and the penalty (``"penalty"``) apart::

    fnn.fit(model, loss, optimizer, data, ..., penalty=fnn.regularizers.l2(1e-4, on="*/w"))

In a hand-written objective, call the function form on the params::

    def objective(params, x, y):
        y_hat, _ = model.apply(params, {}, x)
        return fnn.losses.mse(y_hat, y) + fnn.regularizers.l2(params, 1e-4)

The penalty object chooses its leaves with ``on``, path patterns as
`fnn.optim.freeze` takes them (``"*/w"``, ``["body/*", "head/w"]``);
by default every leaf but the biases. The function form chooses them with
``include``, a predicate ``include(path, leaf) -> bool`` on the leaf's key
path (a tuple of strings, e.g. ``("0", "w")``); `weights_only` skips
biases (keys ``"b"`` or ``"bias"``), the usual choice; its default penalises
every leaf.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

__all__ = ["l1", "l2", "elastic_net", "Penalty", "weights_only", "key_path"]

Predicate = Callable[[tuple[str, ...], jax.Array], bool]


def key_path(path) -> tuple[str, ...]:
    """A JAX key path (from ``jax.tree_util.tree_flatten_with_path``) as strings.

    Args:
      path: a tuple of JAX key entries (dict keys, sequence indices, attribute names).

    Returns:
      the entries' keys / indices / names as a tuple of strings.

    Examples:
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
      path: the leaf's key path as strings (see `key_path`).
      leaf: the leaf (unused).

    Returns:
      whether to penalise the leaf.

    Examples:
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


def _abs(w: jax.Array) -> jax.Array:
    return w * jnp.sign(w)


@dataclasses.dataclass(frozen=True)
class Penalty:
    """A weight penalty for ``fnn.fit(..., penalty=...)``:
    ``Omega(w) = l1 * sum_i |w_i| + l2 * sum_i w_i^2`` over the selected leaves.

    Made by `l1`, `l2` and `elastic_net` with one number;
    ``penalty(params)`` computes it. Hashable, so it is part of the compiled step's
    cache key like the loss.

    Attributes:
      l1, l2: the two coefficients (``>= 0``).
      on: path patterns of the penalised leaves (``None``: every leaf but biases,
        i.e. leaves not named ``b`` or ``bias``).
    """

    l1: float = 0.0
    l2: float = 0.0
    on: tuple[str, ...] | None = None

    def __post_init__(self):
        for name in ("l1", "l2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    value >= 0 and value < float("inf")):
                raise ValueError(f"regularizers: {name} must be a finite number >= 0, got "
                                 f"{value!r}")
            object.__setattr__(self, name, float(value))
        if self.on is not None:
            on = (self.on,) if isinstance(self.on, str) else tuple(self.on)
            if not on or not all(isinstance(p, str) and p for p in on):
                raise ValueError(f"regularizers: on must be a path pattern or a list of "
                                 f"them (e.g. '*/w'), got {self.on!r}")
            object.__setattr__(self, "on", on)

    def selected(self, params: Any) -> list[bool]:
        """One bool per leaf of ``params`` (flatten order): penalised or not.

        Raises:
          ValueError: a pattern of ``on`` matches no parameter (the paths are listed).
        """
        from fnn.optim.transforms.masking import path_matches
        from fnn.optim.validation import path_to_str
        paths = [path_to_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
        if self.on is None:
            return [p.rsplit("/", 1)[-1] not in ("b", "bias") for p in paths]
        for pattern in self.on:
            if not any(path_matches(p, pattern) for p in paths):
                raise ValueError(f"regularizers: pattern {pattern!r} in on= matches no "
                                 f"parameter; the parameter paths are: {', '.join(paths)}")
        return [any(path_matches(p, pattern) for pattern in self.on) for p in paths]

    def __call__(self, params: Any) -> jax.Array:
        """``Omega(params)``, a float32 scalar."""
        total = jnp.zeros((), jnp.float32)
        for leaf, chosen in zip(jax.tree.leaves(params), self.selected(params)):
            if not chosen:
                continue
            w = jnp.asarray(leaf).astype(jnp.float32)
            if self.l1:
                total = total + self.l1 * jnp.sum(_abs(w))
            if self.l2:
                total = total + self.l2 * jnp.sum(jnp.square(w))
        return total


def _is_scale(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _either_form(name: str, params: Any, scale: Any, include: Any, on: Any,
                 term: Callable) -> Any:
    """``name(params, scale)``: the penalty's value; ``name(scale, on=...)``: a Penalty."""
    if scale is None and _is_scale(params):
        if include is not None:
            raise TypeError(f"{name}: the penalty form chooses leaves with on= (path "
                            f"patterns), not include=")
        return Penalty(**{name: params}, on=on)
    if scale is None:
        raise TypeError(f"{name}: give the scale, {name}(params, scale), or call {name}(scale, "
                        f"on=...) with one number for fit's penalty=")
    return _penalty(params, scale, include, term)


def l1(params, scale=None, *, include: Predicate | None = None, on: Any = None):
    """L1 penalty (lasso): pushes weights to exactly zero.

    Equation: ``Omega(w) = lambda * sum_i |w_i|`` over all included leaves,
    ``lambda = scale``; derivative ``lambda * sign(w_i)`` (0 at ``w_i = 0``).

    Two forms: ``l1(params, scale)`` computes the penalty; ``l1(scale, on=...)``
    (one number) makes a `Penalty` for ``fnn.fit(..., penalty=...)``.

    Args:
      params: a params pytree (nested dicts of arrays); in the penalty form, ``lambda``.
      scale: ``lambda`` (a float or a traced scalar).
      include: optional predicate ``(path, leaf) -> bool`` choosing the leaves,
        e.g. `weights_only`; default: every leaf.
      on: (penalty form) path patterns of the penalised leaves; default every leaf
        but the biases.

    Returns:
      a float32 scalar (0 for an empty pytree), or a `Penalty`.

    Examples:
      >>> float(fnn.regularizers.l1({"w": jnp.array([1.0, -2.0]), "b": jnp.array([5.0])}, 0.5,
      ...                           include=fnn.regularizers.weights_only))
      1.5000
      >>> fnn.regularizers.l1(0.5)({"w": jnp.array([1.0, -2.0]), "b": jnp.array([5.0])})
      Array(1.5..., dtype=float32)
    """
    return _either_form("l1", params, scale, include, on, _abs)


def l2(params, scale=None, *, include: Predicate | None = None, on: Any = None):
    """L2 penalty (weight decay): keeps weights small.

    Equation (first notes): ``Omega(w) = lambda * sum_i w_i^2`` over all
    included leaves, ``lambda = scale``; derivative ``2 lambda w_i``. The
    other notes write ``(lambda / 2m) * sum_l ||W[l]||_F^2`` with gradient
    ``(lambda / m) W``: pass ``scale = lambda / (2 * m)`` for that convention.

    Two forms: ``l2(params, scale)`` computes the penalty; ``l2(scale, on=...)``
    (one number) makes a `Penalty` for ``fnn.fit(..., penalty=...)``.

    Args:
      params: a params pytree (nested dicts of arrays); in the penalty form, ``lambda``.
      scale: ``lambda`` (a float or a traced scalar).
      include: optional predicate ``(path, leaf) -> bool`` choosing the leaves,
        e.g. `weights_only`; default: every leaf.
      on: (penalty form) path patterns of the penalised leaves; default every leaf
        but the biases.

    Returns:
      a float32 scalar (0 for an empty pytree), or a `Penalty`.

    Examples:
      >>> float(fnn.regularizers.l2({"w": jnp.array([1.0, -2.0])}, 0.001))
      0.0050
      >>> fnn.regularizers.l2(1e-3, on="*/w")
      Penalty(l1=0.0, l2=0.001, on=('*/w',))
    """
    return _either_form("l2", params, scale, include, on, jnp.square)


def elastic_net(l1: float, l2: float, *, on: Any = None) -> Penalty:
    """Elastic net: ``Omega(w) = l1 * sum_i |w_i| + l2 * sum_i w_i^2`` (a `Penalty`).

    Args:
      l1, l2: the coefficients (``>= 0``).
      on: path patterns of the penalised leaves; default every leaf but the biases.

    Examples:
      >>> pen = fnn.regularizers.elastic_net(0.1, 0.01)
      >>> float(pen({"w": jnp.array([1.0, -2.0]), "b": jnp.array([9.0])}))
      0.3500
    """
    return Penalty(l1=l1, l2=l2, on=on)
