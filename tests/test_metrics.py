"""fnn.metrics against scikit-learn (an independent reference) on random labels."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

from fnn import metrics as M

RNG = np.random.default_rng(1)
N, K = 40, 4
Y_TRUE = RNG.integers(0, K, N)
LOGITS = RNG.normal(size=(N, K)).astype(np.float32)
Y_PRED = LOGITS.argmax(1)
B_TRUE = RNG.integers(0, 2, N)
B_PROB = RNG.uniform(size=N).astype(np.float32)
B_PRED = (B_PROB >= 0.5).astype(int)


def test_accuracy_for_every_input_form():
    expected = skm.accuracy_score(Y_TRUE, Y_PRED)
    one_hot = np.eye(K)[Y_TRUE]
    for p, t in [(Y_PRED, Y_TRUE), (LOGITS, Y_TRUE), (jax.nn.softmax(LOGITS), one_hot),
                 (LOGITS, one_hot.astype(np.int32)), (list(Y_PRED), list(Y_TRUE))]:
        np.testing.assert_allclose(M.accuracy(p, t), expected, rtol=1e-6)
    b_expected = skm.accuracy_score(B_TRUE, B_PRED)
    for p, t in [(B_PROB, B_TRUE), (B_PROB[:, None], B_TRUE[:, None]), (B_PROB[:, None], B_TRUE),
                 (B_PROB, B_TRUE.astype(np.float32)), (B_PROB > 0.5, B_TRUE.astype(bool))]:
        np.testing.assert_allclose(M.accuracy(p, t), b_expected, rtol=1e-6)
    logits = np.log(B_PROB / (1 - B_PROB))
    np.testing.assert_allclose(M.accuracy(logits, B_TRUE, threshold=0.0), b_expected, rtol=1e-6)


def test_threshold_is_inclusive_as_in_the_notes():
    assert float(M.accuracy(jnp.array([0.5, 0.49]), jnp.array([1, 0]))) == 1.0


@pytest.mark.parametrize("name", ["precision", "recall", "f1"])
def test_binary_macro_and_per_class_against_sklearn(name):
    ours, ref = M.get(name), getattr(skm, f"{name}_score" if name != "f1" else "f1_score")
    np.testing.assert_allclose(ours(B_PROB, B_TRUE), ref(B_TRUE, B_PRED, zero_division=0), rtol=1e-6)
    np.testing.assert_allclose(ours(B_PRED, B_TRUE), ref(B_TRUE, B_PRED, zero_division=0), rtol=1e-6)
    labels = list(range(K))
    macro = ref(Y_TRUE, Y_PRED, average="macro", labels=labels, zero_division=0)
    np.testing.assert_allclose(ours(LOGITS, Y_TRUE, average="macro"), macro, rtol=1e-6)
    np.testing.assert_allclose(ours(Y_PRED, Y_TRUE, average="macro", num_classes=K), macro, rtol=1e-6)
    per_class = ref(Y_TRUE, Y_PRED, average=None, labels=labels, zero_division=0)
    np.testing.assert_allclose(ours(Y_PRED, Y_TRUE, average="none", num_classes=K), per_class, rtol=1e-6)


def test_macro_counts_classes_absent_from_the_batch_and_zero_division_is_zero():
    y_true, y_pred = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])  # class 2 never occurs
    for name, ref in [("precision", skm.precision_score), ("recall", skm.recall_score),
                      ("f1", skm.f1_score)]:
        got = M.get(name)(y_pred, y_true, average="macro", num_classes=3)
        want = ref(y_true, y_pred, average="macro", labels=[0, 1, 2], zero_division=0)
        np.testing.assert_allclose(got, want, rtol=1e-6)
    nothing_predicted = jnp.zeros(4, jnp.int32)
    assert float(M.precision(nothing_predicted, jnp.array([1, 0, 1, 0]))) == 0.0
    assert float(M.recall(nothing_predicted, jnp.zeros(4, jnp.int32))) == 0.0
    assert float(M.f1(nothing_predicted, jnp.zeros(4, jnp.int32))) == 0.0


def test_f1_is_the_notes_harmonic_mean():
    p, r = float(M.precision(B_PROB, B_TRUE)), float(M.recall(B_PROB, B_TRUE))
    np.testing.assert_allclose(M.f1(B_PROB, B_TRUE), 2 / (1 / p + 1 / r), rtol=1e-5)


def test_confusion_matrix_rows_are_true_classes():
    cm = M.confusion_matrix(LOGITS, Y_TRUE, K)
    assert cm.shape == (K, K) and cm.dtype == jnp.int32
    np.testing.assert_array_equal(cm, skm.confusion_matrix(Y_TRUE, Y_PRED, labels=list(range(K))))
    np.testing.assert_array_equal(M.confusion_matrix(jnp.array([1]), jnp.array([0]), 2), [[0, 1], [0, 0]])
    with pytest.raises(ValueError, match=r"confusion_matrix: labels must lie in \[0, 3\)"):
        M.confusion_matrix(jnp.array([0, 3]), jnp.array([0, 1]), 3)


def test_jit_with_static_arguments_and_no_recompilation():
    traces = []

    @functools.partial(jax.jit, static_argnames=("average", "num_classes"))
    def scores(p, t, *, average, num_classes):
        traces.append(1)
        return (M.accuracy(p, t), M.f1(p, t, average=average, num_classes=num_classes),
                M.confusion_matrix(p, t, num_classes))

    acc, f1, cm = scores(jnp.asarray(Y_PRED), jnp.asarray(Y_TRUE), average="macro", num_classes=K)
    np.testing.assert_allclose(acc, skm.accuracy_score(Y_TRUE, Y_PRED), rtol=1e-6)
    np.testing.assert_allclose(f1, skm.f1_score(Y_TRUE, Y_PRED, average="macro", zero_division=0), rtol=1e-6)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(Y_TRUE, Y_PRED))
    scores(jnp.asarray(Y_TRUE), jnp.asarray(Y_PRED), average="macro", num_classes=K)
    assert len(traces) == 1
    # Traced out-of-range labels cannot be checked: they are not counted.
    cm = jax.jit(M.confusion_matrix, static_argnums=2)(jnp.array([0, 5]), jnp.array([0, 1]), 2)
    np.testing.assert_array_equal(cm, [[1, 0], [0, 0]])


def test_vmap_over_models():
    stacked = jnp.stack([jnp.asarray(LOGITS), -jnp.asarray(LOGITS)])
    accs = jax.vmap(M.accuracy, in_axes=(0, None))(stacked, jnp.asarray(Y_TRUE))
    np.testing.assert_allclose(accs[1], skm.accuracy_score(Y_TRUE, (-LOGITS).argmax(1)), rtol=1e-6)


def test_ambiguous_and_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"accuracy: predictions shape \(40,\) and targets shape \(40, 4\) "
                                         r"are ambiguous"):
        M.accuracy(B_PROB, np.eye(K)[Y_TRUE])
    with pytest.raises(ValueError, match=r"accuracy: predictions shape \(40, 4\) and targets shape \(39,\)"):
        M.accuracy(LOGITS, Y_TRUE[:-1])
    with pytest.raises(ValueError, match="accuracy: expected arrays with a batch axis"):
        M.accuracy(jnp.array(1), jnp.array(1))
    with pytest.raises(ValueError, match="precision: average='binary' needs two classes"):
        M.precision(LOGITS, Y_TRUE)
    with pytest.raises(ValueError, match="recall: average='macro' needs num_classes"):
        M.recall(Y_PRED, Y_TRUE, average="macro")
    with pytest.raises(ValueError, match="f1: unknown average 'micro'"):
        M.f1(Y_PRED, Y_TRUE, average="micro")


def test_get():
    assert M.get("Accuracy") is M.accuracy and M.get("acc") is M.accuracy
    assert M.get("F1-Score") is M.f1 and M.get("confusion matrix") is M.confusion_matrix
    with pytest.raises(ValueError, match="unknown metric 'auc'.*known names:.*precision.*recall"):
        M.get("auc")
    with pytest.raises(TypeError, match="metrics.get"):
        M.get(None)


def test_threshold_applies_to_predictions_not_float_targets():
    logits = jnp.array([-3.0, -0.2, 0.1, 2.0])
    targets = jnp.array([0.0, 0.0, 1.0, 1.0])  # float 0/1 labels
    # With logits the decision threshold is 0; the targets must stay 0/1 labels.
    assert float(M.accuracy(logits, targets, threshold=0.0)) == 1.0
    assert float(M.precision(logits, targets, threshold=0.0)) == 1.0
