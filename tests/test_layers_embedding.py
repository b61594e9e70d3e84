"""Embedding against one_hot(ids) @ E in numpy, its gradient (a scatter-add), bad ids at
trace time, and out-of-range ids caught by fit, evaluate and predict before compiling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from compile_events import programs_built

KEY = jax.random.key(0)
RNG = np.random.default_rng(0)
LAYER = fnn.Embedding(7, 3)


def test_lookup_and_gradient_match_the_one_hot_product():
    ids = RNG.integers(0, 7, size=(4, 5))
    params, state = LAYER.init(KEY, ids)
    table = np.asarray(params["embedding"], np.float64)
    assert table.shape == (7, 3) and state == {}
    assert 0.7 < table.std() < 1.3                        # N(0, 1), as PyTorch
    y, _ = jax.jit(LAYER.apply)(params, {}, ids)
    one_hot = np.eye(7)[ids]                             # (4, 5, 7)
    np.testing.assert_allclose(y, one_hot @ table, rtol=1e-6)
    r = RNG.normal(size=y.shape)
    grad = jax.grad(lambda p: jnp.vdot(LAYER.apply(p, {}, ids)[0], r))(params)["embedding"]
    np.testing.assert_allclose(grad, np.einsum("btv,btf->vf", one_hot, r), rtol=1e-5,
                               atol=1e-6)                # every occurrence adds up


@pytest.mark.parametrize("ids, error, match", [
    (np.zeros((2, 3), np.float32), fnn.errors.LayerTypeError, "integer ids, got dtype float32"),
    (np.zeros((2, 3), bool), fnn.errors.LayerTypeError, "integer ids"),
    (np.int32(3), fnn.errors.LayerValueError, "leading batch axis"),
])
def test_bad_ids_are_layer_errors(ids, error, match):
    params = {"embedding": jnp.zeros((7, 3))}
    with pytest.raises(error, match=match):
        LAYER.apply(params, {}, ids)


def test_bad_table_and_hyperparameters():
    with pytest.raises(fnn.errors.LayerValueError, match=r"must have shape \(7, 3\)"):
        LAYER.apply({"embedding": jnp.zeros((3, 7))}, {}, np.zeros((1, 2), np.int32))
    with pytest.raises(fnn.errors.LayerValueError, match="vocab_size must be a positive int"):
        fnn.Embedding(0, 3)


def test_out_of_range_ids_inside_jit_give_nan_rows_not_another_word():
    params = {"embedding": jnp.ones((7, 3))}
    y, _ = jax.jit(LAYER.apply)(params, {}, jnp.array([[1, 7, -1]]))
    assert np.isfinite(y[0, 0]).all() and np.isnan(y[0, 1:]).all()


MODEL = fnn.Sequential([fnn.Embedding(5, 2), fnn.Flatten(), fnn.Dense(2)])
X = RNG.integers(0, 5, size=(8, 3)).astype(np.int32)
Y = RNG.integers(0, 2, size=8).astype(np.int32)


def test_fit_evaluate_and_predict_reject_out_of_range_ids_before_compiling():
    params, state = MODEL.init(KEY, X)
    bad = X.copy()
    bad[3, 1] = 5
    loss = "sparse_softmax_cross_entropy"
    with programs_built() as built:
        with pytest.raises(ValueError, match=r"fit: data x: Embedding ids must lie in"):
            fnn.fit(MODEL, loss, fnn.optim.sgd(0.1), (bad, Y), epochs=1, batch_size=8,
                    key=KEY, progress=False)
        with pytest.raises(ValueError, match=r"fit: validation_data x: .*from -2 to 4"):
            fnn.fit(MODEL, loss, fnn.optim.sgd(0.1), (X, Y), epochs=1, batch_size=8, key=KEY,
                    validation_data=(np.where(X == 0, -2, X), Y), progress=False)
        with pytest.raises(ValueError, match="evaluate: data x: Embedding ids"):
            fnn.evaluate(MODEL, params, state, (bad, Y), loss=loss)
        with pytest.raises(ValueError, match="predict: Embedding ids"):
            fnn.predict(MODEL, params, state, bad)
    assert built == []                                  # nothing compiled or loaded
    inside = fnn.Parallel([MODEL, fnn.Sequential([fnn.Embedding(4, 2), fnn.Flatten()])])
    p2, s2 = inside.init(KEY, X)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):         # a branch's own vocabulary
        fnn.predict(inside, p2, s2, X)


def test_an_embedding_model_trains_with_fit():
    # The class is whether id 0 occurs: a table row must learn to stand out.
    x = RNG.integers(0, 5, size=(64, 3)).astype(np.int32)
    y = (x == 0).any(axis=1).astype(np.int32)
    result = fnn.fit(MODEL, "sparse_softmax_cross_entropy", fnn.optim.adam(0.05), (x, y),
                     epochs=30, batch_size=16, key=KEY, progress=False, metrics=["accuracy"])
    assert result.history["accuracy"][-1] > 0.9
