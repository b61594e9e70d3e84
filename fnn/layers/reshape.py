"""Reshape and Permute: change the layout of each example, keeping the batch axis."""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import jax
import jax.numpy as jnp

from fnn.errors import LayerValueError
from fnn.layers.base import ParameterFreeLayer, Params, State


def _ints(layer, name: str, values) -> tuple[int, ...]:
    values = (values,) if isinstance(values, int) else tuple(values)
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise LayerValueError(layer, f"{name} must be a non-empty tuple of ints, got {values!r}")
    return values


@dataclasses.dataclass(frozen=True)
class Reshape(ParameterFreeLayer):
    """Reshape each example: ``(batch, *in_shape)`` to ``(batch, *shape)``.

    As Keras's ``Reshape``: ``shape`` leaves out the batch axis, and one of its
    entries may be ``-1`` (inferred from the others). The examples' values stay
    in their row-major order (``jnp.reshape``). No parameters, no state. E.g.
    ``Reshape((8, 8))`` turns ``(n, 8, 8, 1)`` digit images into sequences of 8
    rows of 8 pixels for an LSTM.

    Args:
      shape: the new shape of one example (no batch axis), at most one ``-1``.

    Raises:
      LayerValueError: a shape with more than one ``-1`` or a non-positive entry;
        an input whose example size differs from the shape's.

    Examples:
      >>> y, _ = fnn.Reshape((8, 8)).apply({}, {}, jnp.zeros((5, 8, 8, 1)))
      >>> y.shape
      (5, 8, 8)
      >>> fnn.Reshape((-1, 4)).apply({}, {}, jnp.zeros((2, 3, 8)))[0].shape
      (2, 6, 4)
    """

    shape: Sequence[int]

    def __post_init__(self):
        shape = _ints(self, "shape", self.shape)
        if sum(d == -1 for d in shape) > 1 or any(d == 0 or d < -1 for d in shape):
            raise LayerValueError(self, f"shape must hold positive sizes and at most one -1, "
                                  f"got {shape}")
        object.__setattr__(self, "shape", shape)

    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """``x.reshape(batch, *shape)``; returns ``(y, state)``."""
        del params, key, train
        x = jnp.asarray(x)
        if x.ndim < 1:
            raise LayerValueError(self, f"expected input with a batch axis, got shape {x.shape}")
        size, known = math.prod(x.shape[1:]), math.prod(d for d in self.shape if d != -1)
        shape = tuple(size // known if d == -1 else d for d in self.shape)
        if math.prod(shape) != size or (-1 in self.shape and size % known):
            raise LayerValueError(self, f"cannot reshape examples of shape {x.shape[1:]} "
                                  f"({size} values) to {self.shape}")
        return jnp.reshape(x, (x.shape[0],) + shape), state


@dataclasses.dataclass(frozen=True)
class Permute(ParameterFreeLayer):
    """Permute the axes of each example; the batch axis stays first.

    As Keras's ``Permute``: ``dims`` numbers the example's axes from 1 (axis 0
    is the batch), so ``Permute((2, 1))`` swaps the two axes of ``(batch, t,
    f)`` inputs: ``y[b, j, i] = x[b, i, j]``. No parameters, no state.

    Args:
      dims: a permutation of ``1 .. k`` for inputs ``(batch, d_1, ..., d_k)``.

    Raises:
      LayerValueError: ``dims`` that is not a permutation of ``1 .. k`` for the input.

    Examples:
      >>> y, _ = fnn.Permute((2, 1)).apply({}, {}, jnp.zeros((4, 3, 5)))
      >>> y.shape
      (4, 5, 3)
    """

    dims: Sequence[int]

    def __post_init__(self):
        object.__setattr__(self, "dims", _ints(self, "dims", self.dims))

    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """``transpose(x, (0, *dims))``; returns ``(y, state)``."""
        del params, key, train
        x = jnp.asarray(x)
        if sorted(self.dims) != list(range(1, x.ndim)):
            raise LayerValueError(self, f"dims {self.dims} must be a permutation of "
                                  f"{tuple(range(1, x.ndim))} (the example's axes, numbered "
                                  f"from 1) for input of shape {x.shape}")
        return jnp.transpose(x, (0,) + self.dims), state
