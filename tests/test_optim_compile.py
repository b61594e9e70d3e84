"""Hyperparameters are traced state: no recompilation, vmap over learning rates, set_hyperparams."""

import functools

import jax
import jax.test_util
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import optim

PARAMS = {"w": jnp.array([[0.5, -1.0], [2.0, 0.3]]), "b": jnp.array([0.1, -0.2])}
GRADS = {"w": jnp.array([[0.2, -0.4], [1.0, 0.1]]), "b": jnp.array([-0.3, 0.05])}

NAMED = {
    "sgd": optim.sgd, "momentum": optim.momentum, "rmsprop": optim.rmsprop,
    "adagrad": optim.adagrad, "adadelta": optim.adadelta, "adam": optim.adam,
    "adamw": optim.adamw, "nadam": optim.nadam, "lion": optim.lion,
}

TRACES = {"step": 0, "train": 0}


@functools.partial(jax.jit, static_argnums=0)
def step(update_fn, params, state, grads):
    TRACES["step"] += 1
    updates, state = update_fn(grads, state, params)
    return optim.apply_updates(params, updates), state


def np_adam_first_steps(lr, grads, steps, b1=0.9, b2=0.999, eps=1e-8):
    """Parameters after `steps` Adam steps with a constant gradient (numpy float64)."""
    theta, g = np.asarray(PARAMS["b"], np.float64), np.asarray(grads, np.float64)
    m = v = 0 * theta
    for t in range(1, steps + 1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
        theta = theta - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return theta


@pytest.mark.parametrize("name", sorted(NAMED))
def test_same_static_configuration_same_update_function(name):
    factory = NAMED[name]
    assert factory(1e-3).update is factory(3e-4).update
    assert factory(jnp.float32(0.1)).update is factory(0.2).update


def test_memoization_follows_static_configuration():
    assert optim.momentum(0.1).update is not optim.momentum(0.1, nesterov=True).update
    assert optim.adam(0.1).update is not optim.nadam(0.1).update
    assert optim.adam(1e-3, b1=0.5, eps=1e-6).update is optim.adam(1e-2).update
    chained = [optim.chain(optim.clip_by_global_norm(c), optim.adam(lr)) for c, lr in [(1, .1), (2, .2)]]
    assert chained[0].update is chained[1].update
    frozen = [optim.freeze(["b"], optim.sgd(lr)) for lr in (0.1, 0.2)]
    assert frozen[0].update is frozen[1].update
    wrapped = [optim.skip_nonfinite(optim.masked(optim.adam(lr), "w")) for lr in (0.1, 0.2)]
    assert wrapped[0].update is wrapped[1].update
    # Pytree schedules live in the state; plain-function schedules are static.
    schedules = [optim.adam(optim.schedules.cosine_decay(lr, 100)) for lr in (0.1, 0.2)]
    assert schedules[0].update is schedules[1].update
    assert optim.adam(lambda s: 0.1).update is not optim.adam(lambda s: 0.2).update


@pytest.mark.parametrize("name", sorted(NAMED))
def test_hyperparameters_are_float32_arrays_not_weak(name):
    state = NAMED[name](1e-3).init(PARAMS)
    names = optim.hyperparameter_names(state)
    assert "learning_rate" in names
    for sub in optim.find_states(state, tuple):
        for field in getattr(type(sub), "hyperparams", ()):
            value = getattr(sub, field)
            assert value.dtype == jnp.float32 and value.shape == () and not value.weak_type, field


def test_second_update_and_new_learning_rate_do_not_recompile():
    TRACES["step"] = 0
    state = optim.adam(1e-3).init(PARAMS)
    params, state = step(optim.adam(1e-3).update, PARAMS, state, GRADS)
    params, state = step(optim.adam(1e-3).update, params, state, GRADS)
    other = optim.adam(3e-2)
    params2, state2 = step(other.update, PARAMS, other.init(PARAMS), GRADS)
    state3 = optim.set_hyperparams(state2, learning_rate=0.1)
    params3, _ = step(other.update, params2, state3, GRADS)
    assert TRACES["step"] == 1
    np.testing.assert_allclose(params["b"], np_adam_first_steps(1e-3, GRADS["b"], 2), rtol=1e-6)
    np.testing.assert_allclose(params2["b"], np_adam_first_steps(3e-2, GRADS["b"], 1), rtol=1e-6)
    # Second step at lr 0.1 after a first at 0.03: the moments carry over.
    expected = np_adam_first_steps(3e-2, GRADS["b"], 1) + 0.1 * (
        np_adam_first_steps(1.0, GRADS["b"], 2) - np_adam_first_steps(1.0, GRADS["b"], 1))
    np.testing.assert_allclose(params3["b"], expected, rtol=1e-5)
    assert float(optim.current_learning_rate(state3)) == pytest.approx(0.1)


def train_with_lr(lr):
    TRACES["train"] += 1
    opt = optim.chain(optim.clip_by_global_norm(5.0), optim.adam(lr))

    def body(carry, _):
        params, state = carry
        grads = jax.grad(lambda p: jnp.sum((p["w"] - 1.0) ** 2) + jnp.sum(jnp.sin(p["b"])))(params)
        updates, state = opt.update(grads, state, params)
        return (optim.apply_updates(params, updates), state), None

    (params, state), _ = jax.lax.scan(body, (PARAMS, opt.init(PARAMS)), None, length=20)
    return params, optim.current_learning_rate(state)


def test_vmap_over_learning_rates_compiles_once_and_matches_separate_runs():
    TRACES["train"] = 0
    lrs = jnp.array([1e-4, 3e-4, 1e-3, 3e-3])
    swept, used = jax.jit(jax.vmap(train_with_lr))(lrs)
    assert TRACES["train"] == 1
    np.testing.assert_allclose(used, lrs)
    single = jax.jit(train_with_lr)
    for i, lr in enumerate(lrs):
        params, _ = single(lr)
        for key in params:
            np.testing.assert_allclose(swept[key][i], params[key], rtol=2e-6, atol=1e-7)
    assert TRACES["train"] == 2  # one more trace for the unbatched program, then none per lr


def test_vmap_over_schedule_peak_compiles_once():
    traces = []

    def train(peak):
        traces.append(1)
        opt = optim.sgd(optim.schedules.linear_warmup(peak, 4))
        params, state = jnp.zeros(2), opt.init(jnp.zeros(2))
        for _ in range(3):
            updates, state = opt.update(jnp.ones(2), state, params)
            params = optim.apply_updates(params, updates)
        return params, optim.current_learning_rate(state)

    params, used = jax.jit(jax.vmap(train))(jnp.array([1.0, 2.0]))
    assert len(traces) == 1
    # lr_t = peak * t / 4 for t = 0, 1, 2: params = -(0 + 0.25 + 0.5) * peak
    np.testing.assert_allclose(params[:, 0], [-0.75, -1.5], rtol=1e-6)
    np.testing.assert_allclose(used, [0.5, 1.0], rtol=1e-6)


def test_set_hyperparams_replaces_arrays_and_validates():
    state = optim.chain(optim.rmsprop(0.1, eps=1e-3), optim.scale_by_adam(eps=1e-3)).init(PARAMS)
    new = optim.set_hyperparams(state, eps=0.5, beta=0.25)
    assert [float(s.eps) for s in optim.find_states(new, (optim.ScaleByRmsState,
                                                           optim.ScaleByAdamState))] == [0.5, 0.5]
    assert float(optim.find_states(new, optim.ScaleByRmsState)[0].beta) == 0.25
    assert float(optim.find_states(state, optim.ScaleByRmsState)[0].eps) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="set_hyperparams: no state .* 'b3'"):
        optim.set_hyperparams(state, b3=0.1)
    with pytest.raises(ValueError, match="set_hyperparams: b1 must be in \\[0, 1\\)"):
        optim.set_hyperparams(state, b1=1.0)
    with pytest.raises(ValueError, match="set_hyperparams: learning_rate must be >= 0"):
        optim.set_hyperparams(state, learning_rate=-0.1)
    with pytest.raises(ValueError, match="set_hyperparams: eps must have the shape"):
        optim.set_hyperparams(state, eps=jnp.ones(3))


def test_set_hyperparams_under_jit_with_a_traced_value():
    opt = optim.sgd(0.1)

    @jax.jit
    def step_with_lr(state, lr):
        state = optim.set_hyperparams(state, learning_rate=lr)
        return opt.update(GRADS, state, PARAMS)

    updates, state = step_with_lr(opt.init(PARAMS), 0.5)
    np.testing.assert_allclose(updates["b"], -0.5 * GRADS["b"], rtol=1e-6)
    assert float(optim.current_learning_rate(state)) == 0.5


def test_schedule_constants_replaced_by_same_kind_or_fixed():
    TRACES["step"] = 0
    opt = optim.sgd(optim.schedules.piecewise_constant([1], [0.1, 0.01]))
    state = opt.init(PARAMS)
    params, state = step(opt.update, PARAMS, state, GRADS)
    state = optim.set_hyperparams(state, learning_rate=optim.schedules.piecewise_constant([1], [1.0, 0.5]))
    params, state = step(opt.update, params, state, GRADS)
    assert TRACES["step"] == 1
    np.testing.assert_allclose(params["b"], PARAMS["b"] - (0.1 + 0.5) * GRADS["b"], rtol=1e-6)
    assert float(optim.current_learning_rate(state)) == 0.5
    with pytest.raises(ValueError, match="schedule of the same kind"):
        optim.set_hyperparams(state, learning_rate=optim.schedules.constant(0.1))
    with pytest.raises(ValueError, match="learning_rate is a schedule"):
        optim.set_hyperparams(state, learning_rate=0.1)
    fixed = optim.sgd(lambda count: 0.1 * 0.5**count).init(PARAMS)
    with pytest.raises(ValueError, match="constants are fixed"):
        optim.set_hyperparams(fixed, learning_rate=0.2)


def test_current_learning_rate_and_find_states():
    opt = optim.skip_nonfinite(optim.freeze("w", optim.momentum(0.3)))
    state = opt.init(PARAMS)
    assert float(optim.current_learning_rate(state)) == pytest.approx(0.3)
    assert len(optim.find_states(state, optim.SkipNonfiniteState)) == 1
    (momentum_state,) = optim.find_states(state, optim.ScaleByMomentumState)
    assert momentum_state.velocity["w"] is None and momentum_state.velocity["b"].shape == (2,)
    assert optim.find_states(state, optim.ScaleByAdamState) == []
    assert optim.current_learning_rate(optim.clip_by_value(1.0).init(PARAMS)) is None


def test_grad_through_updates_with_respect_to_hyperparameters():
    """A hypergradient: d loss(theta after 3 Adam steps) / d (learning rate, b1)."""

    def loss_after(lr, b1):
        opt = optim.adam(lr, b1=b1)
        params, state = PARAMS, opt.init(PARAMS)
        for _ in range(3):
            grads = jax.grad(lambda p: jnp.sum(jnp.sin(p["w"])) + jnp.sum(p["b"] ** 2))(params)
            updates, state = opt.update(grads, state, params)
            params = optim.apply_updates(params, updates)
        return jnp.sum(jnp.sin(params["w"])) + jnp.sum(params["b"] ** 2)

    loss_after = jax.jit(loss_after)
    jax.test_util.check_grads(loss_after, (jnp.float32(0.05), jnp.float32(0.8)), order=1,
                              modes=["rev"], atol=1e-2, rtol=1e-2)
    assert float(jax.grad(loss_after)(0.05, 0.8)) < 0  # a larger step lowers this loss


def test_adam_state_buffers_are_distinct_so_donation_works():
    params = {"w": jnp.ones((3,))}
    opt = optim.adam(1e-2)
    state = opt.init(params)
    adam_state = optim.find_states(state, optim.ScaleByAdamState)[0]
    assert adam_state.mu["w"] is not adam_state.nu["w"]

    def step(p, s):
        u, s = opt.update(jax.tree.map(jnp.ones_like, p), s, p)
        return optim.apply_updates(p, u), s

    # Raised "Attempt to donate the same buffer twice" when mu and nu shared a tree.
    new_params, _ = jax.jit(step, donate_argnums=(1,))(params, state)
    assert new_params["w"].shape == (3,)


def test_fixed_rate_update_rejects_a_schedule_state():
    schedule_state = optim.sgd(optim.schedules.constant(0.5)).init(jnp.zeros(2))
    with pytest.raises(TypeError, match="ScaleByLearningRateState"):
        optim.sgd(0.5).update(jnp.ones(2), schedule_state)


def test_optimizer_state_does_not_alias_the_callers_hyperparameter_array():
    lr = jnp.float32(1e-3)
    state = optim.adam(lr).init({"w": jnp.ones(2)})
    stored = optim.current_learning_rate(state)
    assert stored is not lr
    jax.jit(lambda s: s, donate_argnums=0)(state)  # donating the state must leave lr alive
    assert float(lr) == pytest.approx(1e-3)
