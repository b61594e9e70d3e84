"""Metrics: classification metrics, metrics by name, exact epoch statistics, reports.

Read as ``fnn.metrics.*``. The package is laid out one way, each module importing
only those above it in this list:

- `fnn.metrics.classification`: the metric functions ``metric(predictions,
  targets, ...)`` (accuracy, precision, recall, F1, AUC, top-k accuracy, the
  confusion matrix) and how they read predictions and targets as labels;
- `fnn.metrics.epoch_statistics`: how a training epoch computes precision,
  recall, F1 and AUC exactly (statistics summed over batches);
- `fnn.metrics.names`: the registry behind `get` (names with options such
  as ``"f1_macro"``, ``"top_3_accuracy"``) and `with_from_logits`;
- `fnn.classification_report`: host-side reports on a whole evaluation set.
"""

from fnn.metrics.classification import (AUC_BINS, accuracy, auc, auc_counts, auc_from_counts,
                                        confusion_matrix, f1, from_counts, precision, recall,
                                        top_k_accuracy)
from fnn.metrics.epoch_statistics import EpochStatistics, epoch_statistics
from fnn.metrics.names import get, metric_name, with_from_logits
from fnn.classification_report import (ClassificationReport, classification_report,
                                       plot_confusion_matrix)
from fnn.preprocessing import check_labels, is_concrete

__all__ = ["accuracy", "precision", "recall", "f1", "confusion_matrix", "top_k_accuracy",
           "auc", "get", "with_from_logits", "metric_name", "epoch_statistics",
           "EpochStatistics", "from_counts"]
