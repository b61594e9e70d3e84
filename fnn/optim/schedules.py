"""Learning-rate schedules: pure, jittable functions ``schedule(step) -> lr``.

``step`` is the update count from 0, an int or an int array; the result is a
float32 array of ``step``'s shape, so ``schedule(jnp.arange(n))`` is the whole
curve (to plot). A schedule goes wherever a learning rate does, and it is a
pytree of its hyperparameter arrays (traced in an optimizer state, ``vmap``-able).

The notes' three decays count ``epoch_num`` from 1, so here
``epoch_num = step // steps_per_epoch + 1``, with the notes' formulas verbatim::

    learning_rate = (1 / (1 + decay_rate * epoch_num)) * learning_rate_0
    learning_rate = (0.95 ^ epoch_num) * learning_rate_0
    learning_rate = (k / sqrt(epoch_num)) * learning_rate_0
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from fnn.validation import check_number, concrete_value

__all__ = ["Schedule", "constant", "inverse_time_decay", "exponential_decay", "inverse_sqrt_decay",
           "piecewise_constant", "step_decay", "cosine_decay", "linear_schedule", "linear_warmup",
           "warmup_cosine_decay"]


@jax.tree_util.register_pytree_node_class
class Schedule:
    """A learning-rate schedule ``schedule(step) -> lr`` (float32), made by the factories below.

    A pytree: its leaves are the arrays in ``hyperparams``, its structure the
    formula, so schedules of one kind with other numbers share a compiled program.

    Args:
      name: the factory's name (used in errors and ``repr``).
      formula: a pure function ``formula(step, **hyperparams) -> lr``.
      hyperparams: dict of name -> array.

    Examples:
      >>> s = fnn.optim.schedules.exponential_decay(0.1, 0.5, steps_per_epoch=2)
      >>> s(jnp.arange(6)).round(4).tolist()
      [0.0500, 0.0500, 0.0250, 0.0250, 0.0125, 0.0125]
    """

    def __init__(self, name, formula, hyperparams):
        self.name, self.formula, self.hyperparams = name, formula, dict(hyperparams)

    def __call__(self, step):
        """The learning rate at update ``step`` (int or int array), float32."""
        step = jnp.asarray(step)
        if step.dtype.kind not in "iuf":
            raise TypeError(f"{self.name}: step must be an integer (or integer array), got dtype {step.dtype}")
        return jnp.asarray(self.formula(step, **self.hyperparams), jnp.float32)

    def tree_flatten(self):
        names = tuple(sorted(self.hyperparams))
        return tuple(self.hyperparams[n] for n in names), (self.name, self.formula, names)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(aux[0], aux[1], dict(zip(aux[2], children)))

    def __repr__(self):
        def show(v):
            a = concrete_value(v)
            return type(v).__name__ if a is None else repr(a.item()) if a.ndim == 0 else f"array{a.tolist()}"

        return f"{self.name}({', '.join(f'{k}={show(v)}' for k, v in self.hyperparams.items())})"


# kind -> (range of fnn.validation.RANGES, whole number?)
_KINDS = {"lr": ("nonnegative", False), "positive": ("positive", False),
          "fraction": ("fraction", False), "steps": ("positive", True),
          "steps0": ("nonnegative", True)}


def _check(fn, arg, value, kind="lr"):
    """A checked scalar hyperparameter as a float32/int32 array (a traced one is unchecked)."""
    rule, integer = _KINDS[kind]
    check_number(fn, arg, value, rule, integer=integer)
    return jnp.asarray(value, jnp.int32 if integer else jnp.float32)


def _boundaries(fn, boundaries):
    b = concrete_value(boundaries)
    if b is None or b.ndim != 1 or b.size == 0:
        raise ValueError(f"{fn}: boundaries must be a non-empty 1-D sequence of steps, got {boundaries!r}")
    if b.dtype.kind not in "iuf" or not np.all(b == np.floor(b)) or np.any(b < 0):
        raise ValueError(f"{fn}: boundaries must be non-negative integers, got {boundaries!r}")
    if np.any(np.diff(b) <= 0):
        raise ValueError(f"{fn}: boundaries must be strictly increasing, got {boundaries!r}")
    return jnp.asarray(b, jnp.int32)


# Formulas are module-level functions, so all schedules of a kind share one treedef.

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
    warmup_lr = _linear(step, init, peak, jnp.maximum(warmup_steps, 1))
    cosine_lr = end + (peak - end) * _cosine(jnp.maximum(step - warmup_steps, 0), 1.0,
                                             decay_steps - warmup_steps, 0.0)
    return jnp.where(step < warmup_steps, warmup_lr, cosine_lr)


def constant(lr):
    """A constant learning rate: ``lr_t = lr``.

    Args:
      lr: the learning rate, >= 0.

    Returns:
      A `Schedule`.

    Examples:
      >>> fnn.optim.schedules.constant(0.01)(jnp.arange(3)).tolist()
      [0.0100, 0.0100, 0.0100]
    """
    return Schedule("constant", _constant, {"lr": _check("constant", "lr", lr)})


def inverse_time_decay(lr0, decay_rate, *, steps_per_epoch):
    """The notes' first decay: ``lr = (1 / (1 + decay_rate * epoch_num)) * lr0``.

    ``epoch_num = step // steps_per_epoch + 1`` (the notes count epochs from 1),
    so the first epoch already uses ``lr0 / (1 + decay_rate)``.

    Args:
      lr0: ``learning_rate_0``, >= 0.
      decay_rate: >= 0.
      steps_per_epoch: updates per epoch (batches per epoch), > 0.

    Returns:
      A `Schedule`.

    Example (``lr0 = 0.2, decay_rate = 1``: epochs 1..4 give 0.1, 0.0667, 0.05, 0.04):
      >>> s = fnn.optim.schedules.inverse_time_decay(0.2, 1.0, steps_per_epoch=10)
      >>> s(jnp.array([0, 9, 10, 25, 30])).round(4).tolist()
      [0.1000, 0.1000, 0.0667, 0.0500, 0.0400]
    """
    fn = "inverse_time_decay"
    return Schedule(fn, _inverse_time, {
        "lr0": _check(fn, "lr0", lr0), "decay_rate": _check(fn, "decay_rate", decay_rate),
        "steps_per_epoch": _check(fn, "steps_per_epoch", steps_per_epoch, "steps")})


def exponential_decay(lr0, rate=0.95, *, steps_per_epoch):
    """The notes' second decay: ``lr = (rate ^ epoch_num) * lr0`` (notes: rate 0.95).

    ``epoch_num = step // steps_per_epoch + 1`` (the notes count epochs from 1),
    so the first epoch uses ``rate * lr0``; the rate is multiplied by ``rate``
    at each new epoch (a staircase).

    Args:
      lr0: ``learning_rate_0``, >= 0.
      rate: the factor per epoch, > 0 (usually < 1).
      steps_per_epoch: updates per epoch, > 0.

    Returns:
      A `Schedule`.

    Examples:
      >>> s = fnn.optim.schedules.exponential_decay(1.0, 0.95, steps_per_epoch=100)
      >>> s(jnp.array([0, 99, 100, 200])).round(4).tolist()
      [0.950, 0.950, 0.9025, 0.8574]
    """
    fn = "exponential_decay"
    return Schedule(fn, _exponential, {
        "lr0": _check(fn, "lr0", lr0), "rate": _check(fn, "rate", rate, "positive"),
        "steps_per_epoch": _check(fn, "steps_per_epoch", steps_per_epoch, "steps")})


def inverse_sqrt_decay(lr0, k=1.0, *, steps_per_epoch):
    """The notes' third decay: ``lr = (k / sqrt(epoch_num)) * lr0``.

    ``epoch_num = step // steps_per_epoch + 1`` (the notes count epochs from 1,
    which also keeps ``sqrt(epoch_num)`` away from 0), so the first epoch uses
    ``k * lr0``.

    Args:
      lr0: ``learning_rate_0``, >= 0.
      k: the constant ``k``, > 0.
      steps_per_epoch: updates per epoch, > 0.

    Returns:
      A `Schedule`.

    Examples:
      >>> s = fnn.optim.schedules.inverse_sqrt_decay(0.1, 1.0, steps_per_epoch=1)
      >>> s(jnp.array([0, 3, 8])).round(4).tolist()
      [0.100, 0.0500, 0.0333]
    """
    fn = "inverse_sqrt_decay"
    return Schedule(fn, _inverse_sqrt, {
        "lr0": _check(fn, "lr0", lr0), "k": _check(fn, "k", k, "positive"),
        "steps_per_epoch": _check(fn, "steps_per_epoch", steps_per_epoch, "steps")})


def piecewise_constant(boundaries, values):
    """A learning rate constant between boundary steps.

    ``lr = values[i]`` for ``boundaries[i-1] <= step < boundaries[i]``
    (``values[0]`` before the first boundary, ``values[-1]`` from the last on).

    Args:
      boundaries: strictly increasing non-negative integer steps, length ``n``.
      values: ``n + 1`` learning rates, each >= 0.

    Returns:
      A `Schedule`.

    Examples:
      >>> fnn.optim.schedules.piecewise_constant([2, 4], [0.1, 0.01, 0.001])(jnp.arange(6)).tolist()
      [0.100, 0.100, 0.0100, 0.0100, 0.00100, 0.00100]
    """
    fn = "piecewise_constant"
    b = _boundaries(fn, boundaries)
    v = [_check(fn, f"values[{i}]", x) for i, x in enumerate(list(values))]
    if len(v) != b.shape[0] + 1:
        raise ValueError(f"{fn}: values must have len(boundaries) + 1 = {b.shape[0] + 1} entries, "
                         f"got {len(v)}")
    return Schedule(fn, _piecewise, {"boundaries": b, "values": jnp.stack(v)})


def step_decay(lr0, boundaries, factor=0.1):
    """Step decay: ``lr = lr0 * factor ^ (number of boundaries <= step)``.

    Args:
      lr0: the initial learning rate, >= 0.
      boundaries: strictly increasing non-negative integer steps.
      factor: the multiplier at each boundary, > 0.

    Returns:
      A `Schedule`.

    Examples:
      >>> fnn.optim.schedules.step_decay(1.0, [2, 4], factor=0.5)(jnp.arange(6)).tolist()
      [1.00, 1.00, 0.500, 0.500, 0.250, 0.250]
    """
    fn = "step_decay"
    return Schedule(fn, _step_decay, {
        "lr0": _check(fn, "lr0", lr0), "boundaries": _boundaries(fn, boundaries),
        "factor": _check(fn, "factor", factor, "positive")})


def cosine_decay(lr0, decay_steps, alpha=0.0):
    """Cosine decay from ``lr0`` to ``alpha * lr0`` over ``decay_steps``, then constant.

    ``t = min(step, decay_steps) / decay_steps``,
    ``lr = lr0 * ((1 - alpha) * (1 + cos(pi * t)) / 2 + alpha)``.

    Args:
      lr0: the initial learning rate, >= 0.
      decay_steps: steps to decay over, > 0.
      alpha: the final fraction of ``lr0``, in [0, 1].

    Returns:
      A `Schedule`.

    Examples:
      >>> fnn.optim.schedules.cosine_decay(1.0, 4)(jnp.arange(6)).round(4).tolist()
      [1.00, 0.8536, 0.500, 0.1464, 0.000, 0.000]
    """
    fn = "cosine_decay"
    return Schedule(fn, _cosine, {
        "lr0": _check(fn, "lr0", lr0), "decay_steps": _check(fn, "decay_steps", decay_steps, "steps"),
        "alpha": _check(fn, "alpha", alpha, "fraction")})


def linear_schedule(init, end, steps):
    """Linear from ``init`` to ``end`` over ``steps``, then ``end``.

    ``lr = init + (end - init) * min(step, steps) / steps``.

    Args:
      init: the learning rate at step 0, >= 0.
      end: the learning rate from ``steps`` on, >= 0.
      steps: length of the ramp, > 0.

    Returns:
      A `Schedule`.

    Examples:
      >>> fnn.optim.schedules.linear_schedule(1.0, 0.0, 4)(jnp.arange(6)).tolist()
      [1.00, 0.750, 0.500, 0.250, 0.000, 0.000]
    """
    fn = "linear_schedule"
    return Schedule(fn, _linear, {
        "init": _check(fn, "init", init), "end": _check(fn, "end", end),
        "steps": _check(fn, "steps", steps, "steps")})


def linear_warmup(peak, warmup_steps, init=0.0):
    """Linear warm-up from ``init`` to ``peak`` over ``warmup_steps``, then ``peak``.

    ``lr = init + (peak - init) * min(step, warmup_steps) / warmup_steps``.

    Args:
      peak: the learning rate reached at ``warmup_steps``, >= 0.
      warmup_steps: length of the warm-up, > 0.
      init: the learning rate at step 0, >= 0.

    Returns:
      A `Schedule`.

    Examples:
      >>> fnn.optim.schedules.linear_warmup(1.0, 4)(jnp.arange(6)).tolist()
      [0.000, 0.250, 0.500, 0.750, 1.00, 1.00]
    """
    fn = "linear_warmup"
    return Schedule(fn, _warmup, {
        "init": _check(fn, "init", init), "peak": _check(fn, "peak", peak),
        "warmup_steps": _check(fn, "warmup_steps", warmup_steps, "steps")})


def warmup_cosine_decay(init, peak, warmup_steps, decay_steps, end=0.0):
    """Linear warm-up to ``peak``, then cosine decay to ``end``.

    ``decay_steps`` is the total length, warm-up included (as in optax)::

        step <  warmup_steps: lr = init + (peak - init) * step / warmup_steps
        step >= warmup_steps: t = min(step - warmup_steps, D) / D,  D = decay_steps - warmup_steps
                              lr = end + (peak - end) * (1 + cos(pi * t)) / 2

    Args:
      init: the learning rate at step 0, >= 0.
      peak: the learning rate at ``warmup_steps``, >= 0.
      warmup_steps: length of the warm-up, >= 0 (0: no warm-up).
      decay_steps: total length, > ``warmup_steps``; afterwards ``lr = end``.
      end: the final learning rate, >= 0.

    Returns:
      A `Schedule`.

    Examples:
      >>> fnn.optim.schedules.warmup_cosine_decay(0.0, 1.0, 2, 6)(jnp.arange(8)).round(4).tolist()
      [0.000, 0.500, 1.00, 0.8536, 0.500, 0.1464, 0.000, 0.000]
    """
    fn = "warmup_cosine_decay"
    warm = _check(fn, "warmup_steps", warmup_steps, "steps0")
    total = _check(fn, "decay_steps", decay_steps, "steps")
    w, d = concrete_value(warm), concrete_value(total)
    if w is not None and d is not None and d <= w:
        raise ValueError(f"{fn}: decay_steps (total length, warm-up included) must be > "
                         f"warmup_steps = {int(w)}, got {int(d)}")
    return Schedule(fn, _warmup_cosine, {
        "init": _check(fn, "init", init), "peak": _check(fn, "peak", peak),
        "warmup_steps": warm, "decay_steps": total, "end": _check(fn, "end", end)})
