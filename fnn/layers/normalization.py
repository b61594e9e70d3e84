"""Per-example normalisation layers: LayerNorm, GroupNorm, RMSNorm (and their shared checks).

Unlike `fnn.BatchNorm` these take their statistics from each example
alone, so they behave the same in training and evaluation and have no state.
All of them compute in at least ``float32`` (a ``bfloat16`` input is
normalised in ``float32`` and the output cast back to ``bfloat16``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp

from fnn.errors import LayerTypeError, LayerValueError
from fnn.layers.base import Layer, Params, State, input_struct


# --- checks shared with fnn.layers.batch_norm -------------------------------------------------

def check_axis_arg(layer: Layer, axis: Any) -> int | tuple[int, ...]:
    """``axis`` as an int or a tuple of ints (at construction); ``LayerValueError`` otherwise."""
    def is_int(a):
        return isinstance(a, numbers.Integral) and not isinstance(a, bool)

    if is_int(axis):
        return int(axis)
    if isinstance(axis, (tuple, list)) and axis and all(is_int(a) for a in axis):
        return tuple(int(a) for a in axis)
    raise LayerValueError(layer, f"axis must be an int or a non-empty tuple of ints, got {axis!r}")


def check_eps(layer: Layer, eps: Any) -> float:
    """``eps`` as a positive finite float; ``LayerValueError`` otherwise."""
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not (
            math.isfinite(eps) and eps > 0):
        raise LayerValueError(layer, f"eps must be a positive number (it keeps sqrt(var + eps) "
                              f"away from 0), got {eps!r}")
    return float(eps)


def check_input(layer: Layer, shape: tuple[int, ...], dtype: Any) -> None:
    """A floating-point input with a batch axis and at least one more (rank >= 2)."""
    if len(shape) < 2:
        raise LayerValueError(layer, "expected input of rank >= 2, shape (batch, ..., features); "
                              f"got rank {len(shape)}, shape {shape}")
    if not jnp.issubdtype(dtype, jnp.floating):
        raise LayerTypeError(layer, f"expected a floating-point input, got dtype {dtype} "
                             f"(shape {shape}); cast with x.astype(jnp.float32)")


def feature_axes(layer: Layer, axis: int | tuple[int, ...], shape: tuple[int, ...]
                 ) -> tuple[int, ...]:
    """``axis`` for an input of this ``shape``: sorted, non-negative, never the batch axis 0."""
    ndim = len(shape)
    axes = (axis,) if isinstance(axis, int) else axis
    bad = [a for a in axes if not -ndim <= a < ndim]
    if bad:
        raise LayerValueError(layer, f"axis={axis!r} is out of range for an input of rank {ndim}, "
                              f"shape {shape}")
    normal = sorted(a % ndim for a in axes)
    if len(set(normal)) != len(normal):
        raise LayerValueError(layer, f"axis={axis!r} names an axis twice for an input of rank "
                              f"{ndim}, shape {shape}")
    if normal[0] == 0:
        raise LayerValueError(layer, f"axis={axis!r} includes the batch axis 0 of the input of "
                              f"shape {shape}; inputs are batch-first, choose other axes")
    return tuple(normal)


def compute_dtype(dtype: Any) -> Any:
    """The dtype statistics are computed in: the input's, but at least ``float32``."""
    return jnp.promote_types(dtype, jnp.float32)


def check_params(layer: Layer, params: Params, names: tuple[str, ...], shape: tuple[int, ...],
                 what: str) -> None:
    """``params`` is a dict with exactly ``names``, each of ``shape``; ``what`` describes ``shape``."""
    keys = set(params) if isinstance(params, dict) else None
    if keys != set(names):
        got = sorted(keys) if keys is not None else type(params).__name__
        raise LayerValueError(layer, f"params must be a dict with keys {sorted(names)}, got {got}")
    for name in names:
        if tuple(jnp.shape(params[name])) != shape:
            raise LayerValueError(
                layer, f"params[{name!r}] has shape {tuple(jnp.shape(params[name]))} but "
                f"{what} has shape {shape}; were the params built for another input?")


def broadcast_shape(ndim: int, axes: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` (the sizes of ``axes``) as a shape of rank ``ndim`` with 1 on the other axes."""
    full = [1] * ndim
    for a, n in zip(axes, shape):
        full[a] = n
    return tuple(full)


def affine(y: jax.Array, params: Params, shape: tuple[int, ...]) -> jax.Array:
    """``y * scale + bias`` (each if present), reshaped to ``shape`` and cast to ``y``'s dtype."""
    if "scale" in params:
        y = y * jnp.reshape(params["scale"], shape).astype(y.dtype)
    if "bias" in params:
        y = y + jnp.reshape(params["bias"], shape).astype(y.dtype)
    return y


def affine_names(use_scale: bool, use_bias: bool) -> tuple[str, ...]:
    return ("scale",) * bool(use_scale) + ("bias",) * bool(use_bias)


def affine_init(use_scale: bool, use_bias: bool, shape: tuple[int, ...], dtype: Any) -> Params:
    """``{"scale": ones(shape), "bias": zeros(shape)}`` (each if used), at least ``float32``."""
    dtype = compute_dtype(dtype)
    params = {}
    if use_scale:
        params["scale"] = jnp.ones(shape, dtype)
    if use_bias:
        params["bias"] = jnp.zeros(shape, dtype)
    return params


# --- the layers ------------------------------------------------------------------------------

class _AxisNorm(Layer):
    """Shared init/apply of LayerNorm and RMSNorm: statistics over ``axis`` of each example."""

    def __post_init__(self):
        object.__setattr__(self, "axis", check_axis_arg(self, self.axis))
        object.__setattr__(self, "eps", check_eps(self, self.eps))

    def _axes(self, shape, dtype):
        check_input(self, shape, dtype)
        axes = feature_axes(self, self.axis, shape)
        return axes, tuple(shape[a] for a in axes)

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """``{"scale": ones, "bias": zeros}`` shaped like the normalised axes; state ``{}``."""
        del key
        x = input_struct(x)
        _, shape = self._axes(x.shape, x.dtype)
        return affine_init(self.use_scale, getattr(self, "use_bias", False), shape, x.dtype), {}

    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """The normalised ``x`` (same shape and dtype); ``state`` unchanged."""
        del key, train
        x = jnp.asarray(x)
        axes, shape = self._axes(x.shape, x.dtype)
        check_params(self, params, affine_names(self.use_scale, getattr(self, "use_bias", False)),
                     shape, f"the input's axes {axes} (input shape {tuple(x.shape)})")
        xc = x.astype(compute_dtype(x.dtype))
        y = self._normalize(xc, axes)
        return affine(y, params, broadcast_shape(x.ndim, axes, shape)).astype(x.dtype), state


@dataclasses.dataclass(frozen=True)
class LayerNorm(_AxisNorm):
    """Layer normalisation: each example normalised over its feature axes.

    For each example (and each position on the axes not in ``axis``), with
    ``mu`` and ``sigma^2`` the mean and biased variance over the ``axis``
    elements:

        y = (x - mu) / sqrt(sigma^2 + eps) * scale + bias

    The statistics are per example, so the layer acts the same in training
    and evaluation and a batch of one is fine. Parameters:
    ``{"scale": ones(F), "bias": zeros(F)}`` with ``F`` the shape of the
    normalised axes (``(features,)`` for the default ``axis=-1``), in at
    least ``float32``; no state. Computed in at least ``float32``, the output
    has the input's dtype.

    Args:
      axis: the axis or axes normalised over (an int or a tuple; any axes
        but the batch axis 0), default the last.
      eps: added to the variance, ``> 0``.
      use_scale: multiply by the learned ``scale``.
      use_bias: add the learned ``bias``.

    Returns:
      ``apply`` gives ``(y, state)`` with ``y`` of the input's shape and dtype.

    Raises:
      LayerValueError: bad ``axis`` or ``eps`` (at construction); an input of
        rank < 2, an ``axis`` out of range or naming the batch axis; params
        built for other feature shapes.
      LayerTypeError: non-float input.

    Examples:
      >>> layer = fnn.LayerNorm()
      >>> x = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]])
      >>> params, state = layer.init(jax.random.key(0), x)
      >>> jax.tree.map(jnp.shape, params), state
      ({'bias': (3,), 'scale': (3,)}, {})
      >>> y, _ = layer.apply(params, state, x)
      >>> y.round(3)
      Array([[-1.225,  0.   ,  1.225],
             [-0.707, -0.707,  1.414]], dtype=float32)
    """

    axis: int | tuple[int, ...] = -1
    eps: float = 1e-5
    use_scale: bool = True
    use_bias: bool = True

    def _normalize(self, x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
        mean = jnp.mean(x, axes, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axes, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + self.eps)


@dataclasses.dataclass(frozen=True)
class RMSNorm(_AxisNorm):
    """Root-mean-square normalisation (no centring, no bias):

        y = x / sqrt(mean(x^2) + eps) * scale

    with the mean over ``axis`` of each example. Parameters
    ``{"scale": ones(F)}`` (``F`` the shape of the normalised axes; ``{}``
    with ``use_scale=False``); no state. Computed in at least ``float32``.

    Args:
      axis: the axis or axes normalised over (not the batch axis 0), default the last.
      eps: added to the mean square, ``> 0``.
      use_scale: multiply by the learned ``scale``.

    Returns:
      ``apply`` gives ``(y, state)`` with ``y`` of the input's shape and dtype.

    Raises:
      LayerValueError: bad ``axis`` or ``eps``; input of rank < 2, ``axis``
        out of range or naming the batch axis; params of other shapes.
      LayerTypeError: non-float input.

    Examples:
      >>> layer = fnn.RMSNorm()
      >>> x = jnp.array([[3.0, 4.0]])              # mean(x^2) = 12.5
      >>> params, state = layer.init(jax.random.key(0), x)
      >>> y, _ = layer.apply(params, state, x)
      >>> y.tolist()                               # x / sqrt(12.5 + 1e-6)
      [[0.8485, 1.1314]]
    """

    axis: int | tuple[int, ...] = -1
    eps: float = 1e-6
    use_scale: bool = True

    def _normalize(self, x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
        return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axes, keepdims=True) + self.eps)


@dataclasses.dataclass(frozen=True)
class GroupNorm(Layer):
    """Group normalisation: channels split into groups, each normalised per example.

    The input is channels-last, ``(batch, *spatial, C)``. The ``C`` channels
    are split into ``groups`` consecutive groups of ``C / groups``; for each
    example and group, ``mu`` and ``sigma^2`` are the mean and biased
    variance over the spatial positions and the group's channels, and

        y = (x - mu) / sqrt(sigma^2 + eps) * scale + bias

    with per-channel ``scale`` and ``bias`` of shape ``(C,)``. ``groups=1`` is
    a layer norm over all of an example; ``groups=C`` is instance
    normalisation. No state: training and evaluation agree.

    Args:
      groups: number of groups, a positive int dividing ``C``.
      eps: added to the variance, ``> 0``.
      use_scale: multiply by the learned ``scale``.
      use_bias: add the learned ``bias``.

    Returns:
      ``apply`` gives ``(y, state)`` with ``y`` of the input's shape and dtype.

    Raises:
      LayerValueError: ``groups`` not a positive int, bad ``eps``; input of
        rank < 2; ``C`` not divisible by ``groups``; params of another ``C``.
      LayerTypeError: non-float input.

    Examples:
      >>> layer = fnn.GroupNorm(2)
      >>> x = jnp.array([[1.0, 3.0, 10.0, 20.0]])   # groups (1, 3) and (10, 20)
      >>> params, state = layer.init(jax.random.key(0), x)
      >>> y, _ = layer.apply(params, state, x)
      >>> y.round(3)
      Array([[-1., 1., -1., 1.]], dtype=float32)
    """

    groups: int
    eps: float = 1e-5
    use_scale: bool = True
    use_bias: bool = True

    def __post_init__(self):
        if (isinstance(self.groups, bool) or not isinstance(self.groups, numbers.Integral)
                or self.groups < 1):
            raise LayerValueError(self, f"groups must be a positive int, got {self.groups!r}")
        object.__setattr__(self, "groups", int(self.groups))
        object.__setattr__(self, "eps", check_eps(self, self.eps))

    def _channels(self, shape, dtype) -> int:
        check_input(self, shape, dtype)
        channels = shape[-1]
        if channels % self.groups:
            raise LayerValueError(self, f"the {channels} channels (last axis of the input of "
                                  f"shape {shape}) do not split into {self.groups} equal groups")
        return channels

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """``{"scale": ones(C), "bias": zeros(C)}``; state ``{}``."""
        del key
        x = input_struct(x)
        channels = self._channels(x.shape, x.dtype)
        return affine_init(self.use_scale, self.use_bias, (channels,), x.dtype), {}

    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """The group-normalised ``x`` (same shape and dtype); ``state`` unchanged."""
        del key, train
        x = jnp.asarray(x)
        channels = self._channels(x.shape, x.dtype)
        check_params(self, params, affine_names(self.use_scale, self.use_bias), (channels,),
                     f"the channel axis of the input of shape {tuple(x.shape)}")
        xg = x.astype(compute_dtype(x.dtype)).reshape(
            x.shape[:-1] + (self.groups, channels // self.groups))
        axes = tuple(range(1, x.ndim - 1)) + (x.ndim,)   # spatial axes and a group's channels
        mean = jnp.mean(xg, axes, keepdims=True)
        var = jnp.mean(jnp.square(xg - mean), axes, keepdims=True)
        y = ((xg - mean) * jax.lax.rsqrt(var + self.eps)).reshape(x.shape)
        return affine(y, params, (1,) * (x.ndim - 1) + (channels,)).astype(x.dtype), state
