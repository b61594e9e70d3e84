"""Weight decay and L1 terms added to the updates (they need ``params``).

Where a term sits in a chain decides what it means:

- before the scaling (``chain(add_weight_decay(wd), scale_by_adam(), ...)``)
  it is L2 regularisation folded into the gradient, ``g + wd theta``;
- after it (``chain(scale_by_adam(), add_weight_decay(wd), scale_by_learning_rate(eta))``)
  it is *decoupled* weight decay as in AdamW, ``theta -= eta (adam_step + wd theta)``.

Use `fnn.optim.masked` to decay only some parameters (e.g. not biases).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn.optim.base import GradientTransformation
from fnn.optim.validation import as_hyperparameter, check_hyperparameters, check_same_tree


def _require_params(where: str, updates: Any, params: Any) -> None:
    if params is None:
        raise ValueError(f"{where}: needs params: call update(grads, opt_state, params)")
    check_same_tree(where, "grads", updates, "params", params)


class AddWeightDecayState(NamedTuple):
    """State of `add_weight_decay`: the float32 coefficient ``weight_decay``."""

    weight_decay: jax.Array
    hyperparams = ("weight_decay",)


def _add_weight_decay_update(updates: Any, state: AddWeightDecayState, params: Any = None):
    _require_params("add_weight_decay", updates, params)
    wd = state.weight_decay
    return jax.tree.map(lambda u, p: (u + wd * p).astype(u.dtype), updates, params), state


def add_weight_decay(weight_decay: float) -> GradientTransformation:
    """Add the gradient of the L2 penalty ``(wd / 2) ||theta||^2``: ``u <- u + wd theta``.

    Args:
      weight_decay: the coefficient ``wd >= 0``.

    Returns:
      A `GradientTransformation` with state `AddWeightDecayState`;
      its ``update`` requires ``params``.

    Examples:
      >>> opt = fnn.optim.add_weight_decay(0.25)
      >>> params = jnp.array([2.0, -4.0])
      >>> opt.update(jnp.zeros(2), opt.init(params), params)[0].tolist()
      [0.500, -1.00]
    """
    check_hyperparameters("add_weight_decay", weight_decay=weight_decay)

    def init(params: Any) -> AddWeightDecayState:
        del params
        return AddWeightDecayState(as_hyperparameter(weight_decay))

    return GradientTransformation(init, _add_weight_decay_update)


class AddL1State(NamedTuple):
    """State of `add_l1`: the float32 coefficient ``l1``."""

    l1: jax.Array
    hyperparams = ("l1",)


def _add_l1_update(updates: Any, state: AddL1State, params: Any = None):
    _require_params("add_l1", updates, params)
    return jax.tree.map(lambda u, p: (u + state.l1 * jnp.sign(p)).astype(u.dtype), updates, params), state


def add_l1(l1: float) -> GradientTransformation:
    """Add the (sub)gradient of the L1 penalty ``l1 ||theta||_1``: ``u <- u + l1 sign(theta)``.

    ``sign(0) = 0``, so a weight at exactly zero gets no push.

    Args:
      l1: the coefficient ``>= 0``.

    Returns:
      A `GradientTransformation` with state `AddL1State`;
      its ``update`` requires ``params``.

    Examples:
      >>> opt = fnn.optim.add_l1(0.5)
      >>> params = jnp.array([2.0, 0.0, -4.0])
      >>> opt.update(jnp.zeros(3), opt.init(params), params)[0].tolist()
      [0.500, 0.000, -0.500]
    """
    check_hyperparameters("add_l1", l1=l1)

    def init(params: Any) -> AddL1State:
        del params
        return AddL1State(as_hyperparameter(l1))

    return GradientTransformation(init, _add_l1_update)
