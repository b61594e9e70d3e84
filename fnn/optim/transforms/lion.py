"""Lion scaling: the sign of an interpolated momentum (Chen et al. 2023).

``m`` starts at 0; ``sign(0) = 0``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn.optim.base import GradientTransformation, zeros_like_tree
from fnn.optim.transforms.momentum import ewa
from fnn.optim.validation import as_hyperparameter, check_hyperparameters, check_grads_match_state


class ScaleByLionState(NamedTuple):
    """State of `scale_by_lion`: ``mu`` (EWA of ``g`` with ``b2``), ``b1``, ``b2``."""

    mu: Any
    b1: jax.Array
    b2: jax.Array
    hyperparams = ("b1", "b2")


def _lion_update(updates: Any, state: ScaleByLionState, params: Any = None):
    del params
    check_grads_match_state("scale_by_lion", updates, state.mu)
    out = jax.tree.map(lambda g, m: jnp.sign(ewa(m, g, state.b1)).astype(g.dtype), updates, state.mu)
    mu = jax.tree.map(lambda m, g: ewa(m, g, state.b2), state.mu, updates)
    return out, state._replace(mu=mu)


def scale_by_lion(b1: float = 0.9, b2: float = 0.99) -> GradientTransformation:
    """Lion scaling (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms").

    ``u_t = sign(b1 m_{t-1} + (1 - b1) g_t)``; ``m_t = b2 m_{t-1} + (1 - b2) g_t``
    (``m_0 = 0``, ``sign(0) = 0``). Every coordinate moves by exactly the
    learning rate, so Lion wants a smaller ``eta`` than Adam (3-10x).

    Args:
      b1: interpolation weight of the update direction, in [0, 1).
      b2: decay of the momentum, in [0, 1).

    Returns:
      A `GradientTransformation` with state `ScaleByLionState`.

    Examples:
      >>> opt = fnn.optim.scale_by_lion()
      >>> opt.update(jnp.array([0.3, -7.0, 0.0]), opt.init(jnp.zeros(3)))[0].tolist()
      [1.00, -1.00, 0.000]
    """
    check_hyperparameters("scale_by_lion", b1=b1, b2=b2)

    def init(params: Any) -> ScaleByLionState:
        return ScaleByLionState(zeros_like_tree(params), as_hyperparameter(b1),
                                as_hyperparameter(b2))

    return GradientTransformation(init, _lion_update)
