"""Classification metrics ``metric(predictions, targets, ...)``: accuracy,
precision, recall, F1 and the confusion matrix.

All are jittable (``num_classes`` and ``average`` are static arguments).

How predictions and targets become class labels (each argument separately):

1. float array of rank >= 2 whose last axis ``K > 1``: class scores (one-hot,
   probabilities or logits) -> ``argmax`` over the last axis;
2. any other float array (shape ``(n,)`` or ``(..., 1)``): binary
   probabilities -> label 1 where ``x >= threshold`` (default 0.5; pass
   ``threshold=0.0`` for logits), else 0. ``threshold`` applies to the
   predictions only: float targets are 0/1 labels or probabilities and are
   always thresholded at 0.5;
3. integer or bool array: labels as they are, except that an integer array
   with exactly the shape of the other argument's class scores (rule 1) is
   one-hot and is ``argmax``-ed.

In rules 2 and 3 a trailing axis of size 1 is dropped, so ``(n, 1)`` matches
``(n,)``. The two label arrays must then have the same shape, and binary
scores (rule 2) cannot be compared with scores of ``K > 2`` classes: both
raise ``ValueError``.
"""

from __future__ import annotations

import operator
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from fnn.naming import resolve
from fnn.preprocessing import check_labels, is_concrete

__all__ = ["accuracy", "precision", "recall", "f1", "confusion_matrix", "get"]

_AVERAGES = ("binary", "macro", "none")


def _array(x):
    return np.asarray(x) if is_concrete(x) and not isinstance(x, (np.ndarray, jax.Array)) else x


def _is_scores(x) -> bool:
    return jnp.issubdtype(x.dtype, jnp.floating) and x.ndim >= 2 and x.shape[-1] > 1


def _labels(name, x, other, threshold):
    """One argument as integer labels, and its kind: "scores", "binary" or "labels"."""
    if x.ndim == 0:
        raise ValueError(f"{name}: expected arrays with a batch axis, got a scalar")
    if _is_scores(x):
        return jnp.argmax(x, axis=-1).astype(jnp.int32), "scores"
    if jnp.issubdtype(x.dtype, jnp.floating):
        y, kind = (x >= threshold).astype(jnp.int32), "binary"
    elif jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_:
        if _is_scores(other) and x.shape == other.shape:
            return jnp.argmax(x, axis=-1).astype(jnp.int32), "scores"
        y, kind = jnp.asarray(x).astype(jnp.int32), "labels"
    else:
        raise TypeError(f"{name}: expected numeric arrays, got dtype {x.dtype}")
    if y.ndim >= 2 and y.shape[-1] == 1:
        y = y[..., 0]
    return y, kind


def _to_labels(name, predictions, targets, threshold):
    """Both arguments as label arrays of one shape, and K if class scores give it."""
    p, t = _array(predictions), _array(targets)
    yp, kind_p = _labels(name, p, t, threshold)
    yt, kind_t = _labels(name, t, p, 0.5)  # targets are never logits
    scores = [x.shape[-1] for x, k in ((p, kind_p), (t, kind_t)) if k == "scores"]
    if "binary" in (kind_p, kind_t) and scores and max(scores) > 2:
        raise ValueError(f"{name}: predictions shape {p.shape} and targets shape {t.shape} "
                         f"are ambiguous: binary probabilities against {max(scores)}-class "
                         "scores; pass integer labels or (n, K) scores for both")
    if yp.shape != yt.shape:
        raise ValueError(f"{name}: predictions shape {p.shape} and targets shape {t.shape} "
                         f"give labels of different shapes {yp.shape} and {yt.shape}")
    return yp, yt, (max(scores) if scores else None)


def accuracy(predictions, targets, *, threshold: float = 0.5) -> jax.Array:
    """Fraction of correctly classified examples.

    Equation: ``accuracy = (1/n) sum_i [yhat_i == y_i]`` after converting both
    arguments to labels (see the module docstring).

    Args:
      predictions: labels, one-hot, probabilities or logits (``(n, K)``), or
        binary probabilities (``(n,)`` / ``(n, 1)``).
      targets: labels or one-hot targets.
      threshold: decision threshold for binary probabilities (0.0 for logits).

    Returns:
      a float32 scalar in ``[0, 1]``.

    Example:
      >>> float(fnn.metrics.accuracy(jnp.array([[0.1, 0.9], [0.8, 0.2]]), jnp.array([1, 1])))
      0.5000
    """
    yp, yt, _ = _to_labels("accuracy", predictions, targets, threshold)
    return jnp.mean((yp == yt).astype(jnp.float32))


def confusion_matrix(predictions, targets, num_classes: int, *,
                     threshold: float = 0.5) -> jax.Array:
    """Confusion matrix ``C`` with rows = true class, columns = predicted class.

    Equation: ``C[i, j] = #{examples with true class i predicted as j}``.
    Concrete labels outside ``[0, num_classes)`` raise ``ValueError``; traced
    ones (under ``jit``) are not counted.

    Args:
      predictions: as for :func:`accuracy`.
      targets: as for :func:`accuracy`.
      num_classes: ``K`` (a Python int, static under jit).
      threshold: decision threshold for binary probabilities.

    Returns:
      int32 array of shape ``(K, K)``.

    Example:
      >>> fnn.metrics.confusion_matrix(jnp.array([0, 1, 1]), jnp.array([0, 0, 1]), 2).tolist()
      [[1, 1], [0, 1]]
    """
    num_classes = operator.index(num_classes)
    yp, yt, _ = _to_labels("confusion_matrix", predictions, targets, threshold)
    yp = check_labels("confusion_matrix", yp, num_classes).reshape(-1)
    yt = check_labels("confusion_matrix", yt, num_classes).reshape(-1)
    counts = jnp.zeros((num_classes, num_classes), jnp.int32)
    return counts.at[yt, yp].add(1, mode="drop")


def _divide(num, den):
    """``num / den``, defined as 0 where ``den == 0`` (zero-division is 0)."""
    safe = jnp.where(den > 0, den, 1)
    return jnp.where(den > 0, num / safe, 0.0).astype(jnp.float32)


def _counts(name, predictions, targets, average, num_classes, threshold):
    """True positives, false positives, false negatives (per class, or of class 1)."""
    if average not in _AVERAGES:
        raise ValueError(f"{name}: unknown average {average!r}; expected one of "
                         f"{', '.join(map(repr, _AVERAGES))}")
    yp, yt, inferred = _to_labels(name, predictions, targets, threshold)
    if average == "binary":
        if inferred is not None and inferred > 2:
            raise ValueError(f"{name}: average='binary' needs two classes, got scores of "
                             f"{inferred} classes; use average='macro'")
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


def _average(per_class, average):
    return jnp.mean(per_class) if average == "macro" else per_class


def precision(predictions, targets, *, average: str = "binary",
              num_classes: int | None = None, threshold: float = 0.5) -> jax.Array:
    """Precision: of the examples predicted positive, the fraction truly positive.

    Equation: ``P = TP / (TP + FP)``, 0 when ``TP + FP = 0``. ``average``:
    "binary" (class 1 is positive, every other label negative), "macro" (the
    unweighted mean of the per-class precisions over all ``num_classes``
    classes, including classes absent from the batch), "none" (per class).

    Args:
      predictions: as for :func:`accuracy`.
      targets: as for :func:`accuracy`.
      average: "binary" | "macro" | "none".
      num_classes: ``K`` for "macro"/"none"; inferred from ``(n, K)`` scores
        when omitted.
      threshold: decision threshold for binary probabilities.

    Returns:
      a float32 scalar, or shape ``(K,)`` for "none".

    Example:
      >>> float(fnn.metrics.precision(jnp.array([1, 1, 0, 1]), jnp.array([1, 0, 0, 1])))
      0.6667
    """
    tp, fp, _ = _counts("precision", predictions, targets, average, num_classes, threshold)
    return _average(_divide(tp, tp + fp), average)


def recall(predictions, targets, *, average: str = "binary",
           num_classes: int | None = None, threshold: float = 0.5) -> jax.Array:
    """Recall: of the truly positive examples, the fraction predicted positive.

    Equation: ``R = TP / (TP + FN)``, 0 when ``TP + FN = 0``. ``average`` as
    in :func:`precision`.

    Args:
      predictions: as for :func:`accuracy`.
      targets: as for :func:`accuracy`.
      average: "binary" | "macro" | "none".
      num_classes: ``K`` for "macro"/"none"; inferred from ``(n, K)`` scores.
      threshold: decision threshold for binary probabilities.

    Returns:
      a float32 scalar, or shape ``(K,)`` for "none".

    Example:
      >>> float(fnn.metrics.recall(jnp.array([1, 0, 0, 1]), jnp.array([1, 1, 0, 1])))
      0.6667
    """
    tp, _, fn = _counts("recall", predictions, targets, average, num_classes, threshold)
    return _average(_divide(tp, tp + fn), average)


def f1(predictions, targets, *, average: str = "binary",
       num_classes: int | None = None, threshold: float = 0.5) -> jax.Array:
    """F1 score, the harmonic mean of precision and recall.

    Equation: ``F1 = 2 / (1/P + 1/R) = 2PR / (P + R) = 2TP / (2TP + FP + FN)``,
    0 when ``TP = 0``. "macro" averages the per-class F1 scores (as
    scikit-learn does), not the F1 of the averaged P and R.

    Args:
      predictions: as for :func:`accuracy`.
      targets: as for :func:`accuracy`.
      average: "binary" | "macro" | "none".
      num_classes: ``K`` for "macro"/"none"; inferred from ``(n, K)`` scores.
      threshold: decision threshold for binary probabilities.

    Returns:
      a float32 scalar, or shape ``(K,)`` for "none".

    Example:
      >>> float(fnn.metrics.f1(jnp.array([1, 1, 0, 1]), jnp.array([1, 0, 1, 1])))
      0.6667
    """
    tp, fp, fn = _counts("f1", predictions, targets, average, num_classes, threshold)
    return _average(_divide(2 * tp, 2 * tp + fp + fn), average)


_REGISTRY = {"accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1,
             "confusion_matrix": confusion_matrix}
_ALIASES = {"acc": "accuracy", "f1_score": "f1"}


def get(name_or_callable) -> Callable[..., jax.Array]:
    """Resolve a metric name (or pass a callable through).

    Names are case-insensitive (``-`` and spaces count as ``_``): accuracy
    (acc), precision, recall, f1 (f1_score), confusion_matrix.

    Args:
      name_or_callable: a name or a callable ``metric(predictions, targets)``.

    Returns:
      the metric function.

    Raises:
      ValueError: unknown name (the message lists the known names).
      TypeError: neither a string nor a callable.

    Example:
      >>> fnn.metrics.get("Accuracy") is fnn.metrics.accuracy
      True
    """
    return resolve("metrics", "metric", name_or_callable, _REGISTRY, _ALIASES)
