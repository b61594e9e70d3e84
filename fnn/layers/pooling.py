"""Pooling layers: max, min and average over windows, and global pooling.

Inputs are batch-first and channels-last, ``(batch, *spatial, channels)``; a
window slides over the spatial axes of each channel separately. One generic
implementation serves every layer: the window's ``prod(window)`` strided views
of the (padded) input, each shaped like the output, reduced with ``maximum``
or ``minimum``. With non-overlapping windows (``stride == window``, the usual
``MaxPool2D(2)``) they come from one reshape ``(batch, H // k, k, W // k, k,
channels)``, otherwise from strided slices; average pooling sums the reshape,
or uses ``lax.reduce_window`` in the general case. This is far faster on CPU
than ``lax.reduce_window`` for max pooling, whose backward
(``select_and_scatter``) is slow there (numbers in ``docs/pooling.md``).

Ties: the gradient of max (min) pooling goes to the *first* maximal (minimal)
element of each window in row-major order, as in PyTorch and XLA's
``reduce_window``; ``jnp.max`` would split it equally between tied elements.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fnn.errors import LayerTypeError, LayerValueError
from fnn.layers.base import ParameterFreeLayer, Params, State
from fnn.layers.spatial import SPATIAL_AXES, int_tuple, same_pads

_REDUCE = {"max": jnp.maximum, "min": jnp.minimum}


def _blocks(x: jax.Array, window: tuple[int, ...]) -> jax.Array:
    """Non-overlapping windows: ``x`` cropped to whole windows ("valid": the remainder is
    dropped) and reshaped to ``(batch, o1, k1, ..., od, kd, channels)``."""
    b, *spatial, c = x.shape
    out = [n // k for n, k in zip(spatial, window)]
    x = x[(slice(None),) + tuple(slice(0, o * k) for o, k in zip(out, window))]
    return jnp.reshape(x, (b, *[d for ok in zip(out, window) for d in ok], c))


def _views(x: jax.Array, window: tuple[int, ...], strides: tuple[int, ...],
           fast: bool) -> list[jax.Array]:
    """The ``prod(window)`` views ``x[:, i1::s1, ..., id::sd, :]`` cropped to the output
    size ("valid"), in row-major order of the window offsets ``(i1, ..., id)``."""
    offsets = list(itertools.product(*(range(k) for k in window)))
    if fast:
        blocks = _blocks(x, window)
        return [blocks[(slice(None),) + tuple(e for i in offset for e in (slice(None), i))]
                for offset in offsets]
    b, *spatial, c = x.shape
    out = [(n - k) // s + 1 for n, k, s in zip(spatial, window, strides)]
    return [lax.slice(x, (0, *offset, 0),
                      (b, *[i + (o - 1) * s + 1 for i, o, s in zip(offset, out, strides)], c),
                      (1, *strides, 1)) for offset in offsets]


def _window_axes(window: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(range(2, 2 * len(window) + 1, 2))


def _reduce(x, kind, window, strides, fast):
    if fast:
        blocks = _blocks(x, window)
        axes = _window_axes(window)
        return jnp.max(blocks, axes) if kind == "max" else jnp.min(blocks, axes)
    return functools.reduce(_REDUCE[kind], _views(x, window, strides, fast))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3, 4))
def _extreme(x, kind, window, strides, fast):
    return _reduce(x, kind, window, strides, fast)


@_extreme.defjvp
def _extreme_jvp(kind, window, strides, fast, primals, tangents):
    (x,), (t,) = primals, tangents
    y = _reduce(x, kind, window, strides, fast)
    if fast:
        # One mask marks the first extreme element of each window (row-major order): the
        # extreme positions keep their index in the window, the others a sentinel, and
        # the smallest index wins. The tangent is the masked sum over each window, whose
        # transpose (the backward pass) is one select on the broadcast cotangent.
        blocks, axes = _blocks(x, window), _window_axes(window)
        shape = [1] * blocks.ndim
        for axis, k in zip(axes, window):
            shape[axis] = k
        position = np.arange(math.prod(window), dtype=np.int32).reshape(shape)
        extreme = blocks == jnp.expand_dims(y, axes)
        index = jnp.where(extreme, position, math.prod(window))
        first = position == jnp.min(index, axes, keepdims=True)
        dy = jnp.sum(jnp.where(first, _blocks(t, window), 0), axes)
        return y, dy   # (a window holding NaN has no extreme element: no gradient)
    dy = jnp.zeros_like(y)
    for view, t_view in reversed(list(zip(_views(x, window, strides, fast),
                                          _views(t, window, strides, fast)))):
        dy = jnp.where(view == y, t_view, dy)     # the last write is the first tied element
    return y, dy   # (a window holding NaN has y = NaN and sends no gradient)


def _pool(x: jax.Array, kind: str, window: tuple[int, ...], strides: tuple[int, ...],
          padding: str, fast: bool = True) -> jax.Array:
    """Pool ``x`` (batch, *spatial, channels); ``kind`` is "max", "min" or "avg".

    ``fast=False`` turns the reshape path for non-overlapping windows off (for tests)."""
    spatial = x.shape[1:-1]
    pads = ([same_pads(n, k, s) for n, k, s in zip(spatial, window, strides)]
            if padding == "same" else [(0, 0)] * len(spatial))
    padded = any(lo or hi for lo, hi in pads)
    if padded:
        if kind == "avg":
            fill = 0
        elif jnp.issubdtype(x.dtype, jnp.floating):
            fill = -jnp.inf if kind == "max" else jnp.inf
        else:
            info = jnp.iinfo(x.dtype)
            fill = info.min if kind == "max" else info.max
        x = jnp.pad(x, [(0, 0), *pads, (0, 0)], constant_values=fill)
    fast = fast and window == strides
    if kind != "avg":
        if not jnp.issubdtype(x.dtype, jnp.floating):   # integers: nothing to differentiate
            return _reduce(x, kind, window, strides, fast)
        return _extreme(x, kind, window, strides, fast)
    if fast:
        total = jnp.sum(_blocks(x, window), _window_axes(window))
    else:
        total = lax.reduce_window(x, np.zeros((), x.dtype), lax.add, (1, *window, 1),
                                  (1, *strides, 1), "VALID")
    if not padded:
        return total / math.prod(window)
    counts = []                    # real (not padded) elements per window, one axis at a time
    for n, k, s, (lo, hi) in zip(spatial, window, strides, pads):
        start = np.arange((n + lo + hi - k) // s + 1) * s - lo
        counts.append(np.minimum(start + k, n) - np.maximum(start, 0))
    count = functools.reduce(np.multiply.outer, counts).reshape((1, *map(len, counts), 1))
    return total / jnp.asarray(count, x.dtype)


def _check_dtype(layer: Any, x: jax.Array, float_only: bool) -> None:
    floating = jnp.issubdtype(x.dtype, jnp.floating)
    if float_only and not floating:
        raise LayerTypeError(layer, f"expected a floating-point input, got dtype {x.dtype} "
                             f"(shape {x.shape}); cast with x.astype(jnp.float32)")
    if not (floating or jnp.issubdtype(x.dtype, jnp.integer)):
        raise LayerTypeError(layer, f"expected a floating-point or integer input, got dtype "
                             f"{x.dtype} (shape {x.shape})")


@dataclasses.dataclass(frozen=True)
class _Pool(ParameterFreeLayer):
    """Shared code of the windowed pooling layers (``_kind`` and ``_rank`` set by each)."""

    window: int | tuple[int, ...]
    stride: int | tuple[int, ...] | None = None
    padding: str = "valid"

    _kind = "max"
    _rank = 2

    def __post_init__(self):
        window = int_tuple(self, "window", self.window, self._rank)
        stride = window if self.stride is None else int_tuple(self, "stride", self.stride,
                                                                self._rank)
        padding = self.padding.lower() if isinstance(self.padding, str) else self.padding
        if padding not in ("valid", "same"):
            raise LayerValueError(self, f"padding must be 'valid' or 'same', got "
                                  f"{self.padding!r}")
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "padding", padding)

    def _check_input(self, x: jax.Array) -> None:
        layout = f"(batch, {SPATIAL_AXES[self._rank]}, channels)"
        if x.ndim != self._rank + 2:
            hint = (" (no channel axis? add one with x[..., None])"
                    if x.ndim == self._rank + 1 else "")
            raise LayerValueError(self, f"expected input of rank {self._rank + 2}, shape "
                                  f"{layout}; got rank {x.ndim}, shape {x.shape}{hint}")
        _check_dtype(self, x, float_only=self._kind == "avg")
        spatial = x.shape[1:-1]
        if self.padding == "valid" and any(n < k for n, k in zip(spatial, self.window)):
            raise LayerValueError(self, f"window {self.window} is larger than the input's "
                                  f"spatial size {spatial} (input shape {x.shape}, {layout}); "
                                  f"use a smaller window or padding='same'")
        if 0 in spatial:
            raise LayerValueError(self, f"expected a non-empty spatial size, got input shape "
                                  f"{x.shape}")

    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """Pool each channel of ``x`` over its windows; returns ``(y, state)``."""
        del params, key, train
        x = jnp.asarray(x)
        self._check_input(x)
        return _pool(x, self._kind, self.window, self.stride, self.padding), state


def _doc(kind: str, rank: int, example: str) -> str:
    """The docstring of a windowed pooling layer: equation, sizes, Args, Raises, Example."""
    name = {"max": "Max", "min": "Min", "avg": "Average"}[kind]
    idx, off = "ijl"[:rank], "tuv"[-rank:]
    ks, ss = (["k"], ["s"]) if rank == 1 else ([f"k{a}" for a in "dhw"[-rank:]],
                                               [f"s{a}" for a in "dhw"[-rank:]])
    inp = f"x[b, {', '.join(f'{i} {st} + {u}' for i, st, u in zip(idx, ss, off))}, c]"
    over = ", ".join(f"{u} < {k}" for u, k in zip(off, ks))
    reduce = {"max": "max", "min": "min", "avg": "(1 / count) sum"}[kind]
    equation = f"y[b, {', '.join(idx)}, c] = {reduce}_{{{over}}} {inp}"
    notes = {
        "max": "Padding never wins (it is ``-inf``). The gradient goes to the *first*\n"
               "    maximal element of each window in row-major order (PyTorch's rule;\n"
               "    ``jnp.max`` would split it between ties). Integer inputs are allowed.",
        "min": "Padding never wins (it is ``+inf``): ``MinPool(x) == -MaxPool(-x)``. The\n"
               "    gradient goes to the *first* minimal element of each window in\n"
               "    row-major order. Integer inputs are allowed.",
        "avg": "``count`` is the number of *real* (not padded) elements in the window,\n"
               "    as in Keras: ``prod(window)`` with ``\"valid\"``, fewer at the edges\n"
               "    with ``\"same\"``. The gradient is ``1 / count`` for each element.",
    }[kind]
    dtype = ("LayerTypeError: a non-float input (cast with ``x.astype(jnp.float32)``)."
             if kind == "avg" else "LayerTypeError: an input neither float nor integer.")
    layout = f"(batch, {SPATIAL_AXES[rank]}, channels)"
    return f"""{name} pooling over {rank} spatial ax{"es" if rank > 1 else "is"}, inputs ``{layout}``.

        {equation}

    with ``x`` padded as ``padding`` says, ``k`` the window and ``s`` the stride.

    {notes}

    Output size along a spatial axis of size ``n`` (window ``k``, stride ``s``):
    ``"valid"``: ``floor((n - k) / s) + 1`` (the remainder is dropped), the
    notes' ``ceil((n + 2p - f + 1) / s)`` with ``p = 0`` and ``f = k``;
    ``"same"``: ``ceil(n / s)``, with ``max((ceil(n / s) - 1) s + k - n, 0)``
    padding split as TF/Keras do (the odd one at the end). No parameters,
    no state.

    Args:
      window: the window size, an int or a tuple of {rank} ints.
      stride: the step between windows, an int or a tuple of {rank} ints;
        ``None`` (default) means ``stride = window`` (non-overlapping, Keras).
      padding: ``"valid"`` (default, no padding) or ``"same"``.

    Raises:
      LayerValueError: a window or stride that is not a positive int or a tuple
        of {rank} of them; unknown padding; an input not shaped ``{layout}``;
        a window larger than the input with ``"valid"``.
      {dtype}

    Examples:
{example}"""


@dataclasses.dataclass(frozen=True)
class MaxPool1D(_Pool):
    __doc__ = _doc("max", 1, """\
      >>> x = jnp.array([1., 3., 2., 0., 5.]).reshape(1, 5, 1)    # (batch, length, channels)
      >>> fnn.MaxPool1D(2).apply({}, {}, x)[0][0, :, 0]          # the last element is dropped
      Array([3., 2.], dtype=float32)
      >>> fnn.MaxPool1D(2, padding="same").apply({}, {}, x)[0][0, :, 0]
      Array([3., 2., 5.], dtype=float32)
    """)
    _kind, _rank = "max", 1


@dataclasses.dataclass(frozen=True)
class MaxPool2D(_Pool):
    __doc__ = _doc("max", 2, """\
      >>> x = jnp.array([[1., 3., 2., 1.],
      ...                [4., 6., 5., 0.],
      ...                [7., 2., 9., 8.],
      ...                [1., 0., 3., 4.]]).reshape(1, 4, 4, 1)   # (batch, H, W, channels)
      >>> y, _ = fnn.MaxPool2D(2).apply({}, {}, x)
      >>> y[0, :, :, 0]
      Array([[6., 5.],
             [7., 9.]], dtype=float32)
      >>> fnn.MaxPool2D(3, stride=1).apply({}, {}, x)[0].shape
      (1, 2, 2, 1)
    """)
    _kind, _rank = "max", 2


@dataclasses.dataclass(frozen=True)
class MaxPool3D(_Pool):
    __doc__ = _doc("max", 3, """\
      >>> y, _ = fnn.MaxPool3D(2).apply({}, {}, jnp.zeros((1, 4, 6, 5, 3)))
      >>> y.shape
      (1, 2, 3, 2, 3)
    """)
    _kind, _rank = "max", 3


@dataclasses.dataclass(frozen=True)
class MinPool1D(_Pool):
    __doc__ = _doc("min", 1, """\
      >>> x = jnp.array([1., 3., 2., 0., 5.]).reshape(1, 5, 1)
      >>> fnn.MinPool1D(2, stride=1).apply({}, {}, x)[0][0, :, 0]
      Array([1., 2., 0., 0.], dtype=float32)
    """)
    _kind, _rank = "min", 1


@dataclasses.dataclass(frozen=True)
class MinPool2D(_Pool):
    __doc__ = _doc("min", 2, """\
      >>> x = jnp.arange(16.).reshape(1, 4, 4, 1)
      >>> fnn.MinPool2D(2).apply({}, {}, x)[0][0, :, :, 0]
      Array([[ 0.,  2.],
             [ 8., 10.]], dtype=float32)
    """)
    _kind, _rank = "min", 2


@dataclasses.dataclass(frozen=True)
class MinPool3D(_Pool):
    __doc__ = _doc("min", 3, """\
      >>> fnn.MinPool3D((1, 2, 2)).apply({}, {}, jnp.zeros((1, 3, 4, 4, 2)))[0].shape
      (1, 3, 2, 2, 2)
    """)
    _kind, _rank = "min", 3


@dataclasses.dataclass(frozen=True)
class AvgPool1D(_Pool):
    __doc__ = _doc("avg", 1, """\
      >>> x = jnp.array([1., 3., 2., 0., 5.]).reshape(1, 5, 1)
      >>> fnn.AvgPool1D(2).apply({}, {}, x)[0][0, :, 0]
      Array([2., 1.], dtype=float32)
      >>> fnn.AvgPool1D(2, padding="same").apply({}, {}, x)[0][0, :, 0]   # last: 5 / 1
      Array([2., 1., 5.], dtype=float32)
    """)
    _kind, _rank = "avg", 1


@dataclasses.dataclass(frozen=True)
class AvgPool2D(_Pool):
    __doc__ = _doc("avg", 2, """\
      >>> x = jnp.arange(16.).reshape(1, 4, 4, 1)
      >>> fnn.AvgPool2D(2).apply({}, {}, x)[0][0, :, :, 0]
      Array([[ 2.5,  4.5],
             [10.5, 12.5]], dtype=float32)
      >>> y, _ = fnn.AvgPool2D(3, stride=1, padding="same").apply({}, {}, x)
      >>> y[0, 0, 0, 0]                          # (0 + 1 + 4 + 5) / 4 real elements
      Array(2.5, dtype=float32)
    """)
    _kind, _rank = "avg", 2


@dataclasses.dataclass(frozen=True)
class AvgPool3D(_Pool):
    __doc__ = _doc("avg", 3, """\
      >>> fnn.AvgPool3D(2, padding="same").apply({}, {}, jnp.ones((1, 3, 4, 5, 2)))[0].shape
      (1, 2, 2, 3, 2)
    """)
    _kind, _rank = "avg", 3


@jax.custom_jvp
def _global_max(x):                    # x: (batch, positions, channels)
    return jnp.max(x, axis=1)


@_global_max.defjvp
def _global_max_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    first = jnp.argmax(x, axis=1)[:, None, :]          # argmax: the first maximal position
    return jnp.max(x, axis=1), jnp.take_along_axis(t, first, axis=1)[:, 0, :]


@dataclasses.dataclass(frozen=True)
class _GlobalPool(ParameterFreeLayer):
    """Shared code of the global pooling layers (``_kind`` set by each)."""

    keepdims: bool = False

    _kind = "max"

    def __post_init__(self):
        if not isinstance(self.keepdims, bool):
            raise LayerValueError(self, f"keepdims must be a bool, got {self.keepdims!r}")

    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """Pool each channel of ``x`` over all spatial axes; returns ``(y, state)``."""
        del params, key, train
        x = jnp.asarray(x)
        if x.ndim < 3:
            raise LayerValueError(self, f"expected input of rank >= 3, shape (batch, *spatial, "
                                  f"channels); got rank {x.ndim}, shape {x.shape}")
        _check_dtype(self, x, float_only=self._kind == "avg")
        flat = jnp.reshape(x, (x.shape[0], math.prod(x.shape[1:-1]), x.shape[-1]))
        if self._kind == "avg":
            y = jnp.mean(flat, axis=1)
        elif jnp.issubdtype(x.dtype, jnp.floating):
            y = _global_max(flat)
        else:
            y = jnp.max(flat, axis=1)
        if self.keepdims:
            y = jnp.reshape(y, (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],))
        return y, state


@dataclasses.dataclass(frozen=True)
class GlobalAvgPool(_GlobalPool):
    """Average of each channel over all spatial axes: ``(batch, *spatial, channels) -> (batch, channels)``.

        y[b, c] = (1 / (n1 ... nd)) sum_{i1, ..., id} x[b, i1, ..., id, c]

    Works for any number of spatial axes (1-D sequences, images, volumes).
    No parameters, no state.

    Args:
      keepdims: keep the spatial axes with size 1, ``(batch, 1, ..., 1, channels)``.

    Raises:
      LayerValueError: an input of rank < 3 (no spatial axis).
      LayerTypeError: a non-float input (cast with ``x.astype(jnp.float32)``).

    Examples:
      >>> x = jnp.arange(24.).reshape(2, 3, 2, 2)          # (batch, H, W, channels)
      >>> fnn.GlobalAvgPool().apply({}, {}, x)[0]
      Array([[ 5.,  6.],
             [17., 18.]], dtype=float32)
      >>> fnn.GlobalAvgPool(keepdims=True).apply({}, {}, x)[0].shape
      (2, 1, 1, 2)
    """

    _kind = "avg"


@dataclasses.dataclass(frozen=True)
class GlobalMaxPool(_GlobalPool):
    """Maximum of each channel over all spatial axes: ``(batch, *spatial, channels) -> (batch, channels)``.

        y[b, c] = max_{i1, ..., id} x[b, i1, ..., id, c]

    The gradient goes to the *first* maximal element in row-major order (as in
    `MaxPool2D`). Integer inputs are allowed. No parameters, no state.

    Args:
      keepdims: keep the spatial axes with size 1, ``(batch, 1, ..., 1, channels)``.

    Raises:
      LayerValueError: an input of rank < 3 (no spatial axis).
      LayerTypeError: an input neither float nor integer.

    Examples:
      >>> x = jnp.arange(24.).reshape(2, 3, 2, 2)
      >>> fnn.GlobalMaxPool().apply({}, {}, x)[0]
      Array([[10., 11.],
             [22., 23.]], dtype=float32)
    """

    _kind = "max"
