"""The learning-rate step: multiply the updates by ``-eta``.

``eta`` is a float, a scalar array, or a schedule ``step -> lr`` (a jittable
callable; ``step`` is an int32 array counting updates from 0). A fixed
learning rate is kept in the state as a float32 array, so it is traced: a
``jit`` compiled for one value serves every other, and
``jax.vmap`` over learning rates compiles once.

A schedule that is a pytree with array leaves (every
`fnn.optim.schedules` schedule) is stored in the state, so its constants
are traced too: schedules of the same kind with other numbers share one
compiled step, and ``vmap`` over a schedule's peak works. A plain function
schedule is static: its constants are fixed in the compiled program. Either
way the state keeps the step count and the learning rate of the most recent
update.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn.optim.base import GradientTransformation
from fnn.caching import memoize
from fnn.optim.validation import as_hyperparameter, check_hyperparameter


class ScaleByLearningRateState(NamedTuple):
    """State of `scale_by_learning_rate` with a fixed learning rate.

    Attributes:
      learning_rate: float32 array, the ``eta`` of every update.
    """

    learning_rate: jax.Array
    hyperparams = ("learning_rate",)


class ScaleByScheduleState(NamedTuple):
    """State of `scale_by_learning_rate` with a schedule.

    Attributes:
      count: int32, the number of updates done so far.
      learning_rate: float32, ``schedule(count - 1)``: the ``eta`` the most
        recent update used (``schedule(0)`` before any update).
      schedule: the schedule when it is a pytree of arrays (its constants are
        then traced state), else ``None`` (a plain function, fixed in ``update``).
    """

    count: jax.Array
    learning_rate: jax.Array
    schedule: Any
    hyperparams = ()


def _scale(updates: Any, factor: jax.Array) -> Any:
    return jax.tree.map(lambda u: (factor * u).astype(jnp.result_type(u)), updates)


def _check_state(state: Any, expected: type) -> None:
    """An update given another transform's state fails loudly, not silently."""
    if not isinstance(state, expected):
        raise TypeError(f"scale_by_learning_rate: update expected a {expected.__name__}, got "
                        f"{type(state).__name__}; was the state made by another optimizer's init?")


def _fixed_update(updates: Any, state: ScaleByLearningRateState, params: Any = None):
    del params
    _check_state(state, ScaleByLearningRateState)
    return _scale(updates, -state.learning_rate), state


@memoize
def _schedule_update(static_schedule: Callable | None) -> Callable:
    """``static_schedule``: a plain function fixed in ``update``; ``None``: a pytree schedule in the state."""
    def update(updates: Any, state: ScaleByScheduleState, params: Any = None):
        del params
        _check_state(state, ScaleByScheduleState)
        schedule = state.schedule if static_schedule is None else static_schedule
        learning_rate = as_hyperparameter(schedule(state.count))
        return _scale(updates, -learning_rate), state._replace(count=state.count + 1,
                                                               learning_rate=learning_rate)

    return update


def is_pytree_schedule(schedule: Any) -> bool:
    """True for a callable that is a pytree node whose leaves are all arrays or numbers."""
    leaves, treedef = jax.tree.flatten(schedule)
    return (callable(schedule) and not jax.tree_util.treedef_is_leaf(treedef)
            and all(isinstance(x, (jax.Array, np.ndarray, np.number, int, float)) for x in leaves))


def scale_by_learning_rate(learning_rate: float | jax.Array | Callable) -> GradientTransformation:
    """Multiply the updates by minus the learning rate: ``u <- -eta_t u``.

    ``eta_t = learning_rate`` for a float or array, ``eta_t = schedule(t - 1)``
    for a schedule at update ``t = 1, 2, ...`` (the schedule sees the step
    count starting from 0). Updates keep their dtype.

    Args:
      learning_rate: a float >= 0, a scalar array (may be traced, e.g. built
        inside ``jax.vmap``), or a schedule ``step -> lr``.

    Returns:
      A `GradientTransformation` with state
      `ScaleByLearningRateState` (fixed) or `ScaleByScheduleState`.

    Raises:
      ValueError: a negative or non-finite learning rate (a schedule is checked at step 0).

    Examples:
      >>> opt = fnn.optim.scale_by_learning_rate(lambda step: 0.1 / (1.0 + step))
      >>> state = opt.init(jnp.zeros(2))
      >>> for _ in range(2):
      ...     updates, state = opt.update(jnp.ones(2), state)
      >>> updates.tolist(), float(fnn.optim.current_learning_rate(state))
      ([-0.0500, -0.0500], 0.0500)
    """
    if callable(learning_rate):
        schedule = learning_rate
        first = schedule(jnp.zeros([], jnp.int32))
        check_hyperparameter("scale_by_learning_rate", "learning_rate (schedule(0))", first, "nonnegative")
        in_state = is_pytree_schedule(schedule)

        def init_schedule(params: Any) -> ScaleByScheduleState:
            del params
            step0 = jnp.zeros([], jnp.int32)
            stored = jax.tree.map(jnp.asarray, schedule) if in_state else None
            return ScaleByScheduleState(step0, as_hyperparameter(schedule(step0)), stored)

        return GradientTransformation(init_schedule, _schedule_update(None if in_state else schedule))

    check_hyperparameter("scale_by_learning_rate", "learning_rate", learning_rate)

    def init(params: Any) -> ScaleByLearningRateState:
        del params
        return ScaleByLearningRateState(as_hyperparameter(learning_rate))

    return GradientTransformation(init, _fixed_update)
