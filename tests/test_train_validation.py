"""Validation each epoch, early stopping (restores the best epoch), callbacks, evaluate/predict."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

MODEL = fnn.Sequential([fnn.Dense(8), fnn.Activation("relu"), fnn.Dropout(0.25), fnn.Dense(3)])
RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 20)
XV = RNG.normal(size=(9, 5)).astype(np.float32)
YV = RNG.integers(0, 3, 9)
LOSS = fnn.losses.sparse_softmax_cross_entropy
KEY = jax.random.key(3)


def numpy_cross_entropy_and_accuracy(params, x, y):
    """Independent reference: the MLP's forward pass and the metrics in numpy float64."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    h = np.maximum(x @ p["0"]["w"] + p["0"]["b"], 0.0)
    z = h @ p["3"]["w"] + p["3"]["b"]
    z = z - z.max(1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -log_probs[np.arange(len(y)), y].mean(), (z.argmax(1) == y).mean()


def test_validation_history_matches_evaluate_and_numpy():
    seen = []

    def snapshot(epoch, logs):
        seen.append((epoch, logs))

    result = fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (X, Y), epochs=3, batch_size=8, key=KEY,
                     validation_data=(XV, YV), metrics=["accuracy"], progress=False,
                     callbacks=[snapshot])
    h = result.history
    # In the order a person reads them (the progress bar shows them so too).
    assert list(h) == ["loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"]
    assert all(len(v) == 3 for v in h.values())
    final = fnn.evaluate(MODEL, result.params, result.state, (XV, YV), loss=LOSS,
                         metrics=["accuracy"])
    assert final == {"loss": h["val_loss"][-1], "accuracy": h["val_accuracy"][-1]}
    loss, accuracy = numpy_cross_entropy_and_accuracy(result.params, XV, YV)
    np.testing.assert_allclose(final["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(final["accuracy"], accuracy)
    # Callbacks get the epoch index and the epoch's history entries as Python floats.
    assert [e for e, _ in seen] == [0, 1, 2]
    assert seen[1][1] == {k: v[1] for k, v in h.items()}
    assert all(type(v) is float for _, logs in seen for v in logs.values())


def test_early_stopping_restores_best_params():
    # A learning rate so large that the dev loss gets worse after a few epochs.
    rule = fnn.EarlyStopping(monitor="val_loss", patience=1)
    result = fnn.fit(MODEL, LOSS, fnn.optim.sgd(2.0), (X, Y), epochs=30, batch_size=8, key=KEY,
                     validation_data=(XV, YV), early_stopping=rule, progress=False)
    val = result.history["val_loss"]
    best = int(np.argmin(val))
    assert len(val) < 30 and len(val) == best + 3  # stopped after patience=1 worse epochs
    restored = fnn.evaluate(MODEL, result.params, result.state, (XV, YV), loss=LOSS)
    assert restored["loss"] == val[best] != val[-1]
    # Without restore_best the last epoch's params come back.
    last = fnn.fit(MODEL, LOSS, fnn.optim.sgd(2.0), (X, Y), epochs=30, batch_size=8, key=KEY,
                   validation_data=(XV, YV), progress=False,
                   early_stopping=fnn.EarlyStopping(patience=1, restore_best=False))
    assert fnn.evaluate(MODEL, last.params, last.state, (XV, YV), loss=LOSS)["loss"] == val[-1]


def test_callback_returning_true_stops_training():
    result = fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (X, Y), epochs=10, batch_size=8, key=KEY,
                     progress=False, callbacks=[lambda epoch, logs: epoch == 1])
    assert len(result.history["loss"]) == 2


@pytest.mark.parametrize("values, patience, min_delta, mode, stop_epoch, best", [
    ([0.9, 0.5, 0.6, 0.7, 0.4], 1, 0.0, "min", 3, 0.5),
    ([0.9, 0.5, 0.6, 0.4, 0.45, 0.46], 1, 0.0, "min", 5, 0.4),
    ([0.5, 0.49, 0.48, 0.47], 0, 0.05, "min", 1, 0.5),          # below min_delta: no gain
    ([0.6, 0.7, 0.7, 0.65], 0, 0.0, "max", 2, 0.7),             # ties do not improve
    ([1.0, float("nan"), 0.5], 0, 0.0, "min", 1, 1.0),          # NaN never improves
])
def test_early_stopping_rule(values, patience, min_delta, mode, stop_epoch, best):
    rule = fnn.EarlyStopping(monitor="val_x", patience=patience, min_delta=min_delta, mode=mode)
    tracker = rule.init()
    for epoch, value in enumerate(values):
        tracker, improved, stop = rule.update(tracker, epoch, value)
        if stop:
            break
    assert (epoch, tracker.best) == (stop_epoch, best)


def test_early_stopping_mode_inference_and_errors():
    assert fnn.EarlyStopping("val_loss").resolved_mode() == "min"
    assert fnn.EarlyStopping("val_accuracy").resolved_mode() == "max"
    assert fnn.EarlyStopping("f1").resolved_mode() == "max"
    with pytest.raises(ValueError, match="mode='min' or mode='max'"):
        fnn.EarlyStopping("val_banana")
    with pytest.raises(ValueError, match="patience"):
        fnn.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="pass validation_data"):
        fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (X, Y), epochs=1, batch_size=8, key=KEY,
                early_stopping=fnn.EarlyStopping("val_loss"), progress=False)


def test_predict_and_evaluate_in_batches_equal_one_pass():
    params, state = MODEL.init(KEY, X)
    whole = fnn.predict(MODEL, params, state, X)
    batched = fnn.predict(MODEL, params, state, X, batch_size=6)  # 6, 6, 6 and 2
    np.testing.assert_allclose(batched, whole, rtol=1e-6, atol=1e-6)
    assert whole.shape == (20, 3)
    metrics = ["accuracy", functools.partial(fnn.metrics.f1, average="macro")]
    a = fnn.evaluate(MODEL, params, state, (X, Y), loss=LOSS, metrics=metrics)
    b = fnn.evaluate(MODEL, params, state, (X, Y), loss=LOSS, metrics=metrics, batch_size=7)
    assert a.keys() == b.keys() == {"loss", "accuracy", "f1"}
    np.testing.assert_allclose(list(a.values()), list(b.values()), rtol=1e-6)
    loss, accuracy = numpy_cross_entropy_and_accuracy(params, X, Y)
    np.testing.assert_allclose([a["loss"], a["accuracy"]], [loss, accuracy], rtol=1e-5)
    # Evaluation mode: dropout is off, so predict is deterministic and equals apply(train=False).
    np.testing.assert_array_equal(whole, MODEL.apply(params, state, jnp.asarray(X))[0])


def test_validation_split_holds_out_the_last_examples_before_shuffling():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    model = fnn.Sequential([fnn.Dense(4), fnn.Activation("tanh"), fnn.Dense(2)])
    options = dict(epochs=2, batch_size=8, key=jax.random.key(0), progress=False)
    split = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.sgd(0.1), (x, y),
                    validation_split=0.2, **options)
    explicit = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.sgd(0.1),
                       (x[:40], y[:40]), validation_data=(x[40:], y[40:]), **options)
    assert split.history == explicit.history
    for kwargs, message in ((dict(validation_split=1.5), "fraction in \\(0, 1\\)"),
                            (dict(validation_split=0.2, validation_data=(x, y)), "not both"),
                            (dict(validation_split=0.001), "holds out 0")):
        with pytest.raises(ValueError, match=message):
            fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.sgd(0.1), (x, y),
                    **options, **kwargs)
