"""Gradient accumulation and the model state threaded through steps and micro-batches."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from train_setup import KEY, LOSS, MODEL, PARAMS, STATE, X, Y, allclose, fit, make_step


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
