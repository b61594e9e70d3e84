"""fit and evaluate read binary outputs as the loss takes them, and refuse a double softmax."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as sk

import fnn

X, Y = fnn.datasets.load_breast_cancer()
X = fnn.preprocessing.standardize(X)
Y = Y.astype(np.float32).reshape(-1, 1)
MODEL = fnn.Dense(1)
NAMES = ["accuracy", "precision", "recall", "f1"]


@pytest.fixture(scope="module")
def trained():
    # A few steps only: the logits are not yet all of one sign, so 0.5 and 0.0 differ.
    return fnn.fit(MODEL, "binary_cross_entropy_with_logits", fnn.optim.sgd(0.01), (X, Y),
                   epochs=2, batch_size=None, key=jax.random.key(0), metrics=NAMES,
                   validation_data=(X, Y), progress=False)


def test_metrics_on_logits_are_the_true_values(trained):
    # Regression: the logits were thresholded at 0.5 as if they were probabilities.
    logits = np.asarray(fnn.predict(MODEL, trained.params, trained.state, X))[:, 0]
    predicted, labels = (logits >= 0).astype(int), Y[:, 0].astype(int)
    expected = {"accuracy": sk.accuracy_score(labels, predicted),
                "precision": sk.precision_score(labels, predicted),
                "recall": sk.recall_score(labels, predicted),
                "f1": sk.f1_score(labels, predicted)}
    wrong = sk.accuracy_score(labels, (logits >= 0.5).astype(int))
    assert abs(wrong - expected["accuracy"]) > 0.01  # the old reading would have shown
    scores = fnn.evaluate(MODEL, trained.params, trained.state, (X, Y),
                          loss="binary_cross_entropy_with_logits", metrics=NAMES)
    for name in NAMES:
        assert scores[name] == pytest.approx(expected[name], abs=1e-6)
        assert trained.history["val_" + name][-1] == pytest.approx(expected[name], abs=1e-6)
        # Batch gradient descent: the training history is the same full-data value.
        assert trained.history[name][-1] == pytest.approx(
            fnn.evaluate(MODEL, *_params_before_last_epoch(trained), (X, Y),
                         loss="binary_cross_entropy_with_logits", metrics=[name])[name], abs=1e-6)


def _params_before_last_epoch(trained):
    first = fnn.fit(MODEL, "binary_cross_entropy_with_logits", fnn.optim.sgd(0.01), (X, Y),
                    epochs=1, batch_size=None, key=jax.random.key(0), progress=False)
    return first.params, first.state


def test_metric_read_against_the_loss_is_an_error():
    probabilities_metric = fnn.metrics.get("accuracy", from_logits=False)
    with pytest.raises(ValueError, match="from_logits=False but the loss "
                                         "binary_cross_entropy_with_logits takes logits"):
        fnn.fit(MODEL, "binary_cross_entropy_with_logits", fnn.optim.sgd(0.01), (X, Y), epochs=1,
                batch_size=None, key=jax.random.key(0), metrics=[probabilities_metric],
                progress=False)
    # A loss that does not say (mse): binary metrics ask instead of guessing.
    with pytest.raises(ValueError, match="from_logits"):
        fnn.fit(MODEL, "mse", fnn.optim.sgd(0.01), (X, Y), epochs=1, batch_size=None,
                key=jax.random.key(0), metrics=["accuracy"], progress=False)
    told = functools.partial(fnn.metrics.accuracy, from_logits=False)
    result = fnn.fit(MODEL, "mse", fnn.optim.sgd(0.01), (X, Y), epochs=1, batch_size=None,
                     key=jax.random.key(0), metrics=[told], progress=False)
    assert 0.0 <= result.history["accuracy"][0] <= 1.0


@pytest.mark.parametrize("activation, loss", [
    ("softmax", "sparse_softmax_cross_entropy"), ("softmax", "softmax_cross_entropy"),
    ("sigmoid", "binary_cross_entropy_with_logits")])
def test_a_second_softmax_or_sigmoid_is_refused(activation, loss):
    model = fnn.Sequential([fnn.Dense(4), fnn.Activation("relu"),
                            fnn.Sequential([fnn.Dense(2), fnn.Activation(activation)])])
    y = np.zeros(len(X), np.int32) if loss.startswith("sparse") else np.zeros((len(X), 2),
                                                                               np.float32)
    with pytest.raises(ValueError, match=f"ends with Activation\\('{activation}'\\).*applied "
                                         "twice"):
        fnn.fit(model, loss, fnn.optim.sgd(0.1), (X, y), epochs=1, batch_size=None,
                key=jax.random.key(0), progress=False)
    with pytest.raises(ValueError, match="evaluate: the model ends with"):
        fnn.evaluate(model, {}, {}, (X, y), loss=loss)


@pytest.mark.parametrize("strategy", [None, "step"])   # one compiled epoch; chunks of calls
def test_epoch_metrics_are_the_epochs_values_not_averages_of_batches(strategy):
    """With a learning rate of 0 every step predicts with the same weights, so the epoch's
    precision, recall, F1 and AUC must equal evaluate (and scikit-learn) on the whole set,
    although the batches' own values differ; accuracy is a mean and was exact already."""
    params, state = MODEL.init(jax.random.key(3), X)
    names = NAMES + ["auc", "f1_macro"]
    result = fnn.fit(MODEL, "binary_cross_entropy_with_logits", fnn.optim.sgd(0.0), (X, Y),
                     epochs=1, batch_size=50, key=jax.random.key(0), params=params,
                     metrics=names, progress=False, strategy=strategy)
    logits = np.asarray(fnn.predict(MODEL, params, state, X))[:, 0]
    labels = Y[:, 0].astype(int)
    predicted = (logits >= 0).astype(int)
    expected = {"accuracy": sk.accuracy_score(labels, predicted),
                "precision": sk.precision_score(labels, predicted),
                "recall": sk.recall_score(labels, predicted),
                "f1": sk.f1_score(labels, predicted),
                "f1_macro": sk.f1_score(labels, predicted, average="macro"),
                "auc": sk.roc_auc_score(labels, logits)}
    for name in names:
        tolerance = 2e-3 if name == "auc" else 1e-6        # AUC: 4096 histogram bins
        assert result.history[name][0] == pytest.approx(expected[name], abs=tolerance), name
    scores = fnn.evaluate(MODEL, params, state, (X, Y), batch_size=64,
                          loss="binary_cross_entropy_with_logits", metrics=names)
    for name in names:                 # the same predictions: the same numbers
        assert result.history[name][0] == pytest.approx(scores[name], abs=1e-6), name
    batch_f1 = [sk.f1_score(labels[i:i + 50], predicted[i:i + 50])
                for i in range(0, len(labels), 50)]
    assert abs(np.average(batch_f1, weights=np.diff(list(range(0, len(labels), 50))
                                                    + [len(labels)])) - expected["f1"]) > 1e-4


def test_a_users_metric_declares_how_an_epoch_accumulates_it():
    """A metric with an ``epoch_statistics`` attribute is summed over the epoch; without one
    it is averaged over batches (weighted by batch size)."""
    def positives_rate(predictions, targets):          # a ratio, not a mean over examples
        return jnp.sum(predictions[:, 0] > 0) / jnp.maximum(jnp.sum(targets[:, 0] > 0), 1)

    def stats(predictions, targets):
        return jnp.stack([jnp.sum(predictions[:, 0] > 0),
                          jnp.sum(targets[:, 0] > 0)]).astype(jnp.float32)

    def summed_rate(predictions, targets):
        return positives_rate(predictions, targets)
    summed_rate.epoch_statistics = fnn.metrics.EpochStatistics(
        stats, lambda total: total[0] / jnp.maximum(total[1], 1))
    params, state = MODEL.init(jax.random.key(3), X)
    result = fnn.fit(MODEL, "binary_cross_entropy_with_logits", fnn.optim.sgd(0.0), (X, Y),
                     epochs=1, batch_size=50, key=jax.random.key(0), params=params,
                     metrics={"averaged": positives_rate, "summed": summed_rate},
                     progress=False, shuffle=False)
    logits = np.asarray(fnn.predict(MODEL, params, state, X))[:, 0]
    whole = np.sum(logits > 0) / np.sum(Y[:, 0] > 0)
    assert result.history["summed"][0] == pytest.approx(whole, rel=1e-6)
    sizes = [min(50, len(X) - i) for i in range(0, len(X), 50)]
    per_batch = [np.sum(logits[i:i + 50] > 0) / max(np.sum(Y[i:i + 50, 0] > 0), 1)
                 for i in range(0, len(X), 50)]
    assert result.history["averaged"][0] == pytest.approx(np.average(per_batch,
                                                                     weights=sizes), rel=1e-5)
