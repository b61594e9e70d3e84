"""Wrap a user's pure function ``apply_fn(params, x) -> y`` as a layer."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax

from fnn.errors import LayerError, LayerTypeError, LayerValueError
from fnn.layers.base import Layer, Params, State, is_layer


@dataclasses.dataclass(frozen=True)
class FunctionLayer(Layer):
    """A layer made of a plain function, so your own model trains with fnn.

    ``apply(params, state, x) = (apply_fn(params, x), state)``: ``params`` is
    *your* pytree (any nesting of dicts, lists, tuples of arrays); ``key`` and
    ``train`` are ignored and ``state`` is passed through (``{}``). Write a
    layer class when you need randomness or state.

    ``init(key, x)`` returns ``(init_fn(key, x), {})``. ``x`` may be a
    `jax.ShapeDtypeStruct` (inside `fnn.Sequential` it always
    is), so ``init_fn`` should read only ``x.shape`` and ``x.dtype``. Without
    an ``init_fn``, ``init`` raises: pass your own params instead (e.g.
    ``fnn.fit(model, ..., params=my_params)``). For a parameter-free function
    use ``init_fn=lambda key, x: {}``.

    A ``ValueError``/``TypeError`` raised by ``apply_fn`` (e.g. JAX's shape
    error in a matmul) is re-raised as `fnn.errors.LayerValueError` /
    ``LayerTypeError`` (still a ``ValueError``/``TypeError``), so it names
    this layer's path in the model.

    Args:
      apply_fn: pure ``apply_fn(params, x) -> y``.
      init_fn: optional ``init_fn(key, x) -> params``.

    Raises:
      LayerTypeError: ``apply_fn`` or ``init_fn`` is not callable (at
        construction); ``apply_fn`` raised a ``TypeError``.
      LayerValueError: ``init`` without an ``init_fn``; ``apply_fn`` raised a
        ``ValueError``.

    Examples:
      Logistic regression written as two plain functions:

      >>> def predict(params, x):
      ...     return jax.nn.sigmoid(x @ params["w"] + params["b"])
      >>> def init(key, x):
      ...     return {"w": jnp.zeros((x.shape[-1], 1)), "b": jnp.zeros(())}
      >>> model = fnn.FunctionLayer(predict, init)
      >>> params, state = model.init(jax.random.key(0), jnp.zeros((5, 3)))
      >>> y, state = model.apply(params, state, jnp.ones((5, 3)))
      >>> y.shape, float(y[0, 0])
      ((5, 1), 0.5000)
    """

    apply_fn: Callable[[Any, jax.Array], Any]
    init_fn: Callable[[jax.Array, Any], Any] | None = None

    def __post_init__(self):
        if not callable(self.apply_fn):
            raise LayerTypeError(self, "apply_fn must be a function apply_fn(params, x), got "
                                 f"{type(self.apply_fn).__name__}")
        if self.init_fn is not None and not callable(self.init_fn):
            raise LayerTypeError(self, "init_fn must be a function init_fn(key, x) or None, "
                                 f"got {type(self.init_fn).__name__}")

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """``(init_fn(key, x), {})``; raises when there is no ``init_fn``."""
        if self.init_fn is None:
            raise LayerValueError(
                self, f"{_name(self.apply_fn)} has no init_fn: pass your own params (e.g. "
                "fnn.fit(..., params=my_params)) or build FunctionLayer(apply_fn, init_fn)")
        return self.init_fn(key, x), {}

    def apply(self, params: Params, state: State, x: Any, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[Any, State]:
        """``(apply_fn(params, x), state)``."""
        del key, train
        try:
            return self.apply_fn(params, x), state
        except LayerError:
            raise
        except ValueError as err:
            raise LayerValueError(self, f"{_name(self.apply_fn)} raised ValueError: "
                                  f"{err}") from err
        except TypeError as err:
            raise LayerTypeError(self, f"{_name(self.apply_fn)} raised TypeError: "
                                 f"{err}") from err


def _name(fn: Callable) -> str:
    return f"apply_fn {getattr(fn, '__qualname__', type(fn).__name__)}"


def as_layer(obj: Any) -> Layer:
    """``obj`` if it is a layer (has ``init`` and ``apply``), else ``FunctionLayer(obj)``.

    Lets training code accept either an fnn layer or a plain
    ``apply(params, x)`` function.

    Args:
      obj: a layer or a function ``apply(params, x) -> y``.

    Returns:
      a layer.

    Raises:
      LayerTypeError: ``obj`` is neither a layer nor callable.

    Examples:
      >>> fnn.as_layer(fnn.Dense(2))
      Dense(features=2, use_bias=True, w_init=glorot_uniform(), b_init=zeros())
      >>> layer = fnn.as_layer(lambda params, x: x * params)
      >>> float(layer.apply(2.0, {}, 3.0)[0])
      6.0000
    """
    if is_layer(obj):
        return obj
    if callable(obj):
        return FunctionLayer(obj)
    raise LayerTypeError("as_layer", "expected a layer (with init/apply) or a function "
                         f"apply(params, x), got {type(obj).__name__}")
