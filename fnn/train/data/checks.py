"""Checks of the data itself, before any model is looked at: the ``(x, y)`` pair and
its lengths, the key, the argument order, non-finite inputs. Clear errors that name the
calling function and the data (``validation_data``), before anything compiles.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def shape_of(a: Any) -> tuple:
    """``np.shape(a)`` as a tuple."""
    return tuple(np.shape(a))


def check_argument_order(where: str, loss: Any, optimizer: Any, data: Any) -> None:
    """``TypeError`` for Keras's order ``fit(model, (x, y), loss, optimizer)``: fnn's is
    ``fit(model, loss, optimizer, (x, y))``, and the swap would otherwise surface as a
    confusing error about ``x`` being a function."""
    from fnn.optim.base import GradientTransformation

    def looks_like_data(value: Any) -> bool:
        return (isinstance(value, (tuple, list)) and len(value) == 2
                and not isinstance(value, GradientTransformation)
                and all(hasattr(v, "shape") or isinstance(v, (list, dict)) for v in value))

    if isinstance(data, GradientTransformation) or looks_like_data(loss):
        got = []
        if looks_like_data(loss):
            got.append("the data (x, y) as loss")
        if isinstance(data, GradientTransformation):
            got.append("an optimizer as data")
        raise TypeError(f"{where}: the arguments are {where}(model, loss, optimizer, (x, y), "
                        f"...) (loss and optimizer before the data, unlike Keras's "
                        f"model.fit(x, y)); got {' and '.join(got)}")


def check_data(where: str, data: Any, name: str) -> tuple[Any, Any]:
    """``(x, y)`` from ``data``; ``ValueError`` unless it is a pair of arrays of equal length.

    Python lists become numpy arrays; tuples and dicts are pytrees of arrays.

    Examples:
      >>> x, y = fnn.train.data.checks.check_data("fit", (np.zeros((3, 2)), np.zeros(3)), "data")
      >>> fnn.train.data.checks.check_data("fit", (np.zeros((3, 2)), np.zeros(4)), "data")
      Traceback (most recent call last):
      ...
      ValueError: fit: data=(x, y) must have as many examples in x as in y; x has shape (3, 2) (3 examples), y has shape (4,) (4 examples)
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        got = type(data).__name__
        if isinstance(data, (tuple, list)):
            got += f" of length {len(data)}"
        raise ValueError(f"{where}: {name} must be a pair (x, y) of arrays, got {got}")
    x, y = (np.asarray(part) if isinstance(part, list) else part for part in data)
    lengths = []
    for part, value in (("x", x), ("y", y)):
        leaves = jax.tree.leaves(value)
        if not leaves or any(np.ndim(a) == 0 for a in leaves):
            raise ValueError(f"{where}: {name}=(x, y): {part} must be an array with a leading "
                             f"batch axis, got {value!r:.80}")
        sizes = {shape_of(a)[0] for a in leaves}
        if len(sizes) != 1:
            raise ValueError(f"{where}: the arrays in {name} {part} differ in length: "
                             f"{[shape_of(a) for a in leaves]}")
        lengths.append(sizes.pop())
    if lengths[0] != lengths[1]:
        raise ValueError(
            f"{where}: {name}=(x, y) must have as many examples in x as in y; x has shape "
            f"{describe(x)} ({lengths[0]} examples), y has shape {describe(y)} "
            f"({lengths[1]} examples)")
    if lengths[0] == 0:
        raise ValueError(f"{where}: {name} has no examples (x has shape {describe(x)})")
    return x, y


def check_key(where: str, key: Any) -> Any:
    """``key`` if it is one PRNG key (typed, or raw uint32 of shape ``(2,)``); ``ValueError``
    naming ``where`` otherwise."""
    if not isinstance(key, jax.Array) or not (
            (jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ())
            or (key.dtype == jnp.uint32 and key.shape == (2,))):
        raise ValueError(f"{where}: key must be a PRNG key such as jax.random.key(0), got "
                         f"{key!r:.80}")
    return key


def describe(tree: Any) -> Any:
    """The shape of an array, or the shapes of a tree of them, for messages."""
    return shape_of(tree) if is_leaf(tree) else jax.tree.map(shape_of, tree)


def is_leaf(tree: Any) -> bool:
    """One array (not a dict/tuple holding one), so messages show the structure it has."""
    return jax.tree.structure(tree).num_nodes == 1


def struct(tree: Any) -> Any:
    """``tree`` as ``jax.ShapeDtypeStruct`` leaves.

    Leaves take the dtype they get on the device (float64 numpy becomes float32).
    """
    def one(a):
        dtype = jax.dtypes.canonicalize_dtype(a.dtype if hasattr(a, "dtype") else np.result_type(a))
        return jax.ShapeDtypeStruct(shape_of(a), dtype)
    return jax.tree.map(one, tree)


def check_validation_data(where: str, x: Any, y: Any, xv: Any, yv: Any) -> None:
    """``ValueError`` unless the validation examples have the training examples' shapes."""
    for part, train, val in (("x", x, xv), ("y", y, yv)):
        a = jax.tree.map(lambda t: np.shape(t)[1:], train)
        b = jax.tree.map(lambda t: np.shape(t)[1:], val)
        if a != b:
            raise ValueError(f"{where}: validation_data {part} has example shape {b} but the "
                             f"training {part} has {a}")


def check_finite_inputs(where: str, x: Any, data_name: str = "data") -> None:
    """``ValueError`` naming the first non-finite value (NaN or inf) of the concrete inputs
    ``x`` (its example row and position), before anything is compiled: inside training a
    NaN input only shows up as a NaN loss after a whole epoch.

    Examples:
      >>> x = np.ones((4, 3), np.float32); x[2, 1] = np.nan
      >>> fnn.train.data.checks.check_finite_inputs("fit", x)
      Traceback (most recent call last):
      ...
      ValueError: fit: data x has a non-finite value (nan) at row 2, position (1,) (x[2, 1]); ...
    """
    for path, leaf in jax.tree_util.tree_flatten_with_path(x)[0]:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or not jnp.issubdtype(dtype, jnp.inexact):
            continue
        values = np.asarray(leaf)         # (no XLA program: nothing to compile)
        if np.isfinite(values).all():
            continue
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0])
        part = "x" + jax.tree_util.keystr(path)
        raise ValueError(
            f"{where}: {data_name} {part} has a non-finite value ({values[index]}) at row "
            f"{index[0]}, position {index[1:]} ({part}[{', '.join(map(str, index))}]); every "
            f"loss it touches would be NaN. Remove or impute such values first (e.g. "
            f"np.nan_to_num, or drop the rows np.isfinite(x).all(axis=1) rejects)")
