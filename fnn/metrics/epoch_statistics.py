"""Metrics computed exactly over an epoch: statistics summed over batches, the value
computed from their sum (precision, recall, F1, AUC)."""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax.numpy as jnp

from fnn.metrics.classification import (auc, auc_counts, auc_from_counts, base_function,
                                        class_counts, f1, from_counts, partial_keywords,
                                        precision, recall)


class EpochStatistics(NamedTuple):
    """How an epoch computes a metric exactly: ``value = result(sum of stats(batch))``."""

    stats: Callable
    result: Callable


def epoch_statistics(metric: Any) -> EpochStatistics | None:
    """For a metric that is not a mean over examples (precision, recall, F1 with any
    average, AUC, and partials of them), how to accumulate it over batches: statistics
    summed over the epoch's batches and the value computed from their sum. ``None`` for a
    metric that is a mean over examples (accuracy, top-k accuracy) or a user's own one
    (unless it has an ``epoch_statistics`` attribute of this type): the epoch averages
    those over batches, weighted by batch size.

    Examples:
      >>> import functools
      >>> rule = fnn.metrics.epoch_statistics(
      ...     functools.partial(fnn.metrics.f1, average="macro", num_classes=3))
      >>> p, y = jnp.array([0, 1, 2, 2]), jnp.array([0, 1, 2, 1])
      >>> total = rule.stats(p[:2], y[:2]) + rule.stats(p[2:], y[2:])    # two batches
      >>> float(rule.result(total)) == float(fnn.metrics.f1(p, y, average="macro",
      ...                                                    num_classes=3))
      True
    """
    own = getattr(metric, "epoch_statistics", None)
    if isinstance(own, EpochStatistics):
        return own
    base = base_function(metric)
    keywords = partial_keywords(metric)
    if base is auc:
        return EpochStatistics(functools.partial(auc_counts, **keywords), auc_from_counts)
    if base in (precision, recall, f1):
        name = base.__name__
        average = keywords.get("average", "binary")
        options = {k: keywords.get(k) for k in ("num_classes", "threshold", "from_logits")}

        def stats(predictions, targets):
            return jnp.stack(class_counts(name, predictions, targets, average,
                                     **options)).astype(jnp.float32)

        def result(total):
            return from_counts(name, tuple(total), average)
        return EpochStatistics(stats, result)
    return None
