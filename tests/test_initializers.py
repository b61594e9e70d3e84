"""fnn.initializers: statistics against the formulas, fans, determinism, dtypes, get()."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import initializers as init_lib

KEY = jax.random.key(0)
SHAPE_2D = (400, 300)          # fan_in 400, fan_out 300, 120,000 samples
SHAPE_4D = (3, 3, 40, 30)      # receptive field 9: fan_in 360, fan_out 270


def _fans_reference(shape):
    """The rule written out by hand (independent of compute_fans)."""
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


# name -> (numerator of the variance, which n, distribution)
SCALED = {
    "he_normal": (2.0, "in", "normal"),
    "he_uniform": (2.0, "in", "uniform"),
    "glorot_normal": (2.0, "sum", "normal"),      # 2 / (fan_in + fan_out)
    "glorot_uniform": (2.0, "sum", "uniform"),
    "lecun_normal": (1.0, "in", "normal"),
    "lecun_uniform": (1.0, "in", "uniform"),
}


def _expected_std(name, shape):
    numerator, which, _ = SCALED[name]
    fan_in, fan_out = _fans_reference(shape)
    return math.sqrt(numerator / (fan_in if which == "in" else fan_in + fan_out))


@pytest.mark.parametrize("shape", [SHAPE_2D, SHAPE_4D], ids=["2d", "4d"])
@pytest.mark.parametrize("name", sorted(SCALED))
def test_scaled_initializer_statistics(name, shape):
    raw = getattr(init_lib, name)()(KEY, shape)
    assert raw.shape == shape and raw.dtype == jnp.float32
    w = np.asarray(raw, np.float64)
    std = _expected_std(name, shape)
    assert abs(w.mean()) < 5 * std / math.sqrt(w.size)
    assert w.std() == pytest.approx(std, rel=0.02)
    if SCALED[name][2] == "uniform":
        limit = math.sqrt(3.0) * std           # U(-l, l) has std l / sqrt(3)
        assert w.min() >= -limit and w.max() <= limit
        assert w.max() > 0.99 * limit and w.min() < -0.99 * limit
    else:                                       # untruncated: tails beyond 3 std exist
        assert np.abs(w).max() > 3.5 * std
        assert np.mean(np.abs(w) < std) == pytest.approx(0.6827, abs=0.01)


def test_notes_he_rule_variance_two_over_n_previous_layer():
    # notes: W[l] = randn(shape) * sqrt(2 / n[l-1]) with n[l-1] = 512 inputs
    w = np.asarray(init_lib.he_normal()(KEY, (512, 256)))
    assert w.var() == pytest.approx(2 / 512, rel=0.03)


def _truncated_std_reference(a=2.0):
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(a / math.sqrt(2))           # Phi(a) - Phi(-a)
    return math.sqrt(1 - 2 * a * phi / mass)


def test_normal_uniform_truncated_statistics():
    n = (200, 500)
    w = np.asarray(init_lib.normal(0.3)(KEY, n), np.float64)
    assert w.std() == pytest.approx(0.3, rel=0.02) and abs(w.mean()) < 0.01
    w = np.asarray(init_lib.uniform(0.2)(KEY, n), np.float64)
    assert w.min() >= -0.2 and w.max() < 0.2 and w.min() < -0.199 and w.max() > 0.199
    assert w.std() == pytest.approx(0.2 / math.sqrt(3), rel=0.02)
    w = np.asarray(init_lib.truncated_normal(0.5)(KEY, n), np.float64)
    assert np.abs(w).max() <= 1.0 and np.abs(w).max() > 0.99
    assert w.std() == pytest.approx(0.5 * _truncated_std_reference(), rel=0.02)


def test_default_hyperparameters_documented():
    assert init_lib.normal() == init_lib.normal(1e-2)
    assert init_lib.uniform() == init_lib.uniform(1e-2)
    assert init_lib.truncated_normal() == init_lib.truncated_normal(1e-2)


def test_variance_scaling_truncated_has_requested_variance():
    init = init_lib.variance_scaling(2.0, "fan_out", "truncated_normal")
    w = np.asarray(init(KEY, SHAPE_2D), np.float64)
    assert w.var() == pytest.approx(2.0 / 300, rel=0.03)
    sigma = math.sqrt(2.0 / 300) / _truncated_std_reference()
    assert np.abs(w).max() <= 2 * sigma * (1 + 1e-6)


def test_constants():
    assert np.all(np.asarray(init_lib.zeros()(KEY, (2, 3))) == 0)
    assert np.all(np.asarray(init_lib.ones()(KEY, (4,))) == 1)
    assert np.all(np.asarray(init_lib.constant(-0.5)(KEY, (2, 2))) == -0.5)
    assert init_lib.zeros()(KEY, (2,), jnp.int32).dtype == jnp.int32


@pytest.mark.parametrize("shape,fans", [
    ((), (1, 1)), ((7,), (7, 7)), ((3, 4), (3, 4)), ((5, 16, 32), (80, 160)),
    ((3, 3, 16, 32), (144, 288)), (6, (6, 6))])
def test_compute_fans(shape, fans):
    assert init_lib.compute_fans(shape) == fans


@pytest.mark.parametrize("name", sorted(SCALED) + ["normal", "uniform", "truncated_normal"])
def test_deterministic_given_key_and_dtype_honoured(name):
    init = init_lib.get(name)
    a, b = init(KEY, (8, 4)), init(KEY, (8, 4))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    c = init(jax.random.key(1), (8, 4))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    assert a.dtype == jnp.float32 and a.shape == (8, 4)
    for dtype in (jnp.bfloat16, jnp.float16):   # traced only: the dtype needs no computation
        out = jax.eval_shape(functools.partial(init, shape=(8, 4), dtype=dtype), KEY)
        assert out.dtype == dtype and out.shape == (8, 4)
    with pytest.raises(TypeError, match=rf"initializers.{name}: dtype must be a floating type, "
                                        "got int32"):
        init(KEY, (8, 4), jnp.int32)


def test_works_under_jit_and_vmap_and_with_raw_keys():
    init = init_lib.he_uniform()
    w = jax.jit(init, static_argnums=1)(KEY, (3, 2))
    np.testing.assert_array_equal(np.asarray(w), np.asarray(init(KEY, (3, 2))))
    ws = jax.vmap(lambda k: init(k, (3, 2)))(jax.random.split(KEY, 4))
    assert ws.shape == (4, 3, 2)
    assert init(jax.random.PRNGKey(0), (3, 2)).shape == (3, 2)


def test_initializers_are_values_hashable_and_readable():
    assert init_lib.he_normal() == init_lib.he_normal()
    assert hash(init_lib.glorot_uniform()) == hash(init_lib.glorot_uniform())
    assert init_lib.he_normal() != init_lib.he_uniform()
    assert init_lib.he_normal() == init_lib.variance_scaling(2.0, "fan_in", "normal")
    assert repr(init_lib.he_normal()) == "he_normal()"
    assert repr(init_lib.constant(3.0)) == "constant(3.0)" and repr(init_lib.ones()) == "ones()"
    assert repr(init_lib.uniform(0.1)) == "uniform(scale=0.1)"
    assert repr(init_lib.truncated_normal()) == "truncated_normal(stddev=0.01)"
    assert init_lib.normal(0.1) != init_lib.truncated_normal(0.1)


def test_get_names_aliases_factories_and_errors():
    assert init_lib.get("he_normal") == init_lib.he_normal()
    assert init_lib.get("Xavier-Uniform") == init_lib.glorot_uniform()
    assert init_lib.get("kaiming_uniform") == init_lib.he_uniform()
    assert init_lib.get(init_lib.lecun_normal) == init_lib.lecun_normal()
    custom = lambda key, shape, dtype=jnp.float32: jnp.zeros(shape, dtype)  # noqa: E731
    assert init_lib.get(custom) is custom
    with pytest.raises(ValueError, match="unknown initializer 'he_norm'.*glorot_uniform"):
        init_lib.get("he_norm")
    with pytest.raises(TypeError, match="constant needs arguments"):
        init_lib.get(init_lib.constant)
    with pytest.raises(TypeError, match="expected a name or a callable"):
        init_lib.get(3)
    with pytest.raises(ValueError, match="mode"):
        init_lib.variance_scaling(1.0, "fan_sum", "normal")
    with pytest.raises(ValueError, match="distribution"):
        init_lib.variance_scaling(1.0, "fan_in", "cauchy")
