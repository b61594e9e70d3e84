"""Per-class precision, recall, F1 and support, printed as scikit-learn prints them, and a
confusion-matrix plot; both read as ``fnn.metrics.classification_report`` and
``fnn.metrics.plot_confusion_matrix``.

These run on the host, on concrete predictions (the whole evaluation set), so the numbers
are the dataset's, not averages of batches.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np


class ClassificationReport(NamedTuple):
    """What `classification_report` computes; ``str(report)`` is the printed table.

    Attributes:
      classes: the class names, in order.
      precision, recall, f1: per class, numpy arrays of shape ``(K,)``.
      support: the number of true examples of each class.
      accuracy: the fraction of correct predictions.
      macro, weighted: ``(precision, recall, f1)`` averaged without and with support weights.
    """

    classes: tuple
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    accuracy: float
    macro: tuple
    weighted: tuple

    def __str__(self) -> str:
        width = max([len(str(c)) for c in self.classes] + [len("weighted avg")])
        total = int(self.support.sum())
        lines = [f"{'':>{width}}  precision    recall  f1-score   support", ""]
        for name, p, r, f, s in zip(self.classes, self.precision, self.recall, self.f1,
                                    self.support):
            lines.append(f"{str(name):>{width}}  {p:9.4f} {r:9.4f} {f:9.4f} {int(s):9d}")
        lines += ["", f"{'accuracy':>{width}}  {'':9} {'':9} {self.accuracy:9.4f} {total:9d}"]
        for label, (p, r, f) in (("macro avg", self.macro), ("weighted avg", self.weighted)):
            lines.append(f"{label:>{width}}  {p:9.4f} {r:9.4f} {f:9.4f} {total:9d}")
        return "\n".join(lines)


def _labels(name: str, values: Any, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 2:                     # scores or one-hot rows
        return np.argmax(array, axis=-1)
    if array.ndim != 1:
        raise ValueError(f"{name}: {what} must be labels (n,) or scores (n, K), got shape "
                         f"{array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name}: {what} are a 1-D array of {array.dtype}; pass integer labels "
                         f"or (n, K) scores (binary probabilities: threshold them first, "
                         f"e.g. (p > 0.5).astype(int))")
    return array


def classification_report(predictions: Any, targets: Any, *,
                          class_names: Sequence[Any] | None = None,
                          num_classes: int | None = None) -> ClassificationReport:
    """Per-class precision, recall, F1 and support of a whole evaluation set.

    Equations per class ``k``: ``P_k = TP_k / (TP_k + FP_k)``, ``R_k = TP_k /
    (TP_k + FN_k)``, ``F1_k = 2 P_k R_k / (P_k + R_k)`` (0 where undefined), support
    ``TP_k + FN_k``; "macro avg" is their unweighted mean, "weighted avg" the mean
    weighted by support (scikit-learn's ``classification_report`` with
    ``zero_division=0``).

    Args:
      predictions: labels ``(n,)`` or scores ``(n, K)`` (logits or probabilities).
      targets: labels ``(n,)`` or one-hot rows ``(n, K)``.
      class_names: a name per class (default ``0 .. K-1``).
      num_classes: ``K`` (default: from scores, names, or the largest label + 1).

    Returns:
      a `ClassificationReport`; print it for the table.

    Examples:
      >>> report = fnn.metrics.classification_report(np.array([0, 1, 1, 2]),
      ...                                            np.array([0, 1, 2, 2]))
      >>> print(report)
                    precision    recall  f1-score   support
      <BLANKLINE>
                 0     1.0000    1.0000    1.0000         1
                 1     0.5000    1.0000    0.6667         1
                 2     1.0000    0.5000    0.6667         2
      <BLANKLINE>
          accuracy                         0.7500         4
         macro avg     0.8333    0.8333    0.7778         4
      weighted avg     0.8750    0.7500    0.7500         4
    """
    name = "classification_report"
    yp, yt = _labels(name, predictions, "predictions"), _labels(name, targets, "targets")
    if yp.shape != yt.shape:
        raise ValueError(f"{name}: {yp.shape[0]} predictions but {yt.shape[0]} targets")
    k = num_classes
    if k is None:
        widths = [np.shape(a)[-1] for a in (predictions, targets) if np.ndim(a) == 2]
        k = widths[0] if widths else (len(class_names) if class_names is not None
                                      else int(max(yp.max(initial=0), yt.max(initial=0))) + 1)
    names = tuple(range(k)) if class_names is None else tuple(class_names)
    if len(names) != k:
        raise ValueError(f"{name}: {len(names)} class names for {k} classes")
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (yt, yp), 1)
    tp = np.diag(cm).astype(np.float64)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)

    def ratio(num, den):
        return np.where(den > 0, num / np.maximum(den, 1), 0.0)
    precision, recall = ratio(tp, predicted), ratio(tp, support)
    f1 = ratio(2 * tp, predicted + support)
    weights = support / max(support.sum(), 1)
    return ClassificationReport(
        names, precision, recall, f1, support, float(tp.sum() / max(len(yt), 1)),
        tuple(float(v.mean()) for v in (precision, recall, f1)),
        tuple(float((v * weights).sum()) for v in (precision, recall, f1)))


def plot_confusion_matrix(matrix: Any, *, class_names: Sequence[Any] | None = None,
                          ax: Any = None, normalize: bool = False) -> Any:
    """Draw a confusion matrix (rows: true class, columns: predicted) with its counts.

    Needs matplotlib (the ``examples`` extra).

    Args:
      matrix: ``(K, K)`` counts, e.g. ``fnn.metrics.confusion_matrix(logits, y, K)``.
      class_names: tick labels (default ``0 .. K-1``).
      ax: a matplotlib Axes to draw on (default: a new figure's).
      normalize: show each row as fractions of its true class.

    Returns:
      the Axes.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError('plot_confusion_matrix needs matplotlib: pip install '
                          '"fnn[examples]"') from error
    cm = np.asarray(matrix, np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"plot_confusion_matrix: expected a square (K, K) matrix, got "
                         f"shape {cm.shape}")
    if normalize:
        cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(1 + 0.5 * len(cm), 0.8 + 0.5 * len(cm)))
    ax.imshow(cm, cmap="Blues")
    names = list(range(len(cm))) if class_names is None else list(class_names)
    ax.set_xticks(range(len(cm)), [str(n) for n in names])
    ax.set_yticks(range(len(cm)), [str(n) for n in names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    high = cm.max() / 2 if cm.size else 0
    for (i, j), value in np.ndenumerate(cm):
        ax.text(j, i, f"{value:.2f}" if normalize else f"{int(value)}", ha="center",
                va="center", color="white" if value > high else "black", fontsize=8)
    return ax
