"""``fit``'s last stage: run the epochs. Between two compiled epochs the host brings the
epoch's numbers over once and fills the history (`fnn.train.loop.history.History`),
drives early stopping, the callbacks, checkpoints and the progress bar, and keeps the
best epoch's weights when asked to."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax

from fnn.train.epoch import data_parallel
from fnn.train.epoch.in_memory import skipped_count
from fnn.train.epoch.placement import own_arrays
from fnn.train.loop import resume as resume_
from fnn.train.loop.callbacks import Callback, Control, call_callback
from fnn.train.loop.history import History, stop_message
from fnn.train.loop.progress import EpochBar, wants_bar


class HostOptions(NamedTuple):
    """``fit``'s options of the host side: ``early_stopping``, ``callbacks`` (checked),
    ``verbose`` (resolved with ``progress``), the checkpoint manager (``None``: none),
    ``checkpoint_every``, ``resume``."""

    early_stopping: Any
    callbacks: Sequence[Callable]
    verbose: int
    manager: Any
    checkpoint_every: int
    resume: bool


def run_epochs(runner: Any, placed: Any, start: Any, host: HostOptions, names: Sequence[str],
               key: Any, epochs: int, batch_size: Any, mesh: Any, run: dict | None,
               where: str = "fit") -> tuple:
    """Train epochs ``first .. epochs-1`` (``first`` > 0 when resumed).

    Args:
      runner: the epoch and validation functions (`fnn.train.epoch.runner.Runner`).
      placed: the run's arrays on their devices (`fnn.train.epoch.placement.Placed`).
      start: the starting values (`fnn.train.loop.initial_values.Start`), with the
        checkpoint resumed from.
      host: the host side's options.
      names: the numbers an epoch logs (``cfg.logged_names()``).
      key: ``fit``'s key (each epoch's is derived inside the compiled epoch).
      epochs, batch_size: as ``fit`` takes them.
      mesh: the checked mesh, or ``None``.
      run: the run's identity, written into checkpoints.
      where: the calling function, named in messages.

    Returns:
      ``(params, state, opt_state, history)``.
    """
    params, state, opt_state, data = placed.params, placed.state, placed.opt_state, placed.data
    early_stopping, callbacks, manager = host.early_stopping, host.callbacks, host.manager
    resumed, source, donate = start.resumed, placed.source, placed.donate
    if resumed is not None and source is not None:
        resume_.reposition(source, resumed.stream)
    skipped_before = skipped_count(opt_state)
    history = History(names, runner.steps, batch_size,
                      None if resumed is None else resumed.history,
                      0 if skipped_before is None else int(skipped_before))

    def record(epoch: int, numbers: dict, val_numbers: dict) -> dict:
        logs = history.record(epoch, *jax.device_get((numbers, val_numbers)))
        bar.update(logs)
        return logs

    # Without early stopping, callbacks or checkpoints nothing needs epoch e's numbers to
    # go on, so epoch e + 1 is dispatched before they are read: the host's work (transfer,
    # checks, history, progress bar) overlaps the device's next epoch.
    pipelined = early_stopping is None and not callbacks and manager is None
    tracker = None if early_stopping is None else early_stopping.init()
    best, pending, first = None, None, 0
    if resumed is not None:
        first = resumed.start if not resumed.stopped else epochs
        tracker = resumed.tracker if early_stopping is not None else None
        best = None if resumed.best is None else own_arrays(jax.device_put(resumed.best),
                                                            copy=donate)
        if (best is None and tracker is not None and early_stopping.restore_best
                and tracker.best_epoch == first - 1 and first < epochs):
            # The checkpoint's own epoch was the best (its copy was skipped as the last).
            best = own_arrays((params, state, opt_state), copy=True)
    epoch = first - 1
    objects = [c for c in callbacks if isinstance(c, Callback)]
    control = Control(params, state, opt_state)

    def act(hook: str, *args: Any) -> None:
        """Run ``hook`` of every callback object; take any hyperparameters it set."""
        nonlocal opt_state
        control.params, control.state, control.opt_state = params, state, opt_state
        logs = args[1] if len(args) > 1 else None
        for callback in objects:
            call_callback(getattr(callback, hook), hook, args[0] if args else None, logs,
                          *args, control)
        if control.changed:
            opt_state, control.changed = control.opt_state, False
            if mesh is not None:
                opt_state = data_parallel.replicate(mesh, opt_state, data_parallel.
                                                    opt_state_specs(opt_state, params,
                                                                    placed.specs))
    act("on_train_begin")
    bar = EpochBar(epochs, wants_bar(host.verbose == 1), done=min(first, epochs),
                   verbose=host.verbose)
    rule_stopped = False
    try:
        for epoch in range(first, epochs):
            act("on_epoch_begin", epoch)
            params, state, opt_state, numbers = runner.run_epoch(params, state, opt_state,
                                                                 data, key, epoch, bar)
            val_numbers = ({} if runner.validate is None
                           else runner.validate(params, state, epoch=epoch))
            if pipelined:
                if pending is not None:
                    record(*pending)
                pending = (epoch, numbers, val_numbers)
                continue
            logs = record(epoch, numbers, val_numbers)
            stop = False
            if early_stopping is not None:
                tracker, improved, stop = early_stopping.update(
                    tracker, epoch, logs[early_stopping.monitor])
                rule_stopped = stop
                if improved and early_stopping.restore_best:
                    # The last epoch needs no copy: nothing runs after it.
                    best = None if epoch == epochs - 1 else own_arrays(
                        (params, state, opt_state), copy=donate)
            for callback in callbacks:
                if not isinstance(callback, Callback):
                    stop = bool(call_callback(callback, "callback(epoch, logs)", epoch, logs,
                                              epoch, dict(logs))) or stop
            act("on_epoch_end", epoch, dict(logs))
            stop = stop or control.stop_requested
            if manager is not None and (stop or epoch == epochs - 1
                                        or (epoch + 1) % host.checkpoint_every == 0):
                resume_.write(manager, run, epoch, params, state, opt_state, history.values,
                              tracker, best, stop, logs, resume_.position(source, epoch))
            if stop:
                break
        if pending is not None:
            record(*pending)
        if rule_stopped or (first < epochs and epoch < epochs - 1):
            bar.message(stop_message(where, early_stopping, tracker, rule_stopped, epoch,
                                     epochs, best is not None and tracker.best_epoch != epoch))
    finally:
        bar.close()
    if best is not None and tracker.best_epoch != epoch:
        params, state, opt_state = best
    return params, state, opt_state, history.values
