"""fnn.optim: hand-written optimizers as composable, pure gradient transformations.

    opt = fnn.optim.adam(learning_rate=1e-3)
    opt_state = opt.init(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = fnn.optim.apply_updates(params, updates)

Named optimizers are chains of primitives; hyperparameters are float32 arrays
in the state (traced, so sweeps and changes never recompile).
"""

from fnn.optim import schedules, validation
from fnn.optim.aliases import adadelta, adagrad, adam, adamw, lion, momentum, nadam, rmsprop, sgd
from fnn.optim.base import (EmptyState, GradientTransformation, apply_updates, chain, find_states,
                            identity)
from fnn.optim.hyperparams import current_learning_rate, hyperparameter_names, set_hyperparams
from fnn.optim.schedules import (Schedule, constant, cosine_decay, exponential_decay,
                                 inverse_sqrt_decay, inverse_time_decay, linear_schedule,
                                 linear_warmup, piecewise_constant, step_decay,
                                 warmup_cosine_decay)
from fnn.optim.transforms.adam import ScaleByAdamState, scale_by_adam
from fnn.optim.transforms.adaptive import (ScaleByAdadeltaState, ScaleByAdagradState,
                                           ScaleByRmsState, scale_by_adadelta, scale_by_adagrad,
                                           scale_by_rms)
from fnn.optim.transforms.clip import (ClipByGlobalNormState, ClipByValueState,
                                       clip_by_global_norm, clip_by_value, global_norm)
from fnn.optim.transforms.decay import AddL1State, AddWeightDecayState, add_l1, add_weight_decay
from fnn.optim.transforms.learning_rate import (ScaleByLearningRateState, ScaleByScheduleState,
                                                scale_by_learning_rate)
from fnn.optim.transforms.lion import ScaleByLionState, scale_by_lion
from fnn.optim.transforms.masking import (FreezeState, MaskedState, PartitionState, freeze,
                                          masked, partition, set_to_zero)
from fnn.optim.transforms.momentum import ScaleByMomentumState, scale_by_momentum
from fnn.optim.transforms.nonfinite import SkipNonfiniteState, all_finite, skip_nonfinite

__all__ = [
    # core
    "GradientTransformation", "EmptyState", "chain", "identity", "apply_updates",
    "find_states", "current_learning_rate", "set_hyperparams", "hyperparameter_names",
    # named optimizers
    "sgd", "momentum", "rmsprop", "adagrad", "adadelta", "adam", "adamw", "nadam", "lion",
    # primitives
    "scale_by_learning_rate", "scale_by_momentum", "scale_by_rms", "scale_by_adagrad",
    "scale_by_adadelta", "scale_by_adam", "scale_by_lion", "clip_by_value", "clip_by_global_norm",
    "global_norm", "add_weight_decay", "add_l1", "freeze", "masked", "partition", "set_to_zero",
    "skip_nonfinite", "all_finite",
    # states
    "ScaleByLearningRateState", "ScaleByScheduleState", "ScaleByMomentumState", "ScaleByRmsState",
    "ScaleByAdagradState", "ScaleByAdadeltaState", "ScaleByAdamState", "ScaleByLionState",
    "ClipByValueState", "ClipByGlobalNormState", "AddWeightDecayState", "AddL1State",
    "MaskedState", "PartitionState", "FreezeState", "SkipNonfiniteState",
    # schedules (fnn/optim/schedules.py)
    "schedules", "Schedule", "constant", "inverse_time_decay", "exponential_decay",
    "inverse_sqrt_decay", "piecewise_constant", "step_decay", "cosine_decay", "linear_schedule",
    "linear_warmup", "warmup_cosine_decay",
    "validation",
]
