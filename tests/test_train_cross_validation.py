"""cross_validate: each fold equals fit on its split (unequal fold sizes, stratified), the
scores, mean and std, and bad k."""

import jax
import numpy as np
import pytest

import fnn

RNG = np.random.default_rng(2)
X = RNG.normal(size=(43, 4)).astype(np.float32)
Y = (X[:, 0] - X[:, 2] > 0.3).astype(np.int32)
MODEL = fnn.Sequential([fnn.Dense(6), fnn.Activation("relu"), fnn.Dropout(0.1), fnn.Dense(2)])
LOSS = "sparse_softmax_cross_entropy"
KEY = jax.random.key(5)
OPTIONS = dict(epochs=3, batch_size=8, metrics=["accuracy"], progress=False)


@pytest.mark.parametrize("stratified", [False, True])
def test_each_fold_equals_fit_on_its_split(stratified):
    opt = fnn.optim.adam(0.05)
    cv = fnn.cross_validate(MODEL, LOSS, opt, (X, Y), k=4, key=KEY, stratified=stratified,
                            **OPTIONS)
    fold_key, fit_key = jax.random.split(KEY)
    expected = fnn.train.kfold_indices(43, 4, key=fold_key, stratify=Y if stratified else None)
    assert sorted({len(tr) for tr, _ in cv.folds}) == [32, 33]          # 43 = 11 + 11 + 11 + 10
    for j, (train_idx, val_idx) in enumerate(cv.folds):
        np.testing.assert_array_equal(train_idx, expected[j][0])
        alone = fnn.fit(MODEL, LOSS, opt, (X[train_idx], Y[train_idx]), key=fit_key,
                        validation_data=(X[val_idx], Y[val_idx]), **OPTIONS)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[j], b, rtol=1e-5, atol=1e-6),
                     cv.params, alone.params)
        np.testing.assert_allclose(cv.scores["val_loss"][j], alone.history["val_loss"][-1],
                                   rtol=1e-5)
    np.testing.assert_allclose(cv.mean["val_accuracy"], np.mean(cv.scores["val_accuracy"]))
    np.testing.assert_allclose(cv.std["val_loss"], np.std(cv.scores["val_loss"]))
    assert len(cv.table) == 6 and "held out" in str(cv.table)


@pytest.mark.parametrize("k, match", [(1, "k"), (44, "k")])
def test_bad_k(k, match):
    with pytest.raises(ValueError, match=match):
        fnn.cross_validate(MODEL, LOSS, fnn.optim.sgd(0.1), (X, Y), k=k, key=KEY, **OPTIONS)


def test_stratified_needs_labels():
    with pytest.raises(ValueError, match="stratified=True needs y"):
        fnn.cross_validate(MODEL, "mse", fnn.optim.sgd(0.1), (X, X[:, :2]), k=3, key=KEY,
                           stratified=True, epochs=1, batch_size=8, progress=False)
