"""Convolution layers (cross-correlation, as in the notes and every framework), channels-last.

``ConvND(features, kernel_size, stride=1, padding="valid", dilation=1,
groups=1)`` slides ``features`` filters of ``kernel_size`` over the spatial
axes of a ``(batch, *spatial, channels)`` input (the transposed convolutions,
which share the fields and checks here, are in `fnn.layers.conv_transpose`).
Parameters
``{"w": (*kernel_size, in_channels // groups, features), "b": (features,)}``
(HWIO, the layout of ``lax.conv_general_dilated`` and Keras).

On CPU a convolution with ``groups=1`` runs as one matrix product over shifted
slices of the input (`fnn.layers.conv_matmul`, faster there than XLA's
convolution, above all in the backward pass); elsewhere, and for grouped or
very large convolutions, it is ``lax.conv_general_dilated``. Both compute the
same sum; only the order of the additions differs.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from fnn import initializers
from fnn.errors import LayerTypeError, LayerValueError
from fnn.layers import conv_matmul as conv_matmul_module
from fnn.layers.base import Layer, Params, State, input_struct, resolve_initializers
from fnn.layers.conv_matmul import conv_matmul, patches_bytes
from fnn.layers.spatial import SPATIAL_AXES, int_tuple, same_pads

_LETTERS = {1: "H", 2: "HW", 3: "DHW"}


def dimension_numbers(rank: int) -> tuple[str, str, str]:
    """``lax.conv_general_dilated``'s layouts for channels-last inputs of ``rank`` spatial axes."""
    s = _LETTERS[rank]
    return f"N{s}C", f"{s}IO", f"N{s}C"


def _padding_arg(layer: Any, padding: Any, rank: int, modes: tuple[str, ...]) -> Any:
    """A padding mode name (lower case), or ``((lo, hi), ...)`` per spatial axis."""
    if isinstance(padding, str):
        if padding.lower() not in modes:
            raise LayerValueError(layer, f"padding must be one of {list(modes)}, an int or "
                                  f"per-axis (before, after) pairs, got {padding!r}")
        return padding.lower()

    def nonneg(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0
    if nonneg(padding):
        return ((int(padding), int(padding)),) * rank
    if isinstance(padding, (tuple, list)) and len(padding) == rank:
        if all(nonneg(p) for p in padding):
            return tuple((int(p), int(p)) for p in padding)
        if all(isinstance(p, (tuple, list)) and len(p) == 2 and all(map(nonneg, p))
               for p in padding):
            return tuple((int(lo), int(hi)) for lo, hi in padding)
    raise LayerValueError(layer, f"padding must be one of {list(modes)}, an int >= 0, a tuple "
                          f"of {rank} ints or of {rank} (before, after) pairs, got {padding!r}")


@dataclasses.dataclass(frozen=True)
class ConvBase(Layer):
    """Fields, checks and ``init`` shared by the convolutions (``_rank`` set by each)."""

    features: int
    kernel_size: int | tuple[int, ...]
    stride: int | tuple[int, ...] = 1
    padding: Any = "valid"
    dilation: int | tuple[int, ...] = 1
    groups: int = 1
    use_bias: bool = True
    w_init: Any = initializers.glorot_uniform()
    b_init: Any = initializers.zeros()

    _rank = 2
    _modes = ("valid", "same")
    loop_friendly_on_cpu = False  # lax.conv inside lax.scan is ~25x slower on XLA:CPU

    def __post_init__(self):
        for name in ("features", "groups"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise LayerValueError(self, f"{name} must be a positive int, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.features % self.groups:
            raise LayerValueError(self, f"features ({self.features}) must be divisible by "
                                  f"groups ({self.groups})")
        for name in ("kernel_size", "stride", "dilation"):
            object.__setattr__(self, name, int_tuple(self, name, getattr(self, name), self._rank))
        object.__setattr__(self, "padding", _padding_arg(self, self.padding, self._rank,
                                                         self._modes))
        resolve_initializers(self, "w_init", "b_init")

    @property
    def _layout(self) -> str:
        return f"(batch, {SPATIAL_AXES[self._rank]}, channels)"

    def _check_input(self, shape: tuple[int, ...], dtype: Any) -> None:
        rank = self._rank + 2
        if len(shape) != rank:
            hint = (" (no channel axis? add one with x[..., None])"
                    if len(shape) == rank - 1 else "")
            raise LayerValueError(self, f"expected input of rank {rank}, shape {self._layout}; "
                                  f"got rank {len(shape)}, shape {shape}{hint}")
        if not jnp.issubdtype(dtype, jnp.floating):
            raise LayerTypeError(self, f"expected a floating-point input, got dtype {dtype} "
                                 f"(shape {shape}); cast with x.astype(jnp.float32)")
        if 0 in shape[1:]:
            raise LayerValueError(self, f"expected non-empty spatial and channel axes, got "
                                  f"input shape {shape}")
        channels = shape[-1]
        if channels % self.groups:
            raise LayerValueError(self, f"input channels ({channels}, the last axis of input "
                                  f"shape {shape}) must be divisible by groups ({self.groups})")

    def _check_channels_first(self, shape: tuple[int, ...]) -> None:
        """Refuse ``(batch, C, H, W)`` data (C of 1, 3 or 4 before square spatial axes)."""
        first, rest = shape[1], shape[2:-1]
        if (self._rank >= 2 and first in (1, 3, 4) and shape[-1] > 4
                and all(n == shape[-1] for n in rest)):
            order = ", ".join(["0"] + [str(i) for i in range(2, len(shape))] + ["1"])
            raise LayerValueError(self, f"input shape {shape} looks channels-first (batch, "
                                  f"channels, {SPATIAL_AXES[self._rank]}); fnn expects "
                                  f"channels-last {self._layout}: use x.transpose({order})")

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """``{"w": w_init(kernel shape), "b": b_init((features,))}`` for inputs like ``x``."""
        x = input_struct(x)
        self._check_input(x.shape, x.dtype)
        self._check_channels_first(x.shape)
        self._output_spatial(x.shape)  # kernel larger than the padded input: an error now
        dtype = jnp.promote_types(x.dtype, jnp.float32)
        w_key, b_key = jax.random.split(key)
        params = {"w": self.w_init(w_key, self._kernel_shape(x.shape[-1]), dtype)}
        if self.use_bias:
            params["b"] = self.b_init(b_key, (self.features,), dtype)
        return params, {}

    def _check_params(self, params: Params, channels: int) -> None:
        expected = {"w", "b"} if self.use_bias else {"w"}
        keys = set(params) if isinstance(params, dict) else None
        if keys != expected:
            got = sorted(keys) if keys is not None else type(params).__name__
            raise LayerValueError(self, f"params must be a dict with keys {sorted(expected)}, "
                                  f"got {got}")
        want = self._kernel_shape(channels)
        if tuple(jnp.shape(params["w"])) != want:
            raise LayerValueError(self, f"params['w'] must have shape {want} for an input with "
                                  f"{channels} channels, got {tuple(jnp.shape(params['w']))}")
        if self.use_bias and tuple(jnp.shape(params["b"])) != (self.features,):
            raise LayerValueError(self, f"params['b'] must have shape ({self.features},), got "
                                  f"{tuple(jnp.shape(params['b']))}")

    def _checked(self, params: Params, x: Any) -> jax.Array:
        """``x`` as an array, after every trace-time check of ``apply`` (input, params, sizes)."""
        x = jnp.asarray(x)
        self._check_input(x.shape, x.dtype)
        self._check_params(params, x.shape[-1])
        self._output_spatial(x.shape)
        return x

    def _add_bias(self, y: jax.Array, params: Params) -> jax.Array:
        if not self.use_bias:
            return y
        b = params["b"]
        return y + jnp.reshape(b, (1,) * (y.ndim - 1) + b.shape).astype(y.dtype)


@dataclasses.dataclass(frozen=True)
class _Conv(ConvBase):
    """The convolution proper (the ``ConvND`` docstrings say what it computes)."""

    def _pads(self, spatial: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        spans = [(k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation)]
        if self.padding == "valid":
            return ((0, 0),) * self._rank
        if self.padding == "same":
            return tuple(same_pads(n, k, s) for n, k, s in zip(spatial, spans, self.stride))
        if self.padding == "causal":
            return tuple((k - 1, 0) for k in spans)
        return self.padding

    def _output_spatial(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        spatial = shape[1:-1]
        out = []
        for n, k, d, s, (lo, hi) in zip(spatial, self.kernel_size, self.dilation, self.stride,
                                        self._pads(spatial)):
            span = (k - 1) * d + 1
            if n + lo + hi < span:
                raise LayerValueError(
                    self, f"kernel_size {self.kernel_size} (dilation {self.dilation}) spans more "
                    f"than the padded input: input shape {shape} {self._layout}, padding "
                    f"{self._pads(spatial)}; use a smaller kernel or more padding")
            out.append((n + lo + hi - span) // s + 1)
        return tuple(out)

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        return (*self.kernel_size, channels // self.groups, self.features)

    @property
    def loop_friendly_on_cpu(self) -> bool:
        """True for ``groups=1``: the CPU matmul path runs as fast inside ``lax.scan`` as
        outside it, while ``lax.conv`` (grouped convolutions) is ~25x slower there."""
        return self.groups == 1

    def _use_matmul(self, x: jax.Array) -> bool:
        """Whether to convolve as one matmul over shifted slices (`conv_matmul`): on
        CPU, for ``groups=1``, while the patches stay under ``PATCHES_LIMIT_BYTES``."""
        return (self.groups == 1 and jax.default_backend() == "cpu"
                and patches_bytes(x.shape, self._output_spatial(x.shape), self.kernel_size,
                                  x.dtype.itemsize) <= conv_matmul_module.PATCHES_LIMIT_BYTES)

    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """Convolve ``x`` with the filters and add the bias; returns ``(y, state)``."""
        del key, train
        x = self._checked(params, x)
        w, pads = params["w"].astype(x.dtype), self._pads(x.shape[1:-1])
        if self._use_matmul(x):
            y = conv_matmul(x, w, self.stride, self.dilation, pads)
        else:
            y = lax.conv_general_dilated(
                x, w, window_strides=self.stride, padding=pads, rhs_dilation=self.dilation,
                dimension_numbers=dimension_numbers(self._rank),
                feature_group_count=self.groups)
        return self._add_bias(y, params), state


_CONV_DOC = """{rank}-D convolution (cross-correlation) of a ``{layout}`` input with ``features`` filters.

        y[b, {out_idx}, o] = b[o] + sum_{{{win}, c}} x[b, {in_idx}, c] w[{win_idx}, c, o]

    with ``x`` padded as ``padding`` says, ``s`` the stride and ``d`` the
    dilation, and ``c`` running over the ``in_channels // groups`` channels of
    ``o``'s group (``groups`` splits the channels and the filters into that many
    independent convolutions; ``groups = in_channels`` is a depthwise
    convolution). Not flipped: cross-correlation, as in the notes.

    Output size along a spatial axis of size ``n`` (kernel ``f``, dilation
    ``d``, stride ``s``, ``p`` padding on each side), the notes' formula with
    the dilated kernel span ``f' = (f - 1) d + 1``:
    ``floor((n + 2p - f') / s) + 1``. ``"valid"`` is ``p = 0``; ``"same"``
    pads ``max((ceil(n / s) - 1) s + f' - n, 0)`` in all, the odd one after
    (TF/Keras), for an output of ``ceil(n / s)``;{causal} an int ``p`` pads
    each side by ``p``; a tuple gives one int per axis or ``(before, after)``
    pairs.

    Parameters ``{{"w": ({kernel}, in_channels // groups, features),
    "b": (features,)}}`` (no ``"b"`` with ``use_bias=False``); stateless. On
    CPU, with ``groups=1``, the convolution is one matrix product over shifted
    slices of the input (`fnn.layers.conv_matmul`), which ``fnn.fit`` runs
    in ``lax.scan`` like a dense layer; a grouped convolution is ``lax.conv``,
    which is slow inside ``lax.scan`` on CPU, so ``fit`` runs such models step
    by step there (``loop_friendly_on_cpu = False``).

    Args:
      features: the number of filters (output channels).
      kernel_size: the filter size, an int or a tuple of {rank} ints.
      stride: the step between windows, an int or a tuple of {rank} ints.
      padding: {modes}, an int, a tuple of {rank} ints, or {rank} ``(before, after)`` pairs.
      dilation: the spacing between filter taps, an int or a tuple of {rank} ints.
      groups: split channels and filters into this many groups.
      use_bias: add ``b``.
      w_init: initializer of ``w`` (default ``glorot_uniform()``; ``"he_normal"``
        for ReLU networks).
      b_init: initializer of ``b`` (default zeros).

    Raises:
      LayerValueError: bad hyperparameters (at construction); an input not
        shaped ``{layout}`` (a missing channel axis is named), one that looks
        channels-first, channels not divisible by ``groups``, a kernel larger
        than the padded input, params of the wrong shape.
      LayerTypeError: a non-float input.

    Examples:
{example}"""

def conv_doc(template: str, rank: int, example: str, **extra: str) -> str:
    """A convolution class's docstring: ``template`` with the equation written out for
    ``rank`` spatial axes and ``example`` appended."""
    o, i, u = "ijl"[:rank], "tuv"[-rank:], "pqr"[:rank]
    out_idx = ", ".join(o)
    in_idx = ", ".join(f"{a} s + {b} d" for a, b in zip(o, u))
    causal = (" ``\"causal\"`` (1-D) pads ``f' - 1`` before and nothing after, so"
              " ``y[t]`` sees only ``x[<= t]``;" if rank == 1 else "")
    modes = '``"valid"``, ``"same"``, ``"causal"``' if rank == 1 else '``"valid"``, ``"same"``'
    del i
    return template.format(
        rank=rank, layout=f"(batch, {SPATIAL_AXES[rank]}, channels)", out_idx=out_idx,
        in_idx=in_idx, win=", ".join(u),
        win_idx=", ".join(u), kernel=", ".join(f"f{a}" for a in u) if rank > 1 else "f",
        causal=causal, modes=modes,
        scatter_idx=", ".join(f"{a} s + {b} d - lo" for a, b in zip(o, u)),
        conv=f"Conv{rank}D", example=example, **extra)


@dataclasses.dataclass(frozen=True)
class Conv1D(_Conv):
    __doc__ = conv_doc(_CONV_DOC, 1, """\
      >>> layer = fnn.Conv1D(4, 3, padding="causal")      # y[t] sees x[t-2 .. t]
      >>> params, _ = layer.init(jax.random.key(0), jnp.ones((2, 10, 5)))
      >>> jax.tree.map(jnp.shape, params)
      {'b': (4,), 'w': (3, 5, 4)}
      >>> layer.apply(params, {}, jnp.ones((2, 10, 5)))[0].shape
      (2, 10, 4)
    """)
    _rank = 1
    _modes = ("valid", "same", "causal")


@dataclasses.dataclass(frozen=True)
class Conv2D(_Conv):
    __doc__ = conv_doc(_CONV_DOC, 2, """\
      The notes' example: a 6x6 image, three dark (0) and three bright (1)
      columns, through the 3x3 vertical-edge (Sobel) filter gives 4x4:

      >>> image = jnp.array([[0., 0., 0., 1., 1., 1.]] * 6).reshape(1, 6, 6, 1)
      >>> vertical = jnp.array([[1., 0., -1.], [2., 0., -2.], [1., 0., -1.]])
      >>> layer = fnn.Conv2D(1, (3, 3), use_bias=False)  # floor((6 + 0 - 3) / 1) + 1 = 4
      >>> y, _ = layer.apply({"w": vertical.reshape(3, 3, 1, 1)}, {}, image)
      >>> y[0, :, :, 0]
      Array([[ 0., -4., -4.,  0.],
             [ 0., -4., -4.,  0.],
             [ 0., -4., -4.,  0.],
             [ 0., -4., -4.,  0.]], dtype=float32)
      >>> params, _ = fnn.Conv2D(32, (3, 3)).init(jax.random.key(0), jnp.ones((1, 32, 32, 3)))
      >>> params["w"].shape, fnn.count_params(params)        # 3 * 3 * 3 * 32 + 32
      ((3, 3, 3, 32), 896)
    """)
    _rank = 2


@dataclasses.dataclass(frozen=True)
class Conv3D(_Conv):
    __doc__ = conv_doc(_CONV_DOC, 3, """\
      >>> layer = fnn.Conv3D(2, (1, 3, 3), padding="same")
      >>> params, _ = layer.init(jax.random.key(0), jnp.ones((1, 4, 8, 8, 3)))
      >>> layer.apply(params, {}, jnp.ones((1, 4, 8, 8, 3)))[0].shape
      (1, 4, 8, 8, 2)
    """)
    _rank = 3
