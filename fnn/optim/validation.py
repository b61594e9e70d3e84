"""Checks shared by the optimizers: hyperparameter values, tree structure, paths.

Hyperparameters are checked with fnn's one rule for numbers
(`fnn.validation`) when an optimizer is built, each name with its range.

Tree structure is checked when ``update`` is traced: gradients whose tree or
leaf shapes differ from the parameters the state was built for raise a
``ValueError`` naming both arguments instead of failing deep inside XLA.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn.validation import check_number, concrete_value  # noqa: F401  (concrete_value re-exported)

# Which range of fnn.validation.RANGES each hyperparameter name has.
HYPERPARAMETER_KINDS = {
    "learning_rate": "nonnegative", "eps": "nonnegative", "weight_decay": "nonnegative",
    "l1": "nonnegative", "clip_value": "nonnegative", "max_norm": "nonnegative",
    "beta": "beta", "b1": "beta", "b2": "beta", "rho": "beta",
}


def check_hyperparameter(where: str, name: str, value: Any, kind: str | None = None) -> Any:
    """`fnn.validation.check_number` with the range looked up from the name.

    Args:
      where: the function to name in the error, e.g. ``"adam"``.
      name: the argument's name, e.g. ``"b1"``.
      value: a Python number, a scalar numpy/JAX array, or a tracer.
      kind: a range of `fnn.validation.RANGES`; default: the one of
        ``name`` in `HYPERPARAMETER_KINDS` (``"nonnegative"`` if unlisted).

    Returns:
      ``value``.

    Examples:
      >>> fnn.optim.validation.check_hyperparameter("adam", "b1", 1.5)
      Traceback (most recent call last):
      ...
      ValueError: adam: b1 must be in [0, 1), got 1.5
    """
    return check_number(where, name, value, kind or HYPERPARAMETER_KINDS.get(name, "nonnegative"))


def check_hyperparameters(where: str, **values: Any) -> None:
    """`check_hyperparameter` for each keyword (range looked up from its name)."""
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

    Examples:
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
    """`check_same_tree` of the gradients against a per-parameter tree kept in a state."""
    check_same_tree(where, "grads", grads, "the params opt_state was built for", state_tree)
