"""Momentum: the exponentially weighted average (EWA) of the gradients.

The equations are in `scale_by_momentum`; `first_moment_estimate`
holds the four directions built from the average, shared with Adam and Nadam.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn.optim.base import GradientTransformation, zeros_like_tree
from fnn.caching import memoize
from fnn.optim.validation import as_hyperparameter, check_hyperparameter, check_grads_match_state


def ewa(average: jax.Array, value: jax.Array, decay: jax.Array) -> jax.Array:
    """One exponentially weighted average step ``decay * average + (1 - decay) * value``.

    The result keeps ``average``'s dtype (so state dtypes never change).
    """
    return (decay * average + (1 - decay) * value).astype(jnp.result_type(average))


def first_moment_estimate(m: jax.Array, g: jax.Array, beta: jax.Array, t: jax.Array, *,
                          nesterov: bool, bias_correction: bool) -> jax.Array:
    """The direction built from the EWA ``m = m_t`` of the gradients at update ``t``.

    ============  ===============  ==================================================
    nesterov      bias_correction  direction
    ============  ===============  ==================================================
    False         False            ``m_t``
    False         True             ``m_t / (1 - beta^t)``
    True          False            ``beta m_t + (1 - beta) g_t``
    True          True             ``beta m_t / (1 - beta^(t+1)) + (1 - beta) g_t / (1 - beta^t)``
    ============  ===============  ==================================================

    The last row is Nadam's (Dozat 2016) bias-corrected look-ahead.
    """
    t = t.astype(beta.dtype)
    if not nesterov:
        return m / (1 - beta ** t) if bias_correction else m
    if not bias_correction:
        return beta * m + (1 - beta) * g
    return beta * m / (1 - beta ** (t + 1)) + (1 - beta) * g / (1 - beta ** t)


class ScaleByMomentumState(NamedTuple):
    """State of `scale_by_momentum`.

    Attributes:
      count: int32, updates done so far.
      velocity: the EWA ``v`` of the gradients, same tree as the params.
      beta: float32, the EWA decay.
    """

    count: jax.Array
    velocity: Any
    beta: jax.Array
    hyperparams = ("beta",)


@memoize
def _momentum_update(nesterov: bool, bias_correction: bool):
    def update(updates: Any, state: ScaleByMomentumState, params: Any = None):
        del params
        check_grads_match_state("scale_by_momentum", updates, state.velocity)
        count = state.count + 1
        velocity = jax.tree.map(lambda v, g: ewa(v, g, state.beta), state.velocity, updates)
        direction = jax.tree.map(
            lambda v, g: first_moment_estimate(v, g, state.beta, count, nesterov=nesterov,
                                               bias_correction=bias_correction).astype(g.dtype),
            velocity, updates)
        return direction, ScaleByMomentumState(count, velocity, state.beta)

    return update


def scale_by_momentum(beta: float = 0.9, *, nesterov: bool = False,
                      bias_correction: bool = False) -> GradientTransformation:
    """Replace the gradient by its exponentially weighted average (momentum).

    ``v_t = beta v_{t-1} + (1 - beta) g_t`` with ``v_0 = 0`` and ``t`` counting
    updates from 1, which averages about the last ``1 / (1 - beta)`` gradients;
    the output ``u_t`` is the direction of `first_moment_estimate` for
    ``nesterov`` and ``bias_correction``: ``v_t`` by default,
    ``v_hat_t = v_t / (1 - beta^t)`` with bias correction, and the look-ahead
    ``beta v_t + (1 - beta) g_t`` with Nesterov, which is ``(1 - beta)`` times
    the heavy-ball Nesterov direction ``g_t + beta m_t``,
    ``m_t = beta m_{t-1} + g_t`` (Sutskever et al. 2013).

    Args:
      beta: EWA decay in [0, 1).
      nesterov: use the look-ahead direction (static: part of the compiled program).
      bias_correction: divide by ``1 - beta^t`` (static).

    Returns:
      A `GradientTransformation` with state `ScaleByMomentumState`.

    Examples:
      >>> opt = fnn.optim.scale_by_momentum(beta=0.5)
      >>> state = opt.init(jnp.zeros(1))
      >>> u, state = opt.update(jnp.ones(1), state)
      >>> u, state = opt.update(jnp.ones(1), state)
      >>> u.tolist()  # 0.5 * 0.5 + 0.5 * 1
      [0.750]
    """
    check_hyperparameter("scale_by_momentum", "beta", beta)

    def init(params: Any) -> ScaleByMomentumState:
        return ScaleByMomentumState(jnp.zeros([], jnp.int32), zeros_like_tree(params),
                                    as_hyperparameter(beta))

    return GradientTransformation(init, _momentum_update(bool(nesterov), bool(bias_correction)))
