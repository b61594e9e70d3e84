"""Augmentations against numpy references (np.flip, np.roll + zeroing, noise statistics)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.train import augment as A

RNG = np.random.default_rng(0)
IMAGES = RNG.normal(size=(64, 5, 6, 2)).astype(np.float32)   # NHWC, all pixels distinct
import fnn
from train_setup import KEY, LOSS, MODEL, PARAMS, STATE, X, Y, allclose, fit, make_step


def _shift_reference(image, dy, dx):
    """np.roll by (dy, dx) then zero the rows/columns that wrapped around."""
    out = np.roll(image, (dy, dx), axis=(0, 1))
    if dy > 0:
        out[:dy] = 0
    elif dy < 0:
        out[dy:] = 0
    if dx > 0:
        out[:, :dx] = 0
    elif dx < 0:
        out[:, dx:] = 0
    return out


@pytest.mark.parametrize("axis,np_axis", [(2, 1), (1, 0), (-2, 1), (3, 2)])
def test_flip_each_example_is_either_unchanged_or_np_flip(axis, np_axis):
    out = np.asarray(A.random_flip(axis=axis)(jax.random.key(1), IMAGES))
    flipped = 0
    for image, result in zip(IMAGES, out):
        if np.array_equal(result, np.flip(image, np_axis)):
            flipped += 1
        else:
            np.testing.assert_array_equal(result, image)
    assert 16 <= flipped <= 48        # Binomial(64, 0.5): mean 32, sd 4


def test_flip_probability_extremes_and_rate():
    x = jnp.asarray(IMAGES)
    np.testing.assert_array_equal(A.random_flip(prob=0.0)(jax.random.key(0), x), IMAGES)
    np.testing.assert_array_equal(A.random_flip(prob=1.0)(jax.random.key(0), x),
                                  np.flip(IMAGES, 2))
    many = np.tile(np.arange(2.0, dtype=np.float32).reshape(1, 2), (4000, 1))
    out = np.asarray(A.random_flip(axis=1, prob=0.25)(jax.random.key(2), many))
    assert abs((out[:, 0] == 1.0).mean() - 0.25) < 0.03


def test_flip_works_on_flat_features():
    x = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    out = A.random_flip(axis=1, prob=1.0)(jax.random.key(0), x)
    np.testing.assert_array_equal(out, x[:, ::-1])


@pytest.mark.parametrize("max_shift", [1, (2, 0), (0, 3)])
def test_shift_each_example_matches_a_numpy_roll_and_zero_fill(max_shift):
    my, mx = (max_shift, max_shift) if isinstance(max_shift, int) else max_shift
    out = np.asarray(A.random_shift(max_shift)(jax.random.key(3), IMAGES))
    seen = set()
    for image, result in zip(IMAGES, out):
        matches = [(dy, dx) for dy, dx in itertools.product(range(-my, my + 1), range(-mx, mx + 1))
                   if np.array_equal(result, _shift_reference(image, dy, dx))]
        assert len(matches) == 1, matches
        seen.add(matches[0])
    assert len(seen) == (2 * my + 1) * (2 * mx + 1)   # every shift drawn in 64 examples


def test_shift_zero_is_identity_and_preserves_dtype():
    ints = jnp.arange(2 * 3 * 3 * 1, dtype=jnp.int32).reshape(2, 3, 3, 1)
    out = A.random_shift(0)(jax.random.key(0), ints)
    assert out.dtype == jnp.int32
    np.testing.assert_array_equal(out, ints)


def test_noise_statistics_any_rank_and_dtype():
    noise = A.gaussian_noise(0.5)
    for shape in [(20000,), (10, 20, 10, 10)]:
        out = np.asarray(noise(jax.random.key(4), jnp.ones(shape)))
        assert out.shape == shape
        assert abs(out.mean() - 1.0) < 0.02 and abs(out.std() - 0.5) < 0.02
    half = noise(jax.random.key(4), jnp.ones((8, 3), jnp.bfloat16))
    assert half.dtype == jnp.bfloat16
    np.testing.assert_array_equal(A.gaussian_noise(0.0)(jax.random.key(0), IMAGES), IMAGES)


def test_same_key_same_result_new_key_new_result():
    aug = A.compose(A.random_flip(), A.random_shift(1), A.gaussian_noise(0.1))
    a = aug(jax.random.key(7), IMAGES)
    np.testing.assert_array_equal(a, aug(jax.random.key(7), IMAGES))
    assert not np.array_equal(a, aug(jax.random.key(8), IMAGES))


def test_compose_applies_in_order_with_split_keys():
    flip, shift = A.random_flip(prob=1.0), A.random_shift(1)
    key = jax.random.key(9)
    k1, k2 = jax.random.split(key)
    np.testing.assert_array_equal(A.compose(flip, shift)(key, IMAGES), shift(k2, flip(k1, IMAGES)))
    np.testing.assert_array_equal(A.compose()(key, IMAGES), IMAGES)


def test_jit_compiles_once_and_vmap_and_grad_work():
    traces = []
    aug = A.compose(A.random_flip(), A.random_shift(1), A.gaussian_noise(0.1))

    def counted(key, x):
        traces.append(1)
        return aug(key, x)

    jitted = jax.jit(counted)
    first = jitted(jax.random.key(0), IMAGES)
    np.testing.assert_allclose(first, aug(jax.random.key(0), IMAGES), rtol=1e-6, atol=1e-6)
    jitted(jax.random.key(1), IMAGES + 1.0)
    assert len(traces) == 1
    keys = jax.random.split(jax.random.key(0), 3)
    stacked = jnp.stack([IMAGES[:4]] * 3)
    assert jax.vmap(aug)(keys, stacked).shape == (3, 4, 5, 6, 2)
    weights = jnp.asarray(RNG.normal(size=IMAGES.shape), jnp.float32)
    grad = jax.grad(lambda x: jnp.sum(A.random_flip(prob=1.0)(jax.random.key(0), x) * weights))
    np.testing.assert_allclose(grad(jnp.asarray(IMAGES)), np.flip(np.asarray(weights), 2))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="random_flip: prob must be in"):
        A.random_flip(prob=1.5)
    with pytest.raises(TypeError, match="random_flip: axis must be an int"):
        A.random_flip(axis=1.0)
    with pytest.raises(ValueError, match=r"random_flip: axis=0 .*\(64, 5, 6, 2\)"):
        A.random_flip(axis=0)(jax.random.key(0), IMAGES)
    with pytest.raises(ValueError, match="random_shift: max_shift must be"):
        A.random_shift(-1)
    with pytest.raises(ValueError, match=r"random_shift: expected images .*NHWC.*\(4, 64\)"):
        A.random_shift(1)(jax.random.key(0), jnp.ones((4, 64)))
    with pytest.raises(ValueError, match="random_shift: max_shift=.*smaller than"):
        A.random_shift(5)(jax.random.key(0), IMAGES)
    with pytest.raises(ValueError, match="gaussian_noise: stddev must be >= 0"):
        A.gaussian_noise(-0.1)
    with pytest.raises(TypeError, match="gaussian_noise: expected a floating array.*int32"):
        A.gaussian_noise(0.1)(jax.random.key(0), jnp.ones((2, 2), jnp.int32))
    with pytest.raises(TypeError, match="compose: augmentation 1 is not callable"):
        A.compose(A.gaussian_noise(0.1), 3)


def test_augmentation_is_applied_to_training_batches_only():
    negate = lambda key, x: -x  # noqa: E731  (deterministic: ignores its key)
    augmented = fit(augment=negate, validation_data=(X, Y))
    on_negated = fit(data=(-X, Y))
    plain = fit()
    jax.tree.map(np.testing.assert_array_equal, augmented.params, on_negated.params)
    assert not np.allclose(augmented.params["0"]["w"], plain.params["0"]["w"])
    evaluated = fnn.evaluate(MODEL, augmented.params, augmented.state, (X, Y), loss=LOSS)
    assert augmented.history["val_loss"][-1] == evaluated["loss"]


def test_random_augmentation_uses_the_documented_key():
    # The step splits its key: augment_key, model_key = jax.random.split(step_key).
    noise = fnn.train.augment.gaussian_noise(0.5)
    opt = fnn.optim.sgd(0.1)
    step = make_step(MODEL, LOSS, opt, augment=noise)
    plain = make_step(MODEL, LOSS, opt)
    batch = (jnp.asarray(X), jnp.asarray(Y))
    augment_key, _ = jax.random.split(KEY)
    expected = plain(PARAMS, STATE, opt.init(PARAMS), (noise(augment_key, batch[0]), batch[1]),
                     KEY)
    got = step(PARAMS, STATE, opt.init(PARAMS), batch, KEY)
    # Rounding only (noise drawn inside vs outside the step); another key would differ by ~1e-2.
    allclose(got[0], expected[0], rtol=1e-5, atol=1e-8)
    other = plain(PARAMS, STATE, opt.init(PARAMS), (noise(KEY, batch[0]), batch[1]), KEY)
    assert not np.allclose(other[0]["0"]["w"], got[0]["0"]["w"], rtol=1e-3)
