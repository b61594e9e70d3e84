"""The history of a run: each epoch's numbers brought to the host, checked for NaN, put
in order for people and appended; the checks of what the host loop will read (the
early-stopping monitor, the callbacks) and why a run ended early.

``fit`` keeps one `History`; ``fit_ensemble``, ``sweep`` and ``cross_validate``
keep one per member, filled by the same code.
"""

from __future__ import annotations

from typing import Any

from fnn.train.loop.callbacks import Callback
from fnn.train.loop.early_stopping import EarlyStopping

EXTRAS = ("learning_rate", "skipped")


def check_monitor(where: str, early_stopping: Any, cfg: Any, has_validation: bool) -> None:
    """``ValueError`` unless the early-stopping rule monitors a number the run computes."""
    if early_stopping is None:
        return
    if not isinstance(early_stopping, EarlyStopping):
        raise TypeError(f"{where}: early_stopping must be a fnn.EarlyStopping, got "
                        f"{type(early_stopping).__name__}")
    names = list(cfg.logged_names())
    known = names + (["val_" + n for n in names if n != "penalty"] if has_validation else [])
    if early_stopping.monitor not in known + ["learning_rate"]:
        hint = " (pass validation_data to monitor 'val_...')" if (
            early_stopping.monitor.startswith("val_") and not has_validation) else ""
        raise ValueError(f"{where}: EarlyStopping monitors {early_stopping.monitor!r}, which "
                         f"{where} does not compute; known: {known}{hint}")


def check_callbacks(where: str, callbacks: Any) -> tuple:
    """``callbacks`` as a tuple; ``TypeError`` for one that is neither a function nor a
    `fnn.train.Callback`."""
    callbacks = () if callbacks is None else tuple(callbacks)
    for callback in callbacks:
        if not callable(callback) and not isinstance(callback, Callback):
            raise TypeError(f"{where}: callbacks must be functions callback(epoch, logs) or "
                            f"fnn.train.Callback objects, got {callback!r}")
    return callbacks


def raise_if_not_finite(numbers: dict, epoch: int, steps: Any, batch_size: Any,
                        where: str = "fit") -> None:
    """Pop the epoch's NaN checks from ``numbers``; raise unless the optimizer skips such steps."""
    bad_step = int(numbers.pop("nonfinite_step"))
    params_finite = bool(numbers.pop("params_finite"))
    if "skipped" in numbers:
        return
    if bad_step >= 0:
        raise FloatingPointError(
            f"{where}: the loss became NaN or infinite at epoch {epoch} (counting from 0), "
            f"step {bad_step} of that epoch ({steps} steps per epoch, batch_size={batch_size}); "
            "the parameters are no longer usable. Lower the learning rate, check x and y for "
            "NaN/inf, clip the gradients (fnn.optim.clip_by_global_norm), or wrap the optimizer "
            "in fnn.optim.skip_nonfinite to skip such steps.")
    if not params_finite:
        raise FloatingPointError(
            f"{where}: the parameters became NaN or infinite during epoch {epoch} (counting "
            "from 0) while the loss stayed finite (an activation such as relu maps NaN to 0 and "
            "hides it). Check x and y for NaN/inf, lower the learning rate, or wrap the "
            "optimizer in fnn.optim.skip_nonfinite to skip such steps.")


class History:
    """One run's ``{name: [one float per epoch]}``, filled epoch by epoch.

    Args:
      names: the numbers a training epoch logs (``cfg.logged_names()``), in order.
      steps: the steps per epoch (for messages).
      batch_size: the batch size (for messages).
      values: the history so far (a resumed run's), or ``None``.
      skipped_before: the optimizer's count of skipped steps at the start (the history
        holds the steps skipped per epoch; the state counts the total).
    """

    def __init__(self, names: Any, steps: Any, batch_size: Any, values: dict | None = None,
                 skipped_before: float = 0.0):
        self.names, self.steps, self.batch_size = list(names), steps, batch_size
        self.values: dict[str, list[float]] = {
            name: list(v) for name, v in (values or {}).items()}
        self.skipped_before = skipped_before

    def record(self, epoch: int, numbers: dict, val_numbers: dict) -> dict:
        """Epoch ``epoch``'s host numbers checked (`raise_if_not_finite`), ordered for
        people (loss, metrics, validation, learning rate, skipped steps) and appended;
        returns them as the epoch's ``logs``."""
        numbers = dict(numbers)
        raise_if_not_finite(numbers, epoch, self.steps, self.batch_size)
        logs = {name: float(numbers[name]) for name in self.names if name in numbers}
        logs.update({"val_" + name: float(val_numbers[name]) for name in self.names
                     if name in val_numbers})
        logs.update({name: float(numbers[name]) for name in EXTRAS if name in numbers})

        if "skipped" in logs:
            logs["skipped"], self.skipped_before = (logs["skipped"] - self.skipped_before,
                                                    logs["skipped"])
        for name, value in logs.items():
            self.values.setdefault(name, []).append(value)
        return logs


def stop_message(where: str, rule: Any, tracker: Any, by_rule: bool, epoch: int, epochs: int,
                 restored: bool) -> str:
    """Why training ended before ``epochs``, and which epoch's weights are returned
    (epochs counted from 1, as the bar counts them)."""
    if not by_rule:
        return f"{where}: a callback stopped training after epoch {epoch + 1} of {epochs}"
    text = (f"{where}: stopped early after epoch {epoch + 1} of {epochs}: {rule.monitor} did "
            f"not improve{f' by more than {rule.min_delta:g}' if rule.min_delta else ''} for "
            f"{rule.patience + 1} epoch{'s' if rule.patience else ''}")
    if restored:
        return (text + f"; restored the weights of epoch {tracker.best_epoch + 1} (best "
                f"{rule.monitor} {tracker.best:.4g})")
    return text + "; returning this epoch's weights"
