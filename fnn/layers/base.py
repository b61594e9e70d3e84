"""The layer contract shared by every fnn layer.

A layer is an immutable, hashable value holding only hyperparameters (a frozen
dataclass), so it can be a static argument of `jax.jit`. Its arrays live
in two plain nested dicts that the caller owns:

    params, state = layer.init(key, x)
    y, state = layer.apply(params, state, x, *, key=None, train=False)

``x`` carries a leading batch axis. ``init`` accepts an example batch or a
`jax.ShapeDtypeStruct` and reads only its shape and dtype, so
``jax.eval_shape(layer.init, key, x)`` costs no computation. Stateless layers
return ``state == {}``. A stochastic layer called with ``train=True`` and no
``key`` raises `fnn.errors.LayerValueError`.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

from fnn.errors import LayerTypeError
from fnn.layers import scope

Params = dict[str, Any]
State = dict[str, Any]


def is_shape(x: Any) -> bool:
    """Whether ``x`` is a bare shape (a tuple or list of Python ints), not an input."""
    return (isinstance(x, (tuple, list)) and len(x) > 0
            and all(isinstance(d, int) and not isinstance(d, bool) for d in x))


def shape_instead_of_input(where: str, x: Any) -> str:
    """The message for a bare shape passed where an example input belongs."""
    shape = tuple(x)
    return (f"{where} got the shape {shape}, not an example input: pass an example batch, "
            f"e.g. jnp.zeros((1,) + {shape}), or a jax.ShapeDtypeStruct((batch,) + {shape}, "
            f"jnp.float32) (inputs have a leading batch axis, so a shape alone is ambiguous)")


class Layer(abc.ABC):
    """Base class of fnn layers (subclasses are ``@dataclass(frozen=True)``).

    Every subclass's ``init`` first refuses a bare shape (``init(key, (8, 8, 1))``),
    with a message saying to pass an example batch or a ``jax.ShapeDtypeStruct``.
    Every subclass's ``apply`` hands its output to an open
    `fnn.layers.scope.intercept` (and costs nothing when none is open).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        apply = cls.__dict__.get("apply")
        if apply is not None and not getattr(apply, "intercepted", False) and not getattr(
                apply, "__isabstractmethod__", False):
            cls.apply = scope.intercepted(apply)
        init = cls.__dict__.get("init")
        if init is None or getattr(init, "refuses_shapes", False) or getattr(
                init, "__isabstractmethod__", False):
            return

        @functools.wraps(init)
        def checked_init(self, key, x, *args, **kw):
            if is_shape(x):
                raise LayerTypeError(self, shape_instead_of_input("init", x))
            return init(self, key, x, *args, **kw)
        checked_init.refuses_shapes = True
        cls.init = checked_init

    @abc.abstractmethod
    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """Create ``(params, state)`` for inputs shaped like ``x``.

        Args:
          key: a PRNG key for random initialisers.
          x: an example batch, or a ``jax.ShapeDtypeStruct`` of one.

        Returns:
          ``(params, state)``, plain nested dicts of arrays.
        """

    @abc.abstractmethod
    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """Run the layer on a batch.

        Args:
          params: the parameters from ``init`` (or trained ones).
          state: non-trainable state from ``init`` (``{}`` for a stateless layer).
          x: the input batch (leading batch axis).
          key: PRNG key, needed by stochastic layers when ``train=True``.
          train: training mode (e.g. dropout active).

        Returns:
          ``(y, new_state)``.
        """

    def __call__(self, params: Params, state: State, x: jax.Array, **kwargs):
        """Same as `apply`."""
        return self.apply(params, state, x, **kwargs)


class ParameterFreeLayer(Layer):
    """Base of layers with neither parameters nor state: ``init`` gives ``({}, {})``."""

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """No parameters and no state: ``({}, {})``."""
        del key, x
        return {}, {}


def child_layers(layer: Any) -> list:
    """Layers held by ``layer``'s dataclass fields (directly or in a list/tuple/dict)."""
    if not dataclasses.is_dataclass(layer):
        return []
    found = []
    for field in dataclasses.fields(layer):
        value = getattr(layer, field.name, None)
        values = value.values() if isinstance(value, dict) else (
            value if isinstance(value, (list, tuple)) else (value,))
        found.extend(v for v in values if is_layer(v))
    return found


def check_input_values(model: Any, x: Any, where: str) -> None:
    """Host-side checks of a model's concrete input, before anything compiles.

    Layers that can only check values on the host (an ``Embedding``'s id range:
    inside a compiled step an out-of-range id cannot raise) define
    ``check_inputs(x, where)``. This calls it on every layer that sees ``x`` as
    it is: the first child of a `fnn.Sequential` (found by its
    ``input_layers`` method), every child of another container (``Parallel``
    branches, ``Residual``), the model itself; a layer with its own
    ``check_inputs`` checks its parts (e.g. ``EncoderDecoder``). Traced input
    (e.g. ``predict`` inside ``jit``) is not checked.
    """
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x)):
        return
    check = getattr(model, "check_inputs", None)
    if check is not None:
        check(x, where)
        return
    first = getattr(model, "input_layers", None)
    for child in (first() if first is not None else child_layers(model)):
        check_input_values(child, x, where)


def is_layer(obj: Any) -> bool:
    """True if ``obj`` follows the layer contract (has ``init`` and ``apply``)."""
    return callable(getattr(obj, "init", None)) and callable(getattr(obj, "apply", None))


def layer_repr(layer: Layer) -> str:
    """A short readable name, e.g. ``Dense(features=10)`` (non-default fields only).

    Fields holding layers (or tuples of layers) are shown with ``layer_repr`` too.
    """
    if not dataclasses.is_dataclass(layer):
        return type(layer).__name__
    parts = []
    for f in dataclasses.fields(layer):
        if not f.repr:
            continue
        value = getattr(layer, f.name)
        if f.default is not dataclasses.MISSING and _is_default(value, f.default):
            continue
        parts.append(f"{f.name}={_value_repr(value)}")
    return f"{type(layer).__name__}({', '.join(parts)})"


def _is_default(value: Any, default: Any) -> bool:
    """``value == default``, also for a per-axis tuple made from a scalar default (stride 1)."""
    if isinstance(value, tuple) and not isinstance(default, tuple) and value:
        return all(v == default for v in value)
    return value == default


def child_repr(layer: Any) -> str:
    # Containers with named children (Sequential with names, Parallel) write their own.
    return repr(layer) if getattr(layer, "names", None) is not None else layer_repr(layer)


def _value_repr(value: Any) -> str:
    if is_layer(value):
        return child_repr(value)
    if isinstance(value, (tuple, list)) and value and all(is_layer(v) for v in value):
        return "[" + ", ".join(child_repr(v) for v in value) + "]"
    if callable(value) and hasattr(value, "__qualname__"):
        return value.__qualname__
    return repr(value)


def input_struct(x: Any) -> jax.ShapeDtypeStruct:
    """Shape and dtype of ``x`` (an array, a tracer or a ``jax.ShapeDtypeStruct``)."""
    if isinstance(x, jax.ShapeDtypeStruct):
        return x
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
        x = jnp.asarray(x)
    return jax.ShapeDtypeStruct(tuple(x.shape), x.dtype)


def resolve_initializers(layer: Any, *names: str) -> None:
    """Replace each named initializer field of a frozen ``layer`` by ``initializers.get`` of it.

    Args:
      layer: a frozen dataclass layer (called from its ``__post_init__``).
      *names: the fields holding an initializer name or init function.

    Raises:
      LayerValueError: an unknown initializer name (the message names the field).
      LayerTypeError: a value that is neither a name nor an init function.
    """
    from fnn import initializers
    from fnn.errors import LayerTypeError, LayerValueError

    for name in names:
        try:
            object.__setattr__(layer, name, initializers.get(getattr(layer, name)))
        except ValueError as err:
            raise LayerValueError(layer, f"{name}: {err}") from None
        except TypeError as err:
            raise LayerTypeError(layer, f"{name}: {err}") from None
