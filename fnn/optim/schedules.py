"""Learning-rate schedules: pure, jittable functions ``schedule(step) -> lr``.

``step`` is the update count (0 for the first update), an integer or an integer
array; the result is a float32 array of the same shape as ``step``, so
``schedule(jnp.arange(n))`` gives the whole curve at once (to plot or inspect).
A schedule can be passed wherever a learning rate is accepted.

Each schedule is also a pytree whose leaves are its hyperparameters (arrays),
so it can be stored in an optimizer state, passed as an argument to a jitted
function without recompiling for new values, and batched with ``vmap``.

The three decays of the lecture notes count ``epoch_num`` from 1 (the first
epoch is ``epoch_num = 1``), so here::

    epoch_num = step // steps_per_epoch + 1

and the notes' formulas are used verbatim::

    learning_rate = (1 / (1 + decay_rate * epoch_num)) * learning_rate_0
    learning_rate = (0.95 ^ epoch_num) * learning_rate_0
    learning_rate = (k / sqrt(epoch_num)) * learning_rate_0
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Schedule",
    "constant",
    "inverse_time_decay",
    "exponential_decay",
    "inverse_sqrt_decay",
    "piecewise_constant",
    "step_decay",
    "cosine_decay",
    "linear_schedule",
    "linear_warmup",
    "warmup_cosine_decay",
]


@jax.tree_util.register_pytree_node_class
class Schedule:
    """A learning-rate schedule: ``schedule(step) -> lr`` (float32).

    Built by the factory functions of this module (``constant``,
    ``exponential_decay``, ...), which validate their arguments. A schedule is a
    pytree: its leaves are the hyperparameter arrays in ``hyperparams``, its
    structure is the formula. Two schedules with the same formula but other
    numbers have the same structure, so a jitted function taking a schedule as
    an argument compiles once for both.

    Args:
      name: the factory's name (shown in ``repr``).
      formula: ``formula(step, **hyperparams) -> lr``, a pure jnp function.
      hyperparams: dict of name -> array.

    Example:
      >>> s = fnn.optim.schedules.exponential_decay(0.1, 0.5, steps_per_epoch=2)
      >>> s(jnp.arange(6)).round(4).tolist()
      [0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125]
    """

    def __init__(self, name, formula, hyperparams):
        self.name = name
        self.formula = formula
        self.hyperparams = dict(hyperparams)

    def __call__(self, step):
        """The learning rate at update ``step`` (int or int array), float32."""
        step = jnp.asarray(step)
        if not (jnp.issubdtype(step.dtype, jnp.integer) or jnp.issubdtype(step.dtype, jnp.floating)):
            raise TypeError(f"{self.name}: step must be an integer (or integer array), got dtype {step.dtype}")
        lr = self.formula(step, **self.hyperparams)
        return jnp.asarray(lr, jnp.float32)

    def tree_flatten(self):
        names = tuple(sorted(self.hyperparams))
        return tuple(self.hyperparams[n] for n in names), (self.name, self.formula, names)

    @classmethod
    def tree_unflatten(cls, aux, children):
        name, formula, names = aux
        return cls(name, formula, dict(zip(names, children)))

    def __repr__(self):
        def show(v):
            try:
                a = np.asarray(v)
            except Exception:  # a tracer or an abstract value
                return type(v).__name__
            return repr(a.item()) if a.ndim == 0 else f"array{a.tolist()}"

        args = ", ".join(f"{k}={show(v)}" for k, v in self.hyperparams.items())
        return f"{self.name}({args})"


# ----------------------------------------------------------------- validation


def _concrete(value):
    """``value`` as a numpy array, or None when it is traced (cannot be checked)."""
    if isinstance(value, jax.core.Tracer):
        return None
    return np.asarray(value)


def _number(fn, arg, value, *, low=None, low_inclusive=True, high=None, integer=False):
    """Checks a scalar hyperparameter and returns it as a float32/int32 array."""
    dtype = jnp.int32 if integer else jnp.float32
    concrete = _concrete(value)
    if concrete is None:  # traced (e.g. built inside vmap): checked by the caller's own code
        return jnp.asarray(value, dtype)
    if concrete.ndim != 0:
        raise ValueError(f"{fn}: {arg} must be a scalar, got shape {concrete.shape}")
    if not (np.issubdtype(concrete.dtype, np.number) and not np.issubdtype(concrete.dtype, np.complexfloating)):
        raise TypeError(f"{fn}: {arg} must be a real number, got {value!r}")
    x = concrete.item()
    if not math.isfinite(x):
        raise ValueError(f"{fn}: {arg} must be finite, got {value!r}")
    if integer and x != math.floor(x):
        raise ValueError(f"{fn}: {arg} must be an integer, got {value!r}")
    if low is not None and (x < low or (x == low and not low_inclusive)):
        sign = ">=" if low_inclusive else ">"
        raise ValueError(f"{fn}: {arg} must be {sign} {low}, got {value!r}")
    if high is not None and x > high:
        raise ValueError(f"{fn}: {arg} must be <= {high}, got {value!r}")
    return jnp.asarray(x, dtype)


def _lr(fn, arg, value):
    return _number(fn, arg, value, low=0.0)


def _steps(fn, arg, value, *, allow_zero=False):
    return _number(fn, arg, value, low=0, low_inclusive=allow_zero, integer=True)


# ------------------------------------------------------------------- formulas
# Module-level functions (not closures): the same formula object for every
# schedule of a kind, so schedules differing only in numbers share a treedef.


def _constant(step, lr):
    return jnp.full(step.shape, lr, jnp.float32)


def _epoch_num(step, steps_per_epoch):
    return (step // steps_per_epoch + 1).astype(jnp.float32)


def _inverse_time(step, lr0, decay_rate, steps_per_epoch):
    return (1.0 / (1.0 + decay_rate * _epoch_num(step, steps_per_epoch))) * lr0


def _exponential(step, lr0, rate, steps_per_epoch):
    return (rate ** _epoch_num(step, steps_per_epoch)) * lr0


def _inverse_sqrt(step, lr0, k, steps_per_epoch):
    return (k / jnp.sqrt(_epoch_num(step, steps_per_epoch))) * lr0


def _piecewise(step, boundaries, values):
    return values[jnp.searchsorted(boundaries, step, side="right")]


def _step_decay(step, lr0, boundaries, factor):
    passed = jnp.searchsorted(boundaries, step, side="right").astype(jnp.float32)
    return lr0 * factor**passed


def _warmup(step, init, peak, warmup_steps):
    return _linear(step, init, peak, warmup_steps)


def _cosine(step, lr0, decay_steps, alpha):
    t = jnp.minimum(step, decay_steps).astype(jnp.float32) / decay_steps.astype(jnp.float32)
    return lr0 * ((1.0 - alpha) * 0.5 * (1.0 + jnp.cos(jnp.pi * t)) + alpha)


def _linear(step, init, end, steps):
    t = jnp.minimum(step, steps).astype(jnp.float32) / steps.astype(jnp.float32)
    return init + (end - init) * t


def _warmup_cosine(step, init, peak, warmup_steps, decay_steps, end):
    warm = jnp.maximum(warmup_steps, 1).astype(jnp.float32)
    warmup_lr = init + (peak - init) * jnp.minimum(step, warmup_steps).astype(jnp.float32) / warm
    length = (decay_steps - warmup_steps).astype(jnp.float32)
    t = jnp.clip(step - warmup_steps, 0, decay_steps - warmup_steps).astype(jnp.float32) / length
    cosine_lr = end + (peak - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * t))
    return jnp.where(step < warmup_steps, warmup_lr, cosine_lr)


# ------------------------------------------------------------------ factories


def constant(lr):
    """A constant learning rate: ``lr_t = lr``.

    Args:
      lr: the learning rate, >= 0.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> fnn.optim.schedules.constant(0.01)(jnp.arange(3)).tolist()
      [0.01, 0.01, 0.01]
    """
    return Schedule("constant", _constant, {"lr": _lr("constant", "lr", lr)})


def inverse_time_decay(lr0, decay_rate, *, steps_per_epoch):
    """The notes' first decay: ``lr = (1 / (1 + decay_rate * epoch_num)) * lr0``.

    ``epoch_num = step // steps_per_epoch + 1`` (the notes count epochs from 1),
    so the first epoch already uses ``lr0 / (1 + decay_rate)``.

    Args:
      lr0: ``learning_rate_0``, >= 0.
      decay_rate: >= 0.
      steps_per_epoch: updates per epoch (batches per epoch), > 0.

    Returns:
      A :class:`Schedule`.

    Example (``lr0 = 0.2, decay_rate = 1``: epochs 1..4 give 0.1, 0.067, 0.05, 0.04):
      >>> s = fnn.optim.schedules.inverse_time_decay(0.2, 1.0, steps_per_epoch=10)
      >>> s(jnp.array([0, 9, 10, 25, 30])).round(3).tolist()
      [0.1, 0.1, 0.067, 0.05, 0.04]
    """
    fn = "inverse_time_decay"
    return Schedule(fn, _inverse_time, {
        "lr0": _lr(fn, "lr0", lr0),
        "decay_rate": _number(fn, "decay_rate", decay_rate, low=0.0),
        "steps_per_epoch": _steps(fn, "steps_per_epoch", steps_per_epoch),
    })


def exponential_decay(lr0, rate=0.95, *, steps_per_epoch):
    """The notes' second decay: ``lr = (rate ^ epoch_num) * lr0`` (notes: rate 0.95).

    ``epoch_num = step // steps_per_epoch + 1`` (the notes count epochs from 1),
    so the first epoch uses ``rate * lr0``. With ``rate < 1`` this is a
    staircase: constant within an epoch, multiplied by ``rate`` at each new one.

    Args:
      lr0: ``learning_rate_0``, >= 0.
      rate: the factor per epoch, > 0 (usually < 1).
      steps_per_epoch: updates per epoch, > 0.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> s = fnn.optim.schedules.exponential_decay(1.0, 0.95, steps_per_epoch=100)
      >>> s(jnp.array([0, 99, 100, 200])).round(4).tolist()
      [0.95, 0.95, 0.9025, 0.8574]
    """
    fn = "exponential_decay"
    return Schedule(fn, _exponential, {
        "lr0": _lr(fn, "lr0", lr0),
        "rate": _number(fn, "rate", rate, low=0.0, low_inclusive=False),
        "steps_per_epoch": _steps(fn, "steps_per_epoch", steps_per_epoch),
    })


def inverse_sqrt_decay(lr0, k=1.0, *, steps_per_epoch):
    """The notes' third decay: ``lr = (k / sqrt(epoch_num)) * lr0``.

    ``epoch_num = step // steps_per_epoch + 1`` (the notes count epochs from 1;
    this also keeps ``sqrt(epoch_num)`` away from 0), so the first epoch uses
    ``k * lr0``.

    Args:
      lr0: ``learning_rate_0``, >= 0.
      k: the constant ``k``, > 0.
      steps_per_epoch: updates per epoch, > 0.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> s = fnn.optim.schedules.inverse_sqrt_decay(0.1, 1.0, steps_per_epoch=1)
      >>> s(jnp.array([0, 3, 8])).round(4).tolist()
      [0.1, 0.05, 0.0333]
    """
    fn = "inverse_sqrt_decay"
    return Schedule(fn, _inverse_sqrt, {
        "lr0": _lr(fn, "lr0", lr0),
        "k": _number(fn, "k", k, low=0.0, low_inclusive=False),
        "steps_per_epoch": _steps(fn, "steps_per_epoch", steps_per_epoch),
    })


def _boundaries(fn, boundaries):
    b = _concrete(boundaries)
    if b is None:
        raise TypeError(f"{fn}: boundaries must be concrete integers (not traced)")
    b = np.asarray(b).reshape(-1) if b.ndim == 0 else b
    if b.ndim != 1 or b.size == 0:
        raise ValueError(f"{fn}: boundaries must be a non-empty 1-D sequence of steps, got {boundaries!r}")
    if not np.all(b == np.floor(b)) or np.any(b < 0):
        raise ValueError(f"{fn}: boundaries must be non-negative integers, got {boundaries!r}")
    if np.any(np.diff(b) <= 0):
        raise ValueError(f"{fn}: boundaries must be strictly increasing, got {boundaries!r}")
    return jnp.asarray(b, jnp.int32)


def piecewise_constant(boundaries, values):
    """A learning rate constant between boundaries (steps).

    ``lr = values[i]`` for ``boundaries[i-1] <= step < boundaries[i]``
    (``values[0]`` before the first boundary, ``values[-1]`` from the last on).

    Args:
      boundaries: strictly increasing non-negative integer steps, length ``n``.
      values: ``n + 1`` learning rates, each >= 0.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> s = fnn.optim.schedules.piecewise_constant([2, 4], [0.1, 0.01, 0.001])
      >>> s(jnp.arange(6)).tolist()
      [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    """
    fn = "piecewise_constant"
    b = _boundaries(fn, boundaries)
    v = [_lr(fn, f"values[{i}]", x) for i, x in enumerate(list(values))]
    if len(v) != b.shape[0] + 1:
        raise ValueError(f"{fn}: values must have len(boundaries) + 1 = {b.shape[0] + 1} entries, got {len(v)}")
    return Schedule(fn, _piecewise, {"boundaries": b, "values": jnp.stack(v)})


def step_decay(lr0, boundaries, factor=0.1):
    """Step decay: multiply by ``factor`` at each boundary step.

    ``lr = lr0 * factor ^ (number of boundaries <= step)``.

    Args:
      lr0: the initial learning rate, >= 0.
      boundaries: strictly increasing non-negative integer steps.
      factor: the multiplier at each boundary, > 0.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> s = fnn.optim.schedules.step_decay(1.0, [2, 4], factor=0.5)
      >>> s(jnp.arange(6)).tolist()
      [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """
    fn = "step_decay"
    return Schedule(fn, _step_decay, {
        "lr0": _lr(fn, "lr0", lr0),
        "boundaries": _boundaries(fn, boundaries),
        "factor": _number(fn, "factor", factor, low=0.0, low_inclusive=False),
    })


def cosine_decay(lr0, decay_steps, alpha=0.0):
    """Cosine decay from ``lr0`` to ``alpha * lr0`` over ``decay_steps``.

    ``t = min(step, decay_steps) / decay_steps``,
    ``lr = lr0 * ((1 - alpha) * (1 + cos(pi * t)) / 2 + alpha)``.

    Args:
      lr0: the initial learning rate, >= 0.
      decay_steps: steps to decay over, > 0; afterwards ``lr = alpha * lr0``.
      alpha: final fraction of ``lr0``, in [0, 1].

    Returns:
      A :class:`Schedule`.

    Example:
      >>> s = fnn.optim.schedules.cosine_decay(1.0, 4)
      >>> s(jnp.arange(6)).round(4).tolist()
      [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.0]
    """
    fn = "cosine_decay"
    return Schedule(fn, _cosine, {
        "lr0": _lr(fn, "lr0", lr0),
        "decay_steps": _steps(fn, "decay_steps", decay_steps),
        "alpha": _number(fn, "alpha", alpha, low=0.0, high=1.0),
    })


def linear_schedule(init, end, steps):
    """Linear interpolation from ``init`` to ``end`` over ``steps``, then ``end``.

    ``lr = init + (end - init) * min(step, steps) / steps``.

    Args:
      init: the learning rate at step 0, >= 0.
      end: the learning rate from ``steps`` on, >= 0.
      steps: length of the ramp, > 0.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> fnn.optim.schedules.linear_schedule(1.0, 0.0, 4)(jnp.arange(6)).tolist()
      [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    fn = "linear_schedule"
    return Schedule(fn, _linear, {
        "init": _lr(fn, "init", init),
        "end": _lr(fn, "end", end),
        "steps": _steps(fn, "steps", steps),
    })


def linear_warmup(peak, warmup_steps, init=0.0):
    """Linear warm-up from ``init`` to ``peak`` over ``warmup_steps``, then ``peak``.

    ``lr = init + (peak - init) * min(step, warmup_steps) / warmup_steps``.

    Args:
      peak: the learning rate reached at ``warmup_steps``, >= 0.
      warmup_steps: length of the warm-up, > 0.
      init: the learning rate at step 0, >= 0.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> fnn.optim.schedules.linear_warmup(1.0, 4)(jnp.arange(6)).tolist()
      [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    fn = "linear_warmup"
    return Schedule(fn, _warmup, {
        "init": _lr(fn, "init", init),
        "peak": _lr(fn, "peak", peak),
        "warmup_steps": _steps(fn, "warmup_steps", warmup_steps),
    })


def warmup_cosine_decay(init, peak, warmup_steps, decay_steps, end=0.0):
    """Linear warm-up to ``peak``, then cosine decay to ``end``.

    ``decay_steps`` is the total length, warm-up included (as in optax)::

        step <  warmup_steps: lr = init + (peak - init) * step / warmup_steps
        step >= warmup_steps: t = min(step - warmup_steps, D) / D,
                              D = decay_steps - warmup_steps
                              lr = end + (peak - end) * (1 + cos(pi * t)) / 2

    Args:
      init: the learning rate at step 0, >= 0.
      peak: the learning rate at ``warmup_steps``, >= 0.
      warmup_steps: length of the warm-up, >= 0 (0: no warm-up).
      decay_steps: total length, > ``warmup_steps``; afterwards ``lr = end``.
      end: the final learning rate, >= 0.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> s = fnn.optim.schedules.warmup_cosine_decay(0.0, 1.0, 2, 6)
      >>> s(jnp.arange(8)).round(4).tolist()
      [0.0, 0.5, 1.0, 0.8536, 0.5, 0.1464, 0.0, 0.0]
    """
    fn = "warmup_cosine_decay"
    warm = _steps(fn, "warmup_steps", warmup_steps, allow_zero=True)
    total = _steps(fn, "decay_steps", decay_steps)
    w, d = _concrete(warm), _concrete(total)
    if w is not None and d is not None and d <= w:
        raise ValueError(f"{fn}: decay_steps (total length, warm-up included) must be > warmup_steps = {int(w)}, got {int(d)}")
    return Schedule(fn, _warmup_cosine, {
        "init": _lr(fn, "init", init),
        "peak": _lr(fn, "peak", peak),
        "warmup_steps": warm,
        "decay_steps": total,
        "end": _lr(fn, "end", end),
    })

