"""Loss scaling for float16 training: the loss scales and the optimizer wrapper that keeps one.

float16 has a 5-bit exponent (largest 65504, smallest normal ~6.1e-5,
subnormals to ~6e-8), so small gradients underflow to zero. Loss scaling
differentiates ``S * loss`` instead (the chain rule scales every gradient by
``S``), divides the gradients by ``S`` in float32, and when one overflowed to
``inf``/``nan`` skips the update and lowers ``S`` (`DynamicLossScale`).
bfloat16 keeps float32's exponent and needs none of this.

All of it lives here:

- the scales `NoOpLossScale`, `StaticLossScale`, `DynamicLossScale`
  (pytrees: ``S`` is an array leaf, so it changes without recompiling);
- `loss_scaled`, the optimizer wrapper keeping the scale in the
  optimizer state (`LossScaledState`): its ``update`` unscales the
  gradients, skips the step when they are not finite (through
  `fnn.optim.skip_nonfinite`, so the skipped steps are counted like any
  other) and adjusts ``S``;
- `loss_scale_of`, what the train step multiplies the loss by, and
  `for_policy`, the scale ``fnn.fit`` uses for a precision policy.

Only array leaves with a floating dtype are scaled; integer and boolean
leaves pass through untouched.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn.caching import memoize
from fnn.optim.base import GradientTransformation
from fnn.optim.transforms.nonfinite import SkipNonfiniteState, skip_nonfinite
from fnn.validation import check_int, check_number

__all__ = ["NoOpLossScale", "StaticLossScale", "DynamicLossScale", "LossScaledState",
           "loss_scaled", "loss_scale_of", "for_policy", "with_loss_scale"]


def _is_float_array(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)


def _multiply_floating(tree: Any, factor: jax.Array) -> Any:
    """Multiply floating leaves by ``factor`` in (at least) float32, keeping their dtype."""
    def mul(x):
        if not _is_float_array(x):
            return x
        wide = jnp.promote_types(x.dtype, jnp.float32)
        return (jnp.asarray(x, wide) * factor.astype(wide)).astype(x.dtype)
    return jax.tree.map(mul, tree)


class _LossScale:
    """Shared pytree plumbing: ``_leaves`` are array children, ``_static`` aux data."""

    _leaves: tuple[str, ...] = ()
    _static: tuple[str, ...] = ()

    def adjust(self, grads_finite: jax.Array):
        """Returns ``self``: this scale never changes."""
        del grads_finite
        return self

    def scale(self, tree: Any) -> Any:
        """Multiply every floating leaf by ``S`` (apply to the loss before ``grad``)."""
        return _multiply_floating(tree, self.loss_scale)

    def unscale(self, tree: Any) -> Any:
        """Divide every floating leaf by ``S`` (apply to the gradients)."""
        return _multiply_floating(tree, 1.0 / self.loss_scale)

    def tree_flatten(self):
        return (tuple(getattr(self, n) for n in self._leaves),
                tuple(getattr(self, n) for n in self._static))

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        for name, value in zip(cls._leaves + cls._static, tuple(children) + tuple(aux)):
            setattr(obj, name, value)
        return obj

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)}" for n in self._leaves + self._static)
        return f"{type(self).__name__}({fields})"


@jax.tree_util.register_pytree_node_class
class NoOpLossScale(_LossScale):
    """No loss scaling (float32 or bfloat16 training): every method is the identity.

    Examples:
      >>> scale = fnn.train.NoOpLossScale()
      >>> float(scale.scale(jnp.array(2.0))), float(scale.loss_scale)
      (2.0, 1.0)
    """

    loss_scale = property(lambda self: jnp.array(1.0, jnp.float32), doc="The factor, always 1.")

    def scale(self, tree: Any) -> Any:
        """Returns ``tree`` unchanged."""
        return tree

    unscale = scale


def _positive_scale(loss_scale: Any, where: str) -> jax.Array:
    return jnp.asarray(check_number(where, "loss_scale", loss_scale, "positive"), jnp.float32)


@jax.tree_util.register_pytree_node_class
class StaticLossScale(_LossScale):
    """A fixed loss scale ``S``: ``scale(x) = S * x``, ``unscale(g) = g / S``.

    Args:
      loss_scale: the factor ``S > 0`` (a float32 array leaf).

    Examples:
      >>> scale = fnn.train.StaticLossScale(128.0)
      >>> float(scale.scale(jnp.array(0.5))), float(scale.unscale(jnp.array(64.0)))
      (64.0, 0.5)
    """

    _leaves = ("loss_scale",)

    def __init__(self, loss_scale: Any):
        self.loss_scale = _positive_scale(loss_scale, "StaticLossScale")


@jax.tree_util.register_pytree_node_class
class DynamicLossScale(_LossScale):
    """A loss scale that adapts to overflow, for float16 training.

    Rule applied by `adjust` after each step (``S`` = ``loss_scale``,
    ``c`` = ``counter``):

    - gradients not finite: ``S <- max(S / factor, min_loss_scale)``, ``c <- 0``
      (the step's update is skipped by `loss_scaled`);
    - gradients finite and ``c == period - 1``: ``S <- S * factor`` (unless that
      overflows float32), ``c <- 0``;
    - otherwise: ``c <- c + 1``.

    ``loss_scale`` (float32) and ``counter`` (int32) are array leaves of the
    pytree; ``period``, ``factor`` and ``min_loss_scale`` are static.
    ``scale``/``unscale`` are those of `StaticLossScale`.

    Args:
      loss_scale: initial ``S`` (default ``2**15``).
      counter: finite steps since the last change (default 0).
      period: finite steps before ``S`` grows (default 2000).
      factor: growth / shrink factor, > 1 (default 2).
      min_loss_scale: lower bound on ``S``, > 0 (default 1).

    Examples:
      >>> scale = fnn.train.DynamicLossScale(loss_scale=8.0, period=2)
      >>> for finite in [True, True, False]:
      ...     scale = scale.adjust(jnp.array(finite))
      ...     print(float(scale.loss_scale), int(scale.counter))
      8.0 1
      16.0 0
      8.0 0
    """

    _leaves = ("loss_scale", "counter")
    _static = ("period", "factor", "min_loss_scale")

    def __init__(self, loss_scale: Any = 2.0 ** 15, counter: Any = 0, period: int = 2000,
                 factor: float = 2, min_loss_scale: float = 1.0):
        check_int("DynamicLossScale", "period", period)
        if not float(factor) > 1:
            raise ValueError(f"DynamicLossScale: factor must be > 1, got {factor!r}")
        check_number("DynamicLossScale", "min_loss_scale", min_loss_scale, "positive")
        self.loss_scale = _positive_scale(loss_scale, "DynamicLossScale")
        self.counter = jnp.asarray(counter, jnp.int32)
        self.period, self.factor, self.min_loss_scale = period, float(factor), float(min_loss_scale)

    def adjust(self, grads_finite: jax.Array) -> "DynamicLossScale":
        """The next loss scale after a step whose gradients were ``grads_finite`` (bool scalar)."""
        grads_finite = jnp.asarray(grads_finite)
        grown = self.loss_scale * self.factor
        grown = jnp.where(jnp.isfinite(grown), grown, self.loss_scale)
        at_period = self.counter == self.period - 1
        shrunk = jnp.maximum(self.loss_scale / self.factor, self.min_loss_scale)
        loss_scale = jnp.where(grads_finite, jnp.where(at_period, grown, self.loss_scale), shrunk)
        counter = jnp.where(grads_finite & ~at_period, self.counter + 1, 0).astype(jnp.int32)
        return self.tree_unflatten(self.tree_flatten()[1], (loss_scale, counter))


class LossScaledState(NamedTuple):
    """State of `loss_scaled`.

    Attributes:
      loss_scale: the current loss scale (a loss-scale pytree of this module).
      guarded: the `fnn.optim.SkipNonfiniteState` of the wrapped
        optimizer (``skipped`` steps and its ``inner_state``).
    """

    loss_scale: Any
    guarded: SkipNonfiniteState

    @property
    def skipped(self) -> jax.Array:
        """int32, how many steps had non-finite gradients and were skipped."""
        return self.guarded.skipped

    @property
    def inner_state(self) -> Any:
        """The wrapped optimizer's own state."""
        return self.guarded.inner_state


@memoize
def _scaled_update(guarded_update):
    def update(grads: Any, state: LossScaledState, params: Any = None):
        grads = state.loss_scale.unscale(grads)
        before = state.guarded.skipped
        updates, guarded = guarded_update(grads, state.guarded, params)
        return updates, LossScaledState(state.loss_scale.adjust(guarded.skipped == before),
                                        guarded)

    return update


def loss_scaled(optimizer: GradientTransformation, loss_scale: Any) -> GradientTransformation:
    """Wrap ``optimizer`` so the train step scales the loss by a (dynamic) loss scale.

    With ``S = state.loss_scale``: the step differentiates ``S * L``; then
    ``g <- g / S``; ``skip_nonfinite(optimizer)`` updates (a step with a
    non-finite gradient or update gives ``u = 0``, keeps the state and counts
    in ``skipped``); finally ``S <- loss_scale.adjust(finite)``. ``fnn.fit``
    wraps the optimizer itself when the precision policy computes in float16.

    Args:
      optimizer: the optimizer to wrap.
      loss_scale: the initial loss scale, e.g. `DynamicLossScale`.

    Returns:
      A `GradientTransformation` with state `LossScaledState`.
      Its ``update`` is shared by every wrapper of the same ``optimizer.update``.

    Examples:
      >>> from fnn.train.step.loss_scaling import DynamicLossScale
      >>> opt = fnn.train.loss_scaled(fnn.optim.sgd(0.1), DynamicLossScale(4.0))
      >>> state = opt.init(jnp.zeros(2))
      >>> u, state = opt.update(jnp.array([4.0, 8.0]), state)    # gradients of 4 * L
      >>> u.tolist(), int(state.skipped)
      ([-0.1..., -0.2...], 0)
      >>> u, state = opt.update(jnp.array([jnp.inf, 1.0]), state)
      >>> u.tolist(), int(state.skipped), float(state.loss_scale.loss_scale)
      ([-0.0, -0.0], 1, 2.0)
    """
    if not isinstance(loss_scale, _LossScale):
        raise TypeError("loss_scaled: loss_scale must be a fnn.train loss scale "
                        f"(NoOpLossScale, StaticLossScale, DynamicLossScale), got {loss_scale!r}")
    guarded = skip_nonfinite(optimizer)

    def init(params: Any) -> LossScaledState:
        return LossScaledState(loss_scale, guarded.init(params))

    return GradientTransformation(init, _scaled_update(guarded.update))


def loss_scale_of(opt_state: Any) -> Any:
    """The loss scale the train step differentiates with: ``opt_state``'s, or ``None``.

    Args:
      opt_state: an optimizer state (a `LossScaledState` when the
        optimizer is `loss_scaled`).

    Returns:
      The loss-scale pytree, or ``None`` (no scaling).
    """
    return opt_state.loss_scale if isinstance(opt_state, LossScaledState) else None


def for_policy(policy: Any, loss_scale: Any) -> Any:
    """The loss scale ``fnn.fit`` uses: ``loss_scale``, or a `DynamicLossScale` for float16.

    Args:
      policy: a `fnn.train.step.precision.Policy` or ``None``.
      loss_scale: the user's ``loss_scale=`` (``None``: the default for the policy).

    Returns:
      A loss scale, or ``None`` when nothing is scaled (no policy computing in
      float16, or `NoOpLossScale`).
    """
    if loss_scale is None and policy is not None and policy.compute_dtype == jnp.float16:
        return DynamicLossScale()
    return None if isinstance(loss_scale, NoOpLossScale) else loss_scale


def with_loss_scale(optimizer: GradientTransformation, opt_state: Any,
                    loss_scale: Any) -> tuple[GradientTransformation, Any]:
    """``optimizer`` and a user's ``opt_state`` (or ``None``) wrapped for ``loss_scale``.

    Args:
      optimizer: the user's optimizer.
      opt_state: the user's optimizer state, ``None``, or already a
        `LossScaledState` (continuing a loss-scaled fit).
      loss_scale: a loss scale, or ``None`` (nothing is wrapped).

    Returns:
      ``(optimizer, opt_state)`` to train with.
    """
    if loss_scale is None:
        return optimizer, opt_state
    if opt_state is not None and not isinstance(opt_state, LossScaledState):
        opt_state = LossScaledState(loss_scale,
                                    SkipNonfiniteState(jnp.zeros([], jnp.int32), opt_state))
    return loss_scaled(optimizer, loss_scale), opt_state
