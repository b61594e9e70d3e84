"""Mixed precision: which dtype params, computation and outputs use."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.optim import all_finite
from fnn.train.precision import Policy, get_policy, select_tree

TREE = {"w": jnp.ones((2, 3)), "b": np.zeros(3, np.float32), "step": jnp.array(4),
        "mask": jnp.array([True, False]), "half": jnp.ones(2, jnp.float16)}

F32, BF16, F16 = jnp.dtype("float32"), jnp.dtype("bfloat16"), jnp.dtype("float16")
from train_setup import fit


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


def test_all_finite_and_select_tree():
    assert bool(all_finite(TREE)) and bool(all_finite({}))
    assert not bool(all_finite({"a": jnp.array([1.0, jnp.nan]), "b": jnp.ones(2)}))
    assert not bool(jax.jit(all_finite)([jnp.ones(2), jnp.array(-jnp.inf, jnp.float16)]))
    new, old = {"w": jnp.ones(2), "n": jnp.array(1)}, {"w": jnp.zeros(2), "n": jnp.array(0)}
    picked = jax.jit(select_tree)(jnp.array(False), new, old)
    np.testing.assert_array_equal(picked["w"], [0.0, 0.0])
    assert int(select_tree(jnp.array(True), new, old)["n"]) == 1


def test_mixed_bfloat16_computes_in_bfloat16_and_keeps_float32_params():
    seen = []

    def linear(params, x):
        seen.append((x.dtype, params["w"].dtype))
        return x @ params["w"]

    params = {"w": jnp.zeros((5, 3))}
    result = fit(model=linear, params=params, precision="mixed_bfloat16", epochs=5)
    assert (jnp.bfloat16, jnp.bfloat16) in seen
    assert result.params["w"].dtype == jnp.float32
    assert result.history["loss"][-1] < result.history["loss"][0]
    reference = fit(model=linear, params=params, epochs=5)
    np.testing.assert_allclose(result.history["loss"], reference.history["loss"], rtol=0.05)
