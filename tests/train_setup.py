"""Shared setup of the training tests: one small deterministic model, data and helpers.

One model object for every module, so compiled steps and epochs are shared across them.
"""

import jax
import numpy as np

import fnn

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
