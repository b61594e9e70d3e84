"""Early stopping: stop when the dev-set metric stops improving, keep the best parameters.

From the notes: plot the training and the dev set cost together; at some
iteration the dev cost stops decreasing and starts increasing; take the
parameters of that iteration as the best ones. `EarlyStopping` checks
a monitored value once per epoch; ``fnn.fit`` stops after ``patience``
epochs without improvement and, with ``restore_best=True``, returns the
parameters (and state and optimizer state) of the best epoch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

from fnn.validation import check_int, check_number

_MIN_WORDS = ("loss", "error", "mse", "mae", "rmse", "huber", "entropy")
_MAX_WORDS = ("acc", "precision", "recall", "f1", "auc")


class EarlyStoppingState(NamedTuple):
    """Progress of an `EarlyStopping` rule (plain Python values).

    Attributes:
      best: best monitored value so far (``inf``/``-inf`` before the first epoch).
      best_epoch: epoch index of ``best`` (``-1`` before the first epoch).
      wait: epochs since the last improvement.
    """

    best: float
    best_epoch: int
    wait: int


def monitor_mode(where: str, monitor: str, mode: str = "auto") -> str:
    """``"min"`` or ``"max"``: ``mode``, or for ``"auto"`` the one the name ``monitor`` says
    (``"min"`` for loss/error/mse/mae/rmse/huber/entropy, ``"max"`` for acc/precision/recall/
    f1/auc).

    Raises:
      ValueError: ``mode="auto"`` and the name says neither.

    Examples:
      >>> from fnn.train.loop.early_stopping import monitor_mode
      >>> monitor_mode("demo", "val_loss"), monitor_mode("demo", "val_accuracy")
      ('min', 'max')
    """
    if mode != "auto":
        return mode
    name = monitor.lower().removeprefix("val_")
    if any(word in name for word in _MIN_WORDS):
        return "min"
    if any(word in name for word in _MAX_WORDS):
        return "max"
    raise ValueError(f"{where}: cannot tell whether {monitor!r} should go up or down; pass "
                     f"mode='min' or mode='max'")


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    An epoch *improves* when its value beats the best so far by more than
    ``min_delta``: ``value < best - min_delta`` in mode ``"min"``,
    ``value > best + min_delta`` in mode ``"max"`` (a NaN never improves).
    ``patience`` epochs without improvement in a row are tolerated; training
    stops at the next one (``patience=0``: at the first epoch that does not
    improve).

    Args:
      monitor: a key of the history, e.g. ``"val_loss"``, ``"val_accuracy"``,
        ``"loss"``. A ``"val_..."`` monitor needs ``validation_data``.
      patience: epochs without improvement to tolerate (``>= 0``).
      min_delta: smallest change counted as an improvement (``>= 0``).
      mode: ``"min"``, ``"max"`` or ``"auto"``: ``"min"`` for names containing
        loss/error/mse/mae/rmse/huber/entropy, ``"max"`` for
        acc/precision/recall/f1/auc.
      restore_best: return the parameters of the best epoch instead of the last.

    Examples:
      >>> rule = fnn.EarlyStopping(monitor="val_loss", patience=1)
      >>> tracker = rule.init()
      >>> for epoch, value in enumerate([0.9, 0.5, 0.6, 0.7, 0.4]):
      ...     tracker, improved, stop = rule.update(tracker, epoch, value)
      ...     if stop:
      ...         break
      >>> epoch, tracker.best, tracker.best_epoch
      (3, 0.5, 1)
    """

    monitor: str = "val_loss"
    patience: int = 0
    min_delta: float = 0.0
    mode: str = "auto"
    restore_best: bool = True

    def __post_init__(self):
        if not isinstance(self.monitor, str) or not self.monitor:
            raise ValueError(f"EarlyStopping: monitor must be a history key such as "
                             f"'val_loss', got {self.monitor!r}")
        check_int("EarlyStopping", "patience", self.patience, minimum=0)
        check_number("EarlyStopping", "min_delta", self.min_delta, "nonnegative")
        if self.mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got "
                             f"{self.mode!r}")
        self.resolved_mode()

    def resolved_mode(self) -> str:
        """``"min"`` or ``"max"``: ``mode``, or the one inferred from ``monitor``.

        Raises:
          ValueError: ``mode="auto"`` and the name says neither.
        """
        return monitor_mode("EarlyStopping", self.monitor, self.mode)

    def init(self) -> EarlyStoppingState:
        """The state before the first epoch."""
        best = math.inf if self.resolved_mode() == "min" else -math.inf
        return EarlyStoppingState(best, -1, 0)

    def update(self, tracker: EarlyStoppingState, epoch: int,
               value: float) -> tuple[EarlyStoppingState, bool, bool]:
        """Record one epoch's value.

        Args:
          tracker: the state from `init` or the previous call.
          epoch: this epoch's index.
          value: the monitored value (a Python float).

        Returns:
          ``(new_tracker, improved, stop)``.
        """
        value = float(value)
        if self.resolved_mode() == "min":
            improved = value < tracker.best - self.min_delta
        else:
            improved = value > tracker.best + self.min_delta
        if improved:
            return EarlyStoppingState(value, epoch, 0), True, False
        wait = tracker.wait + 1
        return tracker._replace(wait=wait), False, wait > self.patience
