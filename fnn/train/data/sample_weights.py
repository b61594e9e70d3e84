"""``sample_weight=`` and ``class_weight=`` in ``fit`` and ``evaluate``.

Each example ``i`` gets a weight ``w_i`` (its ``sample_weight``, times the
``class_weight`` of its label), and the loss of a batch of ``n_b`` examples is
``L_b = (1/n_b) sum_{i in b} w_i l_i`` (Keras's convention), with ``l_i`` the
loss's own per-example value (``reduction="none"``). Since ``fit`` and
``evaluate`` average batch values weighted by batch size, the loss they report
is ``(1/N) sum_i w_i l_i`` over the whole data under every batching, and a step
on all the data (``batch_size=None``) is the gradient of that objective. With
all weights 1 it is the unweighted loss. Metrics are not weighted; the
validation data is not weighted.

The weights ride along with the targets (``y -> (y, w)``) through shuffling,
batching and sharding; `WeightedLoss` and `OnTargets` unpack them.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class WeightedLoss:
    """``loss((y, w)) = mean_i(w_i * loss(prediction_i, y_i))`` (hashable: a cache key)."""

    loss_fn: Callable

    def __call__(self, predictions: Any, targets: Any) -> Any:
        y, w = targets
        per_example = self.loss_fn(predictions, y, reduction="none")
        return jnp.mean(w.astype(per_example.dtype) * per_example)


@dataclasses.dataclass(frozen=True)
class OnTargets:
    """A metric of ``(predictions, y)`` called with ``(predictions, (y, w))``."""

    metric: Callable

    def __call__(self, predictions: Any, targets: Any) -> Any:
        return self.metric(predictions, targets[0])

    @property
    def epoch_statistics(self) -> Any:
        """The wrapped metric's epoch statistics, on the targets alone (or ``None``)."""
        from fnn.metrics import EpochStatistics, epoch_statistics
        rule = epoch_statistics(self.metric)
        return None if rule is None else EpochStatistics(
            lambda p, t: rule.stats(p, t[0]), rule.result)


def _labels(where: str, y: Any) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2:
        return np.argmax(y, axis=-1)
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        return y
    raise ValueError(f"{where}: class_weight needs integer class labels y of shape (n,) or "
                     f"one-hot rows (n, K), got y of shape {y.shape} ({y.dtype})")


def classes_of(out: Any) -> int | None:
    """The number of classes a model output stands for: its last axis (2 for a single
    binary output); ``None`` for several outputs or a scalar output."""
    shape = getattr(out, "shape", None)
    if shape is None or len(shape) < 2:
        return None
    return 2 if shape[-1] == 1 else int(shape[-1])


def example_weights(where: str, y: Any, n: int, sample_weight: Any = None,
                    class_weight: Any = None, classes: int | None = None) -> np.ndarray | None:
    """The weight of each example (``None`` when neither argument is given).

    Args:
      where: the calling function, for messages.
      y: the targets (labels or one-hot rows, for ``class_weight``).
      n: the number of examples.
      sample_weight: ``(n,)`` non-negative numbers, or ``None``.
      class_weight: ``{class: weight}`` or a sequence of ``K`` weights, or ``None``;
        a class missing from the dict weighs 1.
      classes: the number of classes the model predicts (`classes_of`), when known:
        a class weight for a class beyond them is refused, not dropped.

    Raises:
      ValueError: a weight that is negative, NaN or infinite, a ``sample_weight`` of
        another length, a class weight for labels that are not classes.

    Examples:
      >>> fnn.train.data.sample_weights.example_weights("fit", np.array([0, 1, 1]), 3,
      ...     sample_weight=np.array([1.0, 2.0, 3.0]), class_weight={1: 0.5}).tolist()
      [1.0, 1.0, 1.5]
    """
    if sample_weight is None and class_weight is None:
        return None
    weights = np.ones(n, np.float32)
    if sample_weight is not None:
        given = np.asarray(sample_weight, np.float32)
        if given.shape != (n,):
            raise ValueError(f"{where}: sample_weight must have shape ({n},), one weight per "
                             f"example, got {given.shape}")
        weights = weights * given
    if class_weight is not None:
        labels = _labels(where, y)
        if isinstance(class_weight, dict):
            for c in class_weight:
                if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 0:
                    raise ValueError(f"{where}: class_weight keys must be class indices "
                                     f"(ints >= 0), got {c!r}")
            for c in class_weight:
                if classes is not None and int(c) >= classes:
                    raise ValueError(
                        f"{where}: class_weight names class {c}, but the model predicts "
                        f"{classes} classes (0 to {classes - 1}); a weight for a class that "
                        f"does not exist would be silently dropped. Remove it, or give the "
                        f"model an output per class.")
            k = max([int(c) for c in class_weight] + [int(labels.max(initial=0))]) + 1
            table = np.ones(k, np.float32)
            for c, value in class_weight.items():
                table[int(c)] = value
        else:
            table = np.asarray(class_weight, np.float32)
            if classes is not None and table.ndim == 1 and len(table) != classes:
                raise ValueError(f"{where}: class_weight must have a weight per class: "
                                 f"it has {len(table)} weights, but the model predicts "
                                 f"{classes} classes")
            if table.ndim != 1 or labels.max(initial=0) >= len(table):
                raise ValueError(f"{where}: class_weight must have a weight per class; got "
                                 f"{table.shape} weights for labels up to {labels.max()}")
        weights = weights * table[labels]
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        bad = int(np.flatnonzero(~np.isfinite(weights) | (weights < 0))[0])
        raise ValueError(f"{where}: example weights must be finite and >= 0; example {bad} "
                         f"has weight {weights[bad]}")
    return weights


def check_weighted_loss(where: str, loss_fn: Callable) -> None:
    """``ValueError`` unless ``loss_fn`` gives per-example values (``reduction="none"``)."""
    try:
        takes = "reduction" in inspect.signature(loss_fn).parameters
    except (TypeError, ValueError):
        takes = False
    if not takes:
        raise ValueError(f"{where}: sample_weight/class_weight need a loss with per-example "
                         f"values (a reduction='none' argument, as fnn.losses have); "
                         f"{getattr(loss_fn, '__name__', loss_fn)!r} has none")


def weighted(cfg: Any) -> Any:
    """``cfg`` (a `fnn.train.step.train_config.TrainConfig`) for targets ``(y, w)``."""
    return dataclasses.replace(cfg, loss_fn=WeightedLoss(cfg.loss_fn),
                               metric_fns=tuple((name, OnTargets(fn))
                                                for name, fn in cfg.metric_fns))
