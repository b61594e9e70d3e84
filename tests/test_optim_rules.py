"""Every update rule against an independent numpy (float64) implementation of its equation.

50 steps (the whole trajectory is compared) on a small nonconvex, non-separable problem
``f(x) = sum(x^2 / 2 + sin(3 x)) + 0.1 (sum x)^2`` over all parameter leaves,
for scalar, nested-tuple and dict params, with ``update`` under ``jit`` and
eagerly. The gradient itself comes from a shared jitted ``jax.grad`` (it is not
under test); the numpy reference computes it from the formula.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import optim

STEPS = 50

PARAMS = {
    "scalar": jnp.float32(-3.0),
    "tuple": (jnp.array([0.5, -1.2]), (jnp.array([[0.3, 2.0], [-0.7, 1.1]]), jnp.float32(0.9))),
    "dict": {"w": jnp.array([[0.4, -1.5, 2.2], [1.0, -0.3, 0.8]]), "b": jnp.array([0.1, -0.6, 1.7]),
             "inner": {"z": jnp.float32(-2.0)}},
}


def flat(tree):
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def loss(params):
    x = jnp.concatenate([jnp.ravel(p) for p in jax.tree.leaves(params)])
    return jnp.sum(0.5 * x**2 + jnp.sin(3 * x)) + 0.1 * jnp.sum(x) ** 2


grad_fn = jax.jit(jax.grad(loss))


def np_grad(x):
    return x + 3 * np.cos(3 * x) + 0.2 * np.sum(x)


# ---------------------------------------------------------------- numpy references
# Each returns step(theta, g, t, s) -> theta, with t = 1, 2, ... and s a dict of state.

def np_sgd(lr):
    return lambda th, g, t, s: th - lr * g


def np_momentum(lr, beta=0.9, nesterov=False, bias_correction=False):
    def step(th, g, t, s):
        v = s["v"] = beta * s.get("v", 0 * th) + (1 - beta) * g
        if nesterov and bias_correction:
            d = beta * v / (1 - beta ** (t + 1)) + (1 - beta) * g / (1 - beta**t)
        elif nesterov:
            d = beta * v + (1 - beta) * g
        elif bias_correction:
            d = v / (1 - beta**t)
        else:
            d = v
        return th - lr * d
    return step


def np_rmsprop(lr, beta=0.9, eps=1e-8):
    def step(th, g, t, s):
        sq = s["s"] = beta * s.get("s", 0 * th) + (1 - beta) * g**2
        return th - lr * g / (np.sqrt(sq) + eps)
    return step


def np_adagrad(lr, eps=1e-8):
    def step(th, g, t, s):
        a = s["a"] = s.get("a", 0 * th) + g**2
        return th - lr * g / (np.sqrt(a) + eps)
    return step


def np_adadelta(lr=1.0, rho=0.95, eps=1e-6):
    def step(th, g, t, s):
        eg = s["eg"] = rho * s.get("eg", 0 * th) + (1 - rho) * g**2
        dx = -np.sqrt(s.get("edx", 0 * th) + eps) / np.sqrt(eg + eps) * g
        s["edx"] = rho * s.get("edx", 0 * th) + (1 - rho) * dx**2
        return th + lr * dx
    return step


def np_adam(lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, nesterov=False):
    def step(th, g, t, s):
        m = s["m"] = b1 * s.get("m", 0 * th) + (1 - b1) * g
        v = s["v"] = b2 * s.get("v", 0 * th) + (1 - b2) * g**2
        if nesterov:
            m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        else:
            m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        return th - lr * (m_hat / (np.sqrt(v_hat) + eps) + wd * th)
    return step


def np_lion(lr, b1=0.9, b2=0.99, wd=0.0):
    def step(th, g, t, s):
        m = s.get("m", 0 * th)
        c = b1 * m + (1 - b1) * g
        s["m"] = b2 * m + (1 - b2) * g
        return th - lr * (np.sign(c) + wd * th)
    return step


def np_clip_decay_sgd(lr, max_norm, wd, l1):
    def step(th, g, t, s):
        norm = np.sqrt(np.sum(g**2))
        g = g * max_norm / norm if norm > max_norm else g
        return th - lr * (g + wd * th + l1 * np.sign(th))
    return step


def np_clip_value_sgd(lr, c):
    return lambda th, g, t, s: th - lr * np.clip(g, -c, c)


def np_schedule_sgd(schedule):
    return lambda th, g, t, s: th - schedule(t - 1) * g


CASES = {
    "sgd": (lambda: optim.sgd(0.05), np_sgd(0.05)),
    "momentum": (lambda: optim.momentum(0.1, beta=0.9), np_momentum(0.1, 0.9)),
    "momentum_nesterov": (lambda: optim.momentum(0.1, beta=0.8, nesterov=True),
                          np_momentum(0.1, 0.8, nesterov=True)),
    "momentum_bias_correction": (lambda: optim.momentum(0.05, beta=0.9, bias_correction=True),
                                 np_momentum(0.05, 0.9, bias_correction=True)),
    "momentum_nesterov_bias_correction": (
        lambda: optim.momentum(0.05, beta=0.7, nesterov=True, bias_correction=True),
        np_momentum(0.05, 0.7, nesterov=True, bias_correction=True)),
    "rmsprop": (lambda: optim.rmsprop(0.01, beta=0.9, eps=1e-8), np_rmsprop(0.01, 0.9, 1e-8)),
    "adagrad": (lambda: optim.adagrad(0.1, eps=1e-8), np_adagrad(0.1, 1e-8)),
    # A large eps tells eps outside the root (sqrt(s) + eps) from inside (sqrt(s + eps)).
    "rmsprop_large_eps": (lambda: optim.rmsprop(0.05, beta=0.8, eps=0.3), np_rmsprop(0.05, 0.8, 0.3)),
    "adagrad_large_eps": (lambda: optim.adagrad(0.3, eps=0.5), np_adagrad(0.3, 0.5)),
    "adam_large_eps": (lambda: optim.adam(0.05, b1=0.8, b2=0.9, eps=0.3), np_adam(0.05, 0.8, 0.9, 0.3)),
    "adadelta": (lambda: optim.adadelta(1.0, rho=0.9, eps=1e-6), np_adadelta(1.0, 0.9, 1e-6)),
    # eta != 1: E[dx^2] accumulates Zeiler's unscaled dx, the step is eta dx (as in PyTorch).
    "adadelta_learning_rate": (lambda: optim.adadelta(0.5, rho=0.9, eps=1e-4), np_adadelta(0.5, 0.9, 1e-4)),
    "adam": (lambda: optim.adam(0.02), np_adam(0.02)),
    "adamw": (lambda: optim.adamw(0.02, weight_decay=0.1), np_adam(0.02, wd=0.1)),
    "nadam": (lambda: optim.nadam(0.02, b1=0.85, b2=0.99), np_adam(0.02, 0.85, 0.99, nesterov=True)),
    "lion": (lambda: optim.lion(0.003, weight_decay=0.05), np_lion(0.003, wd=0.05)),
    "clip_norm_decay_l1": (
        lambda: optim.chain(optim.clip_by_global_norm(2.0), optim.add_weight_decay(0.01),
                            optim.add_l1(0.02), optim.scale_by_learning_rate(0.05)),
        np_clip_decay_sgd(0.05, 2.0, 0.01, 0.02)),
    "clip_value": (lambda: optim.chain(optim.clip_by_value(0.5), optim.sgd(0.1)),
                   np_clip_value_sgd(0.1, 0.5)),
    "sgd_function_schedule": (lambda: optim.sgd(lambda step: 0.1 / (1.0 + 0.05 * step)),
                              np_schedule_sgd(lambda step: 0.1 / (1.0 + 0.05 * step))),
    "adam_pytree_schedule": (lambda: optim.adam(optim.schedules.cosine_decay(0.05, 40)),
                             None),  # reference built in the test (cosine formula below)
}


def np_cosine(lr0, decay_steps):
    return lambda step: lr0 * 0.5 * (1 + np.cos(np.pi * min(step, decay_steps) / decay_steps))


def reference(case):
    if case == "adam_pytree_schedule":
        cosine, adam_unit = np_cosine(0.05, 40), np_adam(1.0)
        return lambda th, g, t, s: th + cosine(t - 1) * (adam_unit(th, g, t, s) - th)
    return CASES[case][1]


@functools.partial(jax.jit, static_argnums=0)
def jitted_update(update_fn, grads, state, params):
    updates, state = update_fn(grads, state, params)
    return optim.apply_updates(params, updates), state


def run_fnn(opt, params, use_jit):
    """The parameters after each of the STEPS updates (a list of trees), and the final state."""
    state, trajectory = opt.init(params), []
    for _ in range(STEPS):
        grads = grad_fn(params)
        if use_jit:
            params, state = jitted_update(opt.update, grads, state, params)
        else:
            updates, state = opt.update(grads, state, params)
            params = optim.apply_updates(params, updates)
        trajectory.append(params)
    return trajectory, state


def run_numpy(step, params):
    """The flat parameters after each of the STEPS updates, shape (STEPS, n)."""
    theta, state, trajectory = flat(params), {}, []
    for t in range(1, STEPS + 1):
        theta = step(theta, np_grad(theta), t, state)
        trajectory.append(theta)
    return np.stack(trajectory)


@pytest.mark.parametrize("use_jit", [True, False], ids=["jit", "eager"])
@pytest.mark.parametrize("structure", sorted(PARAMS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_rule_matches_numpy(case, structure, use_jit):
    params = PARAMS[structure]
    trajectory, _ = run_fnn(CASES[case][0](), params, use_jit=use_jit)
    assert jax.tree.structure(trajectory[-1]) == jax.tree.structure(params)
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(trajectory[-1]))
    expected = run_numpy(reference(case), params)
    np.testing.assert_allclose(np.stack([flat(p) for p in trajectory]), expected, rtol=1e-5, atol=2e-6)
    assert np.max(np.abs(expected[-1] - flat(params))) > 1e-2  # the optimizer really moved


def test_current_learning_rate_follows_schedule():
    opt = optim.sgd(optim.schedules.cosine_decay(0.05, 40))
    params = PARAMS["dict"]
    state = opt.init(params)
    assert float(optim.current_learning_rate(state)) == pytest.approx(0.05)  # schedule(0)
    cosine = np_cosine(0.05, 40)
    for t in range(1, 6):
        params, state = jitted_update(opt.update, grad_fn(params), state, params)
        assert float(optim.current_learning_rate(state)) == pytest.approx(cosine(t - 1), rel=1e-6)
    assert optim.current_learning_rate(optim.scale_by_adam().init(params)) is None
