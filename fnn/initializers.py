"""Weight initializers: ``init(key, shape, dtype=jnp.float32) -> array``.

Every public name except `get` and `compute_fans` is a *factory*:
call it (with its hyperparameters) to get the init function, a small frozen
dataclass that compares by value and hashes, so a layer holding one stays a
valid static argument of `jax.jit`::

    >>> init = fnn.initializers.he_normal()
    >>> init(jax.random.key(0), (784, 512)).shape, init == fnn.initializers.he_normal()
    ((784, 512), True)

He, Glorot/Xavier and LeCun share one core, `variance_scaling`; their
``normal`` variants are *untruncated*, as in the notes and PyTorch (Keras and
``jax.nn.initializers`` truncate). ``docs/initializers.md`` tabulates the formulas.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from fnn.naming import lookup, resolve

__all__ = [
    "Initializer", "zeros", "ones", "constant", "normal", "uniform", "truncated_normal",
    "variance_scaling", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform",
    "lecun_normal", "lecun_uniform", "orthogonal", "compute_fans", "get", "Constant", "Random",
    "VarianceScaling", "Orthogonal",
]

Initializer = Callable[..., jax.Array]
"""Type of an init function: ``init(key, shape, dtype=jnp.float32) -> array``."""

def _shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, int) else tuple(int(d) for d in shape)


def compute_fans(shape: int | Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of this shape.

    * ``()``: ``(1, 1)``; ``(n,)``: ``(n, n)``.
    * 2-D ``(in, out)`` (a `fnn.Dense` kernel): ``(in, out)``.
    * ``(*spatial, in, out)`` (a convolution kernel, channels last), with the
      receptive field ``r = prod(spatial)``: ``(r * in, r * out)``.

    Args:
      shape: the weight shape.

    Returns:
      ``(fan_in, fan_out)`` as Python ints.

    Examples:
      >>> fnn.initializers.compute_fans((3, 3, 16, 32))
      (144, 288)
    """
    shape = _shape(shape)
    if len(shape) < 2:
        return (shape[0], shape[0]) if shape else (1, 1)
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


@dataclasses.dataclass(frozen=True)
class Constant:
    """Init function filling the array with ``value``: ``w_ij = value``."""

    value: float

    def __call__(self, key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        del key
        return jnp.full(_shape(shape), self.value, dtype)

    def __repr__(self) -> str:
        return {0.0: "zeros()", 1.0: "ones()"}.get(self.value, f"constant({self.value!r})")


_DISTRIBUTIONS = ("normal", "uniform", "truncated_normal")
_MODES = ("fan_in", "fan_out", "fan_avg")
_TRUNCATED_STD = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]


def _sample(who: str, distribution: str, s: float, key: jax.Array, shape, dtype) -> jax.Array:
    """``N(0, s^2)``, ``U(-s, s)``, or ``N(0, s^2)`` truncated to ``[-2 s, 2 s]``."""
    shape, dtype = _shape(shape), jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"initializers.{who}: dtype must be a floating type, got {dtype}")
    if distribution == "normal":
        return s * jax.random.normal(key, shape, dtype)
    if distribution == "uniform":
        return jax.random.uniform(key, shape, dtype, -s, s)
    return s * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)


@dataclasses.dataclass(frozen=True)
class Random:
    """Init function with a fixed scale ``s``: ``N(0, s^2)``, ``U(-s, s)`` or a truncated normal."""

    distribution: str
    scale: float

    def __call__(self, key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        return _sample(self.distribution, self.distribution, self.scale, key, shape, dtype)

    def __repr__(self) -> str:
        name = "scale" if self.distribution == "uniform" else "stddev"
        return f"{self.distribution}({name}={self.scale!r})"


@dataclasses.dataclass(frozen=True)
class VarianceScaling:
    """Init function with ``Var[w] = scale / n`` (equations: `variance_scaling`)."""

    scale: float
    mode: str
    distribution: str
    name: str = dataclasses.field(default="", compare=False)

    def __post_init__(self):
        for field, allowed in (("mode", _MODES), ("distribution", _DISTRIBUTIONS)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"initializers.variance_scaling: {field} must be one of "
                                 f"{allowed}, got {getattr(self, field)!r}")
        if not self.scale > 0:
            raise ValueError(f"initializers.variance_scaling: scale must be > 0, got {self.scale}")

    def __call__(self, key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        s = {"normal": math.sqrt(variance), "uniform": math.sqrt(3.0 * variance),
             "truncated_normal": math.sqrt(variance) / _TRUNCATED_STD}[self.distribution]
        return _sample(self.name or "variance_scaling", self.distribution, s, key, shape, dtype)

    def __repr__(self) -> str:
        if self.name:
            return f"{self.name}()"
        return (f"variance_scaling(scale={self.scale!r}, mode={self.mode!r}, "
                f"distribution={self.distribution!r})")


def zeros() -> Constant:
    """Init function for ``w = 0`` (the default for biases).

    Returns:
      the init function ``init(key, shape, dtype=jnp.float32) -> array``.

    Examples:
      >>> fnn.initializers.zeros()(None, (2,)).tolist()
      [0.0000, 0.0000]
    """
    return Constant(0.0)


def ones() -> Constant:
    """Init function for ``w = 1`` (e.g. a normalisation scale).

    Returns:
      the init function ``init(key, shape, dtype=jnp.float32) -> array``.

    Examples:
      >>> fnn.initializers.ones()(None, (2,)).tolist()
      [1.0000, 1.0000]
    """
    return Constant(1.0)


def constant(value: float) -> Constant:
    """Init function for ``w = value`` everywhere.

    Args:
      value: the fill value.

    Returns:
      the init function ``init(key, shape, dtype=jnp.float32) -> array``.

    Examples:
      >>> fnn.initializers.constant(0.25)(None, (2,)).tolist()
      [0.2500, 0.2500]
    """
    return Constant(float(value))


def normal(stddev: float = 1e-2) -> Random:
    """Init function drawing ``w ~ N(0, stddev^2)`` (default ``stddev = 0.01``, as JAX).

    Args:
      stddev: standard deviation.

    Returns:
      the init function ``init(key, shape, dtype=jnp.float32) -> array``.

    Examples:
      >>> w = fnn.initializers.normal(0.5)(jax.random.key(0), (100_000,))
      >>> abs(float(w.std()) - 0.5) < 0.01
      True
    """
    return Random("normal", float(stddev))


def uniform(scale: float = 1e-2) -> Random:
    """Init function drawing ``w ~ U(-scale, scale)`` (symmetric, as Keras ``RandomUniform``;
    ``jax.nn.initializers.uniform`` draws from ``[0, scale)`` instead).

    Args:
      scale: the half-width of the interval (default 0.01).

    Returns:
      the init function ``init(key, shape, dtype=jnp.float32) -> array``.

    Examples:
      >>> w = fnn.initializers.uniform(0.1)(jax.random.key(0), (1000,))
      >>> bool(w.min() >= -0.1 and w.max() < 0.1)
      True
    """
    return Random("uniform", float(scale))


def truncated_normal(stddev: float = 1e-2) -> Random:
    """Init function drawing ``N(0, stddev^2)`` truncated to ``[-2 stddev, 2 stddev]``.

    ``stddev`` is that of the untruncated normal (as in JAX); the samples' own
    standard deviation is ``0.8796 stddev``.

    Args:
      stddev: standard deviation before truncation (default 0.01).

    Returns:
      the init function ``init(key, shape, dtype=jnp.float32) -> array``.

    Examples:
      >>> w = fnn.initializers.truncated_normal(1.0)(jax.random.key(0), (1000,))
      >>> bool(abs(w).max() <= 2.0)
      True
    """
    return Random("truncated_normal", float(stddev))


def variance_scaling(scale: float, mode: str = "fan_in",
                     distribution: str = "normal") -> VarianceScaling:
    """Init function with ``Var[w] = scale / n``, ``n`` from `compute_fans`.

    ``n = fan_in``, ``fan_out`` or ``fan_avg = (fan_in + fan_out) / 2`` (``mode``), and

    * ``normal``: ``w ~ N(0, scale / n)``;
    * ``uniform``: ``w ~ U(-limit, limit)`` with ``limit = sqrt(3 scale / n)``;
    * ``truncated_normal``: ``N(0, sigma^2)`` truncated to ``[-2 sigma, 2 sigma]``
      with ``sigma = sqrt(scale / n) / 0.8796`` so the variance is ``scale / n``.

    Args:
      scale: the variance numerator (2 for He, 1 for Glorot/LeCun).
      mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
      distribution: ``"normal"``, ``"uniform"`` or ``"truncated_normal"``.

    Returns:
      the init function ``init(key, shape, dtype=jnp.float32) -> array``.

    Examples:
      >>> init = fnn.initializers.variance_scaling(2.0, "fan_in", "normal")
      >>> init == fnn.initializers.he_normal()
      True
    """
    return VarianceScaling(float(scale), mode, distribution)


def he_normal() -> VarianceScaling:
    """He (Kaiming) normal: ``w ~ N(0, 2 / fan_in)``; suits ReLU layers.

    Returns:
      the init function ``init(key, shape, dtype=jnp.float32) -> array``.

    Examples:
      >>> w = fnn.initializers.he_normal()(jax.random.key(0), (800, 400))
      >>> abs(float(w.var()) * 800 - 2.0) < 0.05      # Var[w] = 2 / fan_in
      True
    """
    return VarianceScaling(2.0, "fan_in", "normal", "he_normal")


def he_uniform() -> VarianceScaling:
    """He uniform: ``w ~ U(-sqrt(6 / fan_in), sqrt(6 / fan_in))``; suits ReLU layers.

    Returns:
      the init function ``init(key, shape, dtype=jnp.float32) -> array``.

    Examples:
      >>> w = fnn.initializers.he_uniform()(jax.random.key(0), (6, 100))
      >>> bool(abs(w).max() <= 1.0)
      True
    """
    return VarianceScaling(2.0, "fan_in", "uniform", "he_uniform")


def glorot_normal() -> VarianceScaling:
    """Glorot (Xavier) normal: ``w ~ N(0, 2 / (fan_in + fan_out))``; suits tanh/sigmoid.

    Returns:
      the init function ``init(key, shape, dtype=jnp.float32) -> array``.

    Examples:
      >>> w = fnn.initializers.glorot_normal()(jax.random.key(0), (300, 500))
      >>> abs(float(w.var()) * 400 - 1.0) < 0.02      # Var[w] = 2 / (300 + 500)
      True
    """
    return VarianceScaling(1.0, "fan_avg", "normal", "glorot_normal")


def glorot_uniform() -> VarianceScaling:
    """Glorot (Xavier) uniform: ``w ~ U(-l, l)``, ``l = sqrt(6 / (fan_in + fan_out))``.

    The default kernel initializer of `fnn.Dense` (as in Keras).

    Returns:
      the init function ``init(key, shape, dtype=jnp.float32) -> array``.

    Examples:
      >>> w = fnn.initializers.glorot_uniform()(jax.random.key(0), (2, 4))
      >>> bool(abs(w).max() <= 1.0)
      True
    """
    return VarianceScaling(1.0, "fan_avg", "uniform", "glorot_uniform")


def lecun_normal() -> VarianceScaling:
    """LeCun normal: ``w ~ N(0, 1 / fan_in)``; suits SELU (self-normalising) networks.

    Returns:
      the init function ``init(key, shape, dtype=jnp.float32) -> array``.

    Examples:
      >>> w = fnn.initializers.lecun_normal()(jax.random.key(0), (500, 300))
      >>> abs(float(w.var()) * 500 - 1.0) < 0.02      # Var[w] = 1 / fan_in
      True
    """
    return VarianceScaling(1.0, "fan_in", "normal", "lecun_normal")


def lecun_uniform() -> VarianceScaling:
    """LeCun uniform: ``w ~ U(-sqrt(3 / fan_in), sqrt(3 / fan_in))``.

    Returns:
      the init function ``init(key, shape, dtype=jnp.float32) -> array``.

    Examples:
      >>> w = fnn.initializers.lecun_uniform()(jax.random.key(0), (3, 4))
      >>> bool(abs(w).max() <= 1.0)
      True
    """
    return VarianceScaling(1.0, "fan_in", "uniform", "lecun_uniform")


@dataclasses.dataclass(frozen=True)
class Orthogonal:
    """Init function with orthonormal rows or columns (equations: `orthogonal`)."""

    scale: float = 1.0

    def __call__(self, key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        shape, dtype = _shape(shape), jnp.dtype(dtype)
        if len(shape) < 2 or not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(f"initializers.orthogonal: needs a floating matrix shape (rank >= "
                             f"2), got shape {shape}, dtype {dtype}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = jax.random.normal(key, (max(rows, cols), min(rows, cols)), jnp.float32)
        q, r = jnp.linalg.qr(a)
        q = q * jnp.sign(jnp.diag(r))[None, :]  # a uniform (Haar) draw, not QR's sign choice
        q = q if rows >= cols else q.T
        return (self.scale * q).reshape(shape).astype(dtype)

    def __repr__(self) -> str:
        return "orthogonal()" if self.scale == 1.0 else f"orthogonal(scale={self.scale!r})"


def orthogonal(scale: float = 1.0) -> Orthogonal:
    """A random orthogonal matrix times ``scale`` (Saxe et al. 2014; Keras's recurrent default).

    For a shape ``(..., n)`` flattened to ``(m, n)``: ``W^T W = scale^2 I`` when
    ``m >= n`` (orthonormal columns), ``W W^T = scale^2 I`` otherwise. Products
    with an orthogonal matrix keep a vector's norm, so a recurrent state
    neither explodes nor vanishes through ``h w_h`` at the start of training.

    Examples:
      >>> w = fnn.initializers.orthogonal()(jax.random.key(0), (4, 4))
      >>> bool(jnp.allclose(w.T @ w, jnp.eye(4), atol=1e-5))
      True
    """
    return Orthogonal(scale)


_FACTORIES: dict[str, Callable[[], Initializer]] = {
    "zeros": zeros, "ones": ones, "normal": normal, "uniform": uniform,
    "truncated_normal": truncated_normal, "he_normal": he_normal, "he_uniform": he_uniform,
    "glorot_normal": glorot_normal, "glorot_uniform": glorot_uniform,
    "lecun_normal": lecun_normal, "lecun_uniform": lecun_uniform, "orthogonal": orthogonal,
}
_ALIASES = {"zero": "zeros", "one": "ones", "xavier_normal": "glorot_normal",
            "xavier_uniform": "glorot_uniform", "kaiming_normal": "he_normal",
            "kaiming_uniform": "he_uniform"}


def get(name_or_callable: str | Initializer) -> Initializer:
    """Resolve a name (or a factory of this module) to an init function.

    Names are case-insensitive (``-`` and spaces count as ``_``): the factories
    of this module (default hyperparameters) and the aliases xavier_* (glorot),
    kaiming_* (he).
    A factory passed uncalled (``fnn.initializers.he_normal``) is called for
    you; any other callable is returned unchanged. ``constant`` needs a value,
    so pass ``fnn.initializers.constant(v)``.

    Args:
      name_or_callable: a name, a factory of this module, or an init function.

    Returns:
      the init function ``init(key, shape, dtype=jnp.float32) -> array``.

    Raises:
      ValueError: unknown name (the message lists the known names).
      TypeError: neither a string nor a callable.

    Examples:
      >>> fnn.initializers.get("Kaiming-Normal")
      he_normal()
      >>> fnn.initializers.get(fnn.initializers.he_normal)
      he_normal()
    """
    if isinstance(name_or_callable, str):
        return lookup("initializers", "initializer", name_or_callable, _FACTORIES, _ALIASES)()
    if any(name_or_callable is f for f in _FACTORIES.values()):
        return name_or_callable()
    if any(name_or_callable is f for f in (constant, variance_scaling)):
        raise TypeError(f"initializers.get: {name_or_callable.__name__} needs arguments; "
                        f"pass e.g. fnn.initializers.{name_or_callable.__name__}(...)")
    return resolve("initializers", "initializer", name_or_callable, _FACTORIES, _ALIASES)
