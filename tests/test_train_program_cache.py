"""Programs are cached by what they compute: a second call of each entry point with a fresh
but equal optimizer, loss and metric list builds no XLA program (issue 25)."""

import jax
import numpy as np
import pytest

import fnn
from compile_events import programs_built

X = np.random.default_rng(0).normal(size=(48, 5)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int32)
MODEL = fnn.Sequential([fnn.Dense(8), fnn.Activation("relu"), fnn.Dense(2)])
LOSS = "sparse_softmax_cross_entropy"
COMMON = dict(epochs=2, batch_size=16, progress=False)


def _fit():
    return fnn.fit(MODEL, LOSS, fnn.optim.adam(1e-3), (X, Y), key=jax.random.key(0),
                   metrics=["accuracy"], validation_data=(X, Y), **COMMON)


def _fit_ensemble():
    return fnn.fit_ensemble(MODEL, LOSS, fnn.optim.adam(1e-3), (X, Y),
                            keys=jax.random.split(jax.random.key(0), 3), metrics=["accuracy"],
                            validation_data=(X, Y), **COMMON)


def _sweep():
    return fnn.sweep(MODEL, LOSS, fnn.optim.adam(1e-3), (X, Y),
                     hyperparams={"learning_rate": [1e-3, 1e-2]}, key=jax.random.key(0),
                     metrics=["accuracy"], **COMMON)


def _cross_validate():
    return fnn.cross_validate(MODEL, LOSS, fnn.optim.adam(1e-3), (X, Y), k=3,
                              key=jax.random.key(0), metrics=["accuracy"], **COMMON)


PARAMS, STATE = MODEL.init(jax.random.key(0), X)


def _evaluate():
    return fnn.evaluate(MODEL, PARAMS, STATE, (X, Y), loss=LOSS, metrics=["accuracy", "f1"],
                        batch_size=16)


def _predict():
    return fnn.predict(MODEL, PARAMS, STATE, X, batch_size=16)


@pytest.mark.parametrize("call", [_fit, _fit_ensemble, _sweep, _cross_validate, _evaluate,
                                  _predict], ids=lambda f: f.__name__[1:])
def test_a_fresh_equal_configuration_builds_no_program(call):
    first = call()
    with programs_built() as built:
        second = call()
    assert built == []
    # and the same numbers: the cached programs compute what fresh ones would
    if hasattr(first, "params"):
        first, second = (first.params, first.history), (second.params, second.history)
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
