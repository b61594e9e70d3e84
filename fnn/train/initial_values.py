"""Starting values of a fit: parameters, model state, optimizer state, owned buffers."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from fnn.caching import memoize, shape_key, structs_of_key
from fnn.train import checks


@memoize
def jitted_init(model: Any, x_key: tuple) -> Callable:
    """``init(key) -> (params, state)``: fit's ``model.init(split(key)[0], x)``, compiled once
    per model and input layout (``x_key``: :func:`fnn.caching.shape_key` of ``x``)."""
    x = structs_of_key(x_key)
    return jax.jit(lambda key: model.init(jax.random.split(key)[0], x))


@memoize
def _init_structs(model: Any, x_key: tuple, key_struct: jax.ShapeDtypeStruct) -> Any:
    return jax.eval_shape(model.init, key_struct, structs_of_key(x_key))


def initial_structs(model: Any, params: Any, state: Any, key: Any, x: Any) -> tuple[Any, Any]:
    """Shapes and dtypes of the starting ``(params, state)``, without computing anything.

    Raises:
      ValueError: ``params`` is ``None`` and the model cannot initialise itself
        (e.g. a plain function without ``init_fn``).
    """
    try:
        init_params, init_state = _init_structs(model, shape_key(x),
                                                jax.ShapeDtypeStruct(key.shape, key.dtype))
    except (ValueError, TypeError) as err:
        if params is None:
            # The init error says what is wrong (a FunctionLayer without init_fn says to
            # pass params=); advice to pass params= would mislead for bad data.
            raise ValueError(f"fit: the model initialises itself from x (params=None), and "
                             f"model.init fails for x of shape {jax.tree.map(jnp.shape, x)}: "
                             f"{err}") from err
        init_params, init_state = None, {}
    return (init_params if params is None else checks.struct(params),
            init_state if state is None else checks.struct(state))


def initial_params(model: Any, params: Any, state: Any, key: Any, x: Any,
                   state_struct: Any) -> tuple[Any, Any]:
    """``(params, state)``: the given ones, or ``model.init(init_key, x)`` (compiled once per shape).

    ``init_key = jax.random.split(key)[0]``, computed inside the compiled init.

    When ``params`` is given and ``state`` is not, the state comes from
    ``model.init`` if the model has any (the empty structure otherwise).
    ``state_struct`` is the state's structure from :func:`initial_structs`.
    """
    if params is None or (state is None and jax.tree.leaves(state_struct)):
        new_params, new_state = jitted_init(model, shape_key(x))(key)
        params = new_params if params is None else params
        state = new_state if state is None else state
    return params, state_struct if state is None else state  # a struct without leaves


def check_opt_state(optimizer: Any, opt_state: Any, params: Any) -> Any:
    """The given ``opt_state`` (``None`` stays ``None``) checked against ``optimizer.init``.

    ``params`` may be structs: nothing is computed.

    Raises:
      ValueError: ``opt_state``'s structure or shapes differ from ``optimizer.init(params)``.
    """
    if opt_state is None:
        return None
    expected = jax.eval_shape(optimizer.init, params)
    if jax.tree.structure(expected) != jax.tree.structure(opt_state) or [
            s.shape for s in jax.tree.leaves(expected)] != [
            jnp.shape(a) for a in jax.tree.leaves(opt_state)]:
        raise ValueError("fit: opt_state does not match optimizer.init(params): expected "
                         f"{jax.tree.structure(expected)}, got {jax.tree.structure(opt_state)}")
    return opt_state


def own_arrays(tree: Any, copy: bool) -> Any:
    """``tree``'s leaves as strongly typed, committed device arrays, in new buffers when ``copy``.

    A compiled function then sees the same kind of input in every epoch, so it
    never compiles twice: its outputs are strongly typed and committed to their
    device, so a weakly typed leaf (a Python number, ``jnp.asarray(0.1)``)
    becomes a new array of its dtype, and a numpy array or an uncommitted
    device array (what an init or ``jax.device_put(x)`` without a device
    gives) is committed where it lies (no copy). ``copy=True`` copies every
    other leaf too, so the result can be donated while the caller's arrays
    stay valid (and a buffer appearing twice in ``tree`` becomes two).
    """
    def one(a):
        if getattr(a, "weak_type", False) or not hasattr(a, "dtype"):
            a = jnp.asarray(a)
            a = jnp.asarray(a, dtype=a.dtype)  # a new, strongly typed array
        elif copy:
            a = jax.device_put(a, may_alias=False)
        elif not isinstance(a, jax.Array):
            a = jax.device_put(a)
        return a if a.committed else jax.device_put(a, a.sharding)
    return jax.tree.map(one, tree)
