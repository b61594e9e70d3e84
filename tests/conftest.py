"""Fixtures shared by the test modules: a small parameter tree and a jitted optimizer loop."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import optim

PARAMS = {
    "body": {"0": {"w": jnp.array([[1.0, -0.0], [0.25, -2.0]]), "b": jnp.array([0.0, 0.5])},
             "1": {"w": jnp.array([[3.0], [-1.5]])}},
    "head": {"w": jnp.array([[0.5], [-0.5]]), "b": jnp.array([0.1])},
}


def grads_at(step):
    """Deterministic, step-dependent gradients with the shapes of ``PARAMS``."""
    return jax.tree.map(lambda p: jnp.cos(p + step) + 0.5, PARAMS)


@functools.partial(jax.jit, static_argnums=0)
def _step(update_fn, params, state, grads):
    updates, state = update_fn(grads, state, params)
    return optim.apply_updates(params, updates), state, updates


class OptimizerLoop:
    """``PARAMS``, ``grads_at`` and a jitted step shared by the optimizer tests."""

    params = PARAMS
    grads_at = staticmethod(grads_at)
    step = staticmethod(_step)

    @staticmethod
    def run(opt, steps=3, params=PARAMS):
        """``steps`` jitted updates from ``opt.init(params)``; returns ``(params, state)``."""
        state = opt.init(params)
        for i in range(steps):
            params, state, _ = _step(opt.update, params, state, grads_at(i))
        return params, state

    @staticmethod
    def bits(tree):
        """The leaves' bytes: equal lists mean bit-identical trees (-0.0 differs from 0.0)."""
        return [np.asarray(x).tobytes() for x in jax.tree.leaves(tree)]

    @staticmethod
    def state_size(state):
        return sum(np.size(x) for x in jax.tree.leaves(state))


@pytest.fixture
def loop():
    """The shared :class:`OptimizerLoop`."""
    return OptimizerLoop
