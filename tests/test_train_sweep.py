"""sweep: each row equals fit with its configuration, one compilation for any learning rates,
the table, and bad hyperparameters."""

import jax
import numpy as np
import pytest

import fnn
from compile_events import programs_built

RNG = np.random.default_rng(1)
X = RNG.normal(size=(40, 3)).astype(np.float32)
Y = (X[:, :1] - X[:, 1:2]) ** 2
MODEL = fnn.Sequential([fnn.Dense(6), fnn.Activation("tanh"), fnn.Dropout(0.1), fnn.Dense(1)])
KEY = jax.random.key(4)
OPTIONS = dict(epochs=3, batch_size=16, validation_data=(X[:10], Y[:10]), progress=False)


def row(tree, i):
    return jax.tree.map(lambda a: a[i], tree)


def test_each_row_equals_fit_with_its_configuration():
    grid = {"learning_rate": [1e-3, 3e-2], "weight_decay": [0.0, 0.1]}
    result = fnn.sweep(MODEL, "mse", fnn.optim.adamw(), (X, Y), hyperparams=grid, key=KEY,
                       **OPTIONS)
    assert result.configs == [{"learning_rate": lr, "weight_decay": wd}
                              for lr in grid["learning_rate"] for wd in grid["weight_decay"]]
    for i, config in enumerate(result.configs):
        alone = fnn.fit(MODEL, "mse", fnn.optim.adamw(**config), (X, Y), key=KEY, **OPTIONS)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                     row(result.params, i), alone.params)
        np.testing.assert_allclose(result.history[i]["val_loss"], alone.history["val_loss"],
                                   rtol=1e-5)
    columns = result.table.columns()
    assert list(columns)[:3] == ["learning_rate", "weight_decay", "epochs"]
    np.testing.assert_allclose(columns["val_loss"], [h["val_loss"][-1] for h in result.history])
    text = str(result.table)
    assert "learning_rate" in text and len(text.splitlines()) == 5


def test_zipped_lists_and_configuration_lists():
    zipped = fnn.sweep(MODEL, "mse", fnn.optim.adam(1e-3), (X, Y), key=KEY, grid=False,
                       hyperparams={"learning_rate": [1e-3, 1e-2], "b1": [0.9, 0.5]},
                       **OPTIONS)
    listed = fnn.sweep(MODEL, "mse", fnn.optim.adam(1e-3), (X, Y), key=KEY,
                       hyperparams=[{"learning_rate": 1e-3, "b1": 0.9},
                                    {"learning_rate": 1e-2, "b1": 0.5}], **OPTIONS)
    assert zipped.configs == listed.configs and len(zipped.table) == 2
    jax.tree.map(np.testing.assert_array_equal, zipped.params, listed.params)


def test_any_learning_rates_share_one_compilation():
    opt = fnn.optim.sgd(0.1)
    fnn.sweep(MODEL, "mse", opt, (X, Y), hyperparams={"learning_rate": [0.1, 0.2, 0.3, 0.4]},
              key=KEY, **OPTIONS)
    with programs_built() as built:
        result = fnn.sweep(MODEL, "mse", opt, (X, Y), key=KEY, **OPTIONS,
                           hyperparams={"learning_rate": [0.01, 0.02, 0.03, 0.04]})
    assert built == [] and result.table.columns()["learning_rate"] == [0.01, 0.02, 0.03, 0.04]


@pytest.mark.parametrize("hyperparams, grid, match", [
    ({"learning_rat": [0.1]}, True, r"no hyperparameter 'learning_rat'; it has: \['b1', 'b2'"),
    ({"learning_rate": [0.1, 0.2], "b1": [0.9]}, False, "needs the same length"),
    ({"b1": [0.9, 1.5]}, True, r"b1 must be in \[0, 1\), got 1.5"),
    ({}, True, "hyperparams is empty"),
    ([{"learning_rate": 0.1}, {"b1": 0.5}], True, "must set the same hyperparameters"),
])
def test_bad_hyperparameters_are_clear_errors(hyperparams, grid, match):
    with pytest.raises(ValueError, match=match):
        fnn.sweep(MODEL, "mse", fnn.optim.adam(1e-3), (X, Y), hyperparams=hyperparams,
                  grid=grid, key=KEY, epochs=1, batch_size=8, progress=False)


def cosine_sgd(learning_rate, steps):
    """A factory: the learning rate and the schedule's length are both kept in the state."""
    return fnn.optim.sgd(fnn.optim.cosine_decay(learning_rate, steps))


def test_a_factory_builds_each_configuration_and_rows_equal_fit():
    configs = [{"learning_rate": 0.1, "steps": 4}, {"learning_rate": 0.3, "steps": 9}]
    result = fnn.sweep(MODEL, "mse", cosine_sgd, (X, Y), hyperparams=configs, key=KEY,
                       **OPTIONS)
    assert result.table.columns()["steps"] == [4.0, 9.0]
    for i, config in enumerate(configs):
        alone = fnn.fit(MODEL, "mse", cosine_sgd(**config), (X, Y), key=KEY, **OPTIONS)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                     row(result.params, i), alone.params)
        np.testing.assert_allclose(result.history[i]["learning_rate"],
                                   alone.history["learning_rate"], rtol=1e-6)


@pytest.mark.parametrize("factory, hyperparams, error, match", [
    (lambda beta: fnn.optim.momentum(0.1, beta=beta, nesterov=beta > 0.5),
     {"beta": [0.1, 0.9]}, ValueError,
     r"configuration 0 \{'beta': 0.1\} and configuration 1 \{'beta': 0.9\} differ in more "
     r"than the hyperparameters"),
    (lambda lr: fnn.optim.sgd(lr), {"learning_rate": [0.1]}, TypeError,
     r"keyword arguments \(\['learning_rate'\]\); calling it with \{'learning_rate': 0.1\} "
     r"failed"),
    (lambda learning_rate: learning_rate, {"learning_rate": [0.1]}, TypeError,
     "must return an fnn.optim optimizer"),
])
def test_bad_factories_are_clear_errors(factory, hyperparams, error, match):
    with pytest.raises(error, match=match):
        fnn.sweep(MODEL, "mse", factory, (X, Y), hyperparams=hyperparams, key=KEY, epochs=1,
                  batch_size=8, progress=False)
