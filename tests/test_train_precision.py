"""Mixed precision: casting rules, loss scales against a hand-written Python reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.train.precision import (DynamicLossScale, NoOpLossScale, Policy, StaticLossScale,
                                 all_finite, get_policy, select_tree)

F32, BF16, F16 = jnp.dtype("float32"), jnp.dtype("bfloat16"), jnp.dtype("float16")
TREE = {"w": jnp.ones((2, 3)), "b": np.zeros(3, np.float32), "step": jnp.array(4),
        "mask": jnp.array([True, False]), "half": jnp.ones(2, jnp.float16)}


def test_policy_casts_floating_leaves_only():
    policy = Policy(param_dtype=F32, compute_dtype=BF16, output_dtype=F16)
    for cast, dtype in [(policy.cast_to_compute, BF16), (policy.cast_to_output, F16),
                        (policy.cast_to_param, F32)]:
        out = cast(TREE)
        assert out["w"].dtype == dtype and out["b"].dtype == dtype and out["half"].dtype == dtype
        assert out["step"].dtype == jnp.int32 and out["mask"].dtype == jnp.bool_
        assert out["step"] is TREE["step"] and out["mask"] is TREE["mask"]
    assert policy.cast_to_param(TREE)["w"] is TREE["w"]      # already float32: no copy
    np.testing.assert_array_equal(policy.cast_to_compute(TREE)["w"].astype(F32), TREE["w"])


def test_policy_is_hashable_and_a_static_jit_argument():
    a, b = Policy(compute_dtype="bf16"), Policy(compute_dtype=jnp.bfloat16)
    assert a == b and hash(a) == hash(b) and a != Policy()
    traces = []

    def f(x, policy):
        traces.append(policy)
        return policy.cast_to_output(policy.cast_to_compute(x) * 2)

    jitted = jax.jit(f, static_argnums=1)
    out = jitted(jnp.ones(3), a)
    jitted(jnp.zeros(3), b)
    assert out.dtype == F32 and len(traces) == 1
    assert jax.vmap(lambda x: a.cast_to_compute(x))(jnp.ones((4, 2))).dtype == BF16


@pytest.mark.parametrize("spec,expected", [
    ("float32", (F32, F32, F32)),
    ("bfloat16", (BF16, BF16, BF16)),
    ("half", (F16, F16, F16)),
    ("mixed_bfloat16", (F32, BF16, F32)),
    ("mixed_float16", (F32, F16, F32)),
    ("params=float32,compute=bfloat16,output=float32", (F32, BF16, F32)),
    ("p=f32, c=f16", (F32, F16, F16)),
    ("compute=bf16", (F32, BF16, BF16)),
    ("output=float16", (F32, F32, F16)),
])
def test_get_policy_grammar(spec, expected):
    policy = get_policy(spec)
    assert (policy.param_dtype, policy.compute_dtype, policy.output_dtype) == expected
    assert get_policy(policy) is policy


def test_get_policy_errors_are_clear():
    with pytest.raises(ValueError, match=r"get_policy\('float8'\): unknown dtype name 'float8'"):
        get_policy("float8")
    with pytest.raises(ValueError, match="cannot parse 'weights=f32'"):
        get_policy("weights=f32,compute=bf16")
    with pytest.raises(ValueError, match="'compute' is given twice"):
        get_policy("c=bf16,compute=f16")
    with pytest.raises(TypeError, match="get_policy: expected a string or a Policy, got 3"):
        get_policy(3)
    with pytest.raises(TypeError, match="Policy.compute_dtype: expected a floating dtype, got int32"):
        Policy(compute_dtype=jnp.int32)
    with pytest.raises(ValueError, match="float64 needs"):
        get_policy("float64")


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


def test_all_finite_and_select_tree():
    assert bool(all_finite(TREE)) and bool(all_finite({}))
    assert not bool(all_finite({"a": jnp.array([1.0, jnp.nan]), "b": jnp.ones(2)}))
    assert not bool(jax.jit(all_finite)([jnp.ones(2), jnp.array(-jnp.inf, jnp.float16)]))
    new, old = {"w": jnp.ones(2), "n": jnp.array(1)}, {"w": jnp.zeros(2), "n": jnp.array(0)}
    picked = jax.jit(select_tree)(jnp.array(False), new, old)
    np.testing.assert_array_equal(picked["w"], [0.0, 0.0])
    assert int(select_tree(jnp.array(True), new, old)["n"]) == 1


def test_select_tree_and_constructors_reject_bad_input():
    with pytest.raises(ValueError, match="select_tree: pred must be a scalar bool"):
        select_tree(jnp.array([True, False]), 1.0, 2.0)
    with pytest.raises(ValueError, match="differ in structure"):
        select_tree(jnp.array(True), {"a": 1.0}, {"b": 1.0})
    with pytest.raises(ValueError, match=r"leaf \['w'\] is float32\[2\] in on_true but float16\[2\]"):
        select_tree(jnp.array(True), {"w": jnp.ones(2)}, {"w": jnp.ones(2, jnp.float16)})
    with pytest.raises(ValueError, match="DynamicLossScale: period must be an int >= 1"):
        DynamicLossScale(period=0)
    with pytest.raises(ValueError, match="DynamicLossScale: factor must be > 1"):
        DynamicLossScale(factor=1)
    with pytest.raises(ValueError, match="StaticLossScale: loss_scale must be > 0"):
        StaticLossScale(0.0)
