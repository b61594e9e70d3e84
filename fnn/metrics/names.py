"""Metrics by name: the registry behind ``fnn.metrics.get``, names with options
(``"f1_macro"``, ``"top_3_accuracy"``), and telling the threshold metrics whether the
predictions are logits (``with_from_logits``). Read as ``fnn.metrics.get``,
``fnn.metrics.with_from_logits`` and ``fnn.metrics.metric_name``.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable

import jax
import numpy as np

from fnn.metrics.classification import (AVERAGES, accuracy, auc, base_function,
                                        confusion_matrix, f1, partial_keywords, precision,
                                        recall, top_k_accuracy)
from fnn.naming import resolve

_REGISTRY = {"accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1,
             "confusion_matrix": confusion_matrix, "top_k_accuracy": top_k_accuracy,
             "auc": auc}
_ALIASES = {"acc": "accuracy", "f1_score": "f1"}
_AVERAGED = ("precision", "recall", "f1")


_OPTION_NAMES = tuple(f"{base}_{average}" for base in _AVERAGED
                      for average in ("macro", "micro", "weighted", "binary")) + (
                          "top_5_accuracy",)


@functools.lru_cache(maxsize=None)
def _variant(key: str) -> Callable | None:
    """The metric a name with options stands for (``"f1_macro"``, ``"precision_weighted"``,
    ``"top_3_accuracy"``); the same object for the same name, so compiled code is reused."""
    for base in _AVERAGED:
        for prefix in (base, "f1_score" if base == "f1" else base):
            suffix = key[len(prefix) + 1:] if key.startswith(prefix + "_") else None
            if suffix in AVERAGES and suffix != "none":
                return functools.partial(_REGISTRY[base], average=suffix)
    match = re.fullmatch(r"top_?(\d+)_accuracy", key)
    if match and int(match.group(1)) >= 1:
        return functools.partial(top_k_accuracy, k=int(match.group(1)))
    return None
_THRESHOLD_METRICS = (accuracy, precision, recall, f1, confusion_matrix, auc)  # from_logits


def metric_name(metric: Any) -> str:
    """The name of a metric, e.g. its key in a training history.

    Args:
      metric: a name (returned as given), a function (its ``__name__``), a
        ``functools.partial`` (the wrapped function's ``__name__``) or any
        other callable (its ``__name__``, else its type's name).

    Returns:
      the name.

    Examples:
      >>> import functools
      >>> fnn.metrics.metric_name("acc"), fnn.metrics.metric_name(fnn.metrics.f1)
      ('acc', 'f1')
      >>> fnn.metrics.metric_name(functools.partial(fnn.metrics.recall, average="macro"))
      'recall'
    """
    if isinstance(metric, str):
        return metric
    name = getattr(metric, "__name__", None)
    if isinstance(name, str) and name:
        return name
    base = base_function(metric)
    name = getattr(base, "__name__", None)
    return name if isinstance(name, str) and name else type(base).__name__


@functools.lru_cache(maxsize=256)
def _bind(metric: Callable, from_logits: bool) -> Callable:
    """One partial per (metric, from_logits): equal configurations share compiled code."""
    return functools.partial(metric, from_logits=from_logits)


def with_from_logits(metric: Any, from_logits: bool | None, *, reason: str = "") -> Callable:
    """Tell a metric whether the predictions are logits (``True``) or probabilities.

    This is how a training loop passes what its loss knows
    (`fnn.losses.output_kind`) to the threshold metrics, whose binary
    decision threshold is 0 for logits and 0.5 for probabilities (see the
    module docstring):

    - ``accuracy``, ``precision``, ``recall``, ``f1``, ``confusion_matrix``
      and ``functools.partial`` objects of them get the keyword
      ``from_logits`` (the result is a ``functools.partial``; the same one
      for the same input, so compiled functions cached on it are reused);
    - a partial already carrying the same ``from_logits`` is returned as it
      is, one carrying the other value raises ``ValueError``;
    - a partial carrying an explicit ``threshold`` is returned as it is (the
      threshold is the user's decision);
    - any other callable (a user's own metric) is returned unchanged;
    - ``from_logits=None`` returns ``metric`` unchanged (names are resolved).

    Args:
      metric: a metric name or callable.
      from_logits: ``True`` (logits), ``False`` (probabilities) or ``None``.
      reason: why ``from_logits`` is what it is, for the error message (e.g.
        ``"the loss binary_cross_entropy_with_logits takes logits"``).

    Returns:
      the metric callable.

    Raises:
      ValueError: the metric already has the opposite ``from_logits``; an
        unknown metric name.
      TypeError: ``from_logits`` is not a bool or ``None``.

    Examples:
      >>> acc = fnn.metrics.with_from_logits("accuracy", True)
      >>> acc.keywords, float(acc(jnp.array([-1.0, 0.3]), jnp.array([0, 1])))
      ({'from_logits': True}, 1.0000)
      >>> import functools
      >>> fnn.metrics.with_from_logits(functools.partial(fnn.metrics.f1, from_logits=False),
      ...     True, reason="the loss binary_cross_entropy_with_logits takes logits")
      Traceback (most recent call last):
      ...
      ValueError: metric f1 was given from_logits=False but the loss binary_cross_entropy_with_logits takes logits; ...
    """
    if isinstance(metric, str):
        metric = get(metric)
    if from_logits is None:
        return metric
    if not isinstance(from_logits, (bool, np.bool_)):
        raise TypeError(f"with_from_logits: from_logits must be True, False or None, got "
                        f"{from_logits!r}")
    from_logits = bool(from_logits)
    if not any(base_function(metric) is fn for fn in _THRESHOLD_METRICS):
        return metric  # a user's own metric: it decides itself
    keywords = partial_keywords(metric)
    given = keywords.get("from_logits")
    if given is not None:
        if bool(given) == from_logits:
            return metric
        because = reason or f"from_logits={from_logits} was requested"
        raise ValueError(f"metric {metric_name(metric)} was given from_logits={given!r} but "
                         f"{because}; remove the metric's from_logits or change the loss")
    if keywords.get("threshold") is not None:
        return metric
    return _bind(metric, from_logits)


def get(name_or_callable, *, from_logits: bool | None = None) -> Callable[..., jax.Array]:
    """Resolve a metric name (or pass a callable through).

    Names are case-insensitive (``-`` and spaces count as ``_``): accuracy
    (acc), precision, recall, f1 (f1_score), confusion_matrix, top_k_accuracy;
    with options: ``"<precision|recall|f1>_<macro|micro|weighted|binary>"``
    (``"f1_macro"``) and ``"top_<k>_accuracy"``. A misspelled name gets a "did you
    mean" hint.

    Args:
      name_or_callable: a name or a callable ``metric(predictions, targets)``.
      from_logits: if not ``None``, bound to the threshold metrics with
        `with_from_logits` (``True``: the predictions are logits,
        ``False``: probabilities); other callables are returned unchanged.

    Returns:
      the metric function (a ``functools.partial`` when ``from_logits`` is bound).

    Raises:
      ValueError: unknown name (the message lists the known names); a
        partial whose ``from_logits`` contradicts the given one.
      TypeError: neither a string nor a callable.

    Examples:
      >>> fnn.metrics.get("Accuracy") is fnn.metrics.accuracy
      True
      >>> fnn.metrics.get("acc", from_logits=True).keywords
      {'from_logits': True}
    """
    if isinstance(name_or_callable, str):
        variant = _variant(name_or_callable.strip().lower().replace("-", "_").replace(" ", "_"))
        if variant is not None:
            return with_from_logits(variant, from_logits)
    metric = resolve("metrics", "metric", name_or_callable, _REGISTRY, _ALIASES, _OPTION_NAMES)
    return with_from_logits(metric, from_logits)
