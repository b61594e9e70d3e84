"""Loss scaling as an optimizer wrapper, so float16 training keeps the usual step signature.

float16 gradients underflow unless the loss is multiplied by a scale ``S``
before differentiating (see :mod:`fnn.train.precision`). The scale changes
during training (:class:`~fnn.train.precision.DynamicLossScale`), so it is
state; :func:`loss_scaled` keeps it in the optimizer state
(:class:`LossScaledState`), next to the wrapped optimizer's own state. The
train step (:func:`fnn.train.make_train_step`) sees a ``LossScaledState``
and multiplies the loss by ``opt_state.loss_scale`` before ``jax.grad``; the
wrapper's ``update`` divides the gradients by ``S``, skips the step when they
are not finite (counting it in ``skipped``) and adjusts ``S``.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn.optim.base import GradientTransformation
from fnn.optim.nonfinite import update_unless_nonfinite


class LossScaledState(NamedTuple):
    """State of :func:`loss_scaled`.

    Attributes:
      inner_state: the wrapped optimizer's state.
      loss_scale: the current loss scale (a ``fnn.train.precision`` loss-scale pytree).
      skipped: int32, how many steps had non-finite gradients and were skipped.
    """

    inner_state: Any
    loss_scale: Any
    skipped: jax.Array


@functools.lru_cache(maxsize=256)
def _scaled_update(inner_update):
    def update(grads: Any, state: LossScaledState, params: Any = None):
        grads = state.loss_scale.unscale(grads)
        updates, inner, ok = update_unless_nonfinite(inner_update, grads, state.inner_state, params)
        skipped = state.skipped + jnp.where(ok, 0, 1).astype(state.skipped.dtype)
        return updates, LossScaledState(inner, state.loss_scale.adjust(ok), skipped)

    return update


def loss_scaled(optimizer: GradientTransformation, loss_scale: Any) -> GradientTransformation:
    """Wrap ``optimizer`` so the train step scales the loss by a (dynamic) loss scale.

    With ``S = state.loss_scale``: the step differentiates ``S * L``; then
    ``g <- g / S``; if every gradient and update is finite, ``(u, s) <-
    inner(g, s)``, else ``u <- 0``, ``s`` unchanged and ``skipped <- skipped + 1``;
    finally ``S <- loss_scale.adjust(finite)``. ``fnn.fit`` wraps the optimizer
    itself when the precision policy computes in float16.

    Args:
      optimizer: the optimizer to wrap.
      loss_scale: the initial loss scale, e.g.
        ``fnn.train.precision.DynamicLossScale()``.

    Returns:
      A :class:`GradientTransformation` with state :class:`LossScaledState`.
      Its ``update`` is shared by every wrapper of the same ``optimizer.update``.

    Example:
      >>> from fnn.train.precision import DynamicLossScale
      >>> opt = fnn.train.loss_scaled(fnn.optim.sgd(0.1), DynamicLossScale(4.0))
      >>> state = opt.init(jnp.zeros(2))
      >>> u, state = opt.update(jnp.array([4.0, 8.0]), state)    # gradients of 4 * L
      >>> u.tolist(), int(state.skipped)
      ([-0.1..., -0.2...], 0)
      >>> u, state = opt.update(jnp.array([jnp.inf, 1.0]), state)
      >>> u.tolist(), int(state.skipped), float(state.loss_scale.loss_scale)
      ([-0.0, -0.0], 1, 2.0)
    """
    optimizer = GradientTransformation(*optimizer)
    if not hasattr(loss_scale, "scale") or not hasattr(loss_scale, "adjust"):
        raise TypeError("loss_scaled: loss_scale must be a fnn.train.precision loss scale "
                        f"(NoOpLossScale, StaticLossScale, DynamicLossScale), got {loss_scale!r}")

    def init(params: Any) -> LossScaledState:
        return LossScaledState(optimizer.init(params), loss_scale, jnp.zeros([], jnp.int32))

    return GradientTransformation(init, _scaled_update(optimizer.update))
