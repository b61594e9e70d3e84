"""Position information for attention models: sinusoidal encodings and learned embeddings.

Attention by itself ignores the order of its inputs; both layers add a vector
per position to ``x`` of shape ``(batch, time, features)``. A pair ``(x,
mask)`` gives ``(y, mask)`` (the mask passes through, as in
`fnn.layers.recurrent`).
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn import initializers
from fnn.errors import LayerValueError
from fnn.layers.base import (Layer, ParameterFreeLayer, Params, State, input_struct,
                             resolve_initializers)
from fnn.layers.sequence_input import check_sequence, split_pair


def _split(layer: Any, x: Any) -> tuple[Any, Any]:
    return split_pair(layer, x)


def _check(layer: Any, shape: tuple[int, ...], dtype: Any) -> None:
    check_sequence(layer, shape, dtype, "a sequence batch")


def sinusoids(length: int, features: int) -> np.ndarray:
    """The table ``PE[pos, 2i] = sin(pos / 10000^(2i/d))``, ``PE[pos, 2i+1] = cos(...)``."""
    position = np.arange(length)[:, None]
    rate = 1.0 / 10000 ** (np.arange(0, features, 2) / features)
    table = np.zeros((length, features))
    table[:, 0::2] = np.sin(position * rate)
    table[:, 1::2] = np.cos(position * rate[:features // 2])
    return table


@dataclasses.dataclass(frozen=True)
class SinusoidalPositionalEncoding(ParameterFreeLayer):
    """Add the fixed sinusoids of Vaswani et al. (2017): ``y[b, t] = x[b, t] + PE[t]``.

        PE[t, 2i] = sin(t / 10000^(2i / d)),   PE[t, 2i + 1] = cos(t / 10000^(2i / d))

    with ``d`` the feature size. No parameters, any sequence length. ``scale``
    multiplies ``x`` first (``sqrt(d)`` in the paper, after an embedding).

    Args:
      scale: a factor on ``x`` (default 1.0).

    Examples:
      >>> layer = fnn.SinusoidalPositionalEncoding()
      >>> y, _ = layer.apply({}, {}, jnp.zeros((1, 3, 4)))
      >>> y[0, 1].round(4).tolist()                    # sin(1), cos(1), sin(0.01), cos(0.01)
      [0.8415, 0.5403, 0.0100, 1.0000]
    """

    scale: float = 1.0

    def apply(self, params: Params, state: State, x: Any, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[Any, State]:
        """``scale * x + PE[:time]``; returns ``(y, state)``."""
        del params, key, train
        x, mask = _split(self, x)
        x = jnp.asarray(x)
        _check(self, x.shape, x.dtype)
        table = jnp.asarray(sinusoids(x.shape[1], x.shape[2]), x.dtype)
        y = self.scale * x + table[None]
        return ((y, mask) if mask is not None else y), state


@dataclasses.dataclass(frozen=True)
class LearnedPositionalEmbedding(Layer):
    """Add a learned vector per position: ``y[b, t] = x[b, t] + P[t]`` (BERT, GPT-2).

    Parameters ``{"embedding": (max_len, features)}``, initialised
    ``N(0, 0.02^2)``. A sequence longer than ``max_len`` is an error.

    Args:
      max_len: the longest sequence the table covers.
      e_init: initializer of the table.

    Examples:
      >>> layer = fnn.LearnedPositionalEmbedding(max_len=10)
      >>> params, _ = layer.init(jax.random.key(0), jnp.zeros((1, 4, 3)))
      >>> params["embedding"].shape, layer.apply(params, {}, jnp.zeros((2, 6, 3)))[0].shape
      ((10, 3), (2, 6, 3))
    """

    max_len: int
    e_init: Any = initializers.normal(0.02)

    def __post_init__(self):
        if (isinstance(self.max_len, bool) or not isinstance(self.max_len, numbers.Integral)
                or self.max_len < 1):
            raise LayerValueError(self, f"max_len must be a positive int, got {self.max_len!r}")
        resolve_initializers(self, "e_init")

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """``{"embedding": e_init(max_len, features)}``."""
        x = input_struct(_split(self, x)[0])
        _check(self, x.shape, x.dtype)
        dtype = jnp.promote_types(x.dtype, jnp.float32)
        return {"embedding": self.e_init(key, (self.max_len, x.shape[-1]), dtype)}, {}

    def apply(self, params: Params, state: State, x: Any, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[Any, State]:
        """``x + P[:time]``; returns ``(y, state)``."""
        del key, train
        x, mask = _split(self, x)
        x = jnp.asarray(x)
        _check(self, x.shape, x.dtype)
        table = params.get("embedding") if isinstance(params, dict) else None
        if table is None or jnp.shape(table) != (self.max_len, x.shape[-1]):
            raise LayerValueError(self, f"params['embedding'] must have shape ({self.max_len}, "
                                  f"{x.shape[-1]}), got {jnp.shape(table)}")
        if x.shape[1] > self.max_len:
            raise LayerValueError(self, f"the sequence is longer ({x.shape[1]} steps, input "
                                  f"shape {x.shape}) than max_len={self.max_len}")
        y = x + table[None, :x.shape[1]].astype(x.dtype)
        return ((y, mask) if mask is not None else y), state
