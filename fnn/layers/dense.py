"""Dense (fully connected) layer: ``y = x w + b``."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import jax
import jax.numpy as jnp

from fnn import initializers
from fnn.errors import LayerTypeError, LayerValueError
from fnn.layers.base import Layer, Params, State, input_struct, resolve_initializers


@dataclasses.dataclass(frozen=True)
class Dense(Layer):
    """Fully connected layer: ``y = x w + b`` (the notes' ``z = W a + b``, transposed).

    With input ``x`` of shape ``(batch, in)``, ``w`` has shape ``(in, features)``
    and ``b`` shape ``(features,)``:

        y[n, j] = sum_i x[n, i] * w[i, j] + b[j]

    The input feature size ``in`` is fixed by ``init`` from the example input.
    Inputs of rank > 2 are accepted: like Keras, the layer acts on the *last*
    axis only, so ``(batch, seq, in)`` gives ``(batch, seq, features)``
    (flatten images with `fnn.Flatten` first). Rank < 2 (no batch axis)
    is an error.

    Parameters: ``{"w": (in, features), "b": (features,)}`` (no ``"b"`` when
    ``use_bias=False``), created in ``float32`` (or the input's float type if
    wider). Stateless: ``state == {}``.

    Args:
      features: number of output units.
      use_bias: add the bias ``b``.
      w_init: initializer of ``w`` (a name or an init function, see
        `fnn.initializers`); default ``glorot_uniform()``,
        ``U(-sqrt(6/(in+features)), +)``, good for tanh/sigmoid. For ReLU
        layers He initialisation (``"he_normal"``) keeps activations' variance
        steady across depth.
      b_init: initializer of ``b``; default ``zeros()``.

    Raises:
      LayerValueError: ``features`` is not a positive int; unknown initializer
        name; input of rank < 2 or with a last axis that differs from the one
        ``params["w"]`` was built for; a params dict of the wrong structure.
      LayerTypeError: non-float input (e.g. integer token ids).

    Examples:
      >>> layer = fnn.Dense(3)
      >>> params, state = layer.init(jax.random.key(0), jnp.ones((2, 4)))
      >>> jax.tree.map(jnp.shape, params)
      {'b': (3,), 'w': (4, 3)}
      >>> y, state = layer.apply(params, state, jnp.ones((2, 4)))
      >>> y.shape, state
      ((2, 3), {})
    """

    features: int
    use_bias: bool = True
    w_init: Any = initializers.glorot_uniform()
    b_init: Any = initializers.zeros()

    def __post_init__(self):
        if (isinstance(self.features, bool) or not isinstance(self.features, numbers.Integral)
                or self.features < 1):
            raise LayerValueError(self, f"features must be a positive int, got {self.features!r}")
        object.__setattr__(self, "features", int(self.features))
        resolve_initializers(self, "w_init", "b_init")

    def _check_input(self, shape: tuple[int, ...], dtype: Any, features_in: Any = "in") -> None:
        if len(shape) < 2:
            raise LayerValueError(self, "expected input of rank >= 2, shape (batch, ..., "
                                  f"{features_in}); got rank {len(shape)}, shape {shape}")
        if not jnp.issubdtype(dtype, jnp.floating):
            raise LayerTypeError(self, f"expected a floating-point input, got dtype {dtype} "
                                 f"(shape {shape}); cast with x.astype(jnp.float32)")

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """``{"w": w_init(in, features), "b": b_init(features)}`` for inputs like ``x``."""
        x = input_struct(x)
        self._check_input(x.shape, x.dtype)
        dtype = jnp.promote_types(x.dtype, jnp.float32)
        w_key, b_key = jax.random.split(key)
        params = {"w": self.w_init(w_key, (x.shape[-1], self.features), dtype)}
        if self.use_bias:
            params["b"] = self.b_init(b_key, (self.features,), dtype)
        return params, {}

    def _check_params(self, params: Params) -> None:
        expected = {"w", "b"} if self.use_bias else {"w"}
        keys = set(params) if isinstance(params, dict) else None
        if keys != expected:
            got = sorted(keys) if keys is not None else type(params).__name__
            raise LayerValueError(self, f"params must be a dict with keys {sorted(expected)}, "
                                  f"got {got}")
        w = params["w"]
        if jnp.ndim(w) != 2 or jnp.shape(w)[1] != self.features:
            raise LayerValueError(self, f"params['w'] must have shape (features_in, "
                                  f"{self.features}), got {jnp.shape(w)}")
        if self.use_bias and jnp.shape(params["b"]) != (self.features,):
            raise LayerValueError(self, f"params['b'] must have shape ({self.features},), "
                                  f"got {jnp.shape(params['b'])}")

    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """``y = x w + b`` over the last axis of ``x``; returns ``(y, state)``."""
        del key, train
        x = jnp.asarray(x)
        self._check_params(params)
        w = params["w"]
        self._check_input(x.shape, x.dtype, w.shape[0])
        if x.shape[-1] != w.shape[0]:
            raise LayerValueError(
                self, f"expected input of shape (batch, ..., {w.shape[0]}) (params['w'] has "
                f"shape {tuple(w.shape)}), got {tuple(x.shape)}")
        y = x @ w
        if self.use_bias:
            b = params["b"]
            y = y + jnp.reshape(b, (1,) * (y.ndim - 1) + b.shape)
        return y, state
