"""Training: the jitted step and epoch, fit/evaluate/predict, data splits, augmentation, mixed precision.

The pieces, from the bottom up (see ``docs/training.md``):

- :func:`make_train_step`: one jitted step ``(params, state, opt_state, batch, key)``;
- :func:`make_epoch`: a whole epoch of steps in one compiled call, metrics on the device;
- :func:`fit`, :func:`evaluate`, :func:`predict`: the workflow in one call;
- :class:`EarlyStopping`, :func:`loss_scaled`, :func:`enable_compilation_cache`;
- :mod:`fnn.train.data` (train/dev/test splits, k-fold), :mod:`fnn.train.augment`,
  :mod:`fnn.train.precision` (mixed-precision policies and loss scaling).
"""

from fnn.train import augment, data, precision, strategy
from fnn.train.compile_cache import disable_compilation_cache, enable_compilation_cache
from fnn.train.data import kfold_indices, split_indices, train_dev_test_split
from fnn.train.early_stopping import EarlyStopping, EarlyStoppingState
from fnn.train.epoch import make_epoch
from fnn.train.evaluation import evaluate, predict
from fnn.train.loop import FitResult, fit
from fnn.train.precision import (DynamicLossScale, NoOpLossScale, Policy, StaticLossScale,
                                 get_policy)
from fnn.train.scaled_optimizer import LossScaledState, loss_scaled
from fnn.train.step import make_train_step
from fnn.train.strategy import prefers_unrolled

__all__ = [
    "fit", "evaluate", "predict", "FitResult", "make_train_step", "make_epoch",
    "EarlyStopping", "EarlyStoppingState", "loss_scaled", "LossScaledState",
    "enable_compilation_cache", "disable_compilation_cache", "prefers_unrolled",
    "data", "augment", "precision", "strategy",
    "split_indices", "train_dev_test_split", "kfold_indices",
    "Policy", "get_policy", "NoOpLossScale", "StaticLossScale", "DynamicLossScale",
]
