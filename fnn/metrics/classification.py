"""Classification metrics ``metric(predictions, targets, ...)``: accuracy,
precision, recall, F1 and the confusion matrix.

All are jittable (``num_classes``, ``average``, ``from_logits`` and
``threshold`` are static Python values).

How predictions and targets become class labels (each argument separately):

1. float array of rank >= 2 whose last axis ``K > 1``: class scores (one-hot,
   probabilities or logits) -> ``argmax`` over the last axis (the same for
   logits and probabilities, so ``from_logits`` changes nothing here);
2. any other float array (shape ``(n,)`` or ``(..., 1)``): binary scores ->
   label 1 where ``x >= t``, else 0. The decision threshold ``t`` of the
   predictions is

   - ``threshold`` when given;
   - else ``0.0`` with ``from_logits=True`` (logits ``z``:
     ``sigmoid(z) >= 0.5`` exactly when ``z >= 0``) and ``0.5`` with
     ``from_logits=False`` (probabilities);
   - else (both ``None``) the predictions are looked at: concrete values all
     in ``[0, 1]`` are taken as probabilities (``t = 0.5``); a value outside
     ``[0, 1]`` raises ``ValueError`` (they look like logits: pass
     ``from_logits``); traced predictions (under ``jit``, ``vmap`` or
     ``eval_shape``) cannot be looked at and raise ``ValueError`` at trace
     time. The metric asks instead of guessing.

   Passing both ``threshold`` and ``from_logits`` raises ``ValueError``. They
   apply to the predictions only: float targets are 0/1 labels or
   probabilities (never logits) and are always thresholded at 0.5;
3. integer or bool array: labels as they are, except that an integer array
   with exactly the shape of the other argument's class scores (rule 1) is
   one-hot and is ``argmax``-ed.

In rules 2 and 3 a trailing axis of size 1 is dropped, so ``(n, 1)`` matches
``(n,)``. The two label arrays must then have the same shape, and binary
scores (rule 2) cannot be compared with scores of ``K > 2`` classes: both
raise ``ValueError``.

A training loop knows from its loss whether the model outputs logits or
probabilities (`fnn.losses.output_kind`); `with_from_logits` and
``get(name, from_logits=...)`` bind that to a metric.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn.preprocessing import check_labels, is_concrete

__all__ = ["accuracy", "precision", "recall", "f1", "confusion_matrix", "top_k_accuracy",
           "auc", "from_counts"]

AVERAGES = ("binary", "macro", "micro", "weighted", "none")


def _array(x):
    return np.asarray(x) if is_concrete(x) and not isinstance(x, (np.ndarray, jax.Array)) else x


def _is_scores(x) -> bool:
    return jnp.issubdtype(x.dtype, jnp.floating) and x.ndim >= 2 and x.shape[-1] > 1


def _kind(name, x, other) -> str:
    """How ``x`` becomes labels: "scores" (argmax), "binary" (threshold) or "labels"."""
    if x.ndim == 0:
        raise ValueError(f"{name}: expected arrays with a batch axis, got a scalar")
    if _is_scores(x):
        return "scores"
    if jnp.issubdtype(x.dtype, jnp.floating):
        return "binary"
    if jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_:
        return "scores" if _is_scores(other) and x.shape == other.shape else "labels"
    raise TypeError(f"{name}: expected numeric arrays, got dtype {x.dtype}")


def _label_shape(x, kind) -> tuple:
    if kind == "scores" or (x.ndim >= 2 and x.shape[-1] == 1):
        return tuple(x.shape[:-1])
    return tuple(x.shape)


def _as_labels(x, kind, threshold):
    if kind == "scores":
        return jnp.argmax(x, axis=-1).astype(jnp.int32)
    x = jnp.asarray(x)
    y = (x >= threshold) if kind == "binary" else x
    y = y.astype(jnp.int32)
    return y[..., 0] if y.ndim >= 2 and y.shape[-1] == 1 else y


def _check_options(name, threshold, from_logits) -> None:
    if from_logits is not None and not isinstance(from_logits, (bool, np.bool_)):
        raise TypeError(f"{name}: from_logits must be True, False or None (a static Python "
                        f"bool under jit), got {from_logits!r}")
    if threshold is not None and from_logits is not None:
        raise ValueError(f"{name}: pass threshold or from_logits, not both (got threshold="
                         f"{threshold!r}, from_logits={from_logits!r}); from_logits=True "
                         "means threshold 0.0, from_logits=False threshold 0.5")


def _decision_threshold(name, predictions, threshold, from_logits):
    """The threshold of binary float predictions (rule 2 of the module docstring)."""
    if threshold is not None:
        return threshold
    if from_logits is not None:
        return 0.0 if from_logits else 0.5
    if not is_concrete(predictions):
        raise ValueError(
            f"{name}: binary predictions of shape {tuple(predictions.shape)} under jit "
            "(traced, so their values cannot tell logits from probabilities): pass "
            "from_logits=True (logits) or from_logits=False (probabilities)")
    values = np.asarray(predictions).astype(np.float64).reshape(-1)
    values = values[~np.isnan(values)]
    if values.size:
        low, high = float(values.min()), float(values.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"{name}: binary predictions range from {low:.4g} to {high:.4g}, outside "
                "[0, 1], so they look like logits: pass from_logits=True for logits "
                "(decision threshold 0) or from_logits=False for probabilities (threshold 0.5)")
    return 0.5


def _to_labels(name, predictions, targets, threshold, from_logits):
    """Both arguments as label arrays of one shape, and K if class scores give it."""
    _check_options(name, threshold, from_logits)
    p, t = _array(predictions), _array(targets)
    kind_p, kind_t = _kind(name, p, t), _kind(name, t, p)
    scores = [x.shape[-1] for x, k in ((p, kind_p), (t, kind_t)) if k == "scores"]
    if "binary" in (kind_p, kind_t) and scores and max(scores) > 2:
        raise ValueError(f"{name}: predictions shape {p.shape} and targets shape {t.shape} "
                         f"are ambiguous: binary probabilities against {max(scores)}-class "
                         "scores; pass integer labels or (n, K) scores for both")
    shape_p, shape_t = _label_shape(p, kind_p), _label_shape(t, kind_t)
    if shape_p != shape_t:
        raise ValueError(f"{name}: predictions shape {p.shape} and targets shape {t.shape} "
                         f"give labels of different shapes {shape_p} and {shape_t}")
    decision = (_decision_threshold(name, p, threshold, from_logits)
                if kind_p == "binary" else None)
    yp = _as_labels(p, kind_p, decision)
    yt = _as_labels(t, kind_t, 0.5)  # targets are never logits
    # binary scores are two classes (negative, positive)
    return yp, yt, (max(scores) if scores else 2 if "binary" in (kind_p, kind_t) else None)


def accuracy(predictions, targets, *, threshold: float | None = None,
             from_logits: bool | None = None) -> jax.Array:
    """Fraction of correctly classified examples.

    Equation: ``accuracy = (1/n) sum_i [yhat_i == y_i]`` after converting both
    arguments to labels (see the module docstring).

    Args:
      predictions: labels, one-hot, probabilities or logits (``(n, K)``), or
        binary probabilities or logits (``(n,)`` / ``(n, 1)``).
      targets: labels or one-hot targets.
      threshold: decision threshold ``t`` for binary float predictions
        (label 1 where ``p >= t``); ``None`` (default): from ``from_logits``.
      from_logits: for binary float predictions: ``True``: they are logits
        ``z`` (``t = 0``, i.e. ``sigmoid(z) >= 0.5``); ``False``: they are
        probabilities (``t = 0.5``); ``None`` (default): concrete values in
        ``[0, 1]`` are probabilities, others raise, and traced ones (under
        ``jit``) raise. Not together with ``threshold``; no effect on class
        scores or labels.

    Returns:
      a float32 scalar in ``[0, 1]``.

    Raises:
      ValueError: binary predictions whose kind is unknown (``from_logits``
        and ``threshold`` both ``None``) that are traced or lie outside
        ``[0, 1]``; ``threshold`` and ``from_logits`` both given; shapes that
        do not match.

    Examples:
      >>> float(fnn.metrics.accuracy(jnp.array([[0.1, 0.9], [0.8, 0.2]]), jnp.array([1, 1])))
      0.5000
      >>> float(fnn.metrics.accuracy(jnp.array([-1.0, 0.3]), jnp.array([0, 1]), from_logits=True))
      1.0000
      >>> fnn.metrics.accuracy(jnp.array([-1.0, 0.3]), jnp.array([0, 1]))
      Traceback (most recent call last):
      ...
      ValueError: accuracy: binary predictions range from -1 to 0.3, outside [0, 1], so they look like logits: pass from_logits=True ...
    """
    yp, yt, _ = _to_labels("accuracy", predictions, targets, threshold, from_logits)
    return jnp.mean((yp == yt).astype(jnp.float32))


def confusion_matrix(predictions, targets, num_classes: int, *,
                     threshold: float | None = None,
                     from_logits: bool | None = None) -> jax.Array:
    """Confusion matrix ``C`` with rows = true class, columns = predicted class.

    Equation: ``C[i, j] = #{examples with true class i predicted as j}``.
    Concrete labels outside ``[0, num_classes)`` raise ``ValueError``; traced
    ones (under ``jit``) are not counted.

    Args:
      predictions: as for `accuracy`.
      targets: as for `accuracy`.
      num_classes: ``K`` (a Python int, static under jit).
      threshold: as for `accuracy` (binary float predictions only).
      from_logits: as for `accuracy` (binary float predictions only).

    Returns:
      int32 array of shape ``(K, K)``.

    Examples:
      >>> fnn.metrics.confusion_matrix(jnp.array([0, 1, 1]), jnp.array([0, 0, 1]), 2).tolist()
      [[1, 1], [0, 1]]
      >>> fnn.metrics.confusion_matrix(jnp.array([-1.0, 0.3, 2.0]), jnp.array([0, 1, 0]), 2,
      ...                              from_logits=True).tolist()
      [[1, 1], [0, 1]]
    """
    num_classes = operator.index(num_classes)
    yp, yt, _ = _to_labels("confusion_matrix", predictions, targets, threshold, from_logits)
    yp = check_labels("confusion_matrix", yp, num_classes).reshape(-1)
    yt = check_labels("confusion_matrix", yt, num_classes).reshape(-1)
    counts = jnp.zeros((num_classes, num_classes), jnp.int32)
    return counts.at[yt, yp].add(1, mode="drop")


def _divide(num, den):
    """``num / den``, defined as 0 where ``den == 0`` (zero-division is 0)."""
    safe = jnp.where(den > 0, den, 1)
    return jnp.where(den > 0, num / safe, 0.0).astype(jnp.float32)


def class_counts(name, predictions, targets, average, num_classes, threshold, from_logits):
    """True positives, false positives, false negatives (per class, or of class 1)."""
    if average not in AVERAGES:
        raise ValueError(f"{name}: unknown average {average!r}; expected one of "
                         f"{', '.join(map(repr, AVERAGES))}")
    yp, yt, inferred = _to_labels(name, predictions, targets, threshold, from_logits)
    if average == "binary":
        if inferred is not None and inferred > 2:
            raise ValueError(f"{name}: average='binary' needs two classes, got scores of "
                             f"{inferred} classes; use average='macro' (or the name "
                             f"'{name}_macro')")
        pred_pos, true_pos = yp == 1, yt == 1
        tp = jnp.sum(pred_pos & true_pos)
        return tp, jnp.sum(pred_pos) - tp, jnp.sum(true_pos) - tp
    k = num_classes if num_classes is not None else inferred
    if k is None:
        raise ValueError(f"{name}: average={average!r} needs num_classes (the predictions "
                         "are labels, which do not tell the number of classes)")
    cm = confusion_matrix(yp, yt, k)
    tp = jnp.diagonal(cm)
    return tp, jnp.sum(cm, axis=0) - tp, jnp.sum(cm, axis=1) - tp


_RATIOS = {
    "precision": lambda tp, fp, fn: _divide(tp, tp + fp),
    "recall": lambda tp, fp, fn: _divide(tp, tp + fn),
    "f1": lambda tp, fp, fn: _divide(2 * tp, 2 * tp + fp + fn),
}


def from_counts(name: str, counts: Any, average: str) -> jax.Array:
    """Precision, recall or F1 (``name``) from the counts ``(TP, FP, FN)`` (scalars for
    "binary", per class otherwise), averaged as ``average`` says. The metric functions
    compute their value with it, and so does an epoch from the counts summed over its
    batches, so both give the same number for the same predictions.

    Examples:
      >>> float(fnn.metrics.from_counts("f1", (jnp.array(3.0), jnp.array(1.0),
      ...                                      jnp.array(1.0)), "binary"))
      0.7500
    """
    ratio = _RATIOS[name]
    return _average(ratio(*counts), average, counts, ratio)


def _average(per_class, average, counts=None, ratio=None):
    """Average per-class values: "macro" (unweighted mean), "weighted" (by each class's
    support ``TP + FN``), "micro" (``ratio`` of the summed ``counts``), "binary"/"none" as
    they are."""
    if average == "macro":
        return jnp.mean(per_class)
    if average == "weighted":
        tp, _, fn = counts
        support = (tp + fn).astype(jnp.float32)
        return _divide(jnp.sum(support * per_class), jnp.sum(support))
    if average == "micro":
        return ratio(*(jnp.sum(c) for c in counts))
    return per_class


def precision(predictions, targets, *, average: str = "binary",
              num_classes: int | None = None, threshold: float | None = None,
              from_logits: bool | None = None) -> jax.Array:
    """Precision: of the examples predicted positive, the fraction truly positive.

    Equation: ``P = TP / (TP + FP)``, 0 when ``TP + FP = 0``. ``average``:
    "binary" (class 1 is positive, every other label negative), "macro" (the
    unweighted mean of the per-class precisions over all ``num_classes``
    classes, including classes absent from the batch), "weighted" (the mean
    weighted by each class's support ``TP + FN``), "micro" (``P`` of the counts
    summed over classes; equals accuracy for single-label data), "none" (per
    class). As names: ``"precision_macro"``, ``"precision_weighted"``, ...

    Args:
      predictions: as for `accuracy`.
      targets: as for `accuracy`.
      average: "binary" | "macro" | "micro" | "weighted" | "none".
      num_classes: ``K`` for the class averages; inferred from ``(n, K)`` scores
        when omitted.
      threshold: as for `accuracy` (binary float predictions only).
      from_logits: as for `accuracy` (binary float predictions only).

    Returns:
      a float32 scalar, or shape ``(K,)`` for "none".

    Examples:
      >>> float(fnn.metrics.precision(jnp.array([1, 1, 0, 1]), jnp.array([1, 0, 0, 1])))
      0.6667
      >>> float(fnn.metrics.precision(jnp.array([-1.0, 0.3, 2.0]), jnp.array([0, 1, 0]),
      ...                             from_logits=True))
      0.5000
    """
    counts = class_counts("precision", predictions, targets, average, num_classes, threshold,
                     from_logits)
    return from_counts("precision", counts, average)


def recall(predictions, targets, *, average: str = "binary",
           num_classes: int | None = None, threshold: float | None = None,
           from_logits: bool | None = None) -> jax.Array:
    """Recall: of the truly positive examples, the fraction predicted positive.

    Equation: ``R = TP / (TP + FN)``, 0 when ``TP + FN = 0``. ``average`` as
    in `precision`.

    Args:
      predictions: as for `accuracy`.
      targets: as for `accuracy`.
      average: "binary" | "macro" | "micro" | "weighted" | "none".
      num_classes: ``K`` for the class averages; inferred from ``(n, K)`` scores.
      threshold: as for `accuracy` (binary float predictions only).
      from_logits: as for `accuracy` (binary float predictions only).

    Returns:
      a float32 scalar, or shape ``(K,)`` for "none".

    Examples:
      >>> float(fnn.metrics.recall(jnp.array([1, 0, 0, 1]), jnp.array([1, 1, 0, 1])))
      0.6667
      >>> float(fnn.metrics.recall(jnp.array([-1.0, 0.3, -2.0]), jnp.array([0, 1, 1]),
      ...                          from_logits=True))
      0.5000
    """
    counts = class_counts("recall", predictions, targets, average, num_classes, threshold,
                     from_logits)
    return from_counts("recall", counts, average)


def f1(predictions, targets, *, average: str = "binary",
       num_classes: int | None = None, threshold: float | None = None,
       from_logits: bool | None = None) -> jax.Array:
    """F1 score, the harmonic mean of precision and recall.

    Equation: ``F1 = 2 / (1/P + 1/R) = 2PR / (P + R) = 2TP / (2TP + FP + FN)``,
    0 when ``TP = 0``. "macro" averages the per-class F1 scores (as
    scikit-learn does), not the F1 of the averaged P and R.

    Args:
      predictions: as for `accuracy`.
      targets: as for `accuracy`.
      average: "binary" | "macro" | "micro" | "weighted" | "none".
      num_classes: ``K`` for the class averages; inferred from ``(n, K)`` scores.
      threshold: as for `accuracy` (binary float predictions only).
      from_logits: as for `accuracy` (binary float predictions only).

    Returns:
      a float32 scalar, or shape ``(K,)`` for "none".

    Examples:
      >>> float(fnn.metrics.f1(jnp.array([1, 1, 0, 1]), jnp.array([1, 0, 1, 1])))
      0.6667
      >>> float(fnn.metrics.f1(jnp.array([-1.0, 0.3]), jnp.array([0, 1]), from_logits=True))
      1.0000
    """
    counts = class_counts("f1", predictions, targets, average, num_classes, threshold,
                     from_logits)
    return from_counts("f1", counts, average)


def top_k_accuracy(predictions, targets, *, k: int = 5) -> jax.Array:
    """Fraction of examples whose true class is among the ``k`` highest scores.

    Equation: ``(1/n) sum_i [y_i in top_k(s_i)]``; a true class tied with the ``k``-th
    score counts as in (its score is at least the ``k``-th largest). ``k = 1`` is accuracy.
    As a name: ``"top_k_accuracy"`` (``k = 5``) or ``"top_3_accuracy"``.

    Args:
      predictions: scores (logits or probabilities), shape ``(n, K)``.
      targets: class labels ``(n,)`` or one-hot rows ``(n, K)``.
      k: how many of the highest scores count (``1 <= k``).

    Returns:
      a float32 scalar in ``[0, 1]``.

    Examples:
      >>> scores = jnp.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1]])
      >>> float(fnn.metrics.top_k_accuracy(scores, jnp.array([2, 2]), k=2))
      0.5000
    """
    scores = _array(predictions)
    labels = _array(targets)
    if scores.ndim != 2:
        raise ValueError(f"top_k_accuracy: predictions must be scores of shape (n, K), got "
                         f"{scores.shape}")
    if labels.ndim == 2:
        labels = jnp.argmax(labels, axis=-1)
    if labels.shape != scores.shape[:1]:
        raise ValueError(f"top_k_accuracy: targets must be labels of shape "
                         f"{scores.shape[:1]} (or one-hot rows), got {labels.shape}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"top_k_accuracy: k must be a positive int, got {k!r}")
    kth = jax.lax.top_k(scores, min(k, scores.shape[-1]))[0][:, -1]
    own = jnp.take_along_axis(scores, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]
    return jnp.mean((own >= kth).astype(jnp.float32))


AUC_BINS = 4096


def _auc_scores(name, predictions, targets, from_logits):
    """Binary scores as probabilities in [0, 1] and 0/1 labels, flattened."""
    _check_options(name, None, from_logits)
    scores = _array(predictions).astype(jnp.float32)
    labels = _array(targets)
    if scores.ndim == 2 and scores.shape[-1] == 1:
        scores = scores[:, 0]
    if labels.ndim == 2 and labels.shape[-1] == 1:
        labels = labels[:, 0]
    if scores.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"{name}: needs binary scores (n,) or (n, 1) and labels of the same "
                         f"length; got {scores.shape} and {labels.shape}")
    if from_logits is None:
        _decision_threshold(name, scores, None, None)   # refuses values outside [0, 1]
    probs = jax.nn.sigmoid(scores) if from_logits else scores
    return probs, labels


def auc_counts(predictions, targets, *, from_logits: bool | None = None,
               bins: int = AUC_BINS) -> jax.Array:
    """Histograms of the positives' and negatives' scores, shape ``(2, bins)`` (float32):
    the statistics `auc` is computed from, summed over an epoch's batches."""
    probs, labels = _auc_scores("auc", predictions, targets, from_logits)
    index = jnp.clip((probs * bins).astype(jnp.int32), 0, bins - 1)
    positive = (labels > 0).astype(jnp.float32)
    ones = jnp.ones_like(positive)
    return jnp.stack([jnp.zeros(bins).at[index].add(positive),
                      jnp.zeros(bins).at[index].add(ones - positive)])


def auc_from_counts(counts: jax.Array) -> jax.Array:
    """ROC AUC from `auc_counts`: the probability that a positive scores above a
    negative, ties (the same bin) counting one half."""
    positives, negatives = counts[0], counts[1]
    above = jnp.cumsum(positives[::-1])[::-1] - positives     # positives in higher bins
    pairs = jnp.sum(positives) * jnp.sum(negatives)
    return _divide(jnp.sum(negatives * (above + 0.5 * positives)), pairs)


def auc(predictions, targets, *, from_logits: bool | None = None,
        bins: int = AUC_BINS) -> jax.Array:
    """Area under the ROC curve of binary scores (logits or probabilities alike).

    Equation: ``AUC = P(s_pos > s_neg) + P(s_pos = s_neg) / 2`` over all pairs of a
    positive and a negative example (the Mann-Whitney statistic), computed from
    histograms of the probabilities (``sigmoid`` of logits) in ``bins`` equal bins of
    ``[0, 1]``: scores in one bin count as tied, so the value is exact to the bin width.
    ``fit`` sums the histograms over an epoch's batches, so the history's ``"auc"`` is
    the epoch's, and equals `fnn.evaluate` on the same predictions.

    Args:
      predictions: binary scores ``(n,)`` or ``(n, 1)``.
      targets: 0/1 labels of the same length.
      from_logits: ``True`` for logits; ``False`` or ``None`` for probabilities (``None``
        refuses concrete values outside ``[0, 1]``).
      bins: the histogram's resolution.

    Returns:
      a float32 scalar in ``[0, 1]`` (0 when one class is absent).

    Examples:
      >>> float(fnn.metrics.auc(jnp.array([0.1, 0.4, 0.35, 0.8]), jnp.array([0, 0, 1, 1])))
      0.7500
    """
    return auc_from_counts(auc_counts(predictions, targets, from_logits=from_logits,
                                      bins=bins))


def base_function(metric: Any) -> Any:
    """``metric`` with every ``functools.partial`` layer removed."""
    while isinstance(metric, functools.partial):
        metric = metric.func
    return metric


def partial_keywords(metric: Any) -> dict:
    """The keywords bound by ``metric``'s ``functools.partial`` layers (outer ones win, as
    in a call)."""
    keywords: dict = {}
    while isinstance(metric, functools.partial):
        keywords = {**metric.keywords, **keywords}
        metric = metric.func
    return keywords
