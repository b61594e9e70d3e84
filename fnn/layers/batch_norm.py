"""Batch normalisation: normalise with the batch's statistics, keep running ones for evaluation."""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Hashable

import jax
import jax.numpy as jnp

from fnn import initializers
from fnn.errors import LayerValueError
from fnn.layers.base import Layer, Params, State, input_struct, resolve_initializers
from fnn.layers.normalization import (affine, affine_names, broadcast_shape, check_axis_arg,
                                      check_eps, check_input, check_params, compute_dtype,
                                      feature_axes)


@dataclasses.dataclass(frozen=True)
class BatchNorm(Layer):
    """Batch normalisation (the notes' ``Z_norm`` and ``Z_tilde``), channels-last.

    ``axis`` names the feature axes, which are kept; the statistics are taken
    over all the other axes (the batch and, for images, the spatial axes).
    In training (``train=True``), with ``mu`` and ``sigma^2`` the batch's mean
    and *biased* variance (divided by the number of elements ``m``):

        z_norm  = (z - mu) / sqrt(sigma^2 + eps)
        z_tilde = gamma * z_norm + beta              (gamma = scale, beta = bias)

    and the running statistics in ``state`` are updated as exponentially
    weighted averages (the Keras/Flax convention; the running variance
    averages the biased batch variance, as Flax does)::

        mean <- momentum * mean + (1 - momentum) * mu
        var  <- momentum * var  + (1 - momentum) * sigma^2

    In evaluation (``train=False``, the default) the running ``mean`` and
    ``var`` take the place of ``mu`` and ``sigma^2`` and ``state`` is returned
    unchanged. Gradients flow through ``mu`` and ``sigma^2`` (the standard
    batch-norm backward pass); nothing is stopped.

    Parameters ``{"scale": (F,), "bias": (F,)}`` and state
    ``{"mean": zeros(F), "var": ones(F)}``, with ``F`` the shape of the
    feature axes (``(C,)`` for the default ``axis=-1``), all in at least
    ``float32``. A ``bfloat16``/``float16`` input is normalised in ``float32``
    and the output cast back to the input's dtype.

    Data parallel: with ``axis_name``, the mean and then the variance
    ``E[(z - mu)^2]`` of each shard are averaged with
    ``jax.lax.pmean(..., axis_name)``, so under ``jax.vmap(...,
    axis_name=...)``, ``shard_map`` or ``pmap`` over equal-sized shards the
    statistics (and the running ones) are those of the whole global batch.

    Args:
      momentum: weight of the old running statistics, in ``[0, 1)``
        (PyTorch's ``momentum=m`` is ``1 - m`` here).
      eps: added to the variance, ``> 0``.
      axis: the feature axis or axes (an int or a tuple; not the batch axis 0).
      axis_name: ``None``, or the name of a mapped axis (``vmap``/``shard_map``/
        ``pmap``) to average the statistics over.
      use_scale: multiply by the learned ``scale`` (gamma).
      use_bias: add the learned ``bias`` (beta).
      scale_init: initializer of ``scale`` (default ``ones()``).
      bias_init: initializer of ``bias`` (default ``zeros()``).

    Returns:
      ``apply`` gives ``(y, state)``: ``y`` of the input's shape and dtype,
      the updated running statistics in training, ``state`` itself in evaluation.

    Raises:
      LayerValueError: ``momentum`` outside ``[0, 1)``, ``eps <= 0``, a bad
        ``axis`` or initializer (at construction); an input of rank < 2, an
        ``axis`` out of range or naming the batch axis; params or state built
        for other feature shapes; training on a batch with one element per
        feature (a batch of one without spatial axes: its variance is 0);
        ``axis_name`` set outside a mapping that binds it.
      LayerTypeError: non-float input.

    Examples:
      >>> bn = fnn.BatchNorm()
      >>> x = jnp.array([[1.0, 2.0], [3.0, 6.0]])   # mu = (2, 4), sigma^2 = (1, 4)
      >>> params, state = bn.init(jax.random.key(0), x)
      >>> state
      {'mean': Array([0., 0.], dtype=float32), 'var': Array([1., 1.], dtype=float32)}
      >>> y, state = bn.apply(params, state, x, train=True)
      >>> y.round(3)
      Array([[-1., -1.],
             [ 1.,  1.]], dtype=float32)
      >>> state["mean"], state["var"]           # 0.99 * old + 0.01 * batch
      (Array([0.02, 0.04], dtype=float32), Array([1.  , 1.03], dtype=float32))
      >>> y, same = bn.apply(params, state, x)  # evaluation: the running statistics
      >>> same is state
      True
    """

    momentum: float = 0.99
    eps: float = 1e-5
    axis: int | tuple[int, ...] = -1
    axis_name: Hashable | None = None
    use_scale: bool = True
    use_bias: bool = True
    scale_init: Any = initializers.ones()
    bias_init: Any = initializers.zeros()

    def __post_init__(self):
        m = self.momentum
        if isinstance(m, bool) or not isinstance(m, numbers.Real) or not (
                math.isfinite(m) and 0.0 <= m < 1.0):
            raise LayerValueError(self, "momentum (the weight of the old running statistics) "
                                  f"must be in [0, 1), got {m!r}")
        object.__setattr__(self, "momentum", float(m))
        object.__setattr__(self, "eps", check_eps(self, self.eps))
        object.__setattr__(self, "axis", check_axis_arg(self, self.axis))
        try:
            hash(self.axis_name)
        except TypeError:
            raise LayerValueError(self, "axis_name must be None or a hashable axis name such "
                                  f"as 'batch', got {self.axis_name!r}") from None
        resolve_initializers(self, "scale_init", "bias_init")

    def _axes(self, shape: tuple[int, ...], dtype: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
        check_input(self, shape, dtype)
        axes = feature_axes(self, self.axis, shape)
        return axes, tuple(shape[a] for a in axes)

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """Params ``{"scale", "bias"}`` and state ``{"mean": 0, "var": 1}``, shaped like the features."""
        x = input_struct(x)
        _, shape = self._axes(x.shape, x.dtype)
        dtype = compute_dtype(x.dtype)
        scale_key, bias_key = jax.random.split(key)
        params = {}
        if self.use_scale:
            params["scale"] = self.scale_init(scale_key, shape, dtype)
        if self.use_bias:
            params["bias"] = self.bias_init(bias_key, shape, dtype)
        return params, {"mean": jnp.zeros(shape, dtype), "var": jnp.ones(shape, dtype)}

    def _pmean(self, value: jax.Array) -> jax.Array:
        if self.axis_name is None:
            return value
        try:
            return jax.lax.pmean(value, self.axis_name)
        except NameError as err:
            raise LayerValueError(
                self, f"axis_name={self.axis_name!r} is not bound here: call apply inside "
                f"jax.vmap(..., axis_name={self.axis_name!r}) (or shard_map/pmap with that axis "
                f"name), or use axis_name=None ({err})") from None

    def _batch_stats(self, x: jax.Array, reduced: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
        count = math.prod(x.shape[a] for a in reduced)
        if self.axis_name is None and count < 2:
            raise LayerValueError(
                self, f"training needs at least 2 elements per feature to take batch "
                f"statistics, but the input of shape {tuple(x.shape)} has {count} on the axes "
                f"{reduced} (a batch of one: its variance is 0); use a larger batch, "
                "drop_remainder=True in fnn.fit, or train=False")
        mean = self._pmean(jnp.mean(x, reduced, keepdims=True))
        var = self._pmean(jnp.mean(jnp.square(x - mean), reduced, keepdims=True))
        return mean, var

    def apply(self, params: Params, state: State, x: jax.Array, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[jax.Array, State]:
        """Normalise ``x`` with batch (``train=True``) or running statistics; ``(y, state)``."""
        del key
        x = jnp.asarray(x)
        axes, shape = self._axes(x.shape, x.dtype)
        where = f"the input's feature axes {axes} (input shape {tuple(x.shape)})"
        check_params(self, params, affine_names(self.use_scale, self.use_bias), shape, where)
        if not isinstance(state, dict):
            raise LayerValueError(self, f"state must be a dict with keys ['mean', 'var'], got "
                                  f"{type(state).__name__}")
        check_params(self, state, ("mean", "var"), shape, where)
        full = broadcast_shape(x.ndim, axes, shape)
        xc = x.astype(compute_dtype(x.dtype))
        if train:
            reduced = tuple(a for a in range(x.ndim) if a not in axes)
            mean, var = self._batch_stats(xc, reduced)
            m = self.momentum
            new_state = {
                name: (m * old + (1.0 - m) * jnp.reshape(new, shape).astype(old.dtype)
                       ).astype(old.dtype)
                for name, old, new in (("mean", state["mean"], mean), ("var", state["var"], var))}
        else:
            mean, var = (jnp.reshape(state[name], full).astype(xc.dtype) for name in ("mean", "var"))
            new_state = state
        y = (xc - mean) * jax.lax.rsqrt(var + self.eps)
        return affine(y, params, full).astype(x.dtype), new_state
