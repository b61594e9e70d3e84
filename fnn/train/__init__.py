"""Training: the jitted step and epoch, fit/evaluate/predict, data splits, augmentation, mixed precision.

The pieces, from the bottom up (see ``docs/training.md``):

- :func:`make_train_step`: one jitted step ``(params, state, opt_state, batch, key)``;
- :func:`make_epoch`: a whole epoch of steps in one compiled call, metrics on the device;
- :func:`fit`, :func:`evaluate`, :func:`predict`: the workflow in one call;
- :class:`EarlyStopping`, :func:`loss_scaled`, :func:`enable_compilation_cache`,
  :func:`tune_cpu_allocator`;
- :mod:`fnn.train.data` (train/dev/test splits, k-fold), :mod:`fnn.train.shuffle`
  (the O(n) per-epoch shuffle), :mod:`fnn.train.augment`,
  :mod:`fnn.train.precision` (mixed-precision policies), :mod:`fnn.train.loss_scaling`
  (float16 loss scaling), :mod:`fnn.train.dispatch` (scan / unroll / step).

Imports run one way, from the top down: ``fit`` -> ``epoch`` -> ``step`` ->
``gradients``, each reading its static setup from :mod:`fnn.train.config`.
"""

from fnn.train import (augment, data, dispatch, loss_scaling, outputs, precision, shuffle,
                       strategy)
from fnn.train.allocator import tune_cpu_allocator
from fnn.train.compile_cache import (compilation_cache_path, disable_compilation_cache,
                                     enable_compilation_cache)
from fnn.train.data import kfold_indices, split_indices, train_dev_test_split
from fnn.train.dispatch import prefers_unrolled
from fnn.train.early_stopping import EarlyStopping, EarlyStoppingState
from fnn.train.callbacks import (Callback, LearningRateScheduler, ModelCheckpoint,
                                 ReduceLROnPlateau)
from fnn.train.epoch import make_epoch
from fnn.train.evaluation import evaluate, predict
from fnn.train.fit import FitResult, fit
from fnn.train.ensemble import fit_ensemble
from fnn.train.sweep import SweepResult, sweep
from fnn.train.table import Table
from fnn.train.cross_validation import CrossValidationResult, cross_validate
from fnn.train.loss_scaling import (DynamicLossScale, LossScaledState, NoOpLossScale,
                                    StaticLossScale, loss_scaled)
from fnn.train.precision import Policy, get_policy
from fnn.train.shuffle import index_shuffle, shuffled_indices
from fnn.train.step import make_train_step

__all__ = [
    "fit", "fit_ensemble", "sweep", "SweepResult", "Table", "cross_validate",
    "CrossValidationResult", "evaluate", "predict", "FitResult", "make_train_step", "make_epoch",
    "EarlyStopping", "EarlyStoppingState", "loss_scaled", "LossScaledState",
    "enable_compilation_cache", "disable_compilation_cache", "compilation_cache_path",
    "tune_cpu_allocator",
    "prefers_unrolled",
    "data", "augment", "precision", "loss_scaling", "dispatch", "shuffle", "strategy", "outputs",
    "index_shuffle", "shuffled_indices",
    "split_indices", "train_dev_test_split", "kfold_indices",
    "Policy", "get_policy", "NoOpLossScale", "StaticLossScale", "DynamicLossScale",
]
