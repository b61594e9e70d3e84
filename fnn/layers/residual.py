"""Residual: a skip connection, ``y = x + f(x)``."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax

from fnn.errors import LayerTypeError, LayerValueError
from fnn.layers.base import Layer, Params, State, input_struct, is_layer, layer_repr
from fnn.layers.scope import child


def _struct(tree: Any) -> Any:
    return jax.tree.map(input_struct, tree)


@dataclasses.dataclass(frozen=True)
class Residual(Layer):
    """A skip connection around ``layer``: ``y = x + f(x)``, or ``y = s(x) + f(x)``.

    The notes motivate it by vanishing gradients: in a deep plain network the
    gradient reaching the first layers is a product of many small factors,
    while through ``y = x + f(x)`` it is ``dy/dx = I + df/dx``, so the identity
    path carries it back unchanged. ``f`` (often a few layers in a
    `fnn.Sequential`) must keep the shape of ``x``; when it does not
    (more channels, a stride), give a ``shortcut`` ``s`` that maps ``x`` to
    ``f``'s output shape (ResNet's projection shortcut, e.g. ``Conv2D(64, 1)``).

    Parameters ``{"layer": params_f}`` plus ``"shortcut": params_s`` with a
    shortcut; state likewise (only for the parts that have state). Keys:
    ``f`` gets ``fold_in(key, 0)``, the shortcut ``fold_in(key, 1)``.

    Args:
      layer: the residual branch ``f``.
      shortcut: ``None`` (identity) or a layer ``s``.

    Raises:
      LayerTypeError: ``layer`` or ``shortcut`` is not a layer.
      LayerValueError: ``f(x)`` (or ``s(x)``) has another shape than ``x``
        (the message gives both shapes), or the parts' dtypes differ.

    Examples:
      >>> block = fnn.Residual(fnn.Sequential([fnn.Dense(4), fnn.Activation("relu"),
      ...                                      fnn.Dense(4)]))
      >>> params, state = block.init(jax.random.key(0), jnp.zeros((2, 4)))
      >>> sorted(params), jax.tree.map(jnp.shape, params["layer"]["0"])
      (['layer'], {'b': (4,), 'w': (4, 4)})
      >>> zero = jax.tree.map(jnp.zeros_like, params)   # f = 0, so y = x
      >>> block.apply(zero, state, jnp.ones((2, 4)))[0].tolist()
      [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]
    """

    layer: Layer
    shortcut: Layer | None = None

    def __post_init__(self):
        for name in ("layer", "shortcut"):
            value = getattr(self, name)
            if (value is not None or name == "layer") and not is_layer(value):
                raise LayerTypeError(self, f"{name} must be an fnn layer (with init/apply), got "
                                     f"{type(value).__name__}; wrap a function of x in "
                                     "fnn.Activation(fn)")

    def __repr__(self) -> str:
        return layer_repr(self)

    def _parts(self) -> list[tuple[str, Layer]]:
        parts = [("layer", self.layer)]
        return parts + ([("shortcut", self.shortcut)] if self.shortcut is not None else [])

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """Initialise ``f`` (and the shortcut) on ``x``; check that the shapes add up."""
        x = input_struct(x)
        params, state = {}, {}
        for i, (name, part) in enumerate(self._parts()):
            with child(name):
                params[name], s = part.init(jax.random.fold_in(key, i), x)
            if s or not isinstance(s, dict):
                state[name] = s
        jax.eval_shape(functools.partial(self.apply, train=False), _struct(params),
                       _struct(state), x)
        return params, state

    def apply(self, params: Params, state: State, x: Any, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[Any, State]:
        """``x + f(x)`` (or ``s(x) + f(x)``); returns ``(y, new_state)``."""
        names = [name for name, _ in self._parts()]
        if not isinstance(params, dict) or sorted(params) != sorted(names):
            got = sorted(params) if isinstance(params, dict) else type(params).__name__
            raise LayerValueError(self, f"params must be a dict with keys {names}, got {got}")
        outputs, new_state = {}, {}
        for i, (name, part) in enumerate(self._parts()):
            part_key = None if key is None else jax.random.fold_in(key, i)
            with child(name):
                outputs[name], s = part.apply(params[name], state.get(name, {}), x,
                                              key=part_key, train=train)
            if s or not isinstance(s, dict):
                new_state[name] = s
        skip = outputs.get("shortcut", x)
        fx = outputs["layer"]
        if getattr(fx, "shape", None) != getattr(skip, "shape", None):
            what = "shortcut(x)" if self.shortcut is not None else "the input x"
            fix = ("" if self.shortcut is not None else
                   "; give Residual(layer, shortcut=...) a layer mapping x to that shape "
                   "(e.g. Conv2D(features, 1, stride=...) or Dense(features))")
            raise LayerValueError(
                self, f"the inner layer's output has shape {getattr(fx, 'shape', fx)} but "
                f"{what} has shape {getattr(skip, 'shape', skip)}; y = x + f(x) needs equal "
                f"shapes{fix}")
        if fx.dtype != skip.dtype:
            raise LayerValueError(self, f"the inner layer's output has dtype {fx.dtype} but the "
                                  f"skip path has {skip.dtype}")
        return skip + fx, new_state
