"""A convolution as one matrix product over shifted slices of the input (fnn's CPU path).

For a kernel of ``K = k1 * ... * kd`` positions, the ``K`` strided slices of the
padded input that each kernel position sees are concatenated along the
channels into ``patches`` of shape ``(batch, *out, K * in_channels)``, and

    y = patches @ reshape(w, (K * in_channels, features))

This is the same sum as ``lax.conv_general_dilated`` (the products are only
added in another order). Differentiated by JAX as written, its backward is two
matrix products (``patches^T @ dy`` for the weights, ``dy @ w^T`` for the
patches) and the ``K`` slices' transposes (pads with the stride as interior
padding) added up. On XLA:CPU this is ~1.5x faster than XLA's own convolution
for a small CNN's training step, whose weight gradient (a large-window
convolution on transposed tensors) is slow there; on GPU and TPU the library
kernels are better, so `fnn.layers.conv` uses this only on CPU, and only
while ``patches`` stays small (`PATCHES_LIMIT_BYTES`). Benchmarks in
``benchmarks/bench_cnn.py`` and ``docs/conv.md``.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
from jax import lax

#: The largest ``patches`` array (bytes, per call) for which the matmul path is used; the
#: patches hold ``K`` copies of the input, so a larger convolution uses XLA's own.
PATCHES_LIMIT_BYTES = 256 * 2 ** 20


def patches_bytes(x_shape: tuple[int, ...], out_spatial: tuple[int, ...],
                  kernel_size: tuple[int, ...], itemsize: int) -> int:
    """Bytes of the ``patches`` array for an input of ``x_shape`` (batch-first)."""
    return x_shape[0] * math.prod(out_spatial) * math.prod(kernel_size) * x_shape[-1] * itemsize


def conv_matmul(x: jax.Array, w: jax.Array, stride: tuple[int, ...],
                dilation: tuple[int, ...], pads: tuple[tuple[int, int], ...]) -> jax.Array:
    """Cross-correlate ``x`` (batch, *spatial, in) with ``w`` (*kernel, in, out), groups 1.

    Args:
      x: the input, batch-first and channels-last.
      w: the filters, ``(*kernel_size, in_channels, features)``.
      stride, dilation: one int per spatial axis.
      pads: ``(low, high)`` zero padding per spatial axis (non-negative).

    Returns:
      ``(batch, *out, features)`` with ``out = (n + low + high - span) // stride + 1`` and
      ``span = (k - 1) * dilation + 1``, equal to ``lax.conv_general_dilated`` up to the
      order of the additions.
    """
    kernel, (channels, features) = w.shape[:-2], w.shape[-2:]
    x = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), *[(lo, hi, 0) for lo, hi in pads],
                                            (0, 0, 0)])
    out = [(n - (k - 1) * d - 1) // s + 1
           for n, k, d, s in zip(x.shape[1:-1], kernel, dilation, stride)]
    slices = []
    for offset in itertools.product(*(range(k) for k in kernel)):
        start = [i * d for i, d in zip(offset, dilation)]
        slices.append(lax.slice(
            x, (0, *start, 0),
            (x.shape[0], *[a + (o - 1) * s + 1 for a, o, s in zip(start, out, stride)],
             channels),
            (1, *stride, 1)))
    patches = slices[0] if len(slices) == 1 else jnp.concatenate(slices, axis=-1)
    y = jnp.dot(jnp.reshape(patches, (-1, patches.shape[-1])),
                jnp.reshape(w, (-1, features)))
    return jnp.reshape(y, (x.shape[0], *out, features))
