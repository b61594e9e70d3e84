"""Bidirectional: one recurrent layer reading forward, a copy reading backward, outputs merged."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from fnn.errors import LayerTypeError, LayerValueError
from fnn.layers.base import Layer, Params, State, layer_repr
from fnn.layers.scope import child
from fnn.layers.recurrent import RecurrentBase

_MERGES = {
    "concat": lambda f, b: jnp.concatenate([f, b], axis=-1),
    "sum": lambda f, b: f + b,
    "mean": lambda f, b: (f + b) / 2,
    "mul": lambda f, b: f * b,
}


@dataclasses.dataclass(frozen=True)
class Bidirectional(Layer):
    """Run ``layer`` over the sequence in both directions and merge the two outputs.

        y_t = merge(forward_t, backward_t)

    ``forward`` is ``layer`` as given; ``backward`` the same configuration with
    ``reverse`` flipped, so it reads each sequence from its end. Outputs stay
    aligned with the input's time axis: with ``return_sequences=True``,
    ``backward_t`` is the backward state after reading ``x[t:]``; without, the
    two "last" states are the forward state after the last step and the
    backward state after the first (PyTorch's ``h_n`` of the two directions).
    With a mask, the backward direction starts at each sequence's own last
    real step, not at the padded end (padded steps keep the state and output
    zeros).

    ``merge``: ``"concat"`` (``[forward, backward]`` on the last axis, as
    PyTorch orders them, the default), ``"sum"``, ``"mean"`` or ``"mul"``.

    Parameters ``{"forward": params of layer, "backward": params of layer}``.
    The input may be ``x`` or a pair ``(x, mask)`` (a pair input with
    ``return_sequences=True`` gives ``(y, mask)``), and ``apply`` takes
    ``mask=`` and ``initial_state=(forward_state, backward_state)``. With the
    layer's ``return_state=True`` the output is ``(y, (forward_state,
    backward_state))``.

    Args:
      layer: a `fnn.SimpleRNN`, `fnn.LSTM` or `fnn.GRU`.
      merge: how the two directions combine.

    Examples:
      >>> layer = fnn.Bidirectional(fnn.GRU(4, return_sequences=True))
      >>> x = jnp.ones((2, 6, 3))
      >>> params, _ = layer.init(jax.random.key(0), x)
      >>> sorted(params), layer.apply(params, {}, x)[0].shape
      (['backward', 'forward'], (2, 6, 8))
    """

    layer: Any
    merge: str = "concat"

    def __post_init__(self):
        if not isinstance(self.layer, RecurrentBase):
            raise LayerTypeError(self, f"layer must be a recurrent layer (SimpleRNN, LSTM, "
                                 f"GRU), got {self.layer!r}")
        if self.merge not in _MERGES:
            raise LayerValueError(self, f"merge must be one of {sorted(_MERGES)}, got "
                                  f"{self.merge!r}")

    def __repr__(self) -> str:
        return layer_repr(self)

    @property
    def directions(self) -> dict[str, Any]:
        """``{"forward": layer, "backward": layer with reverse flipped}``."""
        return {"forward": self.layer,
                "backward": dataclasses.replace(self.layer, reverse=not self.layer.reverse)}

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """Each direction's parameters, from ``fold_in(key, 0)`` and ``fold_in(key, 1)``."""
        params = {}
        for i, (name, layer) in enumerate(self.directions.items()):
            params[name] = self._child(name, lambda: layer.init(jax.random.fold_in(key, i),
                                                                x)[0])
        return params, {}

    def _child(self, name: str, fn: Any) -> Any:
        with child(name):
            return fn()

    def apply(self, params: Params, state: State, x: Any, *,
              key: jax.Array | None = None, train: bool = False, mask: Any = None,
              initial_state: Any = None) -> tuple[Any, State]:
        """Both directions over ``x``, merged; returns ``(output, state)``."""
        del key, train
        if not isinstance(params, dict) or set(params) != {"forward", "backward"}:
            got = sorted(params) if isinstance(params, dict) else type(params).__name__
            raise LayerValueError(self, f"params must be a dict with keys ['backward', "
                                  f"'forward'], got {got}")
        if initial_state is not None and not (isinstance(initial_state, (tuple, list))
                                              and len(initial_state) == 2):
            raise LayerValueError(self, "initial_state must be a pair (forward_state, "
                                  "backward_state)")
        outputs, states, mask_out = {}, {}, None
        for i, (name, layer) in enumerate(self.directions.items()):
            start = None if initial_state is None else initial_state[i]
            out = self._child(name, lambda: layer.apply(params[name], {}, x, mask=mask,
                                                        initial_state=start)[0])
            if layer.return_state:
                out, states[name] = out
            if isinstance(out, tuple):                 # (y, mask) from a pair input
                out, mask_out = out
            outputs[name] = out
        y = _MERGES[self.merge](outputs["forward"], outputs["backward"])
        if mask_out is not None:
            y = (y, mask_out)
        if self.layer.return_state:
            y = (y, (states["forward"], states["backward"]))
        return y, state
