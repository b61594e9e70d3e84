"""Where the lecture notes' optimizer conventions differ from fnn's, and by how much.

Two places (shared/seeds):

* the exponentially weighted average: 003_bd2609bbfadc696f.txt starts at the
  first value, ``V_1 = a_1``, then ``V_t = beta V_{t-1} + (1 - beta) a_t``;
  002_d1547338624e7a06.txt and fnn start at ``v_0 = 0`` and optionally divide
  by ``1 - beta^t`` (bias correction);
* RMSProp's epsilon: 003 writes ``eta' = eta / sqrt(s_dw + eps)`` (inside the
  root), fnn's default is ``g / (sqrt(s) + eps)``; ``eps_in_sqrt=True`` gives
  the notes' form.

Every reference is numpy float64, written from the notes' formulas.
"""

import jax
import jax.numpy as jnp
import numpy as np

import fnn

BETA = 0.95                           # 003: "beta = 0.95"
# A temperature-like daily series (the notes name "time t_1 ... t_n, value a_1 ... a_n"
# but give no numbers); a_1 is far from the rest so the starts differ visibly.
A = np.array([4.0, 9.0, 11.0, 10.0, 13.0, 15.0, 14.0, 12.0, 16.0, 18.0, 17.0, 19.0])
T = np.arange(1, len(A) + 1)


def notes_ewma(a, beta):
    """003_bd2609bbfadc696f.txt: V_1 = a_1; V_t = beta V_{t-1} + (1 - beta) a_t."""
    v = np.empty(len(a))
    v[0] = a[0]
    for t in range(1, len(a)):
        v[t] = beta * v[t - 1] + (1 - beta) * a[t]
    return v


def zero_start_ewma(a, beta):
    """002_d1547338624e7a06.txt / fnn: v_0 = 0; v_t = beta v_{t-1} + (1 - beta) a_t."""
    v, out = 0.0, []
    for value in a:
        v = beta * v + (1 - beta) * value
        out.append(v)
    return np.array(out)


def run_momentum(a, beta, **options):
    """fnn.optim.scale_by_momentum fed the series as gradients: its outputs and final state."""
    opt = fnn.optim.scale_by_momentum(beta, **options)
    update = jax.jit(opt.update)
    state = opt.init(jnp.zeros(1))
    out = []
    for value in a:
        u, state = update(jnp.array([value], jnp.float32), state)
        out.append(float(u[0]))
    return np.array(out), state


def test_notes_ewma_expansions():
    # 003: "V_t2 = 0.95 * a1 + 0.05 * a2", "V_t3 = 0.95 (0.95 * a1 + 0.05 * a2) + 0.05 * a3".
    a1, a2, a3 = A[:3]
    v = notes_ewma(A, BETA)
    assert v[0] == a1
    np.testing.assert_allclose(v[1], 0.95 * a1 + 0.05 * a2, rtol=1e-12)
    np.testing.assert_allclose(v[2], 0.95 * (0.95 * a1 + 0.05 * a2) + 0.05 * a3, rtol=1e-12)


def test_the_two_starts_differ_by_beta_to_the_t_times_a1():
    # d_t = V_t - v_t. Both follow the same recursion for t >= 2, so d_t = beta d_{t-1};
    # d_1 = a_1 - (1 - beta) a_1 = beta a_1. Hence V_t - v_t = beta^t a_1 for every t.
    notes = notes_ewma(A, BETA)
    fnn_v, state = run_momentum(A, BETA)                        # v_0 = 0, no bias correction
    np.testing.assert_allclose(fnn_v, zero_start_ewma(A, BETA), rtol=1e-5)
    np.testing.assert_allclose(notes - fnn_v, BETA ** T * A[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(state.velocity, fnn_v[-1:], rtol=1e-6)
    # The gap is not small early on: beta^t a_1 = 3.8 at t = 1, still 2.2 at t = 12.
    assert np.all(notes - fnn_v > 2.0)


def test_bias_correction_is_a_third_curve():
    notes = notes_ewma(A, BETA)
    v = zero_start_ewma(A, BETA)
    v_hat = v / (1 - BETA ** T)
    fnn_hat, state = run_momentum(A, BETA, bias_correction=True)
    np.testing.assert_allclose(fnn_hat, v_hat, rtol=1e-5)
    # fnn corrects the output, not the state: the state keeps the plain v_t. (002 writes
    # "v(t) = (beta * v(t-1) + (1-beta) * theta(t)) / (1 - beta^t)"; read as a recursion on the
    # corrected value it would be yet another curve.)
    np.testing.assert_allclose(state.velocity, v[-1:], rtol=1e-5)
    # At t = 1 the corrected average is a_1, as the notes' start; from t = 2 on it matches neither:
    # v_hat_t weights a_k by (1 - beta) beta^(t-k) / (1 - beta^t), V_t gives a_1 the weight beta^(t-1).
    np.testing.assert_allclose(fnn_hat[0], notes[0], rtol=1e-6)
    assert np.all(np.abs(fnn_hat[1:] - notes[1:]) > 0.1)
    assert np.all(np.abs(fnn_hat - v) > 0.1)
    t = len(A)
    w_hat = (1 - BETA) * BETA ** (t - T) / (1 - BETA ** t)
    w_notes = np.concatenate([[BETA ** (t - 1)], (1 - BETA) * BETA ** (t - T[1:])])
    np.testing.assert_allclose([w_hat @ A, w_notes @ A], [v_hat[-1], notes[-1]], rtol=1e-12)
    np.testing.assert_allclose([w_hat.sum(), w_notes.sum()], 1.0, rtol=1e-12)


def test_constant_series_only_the_zero_start_is_biased():
    c = np.full(8, 5.0)
    t = np.arange(1, 9)
    plain, _ = run_momentum(c, BETA)
    corrected, _ = run_momentum(c, BETA, bias_correction=True)
    np.testing.assert_allclose(plain, 5.0 * (1 - BETA ** t), rtol=1e-5)   # pulled towards v_0 = 0
    np.testing.assert_allclose(corrected, 5.0, rtol=1e-5)                 # unbiased
    np.testing.assert_allclose(notes_ewma(c, BETA), 5.0, rtol=1e-12)      # the notes' start too


# --- RMSProp: eps inside or outside the root -----------------------------------------------
G = np.array([[0.5, -2.0], [0.3, -1.0], [-0.2, 0.4], [1.5, 0.0], [0.1, -0.3]])


def notes_rmsprop_updates(g, eta, beta, eps):
    """003: s_dw = 0; s_t = beta s_{t-1} + (1 - beta) g_t^2; w_t = w_{t-1} - eta g_t / sqrt(s_t + eps)."""
    s, out = np.zeros(g.shape[1]), []
    for gt in g:
        s = beta * s + (1 - beta) * gt ** 2
        out.append(-eta * gt / np.sqrt(s + eps))
    return np.array(out)


def default_rmsprop_updates(g, eta, beta, eps):
    s, out = np.zeros(g.shape[1]), []
    for gt in g:
        s = beta * s + (1 - beta) * gt ** 2
        out.append(-eta * gt / (np.sqrt(s) + eps))
    return np.array(out)


def run_rmsprop(g, **kwargs):
    opt = fnn.optim.rmsprop(**kwargs)
    update = jax.jit(opt.update)
    state = opt.init(jnp.zeros(g.shape[1]))
    out = []
    for gt in g:
        u, state = update(jnp.asarray(gt, jnp.float32), state)
        out.append(np.asarray(u, np.float64))
    return np.array(out)


def test_rmsprop_eps_in_sqrt_is_the_notes_formula():
    eta, eps = 0.1, 0.25                                        # a large eps, so the forms differ
    got = run_rmsprop(G, learning_rate=eta, beta=BETA, eps=eps, eps_in_sqrt=True)
    np.testing.assert_allclose(got, notes_rmsprop_updates(G, eta, BETA, eps), rtol=1e-5, atol=1e-7)
    default = run_rmsprop(G, learning_rate=eta, beta=BETA, eps=eps)
    np.testing.assert_allclose(default, default_rmsprop_updates(G, eta, BETA, eps), rtol=1e-5, atol=1e-7)
    # The difference is what the two formulas predict,
    # -eta g (1 / (sqrt(s) + eps) - 1 / sqrt(s + eps)). Squaring the denominators,
    # sqrt(s) + eps > sqrt(s + eps)  <=>  2 sqrt(s) + eps > 1: the default takes the smaller
    # step where the running s is large, the notes' form where it is small.
    s, predicted, default_smaller = np.zeros(2), [], []
    for gt in G:
        s = BETA * s + (1 - BETA) * gt ** 2
        predicted.append(-eta * gt * (1 / (np.sqrt(s) + eps) - 1 / np.sqrt(s + eps)))
        default_smaller.append(2 * np.sqrt(s) + eps > 1)
    np.testing.assert_allclose(default - got, predicted, rtol=1e-4, atol=1e-7)
    default_smaller, nonzero = np.array(default_smaller), G != 0
    assert default_smaller[nonzero].any() and not default_smaller[nonzero].all()   # both cases occur
    np.testing.assert_array_equal((np.abs(default) < np.abs(got))[nonzero], default_smaller[nonzero])
    assert np.abs(default - got).max() > 0.02                  # not a rounding-level difference
    # First step in closed form: s_1 = (1 - beta) g_1^2.
    s1 = (1 - BETA) * G[0] ** 2
    np.testing.assert_allclose(got[0], -eta * G[0] / np.sqrt(s1 + eps), rtol=1e-5)


def test_rmsprop_forms_agree_when_eps_is_tiny_against_s():
    # With the default eps = 1e-8 and |g| ~ 1 the two forms agree to float32 rounding.
    a = run_rmsprop(G, learning_rate=0.1, beta=BETA, eps_in_sqrt=True)
    b = run_rmsprop(G, learning_rate=0.1, beta=BETA)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_rmsprop_eps_in_sqrt_on_a_quadratic_trajectory():
    # Parameters move: theta <- theta + u with gradients of f(theta) = 0.5 theta^T H theta.
    H = np.array([[3.0, 0.5], [0.5, 0.2]])
    eta, eps = 0.05, 0.1
    opt = fnn.optim.rmsprop(eta, beta=BETA, eps=eps, eps_in_sqrt=True)
    grad = jax.grad(lambda th: 0.5 * th @ jnp.asarray(H, jnp.float32) @ th)

    @jax.jit
    def step(theta, state):
        u, state = opt.update(grad(theta), state, theta)
        return fnn.optim.apply_updates(theta, u), state

    theta = jnp.array([1.0, -2.0])
    state = opt.init(theta)
    th, s = np.array([1.0, -2.0]), np.zeros(2)
    for _ in range(6):
        theta, state = step(theta, state)
        g = H @ th
        s = BETA * s + (1 - BETA) * g ** 2
        th = th - eta * g / np.sqrt(s + eps)
    np.testing.assert_allclose(theta, th, rtol=1e-5, atol=1e-6)


def test_eps_in_sqrt_is_static_and_updates_are_shared():
    assert fnn.optim.rmsprop(1e-3).update is fnn.optim.rmsprop(3e-4).update
    inside = fnn.optim.rmsprop(1e-3, eps_in_sqrt=True)
    assert inside.update is fnn.optim.rmsprop(3e-4, beta=0.5, eps=0.1, eps_in_sqrt=True).update
    assert inside.update is not fnn.optim.rmsprop(1e-3).update
    assert (fnn.optim.scale_by_rms(0.9, eps_in_sqrt=True).update
            is fnn.optim.scale_by_rms(0.5, 1e-3, eps_in_sqrt=True).update)
    assert fnn.optim.scale_by_rms().update is fnn.optim.scale_by_rms(0.5).update
    assert fnn.optim.scale_by_rms().update is not fnn.optim.scale_by_rms(eps_in_sqrt=True).update
    # eps stays a hyperparameter in the state: one compiled update serves every eps.
    traces = []

    def counted(g, state):
        traces.append(1)
        return inside.update(g, state)

    step = jax.jit(counted)
    g = jnp.array([2.0])
    for eps in (0.0, 3.0):
        opt = fnn.optim.scale_by_rms(0.75, eps, eps_in_sqrt=True)
        state = fnn.optim.rmsprop(0.25, beta=0.75, eps=eps, eps_in_sqrt=True).init(jnp.zeros(1))
        u, _ = step(g, state)
        np.testing.assert_allclose(u, -0.25 * 2 / np.sqrt(0.25 * 4 + eps), rtol=1e-6)
        np.testing.assert_allclose(opt.update(g, opt.init(jnp.zeros(1)))[0], 2 / np.sqrt(1 + eps), rtol=1e-6)
    assert len(traces) == 1
    hyper = fnn.optim.hyperparameter_names(state)
    assert "eps" in hyper and "eps_in_sqrt" not in hyper
