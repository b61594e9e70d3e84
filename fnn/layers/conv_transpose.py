"""Transposed convolutions, channels-last: each input element scatters a filter-sized patch.

``ConvTransposeND`` is the transpose (the gradient with respect to the input)
of ``ConvND`` with the same kernel size, stride and dilation: the upsampling
layer of decoders and autoencoders. It shares its fields and checks with the
convolutions (`fnn.layers.conv`); parameters
``{"w": (*kernel_size, in_channels, features), "b": (features,)}``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax import lax

from fnn.errors import LayerValueError
from fnn.layers.base import Params, State
from fnn.layers.conv import ConvBase, dimension_numbers, conv_doc


@dataclasses.dataclass(frozen=True)
class _ConvTranspose(ConvBase):
    """The transposed convolution (the ``ConvTransposeND`` docstrings say what it computes)."""

    _modes = ("valid", "same")

    def __post_init__(self):
        super().__post_init__()
        if self.groups != 1:
            raise LayerValueError(self, f"groups must be 1 for a transposed convolution, got "
                                  f"{self.groups}")

    def _pads(self, spatial: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        """Rows cropped from each end of the full scatter output (negative: added)."""
        if self.padding == "valid":
            return ((0, 0),) * self._rank
        if self.padding == "same":   # output n * s: crop the span - s extra rows
            pads = []
            for k, d, s in zip(self.kernel_size, self.dilation, self.stride):
                total = (k - 1) * d + 1 - s
                pads.append((total // 2, total - total // 2) if total >= 0 else (0, total))
            return tuple(pads)
        return self.padding

    def _output_spatial(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        spatial = shape[1:-1]
        out = tuple((n - 1) * s + (k - 1) * d + 1 - lo - hi
                    for n, k, d, s, (lo, hi) in zip(spatial, self.kernel_size, self.dilation,
                                                    self.stride, self._pads(spatial)))
        if min(out) < 1:
            raise LayerValueError(self, f"padding {self.padding} crops the whole output: input "
                                  f"shape {shape} {self._layout} gives spatial size {out}")
        return out

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        return (*self.kernel_size, channels, self.features)

    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """Scatter each input element's filter patch into the output; returns ``(y, state)``."""
        del key, train
        x = self._checked(params, x)
        # The scatter y[i s + u d - lo] += x[i] w[u] is a convolution of the input dilated by
        # the stride with the spatially flipped kernel, padded by the kernel's span - 1.
        w = jnp.flip(params["w"], axis=tuple(range(self._rank))).astype(x.dtype)
        pads = [((k - 1) * d - lo, (k - 1) * d - hi) for k, d, (lo, hi) in
                zip(self.kernel_size, self.dilation, self._pads(x.shape[1:-1]))]
        y = lax.conv_general_dilated(
            x, w, window_strides=(1,) * self._rank, padding=pads, lhs_dilation=self.stride,
            rhs_dilation=self.dilation, dimension_numbers=dimension_numbers(self._rank))
        return self._add_bias(y, params), state


_TRANSPOSE_DOC = """{rank}-D transposed convolution of a ``{layout}`` input: each input element scatters a filter patch.

        y[b, {scatter_idx}, o] += x[b, {out_idx}, c] w[{win_idx}, c, o]      (then + b[o])

    over every input position, filter tap and channel ``c``, with ``s`` the
    stride, ``d`` the dilation and ``lo`` the rows cropped before. It is the
    transpose (the gradient with respect to the input) of `{conv}` with
    the same ``kernel_size``, ``stride`` and ``dilation``, so it maps that
    convolution's output size back to its input size: the upsampling layer of
    decoders and autoencoders (PyTorch's ``ConvTranspose{rank}d`` and Keras'
    ``Conv{rank}DTranspose`` compute the same).

    Output size along a spatial axis of size ``n`` (kernel ``f``, dilated span
    ``f' = (f - 1) d + 1``): ``"valid"``: ``(n - 1) s + f'``; ``"same"``:
    ``n s``; an int ``p`` (PyTorch's ``padding``) crops ``p`` from each end:
    ``(n - 1) s + f' - 2p``; ``(before, after)`` pairs crop unevenly.

    Parameters ``{{"w": ({kernel}, in_channels, features), "b": (features,)}}``;
    stateless; ``groups`` must be 1.

    Args:
      features: the number of output channels.
      kernel_size, stride, dilation: an int or a tuple of {rank} ints.
      padding: ``"valid"``, ``"same"``, an int, a tuple of {rank} ints or of
        {rank} ``(before, after)`` pairs (rows cropped from the output).
      groups: must be 1.
      use_bias, w_init, b_init: as for `{conv}`.

    Raises:
      LayerValueError: bad hyperparameters; an input not shaped ``{layout}``;
        padding that crops the whole output; params of the wrong shape.
      LayerTypeError: a non-float input.

    Examples:
{example}"""


@dataclasses.dataclass(frozen=True)
class ConvTranspose1D(_ConvTranspose):
    __doc__ = conv_doc(_TRANSPOSE_DOC, 1, """\
      >>> layer = fnn.ConvTranspose1D(1, 2, stride=2, use_bias=False)  # (3 - 1) 2 + 2 = 6
      >>> x = jnp.array([1., 2., 3.]).reshape(1, 3, 1)
      >>> layer.apply({"w": jnp.array([1., 10.]).reshape(2, 1, 1)}, {}, x)[0][0, :, 0]
      Array([ 1., 10.,  2., 20.,  3., 30.], dtype=float32)
    """)
    _rank = 1


@dataclasses.dataclass(frozen=True)
class ConvTranspose2D(_ConvTranspose):
    __doc__ = conv_doc(_TRANSPOSE_DOC, 2, """\
      >>> layer = fnn.ConvTranspose2D(16, 3, stride=2, padding="same")   # 7x7 -> 14x14
      >>> params, _ = layer.init(jax.random.key(0), jnp.ones((1, 7, 7, 32)))
      >>> layer.apply(params, {}, jnp.ones((1, 7, 7, 32)))[0].shape, params["w"].shape
      ((1, 14, 14, 16), (3, 3, 32, 16))
    """)
    _rank = 2


@dataclasses.dataclass(frozen=True)
class ConvTranspose3D(_ConvTranspose):
    __doc__ = conv_doc(_TRANSPOSE_DOC, 3, """\
      >>> layer = fnn.ConvTranspose3D(2, 2, stride=2)
      >>> params, _ = layer.init(jax.random.key(0), jnp.ones((1, 2, 3, 4, 1)))
      >>> layer.apply(params, {}, jnp.ones((1, 2, 3, 4, 1)))[0].shape
      (1, 4, 6, 8, 2)
    """)
    _rank = 3
