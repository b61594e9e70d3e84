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
    with pytest.raises(ValueError, match="f1: unknown average 'mikro'"):
        M.f1(Y_PRED, Y_TRUE, average="mikro")


def test_get():
    assert M.get("Accuracy") is M.accuracy and M.get("acc") is M.accuracy
    assert M.get("F1-Score") is M.f1 and M.get("confusion matrix") is M.confusion_matrix
    with pytest.raises(ValueError, match="unknown metric 'roc'.*known names:.*precision.*recall"):
        M.get("roc")
    with pytest.raises(TypeError, match="metrics.get"):
        M.get(None)


def test_threshold_applies_to_predictions_not_float_targets():
    logits = jnp.array([-3.0, -0.2, 0.1, 2.0])
    targets = jnp.array([0.0, 0.0, 1.0, 1.0])  # float 0/1 labels
    # With logits the decision threshold is 0; the targets must stay 0/1 labels.
    assert float(M.accuracy(logits, targets, threshold=0.0)) == 1.0
    assert float(M.precision(logits, targets, threshold=0.0)) == 1.0


# --- Binary logits or probabilities: from_logits, and asking instead of guessing. ---

Z = (RNG.normal(size=N) * 2).astype(np.float32)          # binary logits
Z_PROB = np.asarray(jax.nn.sigmoid(Z))
Z_PRED = (Z >= 0).astype(int)                            # sigmoid(z) >= 0.5  <=>  z >= 0


@functools.partial(jax.jit, static_argnames=("from_logits", "threshold"))
def binary_scores(p, t, *, from_logits=None, threshold=None):
    """All five metrics in one compiled function (shared by the tests below)."""
    kw = dict(from_logits=from_logits, threshold=threshold)
    return (M.accuracy(p, t, **kw), M.precision(p, t, **kw), M.recall(p, t, **kw),
            M.f1(p, t, **kw), M.confusion_matrix(p, t, 2, **kw))


def _sklearn_binary(y_true, y_pred):
    return (skm.accuracy_score(y_true, y_pred), skm.precision_score(y_true, y_pred, zero_division=0),
            skm.recall_score(y_true, y_pred, zero_division=0), skm.f1_score(y_true, y_pred, zero_division=0),
            skm.confusion_matrix(y_true, y_pred, labels=[0, 1]))


def _assert_scores(got, want):
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-6)


def test_logits_with_from_logits_equal_sigmoid_probabilities_and_sklearn():
    assert 0 < Z_PRED.sum() < N and np.all(np.abs(Z) > 1e-3)   # both classes; no tie at 0
    want = _sklearn_binary(B_TRUE, Z_PRED)
    z, prob, t = jnp.asarray(Z), jnp.asarray(Z_PROB), jnp.asarray(B_TRUE)
    _assert_scores(binary_scores(z, t, from_logits=True), want)
    _assert_scores(binary_scores(prob, t, from_logits=False), want)
    _assert_scores(binary_scores(z[:, None], t[:, None], from_logits=True), want)  # (n, 1)
    # Eager and concrete: probabilities need no from_logits; so do float 0/1 targets.
    _assert_scores([M.accuracy(Z_PROB, B_TRUE.astype(np.float32)), M.precision(Z_PROB, B_TRUE),
                    M.recall(Z_PROB, B_TRUE), M.f1(Z_PROB, B_TRUE),
                    M.confusion_matrix(Z_PROB, B_TRUE, 2)], want)
    # The incident: logits read as probabilities (threshold 0.5) give another, wrong, accuracy.
    assert skm.accuracy_score(B_TRUE, Z >= 0.5) != want[0]


@pytest.mark.parametrize("name", ["accuracy", "precision", "recall", "f1", "confusion_matrix"])
def test_concrete_logits_without_from_logits_raise(name):
    args = (2,) if name == "confusion_matrix" else ()
    with pytest.raises(ValueError, match=rf"{name}: binary predictions range from -1 to 0.3, "
                                         r"outside \[0, 1\].*look like logits.*from_logits=True"):
        M.get(name)(jnp.array([-1.0, 0.3]), jnp.array([0, 1]), *args)
    assert float(M.accuracy(jnp.array([0.0, 1.0, np.nan]), jnp.array([0, 1, 0]))) == 1.0  # NaN ignored


def test_traced_binary_predictions_without_from_logits_raise_at_trace_time():
    message = (r"accuracy: binary predictions of shape \(40,\) under jit.*pass from_logits=True "
               r"\(logits\) or from_logits=False \(probabilities\)")
    with pytest.raises(ValueError, match=message):
        binary_scores(jnp.asarray(Z_PROB), jnp.asarray(B_TRUE))   # in [0, 1], but traced
    with pytest.raises(ValueError, match=r"f1: binary predictions of shape \(3, 1\) under jit"):
        jax.eval_shape(M.f1, jnp.zeros((3, 1)), jnp.zeros((3, 1)))
    with pytest.raises(TypeError, match="from_logits must be True, False or None"):
        jax.jit(M.accuracy)(jnp.asarray(Z), jnp.asarray(B_TRUE), from_logits=True)  # traced bool


def test_explicit_threshold_still_works_and_excludes_from_logits():
    z, t = jnp.asarray(Z), jnp.asarray(B_TRUE)
    _assert_scores(binary_scores(z, t, threshold=0.0), _sklearn_binary(B_TRUE, Z_PRED))
    _assert_scores(binary_scores(z, t, threshold=1.0), _sklearn_binary(B_TRUE, (Z >= 1.0).astype(int)))
    for from_logits in (True, False):
        with pytest.raises(ValueError, match="recall: pass threshold or from_logits, not both"):
            M.recall(LOGITS, Y_TRUE, average="macro", threshold=0.0, from_logits=from_logits)
    with pytest.raises(TypeError, match="accuracy: from_logits must be True, False or None"):
        M.accuracy(Z, B_TRUE, from_logits="yes")


def test_class_scores_and_labels_are_unaffected_by_from_logits():
    probs = np.asarray(jax.nn.softmax(LOGITS))
    expected = skm.accuracy_score(Y_TRUE, Y_PRED)
    for from_logits in (None, True, False):
        np.testing.assert_allclose(M.accuracy(LOGITS, Y_TRUE, from_logits=from_logits), expected, rtol=1e-6)
        np.testing.assert_allclose(M.accuracy(probs, Y_TRUE, from_logits=from_logits), expected, rtol=1e-6)
        np.testing.assert_allclose(M.f1(Y_PRED, Y_TRUE, average="macro", num_classes=K,
                                        from_logits=from_logits),
                                   skm.f1_score(Y_TRUE, Y_PRED, average="macro"), rtol=1e-6)
    cm = jax.jit(M.confusion_matrix, static_argnums=2)(jnp.asarray(LOGITS), jnp.asarray(Y_TRUE), K)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(Y_TRUE, Y_PRED))   # traced scores need nothing


def test_get_and_with_from_logits():
    acc = M.get("acc", from_logits=True)
    assert isinstance(acc, functools.partial) and acc.func is M.accuracy
    assert acc.keywords == {"from_logits": True}
    assert acc is M.get("Accuracy", from_logits=True) is M.with_from_logits(M.accuracy, True)  # cached
    assert M.get("f1", from_logits=None) is M.f1 and M.with_from_logits("recall", None) is M.recall
    np.testing.assert_allclose(jax.jit(acc)(jnp.asarray(Z), jnp.asarray(B_TRUE)),
                               skm.accuracy_score(B_TRUE, Z_PRED), rtol=1e-6)
    # A partial of a registry metric keeps its keywords and gains from_logits.
    macro = functools.partial(M.f1, average="macro")
    bound = M.get(macro, from_logits=False)
    assert bound.func is M.f1 and bound.keywords == {"average": "macro", "from_logits": False}
    assert M.with_from_logits(bound, False) is bound
    with pytest.raises(ValueError, match=r"metric f1 was given from_logits=False but the loss "
                                         r"binary_cross_entropy_with_logits takes logits"):
        M.with_from_logits(bound, True, reason="the loss binary_cross_entropy_with_logits takes logits")
    with pytest.raises(ValueError, match="metric f1 was given from_logits=False but from_logits=True"):
        M.get(bound, from_logits=True)
    explicit = functools.partial(M.precision, threshold=0.0)   # the user's decision is kept
    assert M.with_from_logits(explicit, True) is explicit

    def my_metric(predictions, targets):
        return jnp.mean(predictions)

    assert M.with_from_logits(my_metric, True) is my_metric and M.get(my_metric, from_logits=False) is my_metric
    with pytest.raises(TypeError, match="from_logits must be True, False or None"):
        M.with_from_logits(M.accuracy, "logits")
    with pytest.raises(ValueError, match="unknown metric 'roc'"):
        M.with_from_logits("roc", True)


def test_metric_name():
    class Top1:
        def __call__(self, predictions, targets):
            return M.accuracy(predictions, targets)

    assert M.metric_name("Acc") == "Acc" and M.metric_name(M.f1) == "f1"
    assert M.metric_name(functools.partial(M.f1, average="macro")) == "f1"
    assert M.metric_name(M.get("accuracy", from_logits=True)) == "accuracy"
    assert M.metric_name(functools.partial(Top1())) == "Top1" and M.metric_name(Top1()) == "Top1"
    assert M.metric_name(lambda p, t: p) == "<lambda>"


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_class_averages_equal_scikit_learn(average):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(5)
    y_true, y_pred = rng.integers(0, 4, 60), rng.integers(0, 4, 60)
    y_true[:3] = 3                       # class 3 present; class sizes unequal
    for ours, theirs in ((M.precision, sklearn_metrics.precision_score),
                         (M.recall, sklearn_metrics.recall_score),
                         (M.f1, sklearn_metrics.f1_score)):
        got = float(ours(jnp.asarray(y_pred), jnp.asarray(y_true), average=average,
                         num_classes=4))
        want = theirs(y_true, y_pred, average=average, zero_division=0)
        assert got == pytest.approx(want, abs=1e-6), (ours.__name__, average)
        by_name = M.get(f"{ours.__name__}_{average}")      # the same by name
        assert float(by_name(jnp.asarray(np.eye(4)[y_pred]), jnp.asarray(y_true))) == \
            pytest.approx(want, abs=1e-6)
        assert M.get(f"{ours.__name__}_{average}") is by_name    # cached: one compile


def test_top_k_accuracy_and_names_with_options():
    scores = jnp.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])
    labels = jnp.array([2, 2, 0])
    ranks = np.argsort(-np.asarray(scores), axis=1)            # numpy reference
    for k in (1, 2, 3):
        want = np.mean([labels[i] in ranks[i, :k] for i in range(3)])
        assert float(M.top_k_accuracy(scores, labels, k=k)) == pytest.approx(want)
    assert float(M.get("top_2_accuracy")(scores, labels)) == pytest.approx(2 / 3)
    assert M.get("top_k_accuracy") is M.top_k_accuracy
    with pytest.raises(ValueError, match=r"unknown metric 'f1_makro' \(did you mean "
                                         r"'f1_macro'"):
        M.get("f1_makro")


def test_classification_report_equals_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 4, 80)
    scores = rng.normal(size=(80, 4)) + 2.0 * np.eye(4)[y_true]
    report = M.classification_report(scores, y_true, class_names=["a", "b", "c", "d"])
    want = sklearn_metrics.classification_report(y_true, scores.argmax(1), output_dict=True,
                                                 zero_division=0)
    for k, name in enumerate("abcd"):
        assert report.precision[k] == pytest.approx(want[str(k)]["precision"])
        assert report.recall[k] == pytest.approx(want[str(k)]["recall"])
        assert report.f1[k] == pytest.approx(want[str(k)]["f1-score"])
        assert report.support[k] == want[str(k)]["support"]
    assert report.accuracy == pytest.approx(want["accuracy"])
    for ours, key in ((report.macro, "macro avg"), (report.weighted, "weighted avg")):
        assert ours == pytest.approx((want[key]["precision"], want[key]["recall"],
                                      want[key]["f1-score"]))
    text = str(report)
    assert "weighted avg" in text and text.splitlines()[2].split()[0] == "a"
    with pytest.raises(ValueError, match="pass integer labels"):
        M.classification_report(np.array([0.2, 0.9]), np.array([0, 1]))


def test_confusion_matrix_plot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    cm = M.confusion_matrix(jnp.array([0, 1, 1, 2]), jnp.array([0, 1, 2, 2]), 3)
    ax = M.plot_confusion_matrix(cm, class_names=["x", "y", "z"])
    assert [t.get_text() for t in ax.texts] == ["1", "0", "0", "0", "1", "0", "0", "1", "1"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    matplotlib.pyplot.close("all")
