"""Per-parameter adaptive step sizes: RMSProp, Adagrad, AdaDelta.

Each divides the gradient by a running root of squared gradients, so
directions with large, noisy gradients take smaller steps (the notes'
``eta' = eta / sqrt(s + eps)``). All operations are elementwise; ``t`` counts
updates from 1 and every accumulator starts at 0.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn.caching import memoize
from fnn.optim.base import GradientTransformation, zeros_like_tree
from fnn.optim.transforms.momentum import ewa
from fnn.optim.validation import as_hyperparameter, check_hyperparameters, check_grads_match_state


def _zeros(params: Any) -> Any:
    return zeros_like_tree(params)


class ScaleByRmsState(NamedTuple):
    """State of `scale_by_rms`: ``nu`` (EWA of ``g^2``), ``beta``, ``eps``."""

    nu: Any
    beta: jax.Array
    eps: jax.Array
    hyperparams = ("beta", "eps")


@memoize
def _rms_update(eps_in_sqrt: bool):
    def update(updates: Any, state: ScaleByRmsState, params: Any = None):
        del params
        check_grads_match_state("scale_by_rms", updates, state.nu)
        nu = jax.tree.map(lambda s, g: ewa(s, g * g, state.beta), state.nu, updates)
        if eps_in_sqrt:
            def scale(g, s):
                return g / jnp.sqrt(s + state.eps)
        else:
            def scale(g, s):
                return g / (jnp.sqrt(s) + state.eps)
        out = jax.tree.map(lambda g, s: scale(g, s).astype(g.dtype), updates, nu)
        return out, state._replace(nu=nu)

    return update


def scale_by_rms(beta: float = 0.9, eps: float = 1e-8, *,
                 eps_in_sqrt: bool = False) -> GradientTransformation:
    """RMSProp scaling: divide the gradient by the root of the EWA of its squares.

    ``s_t = beta s_{t-1} + (1 - beta) g_t^2`` with ``s_0 = 0``; then
    ``u_t = g_t / (sqrt(s_t) + eps)`` by default, or
    ``u_t = g_t / sqrt(s_t + eps)`` with ``eps_in_sqrt=True``.

    The default adds ``eps`` outside the root, as PyTorch and Keras do;
    ``eps_in_sqrt=True`` puts it inside, as the notes write it
    (``eta' = eta / sqrt(s_dw + eps)``) and as optax's ``scale_by_rms`` does
    by default (its ``eps_in_sqrt=True``). The two agree closely once
    ``s_t >> eps``; where ``s_t`` is near 0 the default divides by about
    ``eps``, the other by about ``sqrt(eps)`` (``1e-8`` against ``1e-4`` at the
    default ``eps``).

    Args:
      beta: decay of the squared-gradient average, in [0, 1).
      eps: >= 0, keeps the denominator away from 0.
      eps_in_sqrt: add ``eps`` under the root (static: part of the compiled
        program; ``update`` is shared by all instances with the same flag).

    Returns:
      A `GradientTransformation` with state `ScaleByRmsState`.

    Examples:
      >>> opt = fnn.optim.scale_by_rms(beta=0.75, eps=0.0)
      >>> opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))[0].tolist()  # 2 / sqrt(0.25 * 4)
      [2.00]
      >>> opt = fnn.optim.scale_by_rms(beta=0.75, eps=3.0, eps_in_sqrt=True)
      >>> opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))[0].tolist()  # 2 / sqrt(1 + 3)
      [1.00]
      >>> opt = fnn.optim.scale_by_rms(beta=0.75, eps=3.0)
      >>> opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))[0].tolist()  # 2 / (sqrt(1) + 3)
      [0.500]
    """
    check_hyperparameters("scale_by_rms", beta=beta, eps=eps)

    def init(params: Any) -> ScaleByRmsState:
        return ScaleByRmsState(_zeros(params), as_hyperparameter(beta), as_hyperparameter(eps))

    return GradientTransformation(init, _rms_update(bool(eps_in_sqrt)))


class ScaleByAdagradState(NamedTuple):
    """State of `scale_by_adagrad`: ``sum_of_squares`` (``a_t``) and ``eps``."""

    sum_of_squares: Any
    eps: jax.Array
    hyperparams = ("eps",)


def _adagrad_update(updates: Any, state: ScaleByAdagradState, params: Any = None):
    del params
    check_grads_match_state("scale_by_adagrad", updates, state.sum_of_squares)
    total = jax.tree.map(lambda a, g: (a + g * g).astype(a.dtype), state.sum_of_squares, updates)
    out = jax.tree.map(lambda g, a: (g / (jnp.sqrt(a) + state.eps)).astype(g.dtype), updates, total)
    return out, state._replace(sum_of_squares=total)


def scale_by_adagrad(eps: float = 1e-8) -> GradientTransformation:
    """Adagrad scaling: ``a_t = a_{t-1} + g_t^2`` (``a_0 = 0``), ``u_t = g_t / (sqrt(a_t) + eps)``.

    Duchi, Hazan & Singer (2011), "Adaptive Subgradient Methods for Online
    Learning and Stochastic Optimization". The step size only ever shrinks.

    Args:
      eps: >= 0, keeps the denominator away from 0.

    Returns:
      A `GradientTransformation` with state `ScaleByAdagradState`.

    Examples:
      >>> opt = fnn.optim.scale_by_adagrad(eps=0.0)
      >>> state = opt.init(jnp.zeros(1))
      >>> u, state = opt.update(jnp.array([3.0]), state)
      >>> u, state = opt.update(jnp.array([4.0]), state)
      >>> u.round(4).tolist()  # 4 / sqrt(9 + 16)
      [0.8000]
    """
    check_hyperparameters("scale_by_adagrad", eps=eps)

    def init(params: Any) -> ScaleByAdagradState:
        return ScaleByAdagradState(_zeros(params), as_hyperparameter(eps))

    return GradientTransformation(init, _adagrad_update)


class ScaleByAdadeltaState(NamedTuple):
    """State of `scale_by_adadelta`: ``e_g2`` = E[g^2], ``e_dx2`` = E[dx^2], ``rho``, ``eps``."""

    e_g2: Any
    e_dx2: Any
    rho: jax.Array
    eps: jax.Array
    hyperparams = ("rho", "eps")


def _adadelta_update(updates: Any, state: ScaleByAdadeltaState, params: Any = None):
    del params
    check_grads_match_state("scale_by_adadelta", updates, state.e_g2)
    rho, eps = state.rho, state.eps
    e_g2 = jax.tree.map(lambda e, g: ewa(e, g * g, rho), state.e_g2, updates)
    step = jax.tree.map(lambda g, eg, edx: (jnp.sqrt(edx + eps) / jnp.sqrt(eg + eps) * g).astype(g.dtype),
                        updates, e_g2, state.e_dx2)
    e_dx2 = jax.tree.map(lambda e, s: ewa(e, s * s, rho), state.e_dx2, step)
    return step, state._replace(e_g2=e_g2, e_dx2=e_dx2)


def scale_by_adadelta(rho: float = 0.95, eps: float = 1e-6) -> GradientTransformation:
    """AdaDelta scaling (Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method", Algorithm 1).

    ``E[g^2]_t = rho E[g^2]_{t-1} + (1 - rho) g_t^2``;
    ``u_t = sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g_t``;
    ``E[dx^2]_t = rho E[dx^2]_{t-1} + (1 - rho) u_t^2``.
    Zeiler's step is ``dx_t = -u_t`` (his ``theta += dx``); chained with
    ``scale_by_learning_rate(eta)`` the update is ``theta += eta dx_t``.

    Args:
      rho: decay of both averages, in [0, 1).
      eps: >= 0; also sets the size of the first steps (``~sqrt(eps)``).

    Returns:
      A `GradientTransformation` with state `ScaleByAdadeltaState`.

    Examples:
      >>> opt = fnn.optim.scale_by_adadelta(rho=0.0, eps=1e-6)
      >>> u, _ = opt.update(jnp.array([1.0]), opt.init(jnp.zeros(1)))
      >>> round(float(u[0]), 6)  # sqrt(0 + 1e-6) / sqrt(1 + 1e-6)
      0.00100
    """
    check_hyperparameters("scale_by_adadelta", rho=rho, eps=eps)

    def init(params: Any) -> ScaleByAdadeltaState:
        return ScaleByAdadeltaState(_zeros(params), _zeros(params), as_hyperparameter(rho),
                                    as_hyperparameter(eps))

    return GradientTransformation(init, _adadelta_update)
