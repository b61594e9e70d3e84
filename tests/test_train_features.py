"""Gradient accumulation, mixed precision, loss scaling, augmentation, strategies, the pure pieces."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.train.precision import DynamicLossScale, StaticLossScale

# A deterministic model (no dropout), so results do not depend on how keys are split.
MODEL = fnn.Sequential([fnn.Dense(6), fnn.Activation("tanh"), fnn.Dense(3)])
RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 20)
LOSS = "sparse_softmax_cross_entropy"
KEY = jax.random.key(3)
PARAMS, STATE = MODEL.init(KEY, X)


def make_step(*args, **kwargs):
    """A train step that never donates: these tests feed PARAMS to several steps."""
    return fnn.train.make_train_step(*args, donate=False, **kwargs)


def fit(**overrides):
    args = dict(epochs=2, batch_size=8, key=KEY, progress=False)
    args.update(overrides)
    return fnn.fit(args.pop("model", MODEL), args.pop("loss", LOSS),
                   args.pop("optimizer", fnn.optim.adam(0.01)), args.pop("data", (X, Y)), **args)


def allclose(a, b, **tol):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, **tol), a, b)


@pytest.mark.parametrize("n, k", [(8, 4), (10, 4), (3, 3)])
def test_accumulated_micro_batches_equal_one_big_batch(n, k):
    # n=10, k=4: micro-batches of ceil(10/4)=3, 3, 3 and 1 examples, weighted by size.
    opt = fnn.optim.sgd(0.5)
    batch = (jnp.asarray(X[:n]), jnp.asarray(Y[:n]))
    one = make_step(MODEL, LOSS, opt, metrics=["accuracy"])
    acc = make_step(MODEL, LOSS, opt, metrics=["accuracy"], accumulation_steps=k)
    p1, _, _, m1 = one(PARAMS, STATE, opt.init(PARAMS), batch, KEY)
    pk, _, _, mk = acc(PARAMS, STATE, opt.init(PARAMS), batch, KEY)
    allclose(pk, p1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mk["loss"], m1["loss"], rtol=1e-5)
    np.testing.assert_allclose(mk["accuracy"], m1["accuracy"], rtol=1e-6)


def test_fit_with_accumulation_matches_fit_without():
    plain = fit()
    accumulated = fit(accumulation_steps=2)
    allclose(accumulated.params, plain.params, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(accumulated.history["loss"], plain.history["loss"], rtol=1e-5)


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


def test_hand_written_loop_from_make_train_step_reproduces_fit(monkeypatch):
    # As on a GPU: make_train_step and fit donate by default (fit copies what it is given).
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    opt = fnn.optim.adam(0.01)
    step = fnn.train.make_train_step(MODEL, LOSS, opt)
    init_key, loop_key = jax.random.split(KEY)
    params, state = MODEL.init(init_key, X)
    opt_state = opt.init(params)
    first = (params, opt_state)
    for epoch in range(2):
        shuffle_key, steps_key = jax.random.split(jax.random.fold_in(loop_key, epoch))
        perm = np.asarray(jax.random.permutation(shuffle_key, len(X)))
        for i, start in enumerate(range(0, len(X), 8)):
            idx = perm[start:start + 8]
            params, state, opt_state, _ = step(params, state, opt_state, (X[idx], Y[idx]),
                                               jax.random.fold_in(steps_key, i))
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(first))  # donated
    given = MODEL.init(init_key, X)[0]
    result = fit(optimizer=opt, params=given)
    jax.tree.map(np.testing.assert_array_equal, result.params, params)
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(given))  # fit copied it


def test_make_epoch_reports_metrics_on_device():
    opt = fnn.optim.adam(0.01)
    epoch = fnn.train.make_epoch(MODEL, LOSS, opt, batch_size=8, metrics=["accuracy"])
    _, _, _, metrics = epoch(PARAMS, STATE, opt.init(PARAMS), (X, Y), KEY)
    assert all(isinstance(v, jax.Array) for v in metrics.values())
    assert set(metrics) == {"loss", "accuracy", "learning_rate", "nonfinite_step",
                            "params_finite"}
    assert 0.0 <= float(metrics["accuracy"]) <= 1.0 and int(metrics["nonfinite_step"]) == -1
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(PARAMS))  # CPU: no donation
    donating = fnn.train.make_epoch(MODEL, LOSS, opt, batch_size=8, metrics=["accuracy"],
                                    donate=True)
    params = jax.tree.map(jnp.copy, PARAMS)
    out = donating(params, STATE, opt.init(params), (X, Y), KEY)
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(params))
    allclose(out[0], epoch(PARAMS, STATE, opt.init(PARAMS), (X, Y), KEY)[0], rtol=0, atol=0)


@dataclasses.dataclass(frozen=True)
class FakeConv(fnn.Layer):
    """Stands in for a convolution: marks itself slow inside XLA loops on CPU."""

    loop_friendly_on_cpu = False

    def init(self, key, x):
        return {}, {}

    def apply(self, params, state, x, *, key=None, train=False):
        return x, state


def test_strategy_prefers_unrolled_chunks_for_conv_models_on_cpu():
    from fnn.train import strategy
    conv_model = fnn.Sequential([FakeConv(), fnn.Sequential([FakeConv(), fnn.Dense(3)])])
    assert strategy.prefers_unrolled(conv_model, "cpu")
    assert not strategy.prefers_unrolled(conv_model, "gpu")
    assert not strategy.prefers_unrolled(MODEL, "cpu")
    assert strategy.resolve(conv_model, None, None, "cpu") == ("unroll", 1)  # step by step
    assert strategy.resolve(conv_model, "unroll", None, "cpu") == ("unroll", strategy.DEFAULT_UNROLL)
    assert strategy.resolve(conv_model, None, None, "tpu") == ("scan", None)
    assert strategy.resolve(MODEL, "scan", 4, "cpu") == ("scan", 4)
    # A conv-like model trains with fit on CPU through the unrolled path.
    result = fit(model=fnn.Sequential([FakeConv(), fnn.Dense(3)]), epochs=1)
    assert np.isfinite(result.history["loss"][0])


def test_compilation_cache_writes_programs(tmp_path):
    cache = fnn.train.enable_compilation_cache(tmp_path / "jax-cache")
    try:
        jax.jit(lambda a: jnp.sin(a) * 3.0 + 1.5)(jnp.arange(7.0)).block_until_ready()
        assert os.listdir(cache)
    finally:
        fnn.train.disable_compilation_cache()
    with pytest.raises(ValueError, match="min_compile_time_secs"):
        fnn.train.enable_compilation_cache(tmp_path, min_compile_time_secs=-1)


def test_train_step_vmaps_over_learning_rates_in_one_compilation():
    # A sweep: the learning rate lives in opt_state, so one vmapped step trains both.
    step = make_step(MODEL, LOSS, fnn.optim.adam(1e-2))
    states = [fnn.optim.adam(lr).init(PARAMS) for lr in (1e-2, 1e-3)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *states)
    batch = (jnp.asarray(X), jnp.asarray(Y))
    params, _, _, metrics = jax.vmap(step, in_axes=(None, None, 0, None, None))(
        PARAMS, STATE, stacked, batch, KEY)
    np.testing.assert_allclose(metrics["learning_rate"], [1e-2, 1e-3], rtol=1e-6)
    for i, opt_state in enumerate(states):
        single = step(PARAMS, STATE, opt_state, batch, KEY)[0]
        allclose(jax.tree.map(lambda a: a[i], params), single, rtol=1e-6, atol=1e-7)


@dataclasses.dataclass(frozen=True)
class CountExamples(fnn.Layer):
    """Identity with state: counts the training examples it has seen (like batch statistics)
    and the largest (micro-)batch it was applied to."""

    def init(self, key, x):
        return {}, {"seen": jnp.zeros([], jnp.float32), "largest": jnp.zeros([], jnp.float32)}

    def apply(self, params, state, x, *, key=None, train=False):
        if train:
            state = {"seen": state["seen"] + x.shape[0],
                     "largest": jnp.maximum(state["largest"], x.shape[0])}
        return x, state


@pytest.mark.parametrize("accumulation_steps", [1, 3])
def test_model_state_is_threaded_through_every_step_and_micro_batch(accumulation_steps):
    model = fnn.Sequential([CountExamples(), fnn.Dense(3)])
    result = fit(model=model, epochs=2, accumulation_steps=accumulation_steps,
                 validation_data=(X[:5], Y[:5]))
    assert float(result.state["0"]["seen"]) == 2 * len(X)  # 8 + 8 + 4 per epoch; not val
    # Batches of 8 in micro-batches of ceil(8 / 3) = 3: the model never sees more at once.
    assert float(result.state["0"]["largest"]) == (8 if accumulation_steps == 1 else 3)
    params, _ = model.init(KEY, X)
    given = fit(model=model, epochs=1, params=params)       # state=None: from model.init
    assert float(given.state["0"]["seen"]) == len(X)
