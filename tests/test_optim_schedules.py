"""Learning-rate schedules against independent numpy formulas (the notes' decays)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.optim import schedules as S

STEPS = np.array([0, 1, 4, 5, 9, 10, 11, 23, 57, 100])


def epoch_num(step, steps_per_epoch):
    """The notes count epoch_num from 1: the first epoch is epoch 1."""
    return np.floor_divide(step, steps_per_epoch) + 1


# Each case: schedule, numpy reference formula over int64 steps (float64 math).
CASES = {
    "constant": (S.constant(0.3), lambda t: np.full(t.shape, 0.3)),
    "inverse_time_decay": (
        S.inverse_time_decay(0.2, 0.5, steps_per_epoch=5),
        lambda t: (1 / (1 + 0.5 * epoch_num(t, 5))) * 0.2,
    ),
    "exponential_decay": (
        S.exponential_decay(0.1, 0.95, steps_per_epoch=4),
        lambda t: (0.95 ** epoch_num(t, 4)) * 0.1,
    ),
    "inverse_sqrt_decay": (
        S.inverse_sqrt_decay(0.1, 2.0, steps_per_epoch=3),
        lambda t: (2.0 / np.sqrt(epoch_num(t, 3))) * 0.1,
    ),
    "piecewise_constant": (
        S.piecewise_constant([5, 11], [0.1, 0.02, 0.003]),
        lambda t: np.select([t < 5, t < 11], [0.1, 0.02], 0.003),
    ),
    "step_decay": (
        S.step_decay(0.4, [4, 10, 50], factor=0.5),
        lambda t: 0.4 * 0.5 ** ((t >= 4).astype(int) + (t >= 10) + (t >= 50)),
    ),
    "cosine_decay": (
        S.cosine_decay(0.5, 20, alpha=0.1),
        lambda t: 0.5 * (0.9 * 0.5 * (1 + np.cos(np.pi * np.minimum(t, 20) / 20)) + 0.1),
    ),
    "linear_schedule": (
        S.linear_schedule(0.2, 0.05, 10),
        lambda t: 0.2 + (0.05 - 0.2) * np.minimum(t, 10) / 10,
    ),
    "linear_warmup": (
        S.linear_warmup(1e-3, 8, init=1e-4),
        lambda t: 1e-4 + (1e-3 - 1e-4) * np.minimum(t, 8) / 8,
    ),
    "warmup_cosine_decay": (
        S.warmup_cosine_decay(0.0, 0.6, 5, 25, end=0.06),
        lambda t: np.where(
            t < 5,
            0.6 * t / 5,
            0.06 + (0.6 - 0.06) * 0.5 * (1 + np.cos(np.pi * np.clip(t - 5, 0, 20) / 20)),
        ),
    ),
}
NAMES = sorted(CASES)


@jax.jit
def _apply(schedule, step):
    return schedule(step)


@pytest.mark.parametrize("name", NAMES)
def test_matches_numpy_formula_eager_jit_and_vectorised(name):
    schedule, reference = CASES[name]
    expected = reference(STEPS.astype(np.int64))
    vectorised = schedule(jnp.asarray(STEPS))  # one call over all steps
    assert vectorised.shape == STEPS.shape and vectorised.dtype == jnp.float32
    np.testing.assert_allclose(vectorised, expected, rtol=1e-6, atol=1e-9)
    for t in (0, 10, 57):  # scalar steps, eager and jitted
        lr = schedule(t)
        assert lr.shape == () and lr.dtype == jnp.float32
        np.testing.assert_allclose(lr, reference(np.array(t)), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(_apply(schedule, jnp.int32(t)), lr, rtol=1e-6)


def test_inverse_time_decay_reproduces_the_worked_table():
    # lr0 = 0.2, decay_rate = 1: epochs 1, 2, 3, 4 -> 0.1, 0.067, 0.05, 0.04.
    s = S.inverse_time_decay(0.2, 1.0, steps_per_epoch=1)
    np.testing.assert_allclose(s(jnp.arange(4)), [0.1, 0.2 / 3, 0.05, 0.04], rtol=1e-6)


def test_notes_exponential_default_rate_is_095():
    s = S.exponential_decay(1.0, steps_per_epoch=1)
    np.testing.assert_allclose(s(jnp.arange(3)), [0.95, 0.95**2, 0.95**3], rtol=1e-6)


def test_second_call_and_new_values_do_not_recompile():
    traces = []

    @jax.jit
    def lr_at(schedule, step):
        traces.append(1)
        return schedule(step)

    a = S.warmup_cosine_decay(0.0, 1.0, 3, 10)
    b = S.warmup_cosine_decay(0.1, 0.5, 2, 30, end=0.01)  # other numbers, same formula
    lr_at(a, 1), lr_at(a, 7), lr_at(b, 4)
    np.testing.assert_allclose(lr_at(b, 1), 0.1 + (0.5 - 0.1) / 2, rtol=1e-6)
    assert len(traces) == 1


def test_vmap_sweep_over_peak_values_and_grad_wrt_lr0():
    peaks = jnp.array([0.1, 0.2, 0.4])
    batched = jax.vmap(lambda p: S.linear_warmup(p, 4))(peaks)  # a batched schedule pytree
    lrs = jax.vmap(lambda s: s(2))(batched)
    np.testing.assert_allclose(lrs, np.array([0.1, 0.2, 0.4]) * 2 / 4, rtol=1e-6)
    d_lr = jax.grad(lambda lr0: S.exponential_decay(lr0, 0.5, steps_per_epoch=2)(5))(1.0)
    np.testing.assert_allclose(d_lr, 0.5**3, rtol=1e-6)  # epoch_num = 5 // 2 + 1 = 3


def test_schedule_is_a_pytree_of_its_hyperparameters():
    s = S.cosine_decay(0.5, 20, alpha=0.1)
    leaves, treedef = jax.tree.flatten(s)
    assert sorted(float(x) for x in leaves) == pytest.approx([0.1, 0.5, 20.0])
    assert jax.tree.structure(S.cosine_decay(1.0, 7)) == treedef
    assert "cosine_decay" in repr(s) and "decay_steps=20" in repr(s)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: S.constant(-0.1), "constant: lr must be >= 0"),
        (lambda: S.inverse_time_decay(-1.0, 0.5, steps_per_epoch=2), "inverse_time_decay: lr0"),
        (lambda: S.inverse_time_decay(0.1, -0.5, steps_per_epoch=2), "inverse_time_decay: decay_rate"),
        (lambda: S.exponential_decay(0.1, 0.9, steps_per_epoch=0), "exponential_decay: steps_per_epoch must be > 0"),
        (lambda: S.exponential_decay(0.1, 0.0, steps_per_epoch=1), "exponential_decay: rate must be > 0"),
        (lambda: S.inverse_sqrt_decay(0.1, 1.0, steps_per_epoch=-3), "inverse_sqrt_decay: steps_per_epoch"),
        (lambda: S.inverse_sqrt_decay(0.1, 0.0, steps_per_epoch=3), "inverse_sqrt_decay: k must be > 0"),
        (lambda: S.inverse_sqrt_decay(0.1, 1.0, steps_per_epoch=2.5), "steps_per_epoch must be a whole number"),
        (lambda: S.cosine_decay(0.1, 0), "cosine_decay: decay_steps must be > 0"),
        (lambda: S.cosine_decay(0.1, 10, alpha=1.5), "cosine_decay: alpha must be in \\[0, 1\\]"),
        (lambda: S.cosine_decay(float("nan"), 10), "cosine_decay: lr0 must be finite"),
        (lambda: S.linear_schedule(0.1, 0.0, 0), "linear_schedule: steps must be > 0"),
        (lambda: S.linear_warmup(-1.0, 5), "linear_warmup: peak must be >= 0"),
        (lambda: S.linear_warmup(1.0, 0), "linear_warmup: warmup_steps must be > 0"),
        (lambda: S.warmup_cosine_decay(0.0, 1.0, 10, 10), "warmup_cosine_decay: decay_steps .* must be > warmup_steps"),
        (lambda: S.warmup_cosine_decay(0.0, 1.0, -1, 10), "warmup_cosine_decay: warmup_steps must be >= 0"),
        (lambda: S.piecewise_constant([5, 3], [0.1, 0.2, 0.3]), "piecewise_constant: boundaries must be strictly increasing"),
        (lambda: S.piecewise_constant([5], [0.1]), r"piecewise_constant: values must have len\(boundaries\) \+ 1 = 2"),
        (lambda: S.piecewise_constant([5], [0.1, -0.2]), r"piecewise_constant: values\[1\] must be >= 0"),
        (lambda: S.step_decay(0.1, [], 0.5), "step_decay: boundaries must be a non-empty"),
        (lambda: S.constant(jnp.ones(3)), r"constant: lr must be a scalar, got shape \(3,\)"),
    ],
)
def test_bad_hyperparameters_raise_value_error_naming_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="constant: lr must be a real number"):
        S.constant("0.1")
    with pytest.raises(TypeError, match="exponential_decay: step must be an integer"):
        S.exponential_decay(0.1, steps_per_epoch=1)(jnp.array([True, False]))


def test_schedule_as_learning_rate_of_an_optimizer_one_compilation():
    import fnn

    traces = []
    update = fnn.optim.sgd(S.exponential_decay(1.0, steps_per_epoch=1)).update

    @jax.jit
    def sgd_step(w, opt_state):
        traces.append(1)
        updates, opt_state = update(jnp.ones(1), opt_state, w)
        return fnn.optim.apply_updates(w, updates), opt_state

    for lr0, rate in ((1.0, 0.5), (0.3, 0.9)):  # same kind, other numbers: no new trace
        opt = fnn.optim.sgd(S.exponential_decay(lr0, rate, steps_per_epoch=2))
        assert opt.update is update  # the schedule's numbers live in the state
        w, opt_state = jnp.zeros(1), opt.init(jnp.zeros(1))
        rates = []
        for _ in range(5):
            w, opt_state = sgd_step(w, opt_state)
            rates.append(float(fnn.optim.current_learning_rate(opt_state)))
        expected = lr0 * rate ** epoch_num(np.arange(5), 2)  # update t uses schedule(t - 1)
        np.testing.assert_allclose(rates, expected, rtol=1e-6)
        np.testing.assert_allclose(w, [-expected.sum()], rtol=1e-6)
    assert len(traces) == 1
