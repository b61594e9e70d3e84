"""Training: fit/evaluate/predict, many models at once, and the pieces they are made of.

The package is laid out by concern, one folder each, and imports run one way, from the
top of this list to the bottom (a module imports only from its own folder and the
folders below it; ``tests/test_architecture.py`` checks it):

- ``many/``: `fit_ensemble`, `sweep`, `cross_validate` (vmapped
  members, one shared host loop);
- ``fit.py``, ``evaluation.py``, ``diagnosis.py``: `fit` (a plan of named stages),
  `evaluate`, `predict`, `diagnose` and `plot_monitor` (reading a
  run's history, with `Monitor`'s numbers from ``step/monitor.py``);
- ``loop/``: the host side between epochs (starting values, history and its checks,
  early stopping, callbacks, the progress bar, checkpoints and resume);
- ``epoch/``: the compiled passes over a dataset (in memory, streamed, data parallel,
  dispatch, evaluation passes); `make_epoch`;
- ``step/``: what one step computes (configuration, outputs, precision, loss scaling,
  gradients, the checks on shapes); `make_train_step`;
- ``data/``: getting data in (splits, shuffle, augmentation, sample weights, streamed
  sources and their background reader);
- ``system/``: process-wide opt-ins (compilation cache, allocator, determinism).

``docs/architecture.md`` follows one ``fit`` call through them. The modules' former
flat paths (``fnn.train.augment``, ``fnn.train.streaming``, ...) still work: they are
aliases of the moved modules (`fnn.moved_modules`).
"""

from fnn.train import data
from fnn.train.data import augment, shuffle
from fnn.train.data.shuffle import index_shuffle, shuffled_indices
from fnn.train.data.splits import kfold_indices, split_indices, train_dev_test_split
from fnn.train.system import (compilation_cache_path, disable_compilation_cache,
                              enable_compilation_cache, tune_cpu_allocator)
from fnn.train.step import loss_scaling, outputs, precision
from fnn.train.step.loss_scaling import (DynamicLossScale, LossScaledState, NoOpLossScale,
                                         StaticLossScale, loss_scaled)
from fnn.train.step.precision import Policy, get_policy
from fnn.train.step.train_step import make_train_step
from fnn.train.epoch import dispatch, strategy
from fnn.train.epoch.dispatch import prefers_unrolled
from fnn.train.epoch.in_memory import make_epoch
from fnn.train.loop.callbacks import (Callback, LearningRateScheduler, ModelCheckpoint,
                                      ReduceLROnPlateau)
from fnn.train.loop.early_stopping import EarlyStopping, EarlyStoppingState
from fnn.train.evaluation import evaluate, predict
from fnn.train.fit import FitResult, fit
from fnn.train.step.monitor import Monitor
from fnn.train.diagnosis import Diagnosis, Finding, diagnose, plot_monitor
from fnn.train.many.ensemble import fit_ensemble
from fnn.train.many.sweep import SweepResult, sweep
from fnn.train.many.table import Table
from fnn.train.many.cross_validation import CrossValidationResult, cross_validate
from fnn import moved_modules

moved_modules.install("fnn.train")

__all__ = [
    "fit", "Monitor", "diagnose", "Diagnosis", "Finding", "plot_monitor", "fit_ensemble", "sweep", "SweepResult", "Table", "cross_validate",
    "CrossValidationResult", "evaluate", "predict", "FitResult", "make_train_step", "make_epoch",
    "EarlyStopping", "EarlyStoppingState", "loss_scaled", "LossScaledState",
    "Callback", "LearningRateScheduler", "ModelCheckpoint", "ReduceLROnPlateau",
    "enable_compilation_cache", "disable_compilation_cache", "compilation_cache_path",
    "tune_cpu_allocator",
    "prefers_unrolled",
    "data", "augment", "precision", "loss_scaling", "dispatch", "shuffle", "strategy", "outputs",
    "index_shuffle", "shuffled_indices",
    "split_indices", "train_dev_test_split", "kfold_indices",
    "Policy", "get_policy", "NoOpLossScale", "StaticLossScale", "DynamicLossScale",
]
