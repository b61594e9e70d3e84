"""fit/evaluate on a multi-task model: one trunk, two heads, a weighted loss per output."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

RNG = np.random.default_rng(0)
X = RNG.normal(size=(24, 5)).astype(np.float32)
DIGIT = RNG.integers(0, 3, 24)
PARITY = (DIGIT % 2).astype(np.float32)[:, None]
Y = {"digit": DIGIT, "parity": PARITY}
MODEL = fnn.Sequential([fnn.Dense(6), fnn.Activation("tanh"),
                        fnn.Parallel({"digit": fnn.Dense(3), "parity": fnn.Dense(1)})])
LOSS = {"digit": "sparse_softmax_cross_entropy", "parity": "bce_with_logits"}
WEIGHTS = {"digit": 1.0, "parity": 0.5}
KEY = jax.random.key(1)
PARAMS, STATE = MODEL.init(KEY, X)
KW = dict(epochs=2, batch_size=8, key=KEY, progress=False, shuffle=False)


def _parts(out, y):
    """The two losses written out in numpy (float64): cross-entropy and BCE on logits."""
    z = np.asarray(out["digit"], np.float64)
    log_p = z - z.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    ce = -np.mean(log_p[np.arange(len(z)), y["digit"]])
    s = np.asarray(out["parity"], np.float64)
    bce = np.mean(np.maximum(s, 0) - s * y["parity"] + np.log1p(np.exp(-np.abs(s))))
    return ce, bce


def test_fit_trains_the_weighted_sum_exactly_like_a_hand_written_loop():
    result = fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), (X, Y), loss_weights=WEIGHTS,
                     metrics={"digit": ["accuracy"], "parity": ["accuracy"]},
                     validation_data=(X[:8], {"digit": DIGIT[:8], "parity": PARITY[:8]}),
                     params=PARAMS, state=STATE, **KW)

    def objective(p, xb, yb):
        out, _ = MODEL.apply(p, STATE, xb)
        return (fnn.losses.sparse_softmax_cross_entropy(out["digit"], yb["digit"])
                + 0.5 * fnn.losses.binary_cross_entropy_with_logits(out["parity"], yb["parity"]))

    grad = jax.jit(jax.grad(objective))
    params = PARAMS
    for _ in range(2):
        for i in range(0, 24, 8):
            g = grad(params, X[i:i + 8], jax.tree.map(lambda a: a[i:i + 8], Y))
            params = jax.tree.map(lambda p, d: p - 0.1 * d, params, g)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 result.params, params)

    h = {k: np.asarray(v) for k, v in result.history.items()}
    assert list(h) == ["loss", "digit_loss", "parity_loss", "digit_accuracy", "parity_accuracy",
                       "val_loss", "val_digit_loss", "val_parity_loss", "val_digit_accuracy",
                       "val_parity_accuracy", "learning_rate"]
    np.testing.assert_allclose(h["loss"], h["digit_loss"] + 0.5 * h["parity_loss"], rtol=1e-5)
    np.testing.assert_allclose(h["val_loss"], h["val_digit_loss"] + 0.5 * h["val_parity_loss"],
                               rtol=1e-5)

    # evaluate on the trained model: each part equals the numpy losses of predict's outputs.
    out = fnn.predict(MODEL, result.params, result.state, X)
    assert jax.tree.map(np.shape, out) == {"digit": (24, 3), "parity": (24, 1)}
    scores = fnn.evaluate(MODEL, result.params, result.state, (X, Y), loss=LOSS,
                          loss_weights=WEIGHTS, metrics={"digit": ["accuracy"]})
    ce, bce = _parts(out, Y)
    np.testing.assert_allclose([scores["digit_loss"], scores["parity_loss"], scores["loss"]],
                               [ce, bce, ce + 0.5 * bce], rtol=1e-5)
    accuracy = np.mean(np.argmax(out["digit"], -1) == DIGIT)
    np.testing.assert_allclose(scores["digit_accuracy"], accuracy)


def test_tuple_outputs_take_a_list_of_losses_and_are_named_output_i():
    model = fnn.Sequential([fnn.Dense(6), fnn.Parallel([fnn.Dense(3), fnn.Dense(1)])])
    result = fnn.fit(model, ["sparse_softmax_cross_entropy", "mse"], fnn.optim.adam(0.01),
                     (X, (DIGIT, PARITY)), loss_weights=[2.0, 1.0],
                     metrics=[["accuracy"], []], **KW)
    h = {k: np.asarray(v) for k, v in result.history.items()}
    assert [k for k in h if k.startswith("output_")] == ["output_0_loss", "output_1_loss",
                                                          "output_0_accuracy"]
    np.testing.assert_allclose(h["loss"], 2 * h["output_0_loss"] + h["output_1_loss"], rtol=1e-5)


def _fit(**overrides):
    args = dict(model=MODEL, loss=LOSS, data=(X, Y))
    args.update(overrides)
    return fnn.fit(args.pop("model"), args.pop("loss"), fnn.optim.sgd(0.1), args.pop("data"),
                   **{**KW, "epochs": 1, **args})


@pytest.mark.parametrize("overrides, message", [
    (dict(loss={"digit": "sparse_softmax_cross_entropy"}),
     r"one part per output \['digit'\], but the model outputs are a dict with keys "
     r"\['digit', 'parity'\]"),
    (dict(data=(X, {"digit": DIGIT})), r"targets y are a dict with keys \['digit'\]"),
    (dict(loss="mse"), "several outputs .* but one loss mse; give a loss per output"),
    (dict(metrics=["accuracy"]), r"give the metrics per output, e.g. metrics=\{'digit'"),
    (dict(metrics={"colour": ["accuracy"]}), r"outputs \['colour'\] that the loss does not"),
    (dict(loss_weights={"digit": 1.0}), "loss_weights must be a dict with the loss's keys"),
    (dict(loss_weights={"digit": -1.0, "parity": 1.0}), r"loss_weights\['digit'\] must be >= 0"),
    (dict(loss="mse", loss_weights={"a": 1.0}), "loss_weights weigh the losses of several"),
    (dict(data=(X, {"digit": DIGIT + 3, "parity": PARITY})),
     r"output 'digit': labels y must lie in \[0, 3\)"),
    (dict(model=fnn.Sequential([fnn.Dense(6), fnn.Parallel({
        "digit": fnn.Sequential([fnn.Dense(3), fnn.Activation("softmax")]),
        "parity": fnn.Dense(1)})])), r"\(output 'digit'\).*softmax would be applied twice"),
])
def test_mismatched_outputs_losses_weights_and_metrics_are_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        _fit(**overrides)


def test_a_custom_loss_may_take_the_whole_output_tree():
    def joint(out, y):
        return jnp.mean((out["parity"] - y["parity"]) ** 2) + 0.0 * jnp.mean(out["digit"])

    result = _fit(loss=joint)
    assert np.isfinite(result.history["loss"]).all()


def test_per_output_f1_and_auc_are_the_epochs_values():
    """Summed epoch metrics pass through the per-output wrapper: with a learning rate of 0,
    the history equals evaluate on the whole set."""
    metrics = {"digit": ["f1_macro"], "parity": ["auc", "f1"]}
    result = fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.0), (X, Y), metrics=metrics,
                     params=PARAMS, state=STATE, **{**KW, "epochs": 1, "batch_size": 5})
    scores = fnn.evaluate(MODEL, PARAMS, STATE, (X, Y), loss=LOSS, metrics=metrics)
    for name in ("digit_f1_macro", "parity_auc", "parity_f1"):
        assert result.history[name][0] == pytest.approx(scores[name], abs=1e-6), name
