"""Recurrent layers: SimpleRNN, LSTM and GRU over ``(batch, time, features)`` sequences.

Each layer computes the input projection of every time step in one matmul,
``x w_x + b`` of shape ``(batch, time, G * hidden)`` (``G`` gate blocks), and
runs only the recurrent part, ``h w_h``, in `jax.lax.scan` over time.

Options shared by the three layers:

- ``return_sequences=False``: the output is the last hidden state
  ``(batch, hidden)`` (Keras's default); ``True``: every step's hidden state
  ``(batch, time, hidden)``.
- ``return_state=True``: ``apply`` returns ``((output, final_state), state)``,
  ``final_state`` being ``h`` (``(h, c)`` for the LSTM).
- ``reverse=True``: run from the last step to the first. Outputs stay aligned
  with the input's time axis (output ``t`` is the state after reading
  ``x[t:]``), as PyTorch's bidirectional layers return them.
- ``mask``: a boolean ``(batch, time)`` array, ``True`` at real steps. At a
  padded step the state is kept and the output is zero, so with right padding
  the "last" state is each sequence's own last real step, and with
  ``reverse=True`` each sequence starts at its own last real step. Pass it as
  ``apply(..., mask=m)`` or give the input as a pair ``(x, mask)``; with
  ``return_sequences=True`` a pair input gives a pair output ``(y, mask)``, so
  recurrent layers stack in a `fnn.Sequential`.
- ``initial_state``: ``apply(..., initial_state=h0)`` (``(h0, c0)`` for the
  LSTM); zeros by default.

Parameters are laid out as PyTorch and Keras store them, transposed to
``x @ w`` (see each class), so weights port: PyTorch's ``weight_ih_l0`` is
``w_x.T`` and ``weight_hh_l0`` is ``w_h.T``; its two biases add up to ``b``
(SimpleRNN, LSTM) or are ``b_x`` and ``b_h`` (GRU).
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from fnn import activations, initializers
from fnn.errors import LayerTypeError, LayerValueError
from fnn.layers.base import Layer, Params, State, input_struct, resolve_initializers
from fnn.layers.sequence_input import check_sequence, split_pair


@dataclasses.dataclass(frozen=True)
class RecurrentBase(Layer):
    """Shared fields, checks and the masked scan of the recurrent layers."""

    hidden: int
    return_sequences: bool = False
    return_state: bool = False
    reverse: bool = False
    unroll: int = 1
    w_init: Any = initializers.glorot_uniform()
    h_init: Any = initializers.orthogonal()
    b_init: Any = initializers.zeros()

    _gates = 1
    _biases = ("b",)

    def __post_init__(self):
        for name in ("hidden", "unroll"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise LayerValueError(self, f"{name} must be a positive int, got {value!r}")
            object.__setattr__(self, name, int(value))
        resolve_initializers(self, "w_init", "h_init", "b_init")

    # --- checks -------------------------------------------------------------------------
    def _split_input(self, x: Any, mask: Any) -> tuple[Any, Any, bool]:
        x, paired_mask = split_pair(self, x, "an input x or a pair (x, mask)")
        paired = paired_mask is not None
        if paired and mask is not None:
            raise LayerValueError(self, "got a mask twice: in the (x, mask) input and as mask=")
        return x, (paired_mask if paired else mask), paired

    def _check_input(self, shape: tuple[int, ...], dtype: Any) -> None:
        check_sequence(self, shape, dtype, "a sequence batch")

    def _check_mask(self, mask: Any, shape: tuple[int, ...]) -> Any:
        if mask is None:
            return None
        mask = jnp.asarray(mask)
        if mask.shape != shape[:2]:
            raise LayerValueError(self, f"mask must have shape (batch, time) = {shape[:2]}, "
                                  f"got {mask.shape}")
        if mask.dtype != jnp.bool_:
            raise LayerTypeError(self, f"mask must be boolean (True at real steps), got dtype "
                                 f"{mask.dtype}")
        return mask

    def _param_shapes(self, features: int) -> dict[str, tuple[int, ...]]:
        g = self._gates * self.hidden
        shapes = {"w_x": (features, g), "w_h": (self.hidden, g)}
        shapes.update({name: (g,) for name in self._biases})
        return shapes

    def _check_params(self, params: Params, features: int) -> None:
        expected = self._param_shapes(features)
        if not isinstance(params, dict) or set(params) != set(expected):
            got = sorted(params) if isinstance(params, dict) else type(params).__name__
            raise LayerValueError(self, f"params must be a dict with keys {sorted(expected)}, "
                                  f"got {got}")
        for name, shape in expected.items():
            if jnp.shape(params[name]) != shape:
                raise LayerValueError(self, f"params[{name!r}] must have shape {shape} (input "
                                      f"features {features}, hidden {self.hidden}), got "
                                      f"{jnp.shape(params[name])}")

    # --- init / apply ---------------------------------------------------------------------
    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """Parameters for inputs like ``x`` (or a pair ``(x, mask)``)."""
        if isinstance(x, (tuple, list)):
            x = x[0]
        x = input_struct(x)
        self._check_input(x.shape, x.dtype)
        dtype = jnp.promote_types(x.dtype, jnp.float32)
        shapes = self._param_shapes(x.shape[-1])
        kx, kh, kb = jax.random.split(key, 3)
        params = {"w_x": self.w_init(kx, shapes["w_x"], dtype),
                  "w_h": self._recurrent_init(kh, dtype)}
        for i, name in enumerate(self._biases):
            params[name] = self._bias_init(name, jax.random.fold_in(kb, i), dtype)
        return params, {}

    def _recurrent_init(self, key: jax.Array, dtype: Any) -> jax.Array:
        """``w_h``: ``h_init`` applied to each gate's ``(hidden, hidden)`` block (as Keras)."""
        keys = jax.random.split(key, self._gates)
        return jnp.concatenate([self.h_init(k, (self.hidden, self.hidden), dtype)
                                for k in keys], axis=1)

    def _bias_init(self, name: str, key: jax.Array, dtype: Any) -> jax.Array:
        return self.b_init(key, (self._gates * self.hidden,), dtype)

    def _zero_state(self, batch: int, dtype: Any) -> Any:
        return jnp.zeros((batch, self.hidden), dtype)

    def _check_initial_state(self, initial_state: Any, batch: int, dtype: Any) -> Any:
        if initial_state is None:
            return self._zero_state(batch, dtype)
        zero = self._zero_state(batch, dtype)
        if (jax.tree.structure(initial_state) != jax.tree.structure(zero) or any(
                jnp.shape(a) != b.shape for a, b in zip(jax.tree.leaves(initial_state),
                                                      jax.tree.leaves(zero)))):
            expected = jax.tree.map(lambda a: a.shape, zero)
            got = jax.tree.map(jnp.shape, initial_state)
            raise LayerValueError(self, f"initial_state must be shaped like {expected}, got "
                                  f"{got}")
        return jax.tree.map(lambda a: jnp.asarray(a, dtype), initial_state)

    def apply(self, params: Params, state: State, x: Any, *,
              key: jax.Array | None = None, train: bool = False, mask: Any = None,
              initial_state: Any = None) -> tuple[Any, State]:
        """Run the recurrence over time; returns ``(output, state)`` (see the module doc)."""
        del key, train
        x, mask, paired = self._split_input(x, mask)
        x = jnp.asarray(x)
        self._check_input(x.shape, x.dtype)
        self._check_params(params, x.shape[-1])
        mask = self._check_mask(mask, x.shape)
        carry = self._check_initial_state(initial_state, x.shape[0], x.dtype)
        projected = self._project(params, x)                    # (batch, time, G * hidden)
        xs = jnp.swapaxes(projected, 0, 1)                       # time-major for the scan
        ms = None if mask is None else jnp.swapaxes(mask, 0, 1)[..., None]

        def body(carry, inputs):
            xp, m = inputs
            new = self._step(params, carry, xp)
            h = new[0] if isinstance(new, tuple) else new
            if m is None:
                return new, h
            new = jax.tree.map(lambda a, b: jnp.where(m, a, b), new, carry)
            return new, jnp.where(m, h, jnp.zeros_like(h))

        carry, outputs = lax.scan(body, carry, (xs, ms), reverse=self.reverse,
                                  unroll=self.unroll)
        last = carry[0] if isinstance(carry, tuple) else carry
        y = jnp.swapaxes(outputs, 0, 1) if self.return_sequences else last
        if self.return_sequences and paired:
            y = (y, mask)
        return ((y, carry) if self.return_state else y), state

    def _project(self, params: Params, x: jax.Array) -> jax.Array:
        return x @ params["w_x"] + params["b"][None, None, :]


@dataclasses.dataclass(frozen=True)
class SimpleRNN(RecurrentBase):
    """Elman recurrent layer: ``h_t = g(x_t w_x + h_{t-1} w_h + b)``, ``g = tanh`` by default.

    Parameters ``{"w_x": (features, hidden), "w_h": (hidden, hidden),
    "b": (hidden,)}``; ``w_x`` Glorot-uniform, ``w_h`` orthogonal, ``b`` zeros
    (Keras's defaults). Stateless (the hidden state lives inside ``apply``).
    Options (``return_sequences``, ``return_state``, ``reverse``, ``mask``,
    ``initial_state``) as in `fnn.layers.recurrent`.

    Args:
      hidden: the size of the hidden state.
      activation: ``g``, a name or a function (default ``"tanh"``).
      return_sequences, return_state, reverse: see `fnn.layers.recurrent`.
      unroll: time steps per iteration of the ``lax.scan`` loop.
      w_init, h_init, b_init: initializers of ``w_x``, ``w_h`` and ``b``.

    Examples:
      >>> layer = fnn.SimpleRNN(4)
      >>> x = jnp.ones((2, 5, 3))                       # (batch, time, features)
      >>> params, _ = layer.init(jax.random.key(0), x)
      >>> jax.tree.map(jnp.shape, params)
      {'b': (4,), 'w_h': (4, 4), 'w_x': (3, 4)}
      >>> layer.apply(params, {}, x)[0].shape
      (2, 4)
    """

    activation: Any = "tanh"

    def __post_init__(self):
        super().__post_init__()
        try:
            activations.get(self.activation)
        except (ValueError, TypeError) as err:
            raise LayerValueError(self, str(err)) from None

    def _step(self, params: Params, h: jax.Array, xp: jax.Array) -> jax.Array:
        return activations.get(self.activation)(xp + h @ params["w_h"])


@dataclasses.dataclass(frozen=True)
class LSTM(RecurrentBase):
    """Long short-term memory (Hochreiter and Schmidhuber 1997), as PyTorch and Keras compute it.

        z = x_t w_x + h_{t-1} w_h + b,  split into blocks i, f, g, o of ``hidden`` each
        i = sigmoid(z_i)   f = sigmoid(z_f)   g = tanh(z_g)   o = sigmoid(z_o)
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    Parameters ``{"w_x": (features, 4 hidden), "w_h": (hidden, 4 hidden),
    "b": (4 hidden,)}``, gate blocks in the order i, f, g, o (PyTorch's and
    Keras's). ``w_x`` Glorot-uniform, ``w_h`` orthogonal per gate, ``b`` zeros
    except the forget gate's block, which starts at 1 (Keras's
    ``unit_forget_bias``; Jozefowicz et al. 2015): the cell keeps its memory
    at first. ``final_state`` is ``(h, c)``.

    Args:
      hidden: the size of ``h`` and ``c``.
      return_sequences, return_state, reverse: see `fnn.layers.recurrent`.
      unroll: time steps per iteration of the ``lax.scan`` loop.
      w_init, h_init, b_init: initializers of ``w_x``, ``w_h`` and ``b``.
      forget_bias: the forget gate's initial bias (1.0).

    Examples:
      >>> layer = fnn.LSTM(3, return_sequences=True)
      >>> x = jnp.ones((2, 5, 4))
      >>> params, _ = layer.init(jax.random.key(0), x)
      >>> params["b"].tolist()                           # i, f, g, o blocks
      [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
      >>> layer.apply(params, {}, x)[0].shape
      (2, 5, 3)
    """

    forget_bias: float = 1.0

    _gates = 4

    def _bias_init(self, name: str, key: jax.Array, dtype: Any) -> jax.Array:
        b = self.b_init(key, (4 * self.hidden,), dtype)
        return b.at[self.hidden:2 * self.hidden].add(self.forget_bias)

    def _zero_state(self, batch: int, dtype: Any) -> Any:
        zeros = jnp.zeros((batch, self.hidden), dtype)
        return zeros, zeros

    def _step(self, params: Params, carry: Any, xp: jax.Array) -> Any:
        h, c = carry
        z = xp + h @ params["w_h"]
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        return jax.nn.sigmoid(o) * jnp.tanh(c), c


@dataclasses.dataclass(frozen=True)
class GRU(RecurrentBase):
    """Gated recurrent unit (Cho et al. 2014), reset gate after the recurrent matmul.

        r = sigmoid(x_t w_xr + b_xr + h_{t-1} w_hr + b_hr)
        z = sigmoid(x_t w_xz + b_xz + h_{t-1} w_hz + b_hz)
        n = tanh(x_t w_xn + b_xn + r * (h_{t-1} w_hn + b_hn))
        h_t = (1 - z) * n + z * h_{t-1}

    as PyTorch's ``nn.GRU`` and Keras's ``GRU(reset_after=True)`` compute it.
    Parameters ``{"w_x": (features, 3 hidden), "w_h": (hidden, 3 hidden),
    "b_x": (3 hidden,), "b_h": (3 hidden,)}``, blocks r, z, n. ``w_x``
    Glorot-uniform, ``w_h`` orthogonal per gate, biases zeros.

    Args:
      hidden: the size of ``h``.
      return_sequences, return_state, reverse: see `fnn.layers.recurrent`.
      unroll: time steps per iteration of the ``lax.scan`` loop.
      w_init, h_init, b_init: initializers of ``w_x``, ``w_h`` and both biases.

    Examples:
      >>> layer = fnn.GRU(2)
      >>> params, _ = layer.init(jax.random.key(0), jnp.ones((1, 3, 4)))
      >>> jax.tree.map(jnp.shape, params)
      {'b_h': (6,), 'b_x': (6,), 'w_h': (2, 6), 'w_x': (4, 6)}
    """

    _gates = 3
    _biases = ("b_x", "b_h")

    def _project(self, params: Params, x: jax.Array) -> jax.Array:
        return x @ params["w_x"] + params["b_x"][None, None, :]

    def _step(self, params: Params, h: jax.Array, xp: jax.Array) -> jax.Array:
        hp = h @ params["w_h"] + params["b_h"][None, :]
        xr, xz, xn = jnp.split(xp, 3, axis=-1)
        hr, hz, hn = jnp.split(hp, 3, axis=-1)
        r = jax.nn.sigmoid(xr + hr)
        z = jax.nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        return (1 - z) * n + z * h
