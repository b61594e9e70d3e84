"""Data augmentation: random transformations of each training batch.

The notes list data augmentation as a cure for too little data and for
overfitting: enlarge the training set by modifying the examples it has
(flipped, shifted or noisy copies of an image are still the same class).

Each factory here returns a pure function ``augment(key, x) -> x`` that the
training step calls on every batch with a fresh per-step key, inside ``jit``.
Every example in the batch draws its own transformation. Shapes and dtypes
are preserved, so one compiled step serves every batch.

Images use the **NHWC** layout: ``x.shape == (batch, height, width, channels)``.
`gaussian_noise` works on arrays of any rank (e.g. flat ``(batch,
features)`` inputs). Augment the training data only; never dev or test data.

    >>> augment = fnn.train.data.augment.compose(
    ...     fnn.train.data.augment.random_flip(), fnn.train.data.augment.random_shift(1),
    ...     fnn.train.data.augment.gaussian_noise(0.05))
    >>> images = jnp.ones((4, 8, 8, 1))
    >>> jax.jit(augment)(jax.random.key(0), images).shape
    (4, 8, 8, 1)
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

__all__ = ["Augmentation", "random_flip", "random_shift", "gaussian_noise", "compose"]

Augmentation = Callable[[jax.Array, jax.Array], jax.Array]
"""The type of an augmentation: ``augment(key, x) -> x`` (same shape and dtype)."""


def _per_example(mask: jax.Array, ndim: int) -> jax.Array:
    """Reshape a ``(batch,)`` mask to ``(batch, 1, ..., 1)`` for an array of rank ``ndim``."""
    return mask.reshape(mask.shape + (1,) * (ndim - 1))


def random_flip(axis: int = 2, prob: float = 0.5) -> Augmentation:
    """Mirror each example along ``axis`` with probability ``prob``.

    ``out[i] = flip(x[i], axis)`` if ``u_i < prob`` else ``x[i]``, one draw
    ``u_i ~ Bernoulli(prob)`` per example. For NHWC images ``axis=2`` is a
    horizontal (left-right) flip, ``axis=1`` a vertical (up-down) one.
    Axis 0 (the batch) cannot be flipped. Only use it where a mirrored example
    keeps its label (a mirrored cat is a cat; a mirrored digit 2 is not a 2).

    Args:
      axis: the axis of the batched array to reverse (``>= 1``; negative counts
        from the end).
      prob: probability of flipping each example, in ``[0, 1]``.

    Returns:
      ``augment(key, x) -> x``.

    Examples:
      >>> flip = fnn.train.data.augment.random_flip(prob=1.0)
      >>> flip(jax.random.key(0), jnp.arange(3.0).reshape(1, 1, 3, 1))[0, 0, :, 0].tolist()
      [2.0, 1.0, 0.0]
    """
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"random_flip: axis must be an int, got {axis!r}")
    if not 0.0 <= float(prob) <= 1.0:
        raise ValueError(f"random_flip: prob must be in [0, 1], got prob={prob!r}")
    prob = float(prob)

    def augment(key: jax.Array, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        ax = axis + x.ndim if axis < 0 else axis
        if not 1 <= ax < x.ndim:
            raise ValueError(f"random_flip: axis={axis} is not a non-batch axis of x with "
                             f"shape {x.shape} (expected 1 <= axis < {x.ndim}; images are NHWC)")
        flip = jax.random.bernoulli(key, prob, (x.shape[0],))
        return jnp.where(_per_example(flip, x.ndim), jnp.flip(x, ax), x)

    return augment


def random_shift(max_shift: int | tuple[int, int]) -> Augmentation:
    """Translate each image by a random whole number of pixels, filling with zeros.

    Each example ``i`` draws ``dy_i`` uniformly from ``{-max_dy, ..., max_dy}``
    and ``dx_i`` from ``{-max_dx, ..., max_dx}``;
    ``out[i, r, c] = x[i, r - dy_i, c - dx_i]`` where that pixel exists and 0
    elsewhere (content moves down by ``dy`` and right by ``dx``).

    Args:
      max_shift: largest shift in pixels, an int for both directions or a pair
        ``(max_dy, max_dx)``; each ``>= 0``.

    Returns:
      ``augment(key, x) -> x`` for NHWC images ``(batch, height, width, channels)``.

    Examples:
      >>> shift = fnn.train.data.augment.random_shift(2)
      >>> out = shift(jax.random.key(0), jnp.ones((3, 5, 5, 1)))
      >>> out.shape, float(out.sum()) <= 75.0
      ((3, 5, 5, 1), True)
    """
    pair = (max_shift, max_shift) if not isinstance(max_shift, (tuple, list)) else tuple(max_shift)
    if len(pair) != 2 or any(isinstance(m, bool) or not isinstance(m, int) or m < 0 for m in pair):
        raise ValueError("random_shift: max_shift must be an int >= 0 or a pair of them "
                         f"(max_dy, max_dx), got max_shift={max_shift!r}")
    max_dy, max_dx = pair

    def shift_one(image: jax.Array, dy: jax.Array, dx: jax.Array) -> jax.Array:
        height, width, channels = image.shape
        padded = jnp.pad(image, ((max_dy, max_dy), (max_dx, max_dx), (0, 0)))
        return jax.lax.dynamic_slice(padded, (max_dy - dy, max_dx - dx, 0),
                                     (height, width, channels))

    def augment(key: jax.Array, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        if x.ndim != 4:
            raise ValueError("random_shift: expected images of shape (batch, height, width, "
                             f"channels) (NHWC), got shape {x.shape}")
        if max_dy >= x.shape[1] or max_dx >= x.shape[2]:
            raise ValueError(f"random_shift: max_shift={(max_dy, max_dx)} must be smaller than "
                             f"the image size {x.shape[1:3]}")
        key_y, key_x = jax.random.split(key)
        dy = jax.random.randint(key_y, (x.shape[0],), -max_dy, max_dy + 1)
        dx = jax.random.randint(key_x, (x.shape[0],), -max_dx, max_dx + 1)
        return jax.vmap(shift_one)(x, dy, dx)

    return augment


def gaussian_noise(stddev: float) -> Augmentation:
    """Add independent Gaussian noise to every entry.

    ``out = x + stddev * eps`` with ``eps ~ N(0, 1)`` of ``x``'s shape and dtype.

    Args:
      stddev: standard deviation of the noise, ``>= 0``.

    Returns:
      ``augment(key, x) -> x`` for a floating array of any rank.

    Examples:
      >>> noise = fnn.train.data.augment.gaussian_noise(0.1)
      >>> out = noise(jax.random.key(0), jnp.zeros((1000, 4)))
      >>> abs(float(out.std()) - 0.1) < 0.005, out.dtype     # 4000 draws: std error ~0.001
      (True, dtype('float32'))
    """
    if not float(stddev) >= 0.0:
        raise ValueError(f"gaussian_noise: stddev must be >= 0, got stddev={stddev!r}")
    stddev = float(stddev)

    def augment(key: jax.Array, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"gaussian_noise: expected a floating array, got dtype {x.dtype}")
        noise = jax.random.normal(key, x.shape, x.dtype)
        return x + jnp.asarray(stddev, x.dtype) * noise

    return augment


def compose(*augmentations: Augmentation) -> Augmentation:
    """Apply several augmentations in order, each with its own key.

    ``compose(a, b)(key, x) == b(k2, a(k1, x))`` with ``k1, k2 = split(key)``.
    ``compose()`` is the identity.

    Args:
      *augmentations: functions ``augment(key, x) -> x``.

    Returns:
      ``augment(key, x) -> x``.

    Examples:
      >>> flip_twice = fnn.train.data.augment.compose(
      ...     fnn.train.data.augment.random_flip(prob=1.0), fnn.train.data.augment.random_flip(prob=1.0))
      >>> x = jnp.arange(4.0).reshape(1, 1, 4, 1)
      >>> bool((flip_twice(jax.random.key(0), x) == x).all())
      True
    """
    for i, aug in enumerate(augmentations):
        if not callable(aug):
            raise TypeError(f"compose: augmentation {i} is not callable, got {aug!r}")

    def augment(key: jax.Array, x: jax.Array) -> jax.Array:
        if not augmentations:
            return x
        keys = jax.random.split(key, len(augmentations))
        for k, aug in zip(keys, augmentations):
            x = aug(k, x)
        return x

    return augment
