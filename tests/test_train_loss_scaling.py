"""Loss scaling for float16: the scales against a hand-written Python reference, the wrapper."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.train.loss_scaling import DynamicLossScale, NoOpLossScale, StaticLossScale
from fnn.train.precision import select_tree

TREE = {"w": jnp.ones((2, 3)), "b": np.zeros(3, np.float32), "step": jnp.array(4),
        "mask": jnp.array([True, False]), "half": jnp.ones(2, jnp.float16)}
import fnn
from train_setup import KEY, LOSS, MODEL, PARAMS, STATE, X, Y, allclose, fit, make_step


def _reference_dynamic(scale, counter, finite_steps, period, factor, minimum):
    """The dynamic loss-scale rule written in plain Python."""
    history = []
    for finite in finite_steps:
        if not finite:
            scale, counter = max(scale / factor, minimum), 0
        elif counter == period - 1:
            scale, counter = scale * factor, 0
        else:
            counter += 1
        history.append((scale, counter))
    return history


FINITE = [True, True, True, False, True, False, False, False, False, True, True, True, True, True]


@pytest.mark.parametrize("period,factor,minimum", [(3, 2, 1.0), (1, 4, 0.5), (5, 2, 8.0)])
def test_dynamic_loss_scale_matches_python_reference(period, factor, minimum):
    expected = _reference_dynamic(32.0, 0, FINITE, period, factor, minimum)
    scale = DynamicLossScale(loss_scale=32.0, period=period, factor=factor, min_loss_scale=minimum)
    got = []
    for finite in FINITE:
        scale = scale.adjust(jnp.array(finite))
        got.append((float(scale.loss_scale), int(scale.counter)))
    assert got == expected
    assert scale.loss_scale.dtype == jnp.float32 and scale.counter.dtype == jnp.int32


def test_dynamic_loss_scale_under_jit_scan_and_vmap():
    period = 3
    adjust = jax.jit(lambda s, f: s.adjust(f))
    scale = DynamicLossScale(loss_scale=32.0, period=period)
    for finite in FINITE:
        scale = adjust(scale, jnp.array(finite))
    assert (float(scale.loss_scale), int(scale.counter)) == \
        _reference_dynamic(32.0, 0, FINITE, period, 2, 1.0)[-1]

    def body(s, f):
        s = s.adjust(f)
        return s, s.loss_scale
    _, scales = jax.lax.scan(body, DynamicLossScale(32.0, period=period), jnp.array(FINITE))
    np.testing.assert_array_equal(scales, [s for s, _ in
                                           _reference_dynamic(32.0, 0, FINITE, period, 2, 1.0)])

    batch = jax.vmap(lambda s: DynamicLossScale(s, period=2))(jnp.array([4.0, 8.0]))
    batch = jax.vmap(lambda s, f: s.adjust(f))(batch, jnp.array([False, True]))
    np.testing.assert_array_equal(batch.loss_scale, [2.0, 8.0])
    np.testing.assert_array_equal(batch.counter, [0, 1])


def test_dynamic_scale_does_not_grow_to_infinity():
    scale = DynamicLossScale(loss_scale=2.0 ** 127, period=1)
    scale = scale.adjust(jnp.array(True))
    assert float(scale.loss_scale) == 2.0 ** 127


def test_loss_scales_are_pytrees_with_static_hyperparameters():
    scale = DynamicLossScale(period=7, factor=3)
    leaves, treedef = jax.tree.flatten(scale)
    assert len(leaves) == 2
    rebuilt = jax.tree.unflatten(treedef, leaves)
    assert (rebuilt.period, rebuilt.factor, rebuilt.min_loss_scale) == (7, 3.0, 1.0)
    assert jax.tree.leaves(NoOpLossScale()) == []
    assert len(jax.tree.leaves(StaticLossScale(4.0))) == 1


@pytest.mark.parametrize("make", [lambda: StaticLossScale(2.0 ** 15), lambda: DynamicLossScale()])
def test_scaling_recovers_gradients_that_underflow_in_float16(make):
    a = jnp.float16(1e-4)

    def loss(w):                      # float16 compute: d loss / d w = a * a = 1e-8
        return jnp.sum(w.astype(jnp.float16) * a * a).astype(jnp.float32)

    w = jnp.ones(3)
    # 1e-8 is below float16's smallest subnormal (~6e-8): the plain gradient underflows to 0.
    np.testing.assert_array_equal(jax.grad(loss)(w), np.zeros(3))
    loss_scale = make()
    grads = loss_scale.unscale(jax.grad(lambda w: loss_scale.scale(loss(w)))(w))
    assert grads.dtype == jnp.float32
    np.testing.assert_allclose(grads, np.full(3, float(a) ** 2), rtol=1e-2)
    tree = loss_scale.unscale({"g": jnp.ones(2, jnp.float16), "n": jnp.array(3)})
    assert tree["g"].dtype == jnp.float16 and int(tree["n"]) == 3
    np.testing.assert_allclose(np.asarray(tree["g"], np.float32), 2.0 ** -15)


def test_noop_scale_is_identity():
    scale = NoOpLossScale()
    assert scale.scale(TREE) is TREE and scale.unscale(TREE) is TREE
    assert scale.adjust(jnp.array(False)) is scale


def test_select_tree_and_constructors_reject_bad_input():
    with pytest.raises(ValueError, match="select_tree: pred must be a scalar bool"):
        select_tree(jnp.array([True, False]), 1.0, 2.0)
    with pytest.raises(ValueError, match="differ in structure"):
        select_tree(jnp.array(True), {"a": 1.0}, {"b": 1.0})
    with pytest.raises(ValueError, match=r"leaf \['w'\] is float32\[2\] in on_true but float16\[2\]"):
        select_tree(jnp.array(True), {"w": jnp.ones(2)}, {"w": jnp.ones(2, jnp.float16)})
    with pytest.raises(ValueError, match="DynamicLossScale: period must be a positive int"):
        DynamicLossScale(period=0)
    with pytest.raises(ValueError, match="DynamicLossScale: factor must be > 1"):
        DynamicLossScale(factor=1)
    with pytest.raises(ValueError, match="StaticLossScale: loss_scale must be > 0"):
        StaticLossScale(0.0)


def test_mixed_float16_uses_dynamic_loss_scaling_and_skips_overflow():
    # An initial scale of 2**24 overflows float16 gradients: those steps are skipped and
    # the scale halves until the gradients fit; training goes on with float32 params.
    result = fit(precision="mixed_float16", loss_scale=DynamicLossScale(2.0 ** 24), epochs=4)
    state = result.opt_state
    assert isinstance(state, fnn.train.LossScaledState)
    assert sum(result.history["skipped"]) == int(state.skipped) > 0
    assert float(state.loss_scale.loss_scale) == 2.0 ** 24 / 2 ** int(state.skipped)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(result.params))
    assert all(np.isfinite(result.history["loss"]))
    default = fit(precision="mixed_float16")
    assert float(default.opt_state.loss_scale.loss_scale) == 2.0 ** 15


def test_static_loss_scale_gives_the_unscaled_update():
    opt = fnn.optim.sgd(0.1)
    scaled_opt = fnn.train.loss_scaled(opt, StaticLossScale(1024.0))
    batch = (jnp.asarray(X), jnp.asarray(Y))
    plain = make_step(MODEL, LOSS, opt)(PARAMS, STATE, opt.init(PARAMS), batch, KEY)
    scaled = make_step(MODEL, LOSS, scaled_opt)(
        PARAMS, STATE, scaled_opt.init(PARAMS), batch, KEY)
    allclose(scaled[0], plain[0], rtol=1e-6, atol=1e-7)
    assert float(scaled[3]["loss"]) == float(plain[3]["loss"])
