"""The Optuna side of tuning: opening the study in its database, counting its trials,
keeping the heartbeat of running trials, and failing the trials of dead workers.

The study lives in Optuna's storage. ``storage=None`` with a run directory is an
embedded SQLite file ``RUN_DIR/study.db``; without one, memory. Any Optuna
storage URL works (``postgresql://...``, ``mysql://...``), so workers on
several machines share a study by naming the same database. fnn opens an
URL with Optuna's heartbeat (`HEARTBEAT_SECONDS`): a trial whose worker
died stops beating, is failed after `GRACE_SECONDS`, and is retried with
the same parameters (``RetryFailedTrialCallback``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from typing import Any, Iterator

HEARTBEAT_SECONDS = 2
GRACE_SECONDS = 8
FAILED_BY_FNN = "fnn_failed"
"""The user attribute of a trial that fnn failed itself (its configuration did not build,
or its loss became NaN): such a trial counts as finished, a dead worker's does not."""


def optuna_module() -> Any:
    """``optuna``, or an ImportError that says how to install it."""
    try:
        import optuna
    except ImportError as error:
        raise ImportError('fnn.tune needs Optuna: pip install "fnn[tune]" (or pip install '
                          'optuna)') from error
    return optuna


@contextlib.contextmanager
def quiet_experimental() -> Iterator[None]:
    """Optuna's heartbeat API is marked experimental, and ``study.ask()`` on a storage with
    heartbeats warns that they are meant for ``Study.optimize`` (fnn beats for its trials
    itself); these warnings say nothing to users."""
    optuna = optuna_module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be "
                                "used with Study.optimize", category=UserWarning)
        yield


def storage_url(storage: Any, run_dir: Any) -> Any:
    """``storage``, or ``sqlite:///RUN_DIR/study.db`` (the directory created) when it is
    ``None`` and a run directory is given, or ``None`` (in memory)."""
    if storage is not None or run_dir is None:
        return storage
    os.makedirs(run_dir, exist_ok=True)
    return "sqlite:///" + os.path.abspath(os.path.join(run_dir, "study.db"))


def retry_callback_class() -> Any:
    """Optuna's callback that retries a dead worker's trial with the same parameters
    (``RetryHeartbeatStaleTrialCallback``; ``RetryFailedTrialCallback`` before Optuna 4.9)."""
    storages = optuna_module().storages
    return getattr(storages, "RetryHeartbeatStaleTrialCallback", None) or (
        storages.RetryFailedTrialCallback)


def _lost_race(error: Exception) -> bool:
    """Whether opening a storage failed because another worker was creating its tables at
    the same moment (SQLite says so in more than one way)."""
    text = f"{type(error).__name__}: {error}"
    return ("IntegrityError" in text or "already exists" in text
            or "database is locked" in text)


def open_storage(storage: Any, where: str, attempts: int = 5) -> Any:
    """An Optuna storage with heartbeats for a URL; other values pass through.

    Workers started together on a new database race to create its tables; a worker that
    loses tries again (``attempts`` times, half a second apart).
    """
    optuna = optuna_module()
    if not isinstance(storage, str):
        return storage
    for attempt in range(attempts):
        try:
            with quiet_experimental():
                return optuna.storages.RDBStorage(
                    storage, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                    heartbeat_stale_trial_callback=retry_callback_class()(max_retry=3))
        except Exception as error:   # sqlalchemy's errors: a bad URL, a database not reached
            if attempt + 1 < attempts and _lost_race(error):
                time.sleep(0.5)
                continue
            raise ValueError(f"{where}: cannot open the study storage {storage!r}: "
                             f"{type(error).__name__}: {str(error).splitlines()[0]}") from None


def open_study(where: str, study: Any, storage: Any, study_name: str | None, direction: str,
               sampler: Any, pruner: Any) -> Any:
    """The study to run trials in: ``study`` itself, or one created (or loaded, when one of
    that name exists) in ``storage``."""
    optuna = optuna_module()
    if study is not None:
        wanted = optuna.study.StudyDirection.MINIMIZE if direction == "minimize" else (
            optuna.study.StudyDirection.MAXIMIZE)
        if study.direction != wanted:
            raise ValueError(f"{where}: the study's direction is {study.direction.name.lower()}"
                             f" but direction={direction!r}")
        return study
    existing = None
    if storage is not None:
        try:
            existing = optuna.study.get_all_study_names(storage)
        except Exception as error:
            raise ValueError(f"{where}: cannot read the study storage: {type(error).__name__}:"
                             f" {str(error).splitlines()[0]}") from None
    name = study_name or "fnn"
    if existing is not None and name in existing:
        loaded = optuna.load_study(study_name=name, storage=storage, sampler=sampler,
                                   pruner=pruner)
        if loaded.direction.name.lower() != direction.removesuffix("imize") + "imize":
            raise ValueError(f"{where}: the stored study {name!r} has direction "
                             f"{loaded.direction.name.lower()}, not {direction!r}")
        return loaded
    return optuna.create_study(storage=storage, study_name=name, direction=direction,
                               sampler=sampler, pruner=pruner)


def finished_and_running(study: Any) -> tuple[int, int]:
    """``(finished, running)``: trials complete, pruned or failed by fnn; trials running."""
    optuna = optuna_module()
    state = optuna.trial.TrialState
    finished = running = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state in (state.COMPLETE, state.PRUNED) or (
                trial.state == state.FAIL and trial.user_attrs.get(FAILED_BY_FNN)):
            finished += 1
        elif trial.state == state.RUNNING:
            running += 1
    return finished, running


SURPLUS = "fnn_surplus"
"""The user attribute of a trial asked by two workers at once beyond ``n_trials`` (failed
at once, never trained, not counted)."""


def is_surplus(study: Any, trial: Any, n_trials: int) -> bool:
    """Whether ``trial``, just asked, is beyond the study's ``n_trials``: workers count
    and ask at the same moment, so both may ask the last trial; the trials that count are
    the first ``n_trials`` by number among those finished (or failed by fnn) and running,
    the same rule in every worker."""
    optuna = optuna_module()
    state = optuna.trial.TrialState
    live = sorted(t.number for t in study.get_trials(deepcopy=False)
                  if t.state in (state.COMPLETE, state.PRUNED, state.RUNNING)
                  or (t.state == state.FAIL and t.user_attrs.get(FAILED_BY_FNN)))
    return trial.number not in live[:n_trials]


def fail_stale(study: Any) -> None:
    """Fail (and so retry) the running trials whose worker stopped beating."""
    optuna = optuna_module()
    with quiet_experimental():
        optuna.storages.fail_stale_trials(study)


def beat(storage: Any, trial: Any) -> None:
    """Record one heartbeat of ``trial`` (for a storage with heartbeats)."""
    trial_id = getattr(trial, "_trial_id", None)
    if trial_id is not None and hasattr(storage, "record_heartbeat") and hasattr(
            storage, "get_heartbeat_interval") and storage.get_heartbeat_interval():
        storage.record_heartbeat(trial_id)


@contextlib.contextmanager
def heartbeats(storage: Any, trial_ids: list) -> Iterator[None]:
    """Beat for ``trial_ids`` every `HEARTBEAT_SECONDS` while the block runs (only
    for a storage with heartbeats: fnn's RDB storages)."""
    beat = getattr(storage, "record_heartbeat", None)
    interval = storage.get_heartbeat_interval() if hasattr(
        storage, "get_heartbeat_interval") else None
    trial_ids = [t for t in trial_ids if t is not None]
    if beat is None or not interval or not trial_ids:
        yield
        return
    done = threading.Event()

    def run():
        while True:
            for trial_id in trial_ids:
                try:
                    beat(trial_id)
                except Exception:     # a finished trial, a dropped connection: try again
                    pass
            if done.wait(interval):
                return
    thread = threading.Thread(target=run, name="fnn-tune-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
