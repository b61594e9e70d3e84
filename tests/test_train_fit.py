"""fit against an independent hand-written loop (bit for bit), batching semantics, no recompilation."""

import importlib
import io
import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from compile_events import programs_built

# Module-level model and data: every test here shares the same compiled programs.
MODEL = fnn.Sequential([fnn.Dense(8), fnn.Activation("relu"), fnn.Dropout(0.25), fnn.Dense(3)])
RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 20)
LOSS = fnn.losses.sparse_softmax_cross_entropy
KEY = jax.random.key(3)


def reference_fit(opt, batch_size, key, epochs, x=X, y=Y, augment=None, drop_remainder=False):
    """The documented training loop written by hand: jax.value_and_grad + opt.update."""
    init_key, loop_key = jax.random.split(key)
    params, _ = MODEL.init(init_key, x)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, xb, yb, k):
        if augment is not None:
            augment_key, k = jax.random.split(k)
            xb = augment(augment_key, xb)

        def objective(p):
            return LOSS(MODEL.apply(p, {}, xb, key=k, train=True)[0], yb)

        loss, grads = jax.value_and_grad(objective)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return fnn.optim.apply_updates(params, updates), opt_state, loss

    n = len(x)
    losses = []
    for epoch in range(epochs):
        shuffle_key, steps_key = jax.random.split(jax.random.fold_in(loop_key, epoch))
        if batch_size is None:
            batches = [np.arange(n)]
        else:
            perm = np.asarray(fnn.train.shuffled_indices(shuffle_key, n))
            stop = n - n % batch_size if drop_remainder else n
            batches = [perm[i:i + batch_size] for i in range(0, stop, batch_size)]
        total = 0.0
        for i, idx in enumerate(batches):
            params, opt_state, loss = step(params, opt_state, x[idx], y[idx],
                                           jax.random.fold_in(steps_key, i))
            total += float(loss) * len(idx)
        losses.append(total / sum(len(b) for b in batches))
    return params, losses


def assert_same_bits(a, b):
    jax.tree.map(lambda u, v: np.testing.assert_array_equal(np.asarray(u), np.asarray(v)), a, b)


@pytest.mark.default_codegen
@pytest.mark.parametrize("batch_size", [None, 1, 8], ids=["batch_gd", "sgd", "minibatch"])
def test_fit_reproduces_hand_written_loop_bit_for_bit(batch_size):
    opt = fnn.optim.adam(0.01)
    expected, losses = reference_fit(opt, batch_size, KEY, 3)
    result = fnn.fit(MODEL, LOSS, opt, (X, Y), epochs=3, batch_size=batch_size, key=KEY,
                     progress=False)
    assert_same_bits(result.params, expected)
    np.testing.assert_allclose(result.history["loss"], losses, rtol=1e-5)
    assert result.state == {}


@pytest.mark.default_codegen
def test_step_strategy_is_bit_exact_and_unroll_within_rounding():
    # A python loop of jitted steps compiles the same step program as the hand-written
    # loop: same bits. The unrolled chunk lets XLA fuse across consecutive steps, which
    # changes float rounding by about one ulp, so it is compared with a tolerance.
    opt = fnn.optim.adam(0.01)
    expected, _ = reference_fit(opt, 8, KEY, 3)
    step = fnn.fit(MODEL, LOSS, opt, (X, Y), epochs=3, batch_size=8, key=KEY, progress=False,
                   strategy="step")
    assert_same_bits(step.params, expected)
    unrolled = fnn.fit(MODEL, LOSS, opt, (X, Y), epochs=3, batch_size=8, key=KEY,
                       progress=False, strategy="unroll", steps_per_dispatch=2)
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6),
                 unrolled.params, expected)


def test_partial_last_batch_is_a_smaller_step_or_dropped():
    # 20 examples, batch 8: steps of 8, 8 and 4 (the mean over the 4 real examples);
    # drop_remainder trains on 16 examples per epoch, a different 16 each epoch.
    opt = fnn.optim.sgd(0.1)
    kept, kept_losses = reference_fit(opt, 8, KEY, 2)
    dropped, dropped_losses = reference_fit(opt, 8, KEY, 2, drop_remainder=True)
    result = fnn.fit(MODEL, LOSS, opt, (X, Y), epochs=2, batch_size=8, key=KEY,
                     progress=False)
    result_drop = fnn.fit(MODEL, LOSS, opt, (X, Y), epochs=2, batch_size=8, key=KEY,
                          progress=False, drop_remainder=True)
    assert_same_bits(result.params, kept)
    assert_same_bits(result_drop.params, dropped)
    np.testing.assert_allclose(result.history["loss"], kept_losses, rtol=1e-5)
    np.testing.assert_allclose(result_drop.history["loss"], dropped_losses, rtol=1e-5)
    assert not np.allclose(jax.tree.leaves(kept)[0], jax.tree.leaves(dropped)[0])


def test_learning_rate_in_history_follows_schedule():
    # sgd with a schedule: the history's learning rate is the last update's of each epoch.
    schedule = fnn.optim.schedules.exponential_decay(0.1, 0.5, steps_per_epoch=3)
    result = fnn.fit(MODEL, LOSS, fnn.optim.sgd(schedule), (X, Y), epochs=3, batch_size=8,
                     key=KEY, progress=False)
    # The schedule: lr(k) = 0.1 * 0.5 ** (k // 3 + 1) at update k; epoch e's last update is
    # k = 3e + 2 (20 examples, batch 8: steps of 8, 8, 4).
    expected = [0.1 * 0.5 ** ((3 * e + 2) // 3 + 1) for e in range(3)]
    np.testing.assert_allclose(result.history["learning_rate"], expected, rtol=1e-6)


def test_no_recompilation_across_epochs_and_fits():
    traces = []

    def counting_loss(predictions, targets):
        traces.append(1)
        return LOSS(predictions, targets)

    first = fnn.fit(MODEL, counting_loss, fnn.optim.adam(1e-3), (X, Y), epochs=1, batch_size=8,
                    key=KEY, progress=False, validation_data=(X[:6], Y[:6]))
    traced = len(traces)
    assert traced > 0
    # A second fit: more epochs (epochs 2-4 reuse epoch 1's program), another learning rate,
    # another key, other data values: nothing is traced again, and no program is compiled
    # (or loaded from the persistent cache): epoch 1's inputs are committed device arrays
    # like the outputs of epoch 0 that epoch 1 gets.
    key = jax.random.key(9)
    with programs_built() as built:
        second = fnn.fit(MODEL, counting_loss, fnn.optim.adam(3e-4), (X + 1.0, Y), epochs=4,
                         batch_size=8, key=key, progress=False,
                         validation_data=(X[6:12], Y[6:12]))
    assert len(traces) == traced and built == []
    assert len(second.history["loss"]) == 4 and len(first.history["loss"]) == 1
    np.testing.assert_allclose(second.history["learning_rate"], 3e-4, rtol=1e-6)


def test_user_pure_function_trains_with_fit():
    # Linear regression written as a plain function of (params, x): y = x w + b.
    def linear(params, x):
        return x @ params["w"] + params["b"]

    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    w_true = np.array([[1.0], [-2.0], [0.5]], np.float32)
    y = x @ w_true + 0.3
    params = {"w": jnp.zeros((3, 1)), "b": jnp.zeros(())}
    result = fnn.fit(linear, "mse", fnn.optim.sgd(0.1), (x, y), epochs=60, batch_size=None,
                     key=KEY, params=params, progress=False)
    np.testing.assert_allclose(result.params["w"], w_true, atol=1e-3)
    np.testing.assert_allclose(result.params["b"], 0.3, atol=1e-3)
    np.testing.assert_array_equal(params["w"], 0.0)  # the caller's arrays are untouched
    with pytest.raises(ValueError, match="params="):
        fnn.fit(linear, "mse", fnn.optim.sgd(0.1), (x, y), epochs=1, batch_size=None, key=KEY,
                progress=False)


def test_fine_tuning_continues_from_given_params_and_opt_state():
    opt = fnn.optim.adam(0.01)
    expected, _ = reference_fit(opt, 8, KEY, 3)
    once = fnn.fit(MODEL, LOSS, opt, (X, Y), epochs=3, batch_size=8, key=KEY, progress=False)
    again = fnn.fit(MODEL, LOSS, opt, (X, Y), epochs=1, batch_size=8, key=KEY,
                    params=once.params, state=once.state, opt_state=once.opt_state,
                    progress=False)
    assert_same_bits(once.params, expected)  # fit did not consume the params it returned
    count = fnn.optim.find_states(again.opt_state, fnn.optim.ScaleByAdamState)[0].count
    assert int(count) == 3 * 3 + 3  # 3 steps (8, 8, 4 examples) per epoch


def test_convergence_under_jit_small_mlp():
    # Two interleaved half-moons-like blobs: an MLP must reach a low loss and high accuracy.
    rng = np.random.default_rng(2)
    t = rng.uniform(0, np.pi, 200)
    label = rng.integers(0, 2, 200)
    x = np.stack([np.cos(t) + label, np.sin(t) * (1 - 2 * label) + 0.5 * label], 1)
    x = (x + 0.05 * rng.normal(size=x.shape)).astype(np.float32)
    model = fnn.Sequential([fnn.Dense(16), fnn.Activation("tanh"), fnn.Dense(2)])
    result = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(0.03), (x, label),
                     epochs=40, batch_size=32, key=KEY, metrics=["accuracy"], progress=False)
    assert result.history["loss"][-1] < 0.1
    assert result.history["accuracy"][-1] > 0.97
    assert all(isinstance(v, float) for v in result.history["loss"])


def test_progress_false_prints_nothing(capsys):
    fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (X, Y), epochs=2, batch_size=8, key=KEY,
            progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_bar_shows_loss_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (X, Y), epochs=2, batch_size=8, key=KEY,
            progress=True)
    # A StringIO has no terminal size (as under `script`): the bar falls back to 120 columns.
    text = err.getvalue()            # the numbers go on the line under the bar
    assert "2/2" in text and "loss " in text and "lr 0.01" in text
    quiet = Terminal()
    with contextlib.redirect_stderr(quiet):
        fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (X, Y), epochs=2, batch_size=8, key=KEY,
                progress=False)
    assert quiet.getvalue() == ""


def test_donating_fit_keeps_callers_arrays_and_gives_the_same_result(monkeypatch):
    # fit donates its buffers on GPU/TPU only; force it here to test that path on CPU.
    opt = fnn.optim.adam(0.05)
    params, _ = MODEL.init(KEY, X)
    opt_state = opt.init(params)
    args = dict(epochs=6, batch_size=8, key=KEY, params=params, opt_state=opt_state,
                progress=False, validation_data=(X[:7], Y[:7]),
                early_stopping=fnn.EarlyStopping("val_loss", patience=1))
    plain = fnn.fit(MODEL, LOSS, opt, (X, Y), **args)
    monkeypatch.setattr(importlib.import_module("fnn.train.epoch.placement"), "donate_buffers",
                        lambda: True)
    donated = fnn.fit(MODEL, LOSS, opt, (X, Y), **args)
    assert_same_bits(donated.params, plain.params)
    assert donated.history == plain.history
    jax.tree.map(np.asarray, (params, opt_state))  # still alive: fit donated copies
