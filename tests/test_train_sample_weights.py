"""sample_weight= and class_weight=: the loss is (1/N) sum_i w_i l_i under every batching (the
epoch's reported loss and evaluate against a numpy sum), a full-batch step is the gradient of
that objective, unit weights change nothing, and bad weights are refused."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

RNG = np.random.default_rng(4)
X = RNG.normal(size=(30, 3)).astype(np.float32)
Y = RNG.integers(0, 3, 30).astype(np.int32)
W = RNG.uniform(0.1, 3.0, 30).astype(np.float32)
MODEL = fnn.Sequential([fnn.Dense(5), fnn.Activation("tanh"), fnn.Dense(3)])
PARAMS, STATE = MODEL.init(jax.random.key(0), X)
LOSS = "sparse_softmax_cross_entropy"


def per_example_loss(params, x, y):
    logits = np.asarray(MODEL.apply(params, {}, x)[0], np.float64)
    logits = logits - logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(y)), y]


@pytest.mark.parametrize("batch_size", [None, 7, 30])
def test_evaluate_weights_the_loss_exactly_under_every_batching(batch_size):
    class_weight = {0: 2.0, 2: 0.5}
    w = W * np.array([2.0, 1.0, 0.5], np.float32)[Y]
    want = np.mean(w * per_example_loss(PARAMS, X, Y))
    got = fnn.evaluate(MODEL, PARAMS, STATE, (X, Y), loss=LOSS, metrics=["accuracy"],
                       sample_weight=W, class_weight=class_weight, batch_size=batch_size)
    assert got["loss"] == pytest.approx(want, rel=1e-5)
    plain = fnn.evaluate(MODEL, PARAMS, STATE, (X, Y), loss=LOSS, metrics=["accuracy"])
    assert got["accuracy"] == plain["accuracy"]               # metrics are not weighted


def test_fit_steps_on_the_weighted_objective_and_reports_it():
    lr = 0.5
    result = fnn.fit(MODEL, LOSS, fnn.optim.sgd(lr), (X, Y), epochs=1, batch_size=None,
                     key=jax.random.key(1), params=PARAMS, sample_weight=W, progress=False)

    def objective(p):                     # written out: (1/N) sum_i w_i l_i
        logits = MODEL.apply(p, {}, X)[0]
        l = -jnp.take_along_axis(jax.nn.log_softmax(logits), Y[:, None], 1)[:, 0]
        return jnp.mean(W * l)
    grads = jax.grad(objective)(PARAMS)
    expected = jax.tree.map(lambda p, g: p - lr * g, PARAMS, grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 result.params, expected)
    assert result.history["loss"][0] == pytest.approx(
        np.mean(W * per_example_loss(PARAMS, X, Y)), rel=1e-5)


def test_the_epoch_loss_is_exact_with_mini_batches_and_unit_weights_change_nothing():
    options = dict(epochs=2, batch_size=7, key=jax.random.key(2), params=PARAMS,
                   progress=False)
    ones = fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), (X, Y), sample_weight=np.ones(30),
                   **options)
    plain = fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), (X, Y), **options)
    np.testing.assert_allclose(ones.history["loss"], plain.history["loss"], rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                 ones.params, plain.params)
    zero_class = fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), (X, Y), class_weight=[0.0, 0.0, 0.0],
                         **options)
    assert zero_class.history["loss"] == [0.0, 0.0]
    jax.tree.map(np.testing.assert_array_equal, zero_class.params, PARAMS)   # no gradient


@pytest.mark.parametrize("kwargs, message", [
    (dict(sample_weight=np.ones(29)), r"sample_weight must have shape \(30,\)"),
    (dict(sample_weight=-np.ones(30)), r"finite and >= 0; example 0 has weight -1.0"),
    (dict(class_weight=[1.0, 2.0]), "a weight per class"),
    (dict(class_weight={"a": 1.0}), "keys must be class indices"),
])
def test_bad_weights_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), (X, Y), epochs=1, batch_size=10,
                key=jax.random.key(0), progress=False, **kwargs)


def test_a_loss_without_per_example_values_is_refused():
    def my_loss(predictions, targets):
        return jnp.mean(jnp.square(predictions - 1.0))
    with pytest.raises(ValueError, match="need a loss with per-example values"):
        fnn.fit(MODEL, my_loss, fnn.optim.sgd(0.1), (X, Y), epochs=1, batch_size=10,
                key=jax.random.key(0), progress=False, sample_weight=W)


def test_summed_metrics_stay_exact_and_unweighted_with_weights():
    result = fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.0), (X, Y), epochs=1, batch_size=7,
                     key=jax.random.key(0), params=PARAMS, sample_weight=W,
                     metrics=["f1_macro", "accuracy"], progress=False)
    plain = fnn.evaluate(MODEL, PARAMS, STATE, (X, Y), loss=LOSS,
                         metrics=["f1_macro", "accuracy"])
    assert result.history["f1_macro"][0] == pytest.approx(plain["f1_macro"], abs=1e-6)
    assert result.history["accuracy"][0] == pytest.approx(plain["accuracy"], abs=1e-6)
