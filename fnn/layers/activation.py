"""Activation layers: a fixed function `Activation`, a learnable `PReLU`."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from fnn import activations
from fnn.errors import LayerTypeError, LayerValueError
from fnn.layers.base import Layer, ParameterFreeLayer, Params, State, input_struct


@dataclasses.dataclass(frozen=True)
class Activation(ParameterFreeLayer):
    """Apply an element-wise (or per-row) function: ``y = g(x)``.

    No parameters, no state. ``fn`` is a name resolved by
    `fnn.activations.get` (``"relu"``, ``"tanh"``, ``"softmax"``, ...)
    or any callable ``g(x) -> y`` such as ``jax.nn.relu`` or
    ``functools.partial(fnn.activations.leaky_relu, negative_slope=0.2)``.

    Args:
      fn: activation name or callable.

    Raises:
      LayerValueError: unknown name (the message lists the known names).
      LayerTypeError: ``fn`` is neither a string nor a callable.

    Examples:
      >>> layer = fnn.Activation("relu")
      >>> y, _ = layer.apply({}, {}, jnp.array([[-1.0, 2.0]]))
      >>> y.tolist()
      [[0.0000, 2.0000]]
    """

    fn: str | Callable[[jax.Array], jax.Array]

    def __post_init__(self):
        self.function  # resolve once, so that a bad name fails at construction

    @property
    def function(self) -> Callable[[jax.Array], jax.Array]:
        """The resolved activation function."""
        try:
            return activations.get(self.fn)
        except ValueError as err:
            raise LayerValueError(self, str(err)) from None
        except TypeError as err:
            raise LayerTypeError(self, str(err)) from None

    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """``y = g(x)``; returns ``(y, state)``."""
        del params, key, train
        return self.function(x), state


@dataclasses.dataclass(frozen=True)
class PReLU(Layer):
    """Parametric ReLU with a learnable negative slope ``a`` (He et al. 2015).

    ``f(x) = x`` if ``x > 0`` else ``a x``; the gradients are ``df/dx = 1`` or
    ``a``, and ``dL/da = sum over x <= 0 of (dL/df) x``.

    Parameters: ``{"alpha": a}``, of shape ``(features,)`` (one slope per
    feature of the last axis, the default) or ``()`` with ``shared=True``
    (one slope for the whole layer), initialised to ``init_slope``.
    Stateless.

    Args:
      init_slope: initial slope ``a`` (0.25, as in the paper).
      shared: one scalar slope instead of one per feature.

    Raises:
      LayerValueError: input without a batch axis (rank < 2 for per-feature
        slopes, rank 0 for a shared one), a feature size other than
        ``alpha``'s, or params without ``"alpha"``.

    Examples:
      >>> layer = fnn.PReLU()
      >>> params, state = layer.init(jax.random.key(0), jnp.zeros((1, 2)))
      >>> params["alpha"].tolist()
      [0.2500, 0.2500]
      >>> layer.apply(params, state, jnp.array([[-4.0, 3.0]]))[0].tolist()
      [[-1.0000, 3.0000]]
    """

    init_slope: float = 0.25
    shared: bool = False

    def _check_input(self, shape: tuple[int, ...]) -> None:
        min_rank = 1 if self.shared else 2
        if len(shape) < min_rank:
            raise LayerValueError(self, f"expected input of rank >= {min_rank} (with a batch "
                                  f"axis), got shape {shape}")

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """``{"alpha": init_slope}`` of shape ``()`` or ``(features,)``."""
        del key
        x = input_struct(x)
        self._check_input(x.shape)
        shape = () if self.shared else x.shape[-1:]
        dtype = jnp.promote_types(x.dtype, jnp.float32)
        return {"alpha": jnp.full(shape, self.init_slope, dtype)}, {}

    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """``f(x) = x if x > 0 else alpha x``; returns ``(y, state)``."""
        del key, train
        x = jnp.asarray(x)
        self._check_input(x.shape)
        if not isinstance(params, dict) or set(params) != {"alpha"}:
            got = sorted(params) if isinstance(params, dict) else type(params).__name__
            raise LayerValueError(self, f"params must be a dict with keys ['alpha'], got {got}")
        alpha = params["alpha"]
        if self.shared and jnp.shape(alpha) != ():
            raise LayerValueError(self, "params['alpha'] must be a scalar (shared=True), got "
                                  f"shape {jnp.shape(alpha)}")
        if not self.shared and jnp.shape(alpha) != x.shape[-1:]:
            raise LayerValueError(self, f"params['alpha'] has shape {jnp.shape(alpha)}, but "
                                  f"the input of shape {x.shape} needs one slope per feature, "
                                  f"shape {x.shape[-1:]}")
        return activations.prelu(x, alpha), state
