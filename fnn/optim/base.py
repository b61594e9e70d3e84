"""The optimizer contract: gradient transformations, chains, applying updates.

An optimizer is a `GradientTransformation`, a pair of pure functions::

    opt_state = opt.init(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = fnn.optim.apply_updates(params, updates)

``update`` turns gradients into *updates* (the amounts added to the
parameters), so a plain gradient step is ``updates = -eta * g``. Every number an
``update`` needs (learning rate, betas, eps, weight decay, clip thresholds)
lives in ``opt_state`` as a float32 array, never in the function itself: the
factories are memoized on their static configuration, so
``fnn.optim.adam(1e-3).update is fnn.optim.adam(3e-4).update`` and a ``jit``
compiled for one learning rate serves every other.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn.caching import memoize
from fnn.optim.validation import check_same_tree

Params = Any
Updates = Any
OptState = Any


class GradientTransformation(NamedTuple):
    """A pair of pure functions ``(init, update)``.

    Attributes:
      init: ``init(params) -> opt_state``.
      update: ``update(updates, opt_state, params=None) -> (updates, opt_state)``.

    Examples:
      >>> opt = fnn.optim.sgd(learning_rate=0.5)
      >>> params = {"w": jnp.array([1.0, 2.0])}
      >>> state = opt.init(params)
      >>> updates, state = opt.update({"w": jnp.array([1.0, -1.0])}, state, params)
      >>> fnn.optim.apply_updates(params, updates)["w"].tolist()
      [0.500, 2.50]
    """

    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Updates, OptState]]


class EmptyState(NamedTuple):
    """State of a transformation that keeps none."""


class FreezeState(NamedTuple):
    """State of `fnn.optim.freeze`: the wrapped optimizer's state, for the trainable
    leaves only (here, beside `EmptyState`, so that a chain can recognise a freeze
    without importing the masking transforms that build on this module)."""

    inner_state: Any


def _identity_init(params: Params) -> EmptyState:
    del params
    return EmptyState()


def _identity_update(updates: Updates, state: EmptyState, params: Params = None):
    del params
    return updates, state


def identity() -> GradientTransformation:
    """The transformation that returns the updates unchanged: ``u <- u``.

    Returns:
      A stateless `GradientTransformation`.

    Examples:
      >>> opt = fnn.optim.identity()
      >>> opt.update(jnp.array([1.5, -2.0]), opt.init(jnp.ones(2)))[0].tolist()
      [1.50, -2.00]
    """
    return GradientTransformation(_identity_init, _identity_update)


@memoize
def _chain_update(name: str, update_fns: tuple[Callable, ...]):
    def update(updates: Updates, state: tuple, params: Params = None):
        if params is not None:
            check_same_tree(name, "grads", updates, "params", params)
        if not isinstance(state, tuple) or len(state) != len(update_fns):
            raise ValueError(f"{name}: opt_state must be the tuple of {len(update_fns)} states "
                             f"returned by init, got {type(state).__name__}")
        new_states = []
        for update_fn, sub_state in zip(update_fns, state):
            updates, sub_state = update_fn(updates, sub_state, params)
            new_states.append(sub_state)
        return updates, tuple(new_states)

    return update


def named_chain(name: str, *transforms: GradientTransformation) -> GradientTransformation:
    """`chain` whose errors name ``name`` (used by the named optimizers)."""
    transforms = tuple(GradientTransformation(*t) for t in transforms)
    init_fns = tuple(t.init for t in transforms)

    def init(params: Params) -> tuple:
        states = tuple(init_fn(params) for init_fn in init_fns)
        check_freeze_comes_last(name, states)
        return states

    return GradientTransformation(init, _chain_update(name, tuple(t.update for t in transforms)))


def check_freeze_comes_last(name: str, states: tuple) -> None:
    """``ValueError`` if a chain element holding a `fnn.optim.freeze` has others after it.

    A chain is a plain fold: what follows a freeze still sees the frozen
    leaves, keeps state for them, and weight decay would move them. The
    freeze shows in its element's state (a ``FreezeState``, at any depth), so
    no wrapper can hide it.
    """

    for index, sub_state in enumerate(states[:-1]):
        nodes = jax.tree.leaves(sub_state, is_leaf=lambda node: isinstance(node, FreezeState))
        if any(isinstance(node, FreezeState) for node in nodes):
            raise ValueError(
                f"{name}: element {index} contains fnn.optim.freeze and {len(states) - index - 1} "
                "transform(s) follow it; they would still see the frozen parameters, keep state "
                "for them, and weight decay would move them. Put what follows inside the freeze: "
                "fnn.optim.freeze(mask, fnn.optim.chain(...)) (or fnn.optim.partition)")


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Compose transformations: each one's output updates are the next one's input.

    ``chain(a, b).update(g, (sa, sb), p)`` computes ``u = a(g)``, then ``b(u)``;
    the state is the tuple of the component states. A plain fold: no element
    changes what the others do. When ``params`` is given, the gradients' tree
    and shapes must match it (``ValueError`` otherwise). An element holding a
    `fnn.optim.freeze` must be the last one (``init`` raises otherwise):
    give the freeze the transforms that must not touch frozen leaves,
    ``freeze(mask, adamw(...))``.

    Args:
      *transforms: `GradientTransformation` objects (or ``(init, update)`` pairs).

    Returns:
      A `GradientTransformation`. Chains of the same component
      ``update`` functions share one ``update`` function object.

    Examples:
      >>> opt = fnn.optim.chain(fnn.optim.clip_by_value(1.0),
      ...                       fnn.optim.scale_by_learning_rate(0.5))
      >>> opt.update(jnp.array([3.0, -0.25]), opt.init(jnp.zeros(2)))[0].tolist()
      [-0.500, 0.125]
    """
    return named_chain("chain", *transforms)


def apply_updates(params: Params, updates: Updates) -> Params:
    """Add the updates to the parameters: ``theta <- theta + u`` for every leaf.

    The result keeps each parameter's dtype.

    Args:
      params: a pytree of arrays.
      updates: a pytree of the same structure and shapes.

    Returns:
      The new parameters.

    Raises:
      ValueError: the trees or leaf shapes differ.

    Examples:
      >>> fnn.optim.apply_updates({"w": jnp.ones(2)}, {"w": jnp.array([0.5, -1.0])})["w"].tolist()
      [1.50, 0.000]
    """
    check_same_tree("apply_updates", "params", params, "updates", updates)
    return jax.tree.map(lambda p, u: jnp.asarray(p + u).astype(jnp.result_type(p)), params, updates)


def zeros_like_tree(tree: Any) -> Any:
    """Zeros with the shape, dtype and placement of each leaf (the optimizers' first moments).

    A concrete array gets zeros made on the host and put where it lives
    (``jax.device_put``): no program is compiled, so an optimizer's eager
    ``init`` costs no compilation per parameter shape. Under tracing (inside
    ``jit``, ``vmap``, ``eval_shape``) it is ``jnp.zeros_like``.

    Args:
      tree: a pytree of arrays (or tracers).

    Returns:
      The pytree of zeros; each leaf is a new buffer (safe to donate).
    """
    def zeros(leaf):
        if isinstance(leaf, jax.core.Tracer) or not isinstance(leaf, jax.Array):
            return jnp.zeros_like(leaf)
        return jax.device_put(np.zeros(leaf.shape, leaf.dtype), leaf.sharding)
    return jax.tree.map(zeros, tree)


def find_states(opt_state: OptState, state_class: type | tuple[type, ...]) -> list:
    """All sub-states of ``opt_state`` that are instances of ``state_class``.

    Searches through chains (tuples), wrappers (``MaskedState``,
    ``FreezeState``, ``SkipNonfiniteState``, ...) and dicts, depth first, in order.

    Args:
      opt_state: an optimizer state.
      state_class: a state NamedTuple class (or a tuple of classes).

    Returns:
      A list, empty if there is none.

    Examples:
      >>> state = fnn.optim.adam(1e-3).init({"w": jnp.zeros(2)})
      >>> [s.count for s in fnn.optim.find_states(state, fnn.optim.ScaleByAdamState)]
      [Array(0, dtype=int32)]
    """
    found = []

    def visit(node: Any) -> None:
        if isinstance(node, state_class):
            found.append(node)
        if isinstance(node, (tuple, list)):
            for child in node:
                visit(child)
        elif isinstance(node, dict):
            for child in node.values():
                visit(child)

    visit(opt_state)
    return found
