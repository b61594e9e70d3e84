"""Flatten all axes but the batch axis."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from fnn.errors import LayerValueError
from fnn.layers.base import ParameterFreeLayer, Params, State


@dataclasses.dataclass(frozen=True)
class Flatten(ParameterFreeLayer):
    """Reshape ``(batch, d1, ..., dk)`` to ``(batch, d1 * ... * dk)``.

    The batch axis is kept (a ``(batch,)`` input becomes ``(batch, 1)``), e.g.
    to feed NHWC images (``fnn.datasets.load_digits(images=True)``) to a
    `fnn.Dense`. No parameters, no state.

    Raises:
      LayerValueError: a rank-0 input (no batch axis).

    Examples:
      >>> y, _ = fnn.Flatten().apply({}, {}, jnp.zeros((2, 28, 28, 3)))
      >>> y.shape
      (2, 2352)
    """

    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """``x.reshape(batch, -1)``; returns ``(y, state)``."""
        del params, key, train
        x = jnp.asarray(x)
        if x.ndim < 1:
            raise LayerValueError(self, f"expected input with a batch axis, got shape {x.shape}")
        return jnp.reshape(x, (x.shape[0], math.prod(x.shape[1:]))), state
