"""Checks shared by the optimizers: hyperparameter values, tree structure, paths.

Hyperparameters are checked where they are concrete (Python numbers, numpy or
concrete JAX arrays) when an optimizer is built. A traced hyperparameter (an
optimizer built inside ``jax.vmap`` over learning rates, or
:func:`fnn.optim.set_hyperparams` under ``jit``) can only be checked for its
shape: its value is unknown until run time.

Tree structure is checked when ``update`` is traced: gradients whose tree or
leaf shapes differ from the parameters the state was built for raise a
``ValueError`` naming both arguments instead of failing deep inside XLA.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

# Which rule checks each hyperparameter name (used by the factories and set_hyperparams).
NONNEGATIVE = "nonnegative"
BETA = "beta"
HYPERPARAMETER_KINDS = {
    "learning_rate": NONNEGATIVE, "eps": NONNEGATIVE, "weight_decay": NONNEGATIVE,
    "l1": NONNEGATIVE, "clip_value": NONNEGATIVE, "max_norm": NONNEGATIVE,
    "beta": BETA, "b1": BETA, "b2": BETA, "rho": BETA,
}


def concrete_value(value: Any) -> np.ndarray | None:
    """``value`` as a numpy array, or ``None`` if it is traced (unknown until run time)."""
    try:
        return np.asarray(value)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def check_hyperparameter(where: str, name: str, value: Any, kind: str | None = None) -> Any:
    """Check one scalar hyperparameter and return it unchanged.

    Args:
      where: the function to name in the error, e.g. ``"adam"``.
      name: the argument's name, e.g. ``"b1"``.
      value: a Python number, a scalar numpy/JAX array, or a tracer.
      kind: ``"nonnegative"`` (``value >= 0``) or ``"beta"`` (``0 <= value < 1``);
        default: looked up from ``name``.

    Returns:
      ``value``.

    Raises:
      TypeError: ``value`` is not a number or array.
      ValueError: not a scalar, not finite, or outside its range.

    Example:
      >>> fnn.optim.validation.check_hyperparameter("adam", "b1", 1.5)
      Traceback (most recent call last):
      ...
      ValueError: adam: b1 must be in [0, 1), got 1.5
    """
    kind = kind or HYPERPARAMETER_KINDS.get(name, NONNEGATIVE)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number, np.ndarray, jax.Array)):
        raise TypeError(f"{where}: {name} must be a float or a scalar array, got {type(value).__name__}")
    if np.shape(value) != ():
        raise ValueError(f"{where}: {name} must be a scalar, got shape {np.shape(value)}")
    concrete = concrete_value(value)
    if concrete is None:
        return value
    number = float(concrete)
    if not np.isfinite(number):
        raise ValueError(f"{where}: {name} must be finite, got {number}")
    if kind == BETA and not 0.0 <= number < 1.0:
        raise ValueError(f"{where}: {name} must be in [0, 1), got {number}")
    if kind == NONNEGATIVE and number < 0.0:
        raise ValueError(f"{where}: {name} must be >= 0, got {number}")
    return value


def check_hyperparameters(where: str, **values: Any) -> None:
    """:func:`check_hyperparameter` for each keyword (kind looked up from its name)."""
    for name, value in values.items():
        check_hyperparameter(where, name, value)


def as_hyperparameter(value: Any) -> jax.Array:
    """A hyperparameter as stored in optimizer state: a float32 array (not weakly typed).

    A concrete array is copied, so a step that donates the optimizer state
    never deletes the caller's own array (``lr = jnp.float32(1e-3); adam(lr)``).
    """
    if isinstance(value, jax.Array) and concrete_value(value) is not None:
        return jnp.array(value, dtype=jnp.float32, copy=True)
    return jnp.asarray(value, dtype=jnp.float32)


def path_to_str(path: tuple) -> str:
    """A JAX key path as ``'/'``-joined text, e.g. ``(DictKey('0'), DictKey('w'))`` -> ``'0/w'``."""
    return jax.tree_util.keystr(path, simple=True, separator="/")


def check_same_tree(where: str, name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same tree and leaf shapes.

    Example:
      >>> fnn.optim.validation.check_same_tree(
      ...     "adam", "grads", {"w": jnp.ones(2)}, "params", {"v": jnp.ones(2)})
      Traceback (most recent call last):
      ...
      ValueError: adam: grads and params have different tree structures: grads ... params ...
    """
    tree_a, tree_b = jax.tree.structure(a), jax.tree.structure(b)
    if tree_a != tree_b:
        raise ValueError(f"{where}: {name_a} and {name_b} have different tree structures: "
                         f"{name_a} {tree_a}, {name_b} {tree_b}")
    leaves_a, _ = jax.tree_util.tree_flatten_with_path(a)
    for (path, leaf_a), leaf_b in zip(leaves_a, jax.tree.leaves(b)):
        if np.shape(leaf_a) != np.shape(leaf_b):
            raise ValueError(f"{where}: {name_a} and {name_b} differ in shape at "
                             f"'{path_to_str(path)}': {np.shape(leaf_a)} vs {np.shape(leaf_b)}")


def check_grads_match_state(where: str, grads: Any, state_tree: Any) -> None:
    """:func:`check_same_tree` of the gradients against a per-parameter tree kept in a state."""
    check_same_tree(where, "grads", grads, "the params opt_state was built for", state_tree)


def memoize(factory: Callable) -> Callable:
    """``functools.lru_cache`` that falls back to a fresh call for unhashable arguments.

    Update functions are built by memoized factories keyed on their static
    configuration, so equal configurations give the *same* function object and
    a ``jit`` keyed on it does not recompile.
    """
    cached = functools.lru_cache(maxsize=4096)(factory)

    @functools.wraps(factory)
    def wrapper(*args):
        try:
            hash(args)
        except TypeError:
            return factory(*args)
        return cached(*args)

    wrapper.cache_clear = cached.cache_clear
    return wrapper
