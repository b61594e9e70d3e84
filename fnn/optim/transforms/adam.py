"""Adam and Nadam scaling: momentum combined with a per-parameter RMS scale.

``t`` counts updates from 1; moments start at 0.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn.optim.base import GradientTransformation, zeros_like_tree
from fnn.optim.transforms.momentum import ewa, first_moment_estimate
from fnn.caching import memoize
from fnn.optim.validation import as_hyperparameter, check_hyperparameters, check_grads_match_state


class ScaleByAdamState(NamedTuple):
    """State of `scale_by_adam`.

    Attributes:
      count: int32, updates done so far.
      mu: first moment (EWA of ``g``), same tree as the params.
      nu: second moment (EWA of ``g^2``), same tree as the params.
      b1, b2, eps: float32 hyperparameters.
    """

    count: jax.Array
    mu: Any
    nu: Any
    b1: jax.Array
    b2: jax.Array
    eps: jax.Array
    hyperparams = ("b1", "b2", "eps")


@memoize
def _adam_update(nesterov: bool):
    where = "scale_by_adam"

    def update(updates: Any, state: ScaleByAdamState, params: Any = None):
        del params
        check_grads_match_state(where, updates, state.mu)
        b1, b2, eps = state.b1, state.b2, state.eps
        count = state.count + 1
        mu = jax.tree.map(lambda m, g: ewa(m, g, b1), state.mu, updates)
        nu = jax.tree.map(lambda v, g: ewa(v, g * g, b2), state.nu, updates)
        correction2 = 1 - b2 ** count.astype(b2.dtype)

        def direction(g, m, v):
            m_hat = first_moment_estimate(m, g, b1, count, nesterov=nesterov, bias_correction=True)
            return (m_hat / (jnp.sqrt(v / correction2) + eps)).astype(g.dtype)

        out = jax.tree.map(direction, updates, mu, nu)
        return out, ScaleByAdamState(count, mu, nu, b1, b2, eps)

    return update


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, *,
                  nesterov: bool = False) -> GradientTransformation:
    """Adam scaling (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization").

    ``m_t = b1 m_{t-1} + (1 - b1) g_t``; ``v_t = b2 v_{t-1} + (1 - b2) g_t^2``;
    ``m_hat = m_t / (1 - b1^t)``; ``v_hat = v_t / (1 - b2^t)``;
    ``u_t = m_hat / (sqrt(v_hat) + eps)``.

    With ``nesterov=True`` (Nadam, Dozat 2016, in the form optax and Keras
    use without the momentum schedule)
    ``m_hat = b1 m_t / (1 - b1^(t+1)) + (1 - b1) g_t / (1 - b1^t)``.

    Args:
      b1: first-moment decay in [0, 1).
      b2: second-moment decay in [0, 1).
      eps: >= 0, added to ``sqrt(v_hat)``.
      nesterov: use Nadam's look-ahead first moment (static).

    Returns:
      A `GradientTransformation` with state `ScaleByAdamState`.

    Examples:
      >>> opt = fnn.optim.scale_by_adam()
      >>> u, state = opt.update(jnp.array([0.5, -2.0]), opt.init(jnp.zeros(2)))
      >>> u.round(4).tolist()  # the first step is sign(g) after bias correction
      [1.00, -1.00]
    """
    check_hyperparameters("scale_by_adam", b1=b1, b2=b2, eps=eps)

    def init(params: Any) -> ScaleByAdamState:
        # Two separate trees: sharing one buffer would break donation of the state.
        mu, nu = zeros_like_tree(params), zeros_like_tree(params)
        return ScaleByAdamState(jnp.zeros([], jnp.int32), mu, nu, as_hyperparameter(b1),
                                as_hyperparameter(b2), as_hyperparameter(eps))

    return GradientTransformation(init, _adam_update(bool(nesterov)))
