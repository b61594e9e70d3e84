"""Reading and changing the hyperparameters kept in an optimizer state.

Every state NamedTuple lists its hyperparameter fields in a class attribute
``hyperparams`` (e.g. ``ScaleByAdamState.hyperparams == ("b1", "b2", "eps")``);
they are float32 arrays, so replacing them changes the optimizer without
recompiling a jitted step that takes the state as an argument.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn.optim.base import find_states
from fnn.optim.transforms.learning_rate import (ScaleByLearningRateState, ScaleByScheduleState,
                                     is_pytree_schedule)
from fnn.optim.validation import check_hyperparameter, concrete_value


def current_learning_rate(opt_state: Any) -> jax.Array | None:
    """The learning rate the most recent update used (float32 array), or ``None``.

    For a fixed learning rate it is that value; for a schedule it is
    ``schedule(t - 1)``, the value the most recent update ``t`` used
    (``schedule(0)`` before any update).
    With several learning-rate steps in the state, the first one (depth first).
    Under ``vmap`` over learning rates it has the batch axis.

    Args:
      opt_state: an optimizer state.

    Returns:
      A float32 array, or ``None`` if the state has no learning-rate step.

    Examples:
      >>> state = fnn.optim.adam(3e-4).init({"w": jnp.zeros(2)})
      >>> print(f"{float(fnn.optim.current_learning_rate(state)):.3e}")
      3.000e-04
    """
    states = find_states(opt_state, (ScaleByLearningRateState, ScaleByScheduleState))
    return states[0].learning_rate if states else None


def _new_value(state_name: str, name: str, old: jax.Array, value: Any) -> jax.Array:
    concrete = concrete_value(value)
    if concrete is not None and concrete.dtype.kind not in "biuf":
        raise TypeError(f"set_hyperparams: {name} must be a number or array, got {value!r}")
    if concrete is not None:  # a traced value is checked for its shape only
        for element in np.ravel(concrete):
            check_hyperparameter("set_hyperparams", name, float(element))
    new = jnp.asarray(value, dtype=old.dtype)
    if new.shape != old.shape:
        raise ValueError(f"set_hyperparams: {name} must have the shape of the current value in "
                         f"{state_name}, {old.shape}, got {new.shape}")
    return new


def _new_schedule(state: ScaleByScheduleState, schedule: Any) -> Any:
    old_leaves, old_tree = jax.tree.flatten(state.schedule)
    if state.schedule is None or not is_pytree_schedule(schedule):
        raise ValueError("set_hyperparams: learning_rate is a schedule whose constants are fixed "
                         "(a plain function); use a pytree schedule such as "
                         "fnn.optim.schedules.cosine_decay to change them, or build a new optimizer"
                         if state.schedule is None else
                         "set_hyperparams: learning_rate is a schedule: pass a schedule of the "
                         f"same kind, got {type(schedule).__name__}")
    leaves, tree = jax.tree.flatten(schedule)
    if tree != old_tree:
        raise ValueError(f"set_hyperparams: learning_rate must be a schedule of the same kind as "
                         f"the current one: {old_tree} vs {tree}")
    new_leaves = []
    for old, new in zip(old_leaves, leaves):
        new = jnp.asarray(new, dtype=old.dtype)
        if new.shape != old.shape:
            raise ValueError(f"set_hyperparams: the new schedule's constants must keep their "
                             f"shapes: {old.shape} vs {new.shape}")
        new_leaves.append(new)
    return tree.unflatten(new_leaves)


def _rebuild(node: Any, values: dict, used: set) -> Any:
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        cls = type(node)
        node = cls(*(_rebuild(child, values, used) for child in node))
        if isinstance(node, ScaleByScheduleState) and "learning_rate" in values:
            used.add("learning_rate")
            return node._replace(schedule=_new_schedule(node, values["learning_rate"]))
        replaced = {name: _new_value(cls.__name__, name, getattr(node, name), values[name])
                    for name in getattr(cls, "hyperparams", ()) if name in values}
        used.update(replaced)
        return node._replace(**replaced) if replaced else node
    if isinstance(node, (tuple, list)):
        return type(node)(_rebuild(child, values, used) for child in node)
    if isinstance(node, dict):
        return {key: _rebuild(child, values, used) for key, child in node.items()}
    return node


def hyperparameter_names(opt_state: Any) -> list[str]:
    """The names `set_hyperparams` accepts for ``opt_state``, sorted.

    Args:
      opt_state: an optimizer state.

    Returns:
      A sorted list of names (``"learning_rate"`` where the learning rate can be set).

    Examples:
      >>> fnn.optim.hyperparameter_names(fnn.optim.adam(1e-3).init(jnp.zeros(1)))
      ['b1', 'b2', 'eps', 'learning_rate']
    """
    names = set()
    for state in find_states(opt_state, tuple):
        names.update(getattr(type(state), "hyperparams", ()))
        if isinstance(state, ScaleByScheduleState) and state.schedule is not None:
            names.add("learning_rate")
    return sorted(names)


def set_hyperparams(opt_state: Any, **values: Any) -> Any:
    """A copy of ``opt_state`` with hyperparameter arrays replaced.

    Every sub-state with a field of that name gets the new value (for example
    ``eps`` of both a ``scale_by_rms`` and a ``scale_by_adam`` in one chain).
    The new value keeps the old array's dtype and must have its shape, so a
    jitted step does not recompile. It may be traced (use it inside ``jit``).
    Where the learning rate is a pytree schedule (those of
    `fnn.optim.schedules`), ``learning_rate`` must be a schedule of the
    same kind: its constants replace the old ones (from the next update on;
    ``current_learning_rate`` keeps reporting the last one used). A plain
    function schedule's constants are fixed: setting it raises.

    Args:
      opt_state: an optimizer state.
      **values: hyperparameter name -> new value, e.g. ``learning_rate=1e-4``.

    Returns:
      The new state.

    Raises:
      ValueError: an unknown name, a learning rate that is a fixed schedule, a bad
        value (e.g. ``b1`` outside [0, 1)), or a changed shape.

    Examples:
      >>> state = fnn.optim.adam(1e-3).init({"w": jnp.zeros(2)})
      >>> state = fnn.optim.set_hyperparams(state, learning_rate=1e-4, b1=0.8)
      >>> print(f"{float(fnn.optim.current_learning_rate(state)):.3e}")
      1.000e-04
    """
    used: set = set()
    new_state = _rebuild(opt_state, values, used)
    unknown = sorted(set(values) - used)
    if unknown:
        raise ValueError(f"set_hyperparams: no state in opt_state has hyperparameter "
                         f"{unknown[0]!r}; it has: {hyperparameter_names(opt_state)}")
    return new_state
