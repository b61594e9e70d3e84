"""One memoisation rule for everything fnn builds once per static configuration.

Compiled functions (``jax.jit`` of a train step or an epoch) and optimizer
``update`` functions are built by factories keyed on *static* values: layer
objects, loss functions, option flags, shapes and dtypes. Equal keys give the
same object back, so a ``jit`` keyed on it does not trace or compile again.
An argument that cannot be hashed (a user's callable object without
``__hash__``) is not cached: the factory runs afresh each time, which is
correct but traces and compiles again.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import jax
import numpy as np


def memoize(factory: Callable | None = None, *, maxsize: int = 1024) -> Callable:
    """``functools.lru_cache`` for factories of functions, keyed on hashable static arguments.

    Args:
      factory: the function to memoize (or ``None`` to use as ``@memoize(maxsize=...)``).
      maxsize: the number of configurations kept.

    Returns:
      The memoized factory (with ``cache_clear``); called with an unhashable
      argument it calls ``factory`` directly.

    Examples:
      >>> from fnn.caching import memoize
      >>> @memoize
      ... def build(n):
      ...     return lambda x: x * n
      >>> build(2) is build(2), build(2)(3)
      (True, 6)
    """
    if factory is None:
        return functools.partial(memoize, maxsize=maxsize)
    cached = functools.lru_cache(maxsize=maxsize)(factory)

    @functools.wraps(factory)
    def wrapper(*args):
        try:
            hash(args)
        except TypeError:
            return factory(*args)
        return cached(*args)

    wrapper.cache_clear = cached.cache_clear
    return wrapper


def shape_key(tree) -> tuple:
    """A hashable key for the shapes and dtypes of a pytree of arrays (or structs).

    Args:
      tree: a pytree of arrays, ``jax.ShapeDtypeStruct`` or numbers. Dtypes
        are the ones the leaves get on the device (float64 numpy becomes
        float32 unless x64 is enabled).

    Returns:
      ``(treedef, ((shape, dtype), ...))``, hashable and equal for equal layouts;
      `structs_of_key` turns it back into ``ShapeDtypeStruct`` leaves.

    Examples:
      >>> from fnn.caching import shape_key, structs_of_key
      >>> key = shape_key({"w": jnp.zeros((2, 3))})
      >>> key == shape_key({"w": np.ones((2, 3), np.float32)}), structs_of_key(key)["w"].shape
      (True, (2, 3))
    """
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((tuple(np.shape(a)), jax.dtypes.canonicalize_dtype(
        a.dtype if hasattr(a, "dtype") else np.result_type(a))) for a in leaves)


def structs_of_key(key: tuple):
    """The pytree of ``jax.ShapeDtypeStruct`` that `shape_key` describes."""
    treedef, leaves = key
    return treedef.unflatten([jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in leaves])


def function_key(fn: Any) -> tuple:
    """A hashable key for what the Python function ``fn`` computes: its code, and everything
    its closure, defaults and ``functools.partial`` arguments hold, recursively.

    Two functions with equal keys compute the same thing from the same arguments (their
    globals aside). Numbers and strings count by value, arrays by shape, dtype and bytes,
    functions by their own keys; any other object counts by identity, so two distinct
    objects make different keys (never a wrong "equal"). Built from attributes only,
    without tracing (microseconds, where ``jax.make_jaxpr`` takes milliseconds).

    Raises:
      TypeError: a closure too deep to follow (more than 64 nested levels).

    Examples:
      >>> from fnn.caching import function_key
      >>> function_key(fnn.optim.adam(1e-3).update) == function_key(fnn.optim.adam(0.1).update)
      True
      >>> function_key(fnn.optim.adam(1e-3).update) == function_key(fnn.optim.sgd(0.1).update)
      False
    """
    return _static_key(fn, 0, set())


def _static_key(value: Any, depth: int, seen: set) -> Any:
    if depth > 64:
        raise TypeError("function_key: too deeply nested")
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return (type(value).__name__, value)
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        array = np.asarray(value)
        return ("array", array.shape, str(array.dtype), array.tobytes())
    if id(value) in seen:                    # a cycle: a function reaching itself
        return ("cycle", id(value))
    seen = seen | {id(value)}
    step = lambda v: _static_key(v, depth + 1, seen)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(step(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((repr(k), step(v)) for k, v in value.items()))
    if isinstance(value, functools.partial):
        return ("partial", step(value.func), step(value.args), step(value.keywords))
    if inspect.isfunction(value):
        cells = tuple(step(c.cell_contents) if _filled(c) else ("empty",)
                      for c in value.__closure__ or ())
        return ("function", value.__code__, cells, step(value.__defaults__),
                step(value.__kwdefaults__))
    return ("object", id(value))


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True
