"""``fnn.tune``: an Optuna study whose trials train in vmapped groups.

The loop of one worker, until the study holds ``n_trials`` finished trials
(complete, pruned, or failed by fnn; as Optuna's ``MaxTrialsCallback``
counts them, so two workers started with ``n_trials=24`` finish 24 between
them):

1. fail the trials of dead workers (no heartbeat for
   `fnn.tuning.study.GRACE_SECONDS`); Optuna enqueues a retry of each
   with the same parameters;
2. ask Optuna for a batch of trials (``study.ask()``, at most ``group_size``,
   never more than the study still needs besides the trials running
   elsewhere) and call ``build(trial)`` for each; a configuration that does not
   build (a layer's error) fails its trial and the study goes on;
3. group the batch's trials by structure (`fnn.tuning.trial_config`) and
   train each group as one vmapped program (`fnn.tuning.groups`),
   reporting every epoch to the pruner;
4. tell Optuna each trial's end: ``COMPLETE`` with its best monitored value,
   ``PRUNED``, or ``FAIL`` (a NaN loss); each trial keeps its ``history``,
   ``epochs`` and ``group`` as user attributes.
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

import jax

from fnn.errors import LayerTypeError, LayerValueError
from fnn.train.data import checks
from fnn.train.data.splits import split_off_validation
from fnn.train.loop.early_stopping import monitor_mode
from fnn.train.loop.progress import EpochBar, wants_bar
from fnn.train.many.memory import auto_chunk_size
from fnn.train.many.table import Table
from fnn.train.step.train_config import build_config
from fnn.tuning import study as study_module
from fnn.tuning.groups import member_values, train_group
from fnn.tuning.trial_config import describe, initial_values, read_build, structure
from fnn.validation import check_int

WAIT_SECONDS = 1.0


class TuneResult(NamedTuple):
    """What `fnn.tune` returns.

    Attributes:
      study: the Optuna study (``study.trials``, ``study.best_trial``, Optuna's plots).
      best_trial: the best finished trial (``None`` if none completed).
      params, state: the best trial's trained parameters and state (the epoch of its
        best monitored value); ``None`` when the best trial ran in another worker.
      table: the study's finished trials, best first (prints).
    """

    study: Any
    best_trial: Any
    params: Any
    state: Any
    table: Table


def _check_monitor(where: str, first: Any, monitor: str, has_validation: bool) -> None:
    cfg = build_config(first.model, first.loss, first.optimizer, metrics=first.metrics,
                       where=where, penalty=first.penalty)
    names = list(cfg.logged_names())
    known = names + (["val_" + n for n in names if n != "penalty"] if has_validation else [])
    if monitor not in known:
        hint = (" (give validation_data or validation_split to score trials on 'val_...')"
                if monitor.startswith("val_") and not has_validation else "")
        raise ValueError(f"{where}: monitor={monitor!r} is not a number the trials compute; "
                         f"they compute {known}{hint}")


def _mode(where: str, monitor: str, direction: str) -> str:
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"{where}: direction must be 'minimize' or 'maximize', got "
                         f"{direction!r}")
    mode = "min" if direction == "minimize" else "max"
    try:
        named = monitor_mode(where, monitor)
    except ValueError:
        return mode
    if named != mode:
        raise ValueError(f"{where}: direction={direction!r} contradicts monitor={monitor!r}, "
                         f"which is better when it is {'lower' if named == 'min' else 'higher'}"
                         f"; use direction={'minimize' if named == 'min' else 'maximize'!r}")
    return mode


def table_of(study: Any) -> Table:
    """The study's finished trials as a table, the best first."""
    optuna = study_module.optuna_module()
    state = optuna.trial.TrialState
    done = [t for t in study.get_trials(deepcopy=False)
            if t.state in (state.COMPLETE, state.PRUNED, state.FAIL)]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE

    def order(trial):
        value = trial.value if trial.state == state.COMPLETE else None
        rank = {state.COMPLETE: 0, state.PRUNED: 1, state.FAIL: 2}[trial.state]
        return (rank, 0.0 if value is None else (-value if maximize else value), trial.number)
    rows = []
    for trial in sorted(done, key=order):
        row = {"trial": trial.number, "state": trial.state.name.lower()}
        row.update({name: value for name, value in trial.params.items()})
        row["value"] = trial.value if trial.state == state.COMPLETE else None
        row["epochs"] = trial.user_attrs.get("epochs")
        if trial.state == state.FAIL:
            reason = ("(asked by two workers at once; not run)"
                      if trial.user_attrs.get(study_module.SURPLUS) else "(a worker died)")
            row["error"] = str(trial.user_attrs.get("error", reason))[:60]
        rows.append(row)
    return Table(rows)


def tune(build: Callable, data: Any, *, n_trials: int, epochs: int, key: jax.Array,
         study: Any = None, storage: Any = None, study_name: str | None = None,
         direction: str = "minimize", monitor: str = "val_loss", validation_data: Any = None,
         validation_split: float | None = None, pruner: Any = None, sampler: Any = None,
         group_size: int | None = None, progress: bool = True, batch_size: int | None = 32,
         run_dir: Any = None) -> TuneResult:
    """Tune hyperparameters with Optuna, training trials of one structure in one program.

    See `fnn.tuning.loop` for the loop and ``docs/tune.md`` for examples.

    Args:
      build: ``build(trial) -> {"model", "loss", "optimizer"[, "batch_size", "metrics",
        "penalty", "augment"]}``, using ``trial.suggest_float`` / ``suggest_int`` /
        ``suggest_categorical``.
      data: ``(x, y)`` arrays (in memory).
      n_trials: the study's total of finished trials to reach (``>= 1``).
      epochs: epochs per trial.
      key: every trial's key (the same initial weights, order and dropout for all).
      study: an Optuna study to add to (else one is created or loaded).
      storage: an Optuna storage or URL (``sqlite:///study.db``,
        ``postgresql://...``); ``None``: ``RUN_DIR/study.db`` with ``run_dir``,
        else in memory.
      study_name: the study's name in the storage (default ``"fnn"``).
      direction: ``"minimize"`` or ``"maximize"`` the monitored value (checked
        against the monitor's name).
      monitor: the history number that scores a trial (its best epoch's value).
      validation_data, validation_split: as for `fnn.fit`.
      pruner, sampler: Optuna's (default: Optuna's defaults, the median pruner and TPE).
      group_size: trials asked and trained together (``None``: from the memory a
        member needs, as ensembles chunk).
      progress: a progress bar over the epochs trained.
      batch_size: the batch size of trials whose ``build`` gives none.
      run_dir: where ``study.db`` goes when ``storage`` is ``None``.

    Returns:
      A `TuneResult`: the study, its best trial, that trial's parameters and
      state, and a table.

    Raises:
      ImportError: Optuna is not installed.
      ValueError / TypeError: ``n_trials < 1``, a monitor the trials do not compute, a
        direction that contradicts it, an unreachable storage, ``build`` returning
        something else than the dict.
    """
    where = "tune"
    study_module.optuna_module()
    check_int(where, "n_trials", n_trials)
    check_int(where, "epochs", epochs)
    check_int(where, "group_size", group_size, allow_none=True)
    checks.check_key(where, key)
    mode = _mode(where, monitor, direction)
    x, y = checks.check_data(where, data, "data")
    if validation_split is not None:
        (x, y), validation_data = split_off_validation(x, y, validation_split, validation_data)
    storage = study_module.open_storage(study_module.storage_url(storage, run_dir), where)
    study = study_module.open_study(where, study, storage, study_name, direction, sampler,
                                    pruner)
    bar = EpochBar(n_trials * epochs, wants_bar(progress))
    best = None          # (value, trial number, MemberResult) of this worker's best
    checked = False
    try:
        while True:
            study_module.fail_stale(study)
            finished, running = study_module.finished_and_running(study)
            needed = n_trials - finished - running
            if needed <= 0:
                if running == 0:
                    break
                time.sleep(WAIT_SECONDS)     # trials of other (or dead) workers
                continue
            trials, configs = _ask(study, storage, build, n_trials, group_size, batch_size,
                                   x, where)
            if not trials:
                continue
            if not checked:
                _check_monitor(where, configs[0], monitor, validation_data is not None)
                checked = True
            best = _run_batch(study, storage, trials, configs, (x, y), validation_data, key,
                              epochs, monitor, mode, bar, best, where)
    finally:
        bar.close()
    best_trial = _best_trial(study)
    params = state = None
    if best is not None and best_trial is not None and best[1] == best_trial.number:
        params, state = member_values(best[2])
    return TuneResult(study, best_trial, params, state, table_of(study))


def _best_trial(study: Any) -> Any:
    try:
        return study.best_trial
    except ValueError:       # no complete trial
        return None


def _ask(study, storage, build, n_trials, group_size, batch_size, x, where):
    """A batch of trials (at most ``group_size``, or as many as fit in memory, and never
    more than the study still needs: recounted before each ask, as other workers add
    trials too) and their checked configurations. Each trial beats once when asked, so a
    worker that dies before training it leaves a stale trial that gets retried. A trial
    whose ``build`` raises ValueError or TypeError (a layer refusing a sampled setting)
    fails, and asking goes on."""
    trials, configs = [], []
    cap = group_size
    while cap is None or len(trials) < cap:
        finished, running = study_module.finished_and_running(study)
        if n_trials - finished - running <= 0:
            break
        with study_module.quiet_experimental():
            trial = study.ask()
        study_module.beat(storage, trial)
        if study_module.is_surplus(study, trial, n_trials):   # another worker asked it too
            trial.set_user_attr(study_module.SURPLUS, True)
            study.tell(trial, state=optuna_state().FAIL)
            break
        try:
            returned = build(trial)
        except (ValueError, TypeError) as error:     # a layer that rejects its settings
            _fail(study, trial, f"build(trial) raised {type(error).__name__}: {error}")
            continue
        trials.append(trial)
        configs.append(read_build(returned, batch_size, where))
        if cap is None:
            config = configs[-1]
            cap = auto_chunk_size(config.model, config.optimizer, checks.struct(x),
                                  config.batch_size, n_trials)
    return trials, configs


def optuna_state() -> Any:
    """Optuna's ``TrialState``."""
    return study_module.optuna_module().trial.TrialState


def _fail(study, trial, error: str) -> None:
    optuna = study_module.optuna_module()
    trial.set_user_attr(study_module.FAILED_BY_FNN, True)
    trial.set_user_attr("error", error[:2000])
    study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _run_batch(study, storage, trials, configs, data, validation, key, epochs, monitor, mode,
               bar, best, where):
    """Train a batch's trials, grouped by structure, and tell Optuna their ends."""
    optuna = study_module.optuna_module()
    state = optuna.trial.TrialState
    groups: dict = {}
    inits: dict = {}
    for trial, config in zip(trials, configs):
        try:
            if config.model not in inits:
                inits[config.model] = initial_values(config.model, data[0], key)
            params, model_state = inits[config.model]
            signature, opt_state = structure(config, params)
        except (LayerValueError, LayerTypeError, ValueError, TypeError) as error:
            _fail(study, trial, f"{type(error).__name__}: {error}")
            continue
        groups.setdefault(signature, []).append((trial, config, opt_state))
    for members in groups.values():
        group_trials = [t for t, _, _ in members]
        group_configs = [c for _, c, _ in members]
        params, model_state = inits[group_configs[0].model]
        name = (f"{len(members)} trial{'s' if len(members) > 1 else ''} "
                f"{[t.number for t in group_trials]} in one program: "
                f"{describe(group_configs[0])}")
        try:
            with study_module.heartbeats(storage, [getattr(t, "_trial_id", None)
                                                   for t in group_trials]):
                results = train_group(group_trials, group_configs, [s for _, _, s in members],
                                      data, validation, key, epochs, monitor, mode, bar,
                                      params, model_state, where)
        except (LayerValueError, LayerTypeError) as error:
            for trial in group_trials:
                _fail(study, trial, f"{type(error).__name__}: {error}")
            continue
        for trial, result in zip(group_trials, results):
            trial.set_user_attr("history", result.history)
            trial.set_user_attr("epochs", len(result.history.get("loss", ())))
            trial.set_user_attr("group", name)
            if result.outcome == "failed":
                _fail(study, trial, result.error or "no finite monitored value")
            elif result.outcome == "pruned":
                study.tell(trial, state=state.PRUNED)
            else:
                study.tell(trial, result.value)
                better = best is None or (result.value < best[0] if mode == "min"
                                          else result.value > best[0])
                if better:
                    best = (result.value, trial.number, result)
    return best
