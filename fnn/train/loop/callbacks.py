"""Callbacks that act on training between epochs: change hyperparameters, save, stop.

``fit(..., callbacks=[...])`` takes plain functions ``f(epoch, logs)`` (return
``True`` to stop) and `Callback` objects, which may define

- ``on_train_begin(control)``: before the first epoch;
- ``on_epoch_begin(epoch, control)``: before each epoch;
- ``on_epoch_end(epoch, logs, control)``: after each epoch, with its numbers.

``control`` (`Control`) is what a callback may act through: it reads
the current ``params``, ``state`` and ``opt_state``, changes the optimizer's
traced hyperparameters (`Control.set_hyperparams`, the
`fnn.optim.set_hyperparams` of the running state: new values of the same
shape, so nothing is compiled again), and asks training to stop after this
epoch (`Control.stop`).

Built on it: `ReduceLROnPlateau`, `LearningRateScheduler` (the
learning rate as a function of the epoch) and `ModelCheckpoint`
(checkpoints through `fnn.checkpoint.Manager`).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import numpy as np

from fnn.optim.hyperparams import current_learning_rate, set_hyperparams
from fnn.train.loop.early_stopping import monitor_mode
from fnn.validation import check_int, check_number


def call_callback(callback: Any, hook: str, epoch: int | None, logs: dict | None,
                  *args: Any) -> Any:
    """``callback(*args)`` (a function, or a bound hook of a `Callback`); an error it
    raises gets a note naming the callback, the hook, the epoch and the keys ``logs`` has
    (a callback reading ``logs["val_loss"]`` without validation data raises ``KeyError``)."""
    try:
        return callback(*args)
    except Exception as err:
        owner = getattr(callback, "__self__", callback)
        name = (type(owner).__name__ if isinstance(owner, Callback)
                else getattr(callback, "__qualname__", None) or repr(callback))
        when = "" if epoch is None else f" at epoch {epoch} (counting from 0)"
        keys = "" if logs is None else f"; logs has the keys {sorted(logs)}"
        err.add_note(f"fit: raised by the callback {name} in {hook}{when}{keys}")
        raise


class Control:
    """The running training state as a callback sees it (see the module docstring)."""

    def __init__(self, params: Any, state: Any, opt_state: Any):
        self.params, self.state, self.opt_state = params, state, opt_state
        self.stop_requested = False
        self.changed = False

    def learning_rate(self) -> float | None:
        """The learning rate the next step would use (``None`` if the optimizer has none)."""
        rate = current_learning_rate(self.opt_state)
        return None if rate is None else float(jax.device_get(rate))

    def set_hyperparams(self, **values: Any) -> None:
        """Replace hyperparameters of the running optimizer state, e.g. ``learning_rate=1e-4``
        (`fnn.optim.set_hyperparams`; no recompilation)."""
        self.opt_state = set_hyperparams(self.opt_state, **values)
        self.changed = True

    def stop(self) -> None:
        """Stop training after this epoch."""
        self.stop_requested = True


class Callback:
    """Base class of callback objects; every hook does nothing unless overridden."""

    def on_train_begin(self, control: Control) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, epoch: int, control: Control) -> None:
        """Before epoch ``epoch``."""

    def on_epoch_end(self, epoch: int, logs: dict, control: Control) -> None:
        """After epoch ``epoch``, with its history entries ``logs``."""


def _require_rate(where: str, control: Control) -> float:
    rate = control.learning_rate()
    if rate is None:
        raise ValueError(f"{where}: the optimizer has no learning rate in its state")
    return rate


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving.

    After ``patience`` epochs in a row without an improvement of more than
    ``min_delta``, ``lr <- max(lr * factor, min_lr)``; then ``cooldown`` epochs
    pass before counting again. The change is a new value of the traced
    learning rate, so the compiled epoch is reused.

    Args:
      monitor: a history key (``"val_loss"``, ``"val_accuracy"``, ``"loss"``).
      factor: in ``(0, 1)``.
      patience: epochs without improvement before a reduction (``>= 0``).
      min_delta: the least change that counts as an improvement.
      mode: ``"min"``, ``"max"`` or ``"auto"`` (from the name, as ``EarlyStopping``).
      min_lr: the learning rate never goes below this.
      cooldown: epochs to wait after a reduction before counting again.

    Examples:
      >>> rule = fnn.train.ReduceLROnPlateau("loss", factor=0.5, patience=0)
      >>> control = fnn.train.loop.callbacks.Control({}, {}, fnn.optim.sgd(0.1).init({}))
      >>> rule.on_train_begin(control)
      >>> for epoch, loss in enumerate([1.0, 0.5, 0.6, 0.7]):
      ...     rule.on_epoch_end(epoch, {"loss": loss}, control)
      >>> round(control.learning_rate(), 4)                # halved twice
      0.025
    """

    def __init__(self, monitor: str = "val_loss", *, factor: float = 0.5, patience: int = 2,
                 min_delta: float = 0.0, mode: str = "auto", min_lr: float = 0.0,
                 cooldown: int = 0):
        where = "ReduceLROnPlateau"
        if not 0 < factor < 1:
            raise ValueError(f"{where}: factor must be in (0, 1), got {factor}")
        check_int(where, "patience", patience, minimum=0)
        check_int(where, "cooldown", cooldown, minimum=0)
        check_number(where, "min_delta", min_delta, "nonnegative")
        check_number(where, "min_lr", min_lr, "nonnegative")
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.min_delta, self.min_lr, self.cooldown = min_delta, min_lr, cooldown
        self.mode = monitor_mode(where, monitor, mode)
        self.reductions: list[tuple[int, float]] = []     # (epoch, new learning rate)

    def on_train_begin(self, control: Control) -> None:
        _require_rate("ReduceLROnPlateau", control)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait, self.cooling, self.reductions = 0, 0, []

    def on_epoch_end(self, epoch: int, logs: dict, control: Control) -> None:
        if self.monitor not in logs:
            raise ValueError(f"ReduceLROnPlateau monitors {self.monitor!r}, which the history "
                             f"does not have; it has {sorted(logs)}")
        value = logs[self.monitor]
        better = (value < self.best - self.min_delta if self.mode == "min"
                  else value > self.best + self.min_delta)
        if better:
            self.best, self.wait = value, 0
            return
        if self.cooling:
            self.cooling -= 1
            return
        self.wait += 1
        if self.wait > self.patience:
            rate = _require_rate("ReduceLROnPlateau", control)
            new = max(rate * self.factor, self.min_lr)
            if new < rate:
                control.set_hyperparams(learning_rate=new)
                self.reductions.append((epoch, new))
            self.wait, self.cooling = 0, self.cooldown


class LearningRateScheduler(Callback):
    """Set the learning rate before each epoch to ``schedule(epoch)`` (or
    ``schedule(epoch, lr)`` with the current one), as Keras's callback does.

    Args:
      schedule: ``epoch -> lr`` or ``(epoch, lr) -> lr``.

    Examples:
      >>> rule = fnn.train.LearningRateScheduler(lambda epoch: 0.1 * 0.5 ** epoch)
      >>> control = fnn.train.loop.callbacks.Control({}, {}, fnn.optim.sgd(1.0).init({}))
      >>> rule.on_epoch_begin(2, control)
      >>> round(control.learning_rate(), 4)
      0.025
    """

    def __init__(self, schedule: Callable[..., float]):
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be a function epoch -> lr, "
                            f"got {schedule!r}")
        self.schedule = schedule

    def on_epoch_begin(self, epoch: int, control: Control) -> None:
        rate = _require_rate("LearningRateScheduler", control)
        try:
            new = self.schedule(epoch, rate)
        except TypeError:
            new = self.schedule(epoch)
        new = float(new)
        if not (new >= 0 and np.isfinite(new)):
            raise ValueError(f"LearningRateScheduler: schedule({epoch}) gave {new}; a learning "
                             f"rate must be a finite number >= 0")
        if new != rate:
            control.set_hyperparams(learning_rate=new)


class ModelCheckpoint(Callback):
    """Save ``{"params", "state", "opt_state"}`` after epochs, through a
    `fnn.checkpoint.Manager` (Keras's ``ModelCheckpoint``).

    Args:
      directory: where the ``epoch-NNNNNN.safetensors`` files go.
      monitor: the metric that decides the best checkpoint (kept besides the newest
        ``keep``); ``None``: no best.
      save_best_only: save only epochs that improve ``monitor``.
      keep: how many of the newest checkpoints to keep.
      mode: for ``monitor``, as ``EarlyStopping``.
      every: save every ``every``-th epoch (with ``save_best_only``: ignored).

    Attributes:
      manager: the `fnn.checkpoint.Manager`; ``manager.best_epoch()`` and
        ``manager.latest()`` find the files.
    """

    def __init__(self, directory: str, *, monitor: str | None = "val_loss",
                 save_best_only: bool = False, keep: int = 3, mode: str = "auto",
                 every: int = 1):
        from fnn.checkpoint import Manager
        check_int("ModelCheckpoint", "every", every)
        if save_best_only and monitor is None:
            raise ValueError("ModelCheckpoint: save_best_only needs a monitor")
        self.manager = Manager(directory, keep=keep, best=monitor, mode=mode)
        self.monitor, self.save_best_only, self.every = monitor, save_best_only, every

    def on_train_begin(self, control: Control) -> None:
        self.best = math.inf if self.manager.mode == "min" else -math.inf

    def on_epoch_end(self, epoch: int, logs: dict, control: Control) -> None:
        if self.save_best_only:
            if self.monitor not in logs:
                raise ValueError(f"ModelCheckpoint monitors {self.monitor!r}, which the "
                                 f"history does not have; it has {sorted(logs)}")
            value = logs[self.monitor]
            if not (value < self.best if self.manager.mode == "min" else value > self.best):
                return
            self.best = value
        elif (epoch + 1) % self.every:
            return
        self.manager.save(epoch, {"params": control.params, "state": control.state,
                                  "opt_state": control.opt_state}, metrics=dict(logs))
