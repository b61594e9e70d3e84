"""Inverted dropout."""

from __future__ import annotations

import dataclasses
import numbers

import jax
import jax.numpy as jnp

from fnn.errors import LayerValueError
from fnn.layers.base import ParameterFreeLayer, Params, State


@dataclasses.dataclass(frozen=True)
class Dropout(ParameterFreeLayer):
    """Inverted dropout: drop each unit with probability ``rate`` while training.

    ``rate`` is the probability of *dropping* a unit (Keras convention;
    ``keep_prob = 1 - rate`` in the notes). In training (``train=True``) each
    element is kept independently with probability ``p = 1 - rate`` and the
    kept ones are scaled by ``1 / p``, so the expected output equals the input:

        m ~ Bernoulli(1 - rate),   y = m * x / (1 - rate)

    In evaluation (``train=False``, the default) the layer is the identity and
    needs no key. Training needs a ``key``; the same key gives the same mask.
    No parameters, no state.

    Args:
      rate: drop probability, in ``[0, 1)``.

    Raises:
      LayerValueError: ``rate`` outside ``[0, 1)`` (at construction);
        ``train=True`` without a ``key``.

    Examples:
      >>> layer = fnn.Dropout(0.5)
      >>> x = jnp.ones((1, 6))
      >>> bool((layer.apply({}, {}, x)[0] == x).all())    # evaluation: identity
      True
      >>> y, _ = layer.apply({}, {}, x, key=jax.random.key(0), train=True)
      >>> sorted(set(y[0].tolist())) in ([0.0, 2.0], [0.0], [2.0])  # dropped or x / 0.5
      True
    """

    rate: float

    def __post_init__(self):
        if isinstance(self.rate, bool) or not isinstance(self.rate, numbers.Real):
            raise LayerValueError(self, f"rate must be a number in [0, 1), got {self.rate!r}")
        if not 0.0 <= self.rate < 1.0:
            raise LayerValueError(self, "rate (the probability of dropping a unit) must be in "
                                  f"[0, 1), got {self.rate}")
        object.__setattr__(self, "rate", float(self.rate))

    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """``x`` in evaluation; ``m * x / (1 - rate)`` in training. Returns ``(y, state)``."""
        del params
        x = jnp.asarray(x)
        if not train:
            return x, state
        if key is None:
            raise LayerValueError(self, "train=True needs a PRNG key: "
                                  "apply(..., key=jax.random.key(seed), train=True)")
        if self.rate == 0.0:
            return x, state
        keep = 1.0 - self.rate
        mask = jax.random.bernoulli(key, keep, x.shape)
        return jnp.where(mask, x / keep, jnp.zeros_like(x)), state
