"""Embedding: integer ids -> rows of a learned table (word embeddings)."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn import initializers
from fnn.errors import LayerTypeError, LayerValueError
from fnn.layers.base import Layer, Params, State, input_struct, resolve_initializers


@dataclasses.dataclass(frozen=True)
class Embedding(Layer):
    """Look up a learned vector per integer id: ``y[..., :] = E[ids[...], :]``.

    Equivalent to ``one_hot(ids, vocab_size) @ E`` (the notes' ``e_w = E o_w``),
    computed as a gather. Ids of any shape ``(batch, ...)`` give
    ``(batch, ..., features)``; the gradient of ``E`` adds up the cotangents
    of every occurrence of each id. A pair ``(ids, mask)`` gives
    ``(vectors, mask)``, the mask passed on unchanged to the recurrent layers
    after it (`fnn.layers.recurrent`).

    Parameters: ``{"embedding": (vocab_size, features)}``, initialised
    ``N(0, 1)`` like PyTorch's ``nn.Embedding`` unless ``e_init`` says otherwise.
    Stateless.

    Out-of-range ids: `fnn.fit`, `fnn.evaluate` and
    `fnn.predict` check concrete ids before compiling and raise a
    ``ValueError`` naming the offending values. Inside your own jitted code
    ids cannot be checked; there an id outside ``[0, vocab_size)``, negative
    ones included, gives a row of NaN (``jnp.take(..., mode="fill")``), so a
    bad id shows up in the loss instead of silently reading another word's
    vector.

    Args:
      vocab_size: the number of ids (rows of the table).
      features: the size of each vector.
      e_init: initializer of the table (default ``normal(1.0)``).

    Raises:
      LayerValueError: ``vocab_size`` or ``features`` not a positive int; a
        table of the wrong shape; a scalar input (no batch axis).
      LayerTypeError: float or bool ids.

    Examples:
      >>> layer = fnn.Embedding(vocab_size=5, features=2)
      >>> params = {"embedding": jnp.arange(10.).reshape(5, 2)}
      >>> y, _ = layer.apply(params, {}, jnp.array([[0, 4, 4]]))
      >>> y.tolist()
      [[[0.0000, 1.0000], [8.0000, 9.0000], [8.0000, 9.0000]]]
    """

    vocab_size: int
    features: int
    e_init: Any = initializers.normal(1.0)

    def __post_init__(self):
        for name in ("vocab_size", "features"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise LayerValueError(self, f"{name} must be a positive int, got {value!r}")
            object.__setattr__(self, name, int(value))
        resolve_initializers(self, "e_init")

    def _check_input(self, shape: tuple[int, ...], dtype: Any) -> None:
        if not jnp.issubdtype(dtype, jnp.integer):
            raise LayerTypeError(self, f"expected integer ids, got dtype {dtype} (shape "
                                 f"{shape}); convert with ids.astype(jnp.int32)")
        if len(shape) < 1:
            raise LayerValueError(self, f"expected ids with a leading batch axis, shape "
                                  f"(batch, ...), got shape {shape}")

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """``{"embedding": e_init(vocab_size, features)}``."""
        x = input_struct(x[0] if isinstance(x, (tuple, list)) else x)
        self._check_input(x.shape, x.dtype)
        return {"embedding": self.e_init(key, (self.vocab_size, self.features),
                                         jnp.float32)}, {}

    def check_inputs(self, ids: Any, where: str) -> None:
        """``ValueError`` unless the concrete ``ids`` lie in ``[0, vocab_size)`` (fit's check)."""
        if isinstance(ids, (tuple, list)) and len(ids) == 2:
            ids = ids[0]                         # (ids, mask)
        if not hasattr(ids, "dtype"):
            return                               # another kind of input: not ids for this layer
        ids = np.asarray(ids)
        if ids.size and jnp.issubdtype(ids.dtype, jnp.integer) and (
                ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = ids[(ids < 0) | (ids >= self.vocab_size)]
            raise ValueError(f"{where}: {type(self).__name__} ids must lie in [0, "
                             f"{self.vocab_size}) (vocab_size {self.vocab_size}), got "
                             f"{bad.size} id(s) outside it, from {ids.min()} to {ids.max()} "
                             f"(e.g. {bad[:5].tolist()})")

    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """The rows of the table for the ids ``x``; returns ``(y, state)``."""
        del key, train
        if isinstance(x, (tuple, list)):
            if len(x) != 2:
                raise LayerValueError(self, f"expected ids or a pair (ids, mask), got a "
                                      f"sequence of {len(x)} items")
            y, state = self.apply(params, state, x[0])
            return (y, x[1]), state
        x = jnp.asarray(x)
        self._check_input(x.shape, x.dtype)
        table = params.get("embedding") if isinstance(params, dict) else None
        if table is None or jnp.shape(table) != (self.vocab_size, self.features):
            got = jnp.shape(table) if table is not None else params
            raise LayerValueError(self, f"params['embedding'] must have shape "
                                  f"({self.vocab_size}, {self.features}), got {got!r:.80}")
        ids = jnp.where(x < 0, self.vocab_size, x)     # no Python-style wrap-around of -1
        return jnp.take(table, ids, axis=0, mode="fill", fill_value=jnp.nan), state
